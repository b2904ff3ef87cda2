"""Benchmark: tile sizes per zoom (merged at low zooms) and the PMTiles archive, at 100,000 parcels.

Makes its own database (``cm_bench_maps``: the demo cooperative and ``--parcels`` synthetic
parcels, as bench/ogc.py does), then, with the tile cache off:

- for every zoom from 6 to 16, every restored_land tile over the synthetic grid: the largest and
  the mean uncompressed size, the slowest tile, and the sum of the merged features' ``count``
  (the zoom rule: merged up to ``service.MERGE_MAX_ZOOM``, README "Speed");
- beside it, what one feature per parcel would weigh at a few low zooms (the former tiles);
- the PMTiles archive of the map's layers, zoom 0 to 16 (``maps.archive.write_pmtiles``): time and size.

    .venv/bin/python bench/tiles.py --parcels 100000     # --quick: 10,000 parcels; --keep, --reuse
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commons_map.db import drop_database, make_engine, session_scope  # noqa: E402
from commons_map.publish import service, tilecache  # noqa: E402
from commons_map.publish.collections import COLLECTIONS  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402

GRID_LON0, GRID_LAT0, STEP_LON, STEP_LAT = 5.02, 44.60, 0.00050, 0.00036


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10,000 parcels")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    ap.add_argument("--min-zoom", type=int, default=6)
    args = ap.parse_args()
    parcels = 10_000 if args.quick else args.parcels
    url = make_url(get_settings().sync_url).set(database="cm_bench_maps").render_as_string(hide_password=False)
    if not args.reuse:
        sys.path.insert(0, str(ROOT / "bench"))
        from ogc import setup

        setup(url, parcels)
    tilecache.CACHE = tilecache.TileCache(max_bytes=0)  # every tile made cold
    side = int(parcels**0.5) + 1
    box = (GRID_LON0, GRID_LAT0, GRID_LON0 + side * STEP_LON, GRID_LAT0 + side * STEP_LAT)
    engine = make_engine(url=url)
    land = COLLECTIONS["restored_land"]
    from maps.site import MAP_LAYERS, public_bounds, tile_range

    try:
        with session_scope(engine) as session:
            public = session.scalar(text(
                "SELECT count(*) FROM commons c JOIN commons_kinds k ON k.code = c.kind_code"
                " WHERE c.visibility = 'public' AND c.archived_at IS NULL AND k.category = 'land'"))
            print(f"{public} public land parcels; tile cache off; one run on a shared 2-core machine\n")
            print("| zoom | tiles | largest (kB) | mean (kB) | slowest (ms) | merged count"
                  " | one per parcel, middle tile (kB) |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for z in range(args.min_zoom, 17):
                xs, ys = tile_range(box, z)
                sizes, times, counted = [], [], 0
                for x in xs:
                    for y in ys:
                        t = time.perf_counter()
                        data = service.tile(session, collection=land, z=z, x=x, y=y)
                        times.append(time.perf_counter() - t)
                        sizes.append(len(data))
                        if data and service.merges(land, z):
                            import mapbox_vector_tile

                            feats = mapbox_vector_tile.decode(data)["restored_land"]["features"]
                            counted += sum(f["properties"].get("count", 0) for f in feats)
                single = ""
                if service.merges(land, z) and z in (10, 12, 13):
                    x, y = xs[len(xs) // 2], ys[len(ys) // 2]
                    service.no_jit(session)
                    raw = session.execute(text(service.tile_sql(land)), {
                        "nodata_fr": "", "nodata_en": "", "layer": land.id, "z": z, "x": x, "y": y}).scalar()
                    single = f"{len(raw or b'') / 1000:.0f}"
                print(f"| {z} | {len(sizes)} | {max(sizes) / 1000:.0f} | {sum(sizes) / len(sizes) / 1000:.0f}"
                      f" | {max(times) * 1000:.0f} | {counted if service.merges(land, z) else '-'} | {single} |",
                      flush=True)
            from maps.archive import write_pmtiles

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "public.pmtiles"
                t = time.perf_counter()
                made = write_pmtiles(session, path, layers=MAP_LAYERS, bounds=public_bounds(session),
                                     max_zoom=16)
                took = time.perf_counter() - t
            print(f"\nPMTiles archive z0-16, layers {', '.join(MAP_LAYERS)}: {made['tiles']} tiles,"
                  f" {made['bytes'] / 1e6:.1f} MB, {took:.0f} s")
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
