"""OGC API - Features at /ogc: documents, items, paging, parameters, negotiation, caching, CORS."""

from __future__ import annotations

import re
from datetime import UTC
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, text

from commons_map.publish import figures
from commons_map.publish.collections import COLLECTIONS
from commons_map.register.models import Commons
from commons_map.register.service import list_commons
from tests.conftest import add_public_parcels


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield
    figures.clear_cache()


def public_ids(db, categories=None) -> set[int]:
    """What anonymous visitors see in the register (the foundation's own rule)."""
    fc = list_commons(db, actor=None, limit=1000)
    return {
        f["id"]
        for f in fc["features"]
        if f["geometry"] is not None
        and (categories is None or f["properties"]["category"] in categories)
    }


def all_pages(client, url: str) -> tuple[list[dict], int]:
    feats, pages = [], 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        feats += body["features"]
        pages += 1
        nxt = [ln["href"] for ln in body["links"] if ln["rel"] == "next"]
        url = nxt[0] if nxt else None
    return feats, pages


def test_landing_has_every_required_link(client):
    r = client.get("/ogc")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    rels = {(ln["rel"], ln["type"]) for ln in r.json()["links"]}
    for rel in ("self", "service-desc", "service-doc", "conformance", "data"):
        assert any(x[0] == rel for x in rels), rel
    assert ("service-desc", "application/vnd.oai.openapi+json;version=3.0") in rels
    assert all(ln.get("rel") and ln.get("type") and ln.get("href") for ln in r.json()["links"])


def test_conformance_declares_the_classes_we_implement(client):
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in classes
    # Not implemented, so not declared.
    assert not any(
        "cql2-json" in c or "temporal-functions" in c or "arithmetic" in c for c in classes
    )


