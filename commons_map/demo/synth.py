"""Synthetic parcels for benchmarks: many small land polygons, loaded with COPY."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

from commons_map.people.models import Cooperative

BATCH = 5_000


def synth_rows(cooperative: Cooperative, count: int, seed: int = 7, start: int = 0):
    """Yield (EWKT, name, visibility, external id) for ``count`` parcels on a grid over the territory."""
    rng = random.Random(seed)
    side = math.ceil(math.sqrt(count))
    # A grid of ~40 m cells starting south-west of Saillans; parcels fill 60-90 % of a cell.
    lon0, lat0, step_lon, step_lat = 5.02, 44.60, 0.00050, 0.00036
    for i in range(start, start + count):
        gx, gy = i % side, i // side
        x0 = lon0 + gx * step_lon
        y0 = lat0 + gy * step_lat
        fw, fh = rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.9)
        x1, y1 = x0 + step_lon * fw, y0 + step_lat * fh
        wkt = (
            f"SRID=4326;POLYGON(({x0:.7f} {y0:.7f},{x1:.7f} {y0:.7f},{x1:.7f} {y1:.7f},"
            f"{x0:.7f} {y1:.7f},{x0:.7f} {y0:.7f}))"
        )
        visibility = "public" if rng.random() < 0.8 else ("members" if rng.random() < 0.5 else "private")
        yield wkt, f"Parcelle synthétique {i}", visibility, f"synth:{i}"


def load_synthetic(engine: Engine, cooperative: Cooperative, count: int,
                   advance: Callable[[int], None] | None = None) -> int:
    """COPY ``count`` synthetic land parcels into the register; returns how many were added.

    Benchmark data only: it bypasses the per-row checks and writes no history rows.
    """
    with engine.begin() as conn:
        start = conn.execute(
            text("SELECT count(*) FROM commons WHERE cooperative_id = :c AND external_id LIKE 'synth:%'"),
            {"c": cooperative.id},
        ).scalar_one()
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            done = 0
            rows = synth_rows(cooperative, count, start=start)
            while done < count:
                n = min(BATCH, count - done)
                with cur.copy(
                    "COPY commons (cooperative_id, kind_code, name, geom, visibility, external_id, state)"
                    " FROM STDIN"
                ) as copy:
                    for _ in range(n):
                        wkt, name, vis, ext = next(rows)
                        copy.write_row((cooperative.id, "land", name, wkt, vis, ext, "restoring"))
                done += n
                if advance:
                    advance(n)
    return count
