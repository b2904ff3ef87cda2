"""Vector tiles: MVT content, 204 for empty tiles, ETag/304, gzip, Cache-Control, TileJSON, index use."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import select, text

from commons_map.publish import figures, service, tilecache
from commons_map.publish.collections import COLLECTIONS
from commons_map.register.models import Commons
from tests.conftest import add_public_parcels


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
    # Served tiles carry what draws the map; the popup asks the parcel's OGC item for the rest.
    assert set(props) == {"id", "name", "status"} == set(COLLECTIONS["restored_land"].tile_props)
    assert props["name"] == "Terrasses du Rocher"
    assert props["status"] in ("regenerating", "stable", "degrading", "baseline_only", "no_data")
    assert feats[cid]["geometry"]["type"] == "Polygon"
    item = client.get(f"/ogc/collections/restored_land/items/{cid}?f=json").json()["properties"]
    assert item["status"] == props["status"] and item["status_label_fr"] and "area_m2" in item
    # The static export's tiles hold the figures themselves (no server to ask).
    static = decode(service.tile(db, collection=COLLECTIONS["restored_land"], z=15, x=x, y=y, static=True))
    full = {f["id"]: f for f in static["restored_land"]["features"]}[cid]["properties"]
    assert full["status_label_fr"] and full["status_label_en"] and full["area_m2"] == pytest.approx(item["area_m2"])
    assert full["status"] == props["status"]


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
    assert doc["vector_layers"][0]["fields"] == {"id": "Number", "name": "String", "status": "String"}
    x0, y0, x1, y1 = doc["bounds"]
    assert x0 < x1 and y0 < y1


def test_tile_query_filters_with_the_gist_index_on_the_transformed_envelope(db):
    """With enough rows for the planner to care, the tile SQL uses the geometry's GiST index."""
    add_public_parcels(db, 6000)
    sql = service.tile_sql(COLLECTIONS["restored_land"])
    params = {
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


def test_a_row_whose_box_reaches_the_tile_but_not_its_shape_stays_out(client, db):
    """The tile SQL keeps no NULL filter over the clipped features (ST_AsMVT skips them): a thin
    diagonal parcel whose bounding box covers a tile's corner, far from its shape, leaves that tile
    empty (204), in the served form and the static one, and is drawn in the tile its shape crosses."""
    coop = db.execute(text("SELECT id FROM cooperatives ORDER BY id LIMIT 1")).scalar()
    cid = db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " VALUES (:c, 'land', 'Haie en diagonale', ST_GeomFromText("
            "'POLYGON((6.0 45.0, 6.1 45.1, 6.1 45.0999, 6.0 45.0))', 4326), 'public', 'restoring')"
            " RETURNING id"
        ),
        {"c": coop},
    ).scalar()
    land = COLLECTIONS["restored_land"]
    x, y = tile_of(6.004, 45.096, 14)  # the box's north-west corner, ~0.09 degrees from the shape
    candidates = db.execute(
        text(f"SELECT count(*) {service._tile_rows(land)[0]} {service._tile_rows(land)[1]} AND s.id = :i"),
        {"z": 14, "x": x, "y": y, "i": cid},
    ).scalar()
    assert candidates == 1  # the index filter lets it through; the clip throws it away
    assert client.get(f"/tiles/restored_land/14/{x}/{y}.mvt").status_code == 204
    assert service.tile(db, collection=land, z=14, x=x, y=y, static=True) == b""
    x, y = tile_of(6.05, 45.0499, 14)  # on the diagonal
    assert cid in _tile_features(client, f"/tiles/restored_land/14/{x}/{y}.mvt")


def test_the_tile_sql_clips_each_row_once(db):
    """ST_AsMVTGeom runs once per row: no filter on its result that PostgreSQL would push down into
    the scan and compute a second time (EXPLAIN VERBOSE shows every place it is computed)."""
    add_public_parcels(db, 6000)
    for merged in (False, True):
        sql = service.tile_sql(COLLECTIONS["restored_land"], merged=merged)
        params = {"nodata_fr": "", "nodata_en": "", "layer": "restored_land", "z": 16 - 6 * merged,
                  "x": 33677 >> 6 * merged, "y": 23629 >> 6 * merged, "merged_collection": "restored_land"}
        plan = "\n".join(r[0] for r in db.execute(text("EXPLAIN VERBOSE " + sql), params)).lower()
        assert plan.count("st_asmvtgeom(st_transform") == 1, plan
        assert "st_asmvtgeom(" in plan and "filter: (st_asmvtgeom" not in plan, plan


