"""The public figures table (a cache of ``publish.figures``, written when they change)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Double, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base

# The columns of a parcel's figures, in the order the table is written.
FIGURE_COLUMNS = (
    "status", "status_label_fr", "status_label_en", "soc_stock_t_ha", "soc_change_t_ha_per_year",
    "co2e_t_per_year", "basis", "harvest_kg_total", "last_sampled", "volunteer_hours",
)


class PublicFigures(Base):
    """One public parcel's figures, as the map and the OGC API show them (migration 0008; logged
    since 0012, so that a streaming replica holds them too)."""

    __tablename__ = "publish_figures"

    commons_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str | None] = mapped_column(Text)
    status_label_fr: Mapped[str | None] = mapped_column(Text)
    status_label_en: Mapped[str | None] = mapped_column(Text)
    soc_stock_t_ha: Mapped[float | None] = mapped_column(Double)
    soc_change_t_ha_per_year: Mapped[float | None] = mapped_column(Double)
    co2e_t_per_year: Mapped[float | None] = mapped_column(Double)
    basis: Mapped[str | None] = mapped_column(Text)
    harvest_kg_total: Mapped[float | None] = mapped_column(Double)
    last_sampled: Mapped[date | None] = mapped_column(Date)
    volunteer_hours: Mapped[float | None] = mapped_column(Double)


class PublicFiguresDigest(Base):
    """Which version of a cooperative's figures the table holds, and when it was computed."""

    __tablename__ = "publish_figures_digests"

    cooperative_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
