"""How an outcome is counted, for each method. Pure functions: positions in, outcome out.

*Consent* passes when no objection stands and the quorum is met; concerns are recorded with
their reasons but do not block. *Vote* counts yes, no and abstain: a simple threshold passes with
more yes than no, two-thirds with yes at least two thirds of yes + no (abstentions count for the
quorum only); a vote with no yes never passes. *Score*: each option is scored 0 to 3, the highest
total wins; equal highest totals are a tie, reported, and nothing wins. The quorum is the number
of members who took a position (any position, abstain included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_SCORE = 3


@dataclass(frozen=True)
class Counted:
    """One position as the count sees it: no name, only what was said."""

    choice: str | None
    scores: Sequence[int] | None
    reason: str


def _quorum(participants: int, quorum: int | None) -> bool:
    return quorum is None or participants >= quorum


def consent(positions: Sequence[Counted], *, quorum: int | None) -> dict[str, Any]:
    """Passes when no objection stands and the quorum is met."""
    counts = {c: sum(1 for p in positions if p.choice == c) for c in ("consent", "concern", "objection")}
    met = _quorum(len(positions), quorum)
    passed = met and counts["objection"] == 0
    if not met:
        why = "quorum_not_met"
    elif counts["objection"]:
        why = "objection"
    else:
        why = "no_objection"
    return {"passed": passed, "why": why, "counts": counts}


def vote(positions: Sequence[Counted], *, quorum: int | None, threshold: str) -> dict[str, Any]:
    """Yes against no at the threshold (simple: more yes than no; two-thirds: 3 yes >= 2 (yes + no))."""
    counts = {c: sum(1 for p in positions if p.choice == c) for c in ("yes", "no", "abstain")}
    yes, no = counts["yes"], counts["no"]
    met = _quorum(len(positions), quorum)
    if threshold == "two_thirds":
        enough = yes > 0 and 3 * yes >= 2 * (yes + no)
    else:
        enough = yes > no
    passed = met and enough
    why = "quorum_not_met" if not met else ("threshold_reached" if enough else "threshold_not_reached")
    return {"passed": passed, "why": why, "counts": counts}


def score(positions: Sequence[Counted], *, quorum: int | None, options: Sequence[str]) -> dict[str, Any]:
    """The option with the highest total wins; equal highest totals are a tie and nothing wins."""
    totals = [0] * len(options)
    for p in positions:
        for i, s in enumerate(p.scores or ()):
            totals[i] += int(s)
    met = _quorum(len(positions), quorum)
    best = max(totals) if totals else 0
    leaders = [i for i, t in enumerate(totals) if t == best]
    tie = len(leaders) > 1
    winner = leaders[0] if met and not tie and positions else None
    if not met:
        why = "quorum_not_met"
    elif not positions:
        why = "no_positions"
    else:
        why = "tie" if tie else "highest_total"
    return {
        "passed": winner is not None,
        "why": why,
        "counts": {"participants": len(positions)},
        "totals": [{"option": o, "total": t} for o, t in zip(options, totals, strict=True)],
        "winner": options[winner] if winner is not None else None,
        "tie": [options[i] for i in leaders] if tie and met and positions else [],
    }


def count(method: str, positions: Sequence[Counted], *, quorum: int | None, threshold: str | None,
          options: Sequence[str]) -> dict[str, Any]:
    """The outcome of a proposal by its method, with the reasons given (no names)."""
    if method == "consent":
        out = consent(positions, quorum=quorum)
    elif method == "vote":
        out = vote(positions, quorum=quorum, threshold=threshold or "simple")
    else:
        out = score(positions, quorum=quorum, options=options)
    out["participants"] = len(positions)
    out["quorum"] = quorum
    out["quorum_met"] = _quorum(len(positions), quorum)
    order = {"objection": 0, "concern": 1, "no": 2, "abstain": 3, "consent": 4, "yes": 5, None: 6}
    out["reasons"] = [
        {"choice": p.choice, "reason": p.reason.strip()}
        for p in sorted(positions, key=lambda p: order.get(p.choice, 6))
        if p.reason.strip()
    ]
    return out
