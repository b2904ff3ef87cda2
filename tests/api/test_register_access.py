"""The access matrix of the register: roles x visibilities x endpoints.

Each cell states the intended rule; the test checks the answer of the real endpoint.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from commons_map.register.models import Commons

ROLES = ["anonymous", "member", "steward", "other_steward", "coordinator", "outsider"]

# Which demo commons stands for which visibility, and who stewards it.
SUBJECTS = {
    "public": "demo:land-0",      # stewarded by mamadou (the steward persona)
    "members": "demo:bed-0-1",    # a members-only bed
    "private": "demo:home-0",     # Mamadou's home: private, stewarded by him
}

# Who may SEE a commons of each visibility.
SEE = {
    "public": set(ROLES),
    "members": {"member", "steward", "other_steward", "coordinator"},
    "private": {"steward", "coordinator"},
}

# Who may EDIT (patch/archive): its stewards and the coordinators. The bed's stewards are nobody
# among the personas, so only the coordinator edits it.
EDIT = {
    "public": {"steward", "coordinator"},
    "members": {"coordinator"},
    "private": {"steward", "coordinator"},
}


def subject(db, visibility):
    return db.scalars(select(Commons).where(Commons.external_id == SUBJECTS[visibility])).one()


@pytest.mark.parametrize("visibility", SEE)
@pytest.mark.parametrize("role", ROLES)
def test_read_endpoints(client, auth, people, db, role, visibility):
    c = subject(db, visibility)
    h = auth(people.by_role(role))
    allowed = role in SEE[visibility]
    one = client.get(f"/api/v1/commons/{c.id}", headers=h)
    assert one.status_code == (200 if allowed else 404)
    hist = client.get(f"/api/v1/commons/{c.id}/history", headers=h)
    assert hist.status_code == (200 if allowed else 404)
    listed = client.get("/api/v1/commons", params={"kind": c.kind_code, "limit": 1000}, headers=h).json()
    assert (c.id in {f["id"] for f in listed["features"]}) is allowed
    searched = client.get("/api/v1/commons", params={"q": c.name.split()[0], "limit": 1000}, headers=h).json()
    assert (c.id in {f["id"] for f in searched["features"]}) is allowed
    if not allowed:
        # Nothing of it may leak through the answer bodies either.
        assert c.name not in one.text + hist.text
    if allowed and role in ("anonymous", "outsider"):
        assert "stewards" not in one.json()["properties"]
        assert all(h_["member"] is None for h_ in hist.json())


@pytest.mark.parametrize("visibility", SEE)
@pytest.mark.parametrize("role", ROLES)
def test_write_endpoints(client, auth, people, db, role, visibility):
    c = subject(db, visibility)
    h = auth(people.by_role(role))
    patch = client.patch(f"/api/v1/commons/{c.id}", json={"description": f"changed by {role}"}, headers=h)
    if role == "anonymous":
        expected = 401
    elif role in EDIT[visibility]:
        expected = 200
    elif role in SEE[visibility]:
        expected = 403
    else:
        expected = 404
    assert patch.status_code == expected, patch.text
    db.refresh(c)
    assert (c.description == f"changed by {role}") is (expected == 200)


@pytest.mark.parametrize("role", ROLES)
def test_create_endpoint(client, auth, people, role):
    from commons_map.demo.load import offset

    body = {"kind": "water_point", "name": f"Nouveau point d'eau {role}",
            "geometry": {"type": "Point", "coordinates": list(offset(10, 10))}}
    r = client.post("/api/v1/commons", json=body, headers=auth(people.by_role(role)))
    expected = {"anonymous": 401, "coordinator": 201, "outsider": 201}.get(role, 403)
    assert r.status_code == expected, r.text
    if role == "outsider":
        # A coordinator of another cooperative adds to *their* cooperative, never to ours.
        assert r.json()["properties"]["cooperative_id"] == people.other_coop.id


def test_steward_adds_a_bed_to_their_garden_but_not_to_another(client, auth, people, db):
    from commons_map.demo.load import offset

    gardens = db.scalars(select(Commons).where(Commons.kind_code == "garden", Commons.external_id.like("demo:%"))).all()
    mine = next(g for g in gardens if people.other_steward.id in g.steward_ids)
    theirs = next(g for g in gardens if people.other_steward.id not in g.steward_ids)
    for garden, expected in ((mine, 201), (theirs, 403)):
        centroid = db.scalar(select(Commons.geom.ST_PointOnSurface().ST_AsGeoJSON()).where(Commons.id == garden.id))
        import json

        lon, lat = json.loads(centroid)["coordinates"]
        d = 0.00001
        ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        r = client.post("/api/v1/commons", headers=auth(people.other_steward),
                        json={"kind": "bed", "name": "Nouvelle planche", "parent_id": garden.id,
                              "geometry": {"type": "Polygon", "coordinates": [ring]}})
        assert r.status_code == expected, r.text
    del offset


def test_members_list_is_for_members_only(client, auth, people):
    assert client.get("/api/v1/members").status_code == 401
    names = [m["username"] for m in client.get("/api/v1/members", headers=auth(people.member)).json()]
    assert "camille" in names and "diois" not in names


def test_only_coordinators_add_members_and_one_coordinator_always_remains(client, auth, people, db):
    body = {"username": "nouvelle", "display_name": "Nouvelle Membre", "password": "assez-long-123"}
    assert client.post("/api/v1/members", json=body, headers=auth(people.member)).status_code == 403
    r = client.post("/api/v1/members", json=body, headers=auth(people.coordinator))
    assert r.status_code == 201, r.text
    again = client.post("/api/v1/members", json=body, headers=auth(people.coordinator))
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "username"
