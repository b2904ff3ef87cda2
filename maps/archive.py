"""The public layers as one PMTiles v3 archive: every tile of the map in one file, read by range.

Each tile holds the map's layers (restored land, gardens, tools and places) as the static export
has them (``static=True``: the figures in the tiles), by the zoom rule of the served tiles
(``service.tile_sql`` and ``service.merged_tile_sql``, README "Speed"): merged per status (or kind)
and grid cell up to ``service.MERGE_MAX_ZOOM``, every public commons one by one above; points one
by one at every zoom. An MVT tile is a list of layers, so the tile of several layers is their
tiles end to end. Tiles are gzipped (the ``pmtiles`` JavaScript reader inflates them); empty tiles
are left out.

The served tiles are made one at a time, each reading the rows under it. Made that way, the
archive of 100,000 parcels took minutes, so here the public rows of each layer are read once
(``public_source``, the privacy rule, and the figures) into a temporary table, with their
geometry already in EPSG:3857; then every tile of a zoom comes from one statement per layer:
each feature is given the tiles it reaches (with the tile buffer, as the served filter), or, merged,
the one tile and cell holding the centre of its bounding box, and ``ST_AsMVT`` is grouped by tile.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import text
from sqlalchemy.orm import Session

from commons_map.publish import service
from commons_map.publish.collections import COLLECTIONS, Collection
from commons_map.publish.sql import public_rows

ARCHIVE_NAME = "public.pmtiles"
_names = itertools.count(1)


def _fields(cid: str) -> dict[str, str]:
    c = COLLECTIONS[cid]
    out = {}
    for name in c.props_of_tiles(True):
        q = c.queryable(name)
        out[name] = "Number" if q and q.type in ("integer", "number") else "String"
    return out


def tiles_in(bounds: tuple[float, float, float, float], min_zoom: int, max_zoom: int):
    """(z, x, y) of every tile over a CRS84 box, in PMTiles' tile-id order."""
    from maps.site import tile_range

    out = []
    for z in range(min_zoom, max_zoom + 1):
        xs, ys = tile_range(bounds, z)
        out += [(z, x, y) for x in xs for y in ys]
    return sorted(out, key=lambda t: zxy_to_tileid(*t))


