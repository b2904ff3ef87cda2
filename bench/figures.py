"""Benchmark: the public figures at scale, as a table join against the old JSON parameter.

Every parcel of 100,000 gets figures (status, carbon, harvests, hours). Until 2026-11-27 the
figures reached each items page and tile as one JSON parameter that PostgreSQL parsed on every
request; they are now a table (``publish_figures``, kept by ``publish.figures.sync``) joined by
commons id. This prints, for a few requests, the time of the query as it is now and of the
same request's cost with the old parameter (its parse alone, ``CAST(:figs AS jsonb)``, which it
paid before any row was read), run in this one process, one after the other.

Run:  .venv/bin/python bench/figures.py [--parcels 100000] [--rounds 10]
Creates and drops its own database.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, make_engine, session_scope  # noqa: E402
from commons_map.publish import figures, service  # noqa: E402
from commons_map.publish.collections import COLLECTIONS  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402


def fake_figures(session, cooperative_id: int) -> dict[str, dict]:
    """Figures like the soil and ledger features give, for every parcel of the cooperative."""
    ids = session.scalars(text("SELECT id FROM commons WHERE cooperative_id = :c"), {"c": cooperative_id})
    out = {}
    for i in ids:
        out[str(i)] = {
            "status": "regenerating" if i % 3 else "stable", "status_label_fr": "En régénération",
            "status_label_en": "Regenerating", "soc_stock_t_ha": 41.25 + i % 7, "soc_change_t_ha_per_year": 0.412,
            "co2e_t_per_year": 1.234, "basis": "stock_change", "harvest_kg_total": 120.5 + i % 11,
            "last_sampled": "2026-04-02", "volunteer_hours": 12.5,
        }
    return out


def ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):8.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    base = make_url(get_settings().database_url)
    url = base.set(database=f"cm_bench_figures_{int(time.time())}").render_as_string(hide_password=False)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ogc import setup  # the same 100,000 synthetic parcels as bench/ogc.py

    setup(url, args.parcels)
    figures.compute = lambda session, cooperative_id: fake_figures(session, cooperative_id)
    figures.clear_cache()
    engine = make_engine(url=url)
    land = COLLECTIONS["restored_land"]
    try:
        with session_scope(engine) as session:
            t = time.perf_counter()
            figures.sync(session)
            first = time.perf_counter() - t
            held = session.scalar(text("SELECT count(*) FROM publish_figures"))
            body = json.dumps(figures.figures_for(session), separators=(",", ":"))
        print(f"{held} parcels with figures; first write of the table {first:.2f} s (once per change);"
              f" the old parameter was {len(body) / 1e6:.1f} MB")
        ext = [5.02, 44.60, 5.18, 44.71]
        cx, cy = (ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2
        print(f"\n{'request':<22}{'now ms':>9}{'old param parse ms':>20}")
        with session_scope(engine) as session:
            service.no_jit(session)
            labels = {"nodata_fr": "", "nodata_en": ""}
            for z in (16, 14, 12):
                n = 2**z
                x = int((cx + 180) / 360 * n)
                y = int((1 - math.asinh(math.tan(math.radians(cy))) / math.pi) / 2 * n)
                now, old = [], []
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    session.execute(text(service.tile_sql(land)), {**labels, "layer": land.id, "z": z, "x": x, "y": y})
                    now.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    session.execute(text("SELECT CAST(:figs AS jsonb) IS NULL"), {"figs": body})
                    old.append(time.perf_counter() - t)
                print(f"{'tile z' + str(z):<22}{ms(now)}{ms(old):>20}")
            for size in (0.004, 0.02):
                now, old = [], []
                for _ in range(args.rounds):
                    q = service.ItemsQuery(land, limit=100, bbox=service.parse_bbox(
                        f"{cx},{cy},{cx + size},{cy + size * 0.75}"))
                    t = time.perf_counter()
                    service.items(session, query=q)
                    now.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    session.execute(text("SELECT CAST(:figs AS jsonb) IS NULL"), {"figs": body})
                    old.append(time.perf_counter() - t)
                print(f"{'items bbox ' + str(size) + '°':<22}{ms(now)}{ms(old):>20}")
        print("\n'now' is the whole query (figures joined); 'old param parse' is only what the old"
              " design paid first, on every request, before its own query.")
    finally:
        engine.dispose()
        drop_database(url)


if __name__ == "__main__":
    main()
