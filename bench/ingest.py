"""Benchmark: 100,000 polygons from a GeoPackage into PostGIS.

Over the same file and the same (own, temporary) database:
  1. our importer (`ingest.geodata.import_commons`: read, reproject, COPY to staging, set-based
     checks of every register rule, INSERT … ON CONFLICT into `commons`, history rows in bulk),
     then the same file again (everything unchanged: the idempotent path);
  2. `ogr2ogr -f PostgreSQL` (Debian's gdal-bin) into a plain table of its own, no checks;
  3. the floor: PostgreSQL COPY of the same rows (WKB, name, id) into a bare table;
  4. `ogr2ogr -append` into the real `commons` table (the same indexes, constraints, generated
     columns and foreign keys our rows go through) of a second, freshly migrated database, so that
     it starts from an empty table as our first import did; in one transaction (`-gt unlimited`),
     with COPY: the same write without our checks and history;
  5. COPY of the same rows (WKB prepared beforehand) straight into `commons`;
  6. the command line as a user runs it, start-up included: `commons-map ingest --help` (the
     start-up alone), `commons-map ingest commons FILE --dry-run`, then the real import, into a
     third, freshly migrated database (an empty `commons`, as for ogr2ogr's bare table), between
     two runs of `ogr2ogr -f PostgreSQL` into a bare table (just before and just after: the same
     load), with the load average.

Run:  .venv/bin/python bench/ingest.py [--rows 100000]
Prints the times and the ratios measured in this one run. Creates and drops its own database.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the `ingest` package: keep its folder off the import path. The imports
# below come after this on purpose (hence their `noqa: E402`), so that none of them can pick up a
# file of bench/ in place of a package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.migrate import upgrade  # noqa: E402
from commons_map.people.models import Cooperative  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402


def make_gpkg(path: Path, rows: int) -> tuple[float, float, float, float]:
    """A GeoPackage of ``rows`` small parcels on a grid near Saillans; returns its bounds."""
    side = math.ceil(math.sqrt(rows))
    i = np.arange(rows)
    gx, gy = i % side, i // side
    rng = np.random.default_rng(7)
    x0 = 5.02 + gx * 0.0005
    y0 = 44.60 + gy * 0.00036
    x1 = x0 + 0.0005 * rng.uniform(0.6, 0.9, rows)
    y1 = y0 + 0.00036 * rng.uniform(0.6, 0.9, rows)
    geoms = shapely.box(x0, y0, x1, y1)
    gdf = gpd.GeoDataFrame({"uuid": [f"p-{k}" for k in i], "nom": [f"Parcelle {k}" for k in i],
                            "type": ["land"] * rows}, geometry=geoms, crs="EPSG:4326")
    gdf.to_file(path, layer="parcelles", driver="GPKG", engine="pyogrio")
    return tuple(gdf.total_bounds)  # type: ignore[return-value]


def add_cooperative(engine, bounds: tuple[float, float, float, float]) -> int:
    """The bench's cooperative, whose territory holds every parcel; its id."""
    minx, miny, maxx, maxy = bounds
    with session_scope(engine) as s:
        coop = Cooperative(slug="bench", name="Banc d'essai", territory=(
            f"SRID=4326;MULTIPOLYGON((({minx - .01} {miny - .01},{maxx + .01} {miny - .01},"
            f"{maxx + .01} {maxy + .01},{minx - .01} {maxy + .01},{minx - .01} {miny - .01})))"))
        s.add(coop)
        s.flush()
        return coop.id


def command_line(url: str, gpkg: Path, rows: int) -> tuple[float, float, float]:
    """(start-up, dry run, real import) of the `commons-map` command, each timed from outside the process."""
    script = Path(sys.executable).with_name("commons-map")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "commons_map.cli"]
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    args = [*command, "ingest", "commons", str(gpkg), "--map", "name=nom", "--map", "kind=type",
            "--external-id", "uuid", "--cooperative", "bench"]

    def timed(argv: list[str], expect: str) -> float:
        t = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t
        if done.returncode != 0 or expect not in done.stdout + done.stderr:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return elapsed

    t_start = timed([*command, "ingest", "--help"], "commons")
    t_dry = timed([*args, "--dry-run"], "dry run")
    t_real = timed(args, str(rows))
    print(f"command line: start-up (`commons-map ingest --help`) {t_start:.2f} s, dry run {t_dry:.2f} s,"
          f" first import {t_real:.2f} s")
    return t_start, t_dry, t_real


