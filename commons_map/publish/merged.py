"""Low-zoom merged tiles, precomputed per grid cell and kept up to date by the database.

The zoom rule (README "Speed"): at zoom ``MERGE_MAX_ZOOM`` and below, a tile is cut into
``MERGE_GRID`` x ``MERGE_GRID`` cells and the public polygons of one ``merge_by`` value whose
bounding-box centre lies in one cell become one feature (their bounding box, ``count``, ``area_m2``).
A cell of zoom z is a cell of the world's grid at level z + 6 (64 = 2^6 cells a tile side), so the
cells nest: a cell of zoom z is the union of four cells of zoom z + 1.

The table ``publish_merged`` (migration 0019_publish_merged) holds, per collection, zoom, cell and
value, the count, the summed area and the bounding box (EPSG:3857 metres) of the polygons counted
there. It is public data derived from public rows only (the ``publish.sql`` source), read by anyone,
written only by the functions below (``SECURITY DEFINER``, the tables' owner), from statement-level
triggers on the rows the source reads (``commons``, ``publish_figures``, and the kinds and
cooperatives when a category or an archive date changes). A change recomputes the cells of the rows
it touched (their old and new places): the finest level from the public rows of those cells, every
coarser level from its four children. So a low-zoom tile reads a few thousand rows at most, whatever
the number of parcels under it; and it is fresh in the writer's own transaction, for everyone at
commit, on a streaming replica as soon as it replays.

The SQL of the functions is made here from the collections (``refresh_function_sql``) and installed
by a migration; ``tests/commons_map/test_publish_merged.py`` fails when the installed function
differs from what the code makes now (a change of a collection then needs a new migration).
"""

from __future__ import annotations

import math
from dataclasses import replace

from commons_map.publish.collections import COLLECTIONS, Collection
from commons_map.publish.sql import public_rows

MERGE_MAX_ZOOM = 13
"""Zooms 0-13 draw merged polygons, zooms 14 and above one feature per commons."""
MERGE_GRID = 64
"""A merged tile is cut into MERGE_GRID x MERGE_GRID cells (64 tile units, ~4-8 screen pixels each)."""
GRID_SHIFT = 6  # 2**6 == MERGE_GRID
FINE = MERGE_MAX_ZOOM + GRID_SHIFT  # level of the world grid of the finest merged cells
KEY_BITS = 20  # a cell key: x << 20 | y (levels up to 20)
KEY_MASK = (1 << KEY_BITS) - 1
MERC = 6378137.0
MERC_HALF = math.pi * MERC
MAX_LAT = 85.0511287798
POINT = "GeometryType({g}) IN ('POINT', 'MULTIPOINT')"
BATCH_SCAN = 200
"""Above this many cells, the refresh reads the source once and works set by set, not cell by cell."""


def merged_collections() -> list[Collection]:
    """The collections whose low-zoom tiles are merged."""
    return [c for c in COLLECTIONS.values() if c.merge_by is not None]


def merc_x(lon: str) -> str:
    """SQL: a longitude in EPSG:3857 metres."""
    return f"({MERC!r} * radians({lon}))"


def merc_y(lat: str) -> str:
    """SQL: a latitude in EPSG:3857 metres (clamped to the Web Mercator square)."""
    return f"({MERC!r} * ln(tan(pi() / 4 + radians(greatest(least({lat}, {MAX_LAT!r}), -{MAX_LAT!r})) / 2)))"


FUNCTIONS = f"""
CREATE FUNCTION publish_cell_key(g geometry) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (least(greatest(floor(({merc_x('(ST_XMin(g) + ST_XMax(g)) / 2')} + {MERC_HALF!r})
                                   / {2 * MERC_HALF / 2**FINE!r}), 0), {2**FINE - 1})::bigint << {KEY_BITS})
            | least(greatest(floor(({MERC_HALF!r} - {merc_y('(ST_YMin(g) + ST_YMax(g)) / 2')})
                                   / {2 * MERC_HALF / 2**FINE!r}), 0), {2**FINE - 1})::bigint $$;
COMMENT ON FUNCTION publish_cell_key(geometry) IS
  'The finest merged cell (world grid level {FINE}) holding the centre of the bounding box: x << {KEY_BITS} | y';
CREATE FUNCTION publish_cell_envelope(k bigint) RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ST_Transform(ST_MakeEnvelope(
    -{MERC_HALF!r} + (k >> {KEY_BITS}) * {2 * MERC_HALF / 2**FINE!r},
    {MERC_HALF!r} - ((k & {KEY_MASK}) + 1) * {2 * MERC_HALF / 2**FINE!r},
    -{MERC_HALF!r} + ((k >> {KEY_BITS}) + 1) * {2 * MERC_HALF / 2**FINE!r},
    {MERC_HALF!r} - (k & {KEY_MASK}) * {2 * MERC_HALF / 2**FINE!r}, 3857), 4326) $$;
"""


