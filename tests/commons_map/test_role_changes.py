"""Four eyes on the coordinator role (issue 18 item 22): granting or taking it back is a request
that another coordinator approves, through the service, the API and the CLI. (The races are in
test_people_concurrency.py; the members page in tests/api/test_pages.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commons_map.errors import Conflict, PermissionDenied, ValidationFailed
from commons_map.people import service as people_service
from commons_map.people.models import Member, RoleChange


def m(db, username: str) -> Member:  # noqa: ANN001
    return db.scalars(select(Member).where(Member.username == username)).one()


def pending(db) -> int:  # noqa: ANN001
    return db.scalar(select(func.count()).select_from(RoleChange).where(RoleChange.state == "pending"))


def test_a_grant_waits_for_another_coordinator(db, people):
    lucas = people.member
    change = people_service.request_role_change(db, actor=people.coordinator, member=lucas, role="coordinator",
                                                action="grant")
    assert change.state == "pending" and not lucas.is_coordinator
    with pytest.raises(PermissionDenied) as own:
        people_service.approve_role_change(db, actor=people.coordinator, change_id=change.id)
    assert own.value.code == "people.role_change_own"
    assert "not the one who asked" in own.value.text("en") and "pas qui l'a demandé" in own.value.text("fr")
    with pytest.raises(PermissionDenied):  # a plain member approves nothing
        people_service.approve_role_change(db, actor=people.steward, change_id=change.id)
    with pytest.raises(Conflict) as twice:
        people_service.request_role_change(db, actor=m(db, "yasmine"), member=lucas, role="coordinator",
                                           action="grant")
    assert twice.value.code == "people.role_change_pending"
    done = people_service.approve_role_change(db, actor=m(db, "yasmine"), change_id=change.id, note="ok")
    assert done.state == "applied" and done.decided_by == m(db, "yasmine").id and lucas.is_coordinator
    with pytest.raises(Conflict) as decided:
        people_service.approve_role_change(db, actor=m(db, "thomas"), change_id=change.id)
    assert decided.value.code == "people.role_change_decided"
    out = people_service.role_change_out(db, done)
    assert (out["member"], out["requested_by"], out["decided_by"]) == ("lucas", "camille", "yasmine")


def test_requests_that_make_no_sense_are_refused_and_nothing_is_written(db, people):
    before = pending(db)
    cases = [
        (people.coordinator, m(db, "yasmine"), "coordinator", "grant", Conflict, "people.role_held"),
        (people.coordinator, people.member, "coordinator", "revoke", Conflict, "people.role_not_held"),
        (people.coordinator, people.member, "treasurer", "grant", ValidationFailed, "people.unknown_roles"),
        (people.coordinator, people.member, "coordinator", "promote", ValidationFailed, "form.unknown_action"),
        (people.member, people.steward, "coordinator", "grant", PermissionDenied, "people.coordinators_only"),
        (people.outsider, people.member, "coordinator", "grant", PermissionDenied, "people.coordinators_only"),
    ]
    for actor, target, role, action, error, code in cases:
        with pytest.raises(error) as exc:
            people_service.request_role_change(db, actor=actor, member=target, role=role, action=action)
        assert exc.value.code == code, (role, action)
    assert pending(db) == before


def test_withdrawn_by_who_asked_refused_by_another(db, people):
    a = people_service.request_role_change(db, actor=people.coordinator, member=people.member, role="coordinator",
                                           action="grant")
    assert people_service.decline_role_change(db, actor=people.coordinator, change_id=a.id).state == "withdrawn"
    b = people_service.request_role_change(db, actor=people.coordinator, member=people.member, role="coordinator",
                                           action="grant")
    assert people_service.decline_role_change(db, actor=m(db, "thomas"), change_id=b.id,
                                              note="pas encore").state == "refused"
    assert not people.member.is_coordinator
    with pytest.raises(Conflict):
        people_service.decline_role_change(db, actor=m(db, "thomas"), change_id=b.id)


def test_the_last_coordinator_keeps_the_role_and_the_sole_one_grants_alone(db, people):
    camille, yasmine, thomas = people.coordinator, m(db, "yasmine"), m(db, "thomas")
    for other in (yasmine, thomas):
        asked = people_service.request_role_change(db, actor=camille, member=other, role="coordinator",
                                                   action="revoke")
        people_service.approve_role_change(db, actor=other, change_id=asked.id)
    assert not yasmine.is_coordinator and not thomas.is_coordinator
    with pytest.raises(Conflict) as last:
        people_service.request_role_change(db, actor=camille, member=camille, role="coordinator", action="revoke")
    assert last.value.code == "people.last_coordinator"
    # Alone, camille grants at once: nobody else could approve, and it makes the second pair of eyes.
    alone = people_service.request_role_change(db, actor=camille, member=yasmine, role="coordinator",
                                               action="grant")
    assert alone.state == "applied" and alone.note == "sole_coordinator" and yasmine.is_coordinator
    # Now there are two: the next grant waits again.
    nxt = people_service.request_role_change(db, actor=camille, member=thomas, role="coordinator", action="grant")
    assert nxt.state == "pending" and not thomas.is_coordinator


def test_a_member_added_as_coordinator_waits_for_approval(db, people):
    new = people_service.create_member(db, cooperative=people.coop, username="nouvelle-coord",
                                       display_name="Nouvelle", password="assez-long-123",
                                       roles={"coordinator"}, actor=people.coordinator)
    assert not new.is_coordinator
    change = db.scalars(select(RoleChange).where(RoleChange.member_id == new.id)).one()
    assert (change.action, change.state, change.requested_by) == ("grant", "pending", people.coordinator.id)


def test_the_api_asks_lists_and_approves(client, db, people, auth):
    camille, yasmine = people.coordinator, m(db, "yasmine")
    r = client.post(f"/api/v1/members/{people.member.id}/roles", json={"action": "grant"}, headers=auth(camille))
    assert r.status_code == 201 and r.json()["state"] == "pending", r.text
    change_id = r.json()["id"]
    listed = client.get("/api/v1/members/role-changes", headers=auth(yasmine)).json()
    assert [c["id"] for c in listed] == [change_id]
    assert client.get("/api/v1/members/role-changes", headers=auth(people.member)).status_code == 403
    own = client.post(f"/api/v1/members/role-changes/{change_id}/approve", headers={
        **auth(camille), "Accept-Language": "fr"})
    assert own.status_code == 403 and "pas qui l'a demandé" in own.text
    ok = client.post(f"/api/v1/members/role-changes/{change_id}/approve", json={"note": "d'accord"},
                     headers=auth(yasmine))
    assert ok.status_code == 200 and ok.json()["state"] == "applied" and ok.json()["decided_by"] == "yasmine"
    db.refresh(people.member)
    assert people.member.is_coordinator
    again = client.post(f"/api/v1/members/role-changes/{change_id}/approve", headers=auth(m(db, "thomas")))
    assert again.status_code == 409
    bad = client.post(f"/api/v1/members/{people.steward.id}/roles", json={"action": "promote"}, headers=auth(camille))
    assert bad.status_code == 422 and "action" in bad.text
    assert client.post("/api/v1/members/role-changes/999999/approve", headers=auth(camille)).status_code == 404


def test_the_cli_asks_and_another_coordinator_decides(fresh_database):
    """The CLI, as coordinators would type it, on a database of its own (the change is committed)."""
    from shapely.geometry import MultiPolygon, Polygon

    from commons_map.db import make_engine, session_scope
    from commons_map.geo import to_ewkt
    from commons_map.people.models import Cooperative, MemberRole

    url = fresh_database()
    engine = make_engine(url=url)
    try:
        with session_scope(engine) as s:
            coop = Cooperative(slug="yeux", name="Quatre yeux", territory=to_ewkt(MultiPolygon([Polygon(
                [(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.8), (5.1, 44.6)])])))
            s.add(coop)
            s.flush()
            s.add_all([Member(cooperative_id=coop.id, username=u, display_name=u, password_hash="-",
                              role_rows=[MemberRole(role="coordinator")] if u != "pm" else [])
                       for u in ("ca", "cb", "pm")])
        cli = str(Path(sys.executable).parent / "commons-map")
        env = dict(os.environ, COMMONS_DATABASE_URL=url)
        run = lambda *a: subprocess.run([cli, "members", *a, "--cooperative", "yeux"], env=env,  # noqa: E731
                                        capture_output=True, text=True, timeout=120)
        asked = run("role", "pm", "grant", "--by", "ca")
        assert asked.returncode == 0 and ": pending" in asked.stdout, asked.stderr
        change_id = asked.stdout.split()[0].lstrip("#")
        own = run("decide", change_id, "approve", "--by", "ca")
        assert own.returncode == 1 and own.stdout.strip() == ""
        listed = run("role-changes", "--by", "cb")
        assert f"#{change_id} grant coordinator pm: pending (asked by ca)" in listed.stdout
        done = run("decide", change_id, "approve", "--by", "cb")
        assert done.returncode == 0 and ": applied" in done.stdout and "decided by cb" in done.stdout, done.stderr
        with session_scope(engine) as s:
            assert s.scalars(select(Member).where(Member.username == "pm")).one().is_coordinator
    finally:
        engine.dispose()
