"""Benchmark: our OGC items and vector tiles beside tipg and beside the database itself.

Same PostGIS, same table: the script makes its own database, loads the demo cooperative and
100,000 synthetic parcels (``commons_map.demo.synth.load_synthetic``), starts our app and tipg
(from its own venv, on a view of the same public rows) on loopback ports, and times:

- items: bbox of three sizes, limit 100 and 1000 (``/ogc/collections/restored_land/items``);
- tiles: zooms 10 to 16 (``/tiles/restored_land/{z}/{x}/{y}.mvt``), twice: "cold" from a second
  server of ours with the tile cache off (``COMMONS_TILE_CACHE_MB=0``: every request runs the
  tile query), and "warm" from the default server, where the cycle over a dozen tiles hits the
  cache after its first pass (each hit still runs the tile's fingerprint query);
- the floor: our very SQL run directly with psycopg (no HTTP, no Python web stack).

It prints requests per second and p50/p95 latency for each, and the ratios. Loopback only,
bounded loops. Needs tipg installed apart (to avoid dependency clashes):

    python3 -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg uvicorn
    .venv/bin/python bench/ogc.py            # --parcels 100000 --rounds 30 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.publish import service  # noqa: E402
from commons_map.publish.collections import COLLECTIONS  # noqa: E402
from commons_map.publish.cql2 import Params  # noqa: E402
from commons_map.publish.sql import public_source  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402

VIEW = "bench_public_parcels"
# The synthetic grid (commons_map/demo/synth.py) starts at 5.02, 44.60 with ~40 m cells.
GRID_LON0, GRID_LAT0, STEP_LON, STEP_LAT = 5.02, 44.60, 0.00050, 0.00036
BBOX_SIZES = {"small (~200 m)": 0.0025, "medium (~1 km)": 0.012, "large (~4 km)": 0.05}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def serve_ours(port: int, env: dict[str, str]) -> subprocess.Popen:
    """Our app on a loopback port, as uvicorn serves it."""
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "--factory", "api.main:app_factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )


def setup(url: str, parcels: int) -> None:
    from commons_map.demo.load import load_demo
    from commons_map.demo.synth import load_synthetic
    from commons_map.migrate import upgrade

    drop_database(url)
    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    with session_scope(engine) as session:
        coop = load_demo(session).cooperative
    t = time.perf_counter()
    load_synthetic(engine, coop, parcels)
    print(f"loaded {parcels} synthetic parcels in {time.perf_counter() - t:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE commons"))
    engine.dispose()


def make_view(url: str) -> None:
    """The public rows of restored_land as a view, for tipg (same rows, same SQL, same index)."""
    engine = make_engine(url=url)
    with engine.begin() as conn:
        source = public_source(COLLECTIONS["restored_land"])
        conn.execute(text(f"DROP VIEW IF EXISTS {VIEW}"))
        conn.execute(
            text(
                f"CREATE VIEW {VIEW} AS SELECT s.id, s.name, s.kind, s.state, s.area_m2, s.updated_at, s.geom"
                f" FROM ({source}) s"
            )
        )
    engine.dispose()


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def stats(times: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(times, n=20) if len(times) >= 2 else [times[0]] * 19
    return {
        "rps": len(times) / sum(times),
        "p50": statistics.median(times) * 1000,
        "p95": qs[18] * 1000,
    }


def http_case(client: httpx.Client, urls: list[str], rounds: int, check) -> list[float]:
    for u in urls[:3]:  # warm up (connections, prepared statements, caches)
        check(client.get(u))
    times: list[float] = []
    for i in range(rounds):
        u = urls[i % len(urls)]
        t = time.perf_counter()
        r = client.get(u)
        body = r.content
        times.append(time.perf_counter() - t)
        check(r, body)
    return times


def ok(r: httpx.Response, body: bytes | None = None) -> None:
    if r.status_code not in (200, 204):
        raise RuntimeError(f"{r.request.url} -> {r.status_code}: {r.text[:300]}")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int(
        (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=30, help="requests per case and server")
    ap.add_argument(
        "--tipg", default="/tmp/tipg-venv/bin/uvicorn", help="uvicorn of the venv where tipg is"
    )
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    args = ap.parse_args()
    args.tipg = str(Path(args.tipg).resolve())  # the servers run from other folders

    base = get_settings().sync_url
    url = make_url(base).set(database="cm_bench_ogc").render_as_string(hide_password=False)
    if not args.reuse:
        setup(url, args.parcels)
    else:
        from commons_map.migrate import upgrade

        upgrade(url)
    make_view(url)
    side = int(args.parcels**0.5) + 1
    extent = (GRID_LON0, GRID_LAT0, GRID_LON0 + side * STEP_LON, GRID_LAT0 + side * STEP_LAT)

    ours_port, tipg_port = free_port(), free_port()
    env = {**os.environ, "COMMONS_DATABASE_URL": url}
    cold_port = free_port()
    pg = make_url(url)
    tipg_env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    tipg_env.update(
        {
            # tipg 1.x reads DATABASE_URL (older releases TIPG_DATABASE_URL): give both.
            "DATABASE_URL": f"postgresql://{pg.username}@{pg.host}:{pg.port or 5432}/{pg.database}",
            "TIPG_DATABASE_URL": f"postgresql://{pg.username}@{pg.host}:{pg.port or 5432}/{pg.database}",
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": json.dumps([f"public.{VIEW}"]),
            "TIPG_MAX_FEATURES_PER_TILE": "1000000",
            "TIPG_TILE_BUFFER": "64",
            "DB_MAX_CONN_SIZE": "10",
        }
    )
    tipg = None
    ours = cold = None
    try:
        ours = serve_ours(ours_port, env)
        cold = serve_ours(cold_port, {**env, "COMMONS_TILE_CACHE_MB": "0"})
        if Path(args.tipg).exists():
            tipg = subprocess.Popen(
                [args.tipg, "tipg.main:app", "--host", "127.0.0.1", "--port", str(tipg_port),
                 "--log-level", "warning"],
                env=tipg_env,
                cwd="/tmp",
            )
        wait_up(f"http://127.0.0.1:{ours_port}/ogc", ours)
        wait_up(f"http://127.0.0.1:{cold_port}/ogc", cold)
        if tipg is not None:
            wait_up(f"http://127.0.0.1:{tipg_port}/collections", tipg)
        run(args, url, extent, ours_port, tipg_port if tipg else None, cold_port)
    finally:
        for proc in (ours, cold, tipg):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if not args.keep:
            drop_database(url)


def run(args, url: str, extent, ours_port: int, tipg_port: int | None, cold_port: int) -> None:
    rng = random.Random(42)
    ours_base = f"http://127.0.0.1:{ours_port}"
    cold_base = f"http://127.0.0.1:{cold_port}"
    tipg_base = f"http://127.0.0.1:{tipg_port}" if tipg_port else None
    tipg_coll = f"public.{VIEW}"
    headers = {"Accept-Encoding": "gzip", "Accept": "application/geo+json"}
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    conn.prepare_threshold = 0
    conn.execute("SET jit = off")  # as our service does (service.no_jit) before a tile query
    land = COLLECTIONS["restored_land"]
    from commons_map.publish import figures

    engine = make_engine(url=url)
    with session_scope(engine) as session:
        figures.sync(session)  # the figures table, as the servers keep it
        n_figs = session.scalar(text("SELECT count(*) FROM publish_figures"))
        n_public = session.scalar(text(f"SELECT count(*) FROM {VIEW}"))
        # The plan of a medium bbox page, to show the GiST index at work.
        q = service.ItemsQuery(land, limit=100, bbox=service.parse_bbox("5.05,44.62,5.062,44.632"))
        p = Params()
        plan = (
            session.execute(
                text("EXPLAIN " + service.items_sql(q, p)),
                {"nodata_fr": "", "nodata_en": "", **p.values},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    print(f"\n{n_public} public parcels in restored_land; {n_figs} parcels with figures")
    print("bbox page plan uses the GiST index:", any("idx_commons_geom" in line for line in plan))

    rows: list[tuple] = []
    with httpx.Client(headers=headers, timeout=120) as client:
        for label, size in BBOX_SIZES.items():
            boxes = []
            for _ in range(max(args.rounds, 10)):
                x = rng.uniform(extent[0], max(extent[0], extent[2] - size))
                y = rng.uniform(extent[1], max(extent[1], extent[3] - size * 0.75))
                boxes.append(
                    (round(x, 5), round(y, 5), round(x + size, 5), round(y + size * 0.75, 5))
                )
            for limit in (100, 1000):
                bb = [",".join(map(str, b)) for b in boxes]
                ours_t = http_case(
                    client,
                    [
                        f"{ours_base}/ogc/collections/restored_land/items?bbox={b}&limit={limit}"
                        for b in bb
                    ],
                    args.rounds,
                    ok,
                )
                tipg_t = (
                    http_case(
                        client,
                        [
                            f"{tipg_base}/collections/{tipg_coll}/items?bbox={b}&limit={limit}"
                            for b in bb
                        ],
                        args.rounds,
                        ok,
                    )
                    if tipg_base
                    else None
                )
                floor_t = []
                for i in range(args.rounds):
                    b = service.parse_bbox(bb[i % len(bb)])
                    p = Params()
                    sql = service.items_sql(service.ItemsQuery(land, limit=limit, bbox=b), p)
                    sql_pg, values = to_psycopg(
                        sql,
                        {
                            "nodata_fr": "Pas encore mesuré",
                            "nodata_en": "Not sampled yet",
                            **p.values,
                        },
                    )
                    t = time.perf_counter()
                    conn.execute(sql_pg, values).fetchall()
                    floor_t.append(time.perf_counter() - t)
                rows.append((f"items {label} limit {limit}", ours_t, tipg_t, floor_t))
        cx = (extent[0] + extent[2]) / 2
        cy = (extent[1] + extent[3]) / 2
        for z in range(10, 17):
            tiles = set()
            for _ in range(200):
                lon = rng.uniform(extent[0], extent[2])
                lat = rng.uniform(extent[1], extent[3])
                tiles.add(tile_of(lon, lat, z))
                if len(tiles) >= 12:
                    break
            tiles.add(tile_of(cx, cy, z))
            tl = sorted(tiles)
            cold_t = http_case(
                client,
                [f"{cold_base}/tiles/restored_land/{z}/{x}/{y}.mvt" for x, y in tl],
                args.rounds,
                ok,
            )
            ours_t = http_case(
                client,
                [f"{ours_base}/tiles/restored_land/{z}/{x}/{y}.mvt" for x, y in tl],
                args.rounds,
                ok,
            )
            tipg_t = (
                http_case(
                    client,
                    [
                        f"{tipg_base}/collections/{tipg_coll}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                        for x, y in tl
                    ],
                    args.rounds,
                    ok,
                )
                if tipg_base
                else None
            )
            tsql = service.tile_sql(land)
            floor_t = []
            for i in range(args.rounds):
                x, y = tl[i % len(tl)]
                sql_pg, values = to_psycopg(
                    tsql,
                    {
                        "nodata_fr": "Pas encore mesuré",
                        "nodata_en": "Not sampled yet",
                        "layer": land.id,
                        "z": z,
                        "x": x,
                        "y": y,
                    },
                )
                t = time.perf_counter()
                conn.execute(sql_pg, values).fetchall()
                floor_t.append(time.perf_counter() - t)
            rows.append((f"tiles z{z} ({len(tl)} tiles) cold", cold_t, tipg_t, floor_t))
            rows.append((f"tiles z{z} ({len(tl)} tiles) warm", ours_t, tipg_t, floor_t))
    conn.close()
    report(rows)


def to_psycopg(sql: str, values: dict) -> tuple[str, dict]:
    """SQLAlchemy ``:name`` parameters as psycopg ``%(name)s`` ones (outside casts)."""
    import re

    out = re.sub(r"(?<![:\w\\]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))
    return out, values


def report(rows) -> None:
    head = (
        f"{'case':34} {'ours rps':>9} {'p50 ms':>8} {'p95 ms':>8} | {'tipg rps':>9} {'p50 ms':>8}"
        f" {'p95 ms':>8} | {'SQL p50':>8} | {'ours/tipg rps':>13} {'ours/SQL p50':>12}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for name, ours_t, tipg_t, floor_t in rows:
        o, f = stats(ours_t), stats(floor_t)
        if tipg_t:
            t = stats(tipg_t)
            tip = f"{t['rps']:9.1f} {t['p50']:8.1f} {t['p95']:8.1f}"
            ratio = f"{o['rps'] / t['rps']:13.2f}"
        else:
            tip, ratio = f"{'-':>9} {'-':>8} {'-':>8}", f"{'-':>13}"
        print(
            f"{name:34} {o['rps']:9.1f} {o['p50']:8.1f} {o['p95']:8.1f} | {tip} | {f['p50']:8.1f} |"
            f" {ratio} {o['p50'] / f['p50']:12.2f}"
        )
    print(
        "\nrps: sequential requests per second over one keep-alive connection (gzip accepted);"
        " SQL: the same statement run directly with psycopg (the floor)."
        "\ntiles cold: our server with the tile cache off (every request runs the tile query);"
        " warm: the default server, cycling over the same tiles (cache hits after the first pass)."
    )


if __name__ == "__main__":
    main()
