"""The public map with partner layers in a real browser (headless Chromium): our server serves its
copy of the partner's layers; they draw, with the partner's name, link and licence in the legend and
the attribution; a partner that is down is said unavailable; no console error, no axe violation in
what the partners add."""

from __future__ import annotations

from sqlalchemy import select, text

from commons_map.db import make_engine, session_scope
from commons_map.partners import service
from commons_map.partners.models import Partner
from commons_map.people.models import Cooperative
from tests.api.test_partners_live import start
from tests.commons_map.partners_helpers import TEST_LIMITS
from tests.conftest import ARTIFACTS, axe_violations


def test_partner_layers_draw_on_the_served_map(browser, fresh_database, partner_stub):
    url = fresh_database()
    engine = make_engine(url=url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cooperatives (slug, name, territory) VALUES ('b', 'Coop',"
                          " ST_Multi(ST_MakeEnvelope(5.0, 44.6, 5.5, 44.9, 4326)))"))
    with session_scope(engine) as s:
        coop = s.scalars(select(Cooperative)).one()
        pid = service.add_partner(s, actor=None, cooperative=coop, url=partner_stub.url("/good/"),
                                  limits=TEST_LIMITS).id
        s.add(Partner(cooperative_id=coop.id, url="http://down.invalid/ogc", name="Ferme des Chaux",
                      licence="CC0-1.0", link="http://down.invalid/ogc", status="unavailable",
                      error_code="partners.timeout"))
    engine.dispose()
    server = start(url, COMMONS_PARTNERS_REFRESH_SECONDS="0")
    hits = sum(partner_stub.hits.values())
    try:
        for locale, lang, down in (("fr-FR", "fr", "(indisponible)"), ("en-GB", "en", "(unavailable)")):
            page = browser.new_page(viewport={"width": 1280, "height": 860}, locale=locale)
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))  # noqa: B023
            page.on("pageerror", lambda e: problems.append(str(e)))  # noqa: B023
            page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))  # noqa: B023
            page.goto(server.url + "/maps/public?basemap=none", wait_until="networkidle")
            page.wait_for_function(
                f"window.commonsMap.loaded['partner:{pid}/vergers'] !== undefined"
                f" && window.commonsMap.loaded['partner:{pid}/haies'] !== undefined", timeout=30_000)
            loaded = page.evaluate("window.commonsMap.loaded")
            assert loaded[f"partner:{pid}/vergers"] == 4 and loaded[f"partner:{pid}/haies"] == 1
            assert page.locator("html").get_attribute("lang") == lang
            legend = page.locator("#commons-legend").inner_text()
            assert "Vergers du Crestois" in legend and "Ferme des Chaux" in legend
            assert {"fr": "Licence : CC-BY-4.0, ODbL-1.0", "en": "Licence: CC-BY-4.0, ODbL-1.0"}[lang] in legend
            assert {"fr": "Licence : CC0-1.0", "en": "Licence: CC0-1.0"}[lang] in legend  # the one never read
            assert down in legend
            link = page.locator("#commons-legend a", has_text="Vergers du Crestois")
            assert link.get_attribute("href") == partner_stub.url("/good/")
            attribution = page.locator(".leaflet-control-attribution").inner_text()
            assert "Vergers du Crestois" in attribution and "ODbL-1.0" in attribution
            labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
            assert any("Vergers du Crestois — Haies plantées" in x for x in labels)
            # a partner feature's popup: its name, the source and the licence, as text
            page.evaluate("""() => { var m = window.commonsMap.map, done = false;
                m.eachLayer(function (l) { if (!done && l.feature && l.feature.properties.note) {
                    l.openPopup(); done = true; } }); }""")
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=10_000)
            assert "Verger 6" in popup.inner_text() and "CC-BY-4.0" in popup.inner_text()
            assert page.locator(".leaflet-popup-content img").count() == 0  # the partner's HTML stays text
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"public-map-partners-{lang}.png"))
            # folium's own page forbids zooming (meta viewport, not ours: the public map's own issue);
            # nothing else may be found, so nothing the partners add
            assert [v for v in axe_violations(page) if not v.startswith("meta-viewport:")] == []
            page.close()
            assert problems == []
        assert sum(partner_stub.hits.values()) == hits, "the visitor's map made the server call the partner"
    finally:
        server.stop()
