"""ORM models of volunteer work: the activities catalogue and the work logs."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

STATES = ("submitted", "approved", "rejected", "corrected")
MAX_MINUTES = 16 * 60
"""A single log may not exceed 16 hours."""


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Activity(Base):
    """A kind of work on the commons. The list is data coordinators extend.

    Shipped activities have no cooperative and are offered to every cooperative (each may retire
    them for itself: ``ActivityRetired``); the ones a cooperative's coordinators add are its own.
    """

    __tablename__ = "work_activities"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    position: Mapped[int] = mapped_column(Integer, default=100, server_default="100")


class ActivityRetired(Base):
    """A shipped activity one cooperative no longer offers (the others still do)."""

    __tablename__ = "work_activities_retired"

    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("work_activities.code"), primary_key=True)


class WorkLog(Timestamped, Base):
    """Time a member spent working on a commons, awaiting or past approval."""

    __tablename__ = "work_logs"
    __table_args__ = (
        CheckConstraint(f"state IN {_in(STATES)}", name="state"),
        CheckConstraint(f"minutes > 0 AND minutes <= {MAX_MINUTES}", name="minutes"),
        CheckConstraint("ended_at IS NULL OR ended_at > started_at", name="interval"),
        CheckConstraint("(started_at IS NULL) = (ended_at IS NULL)", name="both_ends"),
        # Four eyes: nobody decides on their own work, whatever the code above does.
        CheckConstraint("decided_by_id IS NULL OR decided_by_id <> member_id", name="four_eyes"),
        CheckConstraint(
            "state = 'submitted' OR (decided_by_id IS NOT NULL AND decided_at IS NOT NULL)",
            name="decided",
        ),
        CheckConstraint(
            "state <> 'rejected' OR length(btrim(coalesce(rejection_reason, ''))) > 0",
            name="rejection_reason",
        ),
        UniqueConstraint("cooperative_id", "source_ref", name="uq_work_logs_source_ref"),
        Index("ix_work_logs_coop_state", "cooperative_id", "state"),
        Index("ix_work_logs_commons_date", "commons_id", "work_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    commons_id: Mapped[int] = mapped_column(ForeignKey("commons.id"))
    work_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    minutes: Mapped[int] = mapped_column(Integer)
    activity_code: Mapped[str] = mapped_column(ForeignKey("work_activities.code"))
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    state: Mapped[str] = mapped_column(Text, default="submitted", server_default="submitted")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # An external id (an ODK instanceID): a resent form never makes a second log.
    source_ref: Mapped[str | None] = mapped_column(Text)
    # The approved log this one corrects (the old one is then 'corrected' and reversed).
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("work_logs.id"), unique=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    activity: Mapped[Activity] = relationship(lazy="joined")
    companion_rows: Mapped[list[WorkLogCompanion]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def with_member_ids(self) -> list[int]:
        return sorted(c.member_id for c in self.companion_rows)


class WorkLogCompanion(Base):
    """Someone who worked alongside (they log their own time)."""

    __tablename__ = "work_log_companions"

    work_log_id: Mapped[int] = mapped_column(
        ForeignKey("work_logs.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)


class WorkLogHistory(Base):
    """One change to a work log: who, when, what."""

    __tablename__ = "work_log_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_log_id: Mapped[int] = mapped_column(ForeignKey("work_logs.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict)
