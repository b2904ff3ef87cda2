"""Correcting and withdrawing a soil sample over HTTP (issue 18 item 1): who may, history kept,
figures follow, bad input refused naming the field with nothing changed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from commons_map.soil.models import Measurement, Sample, SampleHistory
from tests.commons_map.soil_helpers import inside, parcel

RECENT = (date.today() - timedelta(days=3)).isoformat()


def sample_body(db, soc: float, **kw) -> dict:
    body = {
        "sampled_on": RECENT, "point": inside(db, parcel(db, "land-5")), "lab": "Celesta-lab",
        "measurements": [
            {"indicator": "soc", "value": soc, "unit": "%", "method": "dry_combustion",
             "depth_top_cm": 0, "depth_bottom_cm": 30},
            {"indicator": "bulk_density", "value": 1.3, "unit": "g/cm3", "depth_top_cm": 0, "depth_bottom_cm": 30},
        ],
    }
    return body | kw


def stock(client, auth, people, db) -> float | None:
    r = client.get(f"/api/v1/soil/parcels/{parcel(db, 'land-5').id}", headers=auth(people.member))
    assert r.status_code == 200, r.text
    return r.json()["soc_stock_t_ha"]


def state(db, sample_id: int) -> tuple:
    """What a refused request must leave as it was: the sample's values and its history."""
    s = db.get(Sample, sample_id)
    db.refresh(s)
    values = sorted(db.execute(select(Measurement.indicator_code, Measurement.value)
                               .where(Measurement.sample_id == sample_id)).all())
    hist = db.scalar(select(func.count()).select_from(SampleHistory).where(SampleHistory.sample_id == sample_id))
    return s.sampled_on, s.withdrawn_at, values, hist


@pytest.fixture
def recorded(client, auth, people, db) -> tuple[int, float | None]:
    """A sample recorded by the plain member (the recorder), and the parcel's stock before it."""
    before = stock(client, auth, people, db)
    r = client.post("/api/v1/soil/samples", json=sample_body(db, 8.0), headers=auth(people.member))
    assert r.status_code == 201, r.text
    return r.json()["id"], before


