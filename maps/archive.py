"""The public layers as one PMTiles v3 archive: every tile of the map in one file, read by range.

Each tile holds the map's layers (restored land, gardens, tools and places) as the static export
has them (``static=True``: the figures in the tiles), merged at low zooms like the served tiles.
An MVT tile is a list of layers, so the tile of several layers is their tiles end to end. Tiles
are gzipped (the ``pmtiles`` JavaScript reader inflates them); empty tiles are left out.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy.orm import Session

from commons_map.publish import service
from commons_map.publish.collections import COLLECTIONS

ARCHIVE_NAME = "public.pmtiles"


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
    say = progress or (lambda _what, _done, _total: None)
    plan = tiles_in(bounds, min_zoom, max_zoom)
    written = 0
    with path.open("wb") as f:
        writer = Writer(f)
        for i, (z, x, y) in enumerate(plan):
            data = b"".join(
                service.tile(session, collection=COLLECTIONS[cid], z=z, x=x, y=y, static=True)
                for cid in layers
            )
            if data:
                writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(data, compresslevel=6))
                written += 1
            if (i + 1) % 100 == 0 or i + 1 == len(plan):
                say("pmtiles", i + 1, len(plan))
        if not written:  # an archive needs one tile: an empty one at the lowest zoom
            z, x, y = plan[0]
            writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(b""))
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
    return {"tiles": written, "bytes": path.stat().st_size}