def test_collections_list_public_layers_with_extent_and_crs(client):
    body = client.get("/ogc/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == list(COLLECTIONS)
    for c in body["collections"]:
        assert c["extent"]["spatial"]["crs"].endswith("CRS84")
        x0, y0, x1, y1 = c["extent"]["spatial"]["bbox"][0]
        assert 5.0 < x0 <= x1 < 5.4 and 44.6 < y0 <= y1 < 44.8  # around Saillans
        assert c["storageCrs"] in c["crs"]
        assert "http://www.opengis.net/def/crs/EPSG/0/2154" in c["crs"]
        rels = {ln["rel"] for ln in c["links"]}
        assert {
            "self",
            "items",
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "license",
        } <= rels
    one = client.get("/ogc/collections/restored_land").json()
    assert one["id"] == "restored_land" and one["itemType"] == "feature"


def test_unknown_collection_is_404(client):
    r = client.get("/ogc/collections/housing/items")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_default_limit_is_10_with_next_links_and_no_inexact_count(client, db):
    r = client.get("/ogc/collections/commons/items")
    body = r.json()
    assert body["numberReturned"] == 10 and len(body["features"]) == 10
    assert "numberMatched" not in body  # not exact without a COUNT: left out
    assert "timeStamp" in body
    nxt = [ln for ln in body["links"] if ln["rel"] == "next"]
    assert nxt and nxt[0]["type"] == "application/geo+json"
    assert parse_qs(urlparse(nxt[0]["href"]).query)["cursor"] == [str(body["features"][-1]["id"])]


def test_paging_by_key_returns_every_public_commons_exactly_once(client, db):
    feats, pages = all_pages(client, "/ogc/collections/commons/items?limit=7")
    ids = [f["id"] for f in feats]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert set(ids) == public_ids(db)
    assert pages == -(-len(ids) // 7) or pages == -(-len(ids) // 7) + 1


def test_number_matched_when_the_whole_result_fits(client, db):
    body = client.get("/ogc/collections/gardens/items?limit=100").json()
    assert body["numberMatched"] == body["numberReturned"] == len(public_ids(db, {"garden"}))
    assert not [ln for ln in body["links"] if ln["rel"] == "next"]


def test_limit_is_clamped_above_the_maximum_not_refused(client, db):
    r = client.get("/ogc/collections/commons/items?limit=50000")
    assert r.status_code == 200
    assert r.json()["numberReturned"] == len(public_ids(db))
    from commons_map.publish.service import parse_limit

    assert parse_limit("50000") == 10_000 and parse_limit(None) == 10


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("foo=bar", "foo"),
        ("limit=5&limit=6", "limit"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=5,44,6,200", "bbox"),
        ("bbox-crs=http://www.opengis.net/def/crs/OGC/1.3/CRS84", "bbox-crs"),
        ("datetime=yesterday", "datetime"),
        ("datetime=2026-01-02T00:00:00Z/2025-01-01T00:00:00Z", "datetime"),
        ("datetime=2026-01-01T10:00:00", "datetime"),
        ("crs=http://www.opengis.net/def/crs/EPSG/0/32631", "crs"),
        ("cursor=abc", "cursor"),
        ("f=xml", "f"),
        ("filter-lang=cql2-json&filter=x", "filter-lang"),
        ("filter=owner%20%3D%20%27x%27", "filter"),
        ("filter=name%20%3D", "filter"),
        ("filter=area_m2%20%3E%20%27big%27", "filter"),
        ("filter=S_INTERSECTS(geometry,%20POLYGON((1%202)))", "filter"),
        ("area_m2=large", "area_m2"),
    ],
)
def test_invalid_or_unknown_parameters_answer_400(client, query, field):
    r = client.get(f"/ogc/collections/commons/items?{query}")
    assert r.status_code == 400, (query, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400 and body["errors"][0]["field"] == field
    assert body["kind"] == "invalid_parameter" and body["code"].startswith(("publish.", "input."))
    assert body["errors"][0]["code"] == body["code"] and body["detail"] == body["errors"][0]["message"]
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("query", "code", "en", "fr"),
    [
        ("bbox=1,2,3", "publish.bbox_numbers", "Must be 4 or 6 comma-separated numbers, not 1,2,3.",
         "Doit être 4 ou 6 nombres séparés par des virgules, pas 1,2,3."),
        ("f=xml", "publish.unknown_format", "Unknown format xml; use json or html.",
         "Format inconnu : xml ; utilisez json ou html."),
        ("filter=name%20%3D", "publish.cql2_ends_early", "The expression ends too early.",
         "L'expression s'arrête trop tôt."),
        ("filter=owner%20%3D%20%27x%27", "publish.cql2_unknown_property",
         "Unknown property owner in collection commons; queryables:", "Propriété inconnue owner dans la collection"),
    ],
)
def test_ogc_refusals_have_a_code_and_speak_both_languages(client, query, code, en, fr):
    """The OGC exception keeps its problem+json shape, with the message code and the reader's language."""
    for lang, said in (("en", en), ("fr", fr)):
        r = client.get(f"/ogc/collections/commons/items?{query}", headers={"Accept-Language": lang})
        assert r.status_code == 400 and r.json()["code"] == code, r.text
        assert r.json()["detail"].startswith(said)
    missing = client.get("/ogc/collections/nowhere", headers={"Accept-Language": "fr"})
    assert missing.status_code == 404 and missing.json()["code"] == "publish.no_collection"
    assert missing.json()["detail"].startswith("Aucune collection publique nowhere")


def test_unknown_parameter_on_other_documents_is_400(client):
    assert client.get("/ogc/collections?x=1").status_code == 400
    assert client.get("/ogc/conformance?x=1").status_code == 400
    assert client.get("/ogc/collections/commons/items/1?x=1").status_code == 400


def test_bbox_keeps_features_that_intersect_it(client, db):
    box = (5.15, 44.69, 5.20, 44.71)
    feats, _ = all_pages(
        client, "/ogc/collections/commons/items?limit=1000&bbox=" + ",".join(map(str, box))
    )
    expected = set(
        db.scalars(
            text(
                "SELECT id FROM commons WHERE visibility='public' AND archived_at IS NULL AND geom IS NOT NULL"
                " AND location_precision='exact' AND ST_Intersects(geom, ST_MakeEnvelope(:a,:b,:c,:d,4326))"
                " UNION SELECT c.id FROM commons c JOIN commons p ON p.id = c.kept_at_id WHERE c.visibility='public'"
                " AND c.archived_at IS NULL AND p.visibility='public' AND p.location_precision='exact'"
                " AND ST_Intersects(p.geom, ST_MakeEnvelope(:a,:b,:c,:d,4326))"
            ),
            dict(zip("abcd", box, strict=True)),
        )
    )
    approx = set(
        db.scalars(
            text(
                "SELECT id FROM commons WHERE visibility='public' AND location_precision='approximate'"
                " AND ST_Intersects(ST_SnapToGrid(ST_PointOnSurface(geom), 0.005), ST_MakeEnvelope(:a,:b,:c,:d,4326))"
            ),
            dict(zip("abcd", box, strict=True)),
        )
    )
    assert {f["id"] for f in feats} == expected | approx
    assert 0 < len(feats) < len(public_ids(db))


def test_bbox_in_another_crs_gives_the_same_features(client):
    crs84 = client.get(
        "/ogc/collections/commons/items?limit=1000&bbox=5.15,44.69,5.20,44.71"
    ).json()
    lat_lon = client.get(
        "/ogc/collections/commons/items?limit=1000&bbox=44.69,5.15,44.71,5.20"
        "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326"
    ).json()
    assert [f["id"] for f in crs84["features"]] == [f["id"] for f in lat_lon["features"]]
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (x0, y0), (x1, y1) = tr.transform(5.15, 44.69), tr.transform(5.20, 44.71)
    merc = client.get(
        f"/ogc/collections/commons/items?limit=1000&bbox={x0},{y0},{x1},{y1}"
        "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857"
    ).json()
    assert [f["id"] for f in crs84["features"]] == [f["id"] for f in merc["features"]]


def test_crs_parameter_transforms_geometries_and_says_so(client):
    base = client.get("/ogc/collections/restored_land/items?limit=1")
    assert base.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    lon, lat = base.json()["features"][0]["geometry"]["coordinates"][0][0]
    flipped = client.get(
        "/ogc/collections/restored_land/items?limit=1&crs=http://www.opengis.net/def/crs/EPSG/0/4326"
    )
    assert flipped.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    assert flipped.json()["features"][0]["geometry"]["coordinates"][0][0] == [lat, lon]
    lambert = client.get(
        "/ogc/collections/restored_land/items?limit=1&crs=http://www.opengis.net/def/crs/EPSG/0/2154"
    )
    x, y = lambert.json()["features"][0]["geometry"]["coordinates"][0][0]
    from pyproj import Transformer

    ex, ey = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True).transform(lon, lat)
    assert abs(x - ex) < 0.05 and abs(y - ey) < 0.05
    one = client.get(
        f"/ogc/collections/restored_land/items/{base.json()['features'][0]['id']}"
        "?crs=http://www.opengis.net/def/crs/EPSG/0/3857"
    )
    assert one.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3857>"
    assert one.json()["geometry"]["coordinates"][0][0][0] > 500_000


