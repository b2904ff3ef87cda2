"""Crops are a catalogue (issue 18, item 3): one crop whatever its spelling, in the report too;
unknown crops refused naming the field and the cooperative's codes; coordinators add their own;
the migration maps the free-text names harvests had before."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from commons_map.db import drop_database, ensure_database
from commons_map.errors import Conflict, PermissionDenied, ValidationFailed
from commons_map.migrate import upgrade
from commons_map.soil import crops, reports, service
from commons_map.soil.models import Crop, Harvest
from commons_map.soil.schemas import HarvestIn
from tests.commons_map.soil_helpers import parcel
from tests.conftest import _test_url

LAST_YEAR = date.today() - timedelta(days=300)


@pytest.mark.parametrize(("a", "b"), [
    ("Tomates", "tomate"), ("tomatoes", "Tomato"), ("Pommes-de-terre", "pomme de terre"), ("CHOUX", "chou"),
    ("Poireaux", "poireau"), ("Épinards", "epinard"), ("haricots  verts", "Haricot vert"),
])
def test_spellings_of_one_crop_fold_to_one_name(a, b):
    assert crops.fold(a) == crops.fold(b)


def test_different_crops_stay_apart():
    assert crops.fold("pomme") != crops.fold("pomme de terre")
    assert crops.code_for("Kiwanos cornus") == "kiwano_cornu" and crops.code_for("2 pois") == "crop_2_poi"


def _harvest(db, who, crop: str, kg: float = 2.0, on: date = LAST_YEAR, bed: str = "bed-0-0") -> Harvest:
    return service.record_harvest(db, actor=who, data=HarvestIn(
        commons_id=parcel(db, bed).id, crop=crop, harvested_on=on, weight_kg=kg))


def test_tomates_and_tomate_are_one_crop_in_the_annual_report(db, people):
    on = date(date.today().year - 1, 8, 3)
    before = reports.annual_report(db, actor=people.coordinator, cooperative_id=people.coop.id, year=on.year)
    a = _harvest(db, people.member, "Tomates", 2.0, on)
    b = _harvest(db, people.member, "tomate", 3.0, on)
    c = _harvest(db, people.member, "tomato", 1.5, on)
    assert a.crop == b.crop == c.crop == "tomato" and a.crop_id == b.crop_id == c.crop_id
    after = reports.annual_report(db, actor=people.coordinator, cooperative_id=people.coop.id, year=on.year)
    food_before, food = before["food"], after["food"]
    assert "tomates" not in food["kg_by_crop"] and "tomate" not in food["kg_by_crop"]
    assert food["kg_by_crop"]["tomato"] == pytest.approx(food_before["kg_by_crop"].get("tomato", 0) + 6.5)
    assert food["crop_labels"]["tomato"] == {"fr": "Tomate", "en": "Tomato"}
    out = service.harvest_out(a, reader=people.member)
    assert out["crop"] == "tomato" and out["crop_label"] == {"fr": "Tomate", "en": "Tomato"}


def test_an_unknown_crop_is_refused_naming_the_field_and_the_codes_and_writes_nothing(db, people):
    before = db.scalar(select(func.count()).select_from(Harvest))
    with pytest.raises(ValidationFailed) as err:
        _harvest(db, people.member, "Kiwano")
    [problem] = err.value.problems
    assert problem.field == "crop" and problem.code == "soil.unknown_crop"
    assert "tomato" in problem.params["known"] and problem.params["crop"] == "Kiwano"
    assert "Kiwano" in err.value.summary("en") and "Culture inconnue" in err.value.summary("fr")
    assert db.scalar(select(func.count()).select_from(Harvest)) == before


def test_coordinators_extend_their_cooperatives_catalogue_and_only_theirs(db, people):
    with pytest.raises(PermissionDenied):
        crops.add_crop(db, actor=people.member, code="kiwano", label_fr="Kiwano", label_en="Horned melon")
    kiwano = crops.add_crop(db, actor=people.coordinator, code="kiwano", label_fr="Kiwano",
                            label_en="Horned melon", aliases=["Concombre cornu"])
    assert kiwano.cooperative_id == people.coop.id and kiwano.aliases == ["concombre cornu"]
    assert _harvest(db, people.member, "Concombres cornus").crop_id == kiwano.id
    assert _harvest(db, people.member, "horned melons").crop_id == kiwano.id
    with pytest.raises(Conflict) as same:
        crops.add_crop(db, actor=people.coordinator, code="kiwano", label_fr="K", label_en="K")
    assert same.value.problems[0].field == "code"
    with pytest.raises(Conflict):  # a shipped crop's code
        crops.add_crop(db, actor=people.coordinator, code="tomato", label_fr="T", label_en="T")
    with pytest.raises(Conflict) as named:  # another name of a crop the catalogue has
        crops.add_crop(db, actor=people.coordinator, code="tomate2", label_fr="Tomates", label_en="Tomatoes")
    assert named.value.problems[0].field == "label_fr"
    with pytest.raises(ValidationFailed):
        crops.add_crop(db, actor=people.coordinator, code="Bad Code", label_fr="x", label_en="y")
    # The other cooperative does not offer it; it adds its own under the same code.
    assert "kiwano" not in {c.code for c in crops.list_crops(db, cooperative_id=people.other_coop.id)}
    theirs = crops.add_crop(db, actor=people.outsider, code="kiwano", label_fr="Kiwano", label_en="Kiwano")
    assert theirs.id != kiwano.id
    # Retired: no longer offered, harvests keep it.
    crops.set_crop(db, actor=people.coordinator, code="kiwano", active=False)
    assert "kiwano" not in {c.code for c in crops.list_crops(db, cooperative_id=people.coop.id)}
    with pytest.raises(ValidationFailed):
        _harvest(db, people.member, "kiwano")


def test_the_migration_maps_free_text_names_onto_the_catalogue():
    """A database at the revision before, with free-text crops, upgraded: one crop per meaning."""
    url = _test_url("cm_crops")
    ensure_database(url)
    try:
        upgrade(url, "0018_network_policies")
        eng = create_engine(url)
        with eng.begin() as c:
            land = "ST_GeomFromText('MULTIPOLYGON(((5 44, 6 44, 6 45, 5 45, 5 44)))', 4326)"
            coop = c.scalar(text(f"INSERT INTO cooperatives (slug, name, territory) VALUES ('c1', 'C1', {land})"
                                 " RETURNING id"))
            other = c.scalar(text(f"INSERT INTO cooperatives (slug, name, territory) VALUES ('c2', 'C2', {land})"
                                  " RETURNING id"))
            member = {}
            for co in (coop, other):
                member[co] = c.scalar(text(
                    "INSERT INTO members (cooperative_id, username, display_name, password_hash)"
                    " VALUES (:c, :u, 'M', 'x') RETURNING id"), {"c": co, "u": f"m{co}"})
            bed = {co: c.scalar(text(
                "INSERT INTO commons (cooperative_id, name, kind_code, geom, visibility)"
                " VALUES (:c, 'Bed', 'bed', ST_GeomFromText('POINT(5 44)', 4326), 'members') RETURNING id"),
                {"c": co}) for co in (coop, other)}
            names = {coop: ["Tomates", "tomate", "TOMATOES", "Pommes de terre", "Kiwanos", "kiwano", "laitue"],
                     other: ["Kiwano", "salade"]}
            for co, crops_of in names.items():
                for name in crops_of:
                    c.execute(text(
                        "INSERT INTO harvests (cooperative_id, commons_id, crop, harvested_on, weight_kg,"
                        " recorded_by_id)"
                        " VALUES (:c, :b, :crop, '2025-08-01', 1, :m)"), {"c": co, "b": bed[co], "crop": name,
                                                                          "m": member[co]})
        upgrade(url)
        with eng.begin() as c:
            got = c.execute(text(
                "SELECT h.cooperative_id, h.crop, c.code, c.cooperative_id FROM harvests h"
                " JOIN crops c ON c.id = h.crop_id ORDER BY h.id")).all()
            labels = dict(c.execute(text("SELECT code, label_fr FROM crops WHERE cooperative_id = :c"),
                                    {"c": coop}).all())
        eng.dispose()
    finally:
        drop_database(url)
    mine = [(crop, owner) for co, crop, code, owner in got if co == coop]
    assert [crop for crop, _ in mine] == ["tomato", "tomato", "tomato", "potato", "kiwano", "kiwano", "lettuce"]
    assert {owner for crop, owner in mine if crop != "kiwano"} == {None}  # shipped crops
    assert {owner for crop, owner in mine if crop == "kiwano"} == {coop}  # a crop of its own, made once
    assert labels == {"kiwano": "Kiwanos"}
    theirs = [(crop, owner) for co, crop, code, owner in got if co == other]
    assert theirs == [("kiwano", other), ("lettuce", None)]
    assert all(crop == code for _, crop, code, _ in got)


def test_harvests_crop_is_the_crops_code_whatever_is_written(db, people):
    h = _harvest(db, people.member, "courgette")
    db.execute(text("UPDATE harvests SET crop = 'anything' WHERE id = :i"), {"i": h.id})
    assert db.scalar(text("SELECT crop FROM harvests WHERE id = :i"), {"i": h.id}) == "courgette"
    assert db.scalar(select(Crop.code).where(Crop.id == h.crop_id)) == "courgette"


def test_the_api_offers_the_catalogue_and_refuses_an_unknown_crop_with_the_codes(client, auth, people, db):
    listed = client.get("/api/v1/soil/crops", headers=auth(people.member)).json()
    assert {"code": "tomato", "label_fr": "Tomate", "label_en": "Tomato", "aliases": [], "active": True,
            "shared": True} in listed
    body = {"commons_id": parcel(db, "bed-0-0").id, "crop": "Kiwano", "harvested_on": LAST_YEAR.isoformat(),
            "weight_kg": 1.2}
    before = db.scalar(select(func.count()).select_from(Harvest))
    r = client.post("/api/v1/soil/harvests", json=body, headers={**auth(people.member), "Accept-Language": "en"})
    assert r.status_code == 422
    [problem] = r.json()["errors"]
    assert problem["field"] == "crop" and problem["code"] == "soil.unknown_crop"
    assert set(problem["params"]["known"]) == {c["code"] for c in listed}
    assert db.scalar(select(func.count()).select_from(Harvest)) == before
    new = {"code": "kiwano", "label_fr": "Kiwano", "label_en": "Horned melon"}
    assert client.post("/api/v1/soil/crops", json=new, headers=auth(people.member)).status_code == 403
    assert client.post("/api/v1/soil/crops", json=new).status_code == 401
    r = client.post("/api/v1/soil/crops", json=new, headers=auth(people.coordinator))
    assert r.status_code == 201 and r.json()["shared"] is False
    assert client.post("/api/v1/soil/crops", json=new, headers=auth(people.coordinator)).status_code == 409
    bad = client.post("/api/v1/soil/crops", json=new | {"code": "Bad code"}, headers=auth(people.coordinator))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "code"
    r = client.post("/api/v1/soil/harvests", json=body, headers=auth(people.member))
    assert r.status_code == 201 and r.json()["crop"] == "kiwano"
    assert r.json()["crop_label"] == {"fr": "Kiwano", "en": "Horned melon"}
    assert "kiwano" not in {c["code"] for c in client.get("/api/v1/soil/crops", headers=auth(people.outsider)).json()}
    r = client.patch("/api/v1/soil/crops/tomato", json={"active": False}, headers=auth(people.coordinator))
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "code"


def test_the_command_line_lists_and_adds_crops(engine, database_url):
    from tests.commons_map.test_soil_cli import run

    r = run(database_url, "crops")
    assert r.returncode == 0, r.stderr
    assert "tomato" in r.stdout and "Tomate / Tomato" in r.stdout
    assert "jerusalem_artichoke" in r.stdout and "(own)" in r.stdout  # the demo's own crop
    r = run(database_url, "crops", "--add", "cli_oca", "--fr", "Oca du Pérou", "--en", "Oca")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^cli_oca +Oca du Pérou / Oca  \(own\)$", r.stdout, re.M)
    r = run(database_url, "crops", "--add", "cli_oca", "--fr", "Oca", "--en", "Oca")
    assert r.returncode == 1 and "cli_oca" in r.stderr
    r = run(database_url, "crops", "--add", "Bad", "--fr", "x", "--en", "y")
    assert r.returncode == 1 and "Bad" in r.stderr
