"""Helpers shared by the reservation tests (no tests here): a fresh reservable tool or place,
times relative to now in the cooperative's zone, and counting what was written."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.demo.load import offset
from commons_map.people.models import Member
from commons_map.register.models import Commons
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons
from commons_map.reservations import service
from commons_map.reservations.models import Reservation, ReservationEvent, WaitingEntry
from commons_map.reservations.schemas import RulesIn

PARIS = ZoneInfo("Europe/Paris")


def day(days_from_now: int, hour: int = 10, minute: int = 0, weekday: int | None = None) -> datetime:
    """A local Paris time ``days_from_now`` days ahead (moved to the next ``weekday`` if given)."""
    d = datetime.now(PARIS) + timedelta(days=days_from_now)
    if weekday is not None:
        d += timedelta(days=(weekday - d.weekday()) % 7)
    return d.replace(hour=hour, minute=minute, second=0, microsecond=0)


def shed(db: Session) -> Commons:
    return db.scalars(select(Commons).where(Commons.external_id == "demo:shed")).one()


def demo(db: Session, key: str) -> Commons:
    return db.scalars(select(Commons).where(Commons.external_id == f"demo:{key}")).one()


def new_tool(db: Session, people, *, name: str = "Grelinette d'essai", steward: Member | None = None,
             rules: RulesIn | None = None, visibility: str = "members", reservable: bool = True) -> Commons:
    """A new tool kept at the shed, stewarded by ``steward`` (mamadou by default), made reservable."""
    steward = steward or people.steward
    tool = create_commons(db, actor=people.coordinator, data=CommonsIn(
        kind="tool", name=name, kept_at_id=shed(db).id, visibility=visibility, steward_ids=[steward.id]))
    if reservable:
        service.set_rules(db, actor=steward, resource_id=tool.id, data=rules or RulesIn(
            min_minutes=60, max_minutes=3 * 24 * 60, max_days_ahead=30, buffer_minutes=30,
            max_active_per_member=2))
    return tool


def new_place(db: Session, people, *, kind: str = "kitchen", rules: RulesIn | None = None,
              east: float = 5000, north: float = 0) -> Commons:
    """A new place with its own point, stewarded by mamadou, made reservable."""
    place = create_commons(db, actor=people.coordinator, data=CommonsIn(
        kind=kind, name=f"{kind} d'essai", visibility="public", steward_ids=[people.steward.id],
        geometry={"type": "Point", "coordinates": list(offset(east, north))}))
    service.set_rules(db, actor=people.steward, resource_id=place.id, data=rules or RulesIn(
        min_minutes=60, max_minutes=8 * 60, max_days_ahead=60, buffer_minutes=30, max_active_per_member=2,
        opening_hours={"mon": [["08:00", "12:00"], ["14:00", "22:00"]], "tue": [["08:00", "22:00"]],
                       "wed": [["08:00", "22:00"]], "thu": [["08:00", "22:00"]], "fri": [["08:00", "22:00"]],
                       "sat": [["09:00", "18:00"]]}))
    return place


def written(db: Session) -> tuple[int, int, int]:
    """How many reservations, events and waiting entries exist (to prove nothing was written)."""
    db.flush()
    return (
        db.scalar(select(func.count()).select_from(Reservation)),
        db.scalar(select(func.count()).select_from(ReservationEvent)),
        db.scalar(select(func.count()).select_from(WaitingEntry)),
    )