def test_datetime_filters_on_updated_at(client, db):
    total = len(public_ids(db))
    assert (
        client.get(
            "/ogc/collections/commons/items?limit=1000&datetime=2000-01-01T00:00:00Z/.."
        ).json()["numberReturned"]
        == total
    )
    assert (
        client.get(
            "/ogc/collections/commons/items?limit=1000&datetime=../2000-01-01T00:00:00Z"
        ).json()["numberReturned"]
        == 0
    )
    c = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    db.execute(
        text("UPDATE commons SET updated_at = '2020-06-15T12:00:00Z' WHERE id = :i"), {"i": c.id}
    )
    got = client.get("/ogc/collections/commons/items?datetime=2020-06-15").json()
    assert [f["id"] for f in got["features"]] == [c.id]
    got = client.get("/ogc/collections/commons/items?datetime=2020-06-15T12:00:00Z").json()
    assert [f["id"] for f in got["features"]] == [c.id]


def ids_for(client, collection: str, cql: str, lang: str | None = None) -> list[int]:
    params = {"filter": cql, "limit": "1000"}
    if lang:
        params["filter-lang"] = lang
    r = client.get(f"/ogc/collections/{collection}/items", params=params)
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


def names_for(client, collection: str, cql: str) -> set[str]:
    r = client.get(f"/ogc/collections/{collection}/items", params={"filter": cql, "limit": "1000"})
    assert r.status_code == 200, r.text
    return {f["properties"]["name"] for f in r.json()["features"]}


