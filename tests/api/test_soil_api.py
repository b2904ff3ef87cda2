"""Soil and food over HTTP: recording, bad input as 4xx naming the rule, access, reports, charts."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from commons_map.soil.models import Harvest, Measurement, Sample
from tests.commons_map.soil_helpers import OUTSIDE, inside, parcel

LAST_YEAR = (date.today() - timedelta(days=300)).isoformat()


def written(db) -> tuple[int, int, int]:
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Sample, Measurement, Harvest))


def lab_report(db, key: str = "land-5", **kw) -> dict:
    body = {
        "sampled_on": LAST_YEAR, "point": inside(db, parcel(db, key)), "lab": "Celesta-lab",
        "measurements": [
            {"indicator": "soc", "value": 1.4, "unit": "%", "method": "dry_combustion",
             "depth_top_cm": 0, "depth_bottom_cm": 10},
            {"indicator": "soc", "value": 0.9, "unit": "%", "method": "dry_combustion",
             "depth_top_cm": 10, "depth_bottom_cm": 30},
            {"indicator": "bulk_density", "value": 1.31, "unit": "g/cm3", "depth_top_cm": 0, "depth_bottom_cm": 10},
            {"indicator": "bulk_density", "value": 1.44, "unit": "g/cm3", "depth_top_cm": 10, "depth_bottom_cm": 30},
        ],
    }
    body.update(kw)
    return body


def test_member_records_a_lab_report_as_one_sample(client, auth, people, db):
    r = client.post("/api/v1/soil/samples", json=lab_report(db), headers=auth(people.member))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["commons_id"] == parcel(db, "land-5").id and body["parcel_from_point"] is True
    assert len(body["measurements"]) == 4 and body["point"]["type"] == "Point"
    got = client.get(f"/api/v1/soil/samples/{body['id']}").json()  # public parcel: anyone reads it
    assert got["measurements"][0]["value"] == 1.4


def test_out_of_range_is_a_422_naming_indicator_value_range_and_unit_and_writes_nothing(client, auth, people, db):
    body = lab_report(db)
    body["measurements"][0]["value"] = 43
    before = written(db)
    r = client.post("/api/v1/soil/samples", json=body, headers=auth(people.member))
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"] == [{"field": "measurements.0.value", "code": "soil.out_of_range", "message":
                                  "soc : 43 % est hors de la plage plausible 0,1-15 % : vérifiez qu'il n'y a pas de"
                                  " faute de frappe, ou confirmez la valeur (confirm_out_of_range).",
                                  "params": {"indicator": "soc", "value": 43.0, "unit": "%", "low": 0.1, "high": 15.0}}]
    assert "soc : 43 %" in problem["detail"]
    en = client.post("/api/v1/soil/samples", json=body, headers={**auth(people.member), "Accept-Language": "en"})
    assert en.json()["errors"][0]["message"] == ("soc: 43 % is outside the plausible range 0.1-15 %; check for a typo,"
                                                 " or confirm it with confirm_out_of_range.")
    assert written(db) == before
    body["measurements"][0]["confirm_out_of_range"] = True
    r = client.post("/api/v1/soil/samples", json=body, headers=auth(people.member))
    assert r.status_code == 201, r.text
    assert r.json()["measurements"][0]["confirmed_out_of_range"] is True


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"unit": "ppm"}, "measurements.0.unit", "soil.unit_unfit"),
        ({"depth_top_cm": 30, "depth_bottom_cm": 10}, "measurements.0.depth_bottom_cm", "soil.depth_inverted"),
        ({"value": "beaucoup"}, "measurements.0.value", "input.float_parsing"),  # pydantic's path, same form
    ],
)
def test_bad_measurements_over_http(client, auth, people, db, change, field, text):
    body = lab_report(db)
    body["measurements"][0].update(change)
    before = written(db)
    r = client.post("/api/v1/soil/samples", json=body, headers=auth(people.member))
    assert r.status_code == 422
    assert any(e["field"] == field and e["code"] == text for e in r.json()["errors"]), r.json()
    assert written(db) == before


def test_future_date_and_point_outside_every_parcel(client, auth, people, db):
    before = written(db)
    future = (date.today() + timedelta(days=10)).isoformat()
    r = client.post("/api/v1/soil/samples", json=lab_report(db, sampled_on=future), headers=auth(people.member))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sampled_on"
    assert r.json()["errors"][0]["code"] == "soil.date_in_future" and r.json()["errors"][0]["params"]["value"] == future
    assert "est dans le futur" in r.json()["errors"][0]["message"]
    r = client.post("/api/v1/soil/samples", json=lab_report(db, point=OUTSIDE), headers=auth(people.member))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "commons_id"
    assert written(db) == before


def test_recording_needs_a_member_of_the_cooperative(client, auth, people, db):
    assert client.post("/api/v1/soil/samples", json=lab_report(db)).status_code == 401
    r = client.post("/api/v1/soil/samples", json=lab_report(db, commons_id=parcel(db, "land-5").id),
                    headers=auth(people.outsider))
    assert r.status_code == 403


def test_harvests_bad_input_and_confirmation(client, auth, people, db):
    bed = parcel(db, "bed-0-0")
    base = {"commons_id": bed.id, "crop": "tomate", "harvested_on": LAST_YEAR}
    before = written(db)
    r = client.post("/api/v1/soil/harvests", json=base | {"weight_kg": -4}, headers=auth(people.member))
    assert r.status_code == 422
    assert r.json()["errors"][0] == {"field": "weight_kg", "code": "soil.weight_positive",
                                     "params": {"crop": "tomate", "weight_kg": -4.0}, "message":
                                     "tomate : -4 kg n'est pas une récolte ; le poids doit être de plus de 0 kg."}
    huge = round(bed.area_m2 * 50)
    r = client.post("/api/v1/soil/harvests", json=base | {"weight_kg": huge}, headers=auth(people.member))
    assert r.status_code == 422 and "kg/m2" in r.json()["detail"]
    assert written(db) == before
    r = client.post("/api/v1/soil/harvests", json=base | {"weight_kg": huge, "confirm_implausible": True,
                                                          "destination": "households_in_need"},
                    headers=auth(people.member))
    assert r.status_code == 201, r.text
    assert r.json()["confirmed_implausible"] is True
    assert r.json()["destinations"] == {"households_in_need": huge}


def test_harvest_resend_returns_the_first_one(client, auth, people, db):
    body = {"commons_id": parcel(db, "bed-0-0").id, "crop": "courgette", "harvested_on": LAST_YEAR,
            "weight_kg": 8.2, "source_ref": "uuid:resend-1", "destinations": {"members": 6.2, "shared_meals": 2}}
    a = client.post("/api/v1/soil/harvests", json=body, headers=auth(people.member)).json()
    b = client.post("/api/v1/soil/harvests", json=body, headers=auth(people.member)).json()
    assert a["id"] == b["id"]
    assert db.scalar(select(func.count()).select_from(Harvest).where(Harvest.source_ref == "uuid:resend-1")) == 1


def test_members_only_bed_harvests_are_hidden_from_the_public(client, auth, people, db):
    bed = parcel(db, "bed-0-1")
    assert bed.visibility == "members"
    assert client.get(f"/api/v1/soil/harvests?commons_id={bed.id}").status_code == 404
    r = client.get(f"/api/v1/soil/harvests?commons_id={bed.id}", headers=auth(people.member))
    assert r.status_code == 200 and len(r.json()) > 0
    public_ids = {h["commons_id"] for h in client.get(
        f"/api/v1/soil/harvests?cooperative_id={people.coop.id}&limit=10000").json()}
    assert bed.id not in public_ids


def test_practice_over_http(client, auth, people, db):
    body = {"commons_id": parcel(db, "land-4").id, "practice": "compost", "started_on": LAST_YEAR,
            "quantity": 5, "unit": "t"}
    r = client.post("/api/v1/soil/practices", json=body, headers=auth(people.steward))
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/soil/practices", json=body | {"unit": "litres"}, headers=auth(people.steward))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit"


def test_catalogue_statuses_and_parcels(client, auth, people, db):
    inds = {i["code"]: i for i in client.get("/api/v1/soil/indicators").json()}
    assert inds["soc"]["range_max"] == 15 and "g/kg" in inds["soc"]["units"]
    labels = client.get("/api/v1/soil/statuses").json()
    assert labels["regenerating"]["fr"] == "En régénération"
    rows = client.get(f"/api/v1/soil/parcels?cooperative_id={people.coop.id}").json()
    statuses = {r["status"] for r in rows}
    assert {"regenerating", "stable", "degrading", "baseline_only"} <= statuses
    member_rows = client.get("/api/v1/soil/parcels", headers=auth(people.member)).json()
    assert len(member_rows) > len(rows), "members also see the members-only beds"
    one = client.get(f"/api/v1/soil/parcels/{parcel(db, 'land-0').id}").json()
    assert one["basis"] == "esm" and one["co2e_t_per_year"] is not None
    r = client.post("/api/v1/soil/indicators", headers=auth(people.member), json={
        "code": "glomalin", "label_fr": "Glomaline", "label_en": "Glomalin", "units": {"mg/g": 1},
        "range_min": 0, "range_max": 20})
    assert r.status_code == 403


def test_report_json_csv_timeline_and_charts(client, auth, people, db):
    rep = client.get("/api/v1/soil/report?year=2025", headers=auth(people.coordinator))
    assert rep.status_code == 200
    body = rep.json()
    assert body["year"] == 2025 and body["food"]["total_kg"] > 0 and body["parcels_by_status"]["degrading"] == 1
    r = client.get("/api/v1/soil/report?year=2025&format=csv", headers=auth(people.coordinator))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"summary", "parcel", "harvest", "yield"} <= {row["section"] for row in rows}
    assert client.get("/api/v1/soil/report?year=2025").status_code == 422  # anonymous must name the cooperative
    assert client.get(f"/api/v1/soil/report?year=2025&cooperative_id={people.coop.id}").status_code == 200
    tl = client.get(f"/api/v1/soil/parcels/{parcel(db, 'land-0').id}/timeline").json()
    assert tl["events"] and tl["events"][0]["date"] <= tl["events"][-1]["date"]
    tcsv = client.get(f"/api/v1/soil/parcels/{parcel(db, 'land-0').id}/timeline?format=csv")
    assert tcsv.text.startswith("date,type,")
    for name in ("soc", "yields"):
        png = client.get(f"/api/v1/soil/charts/{name}.png", headers=auth(people.member))
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content[:4] == b"\x89PNG"


def test_harvests_of_year_zero_are_refused_not_a_500(client):
    """Found by fuzzing: ?year=0 made date(0, 1, 1) raise inside the service."""
    r = client.get("/api/v1/soil/harvests?year=0")
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "year"


@pytest.mark.parametrize("role", ["anonymous", "outsider", "member"])
def test_who_sampled_and_harvested_is_for_the_cooperatives_members(client, auth, people, role):
    """Public parcels' samples and harvests are public; the names of the people behind them are not."""
    h = auth(people.by_role(role))
    samples = client.get("/api/v1/soil/samples", headers=h).json()
    harvests = client.get("/api/v1/soil/harvests", headers=h).json()
    assert samples and harvests, "the demo has public samples and harvests"
    named = [s for s in samples if s["sampled_by_id"] or s["sampler_name"]]
    harvesters = [x for x in harvests if x["harvested_by_id"]]
    if role == "member":
        assert named and harvesters
    else:
        assert named == [] and harvesters == []
        one = client.get(f"/api/v1/soil/samples/{samples[0]['id']}", headers=h).json()
        assert one["sampled_by_id"] is None and one["sampler_name"] == ""


