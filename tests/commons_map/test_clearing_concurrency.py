"""Crossing payments under real concurrency: many threads, each with its own connection, paying
both ways across one clearing line near its limit, with retries of the same keys. Afterwards every
ledger sums to zero, the clearing accounts mirror each other, the line's limit was never passed,
each accepted payment is written once (both sides) and each refused one not at all; then
`commons-map ledger check --network` passes, and fails once a row is corrupted."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, select, text

from commons_map.clearing import service as clearing
from commons_map.clearing.models import ClearingPayment
from commons_map.db import make_engine, make_sessionmaker
from commons_map.errors import Conflict, DomainError
from commons_map.geo import to_ewkt
from commons_map.ledger.models import Account, Posting, Transfer
from commons_map.people.models import Cooperative, Member, MemberRole

THREADS = 8
LIMIT = 400
CLI = [str(Path(sys.executable).parent / "commons-map")]


def _coop(s, slug: str, x: float) -> tuple[Cooperative, list[Member], Member]:
    coop = Cooperative(slug=slug, name=slug.title(), settings={"balance_min_minutes": -10_000},
                       territory=to_ewkt(MultiPolygon([Polygon([(x, 44.6), (x + .1, 44.6), (x + .1, 44.7),
                                                                (x, 44.7), (x, 44.6)])])))
    s.add(coop)
    s.flush()
    people = [Member(cooperative_id=coop.id, username=f"{slug}-m{i}", display_name=f"{slug} {i}", password_hash="-")
              for i in range(6)]
    coord = Member(cooperative_id=coop.id, username=f"{slug}-coord", display_name="Coord", password_hash="-",
                   role_rows=[MemberRole(role="coordinator")])
    s.add_all([*people, coord])
    s.flush()
    return coop, people, coord


def _two_cooperatives(fresh_database, *, with_line: bool):  # noqa: ANN001, ANN202
    """A fresh database with "amont" and "aval", six members and a coordinator each (and, with_line,
    an accepted line of LIMIT between them): the engine, its sessions, both cooperatives, the
    members' usernames of each side, the coordinators' usernames and the line's id."""
    url = fresh_database()
    engine = make_engine(url=url, pool_size=THREADS + 2)
    Session = make_sessionmaker(engine)
    with Session() as s:
        a, a_people, a_coord = _coop(s, "amont", 5.3)
        b, b_people, b_coord = _coop(s, "aval", 5.0)
        line_id = None
        if with_line:
            line = clearing.propose_line(s, actor=a_coord, partner="aval", limit_minutes=LIMIT)
            clearing.accept_line(s, actor=b_coord, line_id=line.id)
            line_id = line.id
        s.commit()
        coords = {"a_coord": a_coord.username, "b_coord": b_coord.username}
        return (url, engine, Session, a, b, [p.username for p in a_people], [p.username for p in b_people], coords,
                line_id)


