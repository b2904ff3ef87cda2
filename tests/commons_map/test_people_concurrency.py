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
from commons_map.people.models import Cooperative, Member, MemberRole, RoleChange

TERRITORY = Polygon([(5.10, 44.67), (5.29, 44.67), (5.29, 44.74), (5.10, 44.74), (5.10, 44.67)])
RUNS = 12


def _two_coordinators_at_once(fresh_database, *, runs: int, prefix: str, action, before=None) -> None:
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
                s.flush()
                if before is not None:
                    before(s, a, b)
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


def _approve_my_own_revocation(s, actor: Member, target: Member) -> None:  # noqa: ANN001
    """``target`` asked to take ``actor``'s coordination away; ``actor`` approves it (four eyes)."""
    change = s.scalars(select(RoleChange).where(RoleChange.member_id == actor.id,
                                                RoleChange.requested_by == target.id,
                                                RoleChange.state == "pending")).one()
    people.approve_role_change(s, actor=actor, change_id=change.id)


def test_two_coordinators_revoking_each_other_leave_one(fresh_database):
    """Each asked to take the other's coordination away; each approves the other's request at the
    same moment: one applies, the other meets the last-coordinator rule."""
    def asked(s, a: Member, b: Member) -> None:  # noqa: ANN001
        people.request_role_change(s, actor=a, member=b, role="coordinator", action="revoke")
        people.request_role_change(s, actor=b, member=a, role="coordinator", action="revoke")

    _two_coordinators_at_once(fresh_database, runs=RUNS, prefix="race", before=asked,
                              action=_approve_my_own_revocation)


def test_two_approvals_at_once_apply_a_role_change_once(fresh_database):
    """Three coordinators: a asks to make d a coordinator, b and c approve at the same moment on their
    own connections. One approval applies it, the other finds it decided; d holds the role once."""
    engine = make_engine(url=fresh_database(), pool_size=4)
    Session = make_sessionmaker(engine)
    try:
        for run in range(RUNS):
            with Session() as s:
                coop = Cooperative(slug=f"twice-{run}", name="Course", territory=to_ewkt(MultiPolygon([TERRITORY])))
                s.add(coop)
                s.flush()
                a, b, c = (Member(cooperative_id=coop.id, username=f"tw{run}{n}", display_name=n,
                                  password_hash="-", role_rows=[MemberRole(role="coordinator")]) for n in "abc")
                d = Member(cooperative_id=coop.id, username=f"tw{run}d", display_name="d", password_hash="-")
                s.add_all([a, b, c, d])
                s.flush()
                change = people.request_role_change(s, actor=a, member=d, role="coordinator", action="grant")
                assert change.state == "pending"
                s.commit()
                change_id, approvers, d_id = change.id, (b.id, c.id), d.id
            barrier = threading.Barrier(2)

            def one(actor_id: int, barrier: threading.Barrier = barrier, change_id: int = change_id) -> str:
                with Session() as s:
                    actor = s.get(Member, actor_id)
                    barrier.wait()
                    try:
                        people.approve_role_change(s, actor=actor, change_id=change_id)
                        s.commit()
                        return "done"
                    except DomainError as exc:
                        s.rollback()
                        return exc.code

            with ThreadPoolExecutor(2) as pool:
                results = sorted(pool.map(one, approvers))
            assert results == ["done", "people.role_change_decided"], f"run {run}: {results}"
            with Session() as s:
                assert s.scalar(select(func.count()).select_from(MemberRole).where(
                    MemberRole.member_id == d_id, MemberRole.role == "coordinator")) == 1
                row = s.get(RoleChange, change_id)
                assert row.state == "applied" and row.decided_by in approvers
    finally:
        engine.dispose()


def test_two_coordinators_retiring_each_other_leave_one(fresh_database):
    """Retiring is the other way to lose a coordinator: the same lock keeps one."""
    _two_coordinators_at_once(fresh_database, runs=6, prefix="retire",
                              action=lambda s, actor, target: people.retire_member(s, actor=actor, member=target))