class LayerTiles:
    """One collection's public rows, read once into a temporary table, and its tiles by zoom."""

    def __init__(self, session: Session, collection: Collection) -> None:
        self.session = session
        self.c = collection
        n = next(_names)
        self.rows = f"pg_temp.archive_rows_{n}"
        self.feature = f"pg_temp.archive_feature_{n}"  # its row type: the tile's columns, in order
        self.cols = service._tile_cols(collection, True)  # noqa: SLF001 - the served tiles' own columns
        self.names = [name for name, _ in self.cols]
        self.extra_area = collection.merge_by is not None and "area_m2" not in self.names
        key = collection.queryable(collection.merge_by or "")
        props = ", ".join(f"{value} AS p_{name}" for name, value in self.cols)
        merc = service.MERC
        session.execute(text(
            f"CREATE TEMPORARY TABLE {self.rows.split('.')[1]} AS"
            f" SELECT s.id AS fid, {props}, {key.sql if key else 'NULL'} AS mkey, s.area_m2 AS area,"
            " s.geom, ST_Transform(s.geom, 3857) AS g,"
            " GeometryType(s.geom) IN ('POINT', 'MULTIPOINT') AS is_point,"
            # the centre of the bounding box in EPSG:3857, as merged_tile_sql computes it
            f" {merc} * radians((ST_XMin(s.geom) + ST_XMax(s.geom)) / 2) AS mx,"
            f" {merc} * ln(tan(pi() / 4 + radians((ST_YMin(s.geom) + ST_YMax(s.geom)) / 2) / 2)) AS my"
            f"{public_rows(collection)}"
        ), service._base_params(collection, session))  # noqa: SLF001 - the figures' labels
        # The row type of the features: ST_AsMVT takes every column of its row but the geometry
        # and the id as properties, so the tile's own (x, y) must stay out of it.
        session.execute(text(
            f"CREATE TEMPORARY TABLE {self.feature.split('.')[1]} AS SELECT fid, "
            + ", ".join(f"p_{n} AS {n}" for n in self.names)
            + ", NULL::int AS count" + (", NULL::float8 AS area_m2" if self.extra_area else "")
            + ", NULL::geometry AS geom"
            + f" FROM {self.rows} LIMIT 0"
        ))
        session.execute(text(f"ANALYZE {self.rows}"))

    def drop(self) -> None:
        self.session.execute(text(f"DROP TABLE IF EXISTS {self.rows}, {self.feature}"))

    def _one_by_one(self, where: str) -> str:
        """(tx, ty, feature) of every row matching ``where`` in every tile it reaches, as served:
        its 4326 geometry overlaps the tile's envelope with the buffer (``service._tile_rows``)."""
        margin = service.TILE_BUFFER / service.TILE_EXTENT
        reach = ":size / :cells * 1.01"  # the buffer, in metres, and a little more: the exact test follows
        values = (
            "a.fid, " + ", ".join(f"a.p_{n}" for n in self.names) + ", NULL::int"
            + (", NULL::float8" if self.extra_area else "")
        )
        return (
            f"SELECT tx, ty, ROW({values}, ST_AsMVTGeom(a.g, ST_TileEnvelope(:z, tx, ty),"
            f" {service.TILE_EXTENT}, {service.TILE_BUFFER}, true))::{self.feature} AS f"
            f" FROM {self.rows} a"
            f" CROSS JOIN LATERAL generate_series(greatest(:x0, floor((ST_XMin(a.g) - {reach} + :half) / :size)::int),"
            f"  least(:x1, floor((ST_XMax(a.g) + {reach} + :half) / :size)::int)) tx"
            f" CROSS JOIN LATERAL generate_series(greatest(:y0, floor((:half - ST_YMax(a.g) - {reach}) / :size)::int),"
            f"  least(:y1, floor((:half - ST_YMin(a.g) + {reach}) / :size)::int)) ty"
            f" WHERE {where} AND a.geom && ST_Transform(ST_ClipByBox2D("
            f"ST_TileEnvelope(:z, tx, ty, margin => {margin}), {service.WORLD_3857}), 4326)"
        )

    def _merged(self) -> str:
        """(tx, ty, feature) of the merged polygons: per tile, cell and ``merge_by`` value, as
        ``service.merged_tile_sql`` makes them (same cell arithmetic, same box, count and area)."""
        key = self.c.merge_by
        area = "round(sum(m.area)::numeric, 1)::float8"
        out = ["m.mkey" if n == key else area if n == "area_m2" else "NULL" for n in self.names]
        env = f"ST_TileEnvelope(:z, m.tx, m.ty), {service.TILE_EXTENT}, {service.TILE_BUFFER}, true"
        box = "ST_Transform(ST_SetSRID(ST_Extent(m.geom)::geometry, 4326), 3857)"
        grid = service.MERGE_GRID
        return (
            "SELECT m.tx, m.ty, ROW(NULL::bigint, " + ", ".join(out) + ", count(*)::int"
            + (f", {area}" if self.extra_area else "")
            + f", COALESCE(ST_AsMVTGeom({box}, {env}), ST_AsMVTGeom(ST_Centroid({box}), {env})))::{self.feature}"
            " FROM (SELECT t.*,"
            # the served tile's own arithmetic (merge_params: its west and north edges, its cells)
            " floor((t.mx - (-:half + t.tx * :size)) / (:size / :cells))::int AS cx,"
            " floor(((:half - t.ty * :size) - t.my) / (:size / :cells))::int AS cy"
            " FROM (SELECT a.geom, a.area, a.mkey, a.mx, a.my,"
            "  floor((a.mx + :half) / :size)::int AS tx, floor((:half - a.my) / :size)::int AS ty"
            f"  FROM {self.rows} a WHERE NOT a.is_point) t"
            "  WHERE t.tx BETWEEN :x0 AND :x1 AND t.ty BETWEEN :y0 AND :y1) m"
            f" WHERE m.cx >= 0 AND m.cx < {grid} AND m.cy >= 0 AND m.cy < {grid}"
            " GROUP BY m.tx, m.ty, m.mkey, m.cx, m.cy"
        )

    def zoom(self, z: int, xs: range, ys: range):
        """(x, y, MVT bytes of this layer) of every tile of zoom ``z`` in the ranges that holds a feature."""
        if service.merges(self.c, z):
            features = f"{self._one_by_one('a.is_point')} UNION ALL {self._merged()}"
        else:
            features = self._one_by_one("true")
        sql = (
            f"SELECT t.tx, t.ty, ST_AsMVT(t.f, :layer, {service.TILE_EXTENT}, 'geom', 'fid')"
            f" FROM ({features}) t WHERE (t.f).geom IS NOT NULL GROUP BY t.tx, t.ty"
        )
        size = 2 * service.MERC_HALF / 2**z
        values = {"z": z, "layer": self.c.id, "size": size, "half": service.MERC_HALF,
                  "cells": service.MERGE_GRID, "x0": xs.start, "x1": xs.stop - 1,
                  "y0": ys.start, "y1": ys.stop - 1}
        # Streamed from a server-side cursor, a few tiles at a time: a zoom's tiles (8 MB at zoom
        # 14 on 100,000 parcels) are never all in memory at once, hex-encoded, as a fetched result.
        for tx, ty, data in self.session.execute(text(sql).execution_options(yield_per=8), values):
            yield tx, ty, bytes(data)


