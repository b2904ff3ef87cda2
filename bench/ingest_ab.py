"""Benchmark: the command-line import of two code trees, alternated, each on a fresh database.

On a shared machine the wall clock of one run says little (bench/ingest.py's ratio moved from
10x to 13x between two runs of the same code). This script compares two checkouts of the
project (e.g. main's and a branch's worktree) round by round, in alternation, so that both meet
the same load, and measures beside the wall clock what the load disturbs far less: the CPU time
of the database backend that ran the import.

Each round, for each tree, in a subprocess whose PYTHONPATH is that tree (its code, its
migrations): a fresh database migrated by that tree, then
  1. `ogr2ogr -f PostgreSQL` into a bare table, `commons-map ingest commons FILE` (start-up
     included), `ogr2ogr` again: the command's wall time beside ogr2ogr's mean;
  2. the same import in process into a second fresh database: the backend's CPU (from
     /proc/PID/stat: PostgreSQL runs on this machine) and this process's CPU.

Run:  .venv/bin/python bench/ingest_ab.py --tree /work/main --tree . [--rounds 3] [--rows 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This folder holds a file named like the `ingest` package: keep it off the import path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

MAPPING = {"name": "nom", "kind": "type", "external_id": "uuid"}


def _bench_ingest():
    """bench/ingest.py as a module (its GeoPackage maker, cooperative and ogr2ogr helpers)."""
    spec = importlib.util.spec_from_file_location("bench_ingest", HERE / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one(label: str, gpkg: Path, bounds: tuple[float, float, float, float], rows: int) -> None:
    """One round of the tree on PYTHONPATH (run as a subprocess by ``main``)."""
    from sqlalchemy import select, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from commons_map.db import drop_database, ensure_database, make_engine
    from commons_map.migrate import upgrade
    from commons_map.people.models import Cooperative
    from commons_map.settings import get_settings

    bi = _bench_ingest()
    base = make_url(get_settings().sync_url)
    url = base.set(database=f"cm_bench_ab_{os.getpid()}").render_as_string(hide_password=False)
    url_ip = base.set(database=f"cm_bench_ab_{os.getpid()}_ip").render_as_string(hide_password=False)
    ensure_database(url)
    try:
        upgrade(url)
        engine = make_engine(url=url)
        bi.add_cooperative(engine, bounds)
        engine.dispose()
        script = Path(sys.executable).with_name("commons-map")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "commons_map.cli"]
        argv = [*command, "ingest", "commons", str(gpkg), "--map", "name=nom", "--map", "kind=type",
                "--external-id", "uuid", "--cooperative", "bench"]
        ogr = [bi.ogr2ogr_bare(url, gpkg, "ogr_before")]
        t = time.perf_counter()
        done = subprocess.run(argv, env=dict(os.environ, COMMONS_DATABASE_URL=url), capture_output=True, text=True,
                              check=False)
        t_cli = time.perf_counter() - t
        if done.returncode != 0 or str(rows) not in done.stdout + done.stderr:
            sys.exit(f"{label}: the import failed ({done.returncode}):\n{done.stderr[-2000:]}")
        ogr.append(bi.ogr2ogr_bare(url, gpkg, "ogr_after"))
        mean = sum(ogr) / 2
        print(f"{label:>12}: command line {t_cli:.2f} s beside ogr2ogr {ogr[0]:.2f} and {ogr[1]:.2f} s:"
              f" {t_cli / mean:.2f}x (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        drop_database(url)

    from ingest.geodata import ImportOptions, import_commons

    ensure_database(url_ip)
    try:
        upgrade(url_ip)
        engine = make_engine(url=url_ip)
        bi.add_cooperative(engine, bounds)
        with Session(engine) as s:
            pid = s.scalar(text("SELECT pg_backend_pid()"))
            stat = Path(f"/proc/{pid}/stat")

            def backend_cpu() -> float:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

            coop = s.scalars(select(Cooperative).where(Cooperative.slug == "bench")).one()
            b0, c0, w0 = backend_cpu(), time.process_time(), time.perf_counter()
            report = import_commons(s, actor=None, system=True, cooperative=coop, path=gpkg,
                                    options=ImportOptions(mapping=dict(MAPPING)))
            s.commit()
            assert report.counts["create"] == rows, report.counts
            print(f"{label:>12}: in process: the database's CPU {backend_cpu() - b0:.2f} s, this process's"
                  f" {time.process_time() - c0:.2f} s, wall {time.perf_counter() - w0:.2f} s"
                  f" (load {os.getloadavg()[0]:.1f})", flush=True)
        engine.dispose()
    finally:
        drop_database(url_ip)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True, help="a checkout of the project (twice or more)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--one", nargs=6, help=argparse.SUPPRESS)  # label gpkg minx miny maxx maxy (a subprocess)
    args = ap.parse_args()
    if args.one:
        label, gpkg, *b = args.one
        one(label, Path(gpkg), tuple(float(x) for x in b), args.rows)  # type: ignore[arg-type]
        return
    trees = [str(Path(t).resolve()) for t in args.tree]
    with tempfile.TemporaryDirectory(prefix="bench-ingest-ab-") as tmp:
        gpkg = Path(tmp) / "parcelles.gpkg"
        bounds = _bench_ingest().make_gpkg(gpkg, args.rows)
        print(f"{args.rows} polygons; trees: " + ", ".join(f"{i}={t}" for i, t in enumerate(trees)))
        for r in range(args.rounds):
            for i, tree in enumerate(trees):
                subprocess.run([sys.executable, __file__, "--tree", tree, "--rows", str(args.rows), "--one",
                                f"{i} round {r + 1}", str(gpkg), *(str(float(x)) for x in bounds)],
                               env=dict(os.environ, PYTHONPATH=tree), check=True)


if __name__ == "__main__":
    main()