def test_cql2_text_filters(client, db):
    assert names_for(client, "commons", "kind = 'orchard'") == {"Vieux verger de Chabrillan"}
    assert names_for(client, "commons", "kind IN ('orchard', 'hedge')") == {
        "Vieux verger de Chabrillan",
        "Haie champêtre des Chaux",
    }
    assert names_for(client, "restored_land", "name LIKE 'Pré%' OR name LIKE 'Prairie%'") == {
        "Pré de la Drôme",
        "Prairie du Moulin",
    }
    assert "Pré de la Drôme" not in names_for(client, "restored_land", "NOT (name LIKE 'Pré%')")
    assert names_for(client, "restored_land", "CASEI(name) = casei('PRÉ DE LA DRÔME')") == {
        "Pré de la Drôme"
    }
    big = names_for(client, "restored_land", "area_m2 BETWEEN 20000 AND 1000000")
    small = names_for(client, "restored_land", "area_m2 NOT BETWEEN 20000 AND 1000000")
    assert big and small and not big & small
    assert names_for(client, "tools_and_places", "area_m2 IS NULL") == names_for(
        client, "tools_and_places", "TRUE"
    )
    assert names_for(client, "commons", "area_m2 IS NOT NULL AND category = 'place'") == set()
    assert names_for(client, "commons", "kind = 'garden' AND state <> 'active'") == set()
    assert names_for(client, "commons", "id = id AND kind = 'orchard'") == {
        "Vieux verger de Chabrillan"
    }
    assert names_for(
        client, "commons", "updated_at > TIMESTAMP('2000-01-01T00:00:00Z') AND kind='orchard'"
    ) == {"Vieux verger de Chabrillan"}
    assert names_for(client, "commons", "updated_at < DATE('2000-01-01')") == set()
    # Spatial, with WKT and BBOX literals.
    shed = db.scalars(select(Commons).where(Commons.external_id == "demo:shed")).one()
    point = db.scalar(
        text("SELECT ST_X(geom) || ' ' || ST_Y(geom) FROM commons WHERE id=:i"), {"i": shed.id}
    )
    near = names_for(client, "tools_and_places", f"S_INTERSECTS(geometry, POINT({point}))")
    assert (
        "Cabane à outils des Écoles" in near and "Presse à fruits" in near
    )  # a tool kept at the shed
    inside = names_for(client, "commons", "S_WITHIN(geometry, BBOX(5.15, 44.69, 5.20, 44.71))")
    box = names_for(
        client,
        "commons",
        "S_INTERSECTS(geometry, POLYGON((5.15 44.69, 5.20 44.69, 5.20 44.71, 5.15 44.71, 5.15 44.69)))",
    )
    assert inside and inside <= box
    assert names_for(
        client, "commons", "S_DISJOINT(geometry, BBOX(-10, -10, -9, -9))"
    ) == names_for(client, "commons", "TRUE")
    lat_first = client.get(
        "/ogc/collections/commons/items",
        params={
            "filter": "S_INTERSECTS(geometry, BBOX(44.69, 5.15, 44.71, 5.20))",
            "limit": 1000,
            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
        },
    ).json()
    assert {f["properties"]["name"] for f in lat_first["features"]} == box


def test_gdal_draft_filter_lang_is_accepted(client):
    assert ids_for(client, "commons", "kind = 'orchard'", "cql-text") == ids_for(
        client, "commons", "kind = 'orchard'", "cql2-text"
    )