@pytest.mark.parametrize(
    ("index", "indicator", "value", "unit", "code"),
    [
        (2, "bulk_density", -1.2, "g/cm3", "soil.physically_impossible"),
        (2, "bulk_density", 3.1, "g/cm3", "soil.physically_impossible"),
        (0, "soc", -0.5, "%", "soil.physically_impossible"),
        (0, "coarse_fragments", 150, "% vol", "soil.physically_impossible"),
        (0, "ph", 15, "pH", "soil.physically_impossible"),
        (0, "cec", -3, "cmol+/kg", "soil.physically_impossible_low"),
    ],
)
def test_confirming_never_lets_an_impossible_value_through(client, auth, people, db, index, indicator, value,
                                                           unit, code):
    """Issue 18 item 1: a confirmed bulk density of -1.2 g/cm3 was stored, and then every soil
    figure of the cooperative answered 500."""
    from commons_map.soil.models import Indicator

    units = db.get(Indicator, indicator).units
    unit = unit if unit in units else next(iter(units))
    body = lab_report(db)
    body["measurements"][index] = {"indicator": indicator, "value": value, "unit": unit,
                                   "confirm_out_of_range": True, "depth_top_cm": 0, "depth_bottom_cm": 10}
    before = written(db)
    r = client.post("/api/v1/soil/samples", json=body, headers=auth(people.member))
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["field"] == f"measurements.{index}.value" and err["code"] == code
    assert "physiquement impossible" in err["message"]
    assert written(db) == before


def test_one_parcels_impossible_data_leaves_the_others_figures_standing(client, auth, people, db):
    """Values stored before they were refused at the door: that parcel shows no soil figures, the
    others keep theirs, and nothing answers 500."""
    from sqlalchemy import text

    r = client.post("/api/v1/soil/samples", json=lab_report(db), headers=auth(people.member))
    assert r.status_code == 201
    broken = r.json()["id"]
    db.execute(text("UPDATE soil_measurements SET value = -1.2 WHERE sample_id = :s AND indicator_code = "
                    "'bulk_density'"), {"s": broken})
    parcels = client.get("/api/v1/soil/parcels", headers=auth(people.member))
    assert parcels.status_code == 200, parcels.text
    figures = [p for p in parcels.json() if p.get("soc_stock_t_ha") is not None]
    assert len(figures) >= 5
    land = parcel(db, "land-5")
    assert client.get(f"/api/v1/soil/parcels/{land.id}", headers=auth(people.member)).status_code == 200
    assert client.get("/api/v1/soil/report", headers=auth(people.member)).status_code == 200
    assert client.get("/ogc/collections/restored_land/items?limit=100").status_code == 200
