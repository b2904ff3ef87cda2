"""The public map page and its static export, without a browser."""

from __future__ import annotations

import gzip
import json
import re

import mapbox_vector_tile
from sqlalchemy import text
from typer.testing import CliRunner

from commons_map.publish.figures import legend, status_labels
from maps.public import Sources, build_public_map, pick_lang, render

SOURCES = Sources("t/{z}/{x}/{y}.mvt", "g.geojson", "p.geojson", "vendor")


def test_language_from_the_query_then_accept_language_then_french():
    assert pick_lang("en", "fr-FR") == "en"
    assert pick_lang(None, "en-GB,en;q=0.9,fr;q=0.8") == "en"
    assert pick_lang(None, "de-DE,fr;q=0.5,en;q=0.4") == "fr"
    assert pick_lang(None, "de-DE") == "fr" and pick_lang(None, None) == "fr"
    assert pick_lang("es", "en") == "en"


def test_legend_explains_every_status_of_the_soil_feature_in_both_languages():
    labels = status_labels()
    assert {"regenerating", "stable", "degrading", "baseline_only", "no_data"} <= set(labels)
    for lang in ("fr", "en"):
        page = render(build_public_map(SOURCES, lang=lang, basemap=None), lang=lang)
        assert f'<html lang="{lang}">' in page
        for row in legend():
            assert row[lang] in page or row[lang].replace("'", "&#39;") in page, row
            assert row["colour"] in page
    fr = render(build_public_map(SOURCES, lang="fr", basemap=None))
    assert "En régénération" in fr and "Jardins partagés" in fr and "Heures bénévoles" in fr
    en = render(build_public_map(SOURCES, lang="en", basemap=None), lang="en")
    assert "Regenerating" in en and "Shared gardens" in en and "Volunteer hours" in en


def test_page_loads_layers_by_url_and_uses_no_cdn():
    page = render(build_public_map(SOURCES, basemap=None))
    assert '"t/{z}/{x}/{y}.mvt"' in page and '"g.geojson"' in page and '"p.geojson"' in page
    assert "L.vectorGrid.protobuf" in page and "L.canvas.tile" in page
    assert not re.search(r'(src|href)="https?://', page), (
        "scripts and styles come from our own copy"
    )


def test_served_page_does_not_grow_with_the_data(client, db):
    before = client.get("/maps/public?lang=fr&basemap=none")
    assert before.status_code == 200 and before.headers["content-language"] == "fr"
    db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " SELECT (SELECT id FROM cooperatives ORDER BY id LIMIT 1), 'land', 'Parcelle ' || i,"
            " ST_MakeEnvelope(5.15 + (i % 50) * 0.0006, 44.69 + (i / 50) * 0.0004,"
            "                 5.15 + (i % 50) * 0.0006 + 0.0004, 44.69 + (i / 50) * 0.0004 + 0.0003, 4326),"
            " 'public', 'restoring' FROM generate_series(1, 3000) i"
        )
    )
    after = client.get("/maps/public?lang=fr&basemap=none")
    assert abs(len(after.content) - len(before.content)) < 200  # only the fitted bounds may change
    assert "Parcelle 17" not in after.text
    assert (
        client.get("/ogc/collections/restored_land/items?limit=10000").json()["numberReturned"]
        > 3000
    )


