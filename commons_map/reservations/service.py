"""The rules of reservations: who may book what, when, and the guarantee of no double booking.

The service checks every rule first, to answer with a message a member understands; the
database has the last word. Each insert runs in a SAVEPOINT, and an exclusion violation
(SQLSTATE 23P01, from ``ex_reservations_no_overlap``) becomes a Conflict naming the interval
that was taken first, while the caller's transaction stays usable.

Every service takes ``now`` (default: the clock) so the CLI, the demo and the tests can act
at a given moment; no rule reads the clock elsewhere.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Float, Integer, and_, cast, func, literal, null, or_, select
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.notify.service import notify
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_member_of, require_member
from commons_map.register.models import Commons, CommonsHistory, CommonsKind, Steward
from commons_map.register.service import can_edit, get_commons, get_kind, visible_clause
from commons_map.reservations.models import (
    ACTIVE_STATES,
    BOOKING_ACTIVE,
    WEEKDAYS,
    CalendarToken,
    Reservation,
    ReservationEvent,
    ResourceRules,
    WaitingEntry,
)
from commons_map.reservations.schemas import (
    RulesIn,
    format_opening_hours,
    minutes_to_hhmm,
    parse_opening_hours,
)
from commons_map.tenancy import act_for_member, member_id_by

EXCLUSION = "ex_reservations_no_overlap"
# A member may collect a confirmed booking this long before it starts.
EARLY_CHECKOUT = timedelta(hours=1)
# A confirmed booking not collected this long after its start may be marked a no-show.
NO_SHOW_GRACE = timedelta(minutes=30)
MAX_WINDOW = timedelta(days=92)
NOW_GRACE = timedelta(minutes=5)
"""A start this close behind the clock is "now": a form gives the time to the minute, and a phone's
clock or the trip to the server puts "now" a little behind the server's."""
UNREASONABLE_STATES = ("out_of_service", "lost")
# A lock namespace for pg_advisory_xact_lock(namespace, member_id): one member's bookings
# are counted against the cap one at a time.
CAP_LOCK = 7301
# pg_advisory_xact_lock(namespace, resource_id): one resource's writers, one at a time.
RESOURCE_LOCK = 7302


# --- small helpers ----------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    _aware(now, "now")
    return now


def _aware(value: datetime | None, field: str) -> datetime | None:
    """Refuse a naive datetime, naming the field."""
    if value is not None and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None):
        raise ValidationFailed("reservations.naive_datetime", field=field, value=value.isoformat())
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(session: Session, r: Reservation, actor: Member | None, action: str, **changes: Any) -> None:
    session.add(ReservationEvent(
        reservation_id=r.id, member_id=actor.id if actor else None, action=action,
        changes={k: _iso(v) if isinstance(v, datetime) else v for k, v in changes.items()},
    ))


def _timezone(session: Session, commons: Commons) -> ZoneInfo:
    coop = session.get(Cooperative, commons.cooperative_id)
    return ZoneInfo(coop.timezone if coop and coop.timezone else "Europe/Paris")


@dataclass(frozen=True)
class Near:
    """Within ``distance_m`` metres of a point (WGS84)."""

    lon: float
    lat: float
    distance_m: float


# --- resources and their rules ----------------------------------------------------------------


def _resource(session: Session, actor: Member | None, resource_id: int) -> Commons:
    """The commons, when the actor may see it (NotFound naming resource_id otherwise)."""
    try:
        return get_commons(session, actor=actor, commons_id=resource_id)
    except NotFound as exc:
        raise NotFound("reservations.no_resource", field="resource_id", resource_id=resource_id) from exc


def _require_manager(actor: Member | None, commons: Commons, code: str) -> Member:
    """The actor, when they steward ``commons`` or coordinate; PermissionDenied with ``code`` otherwise."""
    if actor is None or not can_edit(actor, commons):
        raise PermissionDenied(code, name=commons.name)
    return actor


def rules_out(session: Session, rules: ResourceRules) -> dict[str, Any]:
    """The rules as the API shows them (opening hours as HH:MM, the time zone named)."""
    commons = session.get(Commons, rules.commons_id)
    assert commons is not None
    return {
        "resource_id": rules.commons_id,
        "enabled": rules.enabled,
        "booking_mode": rules.booking_mode,
        "min_minutes": rules.min_minutes,
        "max_minutes": rules.max_minutes,
        "max_days_ahead": rules.max_days_ahead,
        "buffer_minutes": rules.buffer_minutes,
        "max_active_per_member": rules.max_active_per_member,
        "opening_hours": format_opening_hours(rules.opening_hours),
        "contribution_minutes": rules.contribution_minutes,
        "offer_hours": rules.offer_hours,
        "timezone": str(_timezone(session, commons)),
    }


def set_rules(session: Session, *, actor: Member | None, resource_id: int, data: RulesIn) -> ResourceRules:
    """Make a commons reservable, or change its rules (its stewards and the coordinators)."""
    commons = _resource(session, actor, resource_id)
    actor = _require_manager(actor, commons, "reservations.managers_set_rules")
    if commons.archived_at is not None:
        raise ValidationFailed("reservations.archived", field="resource_id", name=commons.name)
    if data.max_minutes < data.min_minutes:
        raise ValidationFailed("reservations.max_shorter_than_min", field="max_minutes",
                               max_minutes=data.max_minutes, min_minutes=data.min_minutes)
    values = data.model_dump()
    values["opening_hours"] = parse_opening_hours(data.opening_hours)
    rules = session.get(ResourceRules, commons.id)
    before: dict[str, Any] = {}
    if rules is None:
        rules = ResourceRules(commons_id=commons.id)
        session.add(rules)
        action = "made_reservable"
    else:
        before = {k: getattr(rules, k) for k in values}
        before["enabled"] = rules.enabled
        action = "booking_rules_changed"
    for k, v in values.items():
        setattr(rules, k, v)
    rules.enabled = True
    rules.updated_by = actor.id
    changes = {k: [before.get(k), v] for k, v in {**values, "enabled": True}.items() if before.get(k) != v}
    if changes:
        session.add(CommonsHistory(commons_id=commons.id, member_id=actor.id, action=action, changes=changes))
    session.flush()
    return rules


def disable_rules(session: Session, *, actor: Member | None, resource_id: int) -> ResourceRules:
    """Stop new bookings of a resource (existing ones stay)."""
    commons = _resource(session, actor, resource_id)
    actor = _require_manager(actor, commons, "reservations.managers_change_rules")
    rules = session.get(ResourceRules, commons.id)
    if rules is None:
        raise NotFound("reservations.not_reservable", field="resource_id", name=commons.name)
    if rules.enabled:
        rules.enabled = False
        rules.updated_by = actor.id
        session.add(CommonsHistory(commons_id=commons.id, member_id=actor.id, action="made_unreservable",
                                   changes={"enabled": [True, False]}))
        session.flush()
    return rules


def get_rules(session: Session, *, actor: Member | None, resource_id: int) -> ResourceRules:
    """The booking rules of a resource the actor may see; NotFound when it is not reservable."""
    commons = _resource(session, actor, resource_id)
    rules = session.get(ResourceRules, commons.id)
    if rules is None or not rules.enabled:
        raise NotFound("reservations.not_reservable", field="resource_id", name=commons.name)
    return rules


def _bookable(session: Session, actor: Member | None, resource_id: int) -> tuple[Commons, ResourceRules]:
    """The resource and its rules, when the actor may book it at all."""
    commons = _resource(session, actor, resource_id)
    require_member(actor, commons.cooperative_id)
    if commons.archived_at is not None:
        raise ValidationFailed("reservations.archived", field="resource_id", name=commons.name)
    rules = session.get(ResourceRules, commons.id)
    if rules is None or not rules.enabled:
        raise ValidationFailed("reservations.not_reservable", field="resource_id", name=commons.name)
    if commons.state in UNREASONABLE_STATES:
        raise ValidationFailed("reservations.unusable", field="resource_id", name=commons.name,
                               state=commons.state.replace("_", " "))
    return commons, rules


