"""Periodic notifications, from ``commons-map notify remind`` (cron, or each pass of the sender's loop).

- return reminders (a checked-out booking ends within a day) and overdue returns (past its end:
  overdue is derived, never stored, see ``reservations.service.is_overdue``);
- proposals closing within a day, to who may take part and has not yet;
- agreements due for review (review date within :data:`REVIEW_AHEAD`, or past), to the agreement's
  circle, or to the cooperative's coordinators for an agreement of the whole cooperative.

Each notification's dedupe key names its event (the booking's reminder, the proposal's closing,
the agreement's review date), so a pass run twice, or by two machines at once, notifies once.
A revised review date is a new event: it is announced again when it comes near.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.notify.service import notify
from commons_map.people.models import Member, MemberRole
from commons_map.register.models import Commons

AHEAD = timedelta(hours=24)
"""Return reminders and closing proposals: this long before the end."""
REVIEW_AHEAD = timedelta(days=14)
"""Agreements: announced this long before their review date."""


@dataclass
class Reminded:
    """How many notifications each periodic check made."""

    returns: int = 0
    overdue: int = 0
    closing: int = 0
    reviews: int = 0

    @property
    def total(self) -> int:
        return self.returns + self.overdue + self.closing + self.reviews


def remind(session: Session, *, now: datetime | None = None) -> Reminded:
    """Every periodic notification due at ``now``; how many were made (0 for what was told already)."""
    now = now or datetime.now(UTC)
    out = Reminded()
    out.returns, out.overdue = _returns(session, now)
    out.closing = _closing_proposals(session, now)
    out.reviews = _reviews(session, now)
    return out


def _returns(session: Session, now: datetime) -> tuple[int, int]:
    from commons_map.reservations.models import Reservation

    rows = session.execute(
        select(Reservation, Commons.name).join(Commons, Commons.id == Reservation.resource_id)
        .where(Reservation.state == "checked_out", Reservation.member_id.is_not(None),
               Reservation.ends_at.is_not(None), Reservation.ends_at < now + AHEAD)
        .order_by(Reservation.id)
    ).all()
    made = {"reminder": 0, "overdue": 0}
    for r, name in rows:
        event = "overdue" if r.ends_at < now else "reminder"
        kind = "reservation_overdue" if event == "overdue" else "return_reminder"
        made[event] += len(notify(session, recipients=[r.member_id], kind=kind, code=f"notify.{kind}",
                                  params={"resource": name, "ends_at": r.ends_at}, link="/app/reservations",
                                  dedupe=f"reservation:{r.id}:{event}"))
    return made["reminder"], made["overdue"]


def _closing_proposals(session: Session, now: datetime) -> int:
    from commons_map.governance.models import Position, Proposal
    from commons_map.governance.service import eligible_ids

    proposals = session.scalars(
        select(Proposal).where(Proposal.state == "open", Proposal.opens_at <= now, Proposal.closes_at > now,
                               Proposal.closes_at <= now + AHEAD).order_by(Proposal.closes_at, Proposal.id)
    ).all()
    made = 0
    for p in proposals:
        took_part = set(session.scalars(select(Position.member_id).where(Position.proposal_id == p.id)))
        waiting = sorted(eligible_ids(session, p) - took_part - {p.author_id})
        made += len(notify(session, recipients=waiting, kind="proposal_closing", code="notify.proposal_closing",
                           params={"title": p.title, "closes_at": p.closes_at}, link=f"/app/decisions/{p.id}",
                           dedupe=f"proposal:{p.id}:closing"))
    return made


def _reviews(session: Session, now: datetime) -> int:
    from commons_map.governance.models import Agreement
    from commons_map.governance.service import circle_member_ids

    today = now.date()
    agreements = session.scalars(
        select(Agreement).where(Agreement.review_on.is_not(None),
                                Agreement.review_on <= (now + REVIEW_AHEAD).date()).order_by(Agreement.id)
    ).all()
    made = 0
    for a in agreements:
        assert a.review_on is not None
        if a.circle_id is not None:
            recipients = sorted(circle_member_ids(session, a.circle_id))
        else:
            recipients = list(session.scalars(
                select(Member.id).join(MemberRole, MemberRole.member_id == Member.id)
                .where(Member.cooperative_id == a.cooperative_id, MemberRole.role == "coordinator")
                .order_by(Member.id)))
        code = "notify.agreement_review_passed" if a.review_on < today else "notify.agreement_review"
        made += len(notify(session, recipients=recipients, kind="agreement_review", code=code,
                           params={"title": a.title, "review_on": a.review_on},
                           link="/app/agreements",
                           dedupe=f"agreement:{a.id}:review:{a.review_on.isoformat()}"))
    return made
