"""Booking attempts per second under contention, beside a plain INSERT floor.

Creates its own database (dropped at the end unless --keep), migrates it, seeds a cooperative
with members and reservable tools, then runs the same workload three ways with N threads, each
on its own connection:

  plain INSERT      rows of the same shape into a copy of the table with no constraint at all
                    (the floor: what PostgreSQL does with nothing to check)
  constrained SQL   one INSERT per attempt into ``reservations`` (the exclusion constraint on,
                    no service logic), an exclusion violation counted as a conflict
  service book()    the real path: rules, cap lock, waiting list, pre-check, SAVEPOINT, insert,
                    event row, commit

The workload: a share of the attempts go to distinct free slots, the rest to a few hot slots
that everyone wants (only the first attempt at each can win). Figures: attempts/s, the share
that conflicted, median and p95 latency, and the ratio of each to the floor.

    .venv/bin/python bench/reservations.py --attempts 1600 --threads 8
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from commons_map.db import drop_database, ensure_database, make_engine, make_sessionmaker, session_scope
from commons_map.demo.load import TERRITORY, offset
from commons_map.errors import Conflict
from commons_map.geo import to_ewkt
from commons_map.migrate import upgrade
from commons_map.people.models import Cooperative, Member, MemberRole
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons
from commons_map.reservations import service
from commons_map.reservations.schemas import RulesIn
from commons_map.settings import get_settings

PARIS = ZoneInfo("Europe/Paris")
HOT_SLOTS = 8


@dataclass
class Attempt:
    member_id: int
    resource_id: int
    starts_at: datetime
    ends_at: datetime
    contested: bool


@dataclass
class Result:
    name: str
    attempts: int
    ok: int
    conflicts: int
    seconds: float
    latencies: list[float]
    errors: Counter[str]

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return 1000 * xs[min(len(xs) - 1, int(q * len(xs)))]


def seed(url: str, members: int, tools: int) -> tuple[list[int], list[int]]:
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="bench", name="Coopérative du banc d'essai",
                           territory=to_ewkt(MultiPolygon([Polygon(TERRITORY)])))
        s.add(coop)
        s.flush()
        people = [Member(cooperative_id=coop.id, username=f"b{i:03d}", display_name=f"Membre {i}",
                         password_hash="bench", role_rows=[MemberRole(role="coordinator")] if i == 0 else [])
                  for i in range(members)]
        s.add_all(people)
        s.flush()
        ids = []
        for t in range(tools):
            tool = create_commons(s, actor=people[0], cooperative=coop, data=CommonsIn(
                kind="tool", name=f"Outil {t}", geometry=mapping(Point(offset(5 * t, 0)))))
            service.set_rules(s, actor=people[0], resource_id=tool.id, data=RulesIn(
                min_minutes=60, max_minutes=240, max_days_ahead=90, buffer_minutes=30, max_active_per_member=100))
            ids.append(tool.id)
        member_ids = [p.id for p in people]
    engine.dispose()
    return member_ids, ids


def workload(rng: random.Random, n: int, contested_share: float, members: list[int], tools: list[int]) -> list[Attempt]:
    """Free attempts each get a slot of their own; contested ones share a few hot slots."""
    base = (datetime.now(PARIS) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    # One-hour bookings every two hours never meet, even with the 30 min buffer.
    free_slots = [(t, base + timedelta(days=d, hours=h)) for d in range(80) for h in range(8, 20, 2) for t in tools]
    rng.shuffle(free_slots)
    hot = free_slots[:HOT_SLOTS]
    free_iter = iter(free_slots[HOT_SLOTS:])
    out = []
    for _ in range(n):
        contested = rng.random() < contested_share
        tool, start = rng.choice(hot) if contested else next(free_iter)
        out.append(Attempt(rng.choice(members), tool, start, start + timedelta(hours=1), contested))
    return out


def run(name: str, url: str, attempts: list[Attempt], threads: int, one) -> Result:  # type: ignore[no-untyped-def]
    """Run ``one(conn_or_session, attempt) -> bool`` over the attempts with ``threads`` workers."""
    engine = make_engine(url=url, pool_size=threads, max_overflow=0)
    chunks = [attempts[i::threads] for i in range(threads)]
    counts = {"ok": 0, "conflicts": 0}
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(chunk: list[Attempt]) -> None:
        maker = make_sessionmaker(engine)
        local_ok = local_conf = 0
        local_lat = []
        with maker() as session:
            session.execute(text("SELECT 1"))
            session.commit()
            barrier.wait()
            for a in chunk:
                t0 = time.perf_counter()
                try:
                    won = one(session, a)
                except Exception as exc:  # noqa: BLE001 - counted and shown, never lost
                    session.rollback()
                    with lock:
                        errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"] += 1
                    continue
                if won:
                    local_ok += 1
                else:
                    local_conf += 1
                local_lat.append(time.perf_counter() - t0)
        with lock:
            counts["ok"] += local_ok
            counts["conflicts"] += local_conf
            latencies.extend(local_lat)

    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - t0
    engine.dispose()
    return Result(name, len(attempts), counts["ok"], counts["conflicts"], seconds, latencies, errors)


ROW_SQL = ("INSERT INTO {table} (resource_id, kind, member_id, state, starts_at, ends_at, blocked_until,"
           " buffer_minutes, created_by) VALUES (:r, 'booking', :m, 'confirmed', :s, :e, :b, 30, :m)")


def plain_insert(session, a: Attempt) -> bool:  # type: ignore[no-untyped-def]
    session.execute(text(ROW_SQL.format(table="bench_plain")),
                    {"r": a.resource_id, "m": a.member_id, "s": a.starts_at, "e": a.ends_at,
                     "b": a.ends_at + timedelta(minutes=30)})
    session.commit()
    return True


def constrained_insert(session, a: Attempt) -> bool:  # type: ignore[no-untyped-def]
    try:
        session.execute(text(ROW_SQL.format(table="reservations")),
                        {"r": a.resource_id, "m": a.member_id, "s": a.starts_at, "e": a.ends_at,
                         "b": a.ends_at + timedelta(minutes=30)})
        session.commit()
        return True
    except IntegrityError as exc:
        session.rollback()
        if getattr(exc.orig, "sqlstate", None) != "23P01":
            raise
        return False


def service_book(session, a: Attempt) -> bool:  # type: ignore[no-untyped-def]
    try:
        service.book(session, actor=session.get(Member, a.member_id), resource_id=a.resource_id,
                     starts_at=a.starts_at, ends_at=a.ends_at)
        session.commit()
        return True
    except Conflict:
        session.rollback()
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1600)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--contested-share", type=float, default=0.5)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    url = make_url(get_settings().sync_url).set(database=f"cm_bench_res_{os.getpid()}").render_as_string(
        hide_password=False)
    ensure_database(url)
    try:
        upgrade(url)
        members, tools = seed(url, args.members, args.tools)
        attempts = workload(random.Random(args.seed), args.attempts, args.contested_share, members, tools)
        engine = make_engine(url=url)
        with engine.begin() as c:
            c.execute(text("CREATE TABLE bench_plain (LIKE reservations INCLUDING DEFAULTS)"))
        engine.dispose()

        def reset() -> None:
            eng = make_engine(url=url)
            with eng.begin() as c:
                c.execute(text("TRUNCATE reservations, bench_plain RESTART IDENTITY CASCADE"))
            eng.dispose()

        results = []
        for name, fn in (("plain INSERT (floor)", plain_insert), ("constrained INSERT", constrained_insert),
                         ("service book()", service_book)):
            reset()
            results.append(run(name, url, attempts, args.threads, fn))
            if fn is not plain_insert:
                check = make_engine(url=url)
                with check.connect() as c:
                    bad = c.execute(text(
                        "SELECT count(*) FROM reservations a JOIN reservations b ON a.resource_id = b.resource_id"
                        " AND a.id < b.id"
                        " AND tstzrange(a.starts_at, a.blocked_until) && tstzrange(b.starts_at, b.blocked_until)"
                        " WHERE a.state IN ('requested','confirmed','checked_out','maintenance')"
                        " AND b.state IN ('requested','confirmed','checked_out','maintenance')")).scalar_one()
                check.dispose()
                assert bad == 0, f"{name}: {bad} overlapping pairs"
        contested = sum(a.contested for a in attempts)
        print(f"reservations bench: {args.attempts} attempts, {args.threads} connections, "
              f"{contested} on {HOT_SLOTS} hot slots ({100 * contested / len(attempts):.0f}%), "
              f"{len(attempts) - contested} on free slots; {len(tools)} tools, {len(members)} members")
        floor = results[0]
        print(f"{'path':<22}{'attempts/s':>12}{'booked':>8}{'conflicted':>12}"
              f"{'p50 ms':>9}{'p95 ms':>9}{'floor/path':>12}")
        for r in results:
            print(f"{r.name:<22}{r.rate:>12.0f}{r.ok:>8}{100 * r.conflicts / r.attempts:>11.1f}%"
                  f"{r.pct(0.5):>9.2f}{r.pct(0.95):>9.2f}{floor.rate / r.rate:>11.2f}x")
        for r in results:
            for message, n in r.errors.items():
                print(f"  {r.name}: {n} attempt(s) failed with {message}")
        print("no overlapping active bookings after the constrained and service runs (checked by a self-join)")
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