def test_filter_cannot_reach_columns_outside_the_allow_list(client):
    for cql in (
        "visibility = 'private'",
        "steward_rows IS NULL",
        "geom IS NULL",
        '"c"."visibility" = \'x\'',
        "name = 'x'; DROP TABLE commons",
        "pg_sleep(1) = 1",
    ):
        r = client.get("/ogc/collections/commons/items", params={"filter": cql})
        assert r.status_code == 400, cql
    r = client.get("/ogc/collections/commons/items", params={"filter": "name = 'x'' OR ''1''=''1'"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 0  # a literal, never SQL


def test_queryable_names_as_plain_parameters(client):
    r = client.get("/ogc/collections/commons/items?kind=orchard")
    assert [f["properties"]["name"] for f in r.json()["features"]] == ["Vieux verger de Chabrillan"]


def test_queryables_are_json_schema(client):
    r = client.get("/ogc/collections/restored_land/queryables")
    assert r.headers["content-type"].startswith("application/schema+json")
    body = r.json()
    assert body["type"] == "object" and "$schema" in body
    props = body["properties"]
    assert props["geometry"]["format"] == "geometry-any"
    assert props["area_m2"]["type"] == "number"
    assert props["updated_at"] == {**props["updated_at"], "type": "string", "format": "date-time"}
    assert "status" in props and "volunteer_hours" in props
    assert "visibility" not in props and "stewards" not in props


def test_single_feature_and_hidden_ones(client, db):
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    r = client.get(f"/ogc/collections/restored_land/items/{land.id}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["id"] == land.id and body["properties"]["name"] == land.name
    assert {ln["rel"] for ln in body["links"]} >= {"self", "alternate", "collection"}
    home = db.scalars(select(Commons).where(Commons.external_id == "demo:home-0")).one()
    assert client.get(f"/ogc/collections/commons/items/{home.id}").status_code == 404
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    assert client.get(f"/ogc/collections/restored_land/items/{garden.id}").status_code == 404
    assert client.get("/ogc/collections/commons/items/abc").status_code == 404


def test_html_by_f_and_by_accept(client):
    r = client.get("/ogc/collections/commons/items?f=html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Terrasses du Rocher" in r.text
    r = client.get(
        "/ogc/collections/commons/items",
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert r.headers["content-type"].startswith("text/html")
    r = client.get("/ogc/collections/commons/items", headers={"Accept": "application/geo+json"})
    assert r.headers["content-type"] == "application/geo+json"
    for path in (
        "/ogc",
        "/ogc/conformance",
        "/ogc/collections",
        "/ogc/collections/gardens",
        "/ogc/collections/gardens/queryables",
        "/ogc/api",
    ):
        assert client.get(path + "?f=html").headers["content-type"].startswith("text/html"), path


def test_etag_304_head_and_cors(client):
    r = client.get("/ogc/collections/commons/items?limit=5")
    etag = r.headers["etag"]
    # weak: the page holds the second it was made (timeStamp), not part of its validator
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', etag) and r.headers["access-control-allow-origin"] == "*"
    again = client.get("/ogc/collections/commons/items?limit=5", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/ogc/collections/commons/items?limit=6", headers={"If-None-Match": etag})
    assert other.status_code == 200
    head = client.head("/ogc/collections/commons/items?limit=5")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    assert int(head.headers["content-length"]) == len(r.content)
    pre = client.options(
        "/ogc/collections/commons/items",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
    )
    assert pre.status_code == 204 and "GET" in pre.headers["access-control-allow-methods"]


def test_an_items_page_keeps_its_etag_when_the_second_changes(client, monkeypatch):
    """The items page's timeStamp changes every second; its ETag follows the features and links
    only, so a client's If-None-Match matches later too (it never did once a second had passed)."""
    from datetime import datetime as real

    from api.routers import ogc

    clock = iter(real(2026, 11, 29, 12, 0, s, tzinfo=UTC) for s in range(60))

    class Clock(real):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return next(clock)

    monkeypatch.setattr(ogc, "datetime", Clock)
    url = "/ogc/collections/commons/items?limit=5"
    first = client.get(url)
    later = client.get(url)
    assert first.json()["timeStamp"] != later.json()["timeStamp"]
    assert first.headers["etag"] == later.headers["etag"]
    assert client.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    big = "/ogc/collections/commons/items?limit=1000"
    zipped = client.get(big, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    again = client.get(big, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]})
    assert again.status_code == 304
    other = client.get("/ogc/collections/commons/items?limit=6", headers={"If-None-Match": first.headers["etag"]})
    assert other.status_code == 200


def test_large_answers_are_gzipped_when_asked(client):
    r = client.get("/ogc/collections/commons/items?limit=1000", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip"
    assert r.json()["numberReturned"] > 20  # httpx decodes it


def test_openapi_lists_limits_and_filter_languages_for_clients(client):
    r = client.get("/ogc/api")
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    params = doc["components"]["parameters"]
    assert (
        params["limit"]["schema"]["maximum"] == 10_000
        and params["limit"]["schema"]["default"] == 10
    )
    assert set(params["filter-lang"]["schema"]["enum"]) == {"cql2-text", "cql-text"}
    assert "/collections/{collectionId}/items" in doc["paths"]


def test_items_bbox_and_paging_use_the_indexes(db):
    """With enough rows, a bbox page filters on the GiST index of the bare column (pushed into the union)."""
    from commons_map.publish import service
    from commons_map.publish.cql2 import Params

    add_public_parcels(db, 6000)
    params = Params()
    q = service.ItemsQuery(
        COLLECTIONS["restored_land"],
        limit=100,
        bbox=service.parse_bbox("5.01,44.51,5.02,44.52"),
        cursor=10,
    )
    sql = service.items_sql(q, params)
    plan = "\n".join(
        r[0]
        for r in db.execute(
            text("EXPLAIN " + sql),
            {"nodata_fr": "", "nodata_en": "", **params.values},
        )
    )
    assert "idx_commons_geom" in plan, plan
    assert "Seq Scan on commons c\n" not in plan
    page = service.items(db, query=q)
    assert 0 < len(page.features) <= 100


def test_items_name_their_kind_in_both_languages(client):
    """Popups showed raw kind codes ("water_point"): items carry the kind's names."""
    feats = client.get("/ogc/collections/tools_and_places/items?limit=100").json()["features"]
    assert feats
    for f in feats:
        p = f["properties"]
        assert p["kind_label_fr"] and p["kind_label_en"] and p["kind_label_fr"] != p["kind"]
