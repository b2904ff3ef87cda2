"""The rules of governance: circles, proposals, positions, amendments, the close, agreements, trust.

A proposal is closed once: :func:`close` locks its row (``SELECT ... FOR UPDATE``), and a closer
that waited finds it closed and returns it unchanged; a position takes the row ``FOR SHARE``, so
it is either counted by the close or refused after it. The outcome and the effect are written in
the closing transaction, and the database refuses any later change of a closed proposal or of
its positions (migration 0010_governance). Due proposals are closed by
``commons-map governance close-due`` and lazily by any read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.governance import effects, methods
from commons_map.governance.models import (
    Agreement,
    AgreementRevision,
    Amendment,
    Circle,
    CircleRole,
    Position,
    Proposal,
    RoleHistory,
    RoleThreshold,
    Trust,
)
from commons_map.governance.schemas import CircleIn, PositionIn, ProposalIn, ProposalPatch
from commons_map.notify.service import notify
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of, is_member_of
from commons_map.tenancy import acting_cooperative

MAX_DURATION = timedelta(days=366)
PAST_TOLERANCE = timedelta(minutes=5)
ROLE_NAME = r"^[a-z][a-z0-9_]{0,39}$"
CHOICES = {"consent": ("consent", "concern", "objection"), "vote": ("yes", "no", "abstain")}


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _require_member(actor: Member | None) -> Member:
    if actor is None or not actor.is_active:
        raise PermissionDenied("governance.members_only")
    return actor


# --- circles ---------------------------------------------------------------------------------------


def circle_member_ids(session: Session, circle_id: int) -> set[int]:
    """The active members of a circle."""
    return set(session.scalars(
        select(CircleRole.member_id).join(Member, Member.id == CircleRole.member_id)
        .where(CircleRole.circle_id == circle_id, CircleRole.role == "member", Member.is_active)
    ))


def get_circle(session: Session, *, actor: Member | None, circle_id: int, field: str = "circle_id") -> Circle:
    """A circle of the actor's cooperative."""
    circle = session.get(Circle, circle_id)
    if circle is None or not is_member_of(actor, circle.cooperative_id):
        raise NotFound("governance.no_circle", field=field, circle=circle_id)
    return circle


def list_circles(session: Session, *, actor: Member) -> list[dict[str, Any]]:
    """The circles of my cooperative, with their members, roles and the trust each role needs."""
    _require_member(actor)
    circles = session.scalars(select(Circle).where(Circle.cooperative_id == actor.cooperative_id)
                              .order_by(Circle.name)).all()
    return [circle_out(session, c) for c in circles]


def circle_out(session: Session, circle: Circle) -> dict[str, Any]:
    """A circle as members see it."""
    rows = session.execute(
        select(CircleRole, Member.display_name).join(Member, Member.id == CircleRole.member_id)
        .where(CircleRole.circle_id == circle.id, Member.is_active).order_by(Member.display_name, CircleRole.role)
    ).all()
    thresholds = session.scalars(select(RoleThreshold).where(RoleThreshold.circle_id == circle.id)
                                 .order_by(RoleThreshold.role)).all()
    return {
        "id": circle.id, "name": circle.name, "description": circle.description,
        "members": [{"id": r.member_id, "name": name, "since": r.since.isoformat(), "source": r.source}
                    for r, name in rows if r.role == "member"],
        "roles": [{"member_id": r.member_id, "name": name, "role": r.role, "source": r.source}
                  for r, name in rows if r.role != "member"],
        "thresholds": {t.role: t.trusts for t in thresholds},
    }


def roles_by_decision_only(session: Session, cooperative_id: int) -> bool:
    """True when the cooperative grants roles only by decision (or by its members' trust)."""
    settings = session.scalar(select(Cooperative.settings).where(Cooperative.id == cooperative_id)) or {}
    return bool(settings.get("roles_by_decision_only"))


