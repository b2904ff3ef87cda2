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
            raise ValidationFailed(
                f"{field}: position {where} must be [longitude, latitude]", field=field
            )
        for v in coords:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValidationFailed(
                    f"{field}: position {where} holds a value that is not a finite number",
                    field=field,
                )
        lon, lat = coords[0], coords[1]
        if not -180 <= lon <= 180:
            raise ValidationFailed(
                f"{field}: longitude {lon} at {where} is out of range [-180, 180]", field=field
            )
        if not -90 <= lat <= 90:
            raise ValidationFailed(
                f"{field}: latitude {lat} at {where} is out of range [-90, 90]"
                " (are longitude and latitude swapped?)",
                field=field,
            )
        return
    if not isinstance(coords, list | tuple) or not coords:
        raise ValidationFailed(f"{field}: coordinates at {where or 'top'} must be a non-empty array", field=field)
    for i, c in enumerate(coords):
        _positions(c, depth - 1, f"{where}[{i}]", field)


def _rings(rings: list, where: str, field: str) -> None:
    for i, ring in enumerate(rings):
        if len(ring) < 4:
            raise ValidationFailed(
                f"{field}: ring {where}[{i}] has {len(ring)} positions; a closed ring needs at least 4",
                field=field,
            )
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise ValidationFailed(
                f"{field}: ring {where}[{i}] is not closed (its last position must repeat the first)",
                field=field,
            )


DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def parse_geojson_geometry(obj: Any, *, field: str = "geometry") -> BaseGeometry:
    """A valid shapely geometry from a GeoJSON geometry object, or ValidationFailed naming why."""
    if not isinstance(obj, dict):
        raise ValidationFailed(f"{field}: must be a GeoJSON geometry object", field=field)
    gtype = obj.get("type")
    if gtype not in KNOWN_TYPES:
        raise ValidationFailed(
            f"{field}: unknown geometry type {gtype!r}; expected one of {', '.join(KNOWN_TYPES)}",
            field=field,
        )
    coords = obj.get("coordinates")
    _positions(coords, DEPTH[gtype], "", field)
    if gtype == "Polygon":
        _rings(coords, "", field)
    elif gtype == "MultiPolygon":
        for i, poly in enumerate(coords):
            _rings(poly, f"[{i}]", field)
    try:
        geom = shape(obj)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise ValidationFailed(f"{field}: not a readable geometry ({exc})", field=field) from exc
    if geom.is_empty:
        raise ValidationFailed(f"{field}: the geometry is empty", field=field)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise ValidationFailed(
            f"{field}: invalid geometry: {reason}"
            " (a ring crossing itself, or rings overlapping, is the usual cause)",
            field=field,
        )
    return geom


def check_geometry_class(geom: BaseGeometry, geometry_class: str, kind: str, *, field: str = "geometry") -> None:
    """Refuse a point for a garden or a polygon for a tool, naming the kind."""
    if geometry_class == "area" and geom.geom_type not in AREA_TYPES:
        raise ValidationFailed(
            f"{field}: a {kind} needs a Polygon or MultiPolygon, not a {geom.geom_type}", field=field
        )
    if geometry_class == "point" and geom.geom_type not in POINT_TYPES:
        raise ValidationFailed(f"{field}: a {kind} needs a Point, not a {geom.geom_type}", field=field)


def to_ewkt(geom: BaseGeometry, srid: int = 4326) -> str:
    """Extended WKT with the SRID, for PostGIS."""
    return f"SRID={srid};{geom.wkt}"
