"""Reading the public layers: items pages, single items, extents, tiles and full exports.

Every query starts from ``sql.public_source`` (the privacy rule) and builds its GeoJSON or MVT
in the database. Paging is by key (``id > cursor``), never OFFSET; ``numberMatched`` is given only
when it is exact without a COUNT (the whole result fits in the first page).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from commons_map import tenancy
from commons_map.errors import NotFound, ValidationFailed
from commons_map.publish import figures as figs
from commons_map.publish import tilecache
from commons_map.publish.collections import Collection, Queryable
from commons_map.publish.cql2 import Params, compile_filter
from commons_map.publish.crs import CRS84, STORAGE, Crs
from commons_map.publish.merged import MERGE_GRID, MERGE_MAX_ZOOM, cells_where  # noqa: F401 - MERGE_GRID re-exported
from commons_map.publish.sql import figures_join, public_rows, public_source

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
MAX_ZOOM = 24
TILE_EXTENT = 4096
TILE_BUFFER = 64
MERC = 6378137.0
MERC_HALF = math.pi * MERC
WORLD_3857 = f"ST_MakeEnvelope({-MERC_HALF!r}, {-MERC_HALF!r}, {MERC_HALF!r}, {MERC_HALF!r})"


# --- parameters ---------------------------------------------------------------------------------


def parse_limit(raw: str | None) -> int:
    """``limit``: default 10, at least 1, clamped to 10000 as the standard says."""
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\s*\d+\s*", raw):
        raise ValidationFailed("publish.limit_not_number", field="limit", given=raw)
    value = int(raw)
    if value < 1:
        raise ValidationFailed("publish.limit_too_small", field="limit", given=value)
    return min(value, MAX_LIMIT)


def parse_cursor(raw: str | None) -> int | None:
    """``cursor``: the id after which the next page starts (from a ``next`` link)."""
    if raw is None:
        return None
    if not re.fullmatch(r"\d{1,18}", raw):
        raise ValidationFailed("publish.bad_cursor", field="cursor", given=raw)
    return int(raw)


@dataclass(frozen=True)
class Bbox:
    """A bounding box as given, in its CRS; ``sql`` gives the envelope(s) in EPSG:4326."""

    coords: tuple[float, float, float, float]
    crs: Crs


def parse_bbox(raw: str | None, crs: Crs = STORAGE) -> Bbox | None:
    """``bbox``: 4 (or 6, heights ignored) numbers in ``bbox-crs`` axis order."""
    if raw is None:
        return None
    try:
        nums = [float(p) for p in raw.split(",")]
    except ValueError:
        raise ValidationFailed("publish.bbox_numbers", field="bbox", given=raw) from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or any(n != n or n in (float("inf"), float("-inf")) for n in nums):
        raise ValidationFailed("publish.bbox_numbers", field="bbox", given=raw)
    if crs.lat_first:  # EPSG:4326 is latitude, longitude
        nums = [nums[1], nums[0], nums[3], nums[2]]
    minx, miny, maxx, maxy = nums
    if crs.srid == 4326:
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValidationFailed("publish.bbox_range", field="bbox", given=raw)
    elif minx > maxx or miny > maxy:
        raise ValidationFailed("publish.bbox_order", field="bbox", given=raw)
    return Bbox((minx, miny, maxx, maxy), crs)


def _bbox_sql(b: Bbox, params: Params) -> str:
    minx, miny, maxx, maxy = b.coords
    if b.crs.srid == 4326:
        if minx > maxx:  # crosses the antimeridian
            p = [params.add(v) for v in (minx, miny, 180.0, maxy, -180.0, miny, maxx, maxy)]
            return (
                f"(s.geom && ST_MakeEnvelope({p[0]}, {p[1]}, {p[2]}, {p[3]}, 4326)"
                f" OR s.geom && ST_MakeEnvelope({p[4]}, {p[5]}, {p[6]}, {p[7]}, 4326))"
            )
        p = [params.add(v) for v in (minx, miny, maxx, maxy)]
        return f"ST_Intersects(s.geom, ST_MakeEnvelope({p[0]}, {p[1]}, {p[2]}, {p[3]}, 4326))"
    p = [params.add(v) for v in (minx, miny, maxx, maxy)]
    env = (f"ST_Transform(ST_Segmentize(ST_MakeEnvelope({p[0]}, {p[1]}, {p[2]}, {p[3]}, {b.crs.srid}),"
           f" ({p[2]} - {p[0]}) / 16.0), 4326)")
    return f"ST_Intersects(s.geom, {env})"


def _instant(raw: str, *, end: bool) -> datetime:
    value = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            d = date.fromisoformat(value)
            return datetime.combine(d, time.max if end else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationFailed("publish.datetime_format", field="datetime", given=raw) from None
    if parsed.tzinfo is None:
        raise ValidationFailed("publish.datetime_zone", field="datetime", given=raw)
    return parsed


def parse_datetime(raw: str | None) -> tuple[datetime | None, datetime | None] | None:
    """``datetime``: an instant, or an interval ``a/b`` with ``..`` (or empty) for an open end."""
    if raw is None:
        return None
    if "/" in raw:
        a, _, b = raw.partition("/")
        start = None if a in ("", "..") else _instant(a, end=False)
        stop = None if b in ("", "..") else _instant(b, end=True)
        if start is None and stop is None:
            raise ValidationFailed("publish.interval_open", field="datetime")
        if start and stop and start > stop:
            raise ValidationFailed("publish.interval_order", field="datetime", given=raw)
        return start, stop
    if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", raw):
        return _instant(raw, end=False), _instant(raw, end=True)
    at = _instant(raw, end=False)
    return at, at


def _typed(q: Queryable, raw: str) -> Any:
    try:
        if q.type == "integer":
            return int(raw)
        if q.type == "number":
            return float(raw)
        if q.type == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
        if q.type == "date":
            return date.fromisoformat(raw)
        if q.type == "date-time":
            return _instant(raw, end=False)
    except ValueError:
        raise ValidationFailed("publish.queryable_type", field=q.name, given=raw, type=q.type) from None
    return raw


# --- the query ----------------------------------------------------------------------------------


@dataclass
class ItemsQuery:
    """A parsed items request on one collection."""

    collection: Collection
    limit: int = DEFAULT_LIMIT
    cursor: int | None = None
    bbox: Bbox | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None
    filter: str | None = None
    filter_crs: Crs = STORAGE
    crs: Crs = STORAGE
    properties: dict[str, str] = field(default_factory=dict)


def _where(q: ItemsQuery, params: Params) -> list[str]:
    where: list[str] = []
    if q.bbox is not None:
        where.append(_bbox_sql(q.bbox, params))
    if q.datetime is not None:
        start, stop = q.datetime
        if start is not None:
            where.append(f"s.updated_at >= {params.add(start)}")
        if stop is not None:
            where.append(f"s.updated_at <= {params.add(stop)}")
    for name, raw in q.properties.items():
        qy = q.collection.queryable(name)
        if qy is None:
            raise ValidationFailed("publish.not_queryable", field=name, collection=q.collection.id)
        where.append(f"{qy.sql} = {params.add(_typed(qy, raw))}")
    if q.filter is not None:
        where.append(
            compile_filter(q.filter, collection=q.collection, params=params, crs=q.filter_crs)
        )
    return where


def _props_sql(collection: Collection, *, skip: tuple[str, ...] = ("id",)) -> str:
    pairs = []
    for qy in collection.queryables:
        if qy.name in skip:
            continue
        value = qy.sql
        if qy.type == "date-time":
            # the colons quoted: a ``:MI`` would read as a parameter to pgbench (bench/ogc.py runs this SQL)
            value = f"to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\":\"MI\":\"SS\"Z\"')"
        pairs.append(f"'{qy.name}', {value}")
    # json_build_object takes at most 100 arguments; we stay far below.
    return "json_build_object(" + ", ".join(pairs) + ")"


def _feature_sql(collection: Collection, crs: Crs) -> str:
    geom = crs.out_geom("s.geom")
    return (
        '\'{"type":"Feature","id":\' || s.id || \',"geometry":\' || '
        f"COALESCE(ST_AsGeoJSON({geom}, {crs.decimals}, 0), 'null') || ',\"properties\":' || "
        f"{_props_sql(collection)}::text || '}}'"
    )


def _base_params(collection: Collection, session: Session) -> dict[str, Any]:
    """The parameters every query of the collection takes; brings the figures table up to date
    (at most once a second: ``figures.sync_recently``; the tiles, whose cache is keyed by what the
    table holds, read its stamp on every request instead)."""
    if not collection.figures:
        return {}
    figs.sync_recently(session)
    return _no_data_labels()


def _no_data_labels() -> dict[str, str]:
    labels = figs.status_labels()["no_data"]
    return {"nodata_fr": labels["fr"], "nodata_en": labels["en"]}


def _figures_params(
    collection: Collection, session: Session, *, jit_off: bool = False
) -> tuple[dict[str, Any], tuple]:
    if not collection.figures:
        if jit_off:
            no_jit(session)
        return {}, ()
    stamp = figs.sync(session, jit_off=jit_off)
    return _no_data_labels(), stamp


@dataclass
class Page:
    """One page of features as GeoJSON text fragments, built by the database."""

    features: list[str]
    next_cursor: int | None
    number_matched: int | None


def items_sql(q: ItemsQuery, params: Params) -> str:
    """The SQL of one items page (exposed for EXPLAIN in tests and the benchmark)."""
    where = _where(q, params)
    if q.cursor is not None:
        where.append(f"s.id > {params.add(q.cursor)}")
    c = q.collection
    return (
        f"SELECT s.id, {_feature_sql(c, q.crs)} AS feature"
        f"{public_rows(c)}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY s.id LIMIT {q.limit + 1}"
    )


def items(session: Session, *, query: ItemsQuery) -> Page:
    """One page of a public collection's features (keyset paging by id)."""
    params = Params()
    sql = items_sql(query, params)
    values = {**_base_params(query.collection, session), **params.values}
    rows = session.execute(text(sql), values).all()
    has_next = len(rows) > query.limit
    rows = rows[: query.limit]
    matched = len(rows) if (query.cursor is None and not has_next) else None
    return Page([r.feature for r in rows], rows[-1].id if has_next else None, matched)


