"""Roles under real concurrency: two coordinators revoking each other at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker
from commons_map.errors import Conflict, DomainError
from commons_map.geo import to_ewkt
from commons_map.people import service as people
from commons_map.people.models import Cooperative, Member, MemberRole

TERRITORY = Polygon([(5.10, 44.67), (5.29, 44.67), (5.29, 44.74), (5.10, 44.74), (5.10, 44.67)])
RUNS = 12


def _coordinators(Session, coop_id: int) -> int:
    with Session() as s:
        return s.scalar(select(func.count()).select_from(MemberRole).join(Member)
                        .where(Member.cooperative_id == coop_id, MemberRole.role == "coordinator"))


def test_two_coordinators_revoking_each_other_leave_one(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=4)
    Session = make_sessionmaker(engine)
    try:
        for run in range(RUNS):
            with Session() as s:
                coop = Cooperative(slug=f"race-{run}", name="Course", territory=to_ewkt(MultiPolygon([TERRITORY])))
                s.add(coop)
                s.flush()
                a, b = (Member(cooperative_id=coop.id, username=f"r{run}{n}", display_name=n, password_hash="-",
                               role_rows=[MemberRole(role="coordinator")]) for n in "ab")
                s.add_all([a, b])
                s.commit()
                coop_id, ids = coop.id, (a.id, b.id)
            barrier = threading.Barrier(2)

            def revoke(actor_id: int, target_id: int, barrier: threading.Barrier = barrier) -> str:
                with Session() as s:
                    actor, target = s.get(Member, actor_id), s.get(Member, target_id)
                    barrier.wait()
                    try:
                        people.revoke_role(s, actor=actor, member=target, role="coordinator")
                        s.commit()
                        return "revoked"
                    except Conflict:
                        s.rollback()
                        return "conflict"
                    except DomainError as exc:
                        s.rollback()
                        return type(exc).__name__

            with ThreadPoolExecutor(2) as pool:
                results = sorted(pool.map(lambda pair: revoke(*pair), [ids, ids[::-1]]))
            assert results == ["conflict", "revoked"], f"run {run}: {results}"
            assert _coordinators(Session, coop_id) == 1, f"run {run}: the cooperative must keep one coordinator"
    finally:
        engine.dispose()


def test_two_coordinators_retiring_each_other_leave_one(fresh_database):
    """Retiring is the other way to lose a coordinator: the same lock keeps one."""
    engine = make_engine(url=fresh_database(), pool_size=4)
    Session = make_sessionmaker(engine)
    try:
        for run in range(6):
            with Session() as s:
                coop = Cooperative(slug=f"retire-{run}", name="Départ", territory=to_ewkt(MultiPolygon([TERRITORY])))
                s.add(coop)
                s.flush()
                a, b = (Member(cooperative_id=coop.id, username=f"q{run}{n}", display_name=n, password_hash="-",
                               role_rows=[MemberRole(role="coordinator")]) for n in "ab")
                s.add_all([a, b])
                s.commit()
                coop_id, ids = coop.id, (a.id, b.id)
            barrier = threading.Barrier(2)

            def retire(actor_id: int, target_id: int, barrier: threading.Barrier = barrier) -> str:
                with Session() as s:
                    actor, target = s.get(Member, actor_id), s.get(Member, target_id)
                    barrier.wait()
                    try:
                        people.retire_member(s, actor=actor, member=target)
                        s.commit()
                        return "retired"
                    except Conflict as exc:
                        s.rollback()
                        return exc.code

            with ThreadPoolExecutor(2) as pool:
                results = sorted(pool.map(lambda pair: retire(*pair), [ids, ids[::-1]]))
            assert results == ["people.last_coordinator", "retired"], f"run {run}: {results}"
            with Session() as s:
                active = s.scalar(select(func.count()).select_from(Member).where(
                    Member.cooperative_id == coop_id, Member.is_active))
            assert active == 1, f"run {run}: one active coordinator must remain"
    finally:
        engine.dispose()
