"""Issue 18 item 21: inputs that used to answer 500 are each a 4xx naming the field, writing nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from commons_map.register.models import Commons
from commons_map.worklog.models import WorkLog
from tests.api.test_commons import point, square
from tests.commons_map.test_reservations_support import new_tool


def problem_field(r) -> str | None:
    body = r.json()
    errors = body.get("errors") or []
    return errors[0].get("field") if errors else body.get("field")


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def with_z(geometry: dict) -> dict:
    def lift(c):
        return [*c, 312.5] if isinstance(c[0], float | int) else [lift(x) for x in c]

    return {"type": geometry["type"], "coordinates": lift(geometry["coordinates"])}


def test_a_commons_with_3d_coordinates_keeps_its_place_without_the_altitude(client, auth, people, db):
    """GeoJSON positions may carry an altitude (RFC 7946; phones' GPS give one): it used to be a 500
    (a 3-D geometry into a 2-D column). The place is kept, the altitude is not."""
    r = client.post("/api/v1/commons", json={"kind": "garden", "name": "Jardin en relief",
                                             "geometry": with_z(square(-900, -300, 30))},
                    headers=auth(people.coordinator))
    assert r.status_code == 201, r.text
    coords = r.json()["geometry"]["coordinates"][0]
    assert all(len(c) == 2 for c in coords)
    assert coords[0] == pytest.approx(square(-900, -300, 30)["coordinates"][0][0])
    assert db.scalar(text("SELECT ST_NDims(geom) FROM commons WHERE id = :i"), {"i": r.json()["id"]}) == 2


def test_a_work_log_location_with_3d_coordinates_keeps_the_point(client, auth, people, db):
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    r = client.post("/api/v1/work-logs", headers=auth(people.coordinator), json={
        "commons_id": land.id, "work_date": "2026-11-28", "minutes": 60, "activity": "weeding",
        "location": with_z(point(10, 10))})
    assert r.status_code == 201, r.text
    assert db.scalar(text("SELECT ST_NDims(location) FROM work_logs WHERE id = :i"), {"i": r.json()["id"]}) == 2


def test_a_position_with_a_text_altitude_is_refused_naming_geometry(client, auth, people, db):
    before = count(db, Commons)
    bad = square(-900, -300, 30)
    bad["coordinates"][0][1] = [*bad["coordinates"][0][1], "haut"]
    r = client.post("/api/v1/commons", json={"kind": "garden", "name": "Jardin", "geometry": bad},
                    headers=auth(people.coordinator))
    assert r.status_code == 422 and problem_field(r) == "geometry", r.text
    assert count(db, Commons) == before


def test_a_commons_cannot_be_its_own_parent(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    r = client.patch(f"/api/v1/commons/{garden.id}", json={"parent_id": garden.id},
                     headers=auth(people.coordinator))
    assert r.status_code == 422, r.text
    assert problem_field(r) == "parent_id"
    assert db.get(Commons, garden.id).parent_id != garden.id


def test_deeply_nested_cql2_is_a_400_naming_the_filter(client):
    r = client.get("/ogc/collections/restored_land/items",
                   params={"filter": "(" * 300 + "status = 'regenerating'" + ")" * 300})
    assert r.status_code == 400, r.text
    assert "filter" in r.text


def test_nul_bytes_are_refused_naming_the_field(client, auth, people, db):
    r = client.get("/api/v1/commons", params={"q": "jar\x00din"})
    assert r.status_code == 422 and problem_field(r) == "q", r.text
    r = client.get("/ogc/collections/restored_land/items", params={"filter": "name = 'a\x00b'"})
    assert r.status_code == 400 and "filter" in r.text, r.text
    r = client.get("/api/v1/commons", params={"state": "act\x00ive"})
    assert 400 <= r.status_code < 500 and problem_field(r) == "state", r.text
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    before = count(db, WorkLog)
    r = client.post("/api/v1/work-logs", headers=auth(people.coordinator), json={
        "commons_id": land.id, "work_date": "2026-11-28", "minutes": 60, "activity": "weeding",
        "notes": "bi\x00ne"})
    assert r.status_code == 422 and problem_field(r) == "notes", r.text
    assert count(db, WorkLog) == before


def test_a_resources_reservations_until_before_from_is_a_422(client, auth, people, db):
    tool = new_tool(db, people)
    r = client.get(f"/api/v1/resources/{tool.id}/reservations", params={"until": "2000-01-01T00:00:00Z"},
                   headers=auth(people.coordinator))
    assert r.status_code == 422, r.text
    assert problem_field(r) == "until"


def test_a_null_description_is_refused_or_emptied_never_a_500(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    r = client.patch(f"/api/v1/commons/{garden.id}", json={"description": None},
                     headers=auth(people.coordinator))
    assert r.status_code == 422, r.text
    assert problem_field(r) == "description"
