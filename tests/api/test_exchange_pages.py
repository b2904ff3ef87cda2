"""The members' pages of the exchange network: browse, post, reply, accept, record and confirm done."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from commons_map.exchange.models import Exchange, Post
from commons_map.ledger import service as ledger
from commons_map.people.models import Member
from tests.api.test_pages import sign_in


def _client(app, username: str) -> tuple[TestClient, str]:
    c = TestClient(app)
    return c, sign_in(c, username)


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_post_reply_accept_confirm_through_the_pages(app, db):
    chloe, ct = _client(app, "chloe")
    samir, st = _client(app, "samir")
    form = chloe.get("/app/exchange/new")
    assert form.status_code == 200 and "Publier une offre ou un besoin" in form.text
    r = chloe.post("/app/exchange/new", data={"kind": "offer", "title": "Affûtage de couteaux", "category": "reparer",
                                              "minutes": "30", "when": "le soir", "visibility": "members",
                                              "csrf_token": ct}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    post_url = r.headers["location"].split("?")[0]
    listing = samir.get("/app/exchange", params={"q": "affutage couteau"})
    assert "Affûtage de couteaux" in listing.text and 'id="exchange-geojson"' in listing.text
    page = samir.get(post_url)
    assert "Répondre" in page.text
    r = samir.post(post_url + "/reply", data={"minutes": "30", "message": "Demain ?", "csrf_token": st},
                   follow_redirects=False)
    assert r.status_code == 303
    ex = db.scalars(select(Exchange).order_by(Exchange.id.desc())).first()
    assert ex.state == "proposed"
    assert chloe.post(f"/app/exchange/exchanges/{ex.id}/accept", data={"csrf_token": ct},
                      follow_redirects=False).status_code == 303
    chloe.post(f"/app/exchange/exchanges/{ex.id}/done", data={"csrf_token": ct}, follow_redirects=False)
    mine = samir.get("/app/exchange/mine")
    assert "Fait, en attente de confirmation" in mine.text and "Confirmer" in mine.text
    provider = db.scalars(select(Member).where(Member.username == "chloe")).one()
    before = ledger.balance(db, member=provider)
    assert samir.post(f"/app/exchange/exchanges/{ex.id}/done", data={"csrf_token": st},
                      follow_redirects=False).status_code == 303
    assert ledger.balance(db, member=provider) == before + 30
    assert "Payé" in samir.get("/app/exchange/mine").text
    again = samir.post(f"/app/exchange/exchanges/{ex.id}/done", data={"csrf_token": st}, follow_redirects=False)
    assert again.status_code == 409 and "déjà confirmé et payé" in again.text


def test_bad_post_shows_errors_next_to_fields_and_writes_nothing(app, db):
    c, token = _client(app, "oksana")  # an English-speaking member
    before = _count(db, Post)
    r = c.post("/app/exchange/new", data={"kind": "offer", "title": "", "category": "", "minutes": "-5",
                                          "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422
    for name in ("title", "category", "minutes"):
        assert re.search(rf'id="{name}-error"', r.text), name
    assert "Between 1 and 120 characters" in r.text
    assert _count(db, Post) == before


def test_reply_to_own_post_refused_on_the_page(app, db):
    c, token = _client(app, "hugo")
    post = db.scalars(select(Post).join(Member, Member.id == Post.author_id).where(Member.username == "hugo")).first()
    before = _count(db, Exchange)
    r = c.post(f"/app/exchange/posts/{post.id}/reply", data={"minutes": "30", "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 422 and "propre annonce" in r.text
    assert _count(db, Exchange) == before
