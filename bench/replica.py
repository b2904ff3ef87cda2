"""Benchmark: public reads on the primary alone, then on a streaming replica, with and without writes.

    .venv/bin/python bench/replica.py            # --parcels 20000 --seconds 20 --clients 8 --writers 2

Loopback only, bounded, cleans up after itself. It starts a private primary cluster (the project's
own set-up, ``scripts/ensure-postgis.sh``, on a free port, in /var/tmp), migrates it, loads the
demo cooperative, ``--parcels`` synthetic public parcels and a bench cooperative of ``--members``
members with time accounts, then makes a hot standby of it with ``pg_basebackup -R`` and starts it
on another port. Then, for each of two servers (``commons-map serve --workers 2``), one with
``COMMONS_DATABASE_REPLICA_URL`` unset and one with it set to the standby, two phases of
``--seconds`` each:

  reads          ``--clients`` wrk connections over public reads: vector tiles of the
                 restored land at zooms 13 to 16 over the synthetic grid (the tile cache on, as
                 served) and OGC items pages (a ~1 km bbox, limit 100);
  reads+writes   the same, while ``--writers`` threads pay between the bench members through
                 ``ledger.pay`` on the primary (one transaction per payment), as the members do.

Each server is warmed up first (the figures computed, then half a phase of the same reads, not
measured). It prints per server and phase: public reads per second, p50/p95 latency (wrk's),
payments per second, and the CPU seconds spent per 1,000 reads by the app's processes, the
primary's PostgreSQL processes and the replica's (from /proc; wrk's own CPU is not counted), so
what moves off the primary is measured, not guessed. On one
machine a replica takes CPU from the same cores: the requests per second it adds there are not
what a second machine would add; the CPU moved off the primary is.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from bench.wrk import run_wrk  # noqa: E402
from commons_map.db import make_engine, make_sessionmaker  # noqa: E402
from tests.faults.conftest import BIN, free_port, start_cluster, start_replica, stop_quietly  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
# The synthetic grid (commons_map/demo/synth.py) starts at 5.02, 44.60 with ~40 m cells.
GRID_LON0, GRID_LAT0 = 5.02, 44.60


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def postgres_pids(pgdata: Path) -> set[int]:
    """The postmaster of ``pgdata`` and its children (backends, walsender, startup, ...)."""
    master = int((pgdata / "postmaster.pid").read_text().split()[0])
    out = {master}
    for p in os.listdir("/proc"):
        if p.isdigit() and (st := _stat(p)) is not None and int(st[1]) == master:
            out.add(int(p))
    return out


def group_pids(pgid: int) -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and (st := _stat(p)) is not None and int(st[2]) == pgid}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def read_urls(rng: random.Random, parcels: int) -> list[str]:
    """Tiles z13-z16 and ~1 km items pages over the synthetic grid (its extent grows with the count)."""
    side = max(1, int(parcels**0.5))
    lon1, lat1 = GRID_LON0 + side * 0.0005, GRID_LAT0 + side * 0.00036
    urls = []
    for _ in range(200):
        lon, lat = rng.uniform(GRID_LON0, lon1), rng.uniform(GRID_LAT0, lat1)
        z = rng.choice([13, 14, 15, 16])
        x, y = tile_of(lon, lat, z)
        urls.append(f"/tiles/restored_land/{z}/{x}/{y}.mvt")
        urls.append(
            f"/ogc/collections/restored_land/items?bbox={lon:.4f},{lat:.4f},{lon + 0.012:.4f},{lat + 0.009:.4f}"
            "&limit=100&f=json"
        )
    return urls


@dataclass
class Phase:
    reads: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    payments: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


def run_phase(
    base: str, urls: list[str], *, clients: int, seconds: float, pay, writers: int, measure: dict  # noqa: ANN001
) -> Phase:
    """``clients`` wrk connections over the public reads for ``seconds``, while ``writers`` threads pay."""
    out = Phase()
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed: int) -> None:
        n = pay(seed, stop)
        with lock:
            out.payments += n

    threads = [threading.Thread(target=writer, args=(1000 + i,)) for i in range(writers)]
    before = {k: cpu_seconds(f()) for k, f in measure.items()}
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    try:
        r = run_wrk(base, urls, seconds=seconds, connections=clients, threads=min(2, clients))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    out.seconds = time.perf_counter() - t0
    out.cpu = {k: cpu_seconds(f()) - before[k] for k, f in measure.items()}
    out.reads, out.errors, out.p50_ms, out.p95_ms = r.requests, r.errors, r.p50_ms, r.p95_ms
    out.seconds = r.seconds or out.seconds
    return out


def load(url: str, parcels: int, members: int) -> list[int]:
    """The demo, the synthetic parcels, and a bench cooperative's members with accounts; their ids."""
    from shapely.geometry import MultiPolygon, Polygon

    import commons_map.models  # noqa: F401
    from commons_map.demo.load import DEMO_SLUG
    from commons_map.demo.synth import load_synthetic
    from commons_map.geo import to_ewkt
    from commons_map.ledger import service as ledger
    from commons_map.people.models import Cooperative, Member

    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    subprocess.run([str(BIN / "commons-map"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run([str(BIN / "commons-map"), "demo", "load"], env=env, check=True, capture_output=True, timeout=600)
    engine = make_engine(url=url, pool_size=2)
    try:
        with make_sessionmaker(engine)() as s:
            demo = s.scalars(select(Cooperative).where(Cooperative.slug == DEMO_SLUG)).one()
        load_synthetic(engine, demo, parcels)
        with make_sessionmaker(engine)() as s:
            coop = Cooperative(
                slug="bench", name="Bench", settings={"balance_min_minutes": -10**8, "balance_max_minutes": 10**8},
                territory=to_ewkt(MultiPolygon([Polygon([(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.6)])])))
            s.add(coop)
            s.flush()
            people = [Member(cooperative_id=coop.id, username=f"b{i:04d}", display_name=f"Membre {i}",
                             password_hash="-") for i in range(members)]
            s.add_all(people)
            s.flush()
            for m in people:
                ledger.ensure_member_account(s, member=m)
            s.commit()
            ids = [m.id for m in people]
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        return ids
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=20_000)
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0, help="per phase (default 20)")
    ap.add_argument("--clients", type=int, default=8, help="wrk connections for the public reads (default 8)")
    ap.add_argument("--writers", type=int, default=2, help="payment threads in the second phase (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    import commons_map.models  # noqa: F401
    from commons_map.ledger import service as ledger
    from commons_map.people.models import Member

    data = Path(tempfile.mkdtemp(prefix="cm-bench-replica-", dir="/var/tmp"))
    os.chmod(data, 0o755)
    primary = replica = None
    server: subprocess.Popen | None = None
    try:
        primary = start_cluster(data)
        t0 = time.perf_counter()
        member_ids = load(primary.url, args.parcels, args.members)
        print(f"loaded the demo, {args.parcels} parcels and {args.members} members in {time.perf_counter() - t0:.0f} s",
              flush=True)
        replica = start_replica(primary, data / "replica")
        wengine = make_engine(url=primary.url, pool_size=args.writers + 1)
        Session = make_sessionmaker(wengine)

        def pay(seed: int, stop: threading.Event) -> int:
            rng = random.Random(seed)
            done = 0
            with Session() as s:
                by_id = {m.id: m for m in s.scalars(select(Member).where(Member.id.in_(member_ids)))}
                while not stop.is_set():
                    a, b = rng.sample(member_ids, 2)
                    ledger.pay(s, payer=by_id[a], payee=by_id[b].username, minutes=rng.choice([15, 30, 60]),
                               reason="Service rendu", idempotency_key=f"bench-{seed}-{done}-{time.time_ns()}")
                    s.commit()
                    done += 1
            return done

        def no_pay(seed: int, stop: threading.Event) -> int:
            return 0

        urls = read_urls(random.Random(args.seed), args.parcels)
        rows = []
        for label, extra in (("primary only", {}), ("with replica", {"COMMONS_DATABASE_REPLICA_URL": replica.url})):
            port = free_port()
            env = dict(os.environ, COMMONS_DATABASE_URL=primary.url, COMMONS_SECRET_KEY="bench-" + "x" * 40, **extra)
            log = data / f"server-{port}.log"
            server = subprocess.Popen(
                [str(BIN / "commons-map"), "serve", "--port", str(port), "--workers", str(args.workers)],
                env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(base + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            # Warm up, not measured: the figures of every parcel (computed once per server process),
            # then the same load as measured for half a phase (the tile cache, the pools).
            with httpx.Client(base_url=base, timeout=300) as http:
                for u in urls[:20]:
                    try:
                        http.get(u)
                    except httpx.HTTPError as exc:
                        raise RuntimeError(f"warm-up {u}: {exc}; server log:\n{log.read_text()[-3000:]}") from exc
            run_phase(base, urls, clients=args.clients, seconds=args.seconds / 2, pay=no_pay, writers=0, measure={})
            measure = {
                "app": lambda s=server: group_pids(s.pid),
                "primary db": lambda: postgres_pids(primary.pgdata),
                "replica db": lambda: postgres_pids(replica.pgdata),
            }
            for phase, writers, fn in (("reads", 0, no_pay), ("reads+writes", args.writers, pay)):
                p = run_phase(base, urls, clients=args.clients, seconds=args.seconds, pay=fn, writers=writers,
                              measure=measure)
                rows.append((label, phase, p))
                print(f"  {label:13} {phase:13} {p.reads / p.seconds:7.1f} reads/s", flush=True)
            health = httpx.get(base + "/health", timeout=10).json()
            if "replica" in health:
                print(f"  /health replica: {health['replica']}", flush=True)
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
            server = None

        with make_engine(url=primary.url, pool_size=1).connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
        print(f"\nreplica bench: {args.parcels} synthetic parcels + the demo, {args.clients} read clients,"
              f" {args.writers} payment threads, {args.workers} server workers, {args.seconds:g} s per phase,"
              f" PostgreSQL {version}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
        print(f"{'server':14}{'phase':14}{'reads/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'errors':>7}{'pay/s':>7}"
              f"   CPU s per 1000 reads: {'app':>6}{'primary':>9}{'replica':>9}")
        for label, phase, p in rows:
            per = 1000 / max(p.reads, 1)
            app, prim, rep = (p.cpu[k] * per for k in ("app", "primary db", "replica db"))
            print(f"{label:14}{phase:14}{p.reads / p.seconds:9.1f}{p.p50_ms:8.0f}"
                  f"{p.p95_ms:8.0f}{p.errors:7d}{p.payments / p.seconds:7.1f}"
                  f"   {'':22}{app:6.2f}{prim:9.2f}{rep:9.2f}")
        wengine.dispose()
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        for c in (replica, primary):
            if c is not None:
                stop_quietly(c)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