def create_circle(session: Session, *, actor: Member, data: CircleIn) -> Circle:
    """A new circle, made by a coordinator, with its founding members and role thresholds."""
    _require_member(actor)
    if not is_coordinator_of(actor, actor.cooperative_id):
        raise PermissionDenied("governance.coordinators_make_circles")
    import re

    problems = collector()
    name = data.name.strip()
    if not name:
        problems.add("name", "governance.name_empty")
    for role, trusts in data.thresholds.items():
        if not re.match(ROLE_NAME, role):
            problems.add("thresholds", "governance.role_name", role=role)
        elif not 1 <= trusts <= 1000:
            problems.add("thresholds", "governance.threshold_range", role=role, minimum=1, maximum=1000)
    founders = sorted(set(data.members))
    if founders:
        known = set(session.scalars(select(Member.id).where(
            Member.id.in_(founders), Member.cooperative_id == actor.cooperative_id, Member.is_active)))
        missing = [i for i in founders if i not in known]
        if missing:
            problems.add("members", "governance.no_members", members=missing)
    problems.raise_if_any()
    if founders and roles_by_decision_only(session, actor.cooperative_id):
        raise PermissionDenied("governance.roles_by_decision_only", field="members")
    if session.scalar(select(Circle.id).where(Circle.cooperative_id == actor.cooperative_id, Circle.name == name)):
        raise Conflict("governance.circle_exists", field="name", name=name)
    circle = Circle(cooperative_id=actor.cooperative_id, name=name, description=data.description.strip(),
                    created_by_id=actor.id)
    session.add(circle)
    session.flush()
    for role, trusts in sorted(data.thresholds.items()):
        session.add(RoleThreshold(circle_id=circle.id, role=role, trusts=trusts))
    for mid in founders:
        session.add(CircleRole(circle_id=circle.id, member_id=mid, role="member", source="founding"))
        session.add(RoleHistory(cooperative_id=circle.cooperative_id, member_id=mid, role="member",
                                circle_id=circle.id, action="granted", source="founding", actor_id=actor.id))
    session.flush()
    return circle


# --- who sees and takes part ----------------------------------------------------------------------------


def eligible_ids(session: Session, proposal: Proposal) -> set[int]:
    """The members who may take a position: the circle's, or every active member of the cooperative."""
    if proposal.participation == "circle":
        assert proposal.circle_id is not None
        return circle_member_ids(session, proposal.circle_id)
    return set(session.scalars(select(Member.id).where(
        Member.cooperative_id == proposal.cooperative_id, Member.is_active)))


def is_insider(session: Session, actor: Member | None, proposal: Proposal) -> bool:
    """True when the actor sees the proposal as a member (names, positions): the cooperative's
    members, or only the circle's for a circle-only proposal."""
    if not is_member_of(actor, proposal.cooperative_id):
        return False
    assert actor is not None
    if proposal.participation == "circle":
        return actor.id in circle_member_ids(session, proposal.circle_id or 0)
    return True


def _visible(session: Session, actor: Member | None, proposal_id: int) -> tuple[Proposal, bool]:
    p = session.get(Proposal, proposal_id)
    if p is None:
        raise NotFound("governance.no_proposal", field="proposal_id", proposal=proposal_id)
    insider = is_insider(session, actor, p)
    if not insider and not p.public:
        raise NotFound("governance.no_proposal", field="proposal_id", proposal=proposal_id)
    return p, insider


def phase(p: Proposal, now: datetime) -> str:
    """upcoming, open or closed."""
    if p.state == "closed":
        return "closed"
    return "upcoming" if now < p.opens_at else "open"


# --- proposals -------------------------------------------------------------------------------------------


