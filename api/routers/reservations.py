"""/api/v1/reservations, /api/v1/resources, /api/v1/maintenance, /api/v1/waitlist, /api/v1/calendars.

Thin: parse, call commons_map.reservations.service, shape the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from api.deps import CurrentMember, OptionalMember, SessionDep
from commons_map.db import DbId
from commons_map.errors import ValidationFailed
from commons_map.reservations import service
from commons_map.reservations.schemas import (
    AvailabilityOut,
    BookingIn,
    CalendarUrlOut,
    CheckInIn,
    CheckOutIn,
    FreeResourceOut,
    MaintenanceIn,
    MaintenancePatch,
    NoteIn,
    ReservationOut,
    RulesIn,
    RulesOut,
    WaitIn,
    WaitOut,
)

router = APIRouter(prefix="/api/v1", tags=["reservations"])
ICS = "text/calendar; charset=utf-8"


def _out(session: Any, r: Any) -> dict[str, Any]:
    return service.reservation_out(session, r)


def _done(session: Any, r: Any) -> dict[str, Any]:
    """Commit inside the handler, then shape the answer.

    A booking that lost a race waits in PostgreSQL for the winner's transaction to end. If the
    winner committed only in the session dependency's teardown, that teardown would need a
    worker thread, and under a burst every thread may be one of the waiters: the commit would
    starve until the pool times out. Committing here, on the handler's own thread, releases the
    winner's locks at once. (SessionDep's later commit then has nothing left to do.)
    """
    session.commit()
    return _out(session, r)


# --- resources and rules ----------------------------------------------------------------------


@router.put("/resources/{resource_id}/rules", response_model=RulesOut)
def set_rules(resource_id: DbId, body: RulesIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Make a commons reservable, or change its booking rules (stewards, coordinators)."""
    rules = service.set_rules(session, actor=member, resource_id=resource_id, data=body)
    return service.rules_out(session, rules)


