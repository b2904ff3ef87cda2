"""The exchange API's contracts, and every bad input of issue 14 point 8: a 4xx naming the field, nothing written."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from commons_map.demo.load import offset
from commons_map.exchange.models import Exchange, ExchangeHistory, ExchangeMessage, Post
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.people.models import Member
from commons_map.register.service import APPROXIMATE_GRID_DEG

P = "/api/v1/exchange"
EN = {"Accept-Language": "en"}


def _m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _counts(db) -> tuple[int, ...]:
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Post, Exchange, ExchangeMessage,
                                                                          ExchangeHistory, Transfer))


@pytest.fixture
def pair(db):
    return _m(db, "chloe"), _m(db, "samir")


def _new_post(client, auth, who, **kw) -> dict:
    body = {"kind": "offer", "title": "Réparation de vélos", "category": "reparer", "minutes": 60} | kw
    r = client.post(f"{P}/posts", json=body, headers=auth(who))
    assert r.status_code == 201, r.text
    return r.json()


def test_posts_are_a_geojson_feature_collection(client, auth, people, pair):
    provider, _ = pair
    lon, lat = offset(230, -140)
    placed = _new_post(client, auth, provider, place={"type": "Point", "coordinates": [lon, lat]},
                       visibility="public", when="le samedi matin")
    bare = _new_post(client, auth, provider, title="Cours de vélo", category="apprendre", visibility="public")
    assert placed["type"] == "Feature" and placed["geometry"]["coordinates"] == pytest.approx([lon, lat])
    r = client.get(f"{P}/posts", params={"q": "reparation velo", "near": f"{lon},{lat}", "distance": 1500})
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "FeatureCollection"
    [feature] = [f for f in body["features"] if f["id"] == placed["id"]]
    snapped = [round(v / APPROXIMATE_GRID_DEG) * APPROXIMATE_GRID_DEG for v in (lon, lat)]
    assert feature["geometry"] == {"type": "Point", "coordinates": pytest.approx(snapped)}
    assert feature["properties"]["author"] is None and feature["properties"]["when"] == "le samedi matin"
    got = client.get(f"{P}/posts/{bare['id']}").json()
    assert got["geometry"] is None and got["properties"]["title"] == "Cours de vélo"


def test_reply_accept_done_confirm_pays_once(client, auth, db, pair):
    provider, receiver = pair
    post = _new_post(client, auth, provider, minutes=45)
    r = client.post(f"{P}/posts/{post['id']}/replies", json={"minutes": 40, "message": "Mardi ?"},
                    headers=auth(receiver))
    assert r.status_code == 201, r.text
    ex = r.json()
    assert (ex["state"], ex["minutes"], ex["provider"]["id"], ex["receiver"]["id"]) == (
        "proposed", 40, provider.id, receiver.id)
    assert ex["messages"][0]["body"] == "Mardi ?"
    url = f"{P}/exchanges/{ex['id']}"
    assert client.post(f"{url}/accept", headers=auth(provider)).json()["state"] == "accepted"
    recorded = client.post(f"{url}/done", headers=auth(provider)).json()
    assert recorded["state"] == "done" and recorded["awaiting"] == "receiver_confirmation" and not recorded["paid"]
    before = ledger.balance(db, member=provider)
    paid = client.post(f"{url}/done", headers=auth(receiver)).json()
    assert paid["paid"] and paid["paid_by"] == "receiver" and ledger.balance(db, member=provider) == before + 40
    counts = _counts(db)
    again = client.post(f"{url}/done", headers={**auth(receiver), **EN})
    assert again.status_code == 409 and again.json()["code"] == "exchange.already_paid"
    assert _counts(db) == counts
    mine = client.get(f"{P}/exchanges", headers=auth(receiver)).json()
    assert ex["id"] in [e["id"] for e in mine]


def test_limit_409_says_by_how_many_minutes(client, auth, db, people, pair):
    provider, receiver = pair
    account = ledger.ensure_member_account(db, member=receiver)
    ledger.set_limits(db, actor=people.coordinator, account_id=account.id, min_minutes=account.balance - 10,
                      max_minutes=None)
    post = _new_post(client, auth, provider, minutes=70)
    ex = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(receiver)).json()
    client.post(f"{P}/exchanges/{ex['id']}/accept", headers=auth(provider))
    counts = _counts(db)
    r = client.post(f"{P}/exchanges/{ex['id']}/done", headers={**auth(receiver), **EN})
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "exchange.limit_below" and body["params"]["short_minutes"] == 60
    assert "1 h" in body["detail"] and "solidarity fund" in body["detail"]
    fr = client.post(f"{P}/exchanges/{ex['id']}/done", headers={**auth(receiver), "Accept-Language": "fr"})
    assert "fonds de solidarité" in fr.json()["detail"]
    assert _counts(db) == counts
    assert client.get(f"{P}/exchanges/{ex['id']}", headers=auth(receiver)).json()["state"] == "accepted"


BAD_POSTS = [
    ({"minutes": -30}, "minutes"), ({"minutes": 0}, "minutes"), ({"minutes": 10**6}, "minutes"),
    ({"minutes": "lots"}, "minutes"), ({"category": "magie"}, "category"), ({"kind": "trade"}, "kind"),
    ({"title": ""}, "title"), ({"title": "x" * 500}, "title"), ({"visibility": "world"}, "visibility"),
    ({"place": {"type": "Point", "coordinates": [5.2]}}, "place"), ({"expires_in_days": 0}, "expires_in_days"),
    ({"starts_on": "2026-12-10", "ends_on": "2026-12-01"}, "ends_on"),
]


@pytest.mark.parametrize(("change", "name"), BAD_POSTS, ids=[n for _, n in BAD_POSTS])
def test_bad_posts_name_the_field_and_write_nothing(client, auth, db, pair, change, name):
    counts = _counts(db)
    body = {"kind": "offer", "title": "Réparation", "category": "reparer", "minutes": 60} | change
    r = client.post(f"{P}/posts", json=body, headers={**auth(pair[0]), **EN})
    assert r.status_code == 422, r.text
    assert name in [e["field"] for e in r.json()["errors"]]
    assert _counts(db) == counts


def test_bad_replies_and_actions_write_nothing(client, auth, db, people, pair):
    provider, receiver = pair
    post = _new_post(client, auth, provider)
    members_post = _new_post(client, auth, provider, title="Garde de poules", category="garder")
    ex = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(receiver)).json()
    counts = _counts(db)

    def check(method: str, url: str, who: Member | None, status: int, field: str | None, **kw) -> None:
        r = client.request(method, url, headers={**auth(who), **EN}, **kw)
        assert r.status_code == status, (url, r.text)
        if field:
            assert field in [e["field"] for e in r.json()["errors"]], r.text
        assert _counts(db) == counts, url

    check("POST", f"{P}/posts/{post['id']}/replies", provider, 422, "post_id", json={})  # own post
    for minutes in (-5, 0, 5000):
        check("POST", f"{P}/posts/{members_post['id']}/replies", receiver, 422, "minutes", json={"minutes": minutes})
    check("POST", f"{P}/posts/{members_post['id']}/replies", people.outsider, 404, "post_id", json={})
    check("GET", f"{P}/posts/{members_post['id']}", None, 404, "post_id")
    check("GET", f"{P}/posts/{members_post['id']}", people.outsider, 404, "post_id")
    check("POST", f"{P}/exchanges/{ex['id']}/accept", receiver, 403, "exchange_id")  # the proposer
    check("POST", f"{P}/exchanges/{ex['id']}/done", receiver, 409, "exchange_id")  # not accepted yet
    for action in ("accept", "done", "cancel", "dispute"):
        check("POST", f"{P}/exchanges/{ex['id']}/{action}", people.other_steward, 404, "exchange_id")
    check("POST", f"{P}/exchanges/{ex['id']}/messages", receiver, 422, "body", json={"body": "  "})
    # Expired, then archived posts take no replies.
    db.execute(Post.__table__.update().where(Post.id == members_post["id"]).values(
        expires_at=func.now() - func.make_interval(0, 0, 0, 1)))
    db.expire_all()
    check("POST", f"{P}/posts/{members_post['id']}/replies", receiver, 409, "post_id", json={})
    r = client.patch(f"{P}/posts/{members_post['id']}", json={"archived": True}, headers=auth(provider))
    assert r.status_code == 200 and r.json()["properties"]["archived"] is True
    counts = _counts(db)
    check("POST", f"{P}/posts/{members_post['id']}/replies", receiver, 404, "post_id", json={})
    # Bad search parameters.
    for params, field in (({"near": "5.2"}, "near"), ({"near": "5.2,44.7", "distance": -1}, "distance"),
                          ({"kind": "trade"}, "kind"), ({"category": "magie"}, "category"),
                          ({"since": "hier"}, "since"), ({"since": "last_visit"}, "since")):
        check("GET", f"{P}/posts", None, 422, field, params=params)


def test_figures_json_and_csv(client, auth, db, pair):
    provider, receiver = pair
    post = _new_post(client, auth, provider, category="jardiner", minutes=50)
    ex = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(receiver)).json()
    client.post(f"{P}/exchanges/{ex['id']}/accept", headers=auth(provider))
    before = client.get(f"{P}/figures", headers=auth(provider)).json()
    client.post(f"{P}/exchanges/{ex['id']}/done", headers=auth(receiver))
    after = client.get(f"{P}/figures", headers=auth(provider)).json()
    assert after["minutes_exchanged"] == before["minutes_exchanged"] + 50
    garden = {c["category"]: c["minutes"] for c in after["per_category"]}
    assert garden["jardiner"] == {c["category"]: c["minutes"] for c in before["per_category"]}.get("jardiner", 0) + 50
    assert after["distinct_pairs"] >= 1 and after["members_active"] >= 2
    r = client.get(f"{P}/figures", params={"format": "csv"}, headers=auth(provider))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["section", "key", "minutes", "exchanges"]
    assert ["total", "minutes_exchanged", str(after["minutes_exchanged"]), ""] in rows


@pytest.mark.parametrize("q", ["l'eau", "it''s", "'", "a & b | !c", "\"vélo", "<->", ":*", "velo:*AB", "x" * 200,
                               "é" * 3, "\\", "(", "-", "or", "d'enfants", "\u0000"])
def test_odd_words_never_crash_the_search(client, q):
    r = client.get(f"{P}/posts", params={"q": q})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["errors"][0]["field"] == "q"


def test_a_nul_character_is_refused_naming_the_field(client, auth, db, pair):
    counts = _counts(db)
    r = client.post(f"{P}/posts", json={"kind": "offer", "title": "Vélo\u0000", "category": "reparer", "minutes": 30},
                    headers={**auth(pair[0]), **EN})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "title"
    assert _counts(db) == counts


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/posts", {"category": "re\u0000parer"}, "category"),
])
def test_nul_in_filters_is_refused(client, path, params, field):
    r = client.get(f"{P}{path}", params=params)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_nul_in_a_gift_key_is_refused(client, auth, db, pair):
    counts = _counts(db)
    r = client.post(f"{P}/solidarity/gifts", json={"minutes": 10, "idempotency_key": "k\u0000"}, headers=auth(pair[0]))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "idempotency_key"
    assert _counts(db) == counts
