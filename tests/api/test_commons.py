"""The register over HTTP: create, read, update, archive, list with filters, history, bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from commons_map import messages
from commons_map.demo.load import offset
from commons_map.register.models import Commons, CommonsHistory


def square(east: float, north: float, size: float = 20.0) -> dict:
    """A GeoJSON square of ``size`` metres, east/north metres from Saillans' centre."""
    pts = [offset(east, north), offset(east + size, north), offset(east + size, north + size),
           offset(east, north + size), offset(east, north)]
    return {"type": "Polygon", "coordinates": [[list(p) for p in pts]]}


def point(east: float, north: float) -> dict:
    return {"type": "Point", "coordinates": list(offset(east, north))}


def count_commons(db) -> int:
    return db.scalar(select(func.count()).select_from(Commons))


def test_coordinator_creates_a_garden_and_reads_it_back(client, auth, people, db):
    body = {"kind": "garden", "name": "Jardin du Lavoir", "description": "Un nouveau jardin",
            "geometry": square(-900, -200, 30), "visibility": "public",
            "steward_ids": [people.member.id], "tenure": "municipal_agreement", "tenure_end": "2031-01-01"}
    r = client.post("/api/v1/commons", json=body, headers=auth(people.coordinator))
    assert r.status_code == 201, r.text
    feat = r.json()
    assert feat["type"] == "Feature"
    assert feat["properties"]["name"] == "Jardin du Lavoir"
    # 30 m x 30 m, measured on the ellipsoid.
    assert feat["properties"]["area_m2"] == pytest.approx(900, rel=0.01)
    assert feat["properties"]["stewards"] == [{"id": people.member.id, "name": people.member.display_name}]
    got = client.get(f"/api/v1/commons/{feat['id']}").json()
    assert got["geometry"]["type"] == "Polygon"
    assert "stewards" not in got["properties"], "anonymous visitors do not see who stewards what"
    history = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == feat["id"])).all()
    assert [h.action for h in history] == ["created"]
    assert history[0].member_id == people.coordinator.id


