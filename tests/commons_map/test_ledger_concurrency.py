"""The ledger under real concurrency: parallel connections over a committed database.

Hundreds of payments between members, retries of the same request, payments racing at one
member's limit, and every work log approved twice at the same moment, all from 10 threads with
their own sessions. Afterwards: no limit broken, no log credited twice, the invariant holds, and
every accepted request has its entry (and every refused one none).
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker
from commons_map.errors import Conflict, DomainError
from commons_map.geo import to_ewkt
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Account, Transfer
from commons_map.people.models import Cooperative, Member, MemberRole
from commons_map.register.models import Commons, Steward
from commons_map.worklog import service as worklog
from commons_map.worklog.models import WorkLog
from commons_map.worklog.schemas import WorkLogIn

THREADS = 10
MIN, MAX = -300, 3000
TERRITORY = Polygon([(5.10, 44.67), (5.29, 44.67), (5.29, 44.74), (5.10, 44.74), (5.10, 44.67)])


@dataclass
class Outcome:
    """What one request got back."""

    job: str
    key: str | None = None
    transfer_id: int | None = None
    error: str | None = None
    amounts: tuple[tuple[int, int], ...] = ()  # (member id, delta) when accepted


def _setup(Session) -> dict:
    with Session() as s:
        coop = Cooperative(slug="conc", name="Coopérative de test", territory=to_ewkt(MultiPolygon([TERRITORY])),
                           settings={"balance_min_minutes": MIN, "balance_max_minutes": MAX})
        s.add(coop)
        s.flush()
        members = [Member(cooperative_id=coop.id, username=f"m{i:02d}", display_name=f"Membre {i}",
                          password_hash="-") for i in range(16)]
        steward = Member(cooperative_id=coop.id, username="steward", display_name="Intendante", password_hash="-")
        coordinator = Member(cooperative_id=coop.id, username="coord", display_name="Coordination",
                             password_hash="-", role_rows=[MemberRole(role="coordinator")])
        edge = Member(cooperative_id=coop.id, username="edge", display_name="Au bord", password_hash="-")
        s.add_all([*members, steward, coordinator, edge])
        s.flush()
        land = Commons(cooperative_id=coop.id, kind_code="land", name="Pré commun", visibility="members",
                       geom=to_ewkt(Polygon([(5.19, 44.69), (5.195, 44.69), (5.195, 44.695), (5.19, 44.69)])),
                       steward_rows=[Steward(member_id=steward.id)])
        s.add(land)
        s.flush()
        for m in [*members, steward, coordinator, edge]:
            ledger.ensure_member_account(s, member=m)
        ledger.cooperative_account(s, cooperative_id=coop.id)
        day = datetime.now(ZoneInfo("Europe/Paris")).date() - timedelta(days=3)
        logs = []
        for i in range(60):
            worker = members[i % len(members)]
            logs.append(worklog.log_work(s, actor=worker, data=WorkLogIn(
                commons_id=land.id, work_date=day, minutes=30 + (i % 5) * 15, activity="weeding")).id)
        s.commit()
        return {"coop": coop.id, "members": [m.id for m in members], "steward": steward.id,
                "coordinator": coordinator.id, "edge": edge.id, "logs": logs}


def test_parallel_payments_and_double_approvals_keep_the_ledger_true(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=THREADS + 2, max_overflow=4)
    Session = make_sessionmaker(engine)
    try:
        ids = _setup(Session)
        rng = random.Random(7)
        outcomes: list[Outcome] = []
        lock = threading.Lock()
        at_once = threading.Barrier(THREADS)

        def pay(job: str, payer_id: int, payee_id: int, minutes: int, key: str, sync: bool = False) -> None:
            if sync:
                at_once.wait(timeout=60)
            with Session() as s:
                payer, payee = s.get(Member, payer_id), s.get(Member, payee_id)
                try:
                    t = ledger.pay(s, payer=payer, payee=payee.username, minutes=minutes,
                                   reason=f"Service {key}", idempotency_key=key)
                    tid = t.id
                    s.commit()
                    out = Outcome(job, key, tid, amounts=((payer_id, -minutes), (payee_id, minutes)))
                except DomainError as exc:
                    s.rollback()
                    out = Outcome(job, key, error=type(exc).__name__)
            with lock:
                outcomes.append(out)

        def approve(job: str, approver_id: int, log_id: int, sync: bool = False) -> None:
            if sync:
                at_once.wait(timeout=60)
            with Session() as s:
                try:
                    log = worklog.approve(s, actor=s.get(Member, approver_id), work_log_id=log_id)
                    s.commit()
                    out = Outcome(job, f"log-{log_id}", transfer_id=log_id,
                                  amounts=((log.member_id, log.minutes),))
                except Conflict as exc:
                    s.rollback()
                    out = Outcome(job, f"log-{log_id}", error=type(exc).__name__)
            with lock:
                outcomes.append(out)

        jobs = []
        members = ids["members"]
        # 320 payments between members, amounts small enough that most pass, some hit limits.
        for n in range(320):
            a, b = rng.sample(members, 2)
            jobs.append((pay, ("pay", a, b, rng.choice([15, 30, 45, 60, 90, 120]), f"p-{n}")))
        # 40 of them sent twice (a client retrying): must pay once.
        for n in rng.sample(range(320), 40):
            jobs.append((pay, ("retry",) + jobs[n][1][1:]))
        # Every log approved twice, by the steward and by a coordinator.
        for log_id in ids["logs"]:
            jobs.append((approve, ("approve", ids["steward"], log_id)))
            jobs.append((approve, ("approve", ids["coordinator"], log_id)))
        rng.shuffle(jobs)
        # At the same moment: 5 payments of 80 from `edge` (balance 0, floor -300: 3 fit), and one
        # approval sent twice, by both approvers, and two more racing members.
        race = [(pay, ("edge", ids["edge"], members[i], 80, f"edge-{i}", True)) for i in range(5)]
        extra = worklog_extra = None
        with Session() as s:
            day = datetime.now(ZoneInfo("Europe/Paris")).date() - timedelta(days=1)
            land = s.scalar(select(Commons.id).where(Commons.cooperative_id == ids["coop"]))
            worklog_extra = worklog.log_work(s, actor=s.get(Member, members[0]), data=WorkLogIn(
                commons_id=land, work_date=day, minutes=200, activity="building")).id
            s.commit()
        race += [(approve, ("same-approval", ids["steward"], worklog_extra, True)),
                 (approve, ("same-approval", ids["coordinator"], worklog_extra, True))]
        race += [(pay, ("race", members[1], members[2], 30, "race-same-key", True)) for _ in range(3)]
        assert len(race) == THREADS
        del extra

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for f in [pool.submit(fn, *args) for fn, args in race]:
                f.result()
            for f in [pool.submit(fn, *args) for fn, args in jobs]:
                f.result()  # a deadlock or any unexpected error fails the test here

        with Session() as s:
            report = ledger.check(s, cooperative_id=ids["coop"])
            assert report.ok, report.breaches
            assert report.total_balance == 0

            accounts = {a.member_id: a for a in s.scalars(select(Account).where(Account.kind == "member"))}
            for account in accounts.values():
                assert MIN <= account.balance <= MAX, f"{account.name} broke a limit: {account.balance}"

            # No approval credited twice; each log approved exactly once.
            credits = Counter(s.scalars(select(Transfer.work_log_id).where(Transfer.kind == "work_credit")))
            all_logs = ids["logs"] + [worklog_extra]
            assert all(credits[i] == 1 for i in all_logs) and len(credits) == len(all_logs)
            assert s.scalar(
                select(func.count()).select_from(WorkLog).where(WorkLog.state == "approved")) == len(all_logs)
            approvals = [o for o in outcomes if o.job in ("approve", "same-approval")]
            assert sum(o.error is None for o in approvals) == len(all_logs)
            assert Counter(o.error for o in approvals if o.error) == {"Conflict": len(all_logs)}

            # The limit race: exactly three of the five payments of 80 fit above -300.
            edge = [o for o in outcomes if o.job == "edge"]
            assert sum(o.error is None for o in edge) == 3
            assert {o.error for o in edge if o.error} == {"LimitExceeded"}
            assert accounts[ids["edge"]].balance == -240

            # Same key at the same moment: one transfer.
            same = [o for o in outcomes if o.key == "race-same-key"]
            assert all(o.error is None for o in same) and len({o.transfer_id for o in same}) == 1

            # Every accepted request has its entry, refused ones none; retries paid once.
            by_key = dict(s.execute(select(Transfer.idempotency_key, Transfer.id)
                                    .where(Transfer.kind == "service_payment")).all())
            accepted_keys = {o.key for o in outcomes if o.job in ("pay", "retry", "edge", "race") and o.error is None}
            refused_keys = {o.key for o in outcomes if o.job in ("pay", "retry", "edge") and o.error} - accepted_keys
            assert accepted_keys == set(by_key)
            assert not refused_keys & set(by_key)
            for o in outcomes:
                if o.key in by_key and o.error is None and o.job != "approve" and o.job != "same-approval":
                    assert o.transfer_id == by_key[o.key]
            assert sum(o.error == "LimitExceeded" for o in outcomes if o.job == "pay") > 0, \
                "the random payments should have met some limits"

            # Balances equal what the accepted requests moved (each key counted once).
            expected: dict[int, int] = defaultdict(int)
            seen: set[str] = set()
            for o in outcomes:
                if o.error is None and o.key not in seen:
                    seen.add(o.key)
                    for member_id, delta in o.amounts:
                        expected[member_id] += delta
            for member_id, account in accounts.items():
                assert account.balance == expected[member_id], account.name
            assert len(by_key) + len(all_logs) == s.scalar(
                select(func.count()).select_from(Transfer).where(Transfer.cooperative_id == ids["coop"]))
    finally:
        engine.dispose()
