"""Ledger throughput: transfers per second through the service vs plain INSERTs of the same rows.

    .venv/bin/python bench/ledger.py --transfers 2000

Creates its own database (dropped at the end), migrates it, adds a cooperative and members, then:

1. the service: ``ledger.pay`` then COMMIT per transfer (validation, idempotency look-up, accounts
   locked FOR UPDATE in id order, limits, transfer + postings + cached balances), from
   ``--connections`` threads, each with its own connection;
2. the floor: the same transfer and posting rows written with plain INSERTs, one transaction per
   transfer, over the same number of connections, into the same tables (so the database's own
   guarantees, the deferred balance trigger and the unique indexes, are in both figures).

Prints both rates side by side with their ratio, and checks the ledger invariant afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, ensure_database, make_engine, make_sessionmaker  # noqa: E402
from commons_map.migrate import upgrade  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402


def _parallel(jobs: list, connections: int, work: Callable[[list], None]) -> float:
    """Run ``work`` on ``connections`` slices of ``jobs`` at once; the wall time in seconds."""
    slices = [jobs[i::connections] for i in range(connections)]
    errors: list[BaseException] = []
    start_line = threading.Barrier(connections + 1)

    def run(part: list) -> None:
        try:
            start_line.wait()
            work(part)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in slices]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=2000, help="transfers per phase (default 2000)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--members", type=int, default=64, help="members paying each other (default 64)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from shapely.geometry import MultiPolygon, Polygon

    import commons_map.models  # noqa: F401
    from commons_map.geo import to_ewkt
    from commons_map.ledger import service as ledger
    from commons_map.ledger.models import Account
    from commons_map.people.models import Cooperative, Member

    base = get_settings().sync_url
    url = make_url(base).set(database=f"cm_bench_ledger_{os.getpid()}").render_as_string(hide_password=False)
    ensure_database(url)
    engine = make_engine(url=url, pool_size=args.connections + 2, max_overflow=2)
    try:
        upgrade(url)
        Session = make_sessionmaker(engine)
        with Session() as s:
            coop = Cooperative(
                slug="bench", name="Bench", settings={"balance_min_minutes": -10**8, "balance_max_minutes": 10**8},
                territory=to_ewkt(MultiPolygon([Polygon([(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.6)])])))
            s.add(coop)
            s.flush()
            members = [Member(cooperative_id=coop.id, username=f"b{i:04d}", display_name=f"Membre {i}",
                              password_hash="-") for i in range(args.members)]
            s.add_all(members)
            s.flush()
            accounts = {m.id: ledger.ensure_member_account(s, member=m).id for m in members}
            s.commit()
            coop_id, member_ids = coop.id, [m.id for m in members]

        rng = random.Random(args.seed)
        rows = []
        for n in range(args.transfers):
            a, b = rng.sample(member_ids, 2)
            rows.append((n, a, b, rng.choice([15, 30, 45, 60, 90, 120])))

        def service_work(part: list) -> None:
            with Session() as s:
                by_id = {m.id: m for m in s.scalars(select(Member).where(Member.cooperative_id == coop_id))}
                for n, a, b, minutes in part:
                    ledger.pay(s, payer=by_id[a], payee=by_id[b].username, minutes=minutes,
                               reason="Service rendu", idempotency_key=f"svc-{n}")
                    s.commit()

        def floor_work(part: list) -> None:
            with engine.connect() as conn:
                for n, a, b, minutes in part:
                    with conn.begin():
                        tid = conn.execute(text(
                            "INSERT INTO ledger_transfers (cooperative_id, kind, reason, initiated_by_id,"
                            " idempotency_key, fingerprint) VALUES (:c, 'service_payment', 'Service rendu', :a,"
                            " :k, 'x') RETURNING id"), {"c": coop_id, "a": a, "k": f"floor-{n}"}).scalar()
                        conn.execute(text(
                            "INSERT INTO ledger_postings (transfer_id, account_id, amount, balance_after)"
                            " VALUES (:t, :pa, :ma, 0), (:t, :pb, :mb, 0)"),
                            {"t": tid, "pa": accounts[a], "ma": -minutes, "pb": accounts[b], "mb": minutes})

        service_s = _parallel(rows, args.connections, service_work)
        with Session() as s:
            report = ledger.check(s, cooperative_id=coop_id)
            total = sum(s.scalars(select(Account.balance).where(Account.cooperative_id == coop_id)))
        floor_s = _parallel(rows, args.connections, floor_work)

        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
        svc_rate, floor_rate = args.transfers / service_s, args.transfers / floor_s
        print(f"ledger bench: {args.transfers} transfers per phase, {args.connections} connections,"
              f" {args.members} members, PostgreSQL {version}, {os.cpu_count()} CPU(s)")
        print(f"{'':44}{'transfers/s':>12}{'seconds':>10}")
        print(f"{'service (ledger.pay + COMMIT)':44}{svc_rate:12.0f}{service_s:10.2f}")
        print(f"{'floor (plain INSERTs of the same rows)':44}{floor_rate:12.0f}{floor_s:10.2f}")
        print(f"ratio service / floor: {svc_rate / floor_rate:.2f}"
              f"  (the floor is {floor_rate / svc_rate:.1f}x faster)")
        print(f"invariant after the service phase: {'OK' if report.ok else 'BREACH'}"
              f" (sum of balances {total}, {report.transfers} transfers)")
        if not report.ok:
            sys.exit(1)
    finally:
        engine.dispose()
        drop_database(url)


if __name__ == "__main__":
    main()