def create_proposal(session: Session, *, actor: Member, data: ProposalIn, now: datetime | None = None) -> Proposal:
    """A new proposal, checked (times, quorum, method, circle, effect) before anything is written."""
    now = _now(now)
    _require_member(actor)
    coop_id = actor.cooperative_id
    problems = collector()
    title, text = data.title.strip(), data.text.strip()
    if not title:
        problems.add("title", "governance.title_empty")
    if not text:
        problems.add("text", "governance.text_empty")
    opens_at = data.opens_at or now
    if opens_at < now - PAST_TOLERANCE:
        problems.add("opens_at", "governance.opens_in_past", opens_at=opens_at)
    if data.closes_at <= now:
        problems.add("closes_at", "governance.closes_in_past", closes_at=data.closes_at)
    elif data.closes_at <= opens_at:
        problems.add("closes_at", "governance.closes_before_opens", opens_at=opens_at)
    elif data.closes_at - opens_at > MAX_DURATION:
        problems.add("closes_at", "governance.too_long", days=MAX_DURATION.days)
    circle = None
    if data.circle_id is not None:
        circle = session.get(Circle, data.circle_id)
        if circle is None or circle.cooperative_id != coop_id:
            problems.add("circle_id", "governance.no_circle", circle=data.circle_id)
            circle = None
    elif data.participation == "circle":
        problems.add("circle_id", "governance.circle_required")
    threshold = data.threshold
    if data.method == "vote":
        threshold = threshold or "simple"
    elif threshold is not None:
        problems.add("threshold", "governance.threshold_vote_only")
    options = [o.strip() for o in data.options]
    if data.method == "score":
        if not 2 <= len(options) <= 20:
            problems.add("options", "governance.options_count", minimum=2, maximum=20)
        elif any(not o or len(o) > 200 for o in options):
            problems.add("options", "governance.option_empty", maximum=200)
        elif len(set(options)) != len(options):
            problems.add("options", "governance.options_duplicate")
    elif options:
        problems.add("options", "governance.options_score_only")
    if data.effect is not None and data.method == "score":
        problems.add("effect", "governance.effect_score")
    problems.raise_if_any()
    if circle is not None and data.participation == "circle" and actor.id not in circle_member_ids(session, circle.id):
        raise PermissionDenied("governance.not_in_circle", field="circle_id", circle=circle.name)
    probe = Proposal(cooperative_id=coop_id, circle_id=circle.id if circle else None,
                     participation=data.participation)
    eligible = len(eligible_ids(session, probe))
    if data.quorum is not None and data.quorum > eligible:
        raise ValidationFailed("governance.quorum_above_eligible", field="quorum", quorum=data.quorum,
                               eligible=eligible)
    effect = None
    if data.effect is not None:
        effect = effects.check(session, cooperative_id=coop_id, participation=data.participation,
                               circle_id=circle.id if circle else None, effect=data.effect.model_dump())
    p = Proposal(
        cooperative_id=coop_id, circle_id=circle.id if circle else None, author_id=actor.id, title=title, text=text,
        method=data.method, participation=data.participation, opens_at=opens_at, closes_at=data.closes_at,
        quorum=data.quorum, public=data.public, options=options, threshold=threshold, effect=effect,
    )
    session.add(p)
    session.flush()
    _tell(session, p, "opened", [i for i in eligible_ids(session, p) if i != actor.id])
    return p


def _tell(session: Session, p: Proposal, event: str, recipients: Any) -> None:
    """Notify members of a proposal's opening or outcome (who may take part; who took part)."""
    params: dict[str, Any] = {"title": p.title, "closes_at": p.closes_at}
    if event == "closed":
        event = "passed" if (p.outcome or {}).get("passed") else "not_passed"
    notify(session, recipients=recipients, kind="proposal", code=f"notify.proposal_{event}", params=params,
           link=f"/app/decisions/{p.id}", dedupe=f"proposal:{p.id}:{event}")


def _lock(session: Session, proposal_id: int, *, share: bool = False) -> Proposal:
    """The proposal's row, locked (FOR SHARE or FOR UPDATE) and read afresh."""
    stmt = select(Proposal).where(Proposal.id == proposal_id).with_for_update(read=share)
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def get_proposal(session: Session, *, actor: Member | None, proposal_id: int, now: datetime | None = None) -> Proposal:
    """A proposal the actor may see; closed first when it is due (lazy close)."""
    now = _now(now)
    p, _ = _visible(session, actor, proposal_id)
    if p.state == "open" and p.closes_at <= now:
        # the system closes it, whoever reads it (anonymous too): as its cooperative (tenancy)
        with acting_cooperative(session, p.cooperative_id):
            p = close(session, actor=None, proposal_id=p.id, now=now)
    return p


