"""Periodic notifications: return reminders (a day before the end) and overdue returns.

Overdue is derived, never stored (``reservations.service.is_overdue``: checked out and past its
end), so a periodic pass finds them; the dedupe key makes each reminder go out once per booking.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.notify.service import notify
from commons_map.register.models import Commons
from commons_map.reservations.models import Reservation

AHEAD = timedelta(hours=24)


def remind(session: Session, *, now: datetime | None = None) -> int:
    """Notify the members whose checked-out booking ends within a day, or is overdue; how many."""
    now = now or datetime.now(UTC)
    rows = session.execute(
        select(Reservation, Commons.name).join(Commons, Commons.id == Reservation.resource_id)
        .where(Reservation.state == "checked_out", Reservation.member_id.is_not(None),
               Reservation.ends_at.is_not(None), Reservation.ends_at < now + AHEAD)
    ).all()
    made = 0
    for r, name in rows:
        late = r.ends_at < now
        kind = "reservation_overdue" if late else "return_reminder"
        made += len(notify(session, recipients=[r.member_id], kind=kind, code=f"notify.{kind}",
                           params={"resource": name, "ends_at": r.ends_at}, link=f"/reservations#r{r.id}",
                           dedupe=f"reservation:{r.id}:{'overdue' if late else 'reminder'}"))
    return made