# --- the rules of a booking -------------------------------------------------------------------


def _opening_problem(
    rules: ResourceRules, tz: ZoneInfo, starts_at: datetime, ends_at: datetime
) -> tuple[str, dict[str, Any]] | None:
    """Why [starts_at, ends_at) is outside the opening hours (a code and its parameters), or None when it fits."""
    hours = rules.opening_hours
    if hours is None:
        return None
    ls, le = starts_at.astimezone(tz), ends_at.astimezone(tz)
    day = WEEKDAYS[ls.weekday()]
    start_min = ls.hour * 60 + ls.minute + ls.second / 60
    midnight = ls.replace(hour=0, minute=0, second=0, microsecond=0)
    # Minutes from the local start day's midnight (wall clock), so a booking ending at
    # midnight counts as 24:00 and one spilling into the next day goes past 1440.
    end_min = (le.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds() / 60
    windows = hours.get(day, [])
    if any(a <= start_min and end_min <= b for a, b in windows):
        return None
    params: dict[str, Any] = {"day": ls.date(), "start": f"{ls:%H:%M}", "end": f"{le:%H:%M}", "timezone": tz.key}
    if not windows:
        return "reservations.closed_day", params
    params["hours"] = [f"{minutes_to_hhmm(a)}-{minutes_to_hhmm(b)}" for a, b in windows]
    return "reservations.outside_hours", params


def booked_minutes(starts_at: datetime, ends_at: datetime, tz: ZoneInfo) -> tuple[float, float]:
    """The length of a booking in minutes two ways: elapsed, and on the local wall clock.

    They differ only across a change of clocks: a whole local day is 25 hours elapsed on the last
    Sunday of October in Europe/Paris and 23 in March, and 24 on the wall clock both times. The
    duration rules take the reading kindest to the member (too long only if too long both ways,
    too short only if too short both ways), so a whole day is one day whatever its length in hours.
    """
    elapsed = (ends_at.astimezone(UTC) - starts_at.astimezone(UTC)).total_seconds() / 60
    ls, le = starts_at.astimezone(tz), ends_at.astimezone(tz)
    wall = (le.replace(tzinfo=None) - ls.replace(tzinfo=None)).total_seconds() / 60
    return elapsed, wall


def _check_interval(
    session: Session,
    commons: Commons,
    rules: ResourceRules,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> None:
    """The rules every booking (and every wait) must meet, each failure naming its rule."""
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    if ends_at == starts_at:
        raise ValidationFailed("reservations.zero_length", field="ends_at")
    if ends_at < starts_at:
        raise ValidationFailed("reservations.ends_before_start", field="ends_at", ends_at=ends_at,
                               starts_at=starts_at)
    if starts_at < now - NOW_GRACE:
        raise ValidationFailed("reservations.starts_in_past", field="starts_at", starts_at=starts_at)
    tz = _timezone(session, commons)
    elapsed, wall = booked_minutes(starts_at, ends_at, tz)
    if max(elapsed, wall) < rules.min_minutes:
        raise ValidationFailed("reservations.too_short", field="ends_at", name=commons.name,
                               min_minutes=rules.min_minutes, asked_minutes=int(max(elapsed, wall)))
    if min(elapsed, wall) > rules.max_minutes:
        raise ValidationFailed("reservations.too_long", field="ends_at", name=commons.name,
                               max_minutes=rules.max_minutes, asked_minutes=int(min(elapsed, wall)))
    if starts_at > now + timedelta(days=rules.max_days_ahead):
        raise ValidationFailed("reservations.too_far_ahead", field="starts_at", name=commons.name,
                               days=rules.max_days_ahead, starts_at=starts_at)
    problem = _opening_problem(rules, tz, starts_at, ends_at)
    if problem:
        code, params = problem
        raise ValidationFailed(code, field="starts_at", name=commons.name, **params)


def _overlapping(
    session: Session, resource_id: int, starts_at: datetime, blocked_until: datetime | None,
    *, exclude_id: int | None = None,
) -> Reservation | None:
    """The first active row of the resource whose blocked range meets [starts_at, blocked_until)."""
    stmt = (
        select(Reservation)
        .where(
            Reservation.resource_id == resource_id,
            Reservation.state.in_(ACTIVE_STATES),
            func.tstzrange(Reservation.starts_at, Reservation.blocked_until, "[)").op("&&")(
                func.tstzrange(starts_at, blocked_until, "[)")
            ),
        )
        .order_by(Reservation.starts_at)
        .limit(1)
    )
    if exclude_id is not None:
        stmt = stmt.where(Reservation.id != exclude_id)
    return session.scalar(stmt)


def _conflict(
    session: Session, other: Reservation | None, *, detected_by: str, asked: tuple[datetime, datetime | None]
) -> Conflict:
    """A Conflict naming the interval taken first (never who took it), in the cooperative's zone."""
    if other is None:
        if asked[1] is None:
            return Conflict("reservations.slot_just_taken_open", field="resource_id",
                            detail={"detected_by": detected_by}, starts_at=asked[0])
        return Conflict("reservations.slot_just_taken", field="resource_id", detail={"detected_by": detected_by},
                        starts_at=asked[0], ends_at=asked[1])
    commons = session.get(Commons, other.resource_id)
    tz = _timezone(session, commons) if commons is not None else UTC

    def local(v: datetime | None) -> str | None:
        return v.astimezone(tz).isoformat() if v is not None else None

    params: dict[str, Any] = {"starts_at": other.starts_at.astimezone(tz)}
    if other.ends_at is not None:
        params["ends_at"] = other.ends_at.astimezone(tz)
    if other.kind == "maintenance":
        code = "reservations.slot_maintenance" if other.ends_at is not None else "reservations.slot_maintenance_open"
    elif other.buffer_minutes and other.blocked_until is not None:
        code = "reservations.slot_booked_buffer"
        params.update(buffer_minutes=other.buffer_minutes, blocked_until=other.blocked_until.astimezone(tz))
    else:
        code = "reservations.slot_booked"
    return Conflict(
        code,
        field="resource_id",
        detail={
            "conflict": {
                "kind": other.kind,
                "starts_at": local(other.starts_at),
                "ends_at": local(other.ends_at),
                "blocked_until": local(other.blocked_until),
            },
            "detected_by": detected_by,
        },
        **params,
    )


def _lock_resource(session: Session, resource_id: int) -> None:
    """Serialise the writers of one resource until they commit.

    Without it, two transactions inserting overlapping rows at the same instant can each find
    the other's uncommitted row in the exclusion check and wait for each other: PostgreSQL
    breaks such a cycle by aborting one with a deadlock (40P01), which is an error, not an
    answer. Queued on this lock instead, the second writer sees the first one's outcome. The
    lock is a courtesy to the writers; the exclusion constraint stays the guarantee.
    """
    session.execute(select(func.pg_advisory_xact_lock(RESOURCE_LOCK, resource_id)))


def _insert_guarded(
    session: Session, row: Reservation, then: Callable[[], None] | None = None
) -> Reservation:
    """Insert inside a SAVEPOINT; an exclusion violation becomes a Conflict naming the interval.

    ``then`` runs inside the same savepoint (the event row, the ledger debit): if anything in
    it fails, the row goes too, and the caller's transaction stays usable either way.
    """
    _lock_resource(session, row.resource_id)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            if then is not None:
                then()
                session.flush()
    except IntegrityError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if sqlstate == "23P01" or constraint == EXCLUSION:
            other = _overlapping(session, row.resource_id, row.starts_at, row.blocked_until)
            raise _conflict(session, other, detected_by="database", asked=(row.starts_at, row.blocked_until)) from None
        raise
    return row


def _lock_member(session: Session, member_id: int) -> None:
    """Serialise one member's bookings, so the cap holds under parallel requests."""
    session.execute(select(func.pg_advisory_xact_lock(CAP_LOCK, member_id)))


def _live_offer_to_other(
    session: Session, resource_id: int, member_id: int, starts_at: datetime, blocked_until: datetime, now: datetime
) -> WaitingEntry | None:
    return session.scalar(
        select(WaitingEntry).where(
            WaitingEntry.resource_id == resource_id,
            WaitingEntry.state == "offered",
            WaitingEntry.offer_expires_at > now,
            WaitingEntry.member_id != member_id,
            WaitingEntry.starts_at < blocked_until,
            WaitingEntry.ends_at > starts_at,
        ).limit(1)
    )


def book(
    session: Session,
    *,
    actor: Member | None,
    resource_id: int,
    starts_at: datetime,
    ends_at: datetime,
    purpose: str = "",
    now: datetime | None = None,
    _offer: WaitingEntry | None = None,
) -> Reservation:
    """Book a resource for [starts_at, ends_at): confirmed, or requested when it needs approval."""
    now = _now(now)
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    commons, rules = _bookable(session, actor, resource_id)
    assert actor is not None
    _check_interval(session, commons, rules, starts_at, ends_at, now)
    blocked_until = ends_at + timedelta(minutes=rules.buffer_minutes)
    _lock_member(session, actor.id)
    active = session.scalar(
        select(func.count()).select_from(Reservation).where(
            Reservation.resource_id == commons.id,
            Reservation.member_id == actor.id,
            Reservation.state.in_(BOOKING_ACTIVE),
            # not yet ended, or not yet brought back (an overdue item still counts)
            or_(Reservation.ends_at > now, Reservation.state == "checked_out"),
        )
    ) or 0
    if active >= rules.max_active_per_member:
        raise Conflict("reservations.cap_reached", field="resource_id", active=active, name=commons.name,
                       cap=rules.max_active_per_member)
    # Only when someone waits for this resource around this slot: lapsed offers pass on first.
    if session.scalar(select(WaitingEntry.id).where(
        WaitingEntry.resource_id == commons.id, WaitingEntry.state.in_(("waiting", "offered")),
        WaitingEntry.starts_at < blocked_until, WaitingEntry.ends_at > starts_at,
    ).limit(1)) is not None:
        process_waiting_list(session, resource_id=commons.id, now=now)
        offer = _live_offer_to_other(session, commons.id, actor.id, starts_at, blocked_until, now)
    else:
        offer = None
    if offer is not None and (_offer is None or offer.id != _offer.id):
        raise Conflict("reservations.offered_to_waiting", field="resource_id", detail={"detected_by": "waiting_list"},
                       expires_at=offer.offer_expires_at)
    _lock_resource(session, commons.id)
    other = _overlapping(session, commons.id, starts_at, blocked_until)
    if other is not None:
        raise _conflict(session, other, detected_by="service", asked=(starts_at, blocked_until))
    needs_approval = rules.booking_mode == "approval" and not can_edit(actor, commons)
    row = Reservation(
        resource_id=commons.id, kind="booking", member_id=actor.id,
        state="requested" if needs_approval else "confirmed",
        starts_at=starts_at, ends_at=ends_at, blocked_until=blocked_until,
        buffer_minutes=rules.buffer_minutes, purpose=purpose.strip(), created_by=actor.id,
        contribution_minutes=rules.contribution_minutes,
    )

    def then() -> None:
        _event(session, row, actor, "requested" if needs_approval else "booked",
               starts_at=starts_at, ends_at=ends_at, via_waiting_list=_offer.id if _offer else None)
        if not needs_approval:
            row.decided_at = now
            _collect_contribution(session, row, commons)
        else:
            _tell(session, row, commons, "reservation_to_approve", sorted(commons.steward_ids - {actor.id}),
                  member=actor.display_name)

    # One savepoint for the row, its event and the contribution: a refusal of any leaves nothing.
    return _insert_guarded(session, row, then)


# --- the time ledger (contribution in hours) ----------------------------------------------------


def _ledger() -> Any | None:
    """The ledger service, when that module is installed in this build."""
    try:
        from commons_map.ledger import service as ledger_service  # type: ignore[attr-defined]
    except ImportError:
        return None
    if not hasattr(ledger_service, "pay_cooperative") or not hasattr(ledger_service, "reverse"):
        return None
    return ledger_service


def _collect_contribution(session: Session, r: Reservation, commons: Commons) -> None:
    """Debit the booking's contribution from the member, once (idempotent on the booking id)."""
    if r.contribution_minutes <= 0 or r.contribution_transfer_id is not None:
        return
    ledger = _ledger()
    if ledger is None:
        return
    member = session.get(Member, r.member_id)
    transfer = ledger.pay_cooperative(
        session, member=member, minutes=r.contribution_minutes,
        reason=f"Réservation n°{r.id} : {commons.name}",
        idempotency_key=f"reservation:{r.id}:contribution", kind="booking_contribution",
    )
    r.contribution_transfer_id = transfer.id
    _event(session, r, member, "contribution_debited", minutes=r.contribution_minutes, transfer_id=transfer.id)


def _refund_contribution(session: Session, r: Reservation, actor: Member) -> None:
    if r.contribution_transfer_id is None or r.refund_transfer_id is not None:
        return
    ledger = _ledger()
    if ledger is None:
        return
    # The reservation rules already decided who may cancel: the ledger refunds as the system.
    transfer = ledger.reverse(
        session, actor=None, transfer_id=r.contribution_transfer_id,
        reason=f"Réservation n°{r.id} annulée", idempotency_key=f"reservation:{r.id}:refund",
    )
    r.refund_transfer_id = transfer.id
    _event(session, r, actor, "contribution_refunded", minutes=r.contribution_minutes, transfer_id=transfer.id)


# --- reading ----------------------------------------------------------------------------------


def _tell(session: Session, r: Any, commons: Commons | None, kind: str, recipients: list[int], *,
          key: str | None = None, **params: Any) -> None:
    """Notify who a booking or a waiting-list entry concerns, in the event's transaction."""
    notify(session, recipients=recipients, kind=kind, code=f"notify.{kind}",
           params={"resource": commons.name if commons else "", "starts_at": r.starts_at, **params},
           link=f"/app/reserve/{r.resource_id}", dedupe=key or f"reservation:{r.id}:{kind}")


def is_overdue(r: Reservation, now: datetime | None = None) -> bool:
    """Derived: checked out and past its end."""
    return r.state == "checked_out" and r.ends_at is not None and r.ends_at < _now(now)


def _may_manage_reservation(session: Session, actor: Member | None, r: Reservation) -> bool:
    commons = session.get(Commons, r.resource_id)
    return commons is not None and can_edit(actor, commons)


def get_reservation(session: Session, *, actor: Member | None, reservation_id: int) -> Reservation:
    """A booking of mine, or any booking or maintenance period of a resource I steward."""
    r = session.get(Reservation, reservation_id)
    if r is None or actor is None:
        raise NotFound("reservations.no_reservation", field="reservation_id", reservation_id=reservation_id)
    mine = r.member_id == actor.id
    if not mine and not _may_manage_reservation(session, actor, r):
        if r.kind == "maintenance":
            commons = session.get(Commons, r.resource_id)
            if commons is not None and is_member_of(actor, commons.cooperative_id):
                return r
        raise NotFound("reservations.no_reservation", field="reservation_id", reservation_id=reservation_id)
    return r


def reservation_out(session: Session, r: Reservation, now: datetime | None = None) -> dict[str, Any]:
    """A reservation as the API shows it, with the derived overdue flag."""
    commons = session.get(Commons, r.resource_id)
    return {
        "id": r.id, "resource_id": r.resource_id, "resource_name": commons.name if commons else "",
        "kind": r.kind, "state": r.state, "overdue": is_overdue(r, now), "member_id": r.member_id,
        "starts_at": r.starts_at, "ends_at": r.ends_at, "blocked_until": r.blocked_until,
        "buffer_minutes": r.buffer_minutes, "purpose": r.purpose,
        "decided_by": r.decided_by, "decided_at": r.decided_at, "decision_note": r.decision_note,
        "checked_out_at": r.checked_out_at, "checked_out_by": r.checked_out_by,
        "checkout_notes": r.checkout_notes, "returned_at": r.returned_at, "returned_by": r.returned_by,
        "return_notes": r.return_notes, "damaged": r.damaged, "cancelled_at": r.cancelled_at,
        "cancel_reason": r.cancel_reason, "contribution_minutes": r.contribution_minutes,
        "contribution_transfer_id": r.contribution_transfer_id, "refund_transfer_id": r.refund_transfer_id,
        "created_at": r.created_at,
    }


def list_my_reservations(
    session: Session, *, actor: Member, states: list[str] | None = None, upcoming_only: bool = False,
    overdue_only: bool = False, now: datetime | None = None, limit: int = 200,
) -> list[Reservation]:
    """My bookings, soonest first."""
    now = _now(now)
    stmt = select(Reservation).where(Reservation.member_id == actor.id, Reservation.kind == "booking")
    if states:
        stmt = stmt.where(Reservation.state.in_(states))
    if upcoming_only:
        stmt = stmt.where(Reservation.ends_at > now)
    if overdue_only:
        stmt = stmt.where(Reservation.state == "checked_out", Reservation.ends_at < now)
    return list(session.scalars(stmt.order_by(Reservation.starts_at, Reservation.id).limit(limit)))


def list_to_decide(session: Session, *, actor: Member) -> list[Reservation]:
    """Requests waiting for my approval (resources I steward; everything for coordinators)."""
    stmt = (
        select(Reservation)
        .join(Commons, Commons.id == Reservation.resource_id)
        .where(Reservation.state == "requested", Commons.cooperative_id == actor.cooperative_id)
        .order_by(Reservation.starts_at)
    )
    if not actor.is_coordinator:
        stmt = stmt.join(Steward, and_(Steward.commons_id == Commons.id, Steward.member_id == actor.id))
    return list(session.scalars(stmt))


def list_resource_reservations(
    session: Session, *, actor: Member | None, resource_id: int, start: datetime, end: datetime,
) -> list[Reservation]:
    """Every booking and maintenance period of a resource in a window (its stewards)."""
    if end <= start:
        raise ValidationFailed("reservations.window_order", field="until", until=end, start=start)
    commons = _resource(session, actor, resource_id)
    _require_manager(actor, commons, "reservations.managers_see_bookers")
    return list(session.scalars(
        select(Reservation).where(
            Reservation.resource_id == commons.id,
            func.tstzrange(Reservation.starts_at, Reservation.blocked_until, "[)").op("&&")(
                func.tstzrange(start, end, "[)")),
        ).order_by(Reservation.starts_at)
    ))


# --- changing state ---------------------------------------------------------------------------


def _booking_for_change(session: Session, actor: Member | None, reservation_id: int) -> Reservation:
    r = get_reservation(session, actor=actor, reservation_id=reservation_id)
    if r.kind != "booking":
        raise ValidationFailed("reservations.is_maintenance", field="reservation_id", reservation_id=reservation_id)
    # Lock the row: two stewards deciding at once see each other's decision.
    session.refresh(r, with_for_update=True)
    return r


def _state_error(r: Reservation, action: str, allowed: tuple[str, ...]) -> Conflict:
    return Conflict("reservations.wrong_state", field="state", reservation_id=r.id, state=r.state.replace("_", " "),
                    allowed=list(allowed), action=action)


def cancel(
    session: Session, *, actor: Member | None, reservation_id: int, reason: str = "", now: datetime | None = None
) -> Reservation:
    """Cancel a booking (its member, or a steward); frees the slot for the waiting list."""
    now = _now(now)
    r = _booking_for_change(session, actor, reservation_id)
    assert actor is not None
    if r.state not in ("requested", "confirmed"):
        raise _state_error(r, "cancelled", ("requested", "confirmed"))
    before = r.state
    r.state = "cancelled"
    r.cancelled_at = now
    r.cancelled_by = actor.id
    r.cancel_reason = reason.strip()
    _event(session, r, actor, "cancelled", state=[before, "cancelled"], reason=r.cancel_reason)
    _refund_contribution(session, r, actor)
    session.flush()
    process_waiting_list(session, resource_id=r.resource_id, now=now)
    return r


def _decision(
    session: Session, actor: Member | None, reservation_id: int, what: str, done: str
) -> tuple[Reservation, Commons, Member]:
    """A requested booking a steward of its resource is deciding on: (booking, resource, steward)."""
    r = _booking_for_change(session, actor, reservation_id)
    commons = session.get(Commons, r.resource_id)
    assert commons is not None
    manager = _require_manager(actor, commons, what)
    if r.state != "requested":
        raise _state_error(r, done, ("requested",))
    return r, commons, manager


def approve(
    session: Session, *, actor: Member | None, reservation_id: int, note: str = "", now: datetime | None = None
) -> Reservation:
    """A steward confirms a requested booking (the contribution is debited then)."""
    now = _now(now)
    r, commons, actor = _decision(session, actor, reservation_id, "reservations.managers_approve", "approved")
    if r.starts_at < now:
        raise ValidationFailed("reservations.request_started", field="starts_at", starts_at=r.starts_at)
    with session.begin_nested():
        r.state = "confirmed"
        r.decided_by, r.decided_at, r.decision_note = actor.id, now, note.strip()
        _event(session, r, actor, "approved", state=["requested", "confirmed"], note=r.decision_note)
        _collect_contribution(session, r, commons)
        session.flush()
        _tell(session, r, commons, "reservation_approved", [r.member_id])
    return r


def refuse(
    session: Session, *, actor: Member | None, reservation_id: int, note: str = "", now: datetime | None = None
) -> Reservation:
    """A steward refuses a requested booking, saying why."""
    now = _now(now)
    r, commons, actor = _decision(session, actor, reservation_id, "reservations.managers_refuse", "refused")
    r.state = "refused"
    r.decided_by, r.decided_at, r.decision_note = actor.id, now, note.strip()
    _event(session, r, actor, "refused", state=["requested", "refused"], note=r.decision_note)
    session.flush()
    _tell(session, r, commons, "reservation_refused", [r.member_id])
    process_waiting_list(session, resource_id=r.resource_id, now=now)
    return r


def check_out(
    session: Session, *, actor: Member | None, reservation_id: int, notes: str = "", now: datetime | None = None
) -> Reservation:
    """Hand the item over: who, when, its condition. From an hour before the start to the end."""
    now = _now(now)
    r = _booking_for_change(session, actor, reservation_id)
    assert actor is not None and r.ends_at is not None
    if r.state != "confirmed":
        raise _state_error(r, "checked out", ("confirmed",))
    if now < r.starts_at - EARLY_CHECKOUT:
        raise ValidationFailed("reservations.checkout_too_early", field="starts_at", starts_at=r.starts_at,
                               early_minutes=int(EARLY_CHECKOUT.total_seconds() // 60))
    if now >= r.ends_at:
        raise ValidationFailed("reservations.already_ended", field="ends_at", ends_at=r.ends_at)
    r.state = "checked_out"
    r.checked_out_at, r.checked_out_by, r.checkout_notes = now, actor.id, notes.strip()
    _event(session, r, actor, "checked_out", state=["confirmed", "checked_out"], notes=r.checkout_notes)
    session.flush()
    return r


def check_in(
    session: Session, *, actor: Member | None, reservation_id: int, notes: str = "", damaged: bool = False,
    now: datetime | None = None,
) -> Reservation:
    """Bring it back: who, when, its condition. Damaged: it goes into maintenance until cleared."""
    now = _now(now)
    r = _booking_for_change(session, actor, reservation_id)
    assert actor is not None
    if r.state != "checked_out":
        raise _state_error(r, "checked in", ("checked out",))
    if damaged and not notes.strip():
        raise ValidationFailed("reservations.say_damage", field="notes")
    was_overdue = is_overdue(r, now)
    r.state = "returned"
    r.returned_at, r.returned_by, r.return_notes, r.damaged = now, actor.id, notes.strip(), damaged
    _event(session, r, actor, "returned", state=["checked_out", "returned"], notes=r.return_notes,
           damaged=damaged, overdue=was_overdue)
    session.flush()
    if damaged:
        _open_damage_maintenance(session, r, actor, now)
    else:
        # Brought back before its end: the rest of its slot is free, for whoever waits for it.
        process_waiting_list(session, resource_id=r.resource_id, now=now)
    return r


def _open_damage_maintenance(session: Session, r: Reservation, actor: Member, now: datetime) -> Reservation:
    """An open-ended maintenance period from now; the bookings it collides with are cancelled."""
    _lock_resource(session, r.resource_id)
    hit = list(session.scalars(
        select(Reservation).where(
            Reservation.resource_id == r.resource_id, Reservation.kind == "booking",
            Reservation.state.in_(("requested", "confirmed")),
            Reservation.blocked_until > now,
        ).with_for_update()
    ))
    for b in hit:
        before = b.state
        b.state = "cancelled"
        b.cancelled_at, b.cancelled_by = now, actor.id
        b.cancel_reason = f"Objet rendu abîmé le {now:%d/%m/%Y} ; en réparation / returned damaged, under repair"
        _event(session, b, actor, "cancelled", state=[before, "cancelled"], reason=b.cancel_reason,
               because_of=r.id)
        _refund_contribution(session, b, actor)
    session.flush()
    m = Reservation(
        resource_id=r.resource_id, kind="maintenance", state="maintenance", starts_at=now,
        ends_at=None, blocked_until=None, purpose=f"Rendu abîmé : {r.return_notes}",
        created_by=actor.id, caused_by_id=r.id,
    )
    _insert_guarded(session, m)
    _event(session, m, actor, "maintenance_opened", caused_by=r.id, cancelled=[b.id for b in hit])
    session.flush()
    return m


def mark_no_show(
    session: Session, *, actor: Member | None, reservation_id: int, now: datetime | None = None
) -> Reservation:
    """A steward marks a confirmed booking never collected; the rest of the slot frees."""
    now = _now(now)
    r = _booking_for_change(session, actor, reservation_id)
    commons = session.get(Commons, r.resource_id)
    assert commons is not None
    actor = _require_manager(actor, commons, "reservations.managers_no_show")
    if r.state != "confirmed":
        raise _state_error(r, "marked a no-show", ("confirmed",))
    if now < r.starts_at + NO_SHOW_GRACE:
        raise ValidationFailed("reservations.no_show_too_early", field="starts_at", from_at=r.starts_at + NO_SHOW_GRACE,
                               grace_minutes=int(NO_SHOW_GRACE.total_seconds() // 60))
    r.state = "no_show"
    r.decided_by, r.decided_at = actor.id, now
    _event(session, r, actor, "no_show", state=["confirmed", "no_show"])
    session.flush()
    process_waiting_list(session, resource_id=r.resource_id, now=now)
    return r


# --- maintenance ------------------------------------------------------------------------------


def declare_maintenance(
    session: Session, *, actor: Member | None, resource_id: int, starts_at: datetime,
    ends_at: datetime | None = None, reason: str = "", now: datetime | None = None,
) -> Reservation:
    """A steward blocks a resource for maintenance (no end: until cleared). Collisions are refused."""
    now = _now(now)
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    commons = _resource(session, actor, resource_id)
    actor = _require_manager(actor, commons, "reservations.managers_declare_maintenance")
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed("reservations.ends_not_after_start", field="ends_at", ends_at=ends_at,
                               starts_at=starts_at)
    if ends_at is not None and ends_at <= now:
        raise ValidationFailed("reservations.ends_in_past", field="ends_at", ends_at=ends_at)
    _lock_resource(session, commons.id)
    other = _overlapping(session, commons.id, starts_at, ends_at)
    if other is not None:
        raise _conflict(session, other, detected_by="service", asked=(starts_at, ends_at))
    m = Reservation(
        resource_id=commons.id, kind="maintenance", state="maintenance", starts_at=starts_at,
        ends_at=ends_at, blocked_until=ends_at, purpose=reason.strip(), created_by=actor.id,
    )
    _insert_guarded(session, m)
    _event(session, m, actor, "maintenance_declared", starts_at=starts_at, ends_at=ends_at, reason=m.purpose)
    session.flush()
    return m


def _maintenance(session: Session, actor: Member | None, maintenance_id: int) -> tuple[Reservation, Member]:
    m = session.get(Reservation, maintenance_id)
    if m is None or m.kind != "maintenance":
        raise NotFound("reservations.no_maintenance", field="maintenance_id", maintenance_id=maintenance_id)
    commons = _resource(session, actor, m.resource_id)
    return m, _require_manager(actor, commons, "reservations.managers_change_maintenance")


KEEP: Any = object()
"""``update_maintenance(ends_at=KEEP)``: the end stays as it is (only the reason changes)."""


def update_maintenance(
    session: Session, *, actor: Member | None, maintenance_id: int, ends_at: datetime | None = KEEP,
    reason: str | None = None, now: datetime | None = None,
) -> Reservation:
    """Move the end of a maintenance period (``None``: until cleared; ``KEEP``: as it is) or change
    its reason; the constraint still holds."""
    now = _now(now)
    m, actor = _maintenance(session, actor, maintenance_id)
    if ends_at is KEEP:
        ends_at = m.ends_at
    _aware(ends_at, "ends_at")
    if m.state != "maintenance":
        raise Conflict("reservations.maintenance_state", field="state", maintenance_id=m.id, state=m.state)
    if ends_at is not None and ends_at <= max(m.starts_at, now):
        raise ValidationFailed("reservations.maintenance_end", field="ends_at", ends_at=ends_at)
    _lock_resource(session, m.resource_id)
    other = _overlapping(session, m.resource_id, m.starts_at, ends_at, exclude_id=m.id)
    if other is not None:
        raise _conflict(session, other, detected_by="service", asked=(m.starts_at, ends_at))
    before = m.ends_at
    try:
        with session.begin_nested():
            m.ends_at = m.blocked_until = ends_at
            if reason is not None:
                m.purpose = reason.strip()
            session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23P01":
            session.refresh(m)
            other = _overlapping(session, m.resource_id, m.starts_at, ends_at, exclude_id=m.id)
            raise _conflict(session, other, detected_by="database", asked=(m.starts_at, ends_at)) from None
        raise
    _event(session, m, actor, "maintenance_changed", ends_at=[_iso(before), _iso(ends_at)], reason=m.purpose)
    session.flush()
    process_waiting_list(session, resource_id=m.resource_id, now=now)
    return m


def clear_maintenance(
    session: Session, *, actor: Member | None, maintenance_id: int, notes: str = "", now: datetime | None = None
) -> Reservation:
    """A steward ends maintenance now (cleared), or withdraws one not started yet (cancelled)."""
    now = _now(now)
    m, actor = _maintenance(session, actor, maintenance_id)
    if m.state != "maintenance":
        raise Conflict("reservations.maintenance_already", field="state", maintenance_id=m.id, state=m.state)
    if m.starts_at >= now:
        m.state = "cancelled"
    else:
        m.state = "cleared"
        if m.ends_at is None or m.ends_at > now:
            m.ends_at = m.blocked_until = now
    m.decided_by, m.decided_at, m.decision_note = actor.id, now, notes.strip()
    _event(session, m, actor, "maintenance_" + m.state, notes=m.decision_note)
    session.flush()
    process_waiting_list(session, resource_id=m.resource_id, now=now)
    return m


def list_maintenance(
    session: Session, *, actor: Member | None, resource_id: int, include_past: bool = False,
    now: datetime | None = None,
) -> list[Reservation]:
    """The maintenance periods of a resource (members of its cooperative see them)."""
    now = _now(now)
    commons = _resource(session, actor, resource_id)
    require_member(actor, commons.cooperative_id)
    stmt = select(Reservation).where(Reservation.resource_id == commons.id, Reservation.kind == "maintenance")
    if not include_past:
        stmt = stmt.where(Reservation.state == "maintenance",
                          or_(Reservation.ends_at.is_(None), Reservation.ends_at > now))
    return list(session.scalars(stmt.order_by(Reservation.starts_at)))


# --- availability -----------------------------------------------------------------------------


def _busy(session: Session, resource_id: int, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The merged blocked ranges of a resource that meet [start, end), clipped to it (one query)."""
    window = func.tstzrange(start, end, "[)")
    blocked = func.range_agg(func.tstzrange(Reservation.starts_at, Reservation.blocked_until, "[)"))
    merged = (
        select(func.unnest(func.tstzmultirange(window).op("*")(blocked)).label("r"))
        .where(
            Reservation.resource_id == resource_id,
            Reservation.state.in_(ACTIVE_STATES),
            func.tstzrange(Reservation.starts_at, Reservation.blocked_until, "[)").op("&&")(window),
        )
        .subquery()
    )
    rows = session.execute(
        select(func.lower(merged.c.r), func.upper(merged.c.r)).order_by(func.lower(merged.c.r))
    ).all()
    return [(a, b) for a, b in rows]


def _opening_windows(
    rules: ResourceRules, tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The opening windows (as aware datetimes) that meet [start, end)."""
    if rules.opening_hours is None:
        return [(start, end)]
    out: list[tuple[datetime, datetime]] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    while day <= last:
        for a, b in rules.opening_hours.get(WEEKDAYS[day.weekday()], []):
            base = datetime(day.year, day.month, day.day)
            ws = (base + timedelta(minutes=a)).replace(tzinfo=tz)
            we = (base + timedelta(minutes=b)).replace(tzinfo=tz)
            ws, we = max(ws, start), min(we, end)
            if ws < we:
                out.append((ws, we))
        day += timedelta(days=1)
    return out


def availability(
    session: Session, *, actor: Member | None, resource_id: int, start: datetime, end: datetime,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The free slots of a resource in [start, end): a booking fits when it starts and ends in one.

    A slot's end already leaves room for the buffer the booking will keep after it, and a slot
    shorter than the minimum duration is left out. Busy ranges carry no names.
    """
    now = _now(now)
    _aware(start, "from")
    _aware(end, "until")
    if end <= start:
        raise ValidationFailed("reservations.window_order", field="until", until=end, start=start)
    if end - start > MAX_WINDOW:
        raise ValidationFailed("reservations.window_too_wide", field="until", days=MAX_WINDOW.days)
    commons = _resource(session, actor, resource_id)
    rules = get_rules(session, actor=actor, resource_id=commons.id)
    tz = _timezone(session, commons)
    buffer = timedelta(minutes=rules.buffer_minutes)
    minimum = timedelta(minutes=rules.min_minutes)
    # Look one buffer past the window: a booking ending at the window's end keeps its buffer free.
    reach = end + buffer
    busy = _busy(session, commons.id, start, reach)
    lower = max(start, now)
    horizon = now + timedelta(days=rules.max_days_ahead)
    free: list[dict[str, datetime]] = []
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for a, b in busy:
        if a > cursor:
            gaps.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < reach:
        gaps.append((cursor, reach))
    for ga, gb in gaps:
        usable_end = min(gb - buffer, end)
        for wa, wb in _opening_windows(rules, tz, ga, usable_end):
            wa = max(wa, lower)
            if wa > horizon:
                continue
            if wb - wa >= minimum:
                free.append({"starts_at": wa.astimezone(tz), "ends_at": wb.astimezone(tz)})
    busy = [(a, min(b, end)) for a, b in busy if a < end]
    return {
        "resource_id": commons.id,
        "timezone": tz.key,
        "window_start": start,
        "window_end": end,
        "free": free,
        "busy": [{"starts_at": a.astimezone(tz), "ends_at": b.astimezone(tz)} for a, b in busy],
    }


def find_free(
    session: Session, *, actor: Member | None, kind: str | None = None, category: str | None = None,
    starts_at: datetime, ends_at: datetime, near: Near | None = None, limit: int = 100,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Reservable resources of a kind free for all of [starts_at, ends_at) (buffer included),
    within ``near.distance_m`` metres of a point, nearest first, in ONE SQL query.

    A tool kept at a place is located at that place (COALESCE(commons.geom, place.geom)); the
    booking rules that do not depend on the member (duration, horizon, opening hours in the
    cooperative's time zone) are checked in the same query.
    """
    now = _now(now)
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise ValidationFailed("reservations.ends_not_after_start", field="ends_at", ends_at=ends_at,
                               starts_at=starts_at)
    if near is not None:
        if not (-180 <= near.lon <= 180 and -90 <= near.lat <= 90):
            raise ValidationFailed("reservations.near_out_of_range", field="near")
        if not 0 < near.distance_m <= 500_000:
            raise ValidationFailed("reservations.distance_range", field="distance", minimum=0, maximum=500_000)
    if not 1 <= limit <= 1000:
        raise ValidationFailed("reservations.limit_range", field="limit", minimum=1, maximum=1000)
    place = aliased(Commons)
    rules = ResourceRules
    located = func.coalesce(Commons.geom, place.geom)
    t1 = literal(starts_at, DateTime(timezone=True))
    t2 = literal(ends_at, DateTime(timezone=True))
    elapsed = func.extract("epoch", t2 - t1) / 60
    blocked_end = t2 + func.make_interval(0, 0, 0, 0, 0, rules.buffer_minutes)
    taken = (
        select(literal(1))
        .where(
            Reservation.resource_id == Commons.id,
            Reservation.state.in_(ACTIVE_STATES),
            func.tstzrange(Reservation.starts_at, Reservation.blocked_until, "[)").op("&&")(
                func.tstzrange(t1, blocked_end, "[)")
            ),
        )
        .exists()
    )
    # Offered to someone on the waiting list (and not yet lapsed): held for them, as book() says.
    offered = (
        select(literal(1))
        .where(
            WaitingEntry.resource_id == Commons.id,
            WaitingEntry.state == "offered",
            WaitingEntry.offer_expires_at > literal(now, DateTime(timezone=True)),
            WaitingEntry.member_id != (actor.id if actor is not None else -1),
            WaitingEntry.starts_at < blocked_end,
            WaitingEntry.ends_at > t1,
        )
        .exists()
    )
    # Opening hours, in the cooperative's zone: minutes from the local start day's midnight.
    local_start = func.timezone(Cooperative.timezone, t1)
    local_end = func.timezone(Cooperative.timezone, t2)
    day_start = func.date_trunc("day", local_start)
    start_min = func.extract("epoch", local_start - day_start) / 60
    end_min = func.extract("epoch", local_end - day_start) / 60
    wall = func.extract("epoch", local_end - local_start) / 60  # as booked_minutes(): DST days
    weekday = pg_array(list(WEEKDAYS))[func.extract("isodow", local_start).cast(Integer)]
    win = func.jsonb_array_elements(rules.opening_hours.op("->")(weekday)).table_valued("value").alias("w")
    fits_hours = or_(
        rules.opening_hours.is_(None),
        select(literal(1)).select_from(win).where(
            win.c.value.op("->>")(0).cast(Integer) <= start_min,
            end_min <= win.c.value.op("->>")(1).cast(Integer),
        ).exists(),
    )
    conditions = [
        visible_clause(actor),
        Commons.archived_at.is_(None),
        Commons.state.notin_(UNREASONABLE_STATES),
        rules.enabled.is_(True),
        func.greatest(elapsed, wall) >= rules.min_minutes,
        func.least(elapsed, wall) <= rules.max_minutes,
        t1 >= literal(now - NOW_GRACE, DateTime(timezone=True)),  # "free now" is asked a moment late
        t1 <= literal(now, DateTime(timezone=True)) + func.make_interval(0, 0, 0, rules.max_days_ahead),
        fits_hours,
        ~taken,
        ~offered,
    ]
    if kind:
        get_kind(session, kind)  # an unknown kind is refused naming `kind`, as the register does
        conditions.append(Commons.kind_code == kind)
    if category:
        conditions.append(CommonsKind.category == category)
    distance: Any = cast(null(), Float)
    if near is not None:
        here = func.Geography(func.ST_SetSRID(func.ST_MakePoint(near.lon, near.lat), 4326))
        conditions.append(func.ST_DWithin(func.Geography(located), here, near.distance_m))
        distance = func.ST_Distance(func.Geography(located), here)
    stmt = (
        select(Commons.id, Commons.name, Commons.kind_code, Commons.kept_at_id, rules.booking_mode,
               distance.label("distance_m"))
        .join(rules, rules.commons_id == Commons.id)
        .join(CommonsKind, CommonsKind.code == Commons.kind_code)
        .join(Cooperative, Cooperative.id == Commons.cooperative_id)
        .outerjoin(place, and_(place.id == Commons.kept_at_id, visible_clause(actor, place)))
        .where(*conditions)
        .order_by(distance.asc().nulls_last(), Commons.id)
        .limit(limit)
    )
    rows = session.execute(stmt).all()
    return [
        {"id": r.id, "name": r.name, "kind": r.kind_code, "kept_at_id": r.kept_at_id,
         "distance_m": round(r.distance_m, 1) if r.distance_m is not None else None,
         "booking_mode": r.booking_mode}
        for r in rows
    ]


STATUS_HORIZON = timedelta(days=7)


def status_now(
    session: Session, *, actor: Member | None, resources: list[Commons], now: datetime | None = None,
) -> dict[int, dict[str, Any]]:
    """Whether each resource is free now, and until when, in one query over their bookings.

    Per resource id: ``state`` is ``free`` (``until`` the next booking or maintenance within
    ``STATUS_HORIZON``, else None), ``taken`` (``until`` it is free again, back-to-back bookings and
    their buffers followed; None while an overdue item is still out), ``maintenance`` (``until`` its
    end, None when open-ended: until a steward clears it) or ``closed`` (outside its opening hours).
    No names: a member sees when, never who.
    """
    now = _now(now)
    visible = [c for c in resources if c.id is not None]
    ids = [c.id for c in visible]
    if not ids:
        return {}
    rows = session.scalars(
        select(Reservation)
        .where(
            Reservation.resource_id.in_(ids),
            Reservation.state.in_(ACTIVE_STATES),
            Reservation.starts_at < now + STATUS_HORIZON,
            or_(Reservation.blocked_until.is_(None), Reservation.blocked_until > now,
                Reservation.state == "checked_out"),
        )
        .order_by(Reservation.resource_id, Reservation.starts_at)
    ).all()
    by_resource: dict[int, list[Reservation]] = {}
    for r in rows:
        by_resource.setdefault(r.resource_id, []).append(r)
    rules = {r.commons_id: r for r in session.scalars(select(ResourceRules).where(ResourceRules.commons_id.in_(ids)))}
    out: dict[int, dict[str, Any]] = {}
    for c in visible:
        mine = by_resource.get(c.id, [])
        current = [r for r in mine if r.starts_at <= now]
        if current:
            first = current[0]
            if first.kind == "maintenance":
                out[c.id] = {"state": "maintenance", "until": first.ends_at}
                continue
            if any(r.blocked_until is not None and r.blocked_until <= now for r in current):
                out[c.id] = {"state": "taken", "until": None, "overdue": True}  # still out, past its end
                continue
            until: datetime | None = max(r.blocked_until for r in current if r.blocked_until is not None)
            for r in mine:  # follow the bookings that start before it is free again
                if until is not None and r.starts_at <= until and r.starts_at > now:
                    if r.kind == "maintenance" and r.blocked_until is None:
                        until = None
                        break
                    until = max(until, r.blocked_until) if r.blocked_until is not None else None
            out[c.id] = {"state": "taken", "until": until}
            continue
        rule = rules.get(c.id)
        if rule is not None and rule.opening_hours is not None and _opening_problem(
            rule, _timezone(session, c), now, now + timedelta(minutes=1)
        ):
            out[c.id] = {"state": "closed", "until": None}
            continue
        out[c.id] = {"state": "free", "until": mine[0].starts_at if mine else None}
    return out


# --- waiting list -----------------------------------------------------------------------------


def wait(
    session: Session, *, actor: Member | None, resource_id: int, starts_at: datetime, ends_at: datetime,
    now: datetime | None = None,
) -> WaitingEntry:
    """Wait for a taken slot; when it frees, the first in line is offered it for a while."""
    now = _now(now)
    _aware(starts_at, "starts_at")
    _aware(ends_at, "ends_at")
    commons, rules = _bookable(session, actor, resource_id)
    assert actor is not None
    _check_interval(session, commons, rules, starts_at, ends_at, now)
    blocked_until = ends_at + timedelta(minutes=rules.buffer_minutes)
    if _overlapping(session, commons.id, starts_at, blocked_until) is None and \
            _live_offer_to_other(session, commons.id, actor.id, starts_at, blocked_until, now) is None:
        raise Conflict("reservations.slot_free", field="resource_id")
    same = session.scalar(select(WaitingEntry).where(
        WaitingEntry.resource_id == commons.id, WaitingEntry.member_id == actor.id,
        WaitingEntry.state.in_(("waiting", "offered")),
        WaitingEntry.starts_at < ends_at, WaitingEntry.ends_at > starts_at,
    ))
    if same is not None:
        raise Conflict("reservations.already_waiting", field="resource_id", wait_id=same.id)
    entry = WaitingEntry(resource_id=commons.id, member_id=actor.id, starts_at=starts_at, ends_at=ends_at)
    session.add(entry)
    session.flush()
    return entry


def process_waiting_list(session: Session, *, resource_id: int | None = None, now: datetime | None = None) -> int:
    """Expire lapsed offers and offer freed slots to the first in line. Returns offers made."""
    now = _now(now)
    scope = [WaitingEntry.resource_id == resource_id] if resource_id is not None else []
    for entry in session.scalars(select(WaitingEntry).where(
        *scope, or_(
            and_(WaitingEntry.state == "offered", WaitingEntry.offer_expires_at <= now),
            and_(WaitingEntry.state.in_(("waiting", "offered")), WaitingEntry.starts_at <= now),
        ),
    ).with_for_update(skip_locked=True)):
        entry.state = "expired"
    session.flush()
    made = 0
    waiting = list(session.scalars(
        select(WaitingEntry).where(*scope, WaitingEntry.state == "waiting")
        .order_by(WaitingEntry.resource_id, WaitingEntry.created_at, WaitingEntry.id)
        .with_for_update(skip_locked=True)
    ))
    for entry in waiting:
        rules = session.get(ResourceRules, entry.resource_id)
        if rules is None or not rules.enabled:
            continue
        blocked_until = entry.ends_at + timedelta(minutes=rules.buffer_minutes)
        if _overlapping(session, entry.resource_id, entry.starts_at, blocked_until) is not None:
            continue
        ahead = session.scalar(select(WaitingEntry.id).where(
            WaitingEntry.resource_id == entry.resource_id, WaitingEntry.state == "offered",
            WaitingEntry.offer_expires_at > now,
            WaitingEntry.starts_at < blocked_until, WaitingEntry.ends_at > entry.starts_at,
        ).limit(1))
        if ahead is not None:
            continue
        entry.state = "offered"
        entry.offered_at = now
        entry.offer_expires_at = min(now + timedelta(hours=rules.offer_hours), entry.starts_at)
        made += 1
        session.flush()
        _tell(session, entry, session.get(Commons, entry.resource_id), "waiting_offer", [entry.member_id],
              expires_at=entry.offer_expires_at, key=f"waiting:{entry.id}:offered:{now.isoformat()}")
    return made


def list_my_waits(session: Session, *, actor: Member, now: datetime | None = None) -> list[dict[str, Any]]:
    """My places on waiting lists, with my position (1 = first in line)."""
    now = _now(now)
    # Lapsed offers pass on first, on the resources I wait for only (never another cooperative's).
    for resource_id in sorted(set(session.scalars(select(WaitingEntry.resource_id).where(
            WaitingEntry.member_id == actor.id, WaitingEntry.state.in_(("waiting", "offered")))))):
        process_waiting_list(session, resource_id=resource_id, now=now)
    entries = list(session.scalars(
        select(WaitingEntry).where(WaitingEntry.member_id == actor.id).order_by(WaitingEntry.starts_at)
    ))
    out = []
    for e in entries:
        position = None
        if e.state in ("waiting", "offered"):
            position = 1 + (session.scalar(select(func.count()).select_from(WaitingEntry).where(
                WaitingEntry.resource_id == e.resource_id, WaitingEntry.state == "waiting",
                WaitingEntry.starts_at < e.ends_at, WaitingEntry.ends_at > e.starts_at,
                or_(WaitingEntry.created_at < e.created_at,
                    and_(WaitingEntry.created_at == e.created_at, WaitingEntry.id < e.id)),
            )) or 0) if e.state == "waiting" else 1
        out.append({
            "id": e.id, "resource_id": e.resource_id, "member_id": e.member_id, "starts_at": e.starts_at,
            "ends_at": e.ends_at, "state": e.state, "position": position, "offered_at": e.offered_at,
            "offer_expires_at": e.offer_expires_at, "reservation_id": e.reservation_id,
        })
    return out


def _my_entry(session: Session, actor: Member | None, wait_id: int) -> WaitingEntry:
    entry = session.get(WaitingEntry, wait_id, with_for_update=True)
    if entry is None or actor is None or entry.member_id != actor.id:
        raise NotFound("reservations.no_wait", field="wait_id", wait_id=wait_id)
    return entry


def accept_offer(session: Session, *, actor: Member | None, wait_id: int, now: datetime | None = None) -> Reservation:
    """Take the slot I was offered: booked through the same rules and the same constraint."""
    now = _now(now)
    entry = _my_entry(session, actor, wait_id)
    if entry.state == "offered" and entry.offer_expires_at is not None and entry.offer_expires_at <= now:
        entry.state = "expired"
        session.flush()
    if entry.state != "offered":
        raise Conflict("reservations.offer_state", field="state", wait_id=entry.id, state=entry.state)
    r = book(session, actor=actor, resource_id=entry.resource_id, starts_at=entry.starts_at,
             ends_at=entry.ends_at, purpose="Liste d'attente / waiting list", now=now, _offer=entry)
    entry.state = "accepted"
    entry.reservation_id = r.id
    session.flush()
    return r


def leave_waiting_list(
    session: Session, *, actor: Member | None, wait_id: int, now: datetime | None = None
) -> WaitingEntry:
    """Leave a waiting list (or decline an offer: the next in line gets it)."""
    now = _now(now)
    entry = _my_entry(session, actor, wait_id)
    if entry.state not in ("waiting", "offered"):
        raise Conflict("reservations.wait_already", field="state", wait_id=entry.id, state=entry.state)
    entry.state = "cancelled"
    session.flush()
    process_waiting_list(session, resource_id=entry.resource_id, now=now)
    return entry


# --- calendars (RFC 5545) ---------------------------------------------------------------------


def _calendar(name: str, tz: str):  # type: ignore[no-untyped-def]
    from icalendar import Calendar

    cal = Calendar()
    header = {"prodid": "-//commons-map//reservations//FR", "version": "2.0", "calscale": "GREGORIAN",
              "method": "PUBLISH", "x-wr-calname": name, "x-wr-timezone": tz}
    for key, value in header.items():  # iCalendar properties (not messages)
        cal.add(key, value)
    return cal


def _vevent(uid: str, start: datetime, end: datetime | None, summary: str, stamp: datetime, **extra: Any):  # type: ignore[no-untyped-def]
    from icalendar import Event

    ev = Event()
    ev.add("uid", uid)
    ev.add("dtstamp", stamp.astimezone(UTC))
    ev.add("dtstart", start.astimezone(UTC))
    if end is not None:
        ev.add("dtend", end.astimezone(UTC))
    ev.add("summary", summary)
    for k, v in {"transp": "OPAQUE", **extra}.items():
        if v:
            ev.add(k, v)
    return ev


FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=366)


def resource_calendar(
    session: Session, *, actor: Member | None, resource_id: int, now: datetime | None = None
) -> bytes:
    """The busy times of a resource as iCalendar: no names, only when it is taken."""
    now = _now(now)
    commons = _resource(session, actor, resource_id)
    get_rules(session, actor=actor, resource_id=commons.id)
    tz = _timezone(session, commons)
    cal = _calendar(f"{commons.name} – occupé / busy", tz.key)
    rows = session.scalars(select(Reservation).where(
        Reservation.resource_id == commons.id, Reservation.state.in_(ACTIVE_STATES),
        or_(Reservation.blocked_until.is_(None), Reservation.blocked_until > now - FEED_PAST),
        Reservation.starts_at < now + FEED_AHEAD,
    ).order_by(Reservation.starts_at))
    for r in rows:
        summary = "Maintenance" if r.kind == "maintenance" else "Occupé / Busy"
        end = r.blocked_until if r.blocked_until is not None else max(now, r.starts_at) + timedelta(days=1)
        cal.add_component(_vevent(f"busy-{r.id}@commons-map", r.starts_at, end, summary, r.updated_at or now,
                                  status="CONFIRMED" if r.state != "requested" else "TENTATIVE"))
    return cal.to_ical()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rotate_calendar_token(session: Session, *, actor: Member | None) -> str:
    """A new unguessable token for my private calendar URL (the old one stops working)."""
    if actor is None:
        raise PermissionDenied("reservations.calendar_sign_in")
    token = secrets.token_urlsafe(32)
    row = session.get(CalendarToken, actor.id)
    if row is None:
        session.add(CalendarToken(member_id=actor.id, token_sha256=_token_hash(token)))
    else:
        row.token_sha256 = _token_hash(token)
    session.flush()
    return token


def member_calendar(session: Session, *, token: str, now: datetime | None = None) -> bytes:
    """My own bookings as iCalendar, for the holder of my private token."""
    now = _now(now)
    act_for_member(session, member_id_by(session, "calendar_token", _token_hash(token)))  # tenancy
    row = session.scalar(select(CalendarToken).where(CalendarToken.token_sha256 == _token_hash(token)))
    member = session.get(Member, row.member_id) if row is not None else None
    if member is None or not member.is_active:
        raise NotFound("reservations.no_calendar", field="token")
    coop = session.get(Cooperative, member.cooperative_id)
    cal = _calendar(f"Mes réservations – {member.display_name}", coop.timezone if coop else "Europe/Paris")
    rows = session.execute(
        select(Reservation, Commons.name).join(Commons, Commons.id == Reservation.resource_id).where(
            Reservation.member_id == member.id, Reservation.kind == "booking",
            Reservation.state.in_(("requested", "confirmed", "checked_out", "returned")),
            Reservation.ends_at > now - FEED_PAST,
        ).order_by(Reservation.starts_at)
    ).all()
    for r, name in rows:
        state = {"requested": "en attente d'accord / awaiting approval", "confirmed": "confirmée / confirmed",
                 "checked_out": "empruntée / checked out", "returned": "rendue / returned"}[r.state]
        assert r.ends_at is not None
        cal.add_component(_vevent(
            f"reservation-{r.id}@commons-map", r.starts_at, r.ends_at, f"{name} ({state})", r.updated_at or now,
            status="TENTATIVE" if r.state == "requested" else "CONFIRMED", description=r.purpose,
        ))
    return cal.to_ical()

