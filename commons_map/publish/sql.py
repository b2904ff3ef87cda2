"""The one privacy rule as SQL: the public source rows of a collection.

A row is public when its commons is marked public and is not archived. Its geometry is the
commons' own, or the place where it is kept (when that place is public too). When the commons
or that place is marked approximate, the public gets a point snapped to the register's grid
(``APPROXIMATE_GRID_DEG``, the same ``ST_SnapToGrid(ST_PointOnSurface(...))`` the register shows
to outsiders), and every filter (bbox, CQL2, tiles) works on that snapped point, so the exact
place cannot be found by probing. No column naming a member is ever selected.

The source is a UNION ALL of two branches so that the common case (a commons with its own exact
geometry) keeps the bare ``c.geom`` column: filters on ``s.geom`` are pushed down into that
branch and use the GiST index.
"""

from __future__ import annotations

import re

from commons_map.publish.collections import Collection
from commons_map.register.service import APPROXIMATE_GRID_DEG

# (``co`` is the row's cooperative: an archived cooperative publishes nothing.)
PUBLIC_ROW = "c.visibility = 'public' AND c.archived_at IS NULL AND co.archived_at IS NULL"


def snapped(geom_sql: str) -> str:
    """An approximate place as the public sees it (the register's rule for outsiders)."""
    return f"ST_SnapToGrid(ST_PointOnSurface({geom_sql}), {APPROXIMATE_GRID_DEG!r})"


def _categories(collection: Collection) -> str:
    if collection.categories is None:
        return ""
    # Fixed identifiers from COLLECTIONS, never user input.
    return " AND k.category IN (" + ", ".join(f"'{c}'" for c in collection.categories) + ")"


COLUMNS = (
    "c.id, co.slug AS cooperative, c.kind_code AS kind, k.label_fr AS kind_label_fr, k.label_en AS kind_label_en,"
    " k.category, c.name, c.description, c.state, c.area_m2, c.location_precision, c.updated_at"
)


def public_source(collection: Collection, *, row_version: bool = False) -> str:
    """SQL of the public rows of a collection, with a ``geom`` column in EPSG:4326.

    It reads the view ``commons_public`` (migration 0012_tenancy: the public commons, owned by the
    tables' owner), not ``commons`` under row-level security, whose policies would keep the
    spatial index from the bbox and tile filters (PostGIS's operators are not leakproof).

    With ``row_version``, a ``row_version`` bigint column too: a hash of the id and of the
    physical version (``xmin``, ``ctid``) of every row the public row is made of (the commons,
    its kind, its cooperative, the place it is kept at). Any INSERT, UPDATE or DELETE of those
    rows changes it, committed or in the reader's own transaction; the tile cache
    (``publish.tilecache``) keys tiles on the count and sum of these over a tile.
    """
    cats = _categories(collection)
    own = "c.geom"
    derived = (
        "CASE WHEN c.location_precision = 'approximate' OR p.location_precision = 'approximate'"
        f" THEN {snapped('COALESCE(c.geom, p.geom)')} ELSE COALESCE(c.geom, p.geom) END"
    )
    # Cast to c.geom's own type, so that a view over the union keeps its SRID (tipg reads it).
    typed = "::geometry(Geometry, 4326)"
    if collection.as_points:
        own = "ST_PointOnSurface(c.geom)"
        derived = f"ST_PointOnSurface({derived})"
    own_v = der_v = ""
    if row_version:
        v = "c.row_xmin::text || c.row_ctid::text || k.xmin::text || k.ctid::text || co.xmin::text || co.ctid::text"
        own_v = f", hashtextextended({v}, c.id) AS row_version"
        der_v = (
            f", hashtextextended({v} || COALESCE(p.row_xmin::text || p.row_ctid::text, ''), c.id)"
            " AS row_version"
        )
    return (
        f"SELECT {COLUMNS}, {own} AS geom{own_v}"
        " FROM commons_public c JOIN commons_kinds k ON k.code = c.kind_code"
        " JOIN cooperatives co ON co.id = c.cooperative_id"
        f" WHERE {PUBLIC_ROW} AND c.geom IS NOT NULL AND c.location_precision = 'exact'{cats}"
        " UNION ALL "
        f"SELECT {COLUMNS}, ({derived}){typed} AS geom{der_v}"
        " FROM commons_public c JOIN commons_kinds k ON k.code = c.kind_code"
        " JOIN cooperatives co ON co.id = c.cooperative_id"
        " LEFT JOIN commons_public p ON p.id = c.kept_at_id"
        "  AND p.visibility = 'public' AND p.archived_at IS NULL"
        # Matches the partial index ix_commons_public_derived (migration 0006_publish).
        f" WHERE {PUBLIC_ROW} AND (c.geom IS NULL OR c.location_precision = 'approximate'){cats}"
        "  AND COALESCE(c.geom, p.geom) IS NOT NULL"
    )


def figures_join(collection: Collection) -> str:
    """The join that brings each row's figures (``pf``: the ``publish_figures`` table, kept by
    ``figures.sync``); a row without figures reads NULLs, which the queryables turn into "no data"."""
    if not collection.figures:
        return ""
    return " LEFT JOIN publish_figures pf ON pf.commons_id = s.id"


def public_rows(collection: Collection) -> str:
    """`` FROM`` the public rows of a collection (alias ``s``) with their figures (``pf``)."""
    return f" FROM ({public_source(collection)}) s{figures_join(collection)}"


def psycopg_style(sql: str) -> str:
    """A statement written with SQLAlchemy's ``:name`` parameters, with psycopg's ``%(name)s``
    instead (``::`` casts and times left alone, ``%`` escaped): for the statements run on a bare
    psycopg connection (``api.fast_tiles``, the benchmarks' pgbench scripts)."""
    return re.sub(r"(?<![:\w\\]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))