def ogr2ogr_bare(url: str, gpkg: Path, table: str) -> float:
    """`ogr2ogr -f PostgreSQL` of the GeoPackage into a new plain table of its own (no checks): seconds."""
    u = make_url(url)
    pg = (f"PG:dbname={u.database} host={u.host or '127.0.0.1'} port={u.port or 5432}"
          f" user={u.username or 'postgres'}")
    t = time.perf_counter()
    subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, str(gpkg), "parcelles", "-nln", table,
                    "-lco", "GEOMETRY_NAME=geom"], check=True, env=dict(os.environ, PGPASSWORD=u.password or ""),
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    if shutil.which("ogr2ogr") is None:
        sys.exit("bench/ingest.py compares with ogr2ogr: install Debian's gdal-bin (apt-get install gdal-bin)")
    base = get_settings().sync_url
    url = make_url(base).set(database=f"cm_bench_ingest_{os.getpid()}").render_as_string(hide_password=False)
    url_append = make_url(url).set(database=f"cm_bench_ingest_{os.getpid()}_append").render_as_string(
        hide_password=False)
    url_cli = make_url(url).set(database=f"cm_bench_ingest_{os.getpid()}_cli").render_as_string(hide_password=False)
    ensure_database(url)
    ensure_database(url_append)
    ensure_database(url_cli)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        upgrade(url)
        upgrade(url_append)
        upgrade(url_cli)
        gpkg = tmp / "parcelles.gpkg"
        t = time.perf_counter()
        bounds = make_gpkg(gpkg, args.rows)
        print(f"generated {args.rows} polygons in {gpkg.name} ({gpkg.stat().st_size / 2**20:.1f} MB)"
              f" in {time.perf_counter() - t:.1f} s")
        engine = make_engine(url=url)
        coop_id = add_cooperative(engine, bounds)
        engine_append = make_engine(url=url_append)
        append_coop_id = add_cooperative(engine_append, bounds)
        engine_cli = make_engine(url=url_cli)
        add_cooperative(engine_cli, bounds)
        engine_cli.dispose()
        load_before = load()
        # The command line and ogr2ogr one after the other, twice (ogr2ogr first, then last), so that
        # both meet the same load on this shared machine.
        t_ogr_cli = [ogr2ogr_bare(url_cli, gpkg, "ogr_before")]
        t_start, t_cli_dry, t_cli = command_line(url_cli, gpkg, args.rows)
        t_ogr_cli.append(ogr2ogr_bare(url_cli, gpkg, "ogr_after"))
        load_cli = load()

        from ingest.geodata import ImportOptions, import_commons

        def ours(label: str) -> tuple[float, dict[str, int], dict[str, float]]:
            stages: dict[str, float] = {}
            start = time.perf_counter()

            def step(stage: str, done: int, total: int) -> None:
                if done >= total:
                    stages.setdefault(stage, time.perf_counter() - start)

            with session_scope(engine) as s:
                c = s.get(Cooperative, coop_id)
                report = import_commons(s, actor=None, system=True, cooperative=c, path=gpkg, progress=step,
                                        options=ImportOptions(mapping={"name": "nom", "kind": "type",
                                                                       "external_id": "uuid"}))
            elapsed = time.perf_counter() - start
            print(f"{label}: {elapsed:.2f} s  {report.counts}")
            print("   stages (cumulative s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
            ends = list(stages.values())
            print("   each stage (s): " + ", ".join(
                f"{k} {v - (ends[i - 1] if i else 0):.2f}" for i, (k, v) in enumerate(stages.items())))
            return elapsed, report.counts, stages

        t_ours, counts, _ = ours("ours, first import ")
        assert counts["create"] == args.rows, counts
        t_again, counts2, _ = ours("ours, same file again")
        assert counts2["unchanged"] == args.rows, counts2
        with engine.connect() as c:
            n_hist = c.execute(text("SELECT count(*) FROM commons_history")).scalar_one()
        print(f"   commons_history rows: {n_hist}")

        u = make_url(url)
        pg = (f"PG:dbname={u.database} host={u.host or '127.0.0.1'} port={u.port or 5432}"
              f" user={u.username or 'postgres'}")
        t = time.perf_counter()
        subprocess.run(["ogr2ogr", "-f", "PostgreSQL", pg, str(gpkg), "parcelles", "-nln", "ogr_parcelles",
                        "-lco", "GEOMETRY_NAME=geom"], check=True, env=dict(os.environ, PGPASSWORD=u.password or ""))
        t_ogr = time.perf_counter() - t
        with engine.connect() as c:
            n_ogr = c.execute(text("SELECT count(*) FROM ogr_parcelles")).scalar_one()
        print(f"ogr2ogr -f PostgreSQL: {t_ogr:.2f} s  ({n_ogr} rows, no checks)")

        # GDAL writes with COPY only when no field with a default is left unset: every column that has a
        # default gets its value (the generated area_m2 and search too; GDAL leaves them out of the COPY).
        append_sql = (
            "SELECT 'ogr:' || uuid AS external_id, nom AS name, type AS kind_code,"
            f" {append_coop_id} AS cooperative_id, '' AS description, 'active' AS state, '' AS rules_of_use,"
            " 'owned' AS tenure, '' AS tenure_notes, 'members' AS visibility, 'exact' AS location_precision,"
            " strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS created_at, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS updated_at,"
            " 0.0 AS area_m2, '' AS search, geom FROM parcelles"
        )
        ua = make_url(url_append)
        pg_append = pg.replace(f"dbname={u.database} ", f"dbname={ua.database} ")
        t = time.perf_counter()
        subprocess.run(["ogr2ogr", "-append", "-f", "PostgreSQL", pg_append, str(gpkg), "-nln", "commons", "-unsetFid",
                        "-gt", "unlimited", "--config", "PG_USE_COPY", "YES", "-dialect", "SQLite", "-sql", append_sql],
                       check=True, env=dict(os.environ, PGPASSWORD=u.password or ""))
        t_append = time.perf_counter() - t
        with engine_append.connect() as c:
            n_append = c.execute(text("SELECT count(*) FROM commons WHERE external_id LIKE 'ogr:%'")).scalar_one()
        assert n_append == args.rows, n_append
        print(f"ogr2ogr -append into commons (same table, indexes and constraints; no checks, no history):"
              f" {t_append:.2f} s  ({n_append} rows)")

        gdf = gpd.read_file(gpkg, engine="pyogrio")
        wkb = shapely.to_wkb(gdf.geometry.values)
        rows = list(zip(gdf["nom"].tolist(), gdf["uuid"].tolist(), wkb, strict=True))
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE copy_floor (name text, external_id text, wkb bytea)")
            raw = c.connection.driver_connection
            t = time.perf_counter()
            with raw.cursor() as cur, cur.copy("COPY copy_floor (name, external_id, wkb) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            t_copy = time.perf_counter() - t
        print(f"COPY floor (rows already in memory, bare table): {t_copy:.2f} s")
        commons_rows = [(coop_id, "land", name, "floor:" + ext, w) for name, ext, w in rows]
        with engine.begin() as c:
            raw = c.connection.driver_connection
            t = time.perf_counter()
            with raw.cursor() as cur, cur.copy(
                "COPY commons (cooperative_id, kind_code, name, external_id, geom) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["int4", "text", "text", "text", "bytea"])  # WKB, read by PostGIS's receive function
                for r in commons_rows:
                    cp.write_row(r)
            t_commons = time.perf_counter() - t
        print(f"COPY into commons (its indexes, constraints, generated area and search columns, and the map's"
              f" cells kept by its triggers; no checks, no history): {t_commons:.2f} s")
        # The same COPY with the map cells' trigger off, rolled back: what the table itself costs.
        with engine.connect() as c:
            c.exec_driver_sql("ALTER TABLE commons DISABLE TRIGGER publish_merged_ins")
            raw = c.connection.driver_connection
            t = time.perf_counter()
            with raw.cursor() as cur, cur.copy(
                "COPY commons (cooperative_id, kind_code, name, external_id, geom) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["int4", "text", "text", "text", "bytea"])
                for coop, kind, name, ext, w in commons_rows:
                    cp.write_row((coop, kind, name, "nocells:" + ext, w))
            t_table = time.perf_counter() - t
            c.rollback()
        print(f"   the same COPY, the map cells' trigger off (rolled back): {t_table:.2f} s: the table's own cost;"
              f" the map's cells {t_commons - t_table:.2f} s")
        print()
        print(f"ratios: ours / ogr2ogr = {t_ours / t_ogr:.2f}   ours / COPY = {t_ours / t_copy:.1f}"
              f"   ogr2ogr / COPY = {t_ogr / t_copy:.1f}   re-import / first import = {t_again / t_ours:.2f}"
              f"   ours / COPY into commons = {t_ours / t_commons:.1f}")
        print(f"        ours / ogr2ogr -append into commons = {t_ours / t_append:.2f}"
              f"   ogr2ogr -append into commons / ogr2ogr = {t_append / t_ogr:.1f}")
        t_ogr_side = sum(t_ogr_cli) / len(t_ogr_cli)
        print()
        print(f"load average (1/5/15 min) before the command line {load_before}, after it {load_cli},"
              f" at the end {load()}")
        print("command line, start-up included, side by side (same minutes):")
        print(f"  `commons-map ingest commons` (every check, all or nothing, history, map cells): {t_cli:.2f} s"
              f"   dry run {t_cli_dry:.2f} s   start-up alone {t_start:.2f} s")
        print(f"  `ogr2ogr -f PostgreSQL` into a bare table, just before and just after:"
              f" {' and '.join(f'{t:.2f}' for t in t_ogr_cli)} s (mean {t_ogr_side:.2f} s)")
        print(f"  ratio: {t_cli / t_ogr_side:.2f}x (dry run {t_cli_dry / t_ogr_side:.2f}x; goal: within 2x);"
              f" beside `ogr2ogr -append` into `commons` (its indexes, constraints and triggers, no checks, no"
              f" history) {t_cli / t_append:.2f}x")
        engine.dispose()
        engine_append.dispose()
    finally:
        drop_database(url)
        drop_database(url_append)
        drop_database(url_cli)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