# --- the tile cache (commons_map/publish/tilecache.py) ------------------------------------------


def _tile_features(client, url: str) -> dict:
    r = client.get(url, headers={"Accept-Encoding": "identity"})
    if r.status_code == 204:
        return {}
    assert r.status_code == 200
    return {f["id"]: f for f in decode(r.content)["restored_land"]["features"]}


def test_cached_tile_is_served_again_until_a_row_changes(client, db):
    tilecache.CACHE.clear()
    lon, lat, cid = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 14)
    url = f"/tiles/restored_land/14/{x}/{y}.mvt"
    first = _tile_features(client, url)
    assert first[cid]["properties"]["name"] == "Terrasses du Rocher"
    hits = tilecache.CACHE.hits
    assert _tile_features(client, url) == first
    assert tilecache.CACHE.hits == hits + 1  # the second request came from the cache

    # A change in this transaction (not yet committed) is seen at once: new fingerprint.
    db.execute(text("UPDATE commons SET name = 'Terrasses renommées' WHERE id = :i"), {"i": cid})
    assert _tile_features(client, url)[cid]["properties"]["name"] == "Terrasses renommées"
    # Twice in the same transaction (same xmin): the new tuple's ctid still differs.
    db.execute(text("UPDATE commons SET name = 'Terrasses, encore' WHERE id = :i"), {"i": cid})
    assert _tile_features(client, url)[cid]["properties"]["name"] == "Terrasses, encore"


@pytest.mark.parametrize(
    "change",
    [
        "visibility = 'private'",
        "visibility = 'members'",
        "archived_at = now()",
        "location_precision = 'approximate'",
        "geom = ST_Translate(geom, 1, 1)",
    ],
)
def test_cache_never_serves_a_commons_after_it_stops_being_public_here(client, db, change):
    tilecache.CACHE.clear()
    lon, lat, cid = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/restored_land/15/{x}/{y}.mvt"
    assert cid in _tile_features(client, url)
    assert cid in _tile_features(client, url)  # now cached
    db.execute(text(f"UPDATE commons SET {change} WHERE id = :i"), {"i": cid})
    after = _tile_features(client, url)
    if change.startswith("location_precision"):
        # still public, but as the snapped point, never the exact polygon
        assert cid not in after or after[cid]["geometry"]["type"] == "Point"
    else:
        assert cid not in after


def test_cache_sees_a_kind_leaving_the_collection_and_a_new_commons(client, db):
    tilecache.CACHE.clear()
    lon, lat, cid = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 14)  # one feature per parcel (13 and below: merged)
    url = f"/tiles/restored_land/14/{x}/{y}.mvt"
    before = _tile_features(client, url)
    db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " SELECT cooperative_id, kind_code, 'Parcelle toute neuve', ST_Translate(geom, 0.0001, 0),"
            " 'public', state FROM commons WHERE id = :i"
        ),
        {"i": cid},
    )
    added = _tile_features(client, url)
    assert len(added) == len(before) + 1
    assert "Parcelle toute neuve" in {f["properties"]["name"] for f in added.values()}
    kind = db.scalar(text("SELECT kind_code FROM commons WHERE id = :i"), {"i": cid})
    db.execute(text("UPDATE commons_kinds SET category = 'garden' WHERE code = :k"), {"k": kind})
    assert cid not in _tile_features(client, url)


def _static_props(db, x: int, y: int, cid: int) -> dict:
    """A parcel's properties in the static export's z15 tile (they hold the figures)."""
    data = service.tile(db, collection=COLLECTIONS["restored_land"], z=15, x=x, y=y, static=True)
    return {f["id"]: f for f in decode(data)["restored_land"]["features"]}[cid]["properties"]


