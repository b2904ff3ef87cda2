"""An exchange between members of two cooperatives that agreed to it (issue 16 point 3): a member of
the Diois answers a public offer of Saillans (the demo's accepted clearing line), both read and write
the exchange and its thread, the receiver's confirmation pays through both ledgers once; and the
refusals: a members-only post, a cooperative with no accepted line (Crest), a third cooperative's
member acting on it, the line's limit (409 naming the line and the minutes), the solidarity fund."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from commons_map.clearing import service as clearing
from commons_map.clearing.models import ClearingLine, ClearingPayment
from commons_map.exchange.models import Exchange, ExchangeHistory, ExchangeMessage
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.notify.models import Notification
from commons_map.people.models import Member

P = "/api/v1/exchange"
EN = {"Accept-Language": "en"}


def _m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _counts(db) -> tuple[int, ...]:
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (
        Exchange, ExchangeMessage, ExchangeHistory, Transfer, ClearingPayment))


def _post(client, auth, who, **kw) -> dict:
    body = {"kind": "offer", "title": "Réparation de vélos", "category": "reparer", "minutes": 60,
            "visibility": "public"} | kw
    r = client.post(f"{P}/posts", json=body, headers=auth(who))
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def sides(db, people):
    """(a Saillans member who posts, a Diois member who answers, a Crest member: no accepted line)."""
    return people.member, _m(db, "maelle"), _m(db, "gaspard")


def test_a_member_of_a_partner_cooperative_answers_a_public_post_and_pays_across(client, auth, db, sides):
    lucas, maelle, _ = sides
    post = _post(client, auth, lucas, minutes=45)
    r = client.post(f"{P}/posts/{post['id']}/replies", json={"message": "Samedi ?"}, headers=auth(maelle))
    assert r.status_code == 201, r.text
    ex = r.json()
    assert (ex["provider"]["id"], ex["receiver"]["id"], ex["my_role"]) == (lucas.id, maelle.id, "receiver")
    assert "Diois" not in ex["receiver"]["name"] and "Saillans" in ex["provider"]["name"]  # theirs, named so
    stored = db.get(Exchange, ex["id"])
    assert stored.cooperative_id == lucas.cooperative_id  # it lives with its post
    url = f"{P}/exchanges/{ex['id']}"
    # both parties read it and write in its thread; each is told in their own cooperative
    assert client.get(url, headers=auth(lucas)).json()["receiver"]["name"].endswith("Diois)")
    assert ex["id"] in [e["id"] for e in client.get(f"{P}/exchanges", headers=auth(maelle)).json()]
    assert db.scalar(select(func.count()).select_from(Notification).where(
        Notification.member_id == lucas.id, Notification.cooperative_id == lucas.cooperative_id)) >= 1
    said = client.post(f"{url}/messages", json={"body": "Oui, à 10 h."}, headers=auth(lucas))
    assert said.status_code == 201, said.text
    assert client.post(f"{url}/messages", json={"body": "Parfait"}, headers=auth(maelle)).status_code == 201
    assert [m["body"] for m in client.get(url, headers=auth(maelle)).json()["messages"]] == [
        "Samedi ?", "Oui, à 10 h.", "Parfait"]
    assert db.scalar(select(func.count()).select_from(Notification).where(
        Notification.member_id == maelle.id, Notification.cooperative_id == maelle.cooperative_id,
        Notification.dedupe.like(f"exchange:{ex['id']}:%"))) >= 1
    assert client.post(f"{url}/accept", headers=auth(lucas)).json()["state"] == "accepted"
    assert client.post(f"{url}/done", headers=auth(lucas)).json()["awaiting"] == "receiver_confirmation"
    before = (ledger.balance(db, member=lucas), ledger.balance(db, member=maelle))
    paid = client.post(f"{url}/done", headers=auth(maelle))
    assert paid.status_code == 200, paid.text
    assert paid.json()["paid"] and paid.json()["state"] == "done"
    assert (ledger.balance(db, member=lucas), ledger.balance(db, member=maelle)) == (before[0] + 45, before[1] - 45)
    payment = db.scalars(select(ClearingPayment).order_by(ClearingPayment.id.desc())).first()
    assert payment.minutes == 45 and payment.cooperative_id == maelle.cooperative_id
    # the exchange names the transfer of its own cooperative's ledger: the one that paid lucas
    assert db.get(Exchange, ex["id"]).transfer_id == payment.payee_transfer_id
    assert db.get(Transfer, payment.payee_transfer_id).cooperative_id == lucas.cooperative_id
    counts = _counts(db)
    again = client.post(f"{url}/done", headers={**auth(maelle), **EN})
    assert again.status_code == 409 and again.json()["code"] == "exchange.already_paid"
    assert _counts(db) == counts
    report = clearing.check_network(db)
    assert report.ok, report.breaches


def test_a_cooperative_without_an_accepted_line_cannot_answer(client, auth, db, sides):
    lucas, _, gaspard = sides
    post = _post(client, auth, lucas)
    assert client.get(f"{P}/posts/{post['id']}", headers=auth(gaspard)).status_code == 200  # public: read
    counts = _counts(db)
    r = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers={**auth(gaspard), **EN})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "exchange.no_line" and r.json()["errors"][0]["field"] == "post_id"
    assert "Saillans" in r.json()["detail"]
    fr = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers={**auth(gaspard), "Accept-Language": "fr"})
    assert "ligne de compensation" in fr.json()["detail"]
    assert _counts(db) == counts


def test_a_line_still_proposed_is_no_agreement(client, auth, db, sides):
    """Crest proposed a line to the Diois, not accepted yet: a Diois member cannot answer Crest's post."""
    _, maelle, gaspard = sides
    assert db.scalar(select(ClearingLine.state).where(
        ClearingLine.cooperative_id == gaspard.cooperative_id)) == "proposed"
    post = _post(client, auth, gaspard)
    r = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(maelle))
    assert r.status_code == 403 and r.json()["code"] == "exchange.no_line"


