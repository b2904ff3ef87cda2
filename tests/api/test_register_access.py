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


HISTORY_SEES_PRIVATE_ERA = {"steward", "coordinator"}  # who saw the commons while it was private
HISTORY_SEES_EXACT_PLACE = {"member", "steward", "other_steward", "coordinator"}  # members of its cooperative


@pytest.mark.parametrize("role", ROLES)
def test_history_is_filtered_like_the_commons(client, auth, people, db, role):
    """A place kept private under one name, then opened to the public under another, approximate: its
    history shows each reader only what they could see of it then; outsiders never the exact place."""
    coordinator = auth(people.coordinator)
    body = {"kind": "water_point", "name": "Refuge secret de Lucile", "rules_of_use": "Clé sous le pot de thym",
            "visibility": "private", "steward_ids": [people.steward.id],
            "geometry": {"type": "Point", "coordinates": [5.19471, 44.69893]}}
    created = client.post("/api/v1/commons", json=body, headers=coordinator)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    r = client.patch(f"/api/v1/commons/{cid}", headers=coordinator, json={
        "name": "Abri des Chapelains", "rules_of_use": "Ouvert à tous", "visibility": "public",
        "location_precision": "approximate", "geometry": {"type": "Point", "coordinates": [5.19502, 44.69911]}})
    assert r.status_code == 200, r.text
    hist = client.get(f"/api/v1/commons/{cid}/history", headers=auth(people.by_role(role)))
    assert hist.status_code == 200
    text = hist.text
    assert "Abri des Chapelains" in text and "Ouvert à tous" in text  # public now: everyone reads it
    private_era = ("Refuge secret de Lucile", "Clé sous le pot de thym", "5.19471")
    for secret in private_era:
        assert (secret in text) is (role in HISTORY_SEES_PRIVATE_ERA), f"{role} and {secret!r}"
    assert ("5.19502" in text) is (role in HISTORY_SEES_EXACT_PLACE), f"{role} and the exact place"
    created_row, updated_row = hist.json()
    if role not in HISTORY_SEES_PRIVATE_ERA:
        assert {"name", "rules_of_use"} <= set(created_row["withheld"])
        assert updated_row["changes"]["name"] == [None, "Abri des Chapelains"]
    if role not in HISTORY_SEES_EXACT_PLACE:
        assert "geometry" in updated_row["withheld"] and "geometry" not in updated_row["changes"]
