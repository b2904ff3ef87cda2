"""The one change a passed proposal makes, applied in the closing transaction, once, with the
decision named in the history.

An effect is ``{"type": ..., "target": id, "value": ...}``:

=========================  ============  ==========================================
type                       target        value
=========================  ============  ==========================================
commons_rules              commons id    the new rules of use (text)
commons_visibility         commons id    public, members or private
steward_grant / _withdraw  commons id    the member's id
coordinator_grant / _w.    member id     (none)
circle_member_grant / _w.  circle id     the member's id
account_limits             member id     {"min_minutes": int|null, "max_minutes": int|null}
agreement_adopt            (none)        {"title", "text", "review_on": "YYYY-MM-DD"|null}
agreement_revise           agreement id  {"title"?, "text"?, "review_on"?}
roles_by_decision_only     (none)        true or false (the cooperative's setting)
=========================  ============  ==========================================

:func:`check` refuses a malformed effect when the proposal is made; :func:`apply` checks again at
the close and either applies the whole change (in a savepoint) or reports why it could not
(the commons archived, the member gone...), never half of it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from commons_map.db import MAX_ID
from commons_map.errors import DomainError, ValidationFailed
from commons_map.governance.models import Agreement, AgreementRevision, Circle, CircleRole, Proposal, RoleHistory
from commons_map.ledger.models import Account, AccountHistory
from commons_map.people.models import Cooperative, Member, MemberRole
from commons_map.register.models import VISIBILITIES, Commons, CommonsHistory, Steward

TYPES = (
    "commons_rules", "commons_visibility", "steward_grant", "steward_withdraw", "coordinator_grant",
    "coordinator_withdraw", "circle_member_grant", "circle_member_withdraw", "account_limits",
    "agreement_adopt", "agreement_revise", "roles_by_decision_only",
)
WHOLE_COOPERATIVE = ("coordinator_grant", "coordinator_withdraw", "account_limits", "roles_by_decision_only")
MAX_RULES = 5_000


class Impossible(DomainError):
    """The effect cannot be applied as things stand now: reported in the outcome."""

    kind = "effect_impossible"


# --- looking things up within the cooperative -------------------------------------------------------


def _id(value: Any) -> int | None:
    """An id as the database stores it, or None for anything else (a bool, a string, out of range)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID else None


def _commons(session: Session, coop_id: int, commons_id: Any, field: str = "effect.target") -> Commons:
    c = session.get(Commons, _id(commons_id)) if _id(commons_id) else None
    if c is None or c.cooperative_id != coop_id:
        raise ValidationFailed("governance.effect_no_commons", field=field, target=commons_id)
    return c


def _member(session: Session, coop_id: int, member_id: Any, field: str) -> Member:
    m = session.get(Member, _id(member_id)) if _id(member_id) else None
    if m is None or m.cooperative_id != coop_id:
        raise ValidationFailed("governance.effect_no_member", field=field, member=member_id)
    return m


def _circle(session: Session, coop_id: int, circle_id: Any) -> Circle:
    c = session.get(Circle, _id(circle_id)) if _id(circle_id) else None
    if c is None or c.cooperative_id != coop_id:
        raise ValidationFailed("governance.effect_no_circle", field="effect.target", target=circle_id)
    return c


def _agreement(session: Session, coop_id: int, agreement_id: Any) -> Agreement:
    a = session.get(Agreement, _id(agreement_id)) if _id(agreement_id) else None
    if a is None or a.cooperative_id != coop_id:
        raise ValidationFailed("governance.effect_no_agreement", field="effect.target", target=agreement_id)
    return a