def test_members_only_posts_stay_out_of_reach_of_the_partner(client, auth, db, sides):
    lucas, maelle, _ = sides
    post = _post(client, auth, lucas, visibility="members")
    assert client.get(f"{P}/posts/{post['id']}", headers=auth(maelle)).status_code == 404
    counts = _counts(db)
    r = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(maelle))
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "post_id"
    assert _counts(db) == counts
    found = client.get(f"{P}/posts", params={"limit": 500}, headers=auth(maelle)).json()["features"]
    assert post["id"] not in [f["id"] for f in found]


def test_a_third_cooperative_neither_reads_nor_acts_on_the_exchange(client, auth, db, sides, people):
    lucas, maelle, gaspard = sides
    post = _post(client, auth, lucas)
    ex = client.post(f"{P}/posts/{post['id']}/replies", json={"message": "Bonjour"}, headers=auth(maelle)).json()
    url = f"{P}/exchanges/{ex['id']}"
    counts = _counts(db)
    for who in (gaspard, people.outsider):  # Crest's member; the Diois' coordinator, not a party
        assert client.get(url, headers=auth(who)).status_code == 404
        assert ex["id"] not in [e["id"] for e in client.get(f"{P}/exchanges", headers=auth(who)).json()]
        for action in ("accept", "done", "cancel", "dispute"):
            r = client.post(f"{url}/{action}", headers=auth(who))
            assert r.status_code == 404 and r.json()["errors"][0]["field"] == "exchange_id", (action, r.text)
        assert client.post(f"{url}/messages", json={"body": "x"}, headers=auth(who)).status_code == 404
    assert _counts(db) == counts


def test_past_the_line_limit_is_a_409_naming_the_line_and_the_minutes(client, auth, db, sides):
    lucas, maelle, _ = sides
    line = db.scalars(select(ClearingLine).where(ClearingLine.state == "accepted")).one()
    owed = clearing.owed(db, line)  # what the Diois owe Saillans now (the demo's crossings)
    db.execute(text("UPDATE clearing_lines SET limit_minutes = :l WHERE id = :i"), {"l": owed + 30, "i": line.id})
    post = _post(client, auth, lucas, minutes=50)
    replied = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(maelle))
    url = f"{P}/exchanges/{replied.json()['id']}"
    assert client.post(f"{url}/accept", headers=auth(lucas)).status_code == 200
    counts = _counts(db)
    r = client.post(f"{url}/done", headers={**auth(maelle), **EN})
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "clearing.limit_exceeded"
    assert problem["params"]["line_id"] == line.id and problem["params"]["short_minutes"] == 20
    assert "20 min" in problem["detail"]
    assert _counts(db) == counts
    assert client.get(url, headers=auth(maelle)).json()["paid"] is False


def test_the_solidarity_fund_pays_within_its_cooperative_only(client, auth, db, sides):
    from commons_map.exchange import service

    lucas, maelle, _ = sides
    post = _post(client, auth, lucas)
    ex_id = client.post(f"{P}/posts/{post['id']}/replies", json={}, headers=auth(maelle)).json()["id"]
    diois_stewards = db.scalars(select(Member).where(Member.cooperative_id == maelle.cooperative_id,
                                                     Member.id != maelle.id).order_by(Member.id).limit(2)).all()
    coordinator = next(m for m in db.scalars(select(Member).where(
        Member.cooperative_id == maelle.cooperative_id)) if m.is_coordinator)
    for s in diois_stewards:
        service.appoint_steward(db, actor=coordinator, member_id=s.id)
    support = service.propose_support(db, actor=diois_stewards[0], member_id=maelle.id)
    service.approve_support(db, actor=diois_stewards[1], support_id=support.id)
    r = client.post(f"{P}/exchanges/{ex_id}/solidarity", headers={**auth(maelle), **EN})
    assert r.status_code == 409 and r.json()["code"] == "exchange.fund_not_across"
    assert db.get(Exchange, ex_id).by_fund is False
