"""Checking geometries that come from outside (GeoJSON), before PostGIS sees them."""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from commons_map.errors import ValidationFailed

AREA_TYPES = ("Polygon", "MultiPolygon")
POINT_TYPES = ("Point",)
KNOWN_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def _positions(coords: Any, depth: int, where: str, field: str) -> None:
    """Check nesting depth, numbers and ranges of GeoJSON coordinates."""
    if depth == 0:
        if not isinstance(coords, list | tuple) or len(coords) not in (2, 3, 4):
            raise ValidationFailed("register.position_form", field=field, where=where or "top")
        for v in coords:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValidationFailed("register.position_not_number", field=field, where=where or "top")
        lon, lat = coords[0], coords[1]
        if not -180 <= lon <= 180:
            raise ValidationFailed("register.longitude_range", field=field, value=lon, where=where or "top")
        if not -90 <= lat <= 90:
            raise ValidationFailed("register.latitude_range", field=field, value=lat, where=where or "top")
        return
    if not isinstance(coords, list | tuple) or not coords:
        raise ValidationFailed("register.coordinates_empty", field=field, where=where or "top")
    for i, c in enumerate(coords):
        _positions(c, depth - 1, f"{where}[{i}]", field)


def _rings(rings: list, where: str, field: str) -> None:
    for i, ring in enumerate(rings):
        if len(ring) < 4:
            raise ValidationFailed("register.ring_too_short", field=field, ring=f"{where}[{i}]", count=len(ring))
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise ValidationFailed("register.ring_not_closed", field=field, ring=f"{where}[{i}]")


DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def parse_geojson_geometry(obj: Any, *, field: str = "geometry") -> BaseGeometry:
    """A valid shapely geometry from a GeoJSON geometry object, or ValidationFailed naming why."""
    if not isinstance(obj, dict):
        raise ValidationFailed("register.geometry_not_object", field=field)
    gtype = obj.get("type")
    if gtype not in KNOWN_TYPES:
        raise ValidationFailed("register.geometry_type", field=field, geometry_type=str(gtype),
                               known=list(KNOWN_TYPES))
    coords = obj.get("coordinates")
    _positions(coords, DEPTH[gtype], "", field)
    if gtype == "Polygon":
        _rings(coords, "", field)
    elif gtype == "MultiPolygon":
        for i, poly in enumerate(coords):
            _rings(poly, f"[{i}]", field)
    try:
        # An altitude (a phone's GPS gives one) is accepted and not kept: the register is 2-D.
        geom = shapely.force_2d(shape(obj))
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise ValidationFailed("register.geometry_unreadable", field=field, reason=str(exc)) from exc
    if geom.is_empty:
        raise ValidationFailed("register.geometry_empty", field=field)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise ValidationFailed("register.geometry_invalid", field=field, reason=reason)
    return geom


def check_geometry_class(geom: BaseGeometry, geometry_class: str, kind: str, *, field: str = "geometry") -> None:
    """Refuse a point for a garden or a polygon for a tool, naming the kind."""
    if geometry_class == "area" and geom.geom_type not in AREA_TYPES:
        raise ValidationFailed("register.needs_area", field=field, kind=kind, geometry_type=geom.geom_type)
    if geometry_class == "point" and geom.geom_type not in POINT_TYPES:
        raise ValidationFailed("register.needs_point", field=field, kind=kind, geometry_type=geom.geom_type)


def to_ewkt(geom: BaseGeometry, srid: int = 4326) -> str:
    """Extended WKT with the SRID, for PostGIS."""
    return f"SRID={srid};{geom.wkt}"