def list_proposals(session: Session, *, actor: Member | None, state: str | None = None,
                   now: datetime | None = None, limit: int = 200) -> list[Proposal]:
    """The proposals the actor sees (anonymous: the public ones), open first, by closing time;
    the due ones are closed first."""
    now = _now(now)
    if state is not None and state not in ("open", "closed"):
        raise ValidationFailed("governance.state_filter", field="state", known=["open", "closed"])
    if is_member_of(actor, actor.cooperative_id if actor else 0):
        assert actor is not None
        mine = select(CircleRole.circle_id).where(CircleRole.member_id == actor.id, CircleRole.role == "member")
        own = and_(Proposal.cooperative_id == actor.cooperative_id,
                   or_(Proposal.participation == "all", Proposal.circle_id.in_(mine)))
        where = [or_(own, Proposal.public)]
    else:
        where = [Proposal.public]
    close_due(session, now=now, where=where)
    stmt = select(Proposal).where(*where)
    if state is not None:
        stmt = stmt.where(Proposal.state == state)
    stmt = stmt.order_by(Proposal.state.desc(), Proposal.closes_at, Proposal.id).limit(limit)
    return list(session.scalars(stmt))


def amend(session: Session, *, actor: Member, proposal_id: int, patch: ProposalPatch,
          now: datetime | None = None) -> Proposal:
    """The proposer changes the title or text while it is open; the change is recorded and shown
    to everyone who already took a position."""
    now = _now(now)
    p = get_proposal(session, actor=actor, proposal_id=proposal_id, now=now)
    if not is_insider(session, actor, p):
        raise NotFound("governance.no_proposal", field="proposal_id", proposal=proposal_id)
    if p.author_id != actor.id:
        raise PermissionDenied("governance.author_only")
    p = _lock(session, p.id)
    if p.state == "closed":
        raise Conflict("governance.closed", field="proposal_id", closed_at=p.closed_at)
    title = patch.title.strip() if patch.title is not None else p.title
    text = patch.text.strip() if patch.text is not None else p.text
    problems = collector()
    if not title:
        problems.add("title", "governance.title_empty")
    if not text:
        problems.add("text", "governance.text_empty")
    problems.raise_if_any()
    if (title, text) == (p.title, p.text):
        raise ValidationFailed("governance.amend_nothing", field="text")
    session.add(Amendment(proposal_id=p.id, version=p.version + 1, author_id=actor.id, old_title=p.title,
                          new_title=title, old_text=p.text, new_text=text, note=patch.note.strip()))
    p.title, p.text, p.version = title, text, p.version + 1
    session.flush()
    return p


def take_position(session: Session, *, actor: Member, proposal_id: int, data: PositionIn,
                  now: datetime | None = None) -> Position:
    """My position (new or changed) while the proposal is open; an objection needs a reason."""
    now = _now(now)
    _require_member(actor)
    p = get_proposal(session, actor=actor, proposal_id=proposal_id, now=now)
    if not is_member_of(actor, p.cooperative_id):
        raise PermissionDenied("governance.not_eligible")
    p = _lock(session, p.id, share=True)  # a close waits for this position, or this sees the close
    if p.state == "closed" or p.closes_at <= now:
        raise Conflict("governance.closed", field="proposal_id", closed_at=p.closed_at or p.closes_at)
    if now < p.opens_at:
        raise Conflict("governance.not_open_yet", field="proposal_id", opens_at=p.opens_at)
    if actor.id not in eligible_ids(session, p):
        raise PermissionDenied("governance.not_eligible")
    reason = data.reason.strip()
    scores = None
    if p.method == "score":
        if data.choice is not None:
            raise ValidationFailed("governance.choice_for_method", field="choice", method=p.method, allowed=[])
        if data.scores is None or len(data.scores) != len(p.options):
            raise ValidationFailed("governance.scores_length", field="scores", options=len(p.options))
        if any(s < 0 or s > methods.MAX_SCORE for s in data.scores):
            raise ValidationFailed("governance.scores_range", field="scores", minimum=0, maximum=methods.MAX_SCORE)
        scores = list(data.scores)
    else:
        allowed = CHOICES[p.method]
        if data.choice not in allowed:
            raise ValidationFailed("governance.choice_for_method", field="choice", method=p.method,
                                   allowed=list(allowed))
        if data.scores is not None:
            raise ValidationFailed("governance.scores_score_only", field="scores")
        if data.choice in ("objection", "concern") and not reason:
            raise ValidationFailed("governance.reason_required", field="reason", choice=data.choice)
    values = {"proposal_id": p.id, "member_id": actor.id, "choice": data.choice if scores is None else None,
              "scores": scores, "reason": reason, "version": p.version}
    stmt = pg_insert(Position).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_governance_positions_member",
        set_={"choice": stmt.excluded.choice, "scores": stmt.excluded.scores, "reason": stmt.excluded.reason,
              "version": stmt.excluded.version, "updated_at": func.now()},
    ).returning(Position.id)
    position_id = session.execute(stmt).scalar_one()
    return session.scalars(select(Position).where(Position.id == position_id)
                           .execution_options(populate_existing=True)).one()


