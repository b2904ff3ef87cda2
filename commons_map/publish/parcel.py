"""A public parcel's own story: its status, soil carbon and harvests by year (the permalink page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from commons_map.errors import NotFound
from commons_map.publish import figures as figs
from commons_map.publish.collections import COLLECTIONS
from commons_map.publish.sql import public_source
from commons_map.tenancy import acting_cooperative


@dataclass
class ParcelStory:
    """What the public may read of one restored-land parcel, by year."""

    id: int
    name: str
    description: str
    area_m2: float | None
    status: str
    status_label: dict[str, str]
    status_explanation: dict[str, str]
    colour: str
    soc_by_year: list[tuple[int, float]] = field(default_factory=list)  # t C/ha, last sample of the year
    harvest_by_year: list[tuple[int, float]] = field(default_factory=list)  # kg
    lon: float = 0.0
    lat: float = 0.0


def parcel_story(session: Session, *, commons_id: int) -> ParcelStory:
    """The story of a public restored-land parcel; NotFound for anything the public may not see."""
    land = COLLECTIONS["restored_land"]
    row = session.execute(
        text(
            "SELECT s.id, s.name, s.description, s.area_m2, ST_X(ST_PointOnSurface(s.geom)) lon,"
            f" ST_Y(ST_PointOnSurface(s.geom)) lat FROM ({public_source(land)}) s WHERE s.id = :i"
        ),
        {"i": commons_id},
    ).first()
    if row is None:
        raise NotFound("parcelpage.not_public", field="commons_id", commons_id=commons_id)
    summary: Any = None
    coop = session.scalar(text("SELECT cooperative_id FROM commons WHERE id = :i"), {"i": row.id})
    if figs.soil_available():
        from commons_map.soil.service import parcel_summaries

        # the public card of a public parcel, from its cooperative's samples: read as that cooperative
        with acting_cooperative(session, coop):
            summary = parcel_summaries(session, cooperative_id=coop, with_data_only=True).get(row.id)
    status = getattr(summary, "status", None) or "no_data"
    entry = next((r for r in figs.legend() if r["status"] == status), None) or {}
    by_year: dict[int, float] = {}
    for on, stock in getattr(summary, "stock_series", None) or []:
        by_year[on.year] = round(float(stock), 1)  # the series is in date order: the year's last
    harvests = session.execute(
        text(
            "SELECT extract(year FROM harvested_on)::int y, round(sum(weight_kg)::numeric, 1)::float8 kg"
            " FROM harvests WHERE commons_id = :i AND weight_kg IS NOT NULL GROUP BY 1 ORDER BY 1"
        ),
        {"i": row.id},
    ).all() if figs.soil_available() else []
    return ParcelStory(
        id=row.id,
        name=row.name,
        description=row.description or "",
        area_m2=float(row.area_m2) if row.area_m2 is not None else None,
        status=status,
        status_label={"fr": entry.get("fr", status), "en": entry.get("en", status)},
        status_explanation={
            "fr": entry.get("explanation_fr", ""), "en": entry.get("explanation_en", "")},
        colour=entry.get("colour", figs.FALLBACK_COLOUR),
        soc_by_year=sorted(by_year.items()),
        harvest_by_year=[(h.y, h.kg) for h in harvests],
        lon=row.lon,
        lat=row.lat,
    )