def _cells_of_source(c: Collection) -> str:
    """SELECT of the source's polygons with their finest cell key, merge value, area and box."""
    key = c.queryable(c.merge_by or "")
    assert key is not None, c.merge_by
    return (
        "SELECT publish_cell_key(s.geom) AS k, COALESCE(" + key.sql + "::text, '') AS mkey, s.area_m2 AS area,"
        f" {merc_x('ST_XMin(s.geom)')} AS x0, {merc_y('ST_YMin(s.geom)')} AS y0,"
        f" {merc_x('ST_XMax(s.geom)')} AS x1, {merc_y('ST_YMax(s.geom)')} AS y1"
        f"{public_rows(c)}"
        f" WHERE NOT {POINT.format(g='s.geom')}"
    )


AGG = "count(*)::int, sum(q.area), min(q.x0), min(q.y0), max(q.x1), max(q.y1)"
COLS = "collection, z, cx, cy, mkey, n, area, x0, y0, x1, y1"


def _fine_insert(c: Collection) -> str:
    """One cell: its rows through the spatial index (a bounding box holds its centre)."""
    return (
        f"INSERT INTO publish_merged ({COLS}) SELECT '{c.id}', {MERGE_MAX_ZOOM},"
        f" (q.k >> {KEY_BITS})::int, (q.k & {KEY_MASK})::int, q.mkey, {AGG}"
        f" FROM ({_cells_of_source(c)} AND s.geom && publish_cell_envelope(cell)) q"
        " WHERE q.k = cell GROUP BY q.k, q.mkey"
    )


def _fine_insert_all(cols: list[Collection]) -> str:
    """Many cells: the finest level of every merged collection from ONE read of the public rows over
    the cells' extent (``area``). Each collection is the public source of some categories, merged by
    one of its queryables; so the rows are read once with every category and every merge value, and
    each collection groups its own (the same rows as one read per collection made)."""
    assert cols and not any(c.as_points for c in cols), [c.id for c in cols]
    every = replace(cols[0], categories=None, figures=any(c.figures for c in cols))
    keys = []
    for c in cols:
        key = c.queryable(c.merge_by or "")
        assert key is not None, c.merge_by
        keys.append(f"COALESCE({key.sql}::text, '') AS m{len(keys)}")
    read = (
        f"SELECT publish_cell_key(s.geom) AS k, s.category, {', '.join(keys)}, s.area_m2 AS area,"
        f" {merc_x('ST_XMin(s.geom)')} AS x0, {merc_y('ST_YMin(s.geom)')} AS y0,"
        f" {merc_x('ST_XMax(s.geom)')} AS x1, {merc_y('ST_YMax(s.geom)')} AS y1"
        f"{public_rows(every)}"
        f" WHERE NOT {POINT.format(g='s.geom')} AND s.geom && area OFFSET 0"
    )
    groups = []
    for i, c in enumerate(cols):
        where = "" if c.categories is None else (
            " WHERE q.category IN (" + ", ".join(f"'{cat}'" for cat in c.categories) + ")")
        groups.append(
            f"SELECT '{c.id}', {MERGE_MAX_ZOOM}, (q.k >> {KEY_BITS})::int, (q.k & {KEY_MASK})::int, q.m{i}, {AGG}"
            f" FROM hit q{where} GROUP BY q.k, q.m{i}"
        )
    return (
        f"INSERT INTO publish_merged ({COLS}) WITH hit AS MATERIALIZED (SELECT * FROM ({read}) r"
        " WHERE r.k IN (SELECT unnest(cells))) " + " UNION ALL ".join(groups)
    )


def _delete_all(c: Collection, level_z: str) -> str:
    # by key (a hash semi-join), within the cells' columns (the primary key's range)
    return (
        f"DELETE FROM publish_merged m WHERE m.collection = '{c.id}' AND m.z = {level_z}"
        f" AND m.cx BETWEEN x_lo AND x_hi AND ((m.cx::bigint << {KEY_BITS}) | m.cy) IN (SELECT unnest(cells))"
    )


def _parents_insert(c: Collection) -> str:
    return (
        f"INSERT INTO publish_merged ({COLS}) SELECT '{c.id}', lvl, q.cx >> 1, q.cy >> 1, q.mkey,"
        " sum(q.n)::int, sum(q.area), min(q.x0), min(q.y0), max(q.x1), max(q.y1) FROM publish_merged q"
        f" WHERE q.collection = '{c.id}' AND q.z = lvl + 1 AND q.cx BETWEEN x_lo * 2 AND x_hi * 2 + 1"
        f" AND (((q.cx >> 1)::bigint << {KEY_BITS}) | (q.cy >> 1)) IN (SELECT unnest(cells))"
        " GROUP BY q.cx >> 1, q.cy >> 1, q.mkey"
    )


