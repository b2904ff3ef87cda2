"""Helpers shared by the soil tests: demo parcels by key, points inside them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from commons_map.register.models import Commons


def parcel(db: Session, key: str) -> Commons:
    """A demo commons by its key (land-0, garden-1, bed-0-0...)."""
    return db.scalars(select(Commons).where(Commons.external_id == f"demo:{key}")).one()


def inside(db: Session, commons: Commons) -> dict:
    """A GeoJSON point inside the commons and outside every commons inside it."""
    child = aliased(Commons)
    children = select(func.ST_Union(child.geom)).where(child.parent_id == Commons.id).scalar_subquery()
    free = func.coalesce(func.ST_Difference(Commons.geom, children), Commons.geom)
    lon, lat = db.execute(
        select(func.ST_X(func.ST_PointOnSurface(free)), func.ST_Y(func.ST_PointOnSurface(free)))
        .where(Commons.id == commons.id)
    ).one()
    return {"type": "Point", "coordinates": [lon, lat]}


# A point in the Drôme valley, inside the territory but outside every parcel of the demo.
OUTSIDE = {"type": "Point", "coordinates": [5.2700, 44.7050]}
