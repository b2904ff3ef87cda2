"""Benchmark: ``commons-map maps build`` (static site and PMTiles archive) at 100,000 parcels.

Makes its own database (``cm_bench_build``: the demo cooperative and ``--parcels`` synthetic
parcels, as bench/ogc.py does), then runs the command as a cooperative would, in its own process,
twice: the whole build (GeoJSON of every layer, the restored-land tile folder z10-16 and the PMTiles
archive z0-16 with the pages reading them), then the archive alone (``--min-zoom 16 --max-zoom 16``
leaves one zoom of tile files). For each: the wall time, the peak memory of the process (its
maximum resident set, from GNU time, in MB of 1,024 kB) beside the issue's goal (2 minutes and 200 MB
at 100,000 parcels), the size of the archive and of the whole folder. Last,
``write_pmtiles`` alone, in process, once the figures are computed.

    .venv/bin/python bench/build.py                  # --parcels N, --keep, --reuse
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commons_map.db import drop_database  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402

# Issue 17: at 100,000 parcels the build takes at most 2 minutes and 200 MB.
GOAL_S, GOAL_MB = 120, 200


def build(url: str, out: Path, *extra: str) -> dict[str, float]:
    exe = Path(sys.executable).parent / "commons-map"
    env = dict(os.environ, COMMONS_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    rss = out.parent / "maxrss"
    t = time.perf_counter()
    # GNU time: the command's maximum resident set size, in kB
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss), str(exe), "maps", "build", "--out", str(out),
                    *extra], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - t
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"s": took, "rss": int(rss.read_text().split()[-1]) / 1024,
            "archive": (out / "public.pmtiles").stat().st_size / 1e6, "folder": size / 1e6,
            "files": sum(1 for p in (out / "tiles").rglob("*.mvt"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    ap.add_argument("--database", default="cm_bench_build")
    ap.add_argument("--archive-only", action="store_true", help="only write_pmtiles, in process")
    args = ap.parse_args()
    url = make_url(get_settings().sync_url).set(database=args.database).render_as_string(hide_password=False)
    if not args.reuse:
        sys.path.insert(0, str(ROOT / "bench"))
        from ogc import setup

        setup(url, args.parcels)
    try:
        print(f"{args.parcels} parcels; one run on a shared 2-core machine; load average"
              f" {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
        print("| build | wall time (s) | peak memory (MB) | goal (issue 17) | public.pmtiles (MB) | whole folder (MB)"
              " | tile files | load average after |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        runs = (("`maps build` (tiles z10-16, archive z0-16)", ()),
                ("archive z0-16, tile files z16 only", ("--min-zoom", "16", "--max-zoom", "16")))
        for name, extra in runs if not args.archive_only else ():
            with tempfile.TemporaryDirectory() as tmp:
                r = build(url, Path(tmp) / "site", *extra)
            met = "met" if r["s"] <= GOAL_S and r["rss"] <= GOAL_MB else "**not met**"
            print(f"| {name} | {r['s']:.0f} | {r['rss']:.0f} | {GOAL_S} s, {GOAL_MB} MB: {met}"
                  f" | {r['archive']:.1f} | {r['folder']:.1f} | {r['files']} | {os.getloadavg()[0]:.1f} |", flush=True)
        # The archive alone, in this process, once the figures are computed (they are the soil
        # feature's, and any build pays for them first).
        from commons_map.db import make_engine, session_scope
        from commons_map.publish import figures
        from maps.archive import write_pmtiles
        from maps.site import MAP_LAYERS, public_bounds

        engine = make_engine(url=url)
        with session_scope(engine) as session, tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            figures.sync(session)
            took_figures = time.perf_counter() - t
            bounds = public_bounds(session)
            t = time.perf_counter()
            made = write_pmtiles(session, Path(tmp) / "public.pmtiles", layers=MAP_LAYERS, bounds=bounds)
            took = time.perf_counter() - t
            session.rollback()
        engine.dispose()
        print(f"\nwrite_pmtiles alone (z0-16, {', '.join(MAP_LAYERS)}): {made['tiles']} tiles,"
              f" {made['bytes'] / 1e6:.1f} MB in {took:.0f} s (the figures first: {took_figures:.0f} s)")
    finally:
        if not args.keep and not args.reuse:
            drop_database(url)


if __name__ == "__main__":
    main()
