"""Governance under real concurrency: parallel connections over a committed database.

Several closers racing on one due proposal (the schedule, lazy reads, the proposer), positions
racing the close, and trust given by many members at once. Afterwards: the outcome was written
once, the effect applied once, every position that was accepted is counted and every refused one
left nothing, and a role given by trust was granted once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker
from commons_map.errors import Conflict
from commons_map.geo import to_ewkt
from commons_map.governance import service
from commons_map.governance.models import CircleRole, Position, Proposal, RoleHistory
from commons_map.governance.schemas import CircleIn, EffectIn, PositionIn, ProposalIn
from commons_map.ledger.models import AccountHistory
from commons_map.people.models import Cooperative, Member, MemberRole

THREADS = 8
T0 = datetime(2030, 5, 4, 9, 0, tzinfo=UTC)
TERRITORY = Polygon([(5.10, 44.67), (5.29, 44.74), (5.29, 44.67), (5.10, 44.67)])


def _setup(Session) -> dict:
    with Session() as s:
        coop = Cooperative(slug="gov-conc", name="Coopérative de test", territory=to_ewkt(MultiPolygon([TERRITORY])))
        s.add(coop)
        s.flush()
        members = [Member(cooperative_id=coop.id, username=f"g{i:02d}", display_name=f"Membre {i}",
                          password_hash="-") for i in range(16)]
        members[0].role_rows = [MemberRole(role="coordinator")]
        s.add_all(members)
        s.commit()
        return {"coop": coop.id, "members": [m.id for m in members]}


def _run(jobs, Session):  # noqa: ANN001, ANN202
    barrier = threading.Barrier(len(jobs))

    def one(job):  # noqa: ANN001, ANN202
        with Session() as s:
            barrier.wait()
            try:
                result = job(s)
                s.commit()
                return ("ok", result)
            except Conflict as exc:
                s.rollback()
                return ("refused", exc.code)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


def test_closers_race_and_the_outcome_and_effect_are_written_once(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=THREADS + 2)
    Session = make_sessionmaker(engine)
    ids = _setup(Session)
    with Session() as s:
        author = s.get(Member, ids["members"][1])
        target = ids["members"][2]
        p = service.create_proposal(s, actor=author, now=T0, data=ProposalIn(
            title="Relever la limite", text="Limite basse à -40 h.", method="vote", closes_at=T0 + timedelta(days=1),
            effect=EffectIn(type="account_limits", target=target, value={"min_minutes": -2400, "max_minutes": None})))
        for mid in ids["members"][:5]:
            service.take_position(s, actor=s.get(Member, mid), proposal_id=p.id, data=PositionIn(choice="yes"),
                                  now=T0 + timedelta(hours=1))
        s.commit()
        pid = p.id
    after = T0 + timedelta(days=1, minutes=1)

    def by_schedule(s):  # noqa: ANN001, ANN202
        return service.close_due(s, now=after)

    def by_reading(s):  # noqa: ANN001, ANN202
        return service.get_proposal(s, actor=s.get(Member, ids["members"][3]), proposal_id=pid, now=after).state

    def by_author(s):  # noqa: ANN001, ANN202
        return service.close(s, actor=s.get(Member, ids["members"][1]), proposal_id=pid, now=after).state

    results = _run([by_schedule, by_reading, by_author] * 3, Session)
    assert all(kind == "ok" for kind, _ in results), results
    closers = [r for kind, r in results if isinstance(r, list)]
    assert sum(len(r) for r in closers) <= 1  # the schedule closed it at most once
    with Session() as s:
        p = s.get(Proposal, pid)
        assert p.state == "closed" and p.outcome["passed"] is True and p.outcome["effect"]["applied"] is True
        decided = s.scalars(select(AccountHistory).where(AccountHistory.action == "limits")).all()
        assert len(decided) == 1 and decided[0].changes["decision"][1]["proposal_id"] == pid
    engine.dispose()


def test_positions_racing_the_close_are_counted_or_refused(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=20)
    Session = make_sessionmaker(engine)
    ids = _setup(Session)
    with Session() as s:
        p = service.create_proposal(s, actor=s.get(Member, ids["members"][0]), now=T0, data=ProposalIn(
            title="Ouvrir la chambre d'amis", text="Aux voyageurs du réseau.", closes_at=T0 + timedelta(days=1)))
        s.commit()
        pid = p.id
    voters = ids["members"][1:13]

    def vote(mid):  # noqa: ANN001, ANN202
        def job(s):  # noqa: ANN001, ANN202
            choice = "objection" if mid == voters[-1] else "consent"
            return service.take_position(s, actor=s.get(Member, mid), proposal_id=pid, now=T0 + timedelta(hours=3),
                                         data=PositionIn(choice=choice, reason="trop de passage")).id
        return job

    def close(s):  # noqa: ANN001, ANN202
        return service.close(s, actor=None, proposal_id=pid, now=T0 + timedelta(hours=3)).id

    results = _run([vote(mid) for mid in voters] + [close] * 4, Session)
    accepted = [r for (kind, r), _ in zip(results, range(len(voters)), strict=False) if kind == "ok"]
    refused = [r for kind, r in results if kind == "refused"]
    assert set(refused) <= {"governance.closed"}
    assert len(accepted) + len(refused) == len(voters)
    with Session() as s:
        p = s.get(Proposal, pid)
        rows = s.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == pid))
        assert rows == len(accepted) and p.outcome["participants"] == rows
        assert sum(p.outcome["counts"].values()) == rows
    engine.dispose()


def test_trust_given_at_once_grants_the_role_once(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=THREADS + 2)
    Session = make_sessionmaker(engine)
    ids = _setup(Session)
    givers, receiver = ids["members"][1:1 + THREADS], ids["members"][12]
    with Session() as s:
        circle = service.create_circle(s, actor=s.get(Member, ids["members"][0]), data=CircleIn(
            name="Outils", members=givers, thresholds={"member": 3}))
        s.commit()
        cid = circle.id

    def trust(mid):  # noqa: ANN001, ANN202
        return lambda s: service.give_trust(s, actor=s.get(Member, mid), receiver=receiver, circle_id=cid)

    results = _run([trust(mid) for mid in givers], Session)
    assert all(kind == "ok" for kind, _ in results), results
    assert sorted(r["trusts"] for _, r in results) == list(range(1, THREADS + 1))  # one recount at a time
    with Session() as s:
        assert s.get(CircleRole, (cid, receiver, "member")).source == "trust"
        granted = s.scalar(select(func.count()).select_from(RoleHistory).where(
            RoleHistory.member_id == receiver, RoleHistory.action == "granted"))
        assert granted == 1
    engine.dispose()