# --- the close ---------------------------------------------------------------------------------------------


def _outcome(session: Session, p: Proposal) -> dict[str, Any]:
    eligible = eligible_ids(session, p)
    rows = session.scalars(select(Position).where(Position.proposal_id == p.id).order_by(Position.id)).all()
    counted = [methods.Counted(r.choice, r.scores, r.reason) for r in rows if r.member_id in eligible]
    out = methods.count(p.method, counted, quorum=p.quorum, threshold=p.threshold, options=p.options)
    out["eligible"] = len(eligible)
    out["method"] = p.method
    out["threshold"] = p.threshold
    return out


def close(session: Session, *, actor: Member | None, proposal_id: int, now: datetime | None = None) -> Proposal:
    """Close a proposal once: count, record the outcome, apply its effect when it passed, all in this
    transaction. A due proposal closes for anyone (``actor`` None: the schedule or a lazy read); before
    its closing time only its author may close it early. A closed one is returned unchanged."""
    now = _now(now)
    if actor is not None:
        p, insider = _visible(session, actor, proposal_id)
        if p.state == "open" and now < p.closes_at and (not insider or p.author_id != actor.id):
            if not insider:
                raise NotFound("governance.no_proposal", field="proposal_id", proposal=proposal_id)
            raise PermissionDenied("governance.close_early_author_only", closes_at=p.closes_at)
    p = _lock(session, proposal_id)
    if p.state == "closed":
        return p
    outcome = _outcome(session, p)
    if p.effect is not None:
        if outcome["passed"]:
            outcome["effect"] = effects.apply(session, p)
        else:
            outcome["effect"] = {"type": p.effect["type"], "applied": False, "code": "governance.effect_not_passed",
                                 "params": {}}
    p.outcome = outcome
    p.state = "closed"
    p.closed_at = now
    p.closed_by_id = actor.id if actor is not None else None
    session.flush()
    took_part = set(session.scalars(select(Position.member_id).where(Position.proposal_id == p.id)))
    _tell(session, p, "closed", sorted(took_part | {p.author_id}))
    return p


def close_due(session: Session, *, now: datetime | None = None, where: list | None = None,
              limit: int = 500) -> list[int]:
    """Close every open proposal whose closing time has passed (oldest first); the ids closed here."""
    now = _now(now)
    due = select(Proposal.id, Proposal.cooperative_id).where(
        Proposal.state == "open", Proposal.closes_at <= now, *(where or []))
    rows = session.execute(due.order_by(Proposal.closes_at, Proposal.id).limit(limit)).all()
    closed = []
    for pid, coop in rows:
        with acting_cooperative(session, coop):  # the system closes it, as its cooperative (tenancy)
            p = _lock(session, pid)
            if p.state == "open":
                close(session, actor=None, proposal_id=pid, now=now)
                closed.append(pid)
    return closed


# --- shaping ------------------------------------------------------------------------------------------------


