"""The public map in a real browser (Debian's headless Chromium): served, and as a static export."""

from __future__ import annotations

from sqlalchemy import select, text

from commons_map.register.models import Commons
from tests.conftest import ARTIFACTS, axe_violations


def open_map(browser, url: str, shot: str, locale: str = "fr-FR"):
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale=locale)
    problems: list[str] = []
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.goto(url, wait_until="networkidle")
    page.wait_for_function(
        "window.commonsMap && window.commonsMap.loaded.tiles && window.commonsMap.loaded.garden !== undefined"
        " && window.commonsMap.loaded.points !== undefined",
        timeout=30_000,
    )
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot))
    return page, problems


def expected(db):
    def count(cat: str) -> int:
        return db.scalar(
            text(
                "SELECT count(*) FROM commons c JOIN commons_kinds k ON k.code = c.kind_code"
                " LEFT JOIN commons p ON p.id = c.kept_at_id AND p.visibility = 'public' AND p.archived_at IS NULL"
                " WHERE c.visibility = 'public' AND c.archived_at IS NULL AND k.category = ANY(:cats)"
                " AND COALESCE(c.geom, p.geom) IS NOT NULL"
            ),
            {"cats": cat.split(",")},
        )

    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    return count("garden"), count("tool,place"), count("land"), land


def check_drawn(page, db) -> None:
    gardens, points, lands, land = expected(db)
    state = page.evaluate(
        "({loaded: window.commonsMap.loaded, parcels: window.commonsMap.parcels,"
        " merged: window.commonsMap.merged, errors: window.commonsMap.errors})"
    )
    assert state["errors"] == []
    assert state["loaded"]["garden"] == gardens > 0
    assert state["loaded"]["points"] == points > 0
    drawn = {int(k): v for k, v in state["parcels"].items()}
    # zoom 13 and below: merged blocks (service.MERGE_MAX_ZOOM), above: one feature per parcel
    assert len(drawn) <= lands and (len(drawn) > 0 or state["merged"] > 0)
    # Leaflet drew: tile canvases for the parcels, a canvas for the gardens, clusters for points.
    assert page.locator(".leaflet-tile-container canvas, canvas.leaflet-tile").count() > 0
    assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() >= gardens
    assert (
        page.locator(
            ".marker-cluster, .leaflet-marker-pane path, .leaflet-overlay-pane circle"
        ).count()
        > 0
        or page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() > gardens
    )
    # our three layers, and one per layer of the partners listed (the demo's: two)
    partner_layers = db.scalar(text("SELECT count(*) FROM partner_layers"))
    assert page.locator(".leaflet-control-layers-overlays label").count() == 3 + partner_layers
    assert page.locator(".leaflet-control-scale").count() == 1
    # A click on a parcel opens its popup with its figures.
    lon, lat = db.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            " FROM commons WHERE id = :i"
        ),
        {"i": land.id},
    ).one()
    page.evaluate("ll => window.commonsMap.map.setView(ll, 16, {animate: false})", [lat, lon])
    page.wait_for_function("window.commonsMap.loaded.tiles", timeout=20_000)
    page.wait_for_timeout(800)
    assert str(land.id) in page.evaluate("Object.keys(window.commonsMap.parcels)")
    x, y = page.evaluate(
        "ll => { var p = window.commonsMap.map.latLngToContainerPoint(ll);"
        " var r = window.commonsMap.map.getContainer().getBoundingClientRect();"
        " return [p.x + r.left, p.y + r.top]; }",
        [lat, lon],
    )
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    # Served, the popup fills in with the parcel's figures from its OGC item; static, at once.
    page.wait_for_function("window.commonsMap.popup", timeout=10_000)
    page.wait_for_timeout(400)  # let the popup finish fading in before screenshots
    return popup.inner_text()


def test_served_map_draws_its_layers_without_errors(browser, live_server, db):
    page, problems = open_map(
        browser, live_server.url + "/maps/public?basemap=none", "public-map-fr.png"
    )
    text_ = check_drawn(page, db)
    assert "Terrasses du Rocher" in text_ and "Surface" in text_ and "État du sol" in text_
    assert "Récoltes" in text_
    page.screenshot(path=str(ARTIFACTS / "public-map-fr-popup.png"))
    page.close()
    assert problems == []


def test_served_map_in_english(browser, live_server, db):
    page, problems = open_map(
        browser, live_server.url + "/maps/public?basemap=none", "public-map-en.png", locale="en-GB"
    )
    assert page.locator("html").get_attribute("lang") == "en"
    text_ = check_drawn(page, db)
    assert "Area" in text_ and "Soil status" in text_
    page.close()
    assert problems == []