def _in_collections() -> str:
    return "(" + ", ".join(f"'{c.id}'" for c in merged_collections()) + ")"


def _delete_one(level_z: str) -> str:
    return (
        f"DELETE FROM publish_merged WHERE collection IN {_in_collections()} AND z = {level_z}"
        " AND cx = fx AND cy = fy"
    )


def _parent_insert() -> str:
    return (
        f"INSERT INTO publish_merged ({COLS}) SELECT q.collection, lvl, fx, fy, q.mkey,"
        " sum(q.n)::int, sum(q.area), min(q.x0), min(q.y0), max(q.x1), max(q.y1) FROM publish_merged q"
        f" WHERE q.collection IN {_in_collections()} AND q.z = lvl + 1"
        " AND q.cx BETWEEN fx * 2 AND fx * 2 + 1 AND q.cy BETWEEN fy * 2 AND fy * 2 + 1"
        " GROUP BY q.collection, q.mkey"
    )


def refresh_function_sql() -> str:
    """CREATE OR REPLACE of ``publish_merged_refresh(cells bigint[])``: the cells' merged rows, at
    every merged zoom, made again from the public rows now.

    A few cells (one edit): cell by cell, each statement through an index (the source's GiST index
    on the cell's envelope, the table's key). Many (an import): set by set, the source read once.
    """
    cols = merged_collections()

    def each(fn, *args: str) -> str:  # noqa: ANN001
        return ";\n      ".join(fn(c, *args) for c in cols)

    return f"""
CREATE OR REPLACE FUNCTION publish_merged_refresh(cells bigint[]) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  lvl integer;
  cell bigint;
  fx integer;
  fy integer;
  area geometry;
  x_lo integer;
  x_hi integer;
  y_lo integer;
  y_hi integer;
BEGIN
  cells := ARRAY(SELECT DISTINCT k FROM unnest(cells) AS u(k) WHERE k IS NOT NULL);
  IF cardinality(cells) = 0 THEN
    RETURN;
  END IF;
  IF cardinality(cells) <= {BATCH_SCAN} THEN
    FOREACH cell IN ARRAY cells LOOP
      fx := cell >> {KEY_BITS};
      fy := cell & {KEY_MASK};
      {_delete_one(str(MERGE_MAX_ZOOM))};
      {each(_fine_insert)};
      FOR lvl IN REVERSE {MERGE_MAX_ZOOM - 1}..0 LOOP
        fx := fx >> 1;
        fy := fy >> 1;
        {_delete_one("lvl")};
        {_parent_insert()};
      END LOOP;
    END LOOP;
    RETURN;
  END IF;
  -- The cells' extent: Web Mercator's x and y map to longitude and latitude one by one, so the
  -- extent of the cells' envelopes is the envelope of the extreme cells' corners.
  SELECT min(k >> {KEY_BITS}), max(k >> {KEY_BITS}), min(k & {KEY_MASK}), max(k & {KEY_MASK})
    INTO x_lo, x_hi, y_lo, y_hi FROM unnest(cells) AS u(k);
  area := ST_Transform(ST_MakeEnvelope(-{MERC_HALF!r} + x_lo * {2 * MERC_HALF / 2**FINE!r},
                                       {MERC_HALF!r} - (y_hi + 1) * {2 * MERC_HALF / 2**FINE!r},
                                       -{MERC_HALF!r} + (x_hi + 1) * {2 * MERC_HALF / 2**FINE!r},
                                       {MERC_HALF!r} - y_lo * {2 * MERC_HALF / 2**FINE!r}, 3857), 4326);
  {each(_delete_all, str(MERGE_MAX_ZOOM))};
  {_fine_insert_all(cols)};
  FOR lvl IN REVERSE {MERGE_MAX_ZOOM - 1}..0 LOOP
    cells := ARRAY(SELECT DISTINCT ((k >> {KEY_BITS + 1}) << {KEY_BITS}) | ((k & {KEY_MASK}) >> 1)
                   FROM unnest(cells) AS u(k));
    x_lo := x_lo >> 1;
    x_hi := x_hi >> 1;
    {each(_delete_all, "lvl")};
    {each(_parents_insert)};
  END LOOP;
END $fn$;
"""