def _iso(v: datetime | date | None) -> str | None:
    return v.isoformat() if v is not None else None


PUBLIC_OUTCOME = ("passed", "why", "counts", "totals", "winner", "tie", "participants", "quorum", "quorum_met",
                  "eligible", "reasons", "method", "threshold")


def public_outcome(outcome: dict[str, Any] | None) -> dict[str, Any] | None:
    """The outcome as anyone may read it: counts and reasons, never a name nor a member's id."""
    if outcome is None:
        return None
    out = {k: outcome[k] for k in PUBLIC_OUTCOME if k in outcome}
    if "effect" in outcome:
        out["effect"] = {"type": outcome["effect"]["type"], "applied": outcome["effect"]["applied"]}
    return out


def proposal_out(session: Session, p: Proposal, *, actor: Member | None, now: datetime | None = None,
                 detail: bool = True) -> dict[str, Any]:
    """A proposal as the actor may see it: members get names and positions; anyone else (a public
    proposal) gets the text, the counts and the reasons, never who said what."""
    now = _now(now)
    insider = is_insider(session, actor, p)
    circle = session.get(Circle, p.circle_id) if p.circle_id else None
    eligible = eligible_ids(session, p)
    out: dict[str, Any] = {
        "id": p.id, "title": p.title, "text": p.text, "method": p.method, "participation": p.participation,
        "circle": {"id": circle.id, "name": circle.name} if circle else None,
        "opens_at": _iso(p.opens_at), "closes_at": _iso(p.closes_at), "quorum": p.quorum, "public": p.public,
        "options": p.options, "threshold": p.threshold, "version": p.version, "state": p.state,
        "phase": phase(p, now), "closed_at": _iso(p.closed_at),
        "effect": p.effect if insider else ({"type": p.effect["type"]} if p.effect else None),
        "outcome": p.outcome if insider else public_outcome(p.outcome),
        "eligible": len(eligible),
        "positions_count": session.scalar(select(func.count()).where(Position.proposal_id == p.id)) or 0,
    }
    amendments = session.scalars(select(Amendment).where(Amendment.proposal_id == p.id)
                                 .order_by(Amendment.version)).all() if detail else []
    out["amendments"] = [{"version": a.version, "at": _iso(a.at), "old_title": a.old_title,
                          "new_title": a.new_title, "old_text": a.old_text, "new_text": a.new_text,
                          "note": a.note} for a in amendments]
    if not insider:
        return out
    assert actor is not None
    out["author"] = {"id": p.author_id, "name": session.get(Member, p.author_id).display_name}  # type: ignore[union-attr]
    out["may_take_part"] = p.state == "open" and actor.id in eligible
    mine = session.scalar(select(Position).where(Position.proposal_id == p.id, Position.member_id == actor.id))
    out["my_position"] = None if mine is None else {
        "choice": mine.choice, "scores": mine.scores, "reason": mine.reason, "version": mine.version,
        "updated_at": _iso(mine.updated_at), "amended_since": mine.version < p.version,
    }
    if detail:
        rows = session.execute(
            select(Position, Member.display_name).join(Member, Member.id == Position.member_id)
            .where(Position.proposal_id == p.id).order_by(Position.updated_at, Position.id)).all()
        out["positions"] = [{"member": {"id": r.member_id, "name": name}, "choice": r.choice, "scores": r.scores,
                             "reason": r.reason, "version": r.version, "updated_at": _iso(r.updated_at)}
                            for r, name in rows]
    return out


# --- agreements ----------------------------------------------------------------------------------------------


def list_agreements(session: Session, *, actor: Member, due_within_days: int | None = None,
                    today: date | None = None) -> list[Agreement]:
    """My cooperative's agreements, by review date; with ``due_within_days``, those due for review by then
    (overdue included). Due proposals of the cooperative are closed first (an adoption may be due)."""
    _require_member(actor)
    close_due(session, where=[Proposal.cooperative_id == actor.cooperative_id])
    stmt = select(Agreement).where(Agreement.cooperative_id == actor.cooperative_id)
    if due_within_days is not None:
        if not 0 <= due_within_days <= 3660:
            raise ValidationFailed("governance.due_range", field="due_within_days", minimum=0, maximum=3660)
        limit = (today or date.today()) + timedelta(days=due_within_days)
        stmt = stmt.where(Agreement.review_on.is_not(None), Agreement.review_on <= limit)
    return list(session.scalars(stmt.order_by(Agreement.review_on.asc().nulls_last(), Agreement.id)))


