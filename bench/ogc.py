"""Benchmark: our OGC items and cold vector tiles beside tipg and beside the database itself.

Same PostGIS, same rows: the script makes its own database (the demo cooperative and ``--parcels``
synthetic parcels, ``commons_map.demo.synth.load_synthetic``), starts ONE ``commons-map serve``
process with the tile cache off (``COMMONS_TILE_CACHE_MB=0``: every tile request runs its query) and
tipg (its own venv, on a view of the same public rows, no feature cap), and loads each with ``wrk``
(8 connections, gzip accepted, cycling over a dozen URLs per case), then runs the very SQL our routes
run for those URLs with ``pgbench`` (8 clients, one script per URL, parameters inlined, JIT off as
the service sets it, prepared statements as psycopg prepares the statements our server runs
often): the database's own rate, the floor. Cases (issue 17, items 2 and 5):

- items: a ~200 m bbox, limit 100 (``/ogc/collections/restored_land/items``), and a ~1 km one;
- tiles z10, z12 (merged: ``publish_merged``), z14, z16 (one feature per parcel), restored_land.

It prints requests per second and p95 for ours, tipg and pgbench side by side, and the ratios
(goals: tiles >= 1.5x tipg and >= 0.5x pgbench; items >= 2x tipg and >= 0.2x pgbench).

    scripts/ensure-bench.sh            # wrk, pgbench, tipg in .bench/tipg
    .venv/bin/python bench/ogc.py      # --parcels 100000 --seconds 10 --tipg .bench/tipg/bin/uvicorn --keep/--reuse
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.wrk import run_wrk  # noqa: E402
from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.publish import service  # noqa: E402
from commons_map.publish.collections import COLLECTIONS  # noqa: E402
from commons_map.publish.cql2 import Params  # noqa: E402
from commons_map.publish.sql import psycopg_style, public_source  # noqa: E402
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


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int(
        (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n
    )





def wrk_rate(base: str, paths: list[str], seconds: int, connections: int) -> tuple[float, float]:
    """Requests per second and p95 (ms) of ``wrk`` over ``paths`` (bench/wrk.py); errors are fatal."""
    w = run_wrk(base, paths, seconds=seconds, connections=connections,
                headers={"Accept": "application/geo+json"})
    if w.errors:
        raise RuntimeError(f"wrk saw {w.errors} failed requests on {base}{paths[0]}")
    return w.rps, w.p95_ms


def run_pgbench(url: str, sqls: list[str], seconds: int, connections: int) -> tuple[float, float]:
    """Transactions per second and p95 (ms) of ``pgbench`` running one of ``sqls`` per transaction."""
    u = make_url(url)
    work = Path(tempfile.mkdtemp(prefix="pgbench-ogc-"))
    files = []
    for i, sql in enumerate(sqls):
        f = work / f"q{i}.sql"
        f.write_text(sql.strip().rstrip(";") + ";\n")
        files += ["-f", str(f)]
    env = dict(os.environ, PGPASSWORD=u.password or "", PGOPTIONS="-c jit=off")
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
             "-U", u.username or "postgres",
             "-c", str(connections), "-j", "2", "-T", str(seconds), *files, "-l", "--log-prefix", str(work / "log"),
             u.database], capture_output=True, text=True, env=env, cwd=work)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{out.stderr[-2000:]}")
        tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
        lat = sorted(int(line.split()[2]) for f in work.glob("log*") for line in f.read_text().splitlines())
        p95 = lat[int(0.95 * (len(lat) - 1))] / 1000
    finally:
        shutil.rmtree(work)
    return tps, p95


def inline(raw: psycopg.Connection, sql: str, values: dict) -> str:
    """Our statement with its parameters inlined, as pgbench runs it."""
    return psycopg.ClientCursor(raw).mogrify(psycopg_style(sql), values)


def serve_ours(port: int, env: dict[str, str]) -> subprocess.Popen:
    """ONE ``commons-map serve`` process (one worker), as a cooperative runs it."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "commons-map"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def serve_tipg(uvicorn: str, port: int, url: str) -> subprocess.Popen:
    """tipg 1.x on the view of the same public rows, no feature cap per tile."""
    pg = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    auth = f"{pg.username}:{pg.password}" if pg.password else pg.username
    dsn = f"postgresql://{auth}@{pg.host}:{pg.port or 5432}/{pg.database}"
    env.update({"DATABASE_URL": dsn, "TIPG_DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["public"]',
                "TIPG_DB_TABLES": json.dumps([f"public.{VIEW}"]), "TIPG_MAX_FEATURES_PER_TILE": "1000000",
                "TIPG_TILE_BUFFER": "64", "DB_MAX_CONN_SIZE": "10"})
    return subprocess.Popen([uvicorn, "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, cwd="/tmp",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk and pgbench run")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--tipg", default=str(ROOT / ".bench/tipg/bin/uvicorn"), help="uvicorn of tipg's venv")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    ap.add_argument("--database", default="cm_bench_ogc", help="name of the benchmark database")
    ap.add_argument("--only", default="", help="comma-separated case names to run (default: all)")
    args = ap.parse_args()
    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: scripts/ensure-bench.sh installs it")
    tipg_bin = str(Path(args.tipg).resolve())
    url = make_url(get_settings().sync_url).set(database=args.database).render_as_string(hide_password=False)
    if not args.reuse:
        setup(url, args.parcels)
    else:
        from commons_map.migrate import upgrade

        upgrade(url)
    make_view(url)
    side = int(args.parcels**0.5) + 1
    extent = (GRID_LON0, GRID_LAT0, GRID_LON0 + side * STEP_LON, GRID_LAT0 + side * STEP_LAT)
    ours_port, tipg_port = free_port(), free_port()
    env = {**os.environ, "COMMONS_DATABASE_URL": url, "COMMONS_TILE_CACHE_MB": "0", "PYTHONPATH": str(ROOT)}
    ours = tipg = None
    try:
        ours = serve_ours(ours_port, env)
        wait_up(f"http://127.0.0.1:{ours_port}/ogc", ours)
        if Path(tipg_bin).exists():
            tipg = serve_tipg(tipg_bin, tipg_port, url)
            wait_up(f"http://127.0.0.1:{tipg_port}/collections", tipg)
        else:
            print(f"tipg not found at {tipg_bin}: scripts/ensure-bench.sh installs it", flush=True)
        run(args, url, extent, ours_port, tipg_port if tipg else None)
    finally:
        stop(ours)
        stop(tipg)
        if not args.keep:
            drop_database(url)


def cases(rng: random.Random, extent) -> list[tuple[str, str, list]]:
    """(name, kind, items) per case: bboxes for items, (z, x, y) tiles for tiles."""
    out: list[tuple[str, str, list]] = []
    for name, size in (("items bbox ~200 m, limit 100", 0.0025), ("items bbox ~1 km, limit 100", 0.012)):
        boxes = []
        for _ in range(12):
            x = rng.uniform(extent[0], max(extent[0], extent[2] - size))
            y = rng.uniform(extent[1], max(extent[1], extent[3] - size * 0.75))
            boxes.append(",".join(str(round(v, 5)) for v in (x, y, x + size, y + size * 0.75)))
        out.append((name, "items", boxes))
    for z in (10, 12, 14, 16):
        tiles = set()
        for _ in range(500):
            tiles.add(tile_of(rng.uniform(extent[0], extent[2]), rng.uniform(extent[1], extent[3]), z))
            if len(tiles) >= 12:
                break
        kind = "merged" if service.merges(COLLECTIONS["restored_land"], z) else "one feature per parcel"
        out.append((f"tile z{z} cold ({kind}, {len(tiles)} tiles)", "tiles", [(z, x, y) for x, y in sorted(tiles)]))
    return out


def run(args, url: str, extent, ours_port: int, tipg_port: int | None) -> None:  # noqa: ANN001
    land = COLLECTIONS["restored_land"]
    coll = f"public.{VIEW}"
    raw = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                          autocommit=True)
    engine = make_engine(url=url)
    from commons_map.publish import figures

    with session_scope(engine) as session:
        figures.sync(session)  # the figures table, as the server keeps it
        # They were computed just now, here (their digest may equal what the table held, which is
        # then left as it was): stamp them so, or a server started on a reused database more than
        # five minutes after it was made computes them again in the background during the runs.
        session.execute(text("UPDATE publish_figures_digests SET computed_at = now()"))
        n_public = session.scalar(text(f"SELECT count(*) FROM {VIEW}"))
        labels = figures.status_labels()["no_data"]
    engine.dispose()
    base_values = {"nodata_fr": labels["fr"], "nodata_en": labels["en"]}
    only = {o.strip() for o in args.only.split(",") if o.strip()}
    rows = []
    client = httpx.Client(timeout=120, headers={"Accept-Encoding": "gzip"})
    for name, kind, items in cases(random.Random(42), extent):
        if only and not any(o in name for o in only):
            continue
        if kind == "items":
            ours = [f"/ogc/collections/restored_land/items?bbox={b}&limit=100" for b in items]
            theirs = [f"/collections/{coll}/items?bbox={b}&limit=100" for b in items]
            sqls = []
            for b in items:
                p = Params()
                sql = service.items_sql(service.ItemsQuery(land, limit=100, bbox=service.parse_bbox(b)), p)
                sqls.append(inline(raw, sql, {**base_values, **p.values}))
        else:
            ours = [f"/tiles/restored_land/{z}/{x}/{y}.mvt" for z, x, y in items]
            theirs = [f"/collections/{coll}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in items]
            sqls = []
            for z, x, y in items:
                merged = service.merges(land, z)
                values = {**base_values, "layer": land.id, "z": z, "x": x, "y": y,
                          **(service.merge_params(land, z, x, y) if merged else {})}
                sqls.append(inline(raw, service.tile_sql(land, merged=merged), values))
        for base, paths in ((f"http://127.0.0.1:{ours_port}", ours),
                            (f"http://127.0.0.1:{tipg_port}" if tipg_port else None, theirs)):
            for path in paths if base else ():  # every URL answers before the load
                r = client.get(base + path)
                if r.status_code not in (200, 204):
                    raise RuntimeError(f"{base}{path} -> {r.status_code}: {r.text[:300]}")
        o = wrk_rate(f"http://127.0.0.1:{ours_port}", ours, args.seconds, args.connections)
        t = wrk_rate(f"http://127.0.0.1:{tipg_port}", theirs, args.seconds, args.connections) if tipg_port else None
        d = run_pgbench(url, sqls, args.seconds, args.connections)
        rows.append((name, o, t, d))
        print(f"{name}: ours {o[0]:.1f}/s, tipg {t[0] if t else float('nan'):.1f}/s, pgbench {d[0]:.1f}/s",
              flush=True)
    client.close()
    raw.close()
    report(rows, n_public, args)


def report(rows, n_public: int, args) -> None:  # noqa: ANN001
    print(f"\n{n_public} public parcels in restored_land; {args.connections} connections; {args.seconds} s a run;"
          f" {os.cpu_count()} CPUs shared with the database, the load generator and the other users of the machine")
    print("ours: ONE `commons-map serve` process, tile cache off; tipg 1.x beside it; pgbench: our SQL, 8 clients\n")
    print("| case | ours req/s (p95 ms) | tipg req/s (p95 ms) | pgbench tx/s (p95 ms) | ours / tipg | ours / pgbench |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, o, t, d in rows:
        tip = f"{t[0]:.0f} ({t[1]:.0f})" if t else "-"
        ratio = "-" if not t else f"{o[0] / t[0]:.2f}x" if t[0] else "tipg answered none in the run"
        print(f"| {name} | {o[0]:.0f} ({o[1]:.0f}) | {tip} | {d[0]:.0f} ({d[1]:.0f}) | {ratio} | {o[0] / d[0]:.2f}x |")


if __name__ == "__main__":
    main()
