"""Reservations over HTTP: 201 and 409 naming the interval, 422 naming the field, the state
machine, maintenance, availability, the spatio-temporal search, waiting list and calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlalchemy import func, select

from commons_map import messages
from commons_map.demo.load import offset
from commons_map.reservations.models import Reservation
from commons_map.reservations.schemas import ReservationOut
from tests.commons_map.test_reservations_support import day, new_place, new_tool, written


def iso(d: datetime) -> str:
    return d.isoformat()


def booking(resource_id: int, start: datetime, end: datetime, **kw) -> dict:
    return {"resource_id": resource_id, "starts_at": iso(start), "ends_at": iso(end), **kw}


def test_post_reservation_201_then_409_naming_the_interval(client, auth, people, db):
    tool = new_tool(db, people)
    r = client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12), purpose="Semis"),
                    headers=auth(people.member))
    assert r.status_code == 201, r.text
    body = ReservationOut.model_validate(r.json())
    assert body.state == "confirmed" and body.resource_id == tool.id and body.purpose == "Semis"
    assert body.starts_at == day(2) and body.overdue is False
    clash = client.post("/api/v1/reservations", json=booking(tool.id, day(2, 11), day(2, 13)),
                        headers=auth(people.other_steward))
    assert clash.status_code == 409
    problem = clash.json()
    assert clash.headers["content-type"].startswith("application/problem+json")
    assert problem["conflict"] == {"kind": "booking", "starts_at": iso(day(2)), "ends_at": iso(day(2, 12)),
                                   "blocked_until": iso(day(2, 12, 30))}
    assert problem["code"] == "reservations.slot_booked_buffer" and problem["errors"][0]["field"] == "resource_id"
    assert problem["params"]["starts_at"] == iso(day(2)) and problem["params"]["ends_at"] == iso(day(2, 12))
    assert "du 1 déc. 2026, 10:00 au 1 déc. 2026, 12:00" in problem["detail"]  # demo members read French
    en = client.post("/api/v1/reservations", json=booking(tool.id, day(2, 11), day(2, 13)),
                     headers={**auth(people.other_steward), "Accept-Language": "en"}).json()["detail"]
    assert en.startswith("This slot is already taken: booked from Dec 1, 2026, 10:00\u202fAM to")


def test_offsets_other_than_paris_are_understood(client, auth, people, db):
    tool = new_tool(db, people)
    start = day(2).astimezone(UTC)
    r = client.post("/api/v1/reservations",
                    json={"resource_id": tool.id, "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")},
                    headers=auth(people.member))
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["starts_at"]) == day(2)


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
def test_naive_datetime_is_a_422_naming_the_field(client, auth, people, db, field):
    tool = new_tool(db, people)
    body = booking(tool.id, day(2), day(2, 12))
    body[field] = body[field][:19]  # drop the offset
    before = written(db)
    r = client.post("/api/v1/reservations", json=body, headers=auth(people.member))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field
    assert r.json()["errors"][0]["code"] == "input.timezone_aware"
    assert "fuseau horaire" in r.json()["errors"][0]["message"]  # the member reads French
    assert written(db) == before


BAD = [
    # name, start, end, status, field, code
    ("end before start", lambda: (day(2, 12), day(2, 10)), 422, "ends_at", "reservations.ends_before_start"),
    ("zero length", lambda: (day(2, 12), day(2, 12)), 422, "ends_at", "reservations.zero_length"),
    ("too long", lambda: (day(2, 12), day(6, 12)), 422, "ends_at", "reservations.too_long"),
    ("too short", lambda: (day(2, 12), day(2, 12, 20)), 422, "ends_at", "reservations.too_short"),
    ("too far ahead", lambda: (day(40), day(40, 12)), 422, "starts_at", "reservations.too_far_ahead"),
    ("in the past", lambda: (day(-2), day(-2, 12)), 422, "starts_at", "reservations.starts_in_past"),
]


@pytest.mark.parametrize("name, times, status, field, fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_bookings_are_refused_and_write_nothing(client, auth, people, db, name, times, status, field, fragment):
    tool = new_tool(db, people)
    start, end = times()
    before = written(db)
    r = client.post("/api/v1/reservations", json=booking(tool.id, start, end), headers=auth(people.member))
    assert r.status_code == status, r.text
    assert r.json()["errors"][0]["field"] == field
    assert r.json()["code"] == fragment and r.json()["errors"][0]["code"] == fragment
    params = r.json().get("params", {})
    assert r.json()["detail"] == messages.render(
        fragment, params | {k: datetime.fromisoformat(v) for k, v in params.items() if k.endswith("_at")}, "fr")
    assert written(db) == before


def test_outside_opening_hours_over_http(client, auth, people, db):
    place = new_place(db, people)
    before = written(db)
    r = client.post("/api/v1/reservations", json=booking(place.id, day(1, 10, weekday=6), day(1, 12, weekday=6)),
                    headers=auth(people.member))
    assert r.status_code == 422 and "est fermé le 6 déc. 2026" in r.json()["detail"]
    assert r.json()["code"] == "reservations.closed_day" and r.json()["errors"][0]["field"] == "starts_at"
    assert written(db) == before


def test_cap_not_reservable_archived_over_http(client, auth, people, db):
    tool = new_tool(db, people)
    h = auth(people.member)
    for d in (2, 3):
        assert client.post("/api/v1/reservations", json=booking(tool.id, day(d), day(d, 12)),
                           headers=h).status_code == 201
    before = written(db)
    r = client.post("/api/v1/reservations", json=booking(tool.id, day(4), day(4, 12)), headers=h)
    assert r.status_code == 409 and r.json()["code"] == "reservations.cap_reached"
    assert r.json()["detail"] == "Vous avez déjà 2 réservation(s) en cours de Grelinette d'essai ; la limite est de 2."
    plain = new_tool(db, people, name="Pas réservable", reservable=False)
    r = client.post("/api/v1/reservations", json=booking(plain.id, day(4), day(4, 12)), headers=h)
    assert r.status_code == 422 and r.json()["code"] == "reservations.not_reservable"
    assert "n'est pas réservable" in r.json()["detail"]
    other = new_tool(db, people, name="Archivée")
    assert client.post(f"/api/v1/commons/{other.id}/archive", headers=auth(people.coordinator)).status_code == 200
    r = client.post("/api/v1/reservations", json=booking(other.id, day(4), day(4, 12)), headers=h)
    assert r.status_code == 422 and r.json()["code"] == "reservations.archived"
    assert written(db) == before


def test_anonymous_and_outsiders(client, auth, people, db):
    tool = new_tool(db, people)
    assert client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12))).status_code == 401
    r = client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12)), headers=auth(people.outsider))
    assert r.status_code == 404
    assert client.get(f"/api/v1/resources/{tool.id}/rules").status_code == 404, "members-only tool"
    assert client.get(f"/api/v1/resources/{tool.id}/rules", headers=auth(people.member)).status_code == 200


def test_rules_over_http(client, auth, people, db):
    tool = new_tool(db, people, reservable=False)
    body = {"booking_mode": "approval", "min_minutes": 60, "max_minutes": 240, "max_days_ahead": 14,
            "buffer_minutes": 15, "max_active_per_member": 1,
            "opening_hours": {"sat": [["09:00", "12:00"]]}, "contribution_minutes": 0}
    assert client.put(f"/api/v1/resources/{tool.id}/rules", json=body, headers=auth(people.member)).status_code == 403
    r = client.put(f"/api/v1/resources/{tool.id}/rules", json=body, headers=auth(people.steward))
    assert r.status_code == 200, r.text
    assert r.json()["opening_hours"] == {"sat": [["09:00", "12:00"]]} and r.json()["timezone"] == "Europe/Paris"
    bad = client.put(f"/api/v1/resources/{tool.id}/rules",
                     json={**body, "opening_hours": {"sat": [["12:00", "09:00"]]}},
                     headers=auth(people.steward))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "opening_hours"
    assert bad.json()["errors"][0]["code"] == "reservations.hours_window_order"
    assert bad.json()["errors"][0]["message"] == "sat : la fermeture à 09:00 doit venir après l'ouverture à 12:00."
    r = client.delete(f"/api/v1/resources/{tool.id}/rules", headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.get(f"/api/v1/resources/{tool.id}/rules", headers=auth(people.member)).status_code == 404


def test_the_whole_life_of_a_loan(client, auth, people, db):
    tool = new_tool(db, people, rules=None)
    start = datetime.now(UTC) + timedelta(minutes=5)
    h = auth(people.member)
    r = client.post("/api/v1/reservations", json=booking(tool.id, start, start + timedelta(hours=2)), headers=h)
    rid = r.json()["id"]
    mine = client.get("/api/v1/reservations", params={"upcoming": True}, headers=h).json()
    assert rid in [x["id"] for x in mine] and {x["member_id"] for x in mine} == {people.member.id}
    assert client.get(f"/api/v1/reservations/{rid}", headers=auth(people.other_steward)).status_code == 404
    # Check-in before check-out: refused, nothing changes.
    r = client.post(f"/api/v1/reservations/{rid}/check-in", json={"notes": "?"}, headers=h)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "state"
    r = client.post(f"/api/v1/reservations/{rid}/check-out", json={"notes": "Bon état"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "checked_out"
    assert r.json()["checked_out_by"] == people.member.id and r.json()["checkout_notes"] == "Bon état"
    r = client.post(f"/api/v1/reservations/{rid}/check-in", json={"notes": "Lame ébréchée", "damaged": True},
                    headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["state"] == "returned" and r.json()["damaged"] is True
    assert r.json()["returned_by"] == people.steward.id
    maint = client.get(f"/api/v1/resources/{tool.id}/maintenance", headers=h).json()
    assert len(maint) == 1 and maint[0]["ends_at"] is None
    r = client.post("/api/v1/reservations", json=booking(tool.id, day(3), day(3, 12)), headers=h)
    assert r.status_code == 409 and r.json()["conflict"]["kind"] == "maintenance"
    assert client.post(f"/api/v1/maintenance/{maint[0]['id']}/clear", headers=h).status_code == 403
    r = client.post(f"/api/v1/maintenance/{maint[0]['id']}/clear", json={"note": "Lame changée"},
                    headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["state"] == "cleared"
    assert client.post("/api/v1/reservations", json=booking(tool.id, day(3), day(3, 12)), headers=h).status_code == 201


def test_cancel_approve_refuse_no_show_over_http(client, auth, people, db):
    tool = new_tool(db, people)
    h = auth(people.member)
    rid = client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12)), headers=h).json()["id"]
    r = client.post(f"/api/v1/reservations/{rid}/cancel", json={"note": "Malade"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled" and r.json()["cancel_reason"] == "Malade"
    assert client.post(f"/api/v1/reservations/{rid}/cancel", headers=h).status_code == 409

    appr = new_tool(db, people, name="Broyeur d'essai")
    client.put(f"/api/v1/resources/{appr.id}/rules", json={"booking_mode": "approval", "min_minutes": 60},
               headers=auth(people.steward))
    rid = client.post("/api/v1/reservations", json=booking(appr.id, day(2), day(2, 12)), headers=h).json()["id"]
    pending = client.get("/api/v1/reservations/to-decide", headers=auth(people.steward)).json()
    assert rid in [p["id"] for p in pending]
    assert client.post(f"/api/v1/reservations/{rid}/approve", headers=h).status_code == 403
    r = client.post(f"/api/v1/reservations/{rid}/approve", json={"note": "OK"}, headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["state"] == "confirmed" and r.json()["decided_by"] == people.steward.id
    rid2 = client.post("/api/v1/reservations", json=booking(appr.id, day(3), day(3, 12)), headers=h).json()["id"]
    r = client.post(f"/api/v1/reservations/{rid2}/refuse", json={"note": "En révision"}, headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["state"] == "refused"
    # Too early for a no-show.
    r = client.post(f"/api/v1/reservations/{rid}/no-show", headers=auth(people.steward))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "starts_at"


def test_maintenance_over_http(client, auth, people, db):
    tool = new_tool(db, people)
    hs = auth(people.steward)
    body = {"starts_at": iso(day(2)), "ends_at": iso(day(3)), "reason": "Révision annuelle"}
    assert client.post(f"/api/v1/resources/{tool.id}/maintenance", json=body,
                       headers=auth(people.member)).status_code == 403
    r = client.post(f"/api/v1/resources/{tool.id}/maintenance", json=body, headers=hs)
    assert r.status_code == 201 and r.json()["kind"] == "maintenance"
    mid = r.json()["id"]
    bad = client.post(f"/api/v1/resources/{tool.id}/maintenance", json={"starts_at": day(4).isoformat()[:19]},
                      headers=hs)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "starts_at"
    r = client.patch(f"/api/v1/maintenance/{mid}", json={"ends_at": iso(day(2, 18))}, headers=hs)
    assert r.status_code == 200 and datetime.fromisoformat(r.json()["ends_at"]) == day(2, 18)
    r = client.post("/api/v1/reservations", json=booking(tool.id, day(2, 17), day(2, 19)), headers=auth(people.member))
    assert r.status_code == 409 and r.json()["code"] == "reservations.slot_maintenance"
    assert "en maintenance du" in r.json()["detail"]
    # a new reason alone keeps the end (it used to clear it: maintenance until cleared)
    r = client.patch(f"/api/v1/maintenance/{mid}", json={"reason": "Lame à affûter"}, headers=hs)
    assert r.status_code == 200 and r.json()["purpose"] == "Lame à affûter"
    assert datetime.fromisoformat(r.json()["ends_at"]) == day(2, 18)
    r = client.patch(f"/api/v1/maintenance/{mid}", json={"ends_at": None}, headers=hs)  # null: until cleared
    assert r.status_code == 200 and r.json()["ends_at"] is None


def test_availability_and_free_resources_over_http(client, auth, people, db):
    tool = new_tool(db, people, name="Tarière d'essai")
    h = auth(people.member)
    client.post("/api/v1/reservations", json=booking(tool.id, day(2, 10), day(2, 12)), headers=h)
    r = client.get(f"/api/v1/resources/{tool.id}/availability",
                   params={"from": iso(day(2, 0)), "until": iso(day(3, 0))}, headers=h)
    assert r.status_code == 200, r.text
    free = [(datetime.fromisoformat(s["starts_at"]), datetime.fromisoformat(s["ends_at"])) for s in r.json()["free"]]
    assert free == [(day(2, 0), day(2, 9, 30)), (day(2, 12, 30), day(3, 0))]
    r = client.get(f"/api/v1/resources/{tool.id}/availability", params={"from": iso(day(2))[:19]}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    lon, lat = offset(-200, 120)
    r = client.get("/api/v1/resources/free", params={"kind": "tool", "starts_at": iso(day(2, 11)),
                                                     "ends_at": iso(day(2, 13)), "near": f"{lon},{lat}",
                                                     "distance": 500}, headers=h)
    assert r.status_code == 200, r.text
    ids = [x["id"] for x in r.json()]
    assert tool.id not in ids and len(ids) >= 1
    assert all(x["distance_m"] <= 500 for x in r.json())
    r = client.get("/api/v1/resources/free", params={"kind": "tool", "starts_at": iso(day(2, 14)),
                                                     "ends_at": iso(day(2, 16)), "near": f"{lon},{lat}"}, headers=h)
    assert tool.id in [x["id"] for x in r.json()]
    r = client.get("/api/v1/resources/free", params={"starts_at": iso(day(2, 14)), "ends_at": iso(day(2, 16)),
                                                     "near": "abc"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "near"
    assert r.json()["code"] == "reservations.near_format" and r.json()["params"] == {"given": "abc"}


def test_free_resources_of_an_unknown_kind_is_a_422_naming_kind(client, auth, people, db):
    """An unknown kind is refused as the register refuses it, not answered with an empty list."""
    h = auth(people.member)
    window = {"starts_at": iso(day(2, 14)), "ends_at": iso(day(2, 16))}
    r = client.get("/api/v1/resources/free", params={**window, "kind": "nonexistent"}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "kind"
    register = client.post("/api/v1/commons", json={"kind": "nonexistent", "name": "x",
                                                    "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
                           headers=auth(people.coordinator))
    assert register.status_code == 422 and register.json()["errors"][0]["field"] == "kind"
    assert r.json()["code"] == register.json()["code"]
    assert client.get("/api/v1/resources/free", params={**window, "kind": "tool"}, headers=h).status_code == 200


def test_waiting_list_over_http(client, auth, people, db):
    tool = new_tool(db, people)
    rid = client.post("/api/v1/reservations", json=booking(tool.id, day(5), day(5, 12)),
                      headers=auth(people.member)).json()["id"]
    hw = auth(people.other_steward)
    r = client.post("/api/v1/waitlist", json=booking(tool.id, day(5), day(5, 12)), headers=hw)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    assert r.json()["state"] == "waiting" and r.json()["position"] == 1
    client.post(f"/api/v1/reservations/{rid}/cancel", headers=auth(people.member))
    mine = client.get("/api/v1/waitlist", headers=hw).json()
    assert mine[0]["state"] == "offered" and mine[0]["offer_expires_at"] is not None
    r = client.post(f"/api/v1/waitlist/{wid}/accept", headers=hw)
    assert r.status_code == 201 and r.json()["member_id"] == people.other_steward.id
    assert client.post(f"/api/v1/waitlist/{wid}/accept", headers=hw).status_code == 409


def test_calendars_over_http(client, auth, people, db):
    tool = new_tool(db, people, visibility="public")
    h = auth(people.member)
    client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12), purpose="Mon secret"), headers=h)
    r = client.get(f"/api/v1/resources/{tool.id}/calendar.ics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(r.content)
    assert len(list(cal.walk("VEVENT"))) == 1
    assert people.member.display_name not in r.text and "Mon secret" not in r.text
    hidden = new_tool(db, people, name="Outil des membres", visibility="members")
    assert client.get(f"/api/v1/resources/{hidden.id}/calendar.ics").status_code == 404
    assert client.post("/api/v1/calendars/me").status_code == 401
    r = client.post("/api/v1/calendars/me", headers=h)
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.endswith(f"/api/v1/calendars/{r.json()['token']}.ics")
    feed = client.get(url.replace("http://testserver", ""))
    assert feed.status_code == 200 and "Mon secret" in feed.text
    assert client.get("/api/v1/calendars/not-a-token.ics").status_code == 404


def test_openapi_documents_reservations(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/v1/reservations", "/api/v1/resources/{resource_id}/calendar.ics", "/api/v1/resources/free",
              "/api/v1/waitlist", "/api/v1/calendars/{token}.ics"):
        assert p in paths


def test_nothing_written_by_a_409(client, auth, people, db):
    tool = new_tool(db, people)
    client.post("/api/v1/reservations", json=booking(tool.id, day(2), day(2, 12)), headers=auth(people.member))
    n = db.scalar(select(func.count()).select_from(Reservation).where(Reservation.resource_id == tool.id))
    for _ in range(3):
        assert client.post("/api/v1/reservations", json=booking(tool.id, day(2, 11), day(2, 13)),
                           headers=auth(people.other_steward)).status_code == 409
    assert db.scalar(select(func.count()).select_from(Reservation).where(Reservation.resource_id == tool.id)) == n
