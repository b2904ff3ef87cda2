"""The counting of outcomes, method by method (pure functions, no database)."""

from __future__ import annotations

from commons_map.governance.methods import Counted, count


def c(choice: str | None, reason: str = "", scores: list[int] | None = None) -> Counted:
    return Counted(choice, scores, reason)


def test_consent_with_a_concern_passes_and_keeps_its_reason():
    out = count("consent", [c("consent"), c("concern", "le coût")], quorum=2, threshold=None, options=[])
    assert (out["passed"], out["why"], out["quorum_met"]) == (True, "no_objection", True)
    assert out["reasons"] == [{"choice": "concern", "reason": "le coût"}]


def test_consent_blocked_by_one_objection_whatever_the_consents():
    out = count("consent", [c("consent")] * 20 + [c("objection", "danger")], quorum=None, threshold=None, options=[])
    assert out["passed"] is False and out["counts"]["objection"] == 1
    assert out["reasons"][0] == {"choice": "objection", "reason": "danger"}


def test_no_position_and_no_quorum_passes_consent_but_not_a_vote():
    assert count("consent", [], quorum=None, threshold=None, options=[])["passed"] is True
    assert count("vote", [], quorum=None, threshold="simple", options=[])["passed"] is False
    assert count("vote", [c("abstain")], quorum=None, threshold="two_thirds", options=[])["passed"] is False


def test_two_thirds_is_exact_at_the_boundary():
    two_one = [c("yes"), c("yes"), c("no")]
    assert count("vote", two_one, quorum=None, threshold="two_thirds", options=[])["passed"] is True
    assert count("vote", two_one + [c("no")], quorum=None, threshold="two_thirds", options=[])["passed"] is False
    assert count("vote", [c("yes"), c("no")], quorum=None, threshold="simple", options=[])["passed"] is False


def test_abstentions_count_for_the_quorum_only():
    out = count("vote", [c("yes"), c("abstain"), c("abstain")], quorum=3, threshold="simple", options=[])
    assert out["passed"] is True and out["participants"] == 3


def test_score_tie_and_winner():
    tie = count("score", [c(None, scores=[1, 2]), c(None, scores=[2, 1])], quorum=None, threshold=None,
                options=["a", "b"])
    assert tie["tie"] == ["a", "b"] and tie["winner"] is None and tie["why"] == "tie"
    win = count("score", [c(None, scores=[0, 3, 3]), c(None, scores=[0, 3, 2])], quorum=None, threshold=None,
                options=["a", "b", "c"])
    assert win["winner"] == "b" and win["passed"] is True
    none = count("score", [], quorum=None, threshold=None, options=["a", "b"])
    assert none["passed"] is False and none["why"] == "no_positions" and none["tie"] == []
