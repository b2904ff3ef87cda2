"""Partner maps through the API and on the public map: coordinators list partners by their OGC API,
bad ones are refused with the reason (in French and English) and nothing is written; the map shows
the partners' layers from our own copy, their name, licence and link, and says when one is down."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from commons_map.partners import service
from commons_map.partners.models import Partner, PartnerLayer
from tests.commons_map.partners_helpers import TEST_LIMITS

API = "/api/v1/partners"


@pytest.fixture(autouse=True)
def _small_bounds(monkeypatch):
    """The stub's slow and oversize answers fail within a second or two."""
    monkeypatch.setattr(service, "limits_from", lambda settings: TEST_LIMITS)


def count(db) -> tuple[int, int]:  # noqa: ANN001
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Partner, PartnerLayer))


def add(client, auth, who, url: str, **body):  # noqa: ANN001, ANN003, ANN201
    return client.post(API, json={"url": url, **body}, headers=auth(who))


def test_a_coordinator_lists_a_partner_and_it_is_read_at_once(client, auth, people, partner_stub, db):
    before = [x["id"] for x in client.get(API, headers=auth(people.member)).json()]  # the demo's partner
    assert len(before) == 1
    r = add(client, auth, people.coordinator, partner_stub.url("/good/"))
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["name"] == "Vergers du Crestois" and p["licence"] == "CC-BY-4.0" and p["status"] == "ok"
    assert p["link"] == partner_stub.url("/good/")
    assert [(x["collection"], x["features"], x["licence"]) for x in p["layers"]] == [
        ("vergers", 4, "CC-BY-4.0"), ("haies", 1, "ODbL-1.0")]
    listed = client.get(API, headers=auth(people.member)).json()
    assert [x["id"] for x in listed] == [*before, p["id"]]
    # the outsider's cooperative has no partners; it does not see ours
    assert client.get(API, headers=auth(people.outsider)).json() == []

    geo = client.get(f"/maps/partners/{p['id']}/vergers.geojson")
    assert geo.status_code == 200 and geo.headers["content-type"] == "application/geo+json"
    assert [f["id"] for f in geo.json()["features"]] == [1, 2, 3, 6]
    assert geo.headers["access-control-allow-origin"] == "*" and "last-modified" in geo.headers
    again = client.get(f"/maps/partners/{p['id']}/vergers.geojson", headers={"If-None-Match": geo.headers["etag"]})
    assert again.status_code == 304
    assert client.get(f"/maps/partners/{p['id']}/nothing.geojson").json()["code"] == "partners.no_layer"


def test_the_public_map_shows_partner_layers_from_our_copy_without_calling_the_partner(client, auth, people,
                                                                                    partner_stub):
    p = add(client, auth, people.coordinator, partner_stub.url("/good/"), name="Vergers & <Haies>").json()
    hits = sum(partner_stub.hits.values())
    for lang, heading in (("fr", "Initiatives partenaires"), ("en", "Partner initiatives")):
        page = client.get(f"/maps/public?lang={lang}&basemap=none").text
        assert heading in page
        assert f"/maps/partners/{p['id']}/vergers.geojson" in page and f"/maps/partners/{p['id']}/haies.geojson" in page
        assert "Vergers &amp; &lt;Haies&gt;" in page and "<Haies>" not in page  # escaped in the HTML and the JS
        assert f'href="{partner_stub.url("/good/")}"' in page and "CC-BY-4.0" in page and "ODbL-1.0" in page
        assert 'data-available="true"' in page and 'class="lg-unavailable"' not in page
    assert sum(partner_stub.hits.values()) == hits, "the map page called the partner"


def test_a_partner_that_goes_down_is_shown_unavailable_with_its_last_copy(client, auth, people, partner_stub):
    p = add(client, auth, people.coordinator, partner_stub.url("/good/")).json()
    partner_stub.broken.add("/good")
    try:
        r = client.post(f"{API}/{p['id']}/refresh", headers={**auth(people.coordinator), "Accept-Language": "fr"})
    finally:
        partner_stub.broken.discard("/good")
    assert r.status_code == 200
    down = r.json()
    assert down["status"] == "unavailable" and down["error_code"] == "partners.http_status"
    assert "a répondu avec le statut HTTP 503" in down["error"]
    assert [x["features"] for x in down["layers"]] == [4, 1]  # the last good copy is kept
    assert len(client.get(f"/maps/partners/{p['id']}/vergers.geojson").json()["features"]) == 4
    fr = client.get("/maps/public?lang=fr&basemap=none").text
    en = client.get("/maps/public?lang=en&basemap=none").text
    assert 'data-available="false"' in fr and "(indisponible, copie du " in fr
    assert "(unavailable, copy of " in en
    up = client.post(f"{API}/{p['id']}/refresh", headers=auth(people.coordinator)).json()
    assert up["status"] == "ok" and up["error"] is None


def test_a_partner_never_read_is_shown_unavailable_without_layers(db, people, client, partner_stub):
    db.add(Partner(cooperative_id=people.coop.id, url="http://partner.invalid/ogc", name="Jardins du Diois",
                   licence="CC0-1.0", link="http://partner.invalid/ogc", status="unavailable",
                   error_code="partners.timeout", error_params={"url": "x", "seconds": 10}))
    db.flush()
    en = client.get("/maps/public?lang=en&basemap=none").text
    assert "Jardins du Diois" in en and "(unavailable)" in en and "partner.invalid/ogc" in en