def test_update_leaves_a_history_row_with_old_and_new_values(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    r = client.patch(f"/api/v1/commons/{garden.id}", json={"state": "fallow", "rules_of_use": "Repos hivernal"},
                     headers=auth(people.coordinator))
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["state"] == "fallow"
    hist = client.get(f"/api/v1/commons/{garden.id}/history", headers=auth(people.member)).json()
    last = hist[-1]
    assert last["action"] == "updated"
    assert last["member"] == people.coordinator.display_name
    assert last["changes"]["state"] == ["active", "fallow"]
    assert last["changes"]["rules_of_use"][1] == "Repos hivernal"


def test_geometry_change_is_recorded_and_area_recomputed(client, auth, people, db):
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-5")).one()
    steward = people.coordinator
    r = client.patch(f"/api/v1/commons/{land.id}", json={"geometry": square(3600, -300, 50)}, headers=auth(steward))
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["area_m2"] == pytest.approx(2500, rel=0.01)
    changes = client.get(f"/api/v1/commons/{land.id}/history", headers=auth(steward)).json()[-1]["changes"]
    assert changes["geometry"][0]["type"] == "Polygon"


def test_archive_hides_from_lists_but_keeps_history(client, auth, people, db):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-1")).one()
    r = client.post(f"/api/v1/commons/{tool.id}/archive", json={"reason": "cassée"}, headers=auth(people.coordinator))
    assert r.status_code == 200
    assert r.json()["properties"]["archived_at"] is not None
    listed = client.get("/api/v1/commons", params={"kind": "tool", "limit": 1000}, headers=auth(people.member)).json()
    assert tool.id not in [f["id"] for f in listed["features"]]
    with_archived = client.get("/api/v1/commons", params={"kind": "tool", "include_archived": True, "limit": 1000},
                               headers=auth(people.member)).json()
    assert tool.id in [f["id"] for f in with_archived["features"]]
    assert client.get(f"/api/v1/commons/{tool.id}").status_code == 404
    assert db.get(Commons, tool.id) is not None, "archiving never deletes"
    # An archived commons no longer changes.
    r = client.patch(f"/api/v1/commons/{tool.id}", json={"name": "x"}, headers=auth(people.coordinator))
    assert r.status_code == 409


def test_archiving_a_garden_with_beds_is_refused(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-1")).one()
    url = f"/api/v1/commons/{garden.id}/archive"
    r = client.post(url, headers=auth(people.coordinator) | {"Accept-Language": "en"})
    assert r.status_code == 409
    assert r.json()["code"] == "register.has_children" and "sit inside" in r.json()["detail"]
    r = client.post(url, headers=auth(people.coordinator) | {"Accept-Language": "fr"})
    assert r.status_code == 409 and "se trouvent dans celui-ci" in r.json()["detail"]


def test_list_filters_kind_bbox_near_text_and_paging(client, auth, people):
    h = auth(people.member)
    beds = client.get("/api/v1/commons", params={"kind": "bed", "limit": 1000}, headers=h).json()
    assert beds["numberMatched"] == 26 and all(f["properties"]["kind"] == "bed" for f in beds["features"])
    # A bbox around the Jardin partagé des Écoles only.
    w, s = offset(-300, 100)
    e, n = offset(-200, 200)
    in_box = client.get("/api/v1/commons", params={"bbox": f"{w},{s},{e},{n}", "limit": 1000}, headers=h).json()
    names = {f["properties"]["name"] for f in in_box["features"]}
    assert "Jardin partagé des Écoles" in names
    assert "Prairie du Moulin" not in names
    # Within 100 m of the Maison commune: the kitchen, the hall, the guest room, not the far lands.
    lon, lat = offset(30, 50)
    near = client.get("/api/v1/commons", params={"near": f"{lon},{lat}", "distance": 100, "limit": 1000},
                      headers=h).json()
    near_names = {f["properties"]["name"] for f in near["features"]}
    assert {"Maison commune", "Cuisine partagée de la Maison commune"} <= near_names
    assert "Terrasses du Rocher" not in near_names
    # Text search, French stemming and plain substring alike.
    found = client.get("/api/v1/commons", params={"q": "grelinette"}, headers=h).json()
    assert found["numberMatched"] == 2
    found = client.get("/api/v1/commons", params={"q": "jardins partagés", "kind": "garden"}).json()
    assert [f["properties"]["name"] for f in found["features"]] == ["Jardin partagé des Écoles"]
    # Paging: two pages of 5 do not overlap and numberMatched stays.
    p1 = client.get("/api/v1/commons", params={"limit": 5, "offset": 0}, headers=h).json()
    p2 = client.get("/api/v1/commons", params={"limit": 5, "offset": 5}, headers=h).json()
    assert p1["numberReturned"] == 5 and p1["numberMatched"] == p2["numberMatched"] > 10
    assert not {f["id"] for f in p1["features"]} & {f["id"] for f in p2["features"]}


def test_tool_kept_at_the_shed_is_shown_at_the_shed(client, auth, people, db):
    shed = db.scalars(select(Commons).where(Commons.external_id == "demo:shed")).one()
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-2")).one()
    shed_feat = client.get(f"/api/v1/commons/{shed.id}").json()
    tool_feat = client.get(f"/api/v1/commons/{tool.id}").json()
    assert tool_feat["properties"]["kept_at_id"] == shed.id
    assert tool_feat["geometry"] == shed_feat["geometry"]


def test_approximate_place_is_snapped_for_outsiders_only(client, auth, people, db):
    spring = db.scalars(select(Commons).where(Commons.external_id == "demo:water-3")).one()
    exact = client.get(f"/api/v1/commons/{spring.id}", headers=auth(people.member)).json()["geometry"]
    public = client.get(f"/api/v1/commons/{spring.id}").json()["geometry"]
    assert exact != public
    # Snapped to a 0.005 degree grid: a whole multiple of it.
    for v in public["coordinates"]:
        assert abs(v / 0.005 - round(v / 0.005)) < 1e-6
    assert abs(public["coordinates"][0] - exact["coordinates"][0]) <= 0.0025 + 1e-9


def test_token_flow_and_401(client, people):
    r = client.post("/api/v1/auth/token", data={"username": "camille", "password": "demo-commons"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer"
    me = client.get("/api/v1/members/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["username"] == "camille" and me["roles"] == ["coordinator"]
    bad = client.post("/api/v1/auth/token", data={"username": "camille", "password": "wrong-password"})
    assert bad.status_code == 401
    assert client.get("/api/v1/members/me").status_code == 401
    assert client.get("/api/v1/members/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_revoked_tokens_stop_working(client, people, auth):
    h = auth(people.member)
    assert client.post("/api/v1/auth/revoke", headers=h).status_code == 204
    assert client.get("/api/v1/members/me", headers=h).status_code == 401


def test_health_reports_versions(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"].startswith(("15", "16", "17", "18"))
    assert body["postgis"].startswith("3.")


def test_openapi_documents_the_register(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/commons" in spec["paths"]
    assert "/api/v1/auth/token" in spec["paths"]


# --- bad input: a 422 naming the field and the problem, and nothing written ------------------

BAD = [
    ("self-intersecting ring",
     {"kind": "garden", "name": "x", "geometry": {"type": "Polygon", "coordinates": [[
         list(offset(0, 0)), list(offset(20, 20)), list(offset(20, 0)), list(offset(0, 20)), list(offset(0, 0))]]}},
     "geometry", "register.geometry_invalid"),
    ("unclosed ring",
     {"kind": "garden", "name": "x", "geometry": {"type": "Polygon", "coordinates": [[
         list(offset(0, 0)), list(offset(20, 0)), list(offset(20, 20)), list(offset(0, 20))]]}},
     "geometry", "register.ring_not_closed"),
    ("point for a garden", {"kind": "garden", "name": "x", "geometry": point(0, 0)},
     "geometry", "register.needs_area"),
    ("polygon for a tool", {"kind": "tool", "name": "x", "geometry": square(0, 0)},
     "geometry", "register.needs_point"),
    ("latitude out of range",
     {"kind": "tool", "name": "x", "geometry": {"type": "Point", "coordinates": [5.19, 144.7]}},
     "geometry", "register.latitude_range"),
    ("swapped coordinates",
     {"kind": "tool", "name": "x", "geometry": {"type": "Point", "coordinates": [44.6975, 5.195]}},
     "geometry", "register.outside_territory_swapped"),
    ("far outside the territory",
     {"kind": "tool", "name": "x", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
     "geometry", "register.outside_territory"),
    ("unknown kind", {"kind": "spaceship", "name": "x", "geometry": point(0, 0)},
     "kind", "register.unknown_kind"),
    ("bed without parent", {"kind": "bed", "name": "x", "geometry": square(0, 0)},
     "parent_id", "register.parent_required"),
    ("no geometry", {"kind": "land", "name": "x"}, "geometry", "register.geometry_required"),
    ("unknown visibility", {"kind": "tool", "name": "x", "geometry": point(0, 0), "visibility": "secret"},
     "visibility", "input.literal_error"),
    ("empty name", {"kind": "tool", "name": "", "geometry": point(0, 0)}, "name", "input.string_too_short"),
    ("unknown field", {"kind": "tool", "name": "x", "geometry": point(0, 0), "colour": "red"},
     "colour", "input.extra_forbidden"),
    ("steward from nowhere", {"kind": "tool", "name": "x", "geometry": point(0, 0), "steward_ids": [999999]},
     "steward_ids", "register.no_steward"),
]


@pytest.mark.parametrize(("case", "body", "field", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_nothing_written(client, auth, people, db, case, body, field, fragment):
    before = count_commons(db)
    history_before = db.scalar(select(func.count()).select_from(CommonsHistory))
    r = client.post("/api/v1/commons", json=body, headers=auth(people.coordinator))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == field
    if messages.is_code(fragment):  # said by its code (and rendered from the catalogue)
        assert problem["errors"][0]["code"] == fragment
        assert problem["errors"][0]["message"] == messages.render(fragment, problem["errors"][0].get("params"), "fr")
    else:
        assert fragment in problem["detail"] or fragment in problem["errors"][0]["message"]
    assert count_commons(db) == before
    assert db.scalar(select(func.count()).select_from(CommonsHistory)) == history_before


def test_bed_whose_parent_is_not_a_garden(client, auth, people, db):
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    before = count_commons(db)
    r = client.post("/api/v1/commons", json={"kind": "bed", "name": "x", "geometry": square(-2600, 900, 5),
                                             "parent_id": land.id}, headers=auth(people.coordinator))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent_id"
    assert r.json()["code"] == "register.parent_wrong_kind" and r.json()["params"]["commons_id"] == land.id
    assert f"le commun {land.id} est un land" in r.json()["detail"]
    assert count_commons(db) == before


def test_bed_outside_its_garden(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    r = client.post("/api/v1/commons", json={"kind": "bed", "name": "x", "geometry": square(2000, 2000, 5),
                                             "parent_id": garden.id}, headers=auth(people.coordinator))
    assert r.status_code == 422
    assert r.json()["code"] == "register.outside_parent"
    assert "doit se trouver dans son parent" in r.json()["detail"]


def test_duplicate_external_id_is_a_conflict(client, auth, people, db):
    body = {"kind": "tool", "name": "x", "geometry": point(0, 0), "external_id": "demo:tool-3"}
    r = client.post("/api/v1/commons", json=body, headers=auth(people.coordinator))
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "external_id"


@pytest.mark.parametrize(("params", "field"), [
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"), ({"bbox": "10,10,5,5"}, "bbox"),
    ({"near": "5.19"}, "near"), ({"near": "5.19,44.7", "distance": -3}, "distance"),
    ({"distance": 10}, "distance"), ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"offset": -1}, "offset"),
])
def test_bad_list_parameters_name_the_parameter(client, params, field):
    r = client.get("/api/v1/commons", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


# --- found by fuzzing (tests/api/test_fuzz.py) ------------------------------------------------------


@pytest.mark.parametrize(("url", "name"), [
    ("/api/v1/commons/333678714061277429760", "commons_id"),
    ("/api/v1/commons/333678714061277429760/history", "commons_id"),
    ("/api/v1/resources/333678714061277429760/rules", "resource_id"),
    ("/api/v1/soil/parcels/333678714061277429760", "commons_id"),
    ("/api/v1/soil/practices?cooperative_id=-34304082931", "cooperative_id"),
    ("/api/v1/commons/2147483648", "commons_id"),
    ("/api/v1/commons/0", "commons_id"),
])
def test_an_id_out_of_the_database_range_is_a_422_naming_it(client, url, name):
    """Ids are bounded where they come in (``commons_map.db.DbId``): a 422 naming the parameter."""
    r = client.get(url)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"].startswith(f"{name}: ")
    assert r.json()["errors"][0]["code"] in ("input.less_than_equal", "input.greater_than_equal", "input.int_parsing")


def test_an_id_out_of_range_in_a_body_is_a_422_naming_it(client, auth, people):
    r = client.post("/api/v1/work-logs", headers=auth(people.member),
                    json={"commons_id": 2**31, "work_date": "2026-11-01", "minutes": 60, "activity": "x"})
    assert r.status_code == 422, r.text
    assert "commons_id" in r.text and "2147483647" in r.text


def test_the_database_range_error_is_still_a_422_not_a_500(db):
    """The safety net behind the bounds: a number the database cannot hold maps to 422."""
    import asyncio

    from sqlalchemy import text as sql
    from sqlalchemy.exc import DBAPIError
    from starlette.requests import Request

    from api.errors import _database

    with pytest.raises(DBAPIError) as info, db.begin_nested():
        db.execute(sql("SELECT CAST(:n AS int4)"), {"n": 2**40})
    request = Request({"type": "http", "method": "GET", "path": "/api/v1/x", "headers": [], "query_string": b""})
    resp = asyncio.run(_database(request, info.value))
    assert resp.status_code == 422 and b"out of range" in resp.body


def test_small_boxes_cannot_find_an_approximate_place(client, auth, people, db):
    """Outsiders filtering with a tiny bbox around the exact spot find nothing; members do."""
    spring = db.scalars(select(Commons).where(Commons.external_id == "demo:water-3")).one()
    exact = client.get(f"/api/v1/commons/{spring.id}", headers=auth(people.member)).json()["geometry"]
    lon, lat = exact["coordinates"]
    box = f"{lon - 0.0001},{lat - 0.0001},{lon + 0.0001},{lat + 0.0001}"
    as_member = client.get("/api/v1/commons", params={"bbox": box}, headers=auth(people.member)).json()
    assert spring.id in [f["id"] for f in as_member["features"]]
    for h in ({}, auth(people.outsider)):
        found = client.get("/api/v1/commons", params={"bbox": box}, headers=h).json()
        assert spring.id not in [f["id"] for f in found["features"]]
        near = client.get("/api/v1/commons", params={"near": f"{lon},{lat}", "distance": 20}, headers=h).json()
        assert spring.id not in [f["id"] for f in near["features"]]


def test_a_tool_kept_at_an_approximate_place_is_snapped_for_outsiders(client, auth, people, db):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-2")).one()
    shed = db.get(Commons, tool.kept_at_id)
    shed.location_precision = "approximate"
    db.flush()
    exact = client.get(f"/api/v1/commons/{tool.id}", headers=auth(people.member)).json()["geometry"]
    public = client.get(f"/api/v1/commons/{tool.id}").json()["geometry"]
    assert public != exact
    for v in public["coordinates"]:
        assert abs(v / 0.005 - round(v / 0.005)) < 1e-6
