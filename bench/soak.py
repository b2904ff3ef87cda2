"""Soak: a realistic mix of requests at a steady rate against a real server, then the invariants.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 12] [--workers 2] [--parcels 5000]

Loopback only, bounded, stops by itself. It creates its own database (migrated, the demo
cooperative loaded with `commons-map demo load`, plus ``--parcels`` synthetic public parcels so
the map has something to draw), starts `commons-map serve --workers N` on a free loopback port,
signs the demo members in, and sends requests on an open-loop schedule (request i is due at
i / rate seconds, whatever the answers before it) from a pool of client threads, for
``--minutes``:

  map page      GET /maps/public (anonymous)
  tiles         GET /tiles/{collection}/{z}/{x}/{y}.mvt around Saillans, zoom 11 to 16
  ogc items     GET /ogc/collections/{collection}/items?bbox=…&limit=100
  submission    POST /openrosa/key/{token}/submission: work logs (with a photo) and harvests;
                one in twenty is a resend of an earlier one (ODK Collect retrying)
  booking       POST /api/v1/reservations on the shared tools, slots drawn from a small grid
                so that conflicts (409) are frequent; one in six requests cancels a booking
  payment       POST /api/v1/ledger/payments between members with an idempotency key; one in
                ten is a retry of an earlier payment (must replay it: 200, same transfer)

It prints, per kind: requests, expected refusals (409: slot taken, booking cap, balance limit),
replays (a resend or retry answered as such: "already received", the same transfer), errors
(5xx, unexpected statuses, transport errors), p50/p95/max latency; the rate achieved; the
server's memory at the start and the end. Then, with the server still up, the invariants:
`commons-map ledger check`, no two active reservations of a resource overlapping (a SQL
self-join), every booking answered 201 stored, every submission answered 201 stored once and
processed, every payment answered 200/201 stored once as the transfer answered. Exit status 1
when any invariant broke or any request failed (an error, as opposed to an expected refusal).
The database is dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds a script named like the `ingest` package: keep this folder off the import path.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, ensure_database  # noqa: E402
from commons_map.migrate import upgrade  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402

BIN = Path(sys.executable).parent
CLI = str(BIN / "commons-map")
DEMO_PASSWORD = "demo-commons"
CENTRE = (5.195, 44.700)  # Saillans
COLLECTIONS = ("commons", "restored_land", "gardens", "tools_and_places")
# Share of each kind of request in the mix (weights).
MIX = {"map page": 4, "tiles": 34, "ogc items": 14, "submission": 16, "booking": 16, "payment": 16}
WORKLOG = (
    "<?xml version='1.0' ?><data xmlns:jr=\"http://openrosa.org/javarosa\" "
    'xmlns:orx="http://openrosa.org/xforms" id="commons_worklog" version="{version}"><start/><end/>'
    "<commons>c{commons}</commons><work_date>{day}</work_date><hours>{hours}</hours>"
    "<activity>{activity}</activity><notes>Paillage des planches</notes>"
    "<location>44.6975 5.195 212.3 4.8</location><photo>{photo}</photo>"
    "<meta><instanceID>{iid}</instanceID></meta></data>"
)
HARVEST = (
    '<?xml version=\'1.0\' ?><data xmlns:orx="http://openrosa.org/xforms" id="commons_harvest" '
    'version="{version}"><commons>c{commons}</commons><harvested_on>{day}</harvested_on>'
    "<crops><crop>tomate</crop><crop_other/><weight_kg>{kg}</weight_kg><count/>"
    "<destination>members</destination></crops><notes>Récolte du jour</notes><photo/>"
    "<orx:meta><orx:instanceID>{iid}</orx:instanceID></orx:meta></data>"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group (master and workers), MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


@dataclass
class Outcome:
    """What one kind of request gave."""

    latencies: list[float] = field(default_factory=list)
    refused: int = 0  # expected refusals: 409 (slot taken, booking cap, balance limit)
    replayed: int = 0  # resends and retries answered as such (already received, same transfer)
    errors: int = 0
    examples: list[str] = field(default_factory=list)


class Soak:
    """The world the requests act on, and what they got."""

    def __init__(self, url: str, db_url: str, seed: int, cli_check: bool = True) -> None:
        self.cli_check = cli_check
        self.url = url
        self.db_url = db_url
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.results: dict[str, Outcome] = defaultdict(Outcome)
        self.local = threading.local()
        # Filled by prepare()
        self.members: list[str] = []
        self.bearer: dict[str, dict[str, str]] = {}
        self.field_token: dict[str, str] = {}
        self.gardens: list[int] = []
        self.tools: list[int] = []
        self.activity = ""
        # What succeeded, to check afterwards
        self.submitted: dict[str, dict] = {}  # instanceID -> job
        self.booked: dict[int, str] = {}  # reservation id -> member
        self.cancelled: set[int] = set()
        self.paid: dict[str, tuple[int, str, dict]] = {}  # key -> (transfer id, payer, body)

    # --- set-up --------------------------------------------------------------------------------

    def prepare(self, members: int = 0) -> None:
        eng = create_engine(self.db_url)
        with eng.connect() as c:
            coop = c.execute(
                text("SELECT id FROM cooperatives WHERE slug = 'cic-saillans'")
            ).scalar_one()
            self.members = list(
                c.execute(
                    text(
                        "SELECT username FROM members WHERE cooperative_id = :c AND is_active ORDER BY username"
                    ),
                    {"c": coop},
                ).scalars()
            )
            self.gardens = list(
                c.execute(
                    text(
                        "SELECT id FROM commons WHERE cooperative_id = :c AND kind_code = 'garden' ORDER BY id"
                    ),
                    {"c": coop},
                ).scalars()
            )
            self.tools = list(
                c.execute(
                    text(
                        "SELECT r.commons_id FROM resource_rules r JOIN commons c ON c.id = r.commons_id"
                        " WHERE c.cooperative_id = :c AND c.external_id LIKE 'demo:tool-%' AND r.enabled"
                        " AND r.opening_hours IS NULL ORDER BY 1"
                    ),
                    {"c": coop},
                ).scalars()
            )
            self.activity = c.execute(
                text(
                    "SELECT code FROM work_activities WHERE active ORDER BY position, code LIMIT 1"
                )
            ).scalar_one()
        eng.dispose()
        if members:
            self.members = self.members[:members]

        def sign_in(usernames: list[str]) -> None:
            with httpx.Client(base_url=self.url, timeout=60) as http:
                for username in usernames:
                    r = http.post(
                        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
                    )
                    r.raise_for_status()
                    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
                    t = http.post("/api/v1/field-tokens", json={"label": "soak"}, headers=bearer)
                    t.raise_for_status()
                    with self.lock:
                        self.bearer[username], self.field_token[username] = (
                            bearer,
                            t.json()["secret"],
                        )

        threads = [threading.Thread(target=sign_in, args=(self.members[n::4],)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        assert set(self.bearer) == set(self.members), "not every member could sign in"
        assert self.gardens and self.tools and len(self.members) > 2

    def warm_up(self, each: int) -> None:
        """Every kind ``each`` times from a few threads (each worker's caches and imports), not counted."""
        jobs = [k for k in MIX for _ in range(each)]
        self.rng.shuffle(jobs)

        def go(part: list[str], n: int) -> None:
            rng = random.Random(n)
            for kind in part:
                self.do(kind, rng)

        threads = [threading.Thread(target=go, args=(jobs[n::4], n)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        with self.lock:
            self.results.clear()

    # --- requests --------------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(base_url=self.url, timeout=30)
        return client

    def record(
        self, kind: str, elapsed: float, *, tag: str | None = None, error: str | None = None
    ) -> None:
        with self.lock:
            out = self.results[kind]
            out.latencies.append(elapsed)
            if error is not None:
                out.errors += 1
                if len(out.examples) < 5:
                    out.examples.append(error)
            elif tag == "refused":
                out.refused += 1
            elif tag == "replayed":
                out.replayed += 1

    def do(self, kind: str, rng: random.Random) -> None:
        t = time.perf_counter()
        try:
            error, tag = getattr(self, "req_" + kind.replace(" ", "_"))(rng)
        except httpx.HTTPError as exc:
            error, tag = f"{type(exc).__name__}: {exc}"[:300], None
        self.record(kind, time.perf_counter() - t, tag=tag, error=error)

    @staticmethod
    def unexpected(r: httpx.Response) -> str:
        return f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:200]}"

    def req_map_page(self, rng: random.Random) -> tuple[str | None, str | None]:
        r = self.http().get("/maps/public", params={"lang": rng.choice(["fr", "en"])})
        return (None if r.status_code == 200 else self.unexpected(r)), None

    def req_tiles(self, rng: random.Random) -> tuple[str | None, str | None]:
        z = rng.randint(11, 16)
        x, y = tile_of(CENTRE[0] + rng.uniform(-0.15, 0.1), CENTRE[1] + rng.uniform(-0.1, 0.05), z)
        r = self.http().get(
            f"/tiles/{rng.choice(COLLECTIONS)}/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"}
        )
        return (None if r.status_code in (200, 204) else self.unexpected(r)), None

    def req_ogc_items(self, rng: random.Random) -> tuple[str | None, str | None]:
        lon, lat = CENTRE[0] + rng.uniform(-0.15, 0.1), CENTRE[1] + rng.uniform(-0.1, 0.05)
        span = rng.choice([0.005, 0.02, 0.08])
        r = self.http().get(
            f"/ogc/collections/{rng.choice(COLLECTIONS)}/items",
            params={"bbox": f"{lon:.5f},{lat:.5f},{lon + span:.5f},{lat + span:.5f}", "limit": 100},
        )
        if r.status_code != 200:
            return self.unexpected(r), None
        return (None if r.json().get("type") == "FeatureCollection" else self.unexpected(r)), None

    def req_submission(self, rng: random.Random) -> tuple[str | None, str | None]:
        with self.lock:
            earlier = list(self.submitted.values()) if rng.random() < 0.05 else []
        if earlier:
            job, resend = rng.choice(earlier), True
        else:
            iid = f"uuid:{uuid.uuid4()}"
            member = rng.choice(self.members)
            day = (date.today() - timedelta(days=rng.randint(0, 20))).isoformat()
            if rng.random() < 0.6:
                photo = f"photo-{iid[5:13]}.jpg"
                body = WORKLOG.format(
                    version="2026112701",
                    commons=rng.choice(self.gardens),
                    day=day,
                    hours=rng.choice(["0.5", "1", "1.5", "2", "3"]),
                    activity=self.activity,
                    photo=photo,
                    iid=iid,
                )
                data = b"\xff\xd8\xff\xe0" + os.urandom(rng.randint(2_000, 30_000))
                job = {
                    "iid": iid,
                    "member": member,
                    "form": "commons_worklog",
                    "xml": body.encode(),
                    "photo": (photo, data),
                }
            else:
                body = HARVEST.format(
                    version="2026112701",
                    commons=rng.choice(self.gardens),
                    day=day,
                    kg=f"{rng.uniform(0.2, 8):.1f}",
                    iid=iid,
                )
                job = {
                    "iid": iid,
                    "member": member,
                    "form": "commons_harvest",
                    "xml": body.encode(),
                    "photo": None,
                }
            resend = False
        parts = [("xml_submission_file", ("xml_submission_file.xml", job["xml"], "text/xml"))]
        if job["photo"]:
            parts.append((job["photo"][0], (job["photo"][0], job["photo"][1], "image/jpeg")))
        r = self.http().post(
            f"/openrosa/key/{self.field_token[job['member']]}/submission",
            files=parts,
            headers={"X-OpenRosa-Version": "1.0"},
        )
        if r.status_code != 201:
            return self.unexpected(r), None
        if resend and "Already received" not in r.text:
            return f"resend of {job['iid']} not recognised: {r.text[:200]}", None
        with self.lock:
            self.submitted[job["iid"]] = job
        return None, ("replayed" if resend else None)

    def req_booking(self, rng: random.Random) -> tuple[str | None, str | None]:
        member = rng.choice(self.members)
        with self.lock:
            mine = [
                rid
                for rid, who in self.booked.items()
                if who == member and rid not in self.cancelled
            ]
        if mine and rng.random() < 1 / 6:
            rid = rng.choice(mine)
            r = self.http().post(
                f"/api/v1/reservations/{rid}/cancel",
                json={"note": "Finalement non"},
                headers=self.bearer[member],
            )
            if r.status_code == 200:
                with self.lock:
                    self.cancelled.add(rid)
                return None, None
            # Already cancelled by a twin request, or begun: a refusal, not a failure.
            return (None, "refused") if r.status_code == 409 else (self.unexpected(r), None)
        start = (datetime.now(UTC) + timedelta(days=rng.randint(1, 25))).replace(
            hour=rng.choice([7, 9, 12, 14, 16]), minute=0, second=0, microsecond=0
        )
        end = start + timedelta(hours=rng.choice([1, 2]))
        r = self.http().post(
            "/api/v1/reservations",
            headers=self.bearer[member],
            json={
                "resource_id": rng.choice(self.tools),
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
                "purpose": "Chantier du samedi",
            },
        )
        if r.status_code == 201:
            with self.lock:
                self.booked[r.json()["id"]] = member
            return None, None
        return (None, "refused") if r.status_code == 409 else (self.unexpected(r), None)

    def req_payment(self, rng: random.Random) -> tuple[str | None, str | None]:
        with self.lock:
            earlier = list(self.paid.items()) if rng.random() < 0.1 else []
        if earlier:
            key, (tid, payer, body) = rng.choice(earlier)
            r = self.http().post("/api/v1/ledger/payments", json=body, headers=self.bearer[payer])
            if r.status_code == 200 and r.json()["id"] == tid:
                return None, "replayed"
            return f"retry of {key}: {r.status_code} {r.text[:200]} (first: transfer {tid})", None
        payer, payee = rng.sample(self.members, 2)
        body = {
            "payee": payee,
            "minutes": rng.randint(5, 90),
            "reason": "Aide au jardin",
            "idempotency_key": f"soak-{uuid.uuid4()}",
        }
        r = self.http().post("/api/v1/ledger/payments", json=body, headers=self.bearer[payer])
        if r.status_code == 201:
            with self.lock:
                self.paid[body["idempotency_key"]] = (r.json()["id"], payer, body)
            return None, None
        return (None, "refused") if r.status_code == 409 else (self.unexpected(r), None)

    # --- the invariants ----------------------------------------------------------------------------

    def invariants(self) -> list[tuple[str, bool, str]]:
        from commons_map.reservations.models import ACTIVE_STATES

        checks: list[tuple[str, bool, str]] = []
        if self.cli_check:
            env = dict(os.environ, COMMONS_DATABASE_URL=self.db_url)
            lc = subprocess.run(
                [CLI, "ledger", "check"], env=env, capture_output=True, text=True, timeout=600
            )
            checks.append(
                (
                    "commons-map ledger check",
                    lc.returncode == 0,
                    (lc.stdout + lc.stderr).strip().splitlines()[-1],
                )
            )
        else:  # the same check, in this process
            from commons_map.db import make_engine, session_scope
            from commons_map.ledger.service import check

            engine = make_engine(url=self.db_url)
            with session_scope(engine) as session:
                report = check(session)
            engine.dispose()
            checks.append(
                (
                    "ledger check",
                    report.ok,
                    f"{report.accounts} accounts, {report.transfers} transfers,"
                    f" sum of balances {report.total_balance} min"
                    + "".join(f"; {b}" for b in report.breaches),
                )
            )
        eng = create_engine(self.db_url)
        with eng.connect() as c:
            states = list(ACTIVE_STATES)
            overlaps = c.execute(
                text(
                    "SELECT count(*) FROM reservations a JOIN reservations b"
                    " ON a.resource_id = b.resource_id AND a.id < b.id"
                    " AND tstzrange(a.starts_at, a.blocked_until, '[)')"
                    " && tstzrange(b.starts_at, b.blocked_until, '[)')"
                    " WHERE a.state = ANY(:s) AND b.state = ANY(:s)"
                ),
                {"s": states},
            ).scalar_one()
            active = c.execute(
                text("SELECT count(*) FROM reservations WHERE state = ANY(:s)"), {"s": states}
            ).scalar_one()
            checks.append(
                (
                    "reservation overlap (self-join)",
                    overlaps == 0,
                    f"{overlaps} overlapping pairs among {active} active reservations",
                )
            )
            ids = list(self.booked)
            found = dict(
                c.execute(
                    text("SELECT id, state FROM reservations WHERE id = ANY(:i)"), {"i": ids}
                ).all()
            )
            wrong = [
                i
                for i in ids
                if i not in found or (i in self.cancelled and found[i] != "cancelled")
            ]
            checks.append(
                (
                    "bookings answered 201 are stored",
                    not wrong,
                    f"{len(ids)} booked, {len(self.cancelled)} cancelled, {len(wrong)} missing or wrong",
                )
            )
            iids = list(self.submitted)
            rows = c.execute(
                text(
                    "SELECT instance_id, count(*), bool_and(status = 'processed') FROM field_submissions"
                    " WHERE instance_id = ANY(:i) GROUP BY instance_id"
                ),
                {"i": iids},
            ).all()
            stored = {r[0]: (r[1], r[2]) for r in rows}
            bad = [i for i in iids if stored.get(i) != (1, True)]
            records = c.execute(
                text(
                    "SELECT (SELECT count(*) FROM work_logs WHERE source_ref = ANY(:i))"
                    " + (SELECT count(*) FROM harvests WHERE split_part(source_ref, '/', 1) = ANY(:i))"
                ),
                {"i": iids},
            ).scalar_one()
            checks.append(
                (
                    "submissions answered 201 stored once, processed",
                    not bad and records == len(iids),
                    f"{len(iids)} submissions, {len(bad)} missing or twice, {records} records made",
                )
            )
            keys = list(self.paid)
            rows = c.execute(
                text(
                    "SELECT idempotency_key, count(*), min(id) FROM ledger_transfers WHERE idempotency_key = ANY(:k)"
                    " GROUP BY idempotency_key"
                ),
                {"k": keys},
            ).all()
            got = {r[0]: (r[1], r[2]) for r in rows}
            bad = [k for k, (tid, _, _) in self.paid.items() if got.get(k) != (1, tid)]
            checks.append(
                (
                    "payments answered 201 stored once",
                    not bad,
                    f"{len(keys)} payments, {len(bad)} missing, twice or another transfer",
                )
            )
        eng.dispose()
        return checks