def test_cache_key_follows_the_figures(client, db, people):
    """The figures' stamp is a digest of their content: recomputed alike, the tile is still a hit;
    a new harvest changes the figures, the figures table and the stamp, and the tile is made again."""
    from datetime import date

    from commons_map.soil.schemas import HarvestIn
    from commons_map.soil.service import record_harvest

    tilecache.CACHE.clear()
    lon, lat, cid = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 15)
    url = f"/tiles/restored_land/15/{x}/{y}.mvt"
    _tile_features(client, url)
    before = _static_props(db, x, y, cid)
    stamp = figures.sync(db)
    figures.clear_cache()  # computed again, the same figures: the same stamp, a cache hit
    assert figures.sync(db) == stamp
    misses = tilecache.CACHE.misses
    _tile_features(client, url)
    assert tilecache.CACHE.misses == misses
    record_harvest(db, actor=people.coordinator, data=HarvestIn(
        commons_id=cid, crop="pois chiche", harvested_on=date.today(), weight_kg=12.5))
    figures.clear_cache()  # as when the five minutes are up
    assert figures.sync(db) != stamp
    _tile_features(client, url)
    assert tilecache.CACHE.misses == misses + 1
    after = _static_props(db, x, y, cid)
    assert after["harvest_kg_total"] == pytest.approx((before.get("harvest_kg_total") or 0) + 12.5)
    held = db.scalar(text("SELECT harvest_kg_total FROM publish_figures WHERE commons_id = :c"), {"c": cid})
    assert held == pytest.approx(after["harvest_kg_total"])


def test_cache_is_bounded_and_can_be_turned_off(monkeypatch):
    c = tilecache.TileCache(max_bytes=1000)
    for i in range(10):
        c.put(("k", i), tilecache.TileEntry(bytes(100)))  # counts 200 bytes (room for gzip)
    assert len(c) == 5 and c.bytes == 1000
    assert c.get(("k", 0)) is None and c.get(("k", 9)) is not None
    c.put(("big",), tilecache.TileEntry(bytes(400)))  # above a quarter of the bound: not kept
    assert c.get(("big",)) is None
    off = tilecache.TileCache(max_bytes=0)
    off.put(("k",), tilecache.TileEntry(b"x"))
    assert not off.enabled and off.get(("k",)) is None
    monkeypatch.setenv("COMMONS_TILE_CACHE_MB", "0")
    assert not tilecache.TileCache().enabled
    monkeypatch.setenv("COMMONS_TILE_CACHE_MB", "lots")  # not a number: the default, 64 MB
    assert tilecache.TileCache().max_bytes == 64 * 1024 * 1024


def test_tiles_with_the_cache_off_are_the_same(client, db, monkeypatch):
    lon, lat, _ = centre(db, "demo:land-0")
    x, y = tile_of(lon, lat, 14)
    url = f"/tiles/restored_land/14/{x}/{y}.mvt"
    tilecache.CACHE.clear()
    cached = client.get(url, headers={"Accept-Encoding": "identity"})
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=0))
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.content == cached.content and plain.headers["etag"] == cached.headers["etag"]


# --- low zooms: merged, small and whole (service.merged_tile_sql) --------------------------------


def _add_hidden_parcels(db, count: int) -> None:
    """Members-only and private parcels among the synthetic ones: they must count nowhere."""
    db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " SELECT (SELECT id FROM cooperatives ORDER BY id LIMIT 1), 'land', 'cachée ' || i,"
            " ST_MakeEnvelope(5.0 + (i % 150) * 0.0006 + 0.0001, 44.5 + (i / 150) * 0.0005 + 0.0001,"
            "                 5.0 + (i % 150) * 0.0006 + 0.0003, 44.5 + (i / 150) * 0.0005 + 0.0002, 4326),"
            " CASE WHEN i % 2 = 0 THEN 'private' ELSE 'members' END, 'restoring'"
            " FROM generate_series(1, :n) i"
        ),
        {"n": count},
    )


def _public_count(db, cid: str, *, points: bool) -> int:
    from commons_map.publish.sql import public_source

    kind = "" if points else "NOT "
    return db.scalar(text(
        f"SELECT count(*) FROM ({public_source(COLLECTIONS[cid])}) s"
        f" WHERE {kind}GeometryType(s.geom) IN ('POINT', 'MULTIPOINT')"
    ))


def test_the_zoom_rule():
    land, tools = COLLECTIONS["restored_land"], COLLECTIONS["tools_and_places"]
    assert service.merges(land, 0) and service.merges(land, service.MERGE_MAX_ZOOM)
    assert not service.merges(land, service.MERGE_MAX_ZOOM + 1)
    assert not service.merges(tools, 6)  # points only: never merged