def test_recorder_corrects_keeping_the_former_values_in_history(client, auth, people, db, recorded):
    sid, _ = recorded
    wrong = stock(client, auth, people, db)
    assert wrong == pytest.approx(8.0 * 1.3 * 30, rel=1e-3)  # the newest date: 312 t C/ha from the typo
    r = client.put(f"/api/v1/soil/samples/{sid}", headers=auth(people.member),
                   json=sample_body(db, 0.8, reason="typo: 8 for 0.8"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == sid and r.json()["measurements"][0]["value"] == 0.8
    assert stock(client, auth, people, db) == pytest.approx(0.8 * 1.3 * 30, rel=1e-3)
    hist = client.get(f"/api/v1/soil/samples/{sid}/history", headers=auth(people.steward))
    assert hist.status_code == 200, hist.text
    [h] = hist.json()
    assert h["action"] == "corrected" and h["member_id"] == people.member.id and h["reason"] == "typo: 8 for 0.8"
    assert h["before"]["measurements"][0]["value"] == 8.0 and h["after"]["measurements"][0]["value"] == 0.8
    assert h["before"]["point"]["type"] == "Point" and h["before"]["sampled_on"] == RECENT


def test_coordinator_withdraws_it_leaves_the_figures_and_stays_in_history(client, auth, people, db, recorded):
    sid, before = recorded
    assert stock(client, auth, people, db) != before
    r = client.post(f"/api/v1/soil/samples/{sid}/withdraw", headers=auth(people.coordinator),
                    json={"reason": "sampled in the compost heap"})
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn_at"] is not None and r.json()["withdrawn_reason"] == "sampled in the compost heap"
    assert stock(client, auth, people, db) == before
    listed = [s["id"] for s in client.get("/api/v1/soil/samples", headers=auth(people.member)).json()]
    assert sid not in listed
    listed = [s["id"] for s in client.get("/api/v1/soil/samples?include_withdrawn=true",
                                          headers=auth(people.member)).json()]
    assert sid in listed
    one = client.get(f"/api/v1/soil/samples/{sid}", headers=auth(people.member)).json()
    assert one["withdrawn_at"] is not None and one["measurements"][0]["value"] == 8.0
    timeline = client.get(f"/api/v1/soil/parcels/{parcel(db, 'land-5').id}/timeline").json()
    assert sid not in [e.get("id") for e in timeline["events"] if e["type"] == "observation"]
    [h] = client.get(f"/api/v1/soil/samples/{sid}/history", headers=auth(people.member)).json()
    assert h["action"] == "withdrawn" and h["member_id"] == people.coordinator.id and h["after"] is None
    assert h["before"]["measurements"][0]["value"] == 8.0
    # A withdrawn sample is neither corrected nor withdrawn again: 409, in the reader's language.
    kept = state(db, sid)
    again = client.post(f"/api/v1/soil/samples/{sid}/withdraw", headers=auth(people.member), json={"reason": "x"})
    assert again.status_code == 409 and again.json()["code"] == "soil.sample_withdrawn"
    assert "a été retiré" in again.json()["detail"]
    fix = client.put(f"/api/v1/soil/samples/{sid}", headers={**auth(people.member), "Accept-Language": "en"},
                     json=sample_body(db, 0.8))
    assert fix.status_code == 409 and "was withdrawn" in fix.json()["detail"]
    assert state(db, sid) == kept


@pytest.mark.parametrize(("role", "status"), [("steward", 403), ("other_steward", 403), ("outsider", 404),
                                              ("anonymous", 401)])
def test_only_the_recorder_or_a_coordinator(client, auth, people, db, recorded, role, status):
    sid, _ = recorded
    who = people.by_role(role)
    headers = auth(who) if who is not None else {}
    kept = state(db, sid)
    r = client.put(f"/api/v1/soil/samples/{sid}", headers=headers, json=sample_body(db, 0.8))
    assert r.status_code == status, r.text
    r = client.post(f"/api/v1/soil/samples/{sid}/withdraw", headers=headers, json={"reason": "mine now"})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "soil.only_recorder"
    assert state(db, sid) == kept
    hist = client.get(f"/api/v1/soil/samples/{sid}/history", headers=headers)
    assert hist.status_code == {"anonymous": 401, "outsider": 403}.get(role, 200), hist.text


def test_coordinator_corrects_too(client, auth, people, db, recorded):
    sid, _ = recorded
    r = client.put(f"/api/v1/soil/samples/{sid}", headers=auth(people.coordinator), json=sample_body(db, 0.9))
    assert r.status_code == 200, r.text
    [h] = client.get(f"/api/v1/soil/samples/{sid}/history", headers=auth(people.member)).json()
    assert h["member_id"] == people.coordinator.id and h["reason"] == ""


@pytest.mark.parametrize(
    ("path", "change", "field", "code"),
    [
        ("put", {"measurements": [{"indicator": "soc", "value": 43, "unit": "%", "depth_top_cm": 0,
                                   "depth_bottom_cm": 30}]}, "measurements.0.value", "soil.out_of_range"),
        ("put", {"measurements": [{"indicator": "bulk_density", "value": -1.2, "unit": "g/cm3",
                                   "depth_top_cm": 0, "depth_bottom_cm": 30, "confirm_out_of_range": True}]},
         "measurements.0.value", "soil.physically_impossible"),
        ("put", {"sampled_on": (date.today() + timedelta(days=9)).isoformat()}, "sampled_on", "soil.date_in_future"),
        ("put", {"measurements": []}, "measurements", None),
        ("put", {"source_ref": "elsewhere"}, "source_ref", None),
        ("withdraw", {"reason": ""}, "reason", None),
        ("withdraw", {"reason": "   "}, "reason", "soil.withdraw_reason"),
        ("withdraw", {}, "reason", None),
        ("withdraw", {"reason": "a\x00b"}, "reason", None),
        ("put", {"reason": "a\x00b"}, "reason", None),
        ("put", {"point": {"type": "LineString", "coordinates": [[5.1, 44.7], [5.2, 44.8]]}}, "point",
         "soil.point_not_point"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(client, auth, people, db, recorded, path, change, field, code):
    sid, _ = recorded
    kept = state(db, sid)
    if path == "put":
        r = client.put(f"/api/v1/soil/samples/{sid}", headers=auth(people.member), json=sample_body(db, 0.8) | change)
    else:
        r = client.post(f"/api/v1/soil/samples/{sid}/withdraw", headers=auth(people.member), json=change)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors[0]["field"] == field, errors
    if code:
        assert errors[0]["code"] == code
    assert state(db, sid) == kept


def test_unknown_sample_is_404(client, auth, people):
    r = client.put("/api/v1/soil/samples/999999999", headers=auth(people.coordinator),
                   json={"sampled_on": RECENT, "commons_id": 1, "measurements": [
                       {"indicator": "ph", "value": 6.5, "unit": "-"}]})
    assert r.status_code == 404
    r = client.post("/api/v1/soil/samples/999999999/withdraw", headers=auth(people.coordinator), json={"reason": "x"})
    assert r.status_code == 404
