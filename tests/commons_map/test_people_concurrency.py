"""Roles under real concurrency: two coordinators revoking each other at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker
from commons_map.errors import DomainError
from commons_map.geo import to_ewkt
from commons_map.people import service as people
from commons_map.people.models import Cooperative, Member, MemberRole

TERRITORY = Polygon([(5.10, 44.67), (5.29, 44.67), (5.29, 44.74), (5.10, 44.74), (5.10, 44.67)])
RUNS = 12


def _two_coordinators_at_once(fresh_database, *, runs: int, prefix: str, action) -> None:
    """``runs`` times: a fresh cooperative with exactly two coordinators, each doing ``action`` to the
    other at the same moment on its own connection. Exactly one succeeds; one active coordinator
    remains."""
    engine = make_engine(url=fresh_database(), pool_size=4)
    Session = make_sessionmaker(engine)
    try:
        for run in range(runs):
            with Session() as s:
                coop = Cooperative(slug=f"{prefix}-{run}", name="Course", territory=to_ewkt(MultiPolygon([TERRITORY])))
                s.add(coop)
                s.flush()
                a, b = (Member(cooperative_id=coop.id, username=f"{prefix[:2]}{run}{n}", display_name=n,
                               password_hash="-", role_rows=[MemberRole(role="coordinator")]) for n in "ab")
                s.add_all([a, b])
                s.commit()
                coop_id, ids = coop.id, (a.id, b.id)
            barrier = threading.Barrier(2)

            def one(actor_id: int, target_id: int, barrier: threading.Barrier = barrier) -> str:
                with Session() as s:
                    actor, target = s.get(Member, actor_id), s.get(Member, target_id)
                    barrier.wait()
                    try:
                        action(s, actor, target)
                        s.commit()
                        return "done"
                    except DomainError as exc:
                        s.rollback()
                        return exc.code

            with ThreadPoolExecutor(2) as pool:
                results = sorted(pool.map(lambda pair: one(*pair), [ids, ids[::-1]]))
            assert results == ["done", "people.last_coordinator"], f"run {run}: {results}"
            with Session() as s:
                left = s.scalar(select(func.count()).select_from(MemberRole).join(Member).where(
                    Member.cooperative_id == coop_id, MemberRole.role == "coordinator", Member.is_active))
            assert left == 1, f"run {run}: the cooperative must keep one active coordinator"
    finally:
        engine.dispose()


def test_two_coordinators_revoking_each_other_leave_one(fresh_database):
    _two_coordinators_at_once(fresh_database, runs=RUNS, prefix="race",
                              action=lambda s, actor, target: people.revoke_role(s, actor=actor, member=target,
                                                                                 role="coordinator"))


def test_two_coordinators_retiring_each_other_leave_one(fresh_database):
    """Retiring is the other way to lose a coordinator: the same lock keeps one."""
    _two_coordinators_at_once(fresh_database, runs=6, prefix="retire",
                              action=lambda s, actor, target: people.retire_member(s, actor=actor, member=target))