def run(args: argparse.Namespace) -> int:
    base = get_settings().sync_url
    db_url = (
        make_url(base).set(database=f"cm_soak_{os.getpid()}").render_as_string(hide_password=False)
    )
    tmp = Path(tempfile.mkdtemp(prefix="cm-soak-"))
    env = dict(
        os.environ,
        COMMONS_DATABASE_URL=db_url,
        COMMONS_SECRET_KEY=secrets.token_urlsafe(32),
        COMMONS_ATTACHMENTS_DIR=str(tmp / "attachments"),
    )
    proc: subprocess.Popen | None = None
    log = tmp / "server.log"
    ensure_database(db_url)
    try:
        t = time.perf_counter()
        upgrade(db_url)
        # What `commons-map demo load` and `demo synth` do, in this process (one interpreter less to start).
        from commons_map.db import make_engine, session_scope
        from commons_map.demo.load import load_demo
        from commons_map.demo.synth import load_synthetic

        engine = make_engine(url=db_url)
        with session_scope(engine) as session:
            coop = load_demo(session).cooperative
        if args.parcels:
            load_synthetic(engine, coop, args.parcels)
        engine.dispose()
        print(
            f"database {make_url(db_url).database}: migrated, demo loaded, {args.parcels} synthetic parcels"
            f" ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
        t = time.perf_counter()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                CLI,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        up = time.perf_counter()
        soak = Soak(url, db_url, args.seed, cli_check=not args.quick_check)
        soak.prepare(args.members)
        soak.warm_up(max(2, 2 * args.workers))
        print(
            f"serving on {url} with {args.workers} worker(s) (up in {up - t:.0f} s); {len(soak.members)}"
            f" members signed in; {len(soak.tools)} tools bookable; warmed up in {time.perf_counter() - up:.0f} s",
            flush=True,
        )
        rss_start = group_rss_mb(proc.pid)
        duration = args.minutes * 60
        total = max(1, int(duration * args.rate))
        kinds = list(MIX)
        weights = [MIX[k] for k in kinds]
        plan_rng = random.Random(args.seed)
        plan = plan_rng.choices(kinds, weights=weights, k=total)
        lateness: list[float] = []
        next_i = 0
        plan_lock = threading.Lock()
        t0 = time.monotonic() + 0.5

        def client(n: int) -> None:
            nonlocal next_i
            rng = random.Random(args.seed * 1000 + n)
            while True:
                with plan_lock:
                    i = next_i
                    next_i += 1
                if i >= total:
                    return
                due = t0 + i / args.rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    with plan_lock:
                        lateness.append(-wait)
                soak.do(plan[i], rng)

        threads = [
            threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)
        ]
        for th in threads:
            th.start()
        last = time.monotonic()
        while any(th.is_alive() for th in threads):
            time.sleep(0.5)
            if time.monotonic() - last >= 60:
                last = time.monotonic()
                done = sum(len(o.latencies) for o in soak.results.values())
                errs = sum(o.errors for o in soak.results.values())
                print(f"  {last - t0:5.0f} s: {done} requests, {errs} errors", flush=True)
            if time.monotonic() > t0 + duration + 120:
                print("the clients did not finish 120 s after the end: stopping", flush=True)
                break
        elapsed = time.monotonic() - t0
        rss_end = group_rss_mb(proc.pid)
        for th in threads:
            th.join(5)

        print()
        print(
            f"soak: {args.minutes:g} min at {args.rate:g} requests/s planned, {args.clients} client threads,"
            f" {args.workers} server worker(s)"
        )
        header = (
            f"{'kind':<12} {'requests':>8} {'refused':>8} {'replayed':>8} {'errors':>7}"
            f" {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
        )
        print(header)
        print("-" * len(header))
        n_all = errors = 0
        every: list[float] = []
        for kind in kinds:
            o = soak.results.get(kind, Outcome())
            n_all += len(o.latencies)
            errors += o.errors
            every += o.latencies
            print(
                f"{kind:<12} {len(o.latencies):>8} {o.refused:>8} {o.replayed:>8} {o.errors:>7}"
                f" {percentile(o.latencies, 0.5) * 1000:>8.0f} {percentile(o.latencies, 0.95) * 1000:>8.0f}"
                f" {max(o.latencies, default=float('nan')) * 1000:>8.0f}"
            )
        print("-" * len(header))
        print(
            f"{'all':<12} {n_all:>8} {sum(o.refused for o in soak.results.values()):>8}"
            f" {sum(o.replayed for o in soak.results.values()):>8} {errors:>7}"
            f" {percentile(every, 0.5) * 1000:>8.0f} {percentile(every, 0.95) * 1000:>8.0f}"
            f" {max(every, default=float('nan')) * 1000:>8.0f}"
        )
        late = [x for x in lateness if x > 0.1]
        print(
            f"achieved {n_all / elapsed:.1f} requests/s over {elapsed:.0f} s; {len(late)} requests started more"
            f" than 100 ms late (worst {max(lateness, default=0) * 1000:.0f} ms)"
        )
        print(
            f"server memory (all workers): {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end"
        )
        for kind, o in soak.results.items():
            for e in o.examples:
                print(f"  error ({kind}): {e}")

        print()
        print("invariants")
        checks = soak.invariants()
        for name, ok, detail in checks:
            print(f"  {'OK  ' if ok else 'FAIL'} {name}: {detail}")
        failed = [c for c in checks if not c[1]]
        if errors:
            print(f"FAIL: {errors} requests failed")
        print("soak passed" if not failed and not errors else "soak FAILED")
        return 1 if failed or errors else 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if args.keep:
            print(
                f"kept the database: {make_url(db_url).render_as_string(hide_password=True)}; server log {log}"
            )
        else:
            drop_database(db_url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--minutes", type=float, default=10.0, help="how long to send requests (default 10)"
    )
    ap.add_argument("--rate", type=float, default=12.0, help="requests per second (default 12)")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    ap.add_argument("--clients", type=int, default=32, help="client threads (default 32)")
    ap.add_argument(
        "--parcels",
        type=int,
        default=5000,
        help="synthetic parcels added to the demo (default 5000)",
    )
    ap.add_argument(
        "--members", type=int, default=0, help="how many demo members take part (default: all)"
    )
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument(
        "--quick-check",
        action="store_true",
        help="run the ledger check in this process, not as `commons-map ledger check`",
    )
    ap.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.minutes > 24 * 60 or args.rate <= 0 or args.rate > 1000:
        ap.error("--minutes must be in (0, 1440] and --rate in (0, 1000]")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