def _text(value: Any, field: str, maximum: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > maximum or "\x00" in value:
        raise ValidationFailed("governance.effect_text", field=field, maximum=maximum)
    return value.strip()


def _review_on(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value if isinstance(value, str) else "")
    except ValueError:
        raise ValidationFailed("governance.effect_review_on", field="effect.value.review_on") from None


def _limits(value: Any) -> tuple[int | None, int | None]:
    if not isinstance(value, dict) or set(value) - {"min_minutes", "max_minutes"}:
        raise ValidationFailed("governance.effect_limits", field="effect.value")
    lo, hi = value.get("min_minutes"), value.get("max_minutes")
    for name, v in (("min_minutes", lo), ("max_minutes", hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or abs(v) > 1_000_000):
            raise ValidationFailed("governance.effect_limits", field=f"effect.value.{name}")
    if lo is not None and hi is not None and lo > hi:
        raise ValidationFailed("governance.effect_limits_order", field="effect.value.min_minutes",
                               min_minutes=lo, max_minutes=hi)
    return lo, hi


# --- checking when the proposal is made ---------------------------------------------------------------


def check(session: Session, *, cooperative_id: int, participation: str, circle_id: int | None,
          effect: dict[str, Any]) -> dict[str, Any]:
    """The effect, normalised, or ValidationFailed naming the part of it that is wrong."""
    kind, target, value = effect.get("type"), effect.get("target"), effect.get("value")
    if kind not in TYPES:
        raise ValidationFailed("governance.effect_type", field="effect.type", given=str(kind).replace("\x00", ""),
                               known=list(TYPES))
    if kind in WHOLE_COOPERATIVE and participation != "all":
        raise ValidationFailed("governance.effect_needs_all", field="effect.type", type=kind)
    out: dict[str, Any] = {"type": kind, "target": target, "value": value}
    if kind in ("commons_rules", "commons_visibility", "steward_grant", "steward_withdraw"):
        c = _commons(session, cooperative_id, target)
        if c.archived_at is not None:
            raise ValidationFailed("governance.effect_commons_archived", field="effect.target", commons=c.name)
        if kind == "commons_rules":
            out["value"] = _text(value, "effect.value", MAX_RULES)
        elif kind == "commons_visibility":
            if value not in VISIBILITIES:
                raise ValidationFailed("governance.effect_visibility", field="effect.value", known=list(VISIBILITIES))
        else:
            _member(session, cooperative_id, value, "effect.value")
    elif kind in ("coordinator_grant", "coordinator_withdraw"):
        _member(session, cooperative_id, target, "effect.target")
        out["value"] = None
    elif kind in ("circle_member_grant", "circle_member_withdraw"):
        _circle(session, cooperative_id, target)
        _member(session, cooperative_id, value, "effect.value")
    elif kind == "account_limits":
        _member(session, cooperative_id, target, "effect.target")
        lo, hi = _limits(value)
        out["value"] = {"min_minutes": lo, "max_minutes": hi}
    elif kind == "agreement_adopt":
        if not isinstance(value, dict) or set(value) - {"title", "text", "review_on"}:
            raise ValidationFailed("governance.effect_agreement", field="effect.value")
        review = _review_on(value.get("review_on"))
        out["target"] = None
        out["value"] = {"title": _text(value.get("title"), "effect.value.title", 200),
                        "text": _text(value.get("text"), "effect.value.text", 20_000),
                        "review_on": review.isoformat() if review else None}
    elif kind == "agreement_revise":
        _agreement(session, cooperative_id, target)
        if not isinstance(value, dict) or not value or set(value) - {"title", "text", "review_on"}:
            raise ValidationFailed("governance.effect_agreement", field="effect.value")
        clean: dict[str, Any] = {}
        if "title" in value:
            clean["title"] = _text(value["title"], "effect.value.title", 200)
        if "text" in value:
            clean["text"] = _text(value["text"], "effect.value.text", 20_000)
        if "review_on" in value:
            review = _review_on(value["review_on"])
            clean["review_on"] = review.isoformat() if review else None
        out["value"] = clean
    else:  # roles_by_decision_only
        if not isinstance(value, bool):
            raise ValidationFailed("governance.effect_boolean", field="effect.value")
        out["target"] = None
    return out


# --- applying at the close ---------------------------------------------------------------------------


def _decision(p: Proposal) -> dict[str, Any]:
    return {"proposal_id": p.id, "title": p.title}


def _commons_history(session: Session, c: Commons, p: Proposal, changes: dict[str, list[Any]]) -> None:
    session.add(CommonsHistory(commons_id=c.id, member_id=None, action="decided",
                               changes={**changes, "decision": [None, _decision(p)]}))


def _role_history(session: Session, p: Proposal, member: Member, role: str, action: str, **kw: Any) -> None:
    session.add(RoleHistory(cooperative_id=p.cooperative_id, member_id=member.id, role=role, action=action,
                            source="decision", proposal_id=p.id, **kw))


def _live_commons(session: Session, p: Proposal, target: int) -> Commons:
    session.execute(select(Commons.id).where(Commons.id == target).with_for_update())
    c = session.get(Commons, target, populate_existing=True)
    if c is None:
        raise Impossible("governance.effect_commons_gone", target=target)
    if c.archived_at is not None:
        raise Impossible("governance.effect_commons_archived", commons=c.name)
    return c


def _live_member(session: Session, member_id: int) -> Member:
    m = session.get(Member, member_id)
    if m is None or not m.is_active:
        raise Impossible("governance.effect_member_gone", member=m.display_name if m else member_id)
    return m


def _apply(session: Session, p: Proposal, effect: dict[str, Any]) -> dict[str, Any]:
    kind, target, value = effect["type"], effect.get("target"), effect.get("value")
    if kind in ("commons_rules", "commons_visibility"):
        c = _live_commons(session, p, target)
        name = "rules_of_use" if kind == "commons_rules" else "visibility"
        old = getattr(c, name)
        setattr(c, name, value)
        _commons_history(session, c, p, {name: [old, value]})
        return {"commons_id": c.id, name: value}
    if kind in ("steward_grant", "steward_withdraw"):
        c = _live_commons(session, p, target)
        m = _live_member(session, value)
        old = sorted(c.steward_ids)
        if kind == "steward_grant":
            if m.id in old:
                raise Impossible("governance.effect_already", member=m.display_name)
            c.steward_rows.append(Steward(member_id=m.id))
        else:
            if m.id not in old:
                raise Impossible("governance.effect_not_holding", member=m.display_name)
            c.steward_rows = [s for s in c.steward_rows if s.member_id != m.id]
        session.flush()
        _commons_history(session, c, p, {"steward_ids": [old, sorted(c.steward_ids)]})
        _role_history(session, p, m, "steward", "granted" if kind == "steward_grant" else "withdrawn",
                      commons_id=c.id)
        return {"commons_id": c.id, "member_id": m.id}
    if kind in ("coordinator_grant", "coordinator_withdraw"):
        m = _live_member(session, target)
        if kind == "coordinator_grant":
            if m.is_coordinator:
                raise Impossible("governance.effect_already", member=m.display_name)
            m.role_rows.append(MemberRole(role="coordinator"))
        else:
            if not m.is_coordinator:
                raise Impossible("governance.effect_not_holding", member=m.display_name)
            # the same per-cooperative lock as people.revoke_role: withdrawals never race to leave none
            session.execute(select(Cooperative.id).where(Cooperative.id == m.cooperative_id).with_for_update())
            others = session.scalar(
                select(func.count()).select_from(MemberRole).join(Member).where(
                    Member.cooperative_id == m.cooperative_id, MemberRole.role == "coordinator",
                    Member.id != m.id, Member.is_active))
            if not others:
                raise Impossible("governance.effect_last_coordinator", member=m.display_name)
            m.role_rows = [r for r in m.role_rows if r.role != "coordinator"]
        session.flush()
        _role_history(session, p, m, "coordinator", "granted" if kind == "coordinator_grant" else "withdrawn")
        return {"member_id": m.id}
    if kind in ("circle_member_grant", "circle_member_withdraw"):
        circle = session.get(Circle, target)
        if circle is None:
            raise Impossible("governance.effect_circle_gone", target=target)
        m = _live_member(session, value)
        held = session.get(CircleRole, (circle.id, m.id, "member"))
        if kind == "circle_member_grant":
            if held is not None:
                raise Impossible("governance.effect_already", member=m.display_name)
            session.add(CircleRole(circle_id=circle.id, member_id=m.id, role="member", source="decision"))
        else:
            if held is None:
                raise Impossible("governance.effect_not_holding", member=m.display_name)
            session.execute(delete(CircleRole).where(CircleRole.circle_id == circle.id,
                                                     CircleRole.member_id == m.id, CircleRole.role == "member"))
        session.flush()
        _role_history(session, p, m, "member", "granted" if kind == "circle_member_grant" else "withdrawn",
                      circle_id=circle.id)
        return {"circle_id": circle.id, "member_id": m.id}
    if kind == "account_limits":
        from commons_map.ledger.service import ensure_member_account

        m = _live_member(session, target)
        account = ensure_member_account(session, member=m)
        account = session.get(Account, account.id, with_for_update=True, populate_existing=True)
        assert account is not None
        if account.archived_at is not None:
            raise Impossible("governance.effect_account_archived", account=account.name)
        old = {"min_minutes": account.min_minutes, "max_minutes": account.max_minutes}
        account.min_minutes, account.max_minutes = value["min_minutes"], value["max_minutes"]
        session.add(AccountHistory(account_id=account.id, member_id=None, action="limits", changes={
            **{k: [old[k], value[k]] for k in ("min_minutes", "max_minutes")}, "decision": [None, _decision(p)]}))
        session.flush()
        return {"account_id": account.id, **value}
    if kind == "agreement_adopt":
        review = _review_on(value.get("review_on"))
        a = Agreement(cooperative_id=p.cooperative_id, circle_id=p.circle_id, title=value["title"],
                      text=value["text"], review_on=review, version=1, adopted_by_id=p.id)
        session.add(a)
        session.flush()
        session.add(AgreementRevision(agreement_id=a.id, version=1, title=a.title, text=a.text, review_on=review,
                                      proposal_id=p.id))
        session.flush()
        return {"agreement_id": a.id, "version": 1}
    if kind == "agreement_revise":
        a = session.get(Agreement, target, with_for_update=True)
        if a is None:
            raise Impossible("governance.effect_agreement_gone", target=target)
        if "title" in value:
            a.title = value["title"]
        if "text" in value:
            a.text = value["text"]
        if "review_on" in value:
            a.review_on = _review_on(value["review_on"])
        a.version += 1
        a.revised_by_id = p.id
        a.updated_at = func.now()
        session.add(AgreementRevision(agreement_id=a.id, version=a.version, title=a.title, text=a.text,
                                      review_on=a.review_on, proposal_id=p.id))
        session.flush()
        return {"agreement_id": a.id, "version": a.version}
    # roles_by_decision_only: the cooperative's setting
    coop = session.get(Cooperative, p.cooperative_id, with_for_update=True)
    assert coop is not None
    coop.settings = {**(coop.settings or {}), "roles_by_decision_only": bool(value)}
    session.flush()
    return {"roles_by_decision_only": bool(value)}


def apply(session: Session, proposal: Proposal) -> dict[str, Any]:
    """Apply the passed proposal's effect whole, or report (code and parameters) why it could not be."""
    effect = proposal.effect
    assert effect is not None
    try:
        with session.begin_nested():
            done = _apply(session, proposal, effect)
    except Impossible as exc:
        return {"type": effect["type"], "applied": False, "code": exc.code, "params": _plain(exc.params)}
    return {"type": effect["type"], "applied": True, "result": done}


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    from commons_map.messages import plain

    return {k: plain(v) for k, v in params.items()}