@pytest.mark.parametrize(("path", "code", "en", "fr"), [
    ("/notogc/", "partners.not_ogc_api", "is not the landing page of an OGC API", "n'est pas la page d'accueil"),
    ("/html/", "partners.bad_json", "did not answer with JSON", "n'a pas répondu en JSON"),
    ("/garbage/", "partners.bad_json", "did not answer with JSON", "n'a pas répondu en JSON"),
    ("/toprivate/", "partners.address_refused", "10.1.2.3", "10.1.2.3"),
    ("/toloopback/", "partners.address_refused", "a private, loopback or reserved address",
     "une adresse privée, locale ou réservée"),
    ("/loop/", "partners.redirect_loop", "redirects in a loop", "redirige en boucle"),
    ("/slow/", "partners.timeout", "took longer than", "a mis plus de"),
    ("/oversize/", "partners.too_large", "is larger than", "dépasse"),
    ("/evilitems/", "partners.address_refused", "127.0.0.1", "127.0.0.1"),
])
def test_a_bad_partner_url_is_refused_with_the_reason_and_nothing_is_written(client, auth, people, partner_stub, db,
                                                                            path, code, en, fr):
    before = count(db)
    bystander = sum(partner_stub.bystander_hits.values())
    for lang, words in (("en", en), ("fr", fr)):
        r = client.post(API, json={"url": partner_stub.url(path)},
                        headers={**auth(people.coordinator), "Accept-Language": lang})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == code and body["errors"][0]["field"] == "url"
        assert words in body["detail"], body["detail"]
    assert count(db) == before
    assert sum(partner_stub.bystander_hits.values()) == bystander


def test_a_partner_without_a_licence_needs_one(client, auth, people, partner_stub, db):
    before = count(db)
    r = add(client, auth, people.coordinator, partner_stub.url("/nolicence/"))
    assert r.status_code == 422 and r.json()["code"] == "partners.licence_missing"
    assert r.json()["errors"][0]["field"] == "licence" and count(db) == before
    ok = add(client, auth, people.coordinator, partner_stub.url("/nolicence/"), licence="CC-BY-SA-4.0")
    assert ok.status_code == 201
    assert [x["licence"] for x in ok.json()["layers"]] == ["CC-BY-SA-4.0", "ODbL-1.0"]  # a layer's own wins


@pytest.mark.parametrize("url", ["ftp://example.org/ogc", "javascript:alert(1)", "http://u:p@example.org/ogc", ""])
def test_a_url_that_is_not_http_is_refused(client, auth, people, db, url):
    before = count(db)
    r = add(client, auth, people.coordinator, url)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url"
    assert count(db) == before


def test_the_same_partner_twice_is_a_conflict(client, auth, people, partner_stub, db):
    assert add(client, auth, people.coordinator, partner_stub.url("/good/")).status_code == 201
    before = count(db)
    r = add(client, auth, people.coordinator, partner_stub.url("/good/#again"))
    assert r.status_code == 409 and r.json()["code"] == "partners.already_listed" and count(db) == before


def test_only_coordinators_of_the_cooperative_add_refresh_and_remove(client, auth, people, partner_stub, db):
    before = count(db)
    assert add(client, auth, None, partner_stub.url("/good/")).status_code == 401
    assert add(client, auth, people.member, partner_stub.url("/good/")).status_code == 403
    assert count(db) == before
    p = add(client, auth, people.coordinator, partner_stub.url("/good/")).json()
    assert client.delete(f"{API}/{p['id']}", headers=auth(people.member)).status_code == 403
    r = client.delete(f"{API}/{p['id']}", headers=auth(people.outsider))
    assert r.status_code == 404 and r.json()["code"] == "partners.not_found"
    assert client.post(f"{API}/{p['id']}/refresh", headers=auth(people.outsider)).status_code == 404
    assert client.delete(f"{API}/{p['id']}", headers=auth(people.coordinator)).status_code == 204
    assert client.get(f"/maps/partners/{p['id']}/vergers.geojson").status_code == 404
    assert count(db) == before


def test_the_static_site_carries_the_partner_layers_beside_it(db, people, partner_stub, tmp_path):
    from maps.site import build_static_site

    partner = service.add_partner(db, actor=people.coordinator, cooperative=people.coop,
                                  url=partner_stub.url("/good/"), limits=TEST_LIMITS)
    counts = build_static_site(db, tmp_path, licence="ODbL-1.0", min_zoom=12, max_zoom=12, basemap=None,
                               archive_max_zoom=None)
    files = sorted(k for k in counts if k.startswith(f"data/partners/{partner.id}-"))
    assert len(files) == 2 and all((tmp_path / f).stat().st_size > 0 for f in files)
    assert len([k for k in counts if k.startswith("data/partners/")]) == 4  # and the demo partner's two layers
    page = (tmp_path / "index.html").read_text()
    assert f'"{files[0]}"' in page and "Vergers du Crestois" in page and "/maps/partners/" not in page


def test_the_demo_lists_a_partner_whose_layers_the_public_map_shows(client, db, people):
    from commons_map.demo.network import PARTNER, PARTNER_URL

    demo = db.scalars(select(Partner).where(Partner.url == PARTNER_URL)).one()
    assert demo.cooperative_id == people.coop.id and demo.status == "ok" and demo.licence == "ODbL-1.0"
    page = client.get("/maps/public?lang=fr&basemap=none").text
    assert "Jardins partagés du Diois" in page
    for collection, _title, places in PARTNER:
        geo = client.get(f"/maps/partners/{demo.id}/{collection}.geojson").json()
        assert [f["properties"]["name"] for f in geo["features"]] == [p[0] for p in places]
