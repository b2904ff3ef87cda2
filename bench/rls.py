"""What row-level security costs: items (OGC API), tiles and payments, on vs off, in the same run.

    .venv/bin/python bench/rls.py --parcels 5000 --rounds 200

Makes its own database (dropped at the end): the demo cooperatives and ``--parcels`` synthetic
public parcels. Two copies of the app, in this process, differ only by the role they log in as:

- on: the app's role (``COMMONS_DATABASE_APP_URL``), held by the policies (commons_map.tenancy);
- off: the owner, whom row-level security does not hold (what the app did before 0012_tenancy).

The same requests go through both in alternation (so load on the machine hits both alike):
items pages over a bbox, vector tiles (tile cache off: each tile made by the database), and
payments between two members (bearer token; each one a committed transfer). Prints the median and
p90 per request and the ratio on/off (goal: at most 1.10).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.settings import Settings, get_settings  # noqa: E402


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def setup(url: str, parcels: int) -> None:
    from commons_map.demo.load import load_demo
    from commons_map.demo.synth import load_synthetic
    from commons_map.migrate import upgrade

    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    with session_scope(engine) as session:
        coop = load_demo(session).cooperative
    load_synthetic(engine, coop, parcels)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def extent(url: str) -> tuple[float, float, float, float]:
    engine = make_engine(url=url)
    with engine.connect() as c:
        row = c.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                             " (SELECT ST_Extent(geom) e FROM commons WHERE visibility = 'public') s")).one()
    engine.dispose()
    return tuple(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=200, help="requests of each kind, per side")
    args = ap.parse_args()

    from api.main import create_app
    from commons_map.people.auth import issue_token
    from commons_map.people.models import Member
    from commons_map.publish import tilecache

    base = get_settings()
    url = make_url(base.sync_url).set(database=f"cm_bench_rls_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    tilecache.CACHE = tilecache.TileCache(max_bytes=0)  # every tile made by the database
    try:
        t = time.perf_counter()
        setup(url, args.parcels)
        print(f"database ready ({args.parcels} synthetic parcels) in {time.perf_counter() - t:.0f} s", flush=True)
        on = Settings(database_url=url, environment="test", secret_key="bench-secret-0123456789abcdef")
        off = on.model_copy(update={"database_app_url": url})  # the owner: RLS does not hold it
        owner = make_engine(url=url)
        with session_scope(owner) as s:
            camille = s.scalars(select(Member).where(Member.username == "camille")).one()
            lucas = s.scalars(select(Member).where(Member.username == "lucas")).one()
            token = issue_token(camille, on)
        owner.dispose()
        x0, y0, x1, y1 = extent(url)
        rnd = random.Random(7)
        bboxes = []
        for _ in range(args.rounds):
            lon, lat = rnd.uniform(x0, x1), rnd.uniform(y0, y1)
            bboxes.append(f"{lon:.5f},{lat:.5f},{lon + 0.012:.5f},{lat + 0.008:.5f}")
        tiles = [(z, *tile_of(rnd.uniform(x0, x1), rnd.uniform(y0, y1), z))
                 for z in (rnd.choice((13, 14, 15, 16)) for _ in range(args.rounds))]
        cases = {
            "items (bbox ~1 km, limit 100)": lambda c, i: c.get(
                f"/ogc/collections/restored_land/items?bbox={bboxes[i]}&limit=100"),
            "tiles (z13-16, cache off)": lambda c, i: c.get("/tiles/restored_land/{}/{}/{}.mvt".format(*tiles[i])),
            "payments (1 min, committed)": lambda c, i: c.post(
                "/api/v1/ledger/payments", json={"payee": lucas.username, "minutes": 1, "reason": "bench"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}),
        }
        with TestClient(create_app(on)) as c_on, TestClient(create_app(off)) as c_off:
            for c in (c_on, c_off):  # warm both (plans, pools, figures)
                for fn in cases.values():
                    r = fn(c, 0)
                    assert r.status_code in (200, 201, 204), (fn, r.status_code, r.text[:300])
            print(f"\n{'request':34} {'on median':>10} {'off median':>10} {'ratio':>6} {'on p90':>8} {'off p90':>8}")
            for name, fn in cases.items():
                times: dict[str, list[float]] = {"on": [], "off": []}
                for i in range(args.rounds):
                    order = (("on", c_on), ("off", c_off)) if i % 2 else (("off", c_off), ("on", c_on))
                    for side, c in order:
                        t0 = time.perf_counter()
                        r = fn(c, i)
                        times[side].append(time.perf_counter() - t0)
                        assert r.status_code in (200, 201, 204), (side, r.status_code, r.text[:300])
                med = {k: statistics.median(v) * 1000 for k, v in times.items()}
                p90 = {k: statistics.quantiles(v, n=10)[-1] * 1000 for k, v in times.items()}
                print(f"{name:34} {med['on']:8.2f}ms {med['off']:8.2f}ms {med['on'] / med['off']:6.2f}"
                      f" {p90['on']:6.2f}ms {p90['off']:6.2f}ms", flush=True)
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