def agreement_out(session: Session, a: Agreement, *, today: date | None = None) -> dict[str, Any]:
    """An agreement with the decision that adopted it and its revisions."""
    today = today or date.today()
    circle = session.get(Circle, a.circle_id) if a.circle_id else None
    adopted = session.get(Proposal, a.adopted_by_id)
    revisions = session.scalars(select(AgreementRevision).where(AgreementRevision.agreement_id == a.id)
                                .order_by(AgreementRevision.version)).all()
    return {
        "id": a.id, "title": a.title, "text": a.text, "version": a.version,
        "circle": {"id": circle.id, "name": circle.name} if circle else None,
        "review_on": _iso(a.review_on), "due_for_review": a.review_on is not None and a.review_on <= today,
        "adopted_by": {"proposal_id": a.adopted_by_id, "title": adopted.title if adopted else None,
                       "closed_at": _iso(adopted.closed_at) if adopted else None},
        "revisions": [{"version": r.version, "title": r.title, "review_on": _iso(r.review_on),
                       "proposal_id": r.proposal_id, "at": _iso(r.at)} for r in revisions],
    }


def agreements_calendar(session: Session, *, actor: Member) -> bytes:
    """The review dates of my cooperative's agreements as iCalendar (one all-day event each)."""
    from icalendar import Calendar, Event

    _require_member(actor)
    coop = session.get(Cooperative, actor.cooperative_id)
    assert coop is not None
    cal = Calendar()
    cal.add("prodid", "-//commons-map//governance//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{coop.name} – accords à revoir / agreements to review")
    cal.add("x-wr-timezone", coop.timezone)
    for a in list_agreements(session, actor=actor):
        if a.review_on is None:
            continue
        ev = Event()
        ev.add("uid", f"agreement-{a.id}-v{a.version}@commons-map")
        ev.add("dtstamp", a.updated_at.astimezone(UTC))
        ev.add("dtstart", a.review_on)
        ev.add("dtend", a.review_on + timedelta(days=1))
        ev.add("summary", f"Revoir l'accord / Review the agreement: {a.title}")
        ev.add("description", a.text[:2000])
        ev.add("transp", "TRANSPARENT")
        cal.add_component(ev)
    return cal.to_ical()


# --- trust -----------------------------------------------------------------------------------------------------


def _trust_target(session: Session, actor: Member, receiver: str | int, circle_id: int,
                  role: str) -> tuple[Member, Circle, RoleThreshold]:
    from commons_map.people.service import get_member

    _require_member(actor)
    import re

    if not re.match(ROLE_NAME, role):
        raise ValidationFailed("governance.role_name", field="role", role=role.replace("\x00", ""))
    if isinstance(receiver, str) and "\x00" in receiver:
        raise NotFound("governance.no_member", field="member", member=receiver.replace("\x00", ""))
    try:
        member = get_member(session, cooperative_id=actor.cooperative_id, username_or_id=receiver)
    except NotFound:
        raise NotFound("governance.no_member", field="member", member=str(receiver)) from None
    if not member.is_active:
        raise NotFound("governance.no_member", field="member", member=str(receiver))
    circle = get_circle(session, actor=actor, circle_id=circle_id)
    session.execute(select(Circle.id).where(Circle.id == circle.id).with_for_update())  # one recount at a time
    if actor.id not in circle_member_ids(session, circle.id):
        raise PermissionDenied("governance.not_in_circle", field="circle_id", circle=circle.name)
    if member.id == actor.id:
        raise ValidationFailed("governance.trust_self", field="member")
    threshold = session.get(RoleThreshold, (circle.id, role))
    if threshold is None:
        raise ValidationFailed("governance.no_threshold", field="role", role=role, circle=circle.name)
    return member, circle, threshold


