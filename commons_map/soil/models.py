"""ORM models of soil observations, practices and harvests. Raw values are stored as given."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

DESTINATIONS = (
    "members", "shared_meals", "households_in_need", "other_cooperatives", "seed_saving", "compost",
)
MEASURED = ("field", "lab", "both")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Indicator(Base):
    """A soil indicator of the catalogue: units it may be given in, methods, plausible range.

    ``units`` maps each accepted unit to the factor that turns it into the canonical unit (the
    first one); the plausible range is in the canonical unit. Shipped rows have no cooperative;
    a cooperative's coordinators add their own.
    """

    __tablename__ = "soil_indicators"
    __table_args__ = (
        CheckConstraint(f"measured IN {_in(MEASURED)}", name="measured"),
        CheckConstraint("better IS NULL OR better IN ('higher', 'lower')", name="better"),
        CheckConstraint("range_min <= range_max", name="range"),
    )

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    canonical_unit: Mapped[str] = mapped_column(Text)
    units: Mapped[dict] = mapped_column(JSONB)
    range_min: Mapped[float] = mapped_column(Double)
    range_max: Mapped[float] = mapped_column(Double)
    methods: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    measured: Mapped[str] = mapped_column(Text, default="both", server_default="both")
    depth_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Which way is better for regeneration (None: neither, e.g. texture, pH).
    better: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text, default="", server_default="")


class Sample(Timestamped, Base):
    """One sampling event (a field visit or a lab report) at a point of a parcel, on a date."""

    __tablename__ = "soil_samples"
    __table_args__ = (
        Index(
            "uq_soil_samples_source_ref", "cooperative_id", "source_ref", unique=True,
            postgresql_where=text("source_ref IS NOT NULL"),
        ),
        Index("ix_soil_samples_commons_date", "commons_id", "sampled_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    commons_id: Mapped[int] = mapped_column(ForeignKey("commons.id"))
    point = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=True)
    # True when the parcel was found by the point; False when the person named it.
    parcel_from_point: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    sampled_on: Mapped[date] = mapped_column(Date)
    sampled_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    sampler_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    lab: Mapped[str] = mapped_column(Text, default="", server_default="")
    lab_report_ref: Mapped[str] = mapped_column(Text, default="", server_default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    source_ref: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    # A withdrawn sample stays, with who withdrew it and why, but leaves every figure.
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    withdrawn_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    measurements: Mapped[list[Measurement]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Measurement.id"
    )


class SampleHistory(Base):
    """A correction or a withdrawal of a sample: who, when, why, and the values before (and after)."""

    __tablename__ = "soil_sample_history"
    __table_args__ = (CheckConstraint("action IN ('corrected', 'withdrawn')", name="action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    sample_id: Mapped[int] = mapped_column(ForeignKey("soil_samples.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    before: Mapped[dict] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Measurement(Base):
    """One raw value of one indicator at one depth interval, as the person or the lab gave it."""

    __tablename__ = "soil_measurements"
    __table_args__ = (
        CheckConstraint(
            "(depth_top_cm IS NULL) = (depth_bottom_cm IS NULL)", name="depth_both_or_none"
        ),
        CheckConstraint(
            "depth_top_cm IS NULL OR (depth_top_cm >= 0 AND depth_bottom_cm > depth_top_cm)",
            name="depth_order",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("soil_samples.id", ondelete="CASCADE"), index=True)
    indicator_code: Mapped[str] = mapped_column(ForeignKey("soil_indicators.code"), index=True)
    value: Mapped[float] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    depth_top_cm: Mapped[float | None] = mapped_column(Double)
    depth_bottom_cm: Mapped[float | None] = mapped_column(Double)
    # Set when a value outside the plausible range was confirmed on purpose.
    confirmed_out_of_range: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class Practice(Timestamped, Base):
    """A practice applied to a parcel or a bed (mulch, compost, cover crop, hedge...)."""

    __tablename__ = "soil_practices"
    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="dates"),
        CheckConstraint("quantity IS NULL OR quantity >= 0", name="quantity"),
        Index("ix_soil_practices_commons_date", "commons_id", "started_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    commons_id: Mapped[int] = mapped_column(ForeignKey("commons.id"))
    practice: Mapped[str] = mapped_column(Text)
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    quantity: Mapped[float | None] = mapped_column(Double)
    unit: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="", server_default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))


class Harvest(Timestamped, Base):
    """A harvest from a bed or a parcel: crop, weight (kg, fresh) or a count, and where it went."""

    __tablename__ = "harvests"
    __table_args__ = (
        CheckConstraint("weight_kg IS NULL OR weight_kg > 0", name="weight"),
        CheckConstraint("count IS NULL OR count > 0", name="count"),
        CheckConstraint("weight_kg IS NOT NULL OR count IS NOT NULL", name="quantity"),
        Index(
            "uq_harvests_source_ref", "cooperative_id", "source_ref", unique=True,
            postgresql_where=text("source_ref IS NOT NULL"),
        ),
        Index("ix_harvests_commons_date", "commons_id", "harvested_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    commons_id: Mapped[int] = mapped_column(ForeignKey("commons.id"))
    # The crop's code (kept equal to crops.code by a trigger: reports group by it); crop_id is the reference.
    crop: Mapped[str] = mapped_column(Text)
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"), index=True)
    harvested_on: Mapped[date] = mapped_column(Date)
    weight_kg: Mapped[float | None] = mapped_column(Double)
    count: Mapped[int | None] = mapped_column(Integer)
    harvested_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Set when a weight beyond the plausible yield for the area was confirmed on purpose.
    confirmed_implausible: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    source_ref: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))

    shares: Mapped[list[HarvestShare]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="HarvestShare.destination"
    )
    crop_ref: Mapped[Crop] = relationship(lazy="selectin")


class HarvestShare(Base):
    """How much of a harvest went to one destination (kg, or items for a counted harvest)."""

    __tablename__ = "harvest_shares"
    __table_args__ = (
        CheckConstraint(f"destination IN {_in(DESTINATIONS)}", name="destination"),
        CheckConstraint("amount > 0", name="amount"),
    )

    harvest_id: Mapped[int] = mapped_column(
        ForeignKey("harvests.id", ondelete="CASCADE"), primary_key=True
    )
    destination: Mapped[str] = mapped_column(Text, primary_key=True)
    amount: Mapped[float] = mapped_column(Double)



class Crop(Base):
    """A crop of the catalogue harvests name: French and English names, a code, other names it goes by.

    Shipped crops have no cooperative and are offered to every cooperative; the ones a
    cooperative's coordinators add (or the migration made from names it did not know) are its own.
    ``aliases`` are folded names (lower case, no accents, singular) that also mean this crop.
    """

    __tablename__ = "crops"
    __table_args__ = (
        CheckConstraint("code ~ '^[a-z][a-z0-9_]{0,59}$'", name="code"),
        Index("uq_crops_shipped_code", "code", unique=True, postgresql_where=text("cooperative_id IS NULL")),
        Index("uq_crops_cooperative_code", "cooperative_id", "code", unique=True,
              postgresql_where=text("cooperative_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    code: Mapped[str] = mapped_column(Text)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
