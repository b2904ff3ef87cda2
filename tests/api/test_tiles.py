"""Vector tiles: MVT content, 204 for empty tiles, ETag/304, gzip, Cache-Control, TileJSON, index use."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import select, text

from commons_map.publish import figures, service
from commons_map.publish.collections import COLLECTIONS
from commons_map.register.models import Commons


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield
    figures.clear_cache()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int(
        (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n
    )


def centre(db, external_id: str) -> tuple[float, float, int]:
    c = db.scalars(select(Commons).where(Commons.external_id == external_id)).one()
    lon, lat = db.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM commons WHERE id=:i"
        ),
        {"i": c.id},
    ).one()
    return lon, lat, c.id


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content)


def test_a_tile_holds_the_parcel_with_its_figures(client, db):
    lon, lat, cid = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 15)
    r = client.get(f"/tiles/restored_land/15/{x}/{y}.mvt")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["restored_land"]
    feats = {f["id"]: f for f in layer["features"]}
    assert cid in feats
    props = feats[cid]["properties"]
    assert props["name"] == "Terrasses du Rocher"
    assert props["status"] in ("regenerating", "stable", "degrading", "baseline_only", "no_data")
    assert props["status_label_fr"] and props["status_label_en"]
    assert feats[cid]["geometry"]["type"] == "Polygon"


def test_every_collection_tiles(client, db):
    lon, lat, _ = centre(db, "demo:garden-0")
    x, y = tile_of(lon, lat, 14)
    for cid in COLLECTIONS:
        r = client.get(f"/tiles/{cid}/14/{x}/{y}.mvt")
        assert r.status_code == 200, cid
        assert cid in decode(r.content)


def test_empty_tile_is_204(client):
    r = client.get("/tiles/restored_land/10/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert "etag" in r.headers and r.headers["cache-control"].startswith("public")


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/restored_land/3/8/1.mvt",
        "/tiles/restored_land/25/0/0.mvt",
        "/tiles/restored_land/a/0/0.mvt",
        "/tiles/housing/1/0/0.mvt",
    ],
)
def test_tiles_that_cannot_exist_are_404(client, path):
    assert client.get(path).status_code == 404


def test_etag_304_cache_control_and_gzip(client, db):
    lon, lat, _ = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 13)
    url = f"/tiles/restored_land/13/{x}/{y}.mvt"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["cache-control"] == "public, max-age=300"
    assert plain.headers["access-control-allow-origin"] == "*"
    etag = plain.headers["etag"]
    assert (
        client.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag}).status_code
        == 304
    )
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != etag
    assert zipped.content == plain.content  # httpx inflated it
    head = client.head(url, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


def test_tilejson(client):
    r = client.get("/tiles/restored_land/tilejson.json")
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/tiles/restored_land/{z}/{x}/{y}.mvt")
    assert doc["vector_layers"][0]["id"] == "restored_land"
    assert doc["vector_layers"][0]["fields"]["status"] == "String"
    assert doc["vector_layers"][0]["fields"]["area_m2"] == "Number"
    x0, y0, x1, y1 = doc["bounds"]
    assert x0 < x1 and y0 < y1


def test_tile_query_filters_with_the_gist_index_on_the_transformed_envelope(db):
    """With enough rows for the planner to care, the tile SQL uses the geometry's GiST index."""
    db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " SELECT (SELECT id FROM cooperatives ORDER BY id LIMIT 1), 'land', 'synthétique ' || i,"
            " ST_MakeEnvelope(5.0 + (i % 150) * 0.0006, 44.5 + (i / 150) * 0.0005,"
            "                 5.0 + (i % 150) * 0.0006 + 0.0004, 44.5 + (i / 150) * 0.0005 + 0.0003, 4326),"
            " 'public', 'restoring' FROM generate_series(1, 6000) i"
        )
    )
    db.execute(text("ANALYZE commons"))
    sql = service.tile_sql(COLLECTIONS["restored_land"])
    params = {
        "figs": "{}",
        "nodata_fr": "",
        "nodata_en": "",
        "layer": "restored_land",
        "z": 16,
        "x": 33677,
        "y": 23629,
    }
    plan = "\n".join(r[0] for r in db.execute(text("EXPLAIN " + sql), params))
    assert "idx_commons_geom" in plan, plan
    assert "ST_Transform(c.geom" not in plan and "st_transform(c.geom" not in plan.lower().replace(
        " ", ""
    )
