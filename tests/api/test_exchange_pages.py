"""The members' pages of the exchange network: browse, post (with a place), reply, accept, record and
confirm done, an exchange's thread and dispute, the solidarity fund; bad input on every form."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from commons_map.exchange import service
from commons_map.exchange.models import Exchange, ExchangeMessage, Post, Support
from commons_map.exchange.schemas import PostIn
from commons_map.ledger import service as ledger
from commons_map.notify.models import Notification
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
    # chloe is told, and the notification opens the exchange's own page (thread and actions)
    told = db.scalars(select(Notification).where(Notification.member_id == ex.provider_id,
                                                 Notification.kind == "exchange")
                      .order_by(Notification.id.desc())).first()
    assert told is not None and told.link == f"/app/exchange/exchanges/{ex.id}"
    opened = chloe.get(told.link)
    assert opened.status_code == 200 and "Affûtage de couteaux" in opened.text and "Accepter" in opened.text
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


# --- the place of a post, an exchange's page (thread, dispute), the solidarity fund ----------------



def _member(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _new_post_form(token: str, **kw) -> dict:
    return {"kind": "offer", "title": "Taille de haies", "category": "jardiner", "minutes": "60",
            "visibility": "members", "csrf_token": token} | kw


def test_a_post_placed_on_the_map_is_snapped_for_others_unless_exact(app, db):
    chloe, ct = _client(app, "chloe")
    lat, lon = "44.698123", "5.193456"
    r = chloe.post("/app/exchange/new", data=_new_post_form(ct, lat=lat, lon=lon.replace(".", ",")),
                   follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    post_id = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])
    post = db.get(Post, post_id)
    assert post.exact_place is False
    samir, _ = _client(app, "samir")
    seen = service.post_feature(db, actor=_member(db, "samir"), post=post)["geometry"]["coordinates"]
    assert seen == [5.195, 44.7]  # the 0.005-degree grid, about 500 m
    page = unescape(samir.get(f"/app/exchange/posts/{post_id}").text)
    assert 'id="post-geojson"' in page and "5.195" in page and "5.193456" not in page
    assert "Le lieu, à 500 m près environ." in page
    own = unescape(chloe.get(f"/app/exchange/posts/{post_id}").text)
    assert "5.193456" in own and "Les autres ne voient ce lieu qu'à 500 m près environ." in own

    r = chloe.post("/app/exchange/new", data=_new_post_form(ct, title="Greffe", lat=lat, lon=lon, exact_place="on"),
                   follow_redirects=False)
    exact = db.get(Post, int(r.headers["location"].split("?")[0].rsplit("/", 1)[1]))
    assert exact.exact_place is True
    assert "5.193456" in samir.get(f"/app/exchange/posts/{exact.id}").text


def test_the_new_post_form_explains_the_snapping(app):
    c, _ = _client(app, "oksana")
    page = unescape(c.get("/app/exchange/new").text)
    assert "Others see the place only within about 500 m" in page
    assert 'name="exact_place"' in page and "Show the exact place" in page
    assert 'data-place-picker' in page and "/app/static/exchange.js" in page


@pytest.mark.parametrize(("lat", "lon", "bad"), [
    ("95", "5.19", ["lat"]), ("44.7", "abc", ["lon"]), ("44.7", "", ["lon"]), ("", "5.19", ["lat"]),
    ("nan", "inf", ["lat", "lon"]), ("1e999", "5", ["lat"]),
])
def test_a_bad_place_is_shown_next_to_its_field_and_nothing_is_written(app, db, lat, lon, bad):
    c, token = _client(app, "oksana")
    before = _count(db, Post)
    r = c.post("/app/exchange/new", data=_new_post_form(token, lat=lat, lon=lon), follow_redirects=False)
    assert r.status_code == 422
    for name in ("lat", "lon"):
        assert (f'id="{name}-error"' in r.text) == (name in bad), name
    assert "latitude (-90 to 90)" in r.text
    assert f'value="{lat}"' in r.text  # what was typed is kept
    assert _count(db, Post) == before


def _open_exchange(db, provider: str = "pierre", receiver: str = "samir", accepted: bool = True):
    p, r = _member(db, provider), _member(db, receiver)
    post = service.create_post(db, actor=p, data=PostIn(kind="offer", title="Couture de rideaux",
                                                        category="reparer", minutes=45))
    ex = service.reply(db, actor=r, post_id=post.id, message="Bonjour !")
    if accepted:
        service.accept(db, actor=p, exchange_id=ex.id)
    db.flush()
    return ex


def _messages(db, exchange_id: int) -> list[str]:
    return list(db.scalars(select(ExchangeMessage.body).where(ExchangeMessage.exchange_id == exchange_id)
                           .order_by(ExchangeMessage.id)))


def test_the_thread_of_an_exchange_is_read_and_written_on_its_page(app, db):
    ex = _open_exchange(db)
    samir, st = _client(app, "samir")
    page = samir.get(f"/app/exchange/exchanges/{ex.id}")
    assert page.status_code == 200 and "Bonjour !" in page.text and "Couture de rideaux" in page.text
    r = samir.post(f"/app/exchange/exchanges/{ex.id}/messages", data={"body": "Jeudi 18 h ?", "csrf_token": st},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("#thread")
    pierre, _ = _client(app, "pierre")
    assert "Jeudi 18 h ?" in pierre.get(f"/app/exchange/exchanges/{ex.id}").text
    assert _messages(db, ex.id) == ["Bonjour !", "Jeudi 18 h ?"]
    # my exchanges link to the exchange's page and count its messages
    assert f"/app/exchange/exchanges/{ex.id}" in samir.get("/app/exchange/mine").text


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001, "a\x00b"])
def test_a_bad_message_is_shown_next_to_the_field_and_nothing_is_written(app, db, body):
    ex = _open_exchange(db)
    samir, st = _client(app, "samir")
    r = samir.post(f"/app/exchange/exchanges/{ex.id}/messages", data={"body": body, "csrf_token": st},
                   follow_redirects=False)
    assert r.status_code == 422 and 'id="body-error"' in r.text and 'aria-invalid="true"' in r.text
    assert _messages(db, ex.id) == ["Bonjour !"]


def test_someone_outside_the_exchange_neither_reads_nor_writes_it(app, db):
    ex = _open_exchange(db)
    lucas, lt = _client(app, "lucas")
    assert lucas.get(f"/app/exchange/exchanges/{ex.id}").status_code == 404
    r = lucas.post(f"/app/exchange/exchanges/{ex.id}/messages", data={"body": "Coucou", "csrf_token": lt},
                   follow_redirects=False)
    assert r.status_code == 404
    r = lucas.post(f"/app/exchange/exchanges/{ex.id}/dispute", data={"reason": "Non", "csrf_token": lt},
                   follow_redirects=False)
    assert r.status_code == 404
    assert _messages(db, ex.id) == ["Bonjour !"] and ex.state == "accepted"


def test_a_dispute_with_its_reason_and_its_state(app, db):
    ex = _open_exchange(db)
    pierre, pt = _client(app, "pierre")
    assert "Contester cet échange" in pierre.get(f"/app/exchange/exchanges/{ex.id}").text
    r = pierre.post(f"/app/exchange/exchanges/{ex.id}/dispute",
                    data={"reason": "Rendez-vous manqué deux fois.", "csrf_token": pt}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(ex)
    assert ex.state == "disputed" and _messages(db, ex.id)[-1] == "Rendez-vous manqué deux fois."
    page = unescape(pierre.get(f"/app/exchange/exchanges/{ex.id}").text)
    assert "Contesté" in page and "personne n'est payé automatiquement" in page
    assert "Contester cet échange" not in page  # no second dispute form
    again = pierre.post(f"/app/exchange/exchanges/{ex.id}/dispute", data={"reason": "", "csrf_token": pt},
                        follow_redirects=False)
    assert again.status_code == 409 and "disputed" in unescape(again.text)


def test_a_bad_dispute_reason_names_the_field_and_writes_nothing(app, db):
    ex = _open_exchange(db)
    pierre, pt = _client(app, "pierre")
    r = pierre.post(f"/app/exchange/exchanges/{ex.id}/dispute", data={"reason": "x" * 2001, "csrf_token": pt},
                    follow_redirects=False)
    assert r.status_code == 422 and 'id="reason-error"' in r.text and "Entre 0 et 2000 caractères" in unescape(r.text)
    db.refresh(ex)
    assert ex.state == "accepted" and _messages(db, ex.id) == ["Bonjour !"]


def test_a_proposed_exchange_cannot_be_disputed_yet(app, db):
    ex = _open_exchange(db, accepted=False)
    samir, st = _client(app, "samir")
    assert "Contester cet échange" not in samir.get(f"/app/exchange/exchanges/{ex.id}").text
    r = samir.post(f"/app/exchange/exchanges/{ex.id}/dispute", data={"reason": "Non", "csrf_token": st},
                   follow_redirects=False)
    assert r.status_code == 409 and "Impossible tant que" in unescape(r.text)
    db.refresh(ex)
    assert ex.state == "proposed"


def _oksana_support(db) -> Support:
    return db.scalars(select(Support).where(Support.member_id == _member(db, "oksana").id,
                                            Support.ended_at.is_(None))).one()


def test_who_sees_what_on_the_solidarity_fund_page(app, db):
    note = _oksana_support(db).note
    steward = unescape(_client(app, "yasmine")[0].get("/app/exchange/solidarity").text)
    assert "Membres soutenu·es" in steward and "Oksana Kovalenko" in steward and note in steward
    assert "Proposé par Camille Roux" in steward and "approuvé par Yasmine Benali" in steward
    oksana = unescape(_client(app, "oksana")[0].get("/app/exchange/solidarity").text)
    assert "Your needs are covered" in oksana and note not in oksana and "Supported members" not in oksana
    pierre = unescape(_client(app, "pierre")[0].get("/app/exchange/solidarity").text)
    assert "Oksana" not in pierre and note not in pierre and "Membres soutenu·es" not in pierre
    assert "Vos besoins sont couverts" not in pierre


def test_the_provider_sees_only_paid_by_the_fund(app, db):
    ex = _open_exchange(db, provider="pierre", receiver="oksana")
    oksana, ot = _client(app, "oksana")
    page = oksana.get(f"/app/exchange/exchanges/{ex.id}").text
    assert "Have the solidarity fund pay" in page
    r = oksana.post(f"/app/exchange/exchanges/{ex.id}/solidarity", data={"csrf_token": ot}, follow_redirects=False)
    assert r.status_code == 303
    assert oksana.post(f"/app/exchange/exchanges/{ex.id}/done", data={"csrf_token": ot},
                       follow_redirects=False).status_code == 303
    db.refresh(ex)
    assert ex.by_fund is True and ex.transfer_id is not None
    provider = unescape(_client(app, "pierre")[0].get(f"/app/exchange/exchanges/{ex.id}").text)
    assert "Payé par le fonds de solidarité" in provider
    assert _oksana_support(db).note not in provider and "soutien" not in provider.lower()


def test_stewards_propose_approve_with_four_eyes_and_end_a_support(app, db):
    fatou = _member(db, "fatou")
    camille, ct = _client(app, "camille")
    yasmine, yt = _client(app, "yasmine")
    r = camille.post("/app/exchange/solidarity/supports",
                     data={"member_id": str(fatou.id), "note": "Arrivée en octobre.", "csrf_token": ct},
                     follow_redirects=False)
    assert r.status_code == 303
    support = db.scalars(select(Support).where(Support.member_id == fatou.id, Support.ended_at.is_(None))).one()
    assert support.approved_at is None
    own = unescape(camille.get("/app/exchange/solidarity").text)
    assert "Vous l'avez proposé : un·e autre gardien·ne l'approuve." in own
    same = camille.post(f"/app/exchange/solidarity/supports/{support.id}/approve", data={"csrf_token": ct},
                        follow_redirects=False)
    assert same.status_code == 409 and "deuxième gardien" in unescape(same.text)
    db.refresh(support)
    assert support.approved_at is None
    fatou_page = unescape(_client(app, "fatou")[0].get("/app/exchange/solidarity").text)
    assert "Proposé, en attente d'un·e deuxième gardien·ne" in fatou_page
    assert yasmine.post(f"/app/exchange/solidarity/supports/{support.id}/approve", data={"csrf_token": yt},
                        follow_redirects=False).status_code == 303
    db.refresh(support)
    assert support.approved_by_id == _member(db, "yasmine").id
    assert "Vos besoins sont couverts" in _client(app, "fatou")[0].get("/app/exchange/solidarity").text

    name = f"reason-{support.id}"
    long = yasmine.post(f"/app/exchange/solidarity/supports/{support.id}/end",
                        data={name: "x" * 2001, "csrf_token": yt}, follow_redirects=False)
    assert long.status_code == 422 and f'id="{name}-error"' in long.text
    db.refresh(support)
    assert support.ended_at is None
    ended = yasmine.post(f"/app/exchange/solidarity/supports/{support.id}/end",
                         data={name: "Situation stabilisée.", "csrf_token": yt}, follow_redirects=False)
    assert ended.status_code == 303
    db.refresh(support)
    assert support.ended_at is not None
    after = yasmine.get("/app/exchange/solidarity").text
    assert f'id="support-{support.id}"' not in after and "Arrivée en octobre." not in after


@pytest.mark.parametrize(("member_id", "field"), [("", "member_id"), ("abc", "member_id"), ("0", "member_id"),
                                                  ("99999999999", "member_id")])
def test_a_bad_proposal_names_the_field_and_writes_nothing(app, db, member_id, field):
    camille, ct = _client(app, "camille")
    before = _count(db, Support)
    r = camille.post("/app/exchange/solidarity/supports", data={"member_id": member_id, "note": "x",
                                                                "csrf_token": ct}, follow_redirects=False)
    assert r.status_code == 422 and f'id="{field}-error"' in r.text
    assert _count(db, Support) == before


def test_a_member_of_another_cooperative_or_a_long_note_is_refused(app, db, people):
    camille, ct = _client(app, "camille")
    before = _count(db, Support)
    r = camille.post("/app/exchange/solidarity/supports", data={"member_id": str(people.outsider.id),
                                                                "csrf_token": ct}, follow_redirects=False)
    assert r.status_code == 422 and 'id="member_id-error"' in r.text
    r = camille.post("/app/exchange/solidarity/supports", data={"member_id": str(_member(db, "fatou").id),
                                                                "note": "x" * 2001, "csrf_token": ct},
                     follow_redirects=False)
    assert r.status_code == 422 and 'id="note-error"' in r.text
    assert _count(db, Support) == before


def test_a_member_who_is_not_a_steward_cannot_propose_approve_or_end(app, db):
    support = _oksana_support(db)
    lucas, lt = _client(app, "lucas")
    before = _count(db, Support)
    assert lucas.post("/app/exchange/solidarity/supports", data={"member_id": str(_member(db, "fatou").id),
                                                                 "csrf_token": lt},
                      follow_redirects=False).status_code == 403
    assert lucas.post(f"/app/exchange/solidarity/supports/{support.id}/approve", data={"csrf_token": lt},
                      follow_redirects=False).status_code == 403
    assert lucas.post(f"/app/exchange/solidarity/supports/{support.id}/end", data={"csrf_token": lt},
                      follow_redirects=False).status_code == 404
    db.refresh(support)
    assert support.ended_at is None and _count(db, Support) == before


def test_a_coordinator_reads_a_disputed_exchange_and_may_cancel_it(app, db):
    ex = _open_exchange(db)
    service.dispute(db, actor=_member(db, "samir"), exchange_id=ex.id, reason="Pas venu.")
    db.flush()
    camille, ct = _client(app, "camille")
    page = camille.get(f"/app/exchange/exchanges/{ex.id}")
    assert page.status_code == 200 and "Pas venu." in page.text
    assert 'name="body"' not in page.text  # not a party: no message form
    r = camille.post(f"/app/exchange/exchanges/{ex.id}/cancel", data={"csrf_token": ct}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(ex)
    assert ex.state == "cancelled"
    denied = camille.post(f"/app/exchange/exchanges/{ex.id}/messages", data={"body": "Bonjour", "csrf_token": ct},
                          follow_redirects=False)
    assert denied.status_code == 403 and _messages(db, ex.id) == ["Bonjour !", "Pas venu."]


def _fund_balance(db) -> int:
    from commons_map.ledger.models import Account

    db.expire_all()
    return db.scalar(select(Account.balance).where(Account.kind == "solidarity_fund",
                                                   Account.cooperative_id == _member(db, "pierre").cooperative_id))


def test_a_member_gives_time_to_the_fund_once_even_if_sent_twice(app, db):
    pierre, pt = _client(app, "pierre")
    page = pierre.get("/app/exchange/solidarity")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    before = _fund_balance(db)
    for _ in range(2):  # the same form sent twice (a double tap, a resend)
        r = pierre.post("/app/exchange/solidarity/gifts", data={"minutes": "30", "idempotency_key": key,
                                                                "csrf_token": pt}, follow_redirects=False)
        assert r.status_code == 303
    assert _fund_balance(db) == before + 30


def test_a_coordinator_gives_the_cooperatives_hours_from_the_page_and_a_member_cannot(app, db):
    from commons_map.ledger import service as ledger_service

    camille, ct = _client(app, "camille")  # a coordinator
    page = camille.get("/app/exchange/solidarity")
    assert 'name="from_cooperative"' in page.text and "Depuis le compte de la coopérative" in page.text
    me = _member(db, "camille")
    coop_account = ledger_service.cooperative_account(db, cooperative_id=me.cooperative_id)
    fund, mine, coop = _fund_balance(db), ledger.balance(db, member=me), coop_account.balance
    r = camille.post("/app/exchange/solidarity/gifts", data={"minutes": "90", "from_cooperative": "1",
                                                             "idempotency_key": "coop-gift-1", "csrf_token": ct},
                     follow_redirects=False)
    assert r.status_code == 303
    db.expire_all()
    assert _fund_balance(db) == fund + 90
    assert ledger.balance(db, member=me) == mine  # not from her own account
    assert db.get(type(coop_account), coop_account.id).balance == coop - 90
    # a member without the role sees no such choice, and forcing it is refused, nothing written
    pierre, pt = _client(app, "pierre")
    assert 'name="from_cooperative"' not in pierre.get("/app/exchange/solidarity").text
    before = _fund_balance(db)
    r = pierre.post("/app/exchange/solidarity/gifts", data={"minutes": "90", "from_cooperative": "1",
                                                            "idempotency_key": "coop-gift-2", "csrf_token": pt},
                    follow_redirects=False)
    assert r.status_code == 403
    assert _fund_balance(db) == before


@pytest.mark.parametrize("minutes", ["", "abc", "-5", "0", "6001", "inf", "nan"])
def test_a_bad_gift_names_the_field_and_writes_nothing(app, db, minutes):
    oksana, ot = _client(app, "oksana")
    before = _fund_balance(db)
    r = oksana.post("/app/exchange/solidarity/gifts", data={"minutes": minutes, "idempotency_key": "k-bad",
                                                            "csrf_token": ot}, follow_redirects=False)
    assert r.status_code == 422 and 'id="minutes-error"' in r.text
    assert "between 1 and 6000" in r.text and f'value="{minutes}"' in r.text
    assert _fund_balance(db) == before


@pytest.mark.parametrize("minutes", ["inf", "nan", "1e400"])
def test_minutes_that_are_not_a_number_are_refused_on_a_post(app, db, minutes):
    c, token = _client(app, "oksana")
    before = _count(db, Post)
    r = c.post("/app/exchange/new", data=_new_post_form(token, minutes=minutes), follow_redirects=False)
    assert r.status_code == 422 and 'id="minutes-error"' in r.text
    assert _count(db, Post) == before