def test_static_export_works_without_the_app(browser, db, settings, tmp_path, static_server):
    from maps.site import build_static_site

    build_static_site(
        db, tmp_path, licence=settings.data_licence, min_zoom=12, max_zoom=16, basemap=None
    )
    root = static_server(tmp_path)
    page, problems = open_map(browser, root + "/index.html", "static-map-fr.png")
    text_ = check_drawn(page, db)
    assert "Terrasses du Rocher" in text_ and "Surface" in text_
    page.screenshot(path=str(ARTIFACTS / "static-map-fr-popup.png"))
    page.close()
    assert problems == []


def test_pmtiles_page_works_from_a_plain_static_server(browser, db, settings, tmp_path, static_server):
    """The archive page reads one PMTiles file; Python's http.server ignores ranges: read whole."""
    from pmtiles.reader import MmapSource, Reader

    from maps.site import build_static_site

    counts = build_static_site(
        db, tmp_path, licence=settings.data_licence, min_zoom=16, max_zoom=16, basemap=None,
        archive_max_zoom=16,
    )
    assert counts["archive_tiles"] > 17  # at least one tile per zoom 0-16
    with (tmp_path / "public.pmtiles").open("rb") as f:
        reader = Reader(MmapSource(f))
        assert reader.header()["min_zoom"] == 0 and reader.header()["max_zoom"] == 16
    root = static_server(tmp_path)
    page, problems = open_map(browser, root + "/pmtiles.html", "pmtiles-map-fr.png")
    assert page.evaluate("window.commonsMap.archive !== undefined")
    text_ = check_drawn(page, db)
    assert "Terrasses du Rocher" in text_ and "Surface" in text_
    page.close()
    assert problems == []


PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf000000030101003a35b8f20000000049454e44ae426082"
)


def _refuse(asked: list[str]):
    """A route handler that refuses the request (as when offline) and notes its URL."""

    def handle(route) -> None:  # noqa: ANN001
        asked.append(route.request.url)
        route.abort()

    return handle


def test_without_its_base_map_the_map_says_so_and_still_draws(browser, live_server, db):
    """OpenStreetMap's tiles refused (offline, blocked): a plain background, a notice in the page's
    language, the restored land drawn all the same; at 360 px, accessible (axe-core)."""
    import re

    osm = re.compile(r"^https://tile\.openstreetmap\.org/")
    for lang, locale, words in (("fr", "fr-FR", "fond de carte OpenStreetMap n'a pas pu être chargé"),
                                ("en", "en-GB", "OpenStreetMap base map could not be loaded")):
        page = browser.new_page(viewport={"width": 360, "height": 740}, locale=locale)
        asked: list[str] = []
        page.route(osm, _refuse(asked))
        page.goto(live_server.url + f"/maps/public?lang={lang}", wait_until="networkidle")
        page.wait_for_function("window.commonsMap && window.commonsMap.loaded.tiles", timeout=30_000)
        notice = page.locator("#commons-basemap-notice")
        notice.wait_for(state="visible", timeout=10_000)
        assert asked and words in notice.inner_text()
        assert notice.get_attribute("role") == "status"
        state = page.evaluate("({parcels: Object.keys(window.commonsMap.parcels).length,"
                              " merged: window.commonsMap.merged, errors: window.commonsMap.errors,"
                              " basemap: window.commonsMap.basemap})")
        assert state["basemap"] == "failed" and state["errors"] == []
        assert state["parcels"] + state["merged"] > 0  # the restored land is drawn
        assert page.locator(".leaflet-tile-container canvas, canvas.leaflet-tile").count() > 0
        # a plain background, not Leaflet's grey (#ddd) where the base map is missing
        assert page.evaluate(
            "getComputedStyle(document.querySelector('.leaflet-container')).backgroundColor"
        ) == "rgb(243, 241, 234)"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"public-map-no-basemap-{lang}-360.png"))
        assert axe_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.close()


def test_with_its_base_map_the_map_shows_no_notice(browser, live_server):
    """Base map tiles that load (answered here with a 1-pixel PNG): no notice."""
    import re

    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.route(re.compile(r"^https://tile\.openstreetmap\.org/"),
               lambda r: r.fulfill(status=200, content_type="image/png", body=PNG_1PX))
    page.goto(live_server.url + "/maps/public", wait_until="networkidle")
    page.wait_for_function("window.commonsMap && window.commonsMap.loaded.tiles"
                           " && window.commonsMap.basemap === 'loaded'", timeout=30_000)
    assert page.locator("#commons-basemap-notice").is_hidden()
    page.close()