def write_pmtiles(
    session: Session,
    path: Path,
    *,
    layers: tuple[str, ...],
    bounds: tuple[float, float, float, float],
    min_zoom: int = 0,
    max_zoom: int = 16,
    attribution: str = "",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Write the public ``layers`` over ``bounds`` from ``min_zoom`` to ``max_zoom`` into ``path``."""
    from maps.site import tile_range

    say = progress or (lambda _what, _done, _total: None)
    service.no_jit(session)
    made = [LayerTiles(session, COLLECTIONS[cid]) for cid in layers]
    written = 0
    try:
        with path.open("wb") as f:
            writer = Writer(f)
            zooms = range(min_zoom, max_zoom + 1)
            for z in zooms:
                xs, ys = tile_range(bounds, z)
                parts: dict[tuple[int, int], list[bytes]] = {}
                for i, layer in enumerate(made):
                    for x, y, data in layer.zoom(z, xs, ys):
                        parts.setdefault((x, y), [b""] * len(made))[i] = data
                for tile_id, (x, y) in sorted((zxy_to_tileid(z, *xy), xy) for xy in parts):
                    data = b"".join(parts[(x, y)])
                    if data:
                        writer.write_tile(tile_id, gzip.compress(data, compresslevel=6))
                        written += 1
                say("pmtiles", z - min_zoom + 1, len(zooms))
            if not written:  # an archive needs one tile: an empty one at the lowest zoom
                xs, ys = tile_range(bounds, min_zoom)
                writer.write_tile(zxy_to_tileid(min_zoom, xs.start, ys.start), gzip.compress(b""))
            minx, miny, maxx, maxy = bounds
            header = {
                "tile_compression": Compression.GZIP,
                "tile_type": TileType.MVT,
                "min_lon_e7": int(minx * 1e7),
                "min_lat_e7": int(miny * 1e7),
                "max_lon_e7": int(maxx * 1e7),
                "max_lat_e7": int(maxy * 1e7),
                "center_zoom": min(max(min_zoom, 13), max_zoom),
                "center_lon_e7": int((minx + maxx) / 2 * 1e7),
                "center_lat_e7": int((miny + maxy) / 2 * 1e7),
            }
            metadata = {
                "name": "commons-map",
                "attribution": attribution,
                "vector_layers": [
                    {"id": cid, "description": COLLECTIONS[cid].title_en, "fields": _fields(cid)}
                    for cid in layers
                ],
                "merged_up_to_zoom": service.MERGE_MAX_ZOOM,
            }
            writer.finalize(header, metadata)
    finally:
        for layer in made:
            layer.drop()
    return {"tiles": written, "bytes": path.stat().st_size}