@router.get("/resources/{resource_id}/rules", response_model=RulesOut)
def get_rules(resource_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """The booking rules of a reservable resource."""
    return service.rules_out(session, service.get_rules(session, actor=member, resource_id=resource_id))


@router.delete("/resources/{resource_id}/rules", response_model=RulesOut)
def disable_rules(resource_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Stop new bookings of a resource (existing bookings stay)."""
    return service.rules_out(session, service.disable_rules(session, actor=member, resource_id=resource_id))


def _near(near: str | None, distance: float | None) -> service.Near | None:
    if near is None:
        if distance is not None:
            raise ValidationFailed("reservations.distance_needs_near", field="distance")
        return None
    try:
        lon, lat = (float(p) for p in near.split(","))
    except ValueError as exc:
        raise ValidationFailed("reservations.near_format", field="near", given=near) from exc
    return service.Near(lon=lon, lat=lat, distance_m=distance if distance is not None else 2000.0)


@router.get("/resources/free", response_model=list[FreeResourceOut])
def free_resources(
    session: SessionDep,
    member: OptionalMember,
    starts_at: AwareDatetime,
    ends_at: AwareDatetime,
    kind: str | None = None,
    category: str | None = None,
    near: Annotated[str | None, Query(description="lon,lat (WGS84)")] = None,
    distance: Annotated[float | None, Query(description="metres from `near` (default 2000)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Reservable resources of a kind free for the whole interval, near a point, nearest first."""
    return service.find_free(session, actor=member, kind=kind, category=category, starts_at=starts_at,
                             ends_at=ends_at, near=_near(near, distance), limit=limit)


@router.get("/resources/{resource_id}/availability", response_model=AvailabilityOut)
def availability(
    resource_id: DbId,
    session: SessionDep,
    member: OptionalMember,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: AwareDatetime | None = None,
) -> dict[str, Any]:
    """The free slots of a resource in a window (default: the next 7 days); busy times without names."""
    now = datetime.now().astimezone()
    start = start or now
    until = until or start + timedelta(days=7)
    return service.availability(session, actor=member, resource_id=resource_id, start=start, end=until)


@router.get("/resources/{resource_id}/calendar.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}})
def resource_calendar(resource_id: DbId, session: SessionDep, member: OptionalMember) -> Response:
    """The busy times of a resource as an iCalendar feed (RFC 5545): no names."""
    body = service.resource_calendar(session, actor=member, resource_id=resource_id)
    return Response(body, media_type=ICS,
                    headers={"Content-Disposition": f'inline; filename="resource-{resource_id}.ics"'})


@router.get("/resources/{resource_id}/reservations", response_model=list[ReservationOut])
def resource_reservations(
    resource_id: DbId,
    session: SessionDep,
    member: CurrentMember,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: AwareDatetime | None = None,
) -> list[dict[str, Any]]:
    """Every booking and maintenance period of a resource in a window (its stewards)."""
    now = datetime.now().astimezone()
    start = start or now - timedelta(days=7)
    until = until or start + timedelta(days=60)
    rows = service.list_resource_reservations(session, actor=member, resource_id=resource_id,
                                              start=start, end=until)
    return [_out(session, r) for r in rows]


# --- bookings ---------------------------------------------------------------------------------


@router.post("/reservations", status_code=201, response_model=ReservationOut)
def book(body: BookingIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Book a resource: 201 with the booking, or 409 naming the interval already taken."""
    r = service.book(session, actor=member, resource_id=body.resource_id, starts_at=body.starts_at,
                     ends_at=body.ends_at, purpose=body.purpose)
    return _done(session, r)


@router.get("/reservations", response_model=list[ReservationOut])
def my_reservations(
    session: SessionDep,
    member: CurrentMember,
    state: Annotated[list[str] | None, Query()] = None,
    upcoming: bool = False,
    overdue: bool = False,
) -> list[dict[str, Any]]:
    """My bookings, soonest first."""
    rows = service.list_my_reservations(session, actor=member, states=state, upcoming_only=upcoming,
                                        overdue_only=overdue)
    return [_out(session, r) for r in rows]


@router.get("/reservations/to-decide", response_model=list[ReservationOut])
def to_decide(session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """Requests waiting for my approval (the resources I steward)."""
    return [_out(session, r) for r in service.list_to_decide(session, actor=member)]


@router.get("/reservations/{reservation_id}", response_model=ReservationOut)
def get_reservation(reservation_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """One of my bookings, or one of a resource I steward."""
    return _out(session, service.get_reservation(session, actor=member, reservation_id=reservation_id))


@router.post("/reservations/{reservation_id}/cancel", response_model=ReservationOut)
def cancel(
    reservation_id: DbId, session: SessionDep, member: CurrentMember, body: NoteIn | None = None
) -> dict[str, Any]:
    """Cancel a booking; the slot goes to the waiting list."""
    r = service.cancel(session, actor=member, reservation_id=reservation_id, reason=body.note if body else "")
    return _done(session, r)


@router.post("/reservations/{reservation_id}/approve", response_model=ReservationOut)
def approve(
    reservation_id: DbId, session: SessionDep, member: CurrentMember, body: NoteIn | None = None
) -> dict[str, Any]:
    """A steward confirms a requested booking."""
    r = service.approve(session, actor=member, reservation_id=reservation_id, note=body.note if body else "")
    return _done(session, r)


@router.post("/reservations/{reservation_id}/refuse", response_model=ReservationOut)
def refuse(
    reservation_id: DbId, session: SessionDep, member: CurrentMember, body: NoteIn | None = None
) -> dict[str, Any]:
    """A steward refuses a requested booking."""
    r = service.refuse(session, actor=member, reservation_id=reservation_id, note=body.note if body else "")
    return _done(session, r)


@router.post("/reservations/{reservation_id}/check-out", response_model=ReservationOut)
def check_out(reservation_id: DbId, session: SessionDep, member: CurrentMember,
              body: CheckOutIn | None = None) -> dict[str, Any]:
    """Hand the item over, noting its condition."""
    r = service.check_out(session, actor=member, reservation_id=reservation_id, notes=body.notes if body else "")
    return _done(session, r)


@router.post("/reservations/{reservation_id}/check-in", response_model=ReservationOut)
def check_in(reservation_id: DbId, session: SessionDep, member: CurrentMember,
             body: CheckInIn | None = None) -> dict[str, Any]:
    """Bring it back, noting its condition; damaged sends it into maintenance."""
    body = body or CheckInIn()
    r = service.check_in(session, actor=member, reservation_id=reservation_id, notes=body.notes, damaged=body.damaged)
    return _done(session, r)


@router.post("/reservations/{reservation_id}/no-show", response_model=ReservationOut)
def no_show(reservation_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """A steward marks a booking that was never collected."""
    return _done(session, service.mark_no_show(session, actor=member, reservation_id=reservation_id))


# --- maintenance ------------------------------------------------------------------------------


@router.post("/resources/{resource_id}/maintenance", status_code=201, response_model=ReservationOut)
def declare_maintenance(resource_id: DbId, body: MaintenanceIn, session: SessionDep,
                        member: CurrentMember) -> dict[str, Any]:
    """Block a resource for maintenance (no end: until a steward clears it)."""
    m = service.declare_maintenance(session, actor=member, resource_id=resource_id, starts_at=body.starts_at,
                                    ends_at=body.ends_at, reason=body.reason)
    return _done(session, m)


@router.get("/resources/{resource_id}/maintenance", response_model=list[ReservationOut])
def list_maintenance(resource_id: DbId, session: SessionDep, member: CurrentMember,
                     include_past: bool = False) -> list[dict[str, Any]]:
    """The maintenance periods of a resource."""
    rows = service.list_maintenance(session, actor=member, resource_id=resource_id, include_past=include_past)
    return [_out(session, r) for r in rows]


@router.patch("/maintenance/{maintenance_id}", response_model=ReservationOut)
def update_maintenance(maintenance_id: DbId, body: MaintenancePatch, session: SessionDep,
                       member: CurrentMember) -> dict[str, Any]:
    """Move the end of a maintenance period (`ends_at: null`: until a steward clears it; left out:
    unchanged) or change its reason."""
    ends_at = body.ends_at if "ends_at" in body.model_fields_set else service.KEEP
    m = service.update_maintenance(session, actor=member, maintenance_id=maintenance_id, ends_at=ends_at,
                                   reason=body.reason)
    return _done(session, m)


@router.post("/maintenance/{maintenance_id}/clear", response_model=ReservationOut)
def clear_maintenance(maintenance_id: DbId, session: SessionDep, member: CurrentMember,
                      body: NoteIn | None = None) -> dict[str, Any]:
    """End maintenance now (or withdraw one not started yet)."""
    m = service.clear_maintenance(session, actor=member, maintenance_id=maintenance_id,
                                  notes=body.note if body else "")
    return _done(session, m)


# --- waiting list -----------------------------------------------------------------------------


@router.post("/waitlist", status_code=201, response_model=WaitOut)
def wait(body: WaitIn, session: SessionDep, member: CurrentMember) -> Any:
    """Wait for a taken slot."""
    entry = service.wait(session, actor=member, resource_id=body.resource_id, starts_at=body.starts_at,
                         ends_at=body.ends_at)
    return next(e for e in service.list_my_waits(session, actor=member) if e["id"] == entry.id)


@router.get("/waitlist", response_model=list[WaitOut])
def my_waits(session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """My places on waiting lists, with offers to accept."""
    return service.list_my_waits(session, actor=member)


@router.post("/waitlist/{wait_id}/accept", status_code=201, response_model=ReservationOut)
def accept_offer(wait_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Accept the slot I was offered: it is booked now."""
    return _done(session, service.accept_offer(session, actor=member, wait_id=wait_id))


@router.delete("/waitlist/{wait_id}", response_model=WaitOut)
def leave_waiting_list(wait_id: DbId, session: SessionDep, member: CurrentMember) -> Any:
    """Leave a waiting list, or decline an offer."""
    return service.leave_waiting_list(session, actor=member, wait_id=wait_id)


# --- calendars --------------------------------------------------------------------------------


@router.post("/calendars/me", response_model=CalendarUrlOut)
def rotate_calendar(request: Request, session: SessionDep, member: CurrentMember) -> dict[str, str]:
    """A new private URL of my bookings' calendar (the previous URL stops working)."""
    token = service.rotate_calendar_token(session, actor=member)
    return {"token": token, "url": str(request.url_for("member_calendar", token=token))}


@router.get("/calendars/{token}.ics", name="member_calendar", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}})
def member_calendar(token: str, session: SessionDep) -> Response:
    """My own bookings as an iCalendar feed, for whoever holds my private URL."""
    return Response(service.member_calendar(session, token=token), media_type=ICS)
