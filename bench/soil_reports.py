"""How long the soil figures take: parcel summaries and the annual report, demo size and 10x.

Run: .venv/bin/python bench/soil_reports.py [--parcels-samples N]
Uses a scratch database (created, migrated, demo loaded, dropped). Prints milliseconds per call
and the ratio between the enlarged and the demo data set, measured in one run.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from commons_map.db import drop_database, ensure_database, make_engine, session_scope
from commons_map.demo.load import load_demo
from commons_map.migrate import upgrade
from commons_map.settings import get_settings
from commons_map.soil import reports, service
from commons_map.soil.models import Measurement, Sample


def timed(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra-samples", type=int, default=2000, help="synthetic samples to add for the 2nd run")
    args = ap.parse_args()
    url = make_url(get_settings().sync_url).set(database="cm_bench_soil").render_as_string(hide_password=False)
    drop_database(url)
    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    try:
        with session_scope(engine) as s:
            result = load_demo(s)
            coop_id = result.cooperative.id
            actor = result.members["camille"]
        figures = {}
        for label in ("demo", "enlarged"):
            with session_scope(engine) as s:
                actor = s.merge(actor)
                n = s.scalar(select(func.count()).select_from(Sample))
                figures[label] = (
                    n,
                    timed(lambda: service.parcel_summaries(s, cooperative_id=coop_id)),
                    timed(lambda actor=actor: reports.annual_report(s, actor=actor, cooperative_id=coop_id, year=2025)),
                )
            if label == "demo":
                rng = random.Random(1)
                with session_scope(engine) as s:
                    ids = [c for c in s.scalars(select(Sample.commons_id).distinct())]
                    for i in range(args.extra_samples):
                        s.add(Sample(cooperative_id=coop_id, commons_id=rng.choice(ids), recorded_by_id=actor.id,
                                     sampled_on=date(2015 + i % 10, 1 + i % 12, 1 + i % 28), measurements=[
                                         Measurement(indicator_code="soc", value=rng.uniform(0.8, 2), unit="%",
                                                     depth_top_cm=0, depth_bottom_cm=30),
                                         Measurement(indicator_code="bulk_density", value=rng.uniform(1.1, 1.5),
                                                     unit="g/cm3", depth_top_cm=0, depth_bottom_cm=30)]))
        for label, (n, ms_sum, ms_rep) in figures.items():
            print(f"{label:9} samples={n:6d}  parcel_summaries={ms_sum:8.1f} ms  annual_report={ms_rep:8.1f} ms")
        (n0, s0, r0), (n1, s1, r1) = figures["demo"], figures["enlarged"]
        print(f"ratio enlarged/demo: samples x{n1 / n0:.1f}, summaries x{s1 / s0:.2f}, report x{r1 / r0:.2f}")
    finally:
        engine.dispose()
        drop_database(url)


if __name__ == "__main__":
    main()
