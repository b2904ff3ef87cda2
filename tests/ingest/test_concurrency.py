"""Concurrent resends from phones: real parallel connections over a fresh database, exactly one record."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker, session_scope
from commons_map.errors import Conflict
from commons_map.fieldforms.models import Submission
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import create_member
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons
from commons_map.worklog.models import WorkLog
from ingest.openrosa import receive
from tests.ingest.conftest import new_iid, xml

THREADS = 8


@pytest.fixture
def world(fresh_database, tmp_path):
    url = fresh_database()
    engine = make_engine(url=url, pool_size=THREADS + 2)
    with session_scope(engine) as s:
        coop = Cooperative(slug="coop-conc", name="Coop concurrente",
                           territory="SRID=4326;MULTIPOLYGON(((5.1 44.6,5.3 44.6,5.3 44.8,5.1 44.8,5.1 44.6)))")
        s.add(coop)
        s.flush()
        boss = create_member(s, cooperative=coop, username="boss", display_name="Boss", password="password-1",
                             roles={"coordinator"}, bootstrap=True)
        create_member(s, cooperative=coop, username="gardener", display_name="Gardener", password="password-2",
                      bootstrap=True)
        garden = create_commons(s, actor=boss, data=CommonsIn(
            kind="garden", name="Jardin partagé", visibility="members",
            geometry={"type": "Polygon", "coordinates": [[[5.19, 44.69], [5.191, 44.69], [5.191, 44.691],
                                                          [5.19, 44.691], [5.19, 44.69]]]}))
        from commons_map.worklog.service import list_activities

        activity = list_activities(s)[0].code
        garden_id = garden.id
    yield engine, garden_id, activity, tmp_path
    engine.dispose()


def _race(engine, bodies, attachments):
    """Post each body from its own thread and connection, all released at once; the outcomes."""
    barrier = threading.Barrier(len(bodies))
    results: list[object] = [None] * len(bodies)
    maker = make_sessionmaker(engine)

    def run(i: int) -> None:
        with maker() as s:
            member = s.scalars(select(Member).where(Member.username == "gardener")).one()
            barrier.wait()
            try:
                out = receive(s, member=member, xml=bodies[i], files=[], incomplete=False,
                              attachments_dir=attachments)
                s.commit()
                results[i] = out.status
            except Conflict as exc:
                s.rollback()
                results[i] = exc
            except Exception as exc:  # noqa: BLE001 - anything else fails the test below
                s.rollback()
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _body(garden_id, activity, iid, hours="2", deprecated=""):
    return xml("worklog.xml", commons=f"c{garden_id}", activity=activity, iid=iid, hours=hours,
               date=date.today().isoformat(), deprecated=deprecated)


def test_concurrent_identical_resends_make_exactly_one_record(world):
    engine, garden_id, activity, tmp = world
    iid = new_iid()
    results = _race(engine, [_body(garden_id, activity, iid)] * THREADS, tmp)
    assert results == [201] * THREADS
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 1
        assert s.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 1
        assert s.scalars(select(Submission.status).where(Submission.instance_id == iid)).one() == "processed"


def test_concurrent_resends_of_a_refused_submission_leave_nothing(world):
    """Eight phones resend a form a rule refuses (30 hours): every one is told 422, no row is left."""
    engine, garden_id, activity, tmp = world
    iid = new_iid()
    results = _race(engine, [_body(garden_id, activity, iid, hours="30")] * THREADS, tmp)
    assert results == [422] * THREADS
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
        assert s.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 0
    # The corrected form, sent again with the same instanceID, goes through once.
    assert _race(engine, [_body(garden_id, activity, iid, hours="3")] * THREADS, tmp) == [201] * THREADS
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 1


def test_concurrent_different_bytes_one_wins_the_others_conflict(world):
    engine, garden_id, activity, tmp = world
    iid = new_iid()
    bodies = [_body(garden_id, activity, iid, hours=str(1 + i)) for i in range(THREADS)]
    results = _race(engine, bodies, tmp)
    assert results.count(201) == 1
    assert all(isinstance(r, Conflict) for r in results if r != 201)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 1


def test_concurrent_edits_of_one_version_only_one_replaces_it(world):
    engine, garden_id, activity, tmp = world
    old = new_iid()
    assert _race(engine, [_body(garden_id, activity, old)], tmp) == [201]
    edits = [_body(garden_id, activity, new_iid(), hours=str(3 + i), deprecated=f"<deprecatedID>{old}</deprecatedID>")
             for i in range(4)]
    results = _race(engine, edits, tmp)
    assert results.count(201) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r != 201)
    with session_scope(engine) as s:
        current = s.scalars(select(Submission).where(Submission.deprecated_id == old)).all()
        assert len(current) == 1
        old_row = s.scalars(select(Submission).where(Submission.instance_id == old)).one()
        assert old_row.status == "superseded" and old_row.superseded_by_id == current[0].id
        log = s.scalars(select(WorkLog).where(WorkLog.source_ref == old)).one()
        assert log.minutes == int(float(current[0].raw.split(b"<hours>")[1].split(b"<")[0]) * 60)
