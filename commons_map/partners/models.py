"""A cooperative's partners (OGC API - Features landing pages) and the cached copy of their layers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base

STATUSES = ("pending", "ok", "unavailable")


class Partner(Base):
    """An initiative a cooperative shows on its public map, read from its OGC API - Features."""

    __tablename__ = "partners"
    __table_args__ = (
        UniqueConstraint("cooperative_id", "url", name="uq_partners_cooperative_url"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    url: Mapped[str] = mapped_column(Text)  # the landing page, as listed
    name: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)  # for layers that do not declare their own
    link: Mapped[str] = mapped_column(Text)  # where a visitor reads about the partner
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(Text, default="pending", server_default="pending")
    error_code: Mapped[str | None] = mapped_column(Text)  # a partners.* message code
    error_params: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last attempt
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last success
    # A refresher holds the partner until then (several workers and `partners refresh --loop`).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    layers: Mapped[list[PartnerLayer]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="PartnerLayer.position",
        passive_deletes=True,
    )


class PartnerLayer(Base):
    """One public collection of a partner: its features as validated GeoJSON, ready to serve."""

    __tablename__ = "partner_layers"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)
    feature_count: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # features refused (bad geometry)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)  # more than the feature bound
    geojson: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    partner: Mapped[Partner] = relationship(back_populates="layers")
