"""Pydantic shapes of what comes into and goes out of reservations.

Every datetime that comes in must carry its offset (``AwareDatetime``): a naive datetime is
refused with a 422 naming the field, never guessed in some zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from commons_map.db import DbId, Minutes
from commons_map.reservations.models import WEEKDAYS

BookingMode = Literal["members", "approval"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def hhmm_to_minutes(value: str) -> int:
    """'08:30' -> 510; '24:00' -> 1440."""
    if not _HHMM.match(value):
        raise PydanticCustomError("reservations.time_hhmm", "{given} is not a time HH:MM between 00:00 and 24:00",
                                  {"given": str(value)[:20]})
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def minutes_to_hhmm(value: int) -> str:
    """510 -> '08:30'."""
    return f"{value // 60:02d}:{value % 60:02d}"


def parse_opening_hours(raw: dict[str, list[list[str]]] | None) -> dict[str, list[list[int]]] | None:
    """{'mon': [['08:00', '12:00'], ...]} -> the same in minutes of the day, checked."""
    if raw is None:
        return None
    out: dict[str, list[list[int]]] = {}
    for day, windows in raw.items():
        if day not in WEEKDAYS:
            raise PydanticCustomError("reservations.unknown_weekday", "unknown weekday {day}; use {known}",
                                      {"day": str(day)[:20], "known": ", ".join(WEEKDAYS)})
        spans: list[list[int]] = []
        for window in windows:
            if len(window) != 2:
                raise PydanticCustomError("reservations.window_shape", "{day}: each window is [opens, closes]",
                                          {"day": day})
            opens, closes = hhmm_to_minutes(window[0]), hhmm_to_minutes(window[1])
            if closes <= opens:
                raise PydanticCustomError("reservations.hours_window_order",
                                          "{day}: closes {closes} must come after opens {opens}",
                                          {"day": day, "opens": window[0], "closes": window[1]})
            spans.append([opens, closes])
        spans.sort()
        for a, b in zip(spans, spans[1:], strict=False):
            if b[0] < a[1]:
                raise PydanticCustomError("reservations.windows_overlap", "{day}: windows {first} and {second} overlap",
                                          {"day": day, "first": f"{minutes_to_hhmm(a[0])}-{minutes_to_hhmm(a[1])}",
                                           "second": f"{minutes_to_hhmm(b[0])}-{minutes_to_hhmm(b[1])}"})
        out[day] = spans
    return out


def format_opening_hours(stored: dict[str, list[list[int]]] | None) -> dict[str, list[list[str]]] | None:
    """Minutes of the day back to 'HH:MM'."""
    if stored is None:
        return None
    return {d: [[minutes_to_hhmm(a), minutes_to_hhmm(b)] for a, b in stored[d]] for d in WEEKDAYS if d in stored}


class RulesIn(BaseModel):
    """The booking rules of a resource, set by its stewards or the coordinators."""

    model_config = ConfigDict(extra="forbid")

    booking_mode: BookingMode = Field(
        default="members", description="members: book directly; approval: a steward confirms"
    )
    min_minutes: Minutes = Field(default=30, ge=1, le=366 * 24 * 60)
    max_minutes: Minutes = Field(default=3 * 24 * 60, ge=1, le=366 * 24 * 60)
    max_days_ahead: int = Field(default=60, ge=0, le=730, description="how far ahead one may book")
    buffer_minutes: Minutes = Field(default=0, ge=0, le=14 * 24 * 60, description="kept free after each booking")
    max_active_per_member: int = Field(default=2, ge=1, le=100)
    opening_hours: dict[str, list[list[str]]] | None = Field(
        default=None,
        description="per weekday (mon..sun), windows ['HH:MM', 'HH:MM'] in the cooperative's time zone;"
        " a weekday left out is closed; null: always open",
    )
    contribution_minutes: Minutes = Field(default=0, ge=0, le=100 * 60, description="debited in time currency")
    offer_hours: int = Field(default=24, ge=1, le=24 * 14, description="how long a waiting-list offer holds")

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, v: dict[str, list[list[str]]] | None) -> dict[str, list[list[str]]] | None:
        parse_opening_hours(v)
        return v


class RulesOut(BaseModel):
    """The booking rules as stored."""

    model_config = ConfigDict(from_attributes=True)

    resource_id: DbId
    enabled: bool
    booking_mode: str
    min_minutes: int
    max_minutes: int
    max_days_ahead: int
    buffer_minutes: int
    max_active_per_member: int
    opening_hours: dict[str, list[list[str]]] | None
    contribution_minutes: int
    offer_hours: int
    timezone: str


class BookingIn(BaseModel):
    """A booking request: the commons to book and an interval with offsets."""

    model_config = ConfigDict(extra="forbid")

    resource_id: DbId
    starts_at: AwareDatetime = Field(description="ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+01:00")
    ends_at: AwareDatetime
    purpose: str = Field(default="", max_length=500)


class WaitIn(BookingIn):
    """Wait for a taken slot."""


class NoteIn(BaseModel):
    """A note (a decision, a cancellation reason)."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class CheckOutIn(BaseModel):
    """Handing the item over: its condition."""

    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=2000)


class CheckInIn(BaseModel):
    """Bringing it back: its condition, and whether it is damaged."""

    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=2000)
    damaged: bool = False


class MaintenanceIn(BaseModel):
    """A maintenance period declared by a steward; no end means until cleared."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=2000)


class MaintenancePatch(BaseModel):
    """A new end (or none: until cleared) and reason."""

    model_config = ConfigDict(extra="forbid")

    ends_at: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=2000)


class ReservationOut(BaseModel):
    """A booking or a maintenance period, with its derived overdue flag."""

    id: int
    resource_id: DbId
    resource_name: str
    kind: str
    state: str
    overdue: bool
    member_id: DbId | None
    starts_at: datetime
    ends_at: datetime | None
    blocked_until: datetime | None
    buffer_minutes: int
    purpose: str
    decided_by: int | None = None
    decided_at: datetime | None = None
    decision_note: str = ""
    checked_out_at: datetime | None = None
    checked_out_by: int | None = None
    checkout_notes: str = ""
    returned_at: datetime | None = None
    returned_by: int | None = None
    return_notes: str = ""
    damaged: bool = False
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    contribution_minutes: int = 0
    contribution_transfer_id: DbId | None = None
    refund_transfer_id: DbId | None = None
    created_at: datetime | None = None


class WaitOut(BaseModel):
    """A place on a waiting list."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    resource_id: DbId
    member_id: DbId
    starts_at: datetime
    ends_at: datetime
    state: str
    position: int | None = None
    offered_at: datetime | None = None
    offer_expires_at: datetime | None = None
    reservation_id: DbId | None = None


class SlotOut(BaseModel):
    """A free interval: a booking may start at ``starts_at`` and must end by ``ends_at``."""

    starts_at: datetime
    ends_at: datetime


class AvailabilityOut(BaseModel):
    """The free slots of a resource in a window, and what is busy (no names)."""

    resource_id: DbId
    timezone: str
    window_start: datetime
    window_end: datetime
    free: list[SlotOut]
    busy: list[SlotOut]


class FreeResourceOut(BaseModel):
    """A resource free for the whole interval asked, and how far it is."""

    id: int
    name: str
    kind: str
    kept_at_id: DbId | None
    distance_m: float | None
    booking_mode: str


class CalendarUrlOut(BaseModel):
    """A member's private calendar URL (shown once; rotating it revokes the old one)."""

    url: str
    token: str