# The rows a change touched, as finest cells: where their public geometry was and is (their own,
# or the place they are kept at).
_CELLS_OF = (
    "ARRAY(SELECT publish_cell_key(COALESCE(r.geom, p.geom)) FROM ({rows}) r"
    " LEFT JOIN commons p ON p.id = r.kept_at_id)"
)
_CHANGED = (
    "(o.geom, o.visibility, o.archived_at IS NULL, o.kind_code, o.cooperative_id, o.area_m2,"
    " o.location_precision, o.kept_at_id) IS DISTINCT FROM (n.geom, n.visibility, n.archived_at IS NULL,"
    " n.kind_code, n.cooperative_id, n.area_m2, n.location_precision, n.kept_at_id)"
)
_FIGURE_CELLS = (
    "ARRAY(SELECT publish_cell_key(COALESCE(c.geom, p.geom)) FROM ({ids}) f JOIN commons c ON c.id = f.commons_id"
    " LEFT JOIN commons p ON p.id = c.kept_at_id)"
)

TRIGGERS = f"""
CREATE FUNCTION publish_merged_rebuild() RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  DELETE FROM publish_merged;
  PERFORM publish_merged_refresh({_CELLS_OF.format(rows="SELECT geom, kept_at_id FROM commons")});
END $fn$;

CREATE FUNCTION publish_merged_commons_changed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM publish_merged_refresh({_CELLS_OF.format(rows="SELECT geom, kept_at_id FROM new_rows")});
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM publish_merged_refresh({_CELLS_OF.format(rows="SELECT geom, kept_at_id FROM old_rows")});
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM publish_merged_refresh({_CELLS_OF.format(rows=(
        f"SELECT o.geom, o.kept_at_id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED}"
        f" UNION ALL SELECT n.geom, n.kept_at_id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED}"))});
  ELSE  -- TRUNCATE
    DELETE FROM publish_merged;
  END IF;
  RETURN NULL;
END $fn$;

CREATE FUNCTION publish_merged_figures_changed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM publish_merged_refresh({_FIGURE_CELLS.format(ids="SELECT commons_id FROM new_rows")});
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM publish_merged_refresh({_FIGURE_CELLS.format(ids="SELECT commons_id FROM old_rows")});
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM publish_merged_refresh({_FIGURE_CELLS.format(
        ids="SELECT commons_id FROM old_rows UNION SELECT commons_id FROM new_rows")});
  ELSE
    PERFORM publish_merged_rebuild();
  END IF;
  RETURN NULL;
END $fn$;

-- A kind changing category, or a cooperative archived or back: every cell (rare).
CREATE FUNCTION publish_merged_kinds_changed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.code = o.code
             WHERE o.category IS DISTINCT FROM n.category) THEN
    PERFORM publish_merged_rebuild();
  END IF;
  RETURN NULL;
END $fn$;
CREATE FUNCTION publish_merged_cooperatives_changed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
             WHERE (o.archived_at IS NULL) IS DISTINCT FROM (n.archived_at IS NULL)) THEN
    PERFORM publish_merged_rebuild();
  END IF;
  RETURN NULL;
END $fn$;

CREATE TRIGGER publish_merged_ins AFTER INSERT ON commons REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_commons_changed();
CREATE TRIGGER publish_merged_upd AFTER UPDATE ON commons REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_commons_changed();
CREATE TRIGGER publish_merged_del AFTER DELETE ON commons REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_commons_changed();
CREATE TRIGGER publish_merged_trunc AFTER TRUNCATE ON commons
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_commons_changed();
CREATE TRIGGER publish_merged_ins AFTER INSERT ON publish_figures REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_figures_changed();
CREATE TRIGGER publish_merged_upd AFTER UPDATE ON publish_figures REFERENCING OLD TABLE AS old_rows
  NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_figures_changed();
CREATE TRIGGER publish_merged_del AFTER DELETE ON publish_figures REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_figures_changed();
CREATE TRIGGER publish_merged_trunc AFTER TRUNCATE ON publish_figures
  FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_figures_changed();
CREATE TRIGGER publish_merged_upd AFTER UPDATE ON commons_kinds REFERENCING OLD TABLE AS old_rows
  NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_kinds_changed();
CREATE TRIGGER publish_merged_upd AFTER UPDATE ON cooperatives REFERENCING OLD TABLE AS old_rows
  NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION publish_merged_cooperatives_changed();
"""

DEFINERS = ("publish_merged_refresh(bigint[])", "publish_merged_rebuild()")


# --- reading -----------------------------------------------------------------------------------


def cells_where(alias: str = "m") -> str:
    """The merged rows of tile :z/:x/:y of collection :merged_collection."""
    return (
        f"{alias}.collection = :merged_collection AND {alias}.z = :z"
        f" AND {alias}.cx BETWEEN :x * {MERGE_GRID} AND :x * {MERGE_GRID} + {MERGE_GRID - 1}"
        f" AND {alias}.cy BETWEEN :y * {MERGE_GRID} AND :y * {MERGE_GRID} + {MERGE_GRID - 1}"
    )
