"""ORM models of the register."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

VISIBILITIES = ("public", "members", "private")
STATES = ("active", "restoring", "fallow", "needs_repair", "out_of_service", "lost")
TENURES = ("owned", "lent", "municipal_agreement", "lease", "commons_trust", "other")
PRECISIONS = ("exact", "approximate")
GEOMETRY_CLASSES = ("area", "point", "any")
CATEGORIES = ("land", "garden", "bed", "tool", "housing", "place")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class CommonsKind(Base):
    """A kind of commons. The list is data the cooperative can extend."""

    __tablename__ = "commons_kinds"
    __table_args__ = (CheckConstraint(f"geometry IN {_in(GEOMETRY_CLASSES)}", name="geometry"),)

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    # None: shipped with the software, everyone's; else the cooperative that added it (its own).
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    # land, garden, bed, tool, housing or place: what the maps and rules group by.
    category: Mapped[str] = mapped_column(Text)
    geometry: Mapped[str] = mapped_column(Text)
    # Kinds a commons of this kind may sit inside; required when ``requires_parent``.
    parent_kinds: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    requires_parent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # May be kept at a place (a tool in the tool shed) instead of having its own point.
    may_be_kept: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    default_visibility: Mapped[str] = mapped_column(Text, default="members", server_default="members")


class Commons(Timestamped, Base):
    """One commons of a cooperative, on the map."""

    __tablename__ = "commons"
    __table_args__ = (
        CheckConstraint(f"visibility IN {_in(VISIBILITIES)}", name="visibility"),
        CheckConstraint(f"state IN {_in(STATES)}", name="state"),
        CheckConstraint(f"tenure IN {_in(TENURES)}", name="tenure"),
        CheckConstraint(f"location_precision IN {_in(PRECISIONS)}", name="precision"),
        CheckConstraint("geom IS NOT NULL OR kept_at_id IS NOT NULL", name="located"),
        CheckConstraint("geom IS NULL OR ST_IsValid(geom)", name="valid_geom"),
        CheckConstraint("id <> parent_id AND id <> kept_at_id", name="not_self"),
        UniqueConstraint("cooperative_id", "external_id", name="uq_commons_external_id"),
        Index("ix_commons_search", "search", postgresql_using="gin"),
        Index("ix_commons_coop_kind", "cooperative_id", "kind_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    kind_code: Mapped[str] = mapped_column(ForeignKey("commons_kinds.code"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("commons.id"), index=True)
    kept_at_id: Mapped[int | None] = mapped_column(ForeignKey("commons.id"), index=True)
    state: Mapped[str] = mapped_column(Text, default="active", server_default="active")
    rules_of_use: Mapped[str] = mapped_column(Text, default="", server_default="")
    tenure: Mapped[str] = mapped_column(Text, default="owned", server_default="owned")
    tenure_end: Mapped[date | None] = mapped_column(Date)
    tenure_notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    visibility: Mapped[str] = mapped_column(Text, default="members", server_default="members")
    location_precision: Mapped[str] = mapped_column(Text, default="exact", server_default="exact")
    external_id: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # Area on the ellipsoid (geography), in m2; NULL for points.
    area_m2: Mapped[float | None] = mapped_column(
        Double,
        Computed(
            "CASE WHEN ST_Dimension(geom) = 2 THEN ST_Area(geom::geography) END",
            persisted=True,
        ),
    )
    search = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('french'::regconfig, coalesce(name, '') || ' ' || coalesce(description, ''))",
            persisted=True,
        ),
    )

    kind: Mapped[CommonsKind] = relationship(lazy="joined")
    steward_rows: Mapped[list[Steward]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def steward_ids(self) -> set[int]:
        return {s.member_id for s in self.steward_rows}


class Steward(Base):
    """A member who looks after a commons."""

    __tablename__ = "commons_stewards"

    commons_id: Mapped[int] = mapped_column(
        ForeignKey("commons.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CommonsHistory(Base):
    """One change to a commons: who, when, what (old and new values)."""

    __tablename__ = "commons_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    commons_id: Mapped[int] = mapped_column(ForeignKey("commons.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict)