@pytest.mark.parametrize("cid", ["restored_land", "commons", "gardens"])
def test_merged_tiles_count_every_public_polygon_once_and_nothing_hidden(client, db, cid):
    """At every merged zoom, the ``count`` of the merged features over all tiles is the number of
    public polygons of the layer: nothing dropped, nothing counted twice, nothing private."""
    add_public_parcels(db, 3000)
    _add_hidden_parcels(db, 400)
    polygons = _public_count(db, cid, points=False)
    points = _public_count(db, cid, points=True)
    extent = db.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM commons) q"
    )).one()
    for z in (0, 4, 8, 10, 12, service.MERGE_MAX_ZOOM):
        counted = single = 0
        x0, y1 = tile_of(extent[0], extent[1], z)
        x1, y0 = tile_of(extent[2], extent[3], z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                r = client.get(f"/tiles/{cid}/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
                if r.status_code == 204:
                    continue
                assert len(r.content) < 500_000
                for f in decode(r.content)[cid]["features"]:
                    p = f["properties"]
                    if "count" in p:
                        # a box, or its centre when it is smaller than a tile unit (low zooms)
                        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon", "Point")
                        assert "name" not in p and "id" not in p and p["count"] >= 1
                        assert p[COLLECTIONS[cid].merge_by]
                        counted += p["count"]
                    else:
                        assert f["geometry"]["type"] == "Point" and p["id"]
                        single += 1
        assert counted == polygons, (cid, z)
        assert single >= points, (cid, z)  # a point near a tile's edge may be in two tiles


def test_merged_tiles_are_bounded_where_single_features_would_not_be(db):
    """A cell holds at most one feature per status: ~4 parcels a cell at z12 make one feature."""
    add_public_parcels(db, 3000)
    land = COLLECTIONS["restored_land"]
    x, y = tile_of(5.045, 44.51, 12)
    merged = decode(service.tile(db, collection=land, z=12, x=x, y=y))["restored_land"]["features"]
    counted = sum(f["properties"]["count"] for f in merged if "count" in f["properties"])
    assert counted >= 2000 and len(merged) * 3 < counted
    assert len(merged) <= service.MERGE_GRID**2
    single = db.execute(text(service.tile_sql(land)), {
        "nodata_fr": "", "nodata_en": "", "layer": "restored_land", "z": 12, "x": x, "y": y}).scalar()
    merged_bytes = service.tile(db, collection=land, z=12, x=x, y=y)
    assert len(merged_bytes) * 3 < len(single)


def _merged_count(client, url: str, layer: str = "restored_land") -> int:
    r = client.get(url, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    return sum(f["properties"].get("count", 0) for f in decode(r.content)[layer]["features"])


@pytest.mark.parametrize("z", [10, 12, 15])
def test_a_change_costs_its_own_tiles_and_the_rest_stay_cached(client, db, z):
    """Editing one parcel makes the tiles holding it fresh at once; a tile elsewhere is still a hit."""
    add_public_parcels(db, 600)  # around 5.0-5.09 E, 44.50-44.502 N
    cid = db.scalar(text("SELECT id FROM commons WHERE name = 'synthétique 75'"))
    lon, lat, _ = db.execute(text(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), 0 FROM commons WHERE id = :i"
    ), {"i": cid}).one()
    far_lon, far_lat, _ = centre(db, "demo:land-0")
    mine, far = tile_of(lon, lat, z), tile_of(far_lon, far_lat, z)
    assert mine != far
    url, far_url = (f"/tiles/restored_land/{z}/{x}/{y}.mvt" for x, y in (mine, far))
    tilecache.CACHE.clear()
    merged = service.merges(COLLECTIONS["restored_land"], z)
    before = _merged_count(client, url) if merged else _tile_features(client, url)
    far_before = client.get(far_url, headers={"Accept-Encoding": "identity"}).content
    hits, misses = tilecache.CACHE.hits, tilecache.CACHE.misses
    if merged:
        db.execute(text("UPDATE commons SET visibility = 'members' WHERE id = :i"), {"i": cid})
        assert _merged_count(client, url) == before - 1  # fresh at once, and it no longer counts
    else:
        assert before[cid]["properties"]["name"] == "synthétique 75"
        db.execute(text("UPDATE commons SET name = 'renommée' WHERE id = :i"), {"i": cid})
        assert _tile_features(client, url)[cid]["properties"]["name"] == "renommée"
    assert tilecache.CACHE.misses == misses + 1
    assert client.get(far_url, headers={"Accept-Encoding": "identity"}).content == far_before
    assert tilecache.CACHE.hits == hits + 1  # the other tile came from the cache
