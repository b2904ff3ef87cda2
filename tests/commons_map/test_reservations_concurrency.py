"""The no-overlap guarantee under real parallel connections, on brand-new committed databases.

- 50 simultaneous HTTP requests for one slot of one resource, against a real uvicorn server:
  exactly one 201 and 49 answers 409, and one confirmed row in the database.
- Many members booking many resources at once, each thread on its own session: afterwards a
  self-join over every booking finds no overlap, and no member is over the cap.
- The database path itself: a booking whose service check could not see a concurrent,
  uncommitted row waits on the constraint and gets a 409 naming it when the other commits;
  simultaneous inserts past the check only ever answer Conflict (never a deadlock error).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from sqlalchemy import func, select, text

from commons_map.db import make_engine, make_sessionmaker, session_scope
from commons_map.demo.load import OTHER_TERRITORY, TERRITORY, offset
from commons_map.errors import Conflict
from commons_map.geo import to_ewkt
from commons_map.people.models import Cooperative, Member, MemberRole
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons
from commons_map.reservations import service
from commons_map.reservations.models import ACTIVE_STATES, Reservation
from commons_map.reservations.schemas import RulesIn
from commons_map.settings import Settings
from tests.conftest import TEST_SECRET, free_port

PARIS = ZoneInfo("Europe/Paris")
ACTIVE = "(" + ", ".join(f"'{s}'" for s in ACTIVE_STATES) + ")"


def seed(url: str, *, members: int, tools: int, rules: RulesIn) -> tuple[list[int], list[int]]:
    """A cooperative, ``members`` members (the first a coordinator), ``tools`` reservable tools."""
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="conc", name="Coopérative de test",
                           territory=to_ewkt(MultiPolygon([Polygon(TERRITORY)])))
        s.add(coop)
        s.add(Cooperative(slug="other", name="Autre", territory=to_ewkt(MultiPolygon([Polygon(OTHER_TERRITORY)]))))
        s.flush()
        people = [Member(cooperative_id=coop.id, username=f"m{i:03d}", display_name=f"Membre {i}",
                         password_hash="not-a-login", role_rows=[MemberRole(role="coordinator")] if i == 0 else [])
                  for i in range(members)]
        s.add_all(people)
        s.flush()
        coordinator = people[0]
        tool_ids = []
        for t in range(tools):
            tool = create_commons(s, actor=coordinator, cooperative=coop, data=CommonsIn(
                kind="tool", name=f"Outil {t}", visibility="members",
                geometry=mapping(Point(offset(10 * t, 0)))))
            service.set_rules(s, actor=coordinator, resource_id=tool.id, data=rules)
            tool_ids.append(tool.id)
        member_ids = [p.id for p in people]
    engine.dispose()
    return member_ids, tool_ids


def overlaps(url: str) -> int:
    """Pairs of active rows of one resource whose blocked ranges overlap (must be 0)."""
    engine = make_engine(url=url)
    with engine.connect() as c:
        n = c.execute(text(f"""
            SELECT count(*) FROM reservations a JOIN reservations b
              ON a.resource_id = b.resource_id AND a.id < b.id
             AND tstzrange(a.starts_at, a.blocked_until, '[)') && tstzrange(b.starts_at, b.blocked_until, '[)')
             WHERE a.state IN {ACTIVE} AND b.state IN {ACTIVE}""")).scalar_one()
    engine.dispose()
    return n


def slot(days: int, hour: int) -> datetime:
    d = datetime.now(PARIS) + timedelta(days=days)
    return d.replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
def server_for(fresh_database):
    """Serve the app for real over a brand-new database; yields (base_url, database_url, settings)."""
    import uvicorn

    from api.main import create_app

    servers = []

    def start(url: str):
        settings = Settings(database_url=url, environment="test", secret_key=TEST_SECRET)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 20
        while not server.started:
            if time.time() > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}", settings

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def test_fifty_simultaneous_requests_for_one_slot_over_http(fresh_database, server_for):
    from commons_map.people.auth import issue_token

    url = fresh_database()
    member_ids, (tool_id,) = seed(url, members=50, tools=1, rules=RulesIn(min_minutes=60, max_days_ahead=30,
                                                                          buffer_minutes=30))
    base, settings = server_for(url)
    engine = make_engine(url=url)
    with make_sessionmaker(engine)() as s:
        tokens = [issue_token(s.get(Member, mid), settings) for mid in member_ids]
    body = {"resource_id": tool_id, "starts_at": slot(3, 9).isoformat(), "ends_at": slot(3, 12).isoformat()}
    barrier = threading.Barrier(50)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def attempt(token: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            r = http.post("/api/v1/reservations", json=body, headers={"Authorization": f"Bearer {token}"})
            with lock:
                results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=attempt, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = Counter(code for code, _ in results)
    assert statuses == {201: 1, 409: 49}, statuses
    winner = next(b for code, b in results if code == 201)
    for code, b in results:
        if code == 409:
            assert b["conflict"]["starts_at"] == slot(3, 9).isoformat(), b
            assert b["errors"][0]["field"] == "resource_id"
    with engine.connect() as c:
        rows = c.execute(text("SELECT id, state FROM reservations")).all()
    engine.dispose()
    assert rows == [(winner["id"], "confirmed")]
    assert overlaps(url) == 0


def test_many_members_many_resources_never_overlap(fresh_database):
    url = fresh_database()
    cap = 2
    member_ids, tool_ids = seed(url, members=12, tools=4, rules=RulesIn(
        min_minutes=60, max_minutes=6 * 60, max_days_ahead=30, buffer_minutes=30, max_active_per_member=cap))
    engine = make_engine(url=url, pool_size=8, max_overflow=0)
    maker = make_sessionmaker(engine)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(seed_value: int) -> None:
        rng = random.Random(seed_value)
        barrier.wait()
        for _ in range(40):
            mid, tid = rng.choice(member_ids), rng.choice(tool_ids)
            start = slot(rng.randint(2, 4), rng.randint(8, 17)) + timedelta(minutes=rng.choice([0, 15, 30, 45]))
            end = start + timedelta(minutes=rng.choice([60, 90, 120, 180]))
            with maker() as s:
                try:
                    service.book(s, actor=s.get(Member, mid), resource_id=tid, starts_at=start, ends_at=end)
                    s.commit()
                    kind = "booked"
                except Conflict as exc:
                    s.rollback()
                    kind = "cap" if "max_active_per_member" in exc.message else "conflict"
            with lock:
                outcomes[kind] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sum(outcomes.values()) == 8 * 40
    assert outcomes["booked"] > 10 and outcomes["conflict"] > 10, outcomes
    assert overlaps(url) == 0
    with engine.connect() as c:
        booked = c.execute(text("SELECT count(*) FROM reservations")).scalar_one()
        worst = c.execute(text(f"""SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM reservations
                                   WHERE state IN {ACTIVE} GROUP BY member_id, resource_id) t""")).scalar_one()
    engine.dispose()
    assert booked == outcomes["booked"]
    assert worst <= cap, "the per-member cap holds under parallel requests"


def test_the_constraint_answers_when_the_service_check_could_not_see(fresh_database):
    """Another writer (plain SQL, outside the service and its lock) holds an uncommitted
    overlapping row: the service's check cannot see it, so only the constraint can stop B."""
    url = fresh_database()
    (a_id, b_id), (tool_id,) = seed(url, members=2, tools=1, rules=RulesIn(min_minutes=60, max_days_ahead=30))
    engine = make_engine(url=url)
    maker = make_sessionmaker(engine)
    start, end = slot(3, 9), slot(3, 12)
    outcome: dict[str, object] = {}
    b_pid: list[int] = []

    other_writer = engine.connect()
    tx = other_writer.begin()
    other_writer.execute(text(
        "INSERT INTO reservations (resource_id, kind, member_id, state, starts_at, ends_at, blocked_until)"
        " VALUES (:r, 'booking', :m, 'confirmed', :s, :e, :e)"), {"r": tool_id, "m": a_id, "s": start, "e": end})

    def b() -> None:
        with maker() as s:
            b_pid.append(s.scalar(select(func.pg_backend_pid())))
            try:
                service.book(s, actor=s.get(Member, b_id), resource_id=tool_id, starts_at=slot(3, 10),
                             ends_at=slot(3, 13))
                s.commit()
                outcome["result"] = "booked"
            except Conflict as exc:
                outcome["result"] = exc

    thread = threading.Thread(target=b)
    thread.start()
    # Wait until B is blocked on the uncommitted row inside the exclusion check.
    deadline = time.time() + 30
    with engine.connect() as watch:
        while True:
            waiting = b_pid and watch.execute(text(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = :p"), {"p": b_pid[0]}).scalar() == "transactionid"
            if waiting:
                break
            assert time.time() < deadline, "B never waited on the constraint"
            time.sleep(0.02)
    tx.commit()
    other_writer.close()
    thread.join(timeout=30)
    exc = outcome["result"]
    assert isinstance(exc, Conflict), exc
    assert exc.detail["detected_by"] == "database"
    assert exc.detail["conflict"]["starts_at"] == start.isoformat()
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(Reservation)).scalar_one() == 1
    engine.dispose()
    assert overlaps(url) == 0


def test_simultaneous_inserts_behind_the_check_only_ever_answer_conflict(fresh_database):
    """Eight threads insert the same slot at the same instant, past the service's check, 30 times.

    Two inserts of overlapping rows may wait for each other inside the exclusion check, and
    PostgreSQL then aborts one as a deadlock (this test failed that way before the guarded
    insert queued writers per resource); every loser must get a Conflict, never another error,
    and each slot exactly one winner.
    """
    url = fresh_database()
    member_ids, (tool_id,) = seed(url, members=8, tools=1, rules=RulesIn(min_minutes=60, max_days_ahead=30))
    engine = make_engine(url=url, pool_size=8, max_overflow=0)
    maker = make_sessionmaker(engine)
    slots = [slot(2 + k // 6, 8 + 2 * (k % 6)) for k in range(30)]
    barrier = threading.Barrier(8)
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(member_id: int) -> None:
        with maker() as s:
            for start in slots:
                barrier.wait()
                row = Reservation(resource_id=tool_id, kind="booking", member_id=member_id, state="confirmed",
                                  starts_at=start, ends_at=start + timedelta(hours=1),
                                  blocked_until=start + timedelta(hours=1))
                try:
                    service._insert_guarded(s, row)
                    s.commit()
                    kind = "won"
                except Conflict:
                    s.rollback()
                    kind = "conflict"
                except BaseException as exc:  # noqa: BLE001 - collected and failed below
                    s.rollback()
                    with lock:
                        errors.append(exc)
                    kind = "error"
                with lock:
                    outcomes[kind] += 1

    threads = [threading.Thread(target=worker, args=(m,)) for m in member_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    engine.dispose()
    assert not errors, errors[:3]
    assert outcomes == {"won": 30, "conflict": 30 * 7}, outcomes
    assert overlaps(url) == 0