def test_crossing_payments_race_both_ways_and_the_network_holds(fresh_database):
    url, engine, Session, a, b, a_names, b_names, _, line_id = _two_cooperatives(fresh_database, with_line=True)

    rng = random.Random(16)
    jobs = []
    for i in range(160):
        forward = rng.random() < 0.6  # more one way than the other: the limit is reached and held
        payer = rng.choice(a_names if forward else b_names)
        payee = f"{rng.choice(b_names if forward else a_names)}@{'aval' if forward else 'amont'}"
        jobs.append((f"k{i}", payer, payee, rng.randint(5, 60)))
    jobs += jobs[::7]  # retries of the same requests, racing their first try
    rng.shuffle(jobs)

    def run(job):
        key, payer_name, payee, minutes = job
        with Session() as s:
            payer = s.scalars(select(Member).where(Member.username == payer_name)).one()
            try:
                c = clearing.pay_across(s, payer=payer, payee=payee, minutes=minutes, reason="Course",
                                        idempotency_key=key)
                s.commit()
                return key, "ok", c.payer_transfer.id
            except Conflict as exc:
                s.rollback()
                return key, exc.code, None
            except DomainError as exc:  # pragma: no cover - would fail below
                s.rollback()
                return key, exc.code, None

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(run, jobs))

    codes = Counter(code for _, code, _ in outcomes)
    assert codes["ok"] > 20 and codes["clearing.limit_exceeded"] > 0, codes
    assert set(codes) <= {"ok", "clearing.limit_exceeded"}, codes
    accepted = {key: tid for key, code, tid in outcomes if code == "ok"}
    refused = {key for key, code, _ in outcomes if code != "ok"} - set(accepted)
    by_key = {k: (p, q, m) for k, p, q, m in jobs}
    with Session() as s:
        report = clearing.check_network(s)
        assert report.ok, report.breaches
        payments = s.execute(select(Transfer.idempotency_key, ClearingPayment.minutes, ClearingPayment.line_id)
                             .join(ClearingPayment, ClearingPayment.payer_transfer_id == Transfer.id)).all()
        keys = Counter(k for k, _, _ in payments)
        assert set(keys) == set(accepted) and max(keys.values()) == 1, "each accepted payment once, no other"
        assert not refused & set(keys)
        assert all(minutes == by_key[k][2] and lid == line_id for k, minutes, lid in payments)
        # Every payer transfer that answered the same key is the same transfer (retries replayed).
        for key, code, tid in outcomes:
            if code == "ok":
                assert tid == accepted[key]
        # What A owes B is the sum of what crossed, within the limit; B's account mirrors it.
        forward = sum(by_key[k][2] for k in accepted if by_key[k][0].startswith("amont"))
        back = sum(by_key[k][2] for k in accepted if by_key[k][0].startswith("aval"))
        ours = clearing.clearing_balance(s, cooperative_id=a.id, partner_cooperative_id=b.id)
        assert ours == forward - back and -LIMIT <= ours <= LIMIT
        assert clearing.clearing_balance(s, cooperative_id=b.id, partner_cooperative_id=a.id) == -ours
        # The running owed amount never passed the limit: replay the clearing account's postings.
        running = s.scalars(select(Posting.balance_after).join(Account, Account.id == Posting.account_id)
                            .where(Account.kind == "clearing", Account.cooperative_id == a.id)
                            .order_by(Posting.id)).all()
        assert running and max(running) <= LIMIT and min(running) >= -LIMIT
        assert s.scalar(select(func.count()).select_from(Transfer)) == 2 * len(accepted)
    engine.dispose()

    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    ok = subprocess.run([*CLI, "ledger", "check", "--network"], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "mirror each other" in ok.stdout
    # Corrupt one row: a posting of B's mirror side loses a minute (as a faulty restore might do).
    engine = make_engine(url=url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_immutable"))
        conn.execute(text(
            "UPDATE ledger_postings SET amount = amount + 1 WHERE id = (SELECT p.id FROM ledger_postings p"
            " JOIN ledger_accounts a ON a.id = p.account_id WHERE a.kind = 'clearing' AND a.cooperative_id = :b"
            " ORDER BY p.id LIMIT 1)"), {"b": b.id})
        conn.execute(text("ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_immutable"))
    engine.dispose()
    bad = subprocess.run([*CLI, "ledger", "check", "--network"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1
    assert "must mirror" in bad.stderr and "breach" in bad.stderr


def test_both_sides_propose_at_once_and_limits_are_lowered_while_payments_race(fresh_database):
    import threading

    from commons_map.clearing.models import ClearingLine

    _, engine, Session, a, b, a_names, b_names, names, _ = _two_cooperatives(fresh_database, with_line=False)

    barrier = threading.Barrier(2)

    def propose(who: str, partner: str):
        with Session() as s:
            actor = s.scalars(select(Member).where(Member.username == names[who])).one()
            barrier.wait()
            try:
                line = clearing.propose_line(s, actor=actor, partner=partner, limit_minutes=LIMIT)
                s.commit()
                return line.id
            except Conflict as exc:
                s.rollback()
                return exc.code

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(propose, ["a_coord", "b_coord"], ["aval", "amont"]))
    assert sorted(map(str, results)).count("clearing.line_exists") == 1, results
    line_id = next(r for r in results if isinstance(r, int))
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(ClearingLine)) == 1
        line = s.get(ClearingLine, line_id)
        acceptor = names["b_coord"] if line.cooperative_id == a.id else names["a_coord"]
        clearing.accept_line(s, actor=s.scalars(select(Member).where(Member.username == acceptor)).one(),
                             line_id=line_id)
        s.commit()

    rng = random.Random(29)
    jobs: list[tuple] = [("pay", f"p{i}", rng.choice(a_names), f"{rng.choice(b_names)}@aval", rng.randint(10, 40))
                         for i in range(60)]
    jobs += [("lower", f"l{i}", names[rng.choice(["a_coord", "b_coord"])], None, LIMIT - 40 * (i + 1))
             for i in range(6)]
    rng.shuffle(jobs)

    def run(job):
        what, key, who, payee, minutes = job
        with Session() as s:
            actor = s.scalars(select(Member).where(Member.username == who)).one()
            try:
                if what == "pay":
                    clearing.pay_across(s, payer=actor, payee=payee, minutes=minutes, reason="Course",
                                        idempotency_key=key)
                else:
                    clearing.change_limit(s, actor=actor, line_id=line_id, limit_minutes=minutes)
                s.commit()
                return what, "ok"
            except Conflict as exc:
                s.rollback()
                return what, exc.code

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = Counter(pool.map(run, jobs))
    assert set(outcomes) <= {("pay", "ok"), ("pay", "clearing.limit_exceeded"), ("lower", "ok"),
                             ("lower", "clearing.limit_below_owed")}, outcomes
    assert outcomes[("pay", "ok")] > 0
    with Session() as s:
        report = clearing.check_network(s)
        assert report.ok, report.breaches
        line = s.get(ClearingLine, line_id)
        owed_now = clearing.clearing_balance(s, cooperative_id=a.id, partner_cooperative_id=b.id)
        assert 0 < owed_now <= line.limit_minutes, "never owed past the limit in force"
        from commons_map.clearing.models import ClearingLineHistory

        changes = s.execute(select(ClearingLineHistory.action, ClearingLineHistory.changes)
                            .where(ClearingLineHistory.action.in_(("limit_lowered", "limit_raise_proposed")))
                            .order_by(ClearingLineHistory.id)).all()
        # A value above the limit in force (lowered meanwhile) is a proposed raise, the other side's to accept.
        assert len(changes) == outcomes[("lower", "ok")], "each accepted change has its history row"
        lowered = [c for action, c in changes if action == "limit_lowered"]
        assert not lowered or lowered[-1]["limit_minutes"][1] == line.limit_minutes
    engine.dispose()
