"""ORM models of reservations: booking rules, bookings and maintenance, waiting list, feeds.

The no-overlap guarantee lives in the database: ``ex_reservations_no_overlap`` is an
``EXCLUDE USING gist (resource_id WITH =, tstzrange(starts_at, blocked_until) WITH &&)``
restricted to the active states. ``blocked_until`` is ``ends_at`` plus the resource's buffer
(cleaning, checking) taken when the row was written, or NULL for a maintenance period with no
end yet (an unbounded range, which blocks everything after its start).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base, Timestamped

BOOKING_MODES = ("members", "approval")
# Booking states, then the two states of a maintenance period.
STATES = (
    "requested", "confirmed", "checked_out", "returned", "cancelled", "no_show", "refused",
    "maintenance", "cleared",
)
# The states that hold the resource: the exclusion constraint only looks at these.
ACTIVE_STATES = ("requested", "confirmed", "checked_out", "maintenance")
BOOKING_ACTIVE = ("requested", "confirmed", "checked_out")
KINDS = ("booking", "maintenance")
WAIT_STATES = ("waiting", "offered", "accepted", "expired", "cancelled")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


ACTIVE_SQL = f"state IN {_in(ACTIVE_STATES)}"


class ResourceRules(Timestamped, Base):
    """The booking rules of one reservable commons (a tool item, a place, a room, a plot)."""

    __tablename__ = "resource_rules"
    __table_args__ = (
        CheckConstraint(f"booking_mode IN {_in(BOOKING_MODES)}", name="booking_mode"),
        CheckConstraint("min_minutes >= 1 AND max_minutes >= min_minutes", name="durations"),
        CheckConstraint("max_days_ahead >= 0", name="horizon"),
        CheckConstraint("buffer_minutes >= 0", name="buffer"),
        CheckConstraint("max_active_per_member >= 1", name="cap"),
        CheckConstraint("contribution_minutes >= 0", name="contribution"),
        CheckConstraint("offer_hours >= 1", name="offer_hours"),
    )

    commons_id: Mapped[int] = mapped_column(
        ForeignKey("commons.id", ondelete="CASCADE"), primary_key=True
    )
    # False: no longer reservable (the row and its history stay).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # members: any member books directly; approval: a steward confirms each request.
    booking_mode: Mapped[str] = mapped_column(Text, default="members", server_default="members")
    min_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    max_minutes: Mapped[int] = mapped_column(Integer, default=3 * 24 * 60, server_default="4320")
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_active_per_member: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # {"mon": [["08:00", "22:00"]], ...} in the cooperative's time zone; NULL: always open.
    opening_hours: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    # Debited through the time ledger when a booking is confirmed, refunded on cancel.
    contribution_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How long the first in line on the waiting list has to accept a freed slot.
    offer_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))


class Reservation(Timestamped, Base):
    """A booking of a resource by a member, or a maintenance period declared by a steward."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(f"state IN {_in(STATES)}", name="state"),
        CheckConstraint(f"kind IN {_in(KINDS)}", name="kind"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="positive_length"),
        CheckConstraint(
            "(ends_at IS NULL AND blocked_until IS NULL) OR blocked_until >= ends_at", name="buffer_after"
        ),
        CheckConstraint(
            "(kind = 'booking' AND member_id IS NOT NULL AND ends_at IS NOT NULL"
            " AND state NOT IN ('maintenance', 'cleared'))"
            " OR (kind = 'maintenance' AND state IN ('maintenance', 'cleared', 'cancelled'))",
            name="kind_fits",
        ),
        ExcludeConstraint(
            ("resource_id", "="),
            (text("tstzrange(starts_at, blocked_until, '[)')"), "&&"),
            name="ex_reservations_no_overlap",
            using="gist",
            where=text(ACTIVE_SQL),
        ),
        Index("ix_reservations_member_state", "member_id", "state"),
        Index("ix_reservations_resource_starts", "resource_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("commons.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text, default="booking", server_default="booking")
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    state: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    purpose: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_out_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    checkout_notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    returned_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    return_notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    damaged: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    cancel_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The booking whose damaged return opened this maintenance period.
    caused_by_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    contribution_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Ledger transfers of the contribution and of its refund (ids in the ledger, when it exists).
    contribution_transfer_id: Mapped[int | None] = mapped_column(Integer)
    refund_transfer_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ReservationEvent(Base):
    """One change to a reservation: who, when, what."""

    __tablename__ = "reservation_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")


class WaitingEntry(Timestamped, Base):
    """A member waiting for a taken slot; offered it for a limited time when it frees."""

    __tablename__ = "reservation_waits"
    __table_args__ = (
        CheckConstraint(f"state IN {_in(WAIT_STATES)}", name="state"),
        CheckConstraint("ends_at > starts_at", name="positive_length"),
        CheckConstraint("state <> 'offered' OR offer_expires_at IS NOT NULL", name="offer_deadline"),
        Index("ix_reservation_waits_resource_state", "resource_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("commons.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(Text, default="waiting", server_default="waiting")
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CalendarToken(Timestamped, Base):
    """The secret of a member's private calendar URL (only its SHA-256 is stored)."""

    __tablename__ = "calendar_tokens"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    token_sha256: Mapped[str] = mapped_column(Text, unique=True)