def item(session: Session, *, collection: Collection, feature_id: str, crs: Crs = STORAGE) -> str:
    """One public feature as GeoJSON text; NotFound when it is not public (or not in the layer)."""
    if not re.fullmatch(r"\d{1,18}", feature_id):
        raise NotFound("publish.no_feature", field="featureId", feature_id=feature_id, collection=collection.id)
    sql = (
        f"SELECT {_feature_sql(collection, crs)} AS feature"
        f"{public_rows(collection)} WHERE s.id = :fid"
    )
    row = session.execute(
        text(sql), {**_base_params(collection, session), "fid": int(feature_id)}
    ).first()
    if row is None:
        raise NotFound("publish.no_feature", field="featureId", feature_id=feature_id, collection=collection.id)
    return row.feature


def extent(session: Session, *, collection: Collection) -> dict[str, Any]:
    """The collection's spatial extent (CRS84) and temporal extent (updated_at), public rows only."""
    row = session.execute(
        text(
            "SELECT ST_XMin(e) x0, ST_YMin(e) y0, ST_XMax(e) x1, ST_YMax(e) y1, t0, t1 FROM ("
            "SELECT ST_Extent(s.geom) e, min(s.updated_at) t0, max(s.updated_at) t1"
            f" FROM ({public_source(collection)}) s) q"
        )
    ).one()
    out: dict[str, Any] = {}
    if row.x0 is not None:
        out["spatial"] = {
            "bbox": [[round(row.x0, 7), round(row.y0, 7), round(row.x1, 7), round(row.y1, 7)]],
            "crs": CRS84,
        }
    if row.t0 is not None:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        out["temporal"] = {
            "interval": [
                [row.t0.astimezone(UTC).strftime(fmt), row.t1.astimezone(UTC).strftime(fmt)]
            ],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return out


# --- vector tiles -------------------------------------------------------------------------------


def check_tile(z: int, x: int, y: int) -> None:
    """A tile address that exists in WebMercatorQuad, or NotFound."""
    if not 0 <= z <= MAX_ZOOM or not 0 <= x < 2**z or not 0 <= y < 2**z:
        raise NotFound("publish.no_tile", field="tile", z=z, x=x, y=y, max_zoom=MAX_ZOOM)


def _tile_rows(collection: Collection, *, row_version: bool = False) -> tuple[str, str]:
    """FROM and WHERE of the public rows whose geometry may reach tile :z/:x/:y (with the buffer)."""
    margin = TILE_BUFFER / TILE_EXTENT
    return (
        f" FROM ({public_source(collection, row_version=row_version)}) s",
        # Clipped to the world: at zooms 0-1 the margin crosses the antimeridian, and the
        # transformed envelope would wrap round to the other side of the Earth.
        " WHERE s.geom && ST_Transform(ST_ClipByBox2D("
        f"ST_TileEnvelope(:z, :x, :y, margin => {margin}), {WORLD_3857}), 4326)",
    )


def _tile_cols(collection: Collection, static: bool) -> list[tuple[str, str]]:
    cols = []
    for name in collection.props_of_tiles(static):
        qy = collection.queryable(name)
        assert qy is not None, name
        value = qy.sql
        if qy.type == "date":
            value = f"to_char({value}, 'YYYY-MM-DD')"
        cols.append((name, value))
    return cols


def merges(collection: Collection, z: int) -> bool:
    """Whether tiles of ``collection`` at zoom ``z`` are merged (the zoom rule, README "Speed")."""
    return collection.merge_by is not None and z <= MERGE_MAX_ZOOM


def merge_params(collection: Collection, z: int, x: int, y: int) -> dict[str, object]:
    """The parameters a merged tile query takes beside :z/:x/:y."""
    return {"merged_collection": collection.id}


def tile_sql(collection: Collection, *, static: bool = False, merged: bool = False) -> str:
    """SQL of one MVT tile: index filter on the transformed tile envelope, clip, encode.

    The commons id is the MVT feature id and also an ``id`` property (Leaflet.VectorGrid's
    style functions only see properties). ``static``: the static export's properties.
    ``merged``: the low-zoom form (``merges``), see ``merged_tile_sql``.

    No ``WHERE t.geom IS NOT NULL`` over the features: ST_AsMVT skips a row whose geometry is
    NULL (one that ST_AsMVTGeom clipped away), so the tile is the same byte for byte. That filter
    cost a second ST_AsMVTGeom per row: PostgreSQL pushes it down into the scan with the
    expression put in its place, then computes the expression again for the output. Without it
    the tile SQL ran 1.3x as fast at z14 and 1.6x at z16 in pgbench (100,000 parcels).
    """
    if merged:
        return merged_tile_sql(collection, static=static)
    cols = [f"{value} AS {name}" for name, value in _tile_cols(collection, static)]
    source, where = _tile_rows(collection)
    return (
        f"SELECT ST_AsMVT(t, :layer, {TILE_EXTENT}, 'geom', 'fid') FROM ("
        f"SELECT s.id AS fid, {', '.join(cols)},"
        " ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(:z, :x, :y),"
        f" {TILE_EXTENT}, {TILE_BUFFER}, true) AS geom"
        f"{source}{figures_join(collection)}{where}"
        ") t"
    )


def _points_sql(collection: Collection, cols: list[tuple[str, str]], extra_area: bool) -> str:
    """The points of a merged tile, one feature each (places, approximate locations)."""
    source, where = _tile_rows(collection)
    env = f"ST_TileEnvelope(:z, :x, :y), {TILE_EXTENT}, {TILE_BUFFER}, true"
    return (
        "SELECT s.id AS fid, " + ", ".join(f"{v} AS {n}" for n, v in cols) + ", NULL::int AS count"
        + (", NULL::float8 AS area_m2" if extra_area else "")
        + f", ST_AsMVTGeom(ST_Transform(s.geom, 3857), {env}) AS geom"
        f"{source}{figures_join(collection)}{where} AND {POINTS}"
    )


POINTS = "GeometryType(s.geom) IN ('POINT', 'MULTIPOINT')"


def merged_tile_sql(collection: Collection, *, static: bool = False) -> str:
    """SQL of a low-zoom tile: polygons merged per ``merge_by`` value and grid cell; points kept.

    The merged features come from ``publish_merged`` (``publish.merged``: precomputed per cell and
    kept by the database when the rows change). Each polygon is counted in exactly one tile per
    zoom and one cell of it: the one holding the centre of its bounding box. A merged feature is the
    bounding box of the polygons of one value in one cell (its centre as a point when the box is
    smaller than a tile unit), with ``count`` (how many commons) and ``area_m2`` (their total area):
    nothing is dropped, every public commons counts once. It carries no id and no name. Points
    (places, approximate locations) stay one feature each, as at high zoom.
    """
    key = collection.merge_by
    cols = _tile_cols(collection, static)
    names = [n for n, _ in cols]
    extra_area = "area_m2" not in names
    env = f"ST_TileEnvelope(:z, :x, :y), {TILE_EXTENT}, {TILE_BUFFER}, true"
    area = "round(m.area::numeric, 1)::float8"  # NULL when no area is known
    out = ["NULLIF(m.mkey, '')" if n == key else area if n == "area_m2" else "NULL" for n in names]
    box = "ST_MakeEnvelope(m.x0, m.y0, m.x1, m.y1, 3857)"
    merged = (
        "SELECT NULL::bigint, " + ", ".join(out) + ", m.n"
        + (f", {area}" if extra_area else "")
        + f", COALESCE(ST_AsMVTGeom({box}, {env}), ST_AsMVTGeom(ST_Centroid({box}), {env}))"
        f" FROM publish_merged m WHERE {cells_where('m')}"
    )
    return (
        f"SELECT ST_AsMVT(t, :layer, {TILE_EXTENT}, 'geom', 'fid') FROM ("
        f"{_points_sql(collection, cols, extra_area)} UNION ALL {merged}"
        ") t"  # no NULL filter: see tile_sql
    )


def merged_fingerprint_sql(collection: Collection) -> str:
    """SQL of the fingerprint of merged tile :z/:x/:y: its cells' row versions and its points'."""
    source, where = _tile_rows(collection, row_version=True)
    return (
        "SELECT (SELECT count(*) FROM publish_merged m WHERE " + cells_where("m") + ")"
        f" + (SELECT count(*){source}{where} AND {POINTS}) AS n,"
        " (SELECT COALESCE(sum(hashtextextended(m.xmin::text || m.ctid::text, 0)), 0)"
        f" FROM publish_merged m WHERE {cells_where('m')})::text || '/'"
        f" || (SELECT COALESCE(sum(s.row_version), 0){source}{where} AND {POINTS})::text AS h"
    )


def tile_fingerprint_sql(collection: Collection) -> str:
    """SQL of the fingerprint of tile :z/:x/:y: count and sum of the rows' ``row_version``.

    It reads the very rows ``tile_sql`` reads (same source, same filter), without the clipping,
    the encoding or the figures.
    """
    source, where = _tile_rows(collection, row_version=True)
    return f"SELECT count(*) AS n, COALESCE(sum(s.row_version), 0)::text AS h{source}{where}"


def fingerprint_sql(collection: Collection, *, merged: bool) -> str:
    """The fingerprint statement of a tile of ``collection``: merged (``merges``) or not."""
    return merged_fingerprint_sql(collection) if merged else tile_fingerprint_sql(collection)


def no_jit(session: Session) -> None:
    """Turn PostgreSQL's JIT off for the rest of this transaction.

    The tile and page queries spend their time in PostGIS functions that JIT cannot compile, but
    their estimated cost is high enough to trigger it: at zoom 10, compiling took ~370 ms of a
    ~1.1 s tile (EXPLAIN ANALYZE on 100,000 parcels, bench/ogc.py).
    """
    session.execute(text("SET LOCAL jit = off"))


@dataclass(frozen=True)
class TilePlan:
    """The statements of one tile of a public collection, and their parameters: the tile's own
    (``tile_sql``) and its fingerprint (``tile_fingerprint_sql`` or ``merged_fingerprint_sql``),
    which keys the tile cache. ``tile_entry`` runs them on a session; ``api.fast_tiles`` on an
    async connection."""

    collection: Collection
    z: int
    x: int
    y: int
    static: bool = False

    @property
    def merged(self) -> bool:
        return merges(self.collection, self.z)

    @property
    def where(self) -> dict[str, Any]:
        c, z, x, y = self.collection, self.z, self.x, self.y
        return {"z": z, "x": x, "y": y, **(merge_params(c, z, x, y) if self.merged else {})}

    def fingerprint_sql(self) -> str:
        return fingerprint_sql(self.collection, merged=self.merged)

    def sql(self) -> str:
        return tile_sql(self.collection, static=self.static, merged=self.merged)

    def values(self) -> dict[str, Any]:
        """The tile statement's parameters (the "no data" labels of the figures too)."""
        labels = _no_data_labels() if self.collection.figures else {}
        return {**labels, "layer": self.collection.id, **self.where}

    def key(self, db: str, n: int, h: str, stamp: tuple) -> tuple:
        """The tile cache's key: the database, the tile, its fingerprint and the figures' stamp."""
        return (db, self.collection.id, self.static, self.z, self.x, self.y, n, h, stamp)


def tile_entry(
    session: Session, *, collection: Collection, z: int, x: int, y: int, static: bool = False
) -> tilecache.TileEntry:
    """One Mapbox Vector Tile of a public collection, through the tile cache.

    The cache key holds the tile's fingerprint (``tile_fingerprint_sql``), read in this very
    transaction, and the figures' stamp: a change to any row of the tile (or to the figures)
    gives a new key, so the cache never serves a tile from before a change it can see. With the
    cache off nothing is keyed: the tile is its one query, and the figures table is brought up to
    date at most once a second, as for items pages (``_base_params``).
    """
    check_tile(z, x, y)
    plan = TilePlan(collection, z, x, y, static)
    cache = tilecache.CACHE
    key: tuple | None = None
    if cache.enabled:
        _, stamp = _figures_params(collection, session, jit_off=True)  # one round trip for both
        fp = session.execute(text(plan.fingerprint_sql()), plan.where).one()
        key = plan.key(figs.db_key(session), fp.n, fp.h, stamp)
        hit = cache.get(key)
        if hit is not None:
            return hit
    elif collection.figures and figs.sync_due(figs.db_key(session)):
        figs.sync(session)  # in a transaction: the figures table may be written
    else:
        # One statement and nothing written: no BEGIN and no COMMIT (autocommit) when the session
        # has not begun. JIT is off for the app's connections (db.make_engine).
        tenancy.read_in_one_statement(session)
    data = session.execute(text(plan.sql()), plan.values()).scalar()
    entry = tilecache.TileEntry(bytes(data or b""))
    if key is not None:
        cache.put(key, entry)
    return entry


def tile(
    session: Session, *, collection: Collection, z: int, x: int, y: int, static: bool = False
) -> bytes:
    """One Mapbox Vector Tile of a public collection (empty bytes when nothing is there)."""
    return tile_entry(session, collection=collection, z=z, x=x, y=y, static=static).data


# --- full exports -------------------------------------------------------------------------------


def all_features(session: Session, *, collection: Collection, chunk: int = 1000):
    """Every public feature of the collection as GeoJSON text, in id order: the items' own
    features (``items_sql``), from one query read through a server-side cursor ``chunk`` rows at a
    time, so a layer of 100,000 parcels is never held whole (in the database's pages or here)."""
    c = collection
    sql = (
        f"SELECT {_feature_sql(c, STORAGE)} AS feature"
        f"{public_rows(c)} ORDER BY s.id"
    )
    for row in session.execute(text(sql).execution_options(yield_per=chunk), _base_params(c, session)):
        yield row.feature


def rows_for_export(session: Session, *, collection: Collection) -> tuple[list[str], list[tuple]]:
    """Column names and rows (properties, then the geometry as WKB) of every public feature."""
    names = [qy.name for qy in collection.queryables]
    cols = [f"{qy.sql} AS {qy.name}" for qy in collection.queryables]
    sql = (
        f"SELECT {', '.join(cols)}, ST_AsBinary(s.geom) AS wkb"
        f"{public_rows(collection)} ORDER BY s.id"
    )
    rows = session.execute(text(sql), _base_params(collection, session)).all()
    return names, [tuple(r) for r in rows]