def test_served_page_language_and_bad_parameters(client):
    en = client.get("/maps/public", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert en.headers["content-language"] == "en" and "Restored land" in en.text
    fr = client.get("/maps/public")
    assert fr.headers["content-language"] == "fr" and "Terres restaurées" in fr.text
    assert client.get("/maps/public?lang=de").status_code == 400
    assert client.get("/maps/public?basemap=google").status_code == 400
    assert client.get("/maps/static/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/maps/static/../public.py").status_code == 404


def test_static_export_writes_the_data_beside_the_page(db, settings, tmp_path):
    from maps.site import build_static_site

    counts = build_static_site(
        db, tmp_path, licence=settings.data_licence, min_zoom=13, max_zoom=15
    )
    assert (tmp_path / "index.html").exists() and (tmp_path / "index.en.html").exists()
    for name in ("restored_land", "gardens", "tools_and_places", "commons"):
        fc = json.loads((tmp_path / "data" / f"{name}.geojson").read_text())
        assert fc["licence"] == settings.data_licence and re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", fc["date"]
        )
        assert fc["features"]
    tiles = list((tmp_path / "tiles" / "restored_land").rglob("*.mvt"))
    assert len(tiles) == counts["tiles"] > 3
    drawn = [t for t in tiles if t.stat().st_size]
    assert drawn and all(
        "restored_land" in mapbox_vector_tile.decode(t.read_bytes()) for t in drawn
    )
    page = (tmp_path / "index.html").read_text()
    assert '"tiles/restored_land/{z}/{x}/{y}.mvt"' in page and '"data/gardens.geojson"' in page
    # nothing loaded from elsewhere (scripts, styles, images): the folder works offline; the only
    # links out are the partners' own pages, named in the legend (the demo lists one)
    assert not re.search(r'src="(https?:)?//', page) and not re.search(r'<link[^>]*href="(https?:)?//', page)
    links_out = set(re.findall(r'href="((?:https?:)?//[^"]*)"', page))
    assert links_out <= set(db.scalars(text("SELECT link FROM partners"))), links_out
    assert (tmp_path / "vendor" / "leaflet" / "leaflet.js").exists()
    assert "ODbL" in (tmp_path / "LICENCE.txt").read_text()
    # The same layers as one PMTiles archive, zoom 0-16, and the pages that read it.
    archive = tmp_path / "public.pmtiles"
    assert counts["public.pmtiles"] == archive.stat().st_size > 0
    for name in ("pmtiles.html", "pmtiles.en.html"):
        page = (tmp_path / name).read_text()
        assert '"public.pmtiles"' in page and "vendor/pmtiles/pmtiles.js" in page
        # nothing loaded from elsewhere (scripts, styles, images): the folder works offline; the only
    # links out are the partners' own pages, named in the legend (the demo lists one)
    assert not re.search(r'src="(https?:)?//', page) and not re.search(r'<link[^>]*href="(https?:)?//', page)
    links_out = set(re.findall(r'href="((?:https?:)?//[^"]*)"', page))
    assert links_out <= set(db.scalars(text("SELECT link FROM partners"))), links_out
    assert (tmp_path / "vendor" / "pmtiles" / "LICENSE").exists()
    from pmtiles.reader import MmapSource, Reader

    with archive.open("rb") as f:
        reader = Reader(MmapSource(f))
        assert reader.metadata()["vector_layers"][0]["id"] == "restored_land"
        for z, x, y in ((0, 0, 0), (16, *tile_of(db, "demo:land-0", 16))):
            layers = mapbox_vector_tile.decode(gzip.decompress(reader.get(z, x, y)))
            assert "restored_land" in layers, (z, x, y)


def test_cli_builds_the_site(engine, database_url, tmp_path, monkeypatch):
    from commons_map.cli import app
    from commons_map.settings import get_settings

    monkeypatch.setenv("COMMONS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        out = tmp_path / "site"
        r = CliRunner().invoke(
            app, ["maps", "build", "--out", str(out), "--min-zoom", "14", "--max-zoom", "14",
                  "--archive-max-zoom", "12"]
        )
        assert r.exit_code == 0, r.output
        assert (out / "index.html").exists() and (out / "data" / "gardens.geojson").exists()
        assert "public.pmtiles" in r.output and (out / "pmtiles.html").exists()
        bad = CliRunner().invoke(
            app, ["maps", "build", "--out", str(out), "--min-zoom", "15", "--max-zoom", "12"]
        )
        assert bad.exit_code == 1
    finally:
        get_settings.cache_clear()


def tile_of(db, external_id: str, z: int) -> tuple[int, int]:
    from tests.api.test_tiles import tile_of as xy

    lon, lat = db.execute(text(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM commons WHERE external_id = :e"
    ), {"e": external_id}).one()
    return xy(lon, lat, z)