def _recount(session: Session, *, actor: Member, member: Member, circle: Circle, threshold: RoleThreshold) -> dict:
    """Grant the role when the trusts reach the threshold, withdraw a role that came by trust below it."""
    givers = circle_member_ids(session, circle.id)
    trusts = session.scalar(select(func.count()).select_from(Trust).where(
        Trust.circle_id == circle.id, Trust.receiver_id == member.id, Trust.role == threshold.role,
        Trust.giver_id.in_(givers))) or 0
    held = session.get(CircleRole, (circle.id, member.id, threshold.role))
    change = None
    if held is None and trusts >= threshold.trusts:
        session.add(CircleRole(circle_id=circle.id, member_id=member.id, role=threshold.role, source="trust"))
        change = "granted"
    elif held is not None and held.source == "trust" and trusts < threshold.trusts:
        session.delete(held)
        change = "withdrawn"
    if change:
        session.add(RoleHistory(cooperative_id=circle.cooperative_id, member_id=member.id, role=threshold.role,
                                circle_id=circle.id, action=change, source="trust", actor_id=actor.id,
                                trusts=trusts))
    session.flush()
    holds = session.get(CircleRole, (circle.id, member.id, threshold.role)) is not None
    return {"member_id": member.id, "circle_id": circle.id, "role": threshold.role, "trusts": trusts,
            "threshold": threshold.trusts, "holds_role": holds, "change": change}


def give_trust(session: Session, *, actor: Member, receiver: str | int, circle_id: int, role: str = "member") -> dict:
    """I trust a member for a role of my circle; at the circle's threshold the role comes."""
    member, circle, threshold = _trust_target(session, actor, receiver, circle_id, role)
    inserted = session.execute(pg_insert(Trust).values(
        giver_id=actor.id, receiver_id=member.id, circle_id=circle.id, role=role,
    ).on_conflict_do_nothing().returning(Trust.giver_id)).first()
    if inserted is not None:
        session.add(RoleHistory(cooperative_id=circle.cooperative_id, member_id=member.id, role=role,
                                circle_id=circle.id, action="trust_given", source="trust", actor_id=actor.id))
    return _recount(session, actor=actor, member=member, circle=circle, threshold=threshold)


def withdraw_trust(session: Session, *, actor: Member, receiver: str | int, circle_id: int,
                   role: str = "member") -> dict:
    """I take my trust back; below the threshold a role that came by trust goes."""
    member, circle, threshold = _trust_target(session, actor, receiver, circle_id, role)
    gone = session.execute(delete(Trust).where(
        Trust.giver_id == actor.id, Trust.receiver_id == member.id, Trust.circle_id == circle.id,
        Trust.role == role).returning(Trust.giver_id)).first()
    if gone is None:
        raise NotFound("governance.no_trust", field="member", member=member.display_name, role=role)
    session.add(RoleHistory(cooperative_id=circle.cooperative_id, member_id=member.id, role=role,
                            circle_id=circle.id, action="trust_withdrawn", source="trust", actor_id=actor.id))
    return _recount(session, actor=actor, member=member, circle=circle, threshold=threshold)


def role_history(session: Session, *, actor: Member, member_id: int | None = None) -> list[dict[str, Any]]:
    """Grants and withdrawals of roles and trust in my cooperative, newest first."""
    _require_member(actor)
    stmt = select(RoleHistory, Member.display_name).join(Member, Member.id == RoleHistory.member_id).where(
        RoleHistory.cooperative_id == actor.cooperative_id)
    if member_id is not None:
        stmt = stmt.where(RoleHistory.member_id == member_id)
    rows = session.execute(stmt.order_by(RoleHistory.at.desc(), RoleHistory.id.desc()).limit(500)).all()
    return [{"at": _iso(h.at), "member": {"id": h.member_id, "name": name}, "role": h.role, "circle_id": h.circle_id,
             "commons_id": h.commons_id, "action": h.action, "source": h.source, "proposal_id": h.proposal_id,
             "trusts": h.trusts} for h, name in rows]
