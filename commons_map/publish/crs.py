"""Coordinate reference systems the public layers are served in (OGC API - Features Part 2)."""

from __future__ import annotations

from dataclasses import dataclass

from commons_map.errors import ValidationFailed

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class Crs:
    """One CRS: its URI, SRID, whether its axes are latitude first, and output precision."""

    uri: str
    srid: int
    lat_first: bool
    decimals: int

    def out_geom(self, col: str) -> str:
        """SQL turning a geometry column in EPSG:4326 (lon/lat) into this CRS, axes as declared."""
        if self.srid == 4326:
            return f"ST_FlipCoordinates({col})" if self.lat_first else col
        return f"ST_Transform({col}, {self.srid})"

    def to_storage(self, geom_sql: str) -> str:
        """SQL turning a geometry given in this CRS (axes as declared) into EPSG:4326 lon/lat."""
        if self.srid == 4326:
            return (
                f"ST_SetSRID(ST_FlipCoordinates({geom_sql}), 4326)" if self.lat_first else geom_sql
            )
        return f"ST_Transform({geom_sql}, 4326)"


SUPPORTED: dict[str, Crs] = {
    c.uri: c
    for c in (
        Crs(CRS84, 4326, False, 7),
        Crs("http://www.opengis.net/def/crs/EPSG/0/4326", 4326, True, 7),
        Crs("http://www.opengis.net/def/crs/EPSG/0/3857", 3857, False, 2),
        Crs("http://www.opengis.net/def/crs/EPSG/0/2154", 2154, False, 2),
    )
}
STORAGE = SUPPORTED[CRS84]
# Short forms people type (and safe CURIEs); answered with the full URI in Content-Crs.
ALIASES = {
    "CRS84": CRS84,
    "OGC:CRS84": CRS84,
    "[OGC:CRS84]": CRS84,
    **{f"EPSG:{c.srid}": c.uri for c in SUPPORTED.values() if c.uri != CRS84},
    **{f"[EPSG:{c.srid}]": c.uri for c in SUPPORTED.values() if c.uri != CRS84},
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84h": CRS84,
}


def parse_crs(raw: str | None, *, field: str) -> Crs:
    """The CRS named by a URI (or a short form), CRS84 when absent; ValidationFailed otherwise."""
    if raw is None or raw == "":
        return STORAGE
    value = raw.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    value = ALIASES.get(value, value)
    if value.startswith("https://www.opengis.net/"):
        value = "http://" + value[len("https://") :]
    crs = SUPPORTED.get(value)
    if crs is None:
        raise ValidationFailed("publish.unsupported_crs", field=field, given=raw, supported=list(SUPPORTED))
    return crs
