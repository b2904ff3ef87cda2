"""A public parcel's permalink page: server-rendered, French by default, its story by year."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select, text

from commons_map.register.models import Commons
from tests.conftest import axe_violations


def _land(db, ext: str = "demo:land-0") -> Commons:
    return db.scalars(select(Commons).where(Commons.external_id == ext)).one()


def test_a_public_parcel_has_its_page_in_french_then_english(client, db, people):
    from commons_map.soil.schemas import HarvestIn
    from commons_map.soil.service import record_harvest

    land = _land(db)
    record_harvest(db, actor=people.coordinator, data=HarvestIn(
        commons_id=land.id, crop="pois chiche", harvested_on=date.today(), weight_kg=12.5))
    r = client.get(f"/maps/parcels/{land.id}")
    assert r.status_code == 200 and r.headers["content-language"] == "fr"
    page = r.text
    assert '<html lang="fr">' in page and f"<title>{land.name} : terre restaurée</title>" in page
    assert re.search(r'<meta name="description" content="[^"]*carbone du sol', page)
    assert "État du sol" in page and "Retour à la carte" in page and "/maps/public?lang=fr" in page
    assert "<svg" in page and "Récoltes (kg), par année" in page
    assert f"<td>{date.today().year}</td>" in page  # the year of the harvest, in the chart's table
    en = client.get(f"/maps/parcels/{land.id}?lang=en")
    assert en.headers["content-language"] == "en" and "Soil status" in en.text and "Back to the map" in en.text
    assert client.get(f"/maps/parcels/{land.id}", headers={"Accept-Language": "en"}).headers[
        "content-language"] == "en"


def test_no_page_for_what_is_not_public(client, db):
    land = _land(db, "demo:land-5")
    db.execute(text("UPDATE commons SET visibility = 'members' WHERE id = :i"), {"i": land.id})
    r = client.get(f"/maps/parcels/{land.id}")
    assert r.status_code == 404 and land.name not in r.text
    assert r.json()["detail"] == f"No public parcel {land.id}."  # parcelpage.not_public, in English
    housing = db.scalar(text("SELECT id FROM commons WHERE kind_code = 'housing' LIMIT 1"))
    assert client.get(f"/maps/parcels/{housing}").status_code == 404
    garden = db.scalar(text(
        "SELECT c.id FROM commons c JOIN commons_kinds k ON k.code = c.kind_code"
        " WHERE k.category = 'garden' AND c.visibility = 'public' LIMIT 1"))
    assert client.get(f"/maps/parcels/{garden}").status_code == 404  # not restored land
    gone = client.get("/maps/parcels/abc", headers={"Accept-Language": "en"})
    assert gone.status_code == 404 and gone.json()["detail"] == "No public parcel abc."
    assert client.get("/maps/parcels/999999999").status_code == 404
    bad = client.get(f"/maps/parcels/{_land(db).id}?lang=de")
    assert bad.status_code == 400 and "lang" in bad.text
    assert client.get(f"/maps/parcels/{_land(db).id}?zoom=3").status_code == 400


def test_the_page_is_accessible_at_360_px(browser, live_server, db):
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(f"{live_server.url}/maps/parcels/{_land(db).id}")
    assert page.locator("h1").inner_text()
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.close()
