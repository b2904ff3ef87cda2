"""Decisions pages: open proposals first, a position with its reason in two taps, outcomes and their
reasons, the agreements. Thin over commons_map.governance.service."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.web import PREFIX, Form, PageDep, PageRoute, field_values, try_action
from commons_map import messages
from commons_map.governance import service
from commons_map.governance.schemas import PositionIn

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def labels() -> dict[str, Any]:
    """Words of the decisions pages in the current language."""
    from api.i18n import gettext as _

    return {
        "choice": {"consent": _("I consent"), "concern": _("I consent, with a concern"), "objection": _("I object"),
                   "yes": _("Yes"), "no": _("No"), "abstain": _("I abstain")},
        "method": {"consent": _("Consent"), "vote": _("Vote"), "score": _("Score")},
        "threshold": {"simple": _("simple majority"), "two_thirds": _("two thirds")},
        "phase": {"upcoming": _("opens soon"), "open": _("open"), "closed": _("closed")},
        "effect": {"commons_rules": _("new rules of use for a commons"),
                   "commons_visibility": _("new visibility for a commons"),
                   "steward_grant": _("a new steward for a commons"), "steward_withdraw": _("a steward stands down"),
                   "coordinator_grant": _("a new coordinator"), "coordinator_withdraw": _("a coordinator stands down"),
                   "circle_member_grant": _("a new member of a circle"),
                   "circle_member_withdraw": _("a member leaves a circle"),
                   "account_limits": _("new balance limits for an account"),
                   "agreement_adopt": _("a new agreement"), "agreement_revise": _("a revised agreement"),
                   "roles_by_decision_only": _("roles granted only by decision")},
        "scores": [(0, _("0 – no")), (1, _("1 – hardly")), (2, _("2 – fine")), (3, _("3 – the best"))],
    }


def _dates(out: dict[str, Any]) -> dict[str, Any]:
    """The proposal's moments as datetimes, for the page's formats."""
    for key in ("opens_at", "closes_at", "closed_at"):
        out[key[:-3]] = datetime.fromisoformat(out[key]) if out.get(key) else None
    for a in out.get("amendments", []):
        a["at_dt"] = datetime.fromisoformat(a["at"]) if a.get("at") else None
    return out


def _render(page, proposal_id: int, *, values=None, errors=None, status_code: int = 200) -> Response:  # noqa: ANN001
    me = page.require()
    now = datetime.now(UTC)
    p = service.get_proposal(page.session, actor=me, proposal_id=proposal_id, now=now)
    out = _dates(service.proposal_out(page.session, p, actor=me, now=now))
    mine = out.get("my_position") or {}
    vals = {"choice": mine.get("choice") or "", "reason": mine.get("reason") or ""}
    for i, s in enumerate(mine.get("scores") or []):
        vals[f"score-{i}"] = str(s)
    vals.update(values or {})
    return page.render("governance_proposal.html", status_code=status_code, p=out, values=vals, errors=errors or {},
                       words=labels(), said=lambda code, params=None: messages.render(code, params, page.locale))


@router.get(PREFIX + "/decisions")
def decisions(page: PageDep) -> Response:
    """Open proposals first (mine to answer marked), then the latest outcomes."""
    me = page.require()
    now = datetime.now(UTC)
    rows = service.list_proposals(page.session, actor=me, now=now)
    shown = [_dates(service.proposal_out(page.session, p, actor=me, now=now, detail=False)) for p in rows]
    open_ = [p for p in shown if p["state"] == "open"]
    closed = sorted((p for p in shown if p["state"] == "closed"), key=lambda p: p["closed_at"] or "", reverse=True)
    return page.render("governance_list.html", open_proposals=open_, closed_proposals=closed[:30], words=labels(),
                       said=lambda code, params=None: messages.render(code, params, page.locale))


@router.get(PREFIX + "/decisions/{proposal_id}")
def proposal(page: PageDep, proposal_id: int) -> Response:
    """A proposal: its text and amendments, my position, the others', the outcome and its reasons."""
    return _render(page, proposal_id)


@router.post(PREFIX + "/decisions/{proposal_id}/position")
def position(page: PageDep, proposal_id: int, form: Form) -> Response:
    """Take or change my position; a refusal (no reason for an objection, closed...) is shown by the field."""
    me = page.require()
    values = field_values(form)
    scores = [values[k] for k in sorted((k for k in values if k.startswith("score-")), key=lambda k: int(k[6:]))]

    def take():  # noqa: ANN202
        data = PositionIn(choice=values.get("choice") or None, reason=values.get("reason", ""),
                          scores=[int(s) for s in scores] if scores else None)
        return service.take_position(page.session, actor=me, proposal_id=proposal_id, data=data)

    _, errors = try_action(page.session, take, fields={"choice", "reason", "scores", "proposal_id"})
    if errors:
        if "proposal_id" in errors:
            errors.setdefault("", []).extend(errors.pop("proposal_id"))
        return _render(page, proposal_id, values=values, errors=errors, status_code=422)
    return page.redirect(f"{PREFIX}/decisions/{proposal_id}#mine", done="position")


@router.get(PREFIX + "/agreements")
def agreements(page: PageDep) -> Response:
    """The cooperative's agreements, those due for review first."""
    me = page.require()
    rows = [service.agreement_out(page.session, a) for a in service.list_agreements(page.session, actor=me)]
    rows.sort(key=lambda a: (not a["due_for_review"], a["review_on"] or "9999"))
    for a in rows:
        a["review_on_d"] = date.fromisoformat(a["review_on"]) if a["review_on"] else None
    return page.render("governance_agreements.html", agreements=rows)
