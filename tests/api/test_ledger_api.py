"""The ledger and the work logs over HTTP: problem+json naming field and rule, nothing written."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.register.models import Commons
from commons_map.worklog.models import WorkLog


def today():
    return datetime.now(ZoneInfo("Europe/Paris")).date()


def n_transfers(db) -> int:
    return db.scalar(select(func.count()).select_from(Transfer))


def n_logs(db) -> int:
    return db.scalar(select(func.count()).select_from(WorkLog))


def land_of(db, steward) -> Commons:
    rows = db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%")).order_by(Commons.id)).all()
    return next(c for c in rows if steward.id in c.steward_ids)


def fields(r) -> list[str]:
    return [e["field"] for e in r.json().get("errors", [])]


def test_pay_then_retry_then_conflict(client, auth, people, db):
    body = {"payee": "oksana", "minutes": 45, "reason": "Réparation de vélo", "idempotency_key": "api-pay-1"}
    before = ledger.balance(db, member=people.member)
    r = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["kind"] == "service_payment"
    assert sorted(p["amount"] for p in t["postings"]) == [-45, 45]
    again = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert again.status_code == 200 and again.json()["id"] == t["id"]
    assert ledger.balance(db, member=people.member) == before - 45
    other = client.post("/api/v1/ledger/payments", json={**body, "minutes": 50}, headers=auth(people.member))
    assert other.status_code == 409 and fields(other) == ["idempotency_key"]
    # The payee sees it at once.
    oksana = client.get("/api/v1/ledger/statement", headers=auth(db.scalars(
        select(people.member.__class__).where(people.member.__class__.username == "oksana")).one()))
    assert oksana.json()["lines"][-1]["transfer_id"] == t["id"]


def test_idempotency_key_from_the_header(client, auth, people):
    body = {"payee": "oksana", "minutes": 15, "reason": "Covoiturage"}
    h = {**auth(people.member), "Idempotency-Key": "hdr-1"}
    r1 = client.post("/api/v1/ledger/payments", json=body, headers=h)
    r2 = client.post("/api/v1/ledger/payments", json=body, headers=h)
    assert (r1.status_code, r2.status_code) == (201, 200) and r1.json()["id"] == r2.json()["id"]
    missing = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert missing.status_code == 422 and fields(missing) == ["idempotency_key"]


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"payee": "lucas"}, 422, "payee"),            # oneself
    ({"payee": "personne"}, 422, "payee"),         # unknown
    ({"payee": "diois"}, 422, "payee"),            # another cooperative
    ({"payee": None, "to_account_id": 999999}, 422, "to_account_id"),
    ({"minutes": 0}, 422, "minutes"),
    ({"minutes": -60}, 422, "minutes"),
    ({"minutes": "beaucoup"}, 422, "minutes"),
    ({"minutes": 100000}, 409, "minutes"),         # beyond the limit
    ({"reason": ""}, 422, "reason"),
])
def test_bad_payments_over_http(client, auth, people, db, change, status, field):
    body = {"payee": "oksana", "minutes": 30, "reason": "Garde d'enfants", "idempotency_key": "api-bad"}
    body.update(change)
    before = (n_transfers(db), ledger.balance(db, member=people.member))
    r = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in fields(r)
    assert (n_transfers(db), ledger.balance(db, member=people.member)) == before


def test_limit_refusal_says_by_how_much(client, auth, people, db):
    bal = ledger.balance(db, member=people.member)
    r = client.post("/api/v1/ledger/payments", headers={**auth(people.member), "Accept-Language": "en"}, json={
        "payee": "oksana", "minutes": bal + 1200 + 10, "reason": "Déménagement", "idempotency_key": "lim"})
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "ledger.limit_below" and body["kind"] == "limit_exceeded"
    assert body["exceeds_by_minutes"] == 10 and body["limit"] == "min" and body["params"]["short_minutes"] == 10
    assert "10 min below its limit of −20 h 00" in body["detail"]
    assert body["errors"][0]["code"] == "ledger.limit_below" and body["errors"][0]["field"] == "minutes"
    # The same refusal in French: the member's own setting, when the client asks for no language.
    assert people.member.locale == "fr"
    r = client.post("/api/v1/ledger/payments", headers=auth(people.member),
                    json={"payee": "oksana", "minutes": bal + 1200 + 10, "reason": "Déménagement",
                          "idempotency_key": "lim"})
    assert r.status_code == 409 and r.json()["code"] == "ledger.limit_below"
    assert "10 min sous sa limite de −20 h 00" in r.json()["detail"]
    assert r.json()["errors"][0]["message"] == r.json()["detail"]


def test_anonymous_and_outsiders(client, auth, people):
    assert client.get("/api/v1/ledger/me").status_code == 401
    assert client.post("/api/v1/ledger/payments", json={"payee": "oksana", "minutes": 1, "reason": "x",
                                                        "idempotency_key": "a"}).status_code == 401
    r = client.get("/api/v1/ledger/statement", params={"member": "lucas"}, headers=auth(people.outsider))
    assert r.status_code == 404
    r = client.get("/api/v1/ledger/statement", params={"member": "oksana"}, headers=auth(people.member))
    assert r.status_code == 403
    assert client.get("/api/v1/ledger/check", headers=auth(people.member)).status_code == 403


def test_my_account_statement_csv_and_figures(client, auth, people):
    me = client.get("/api/v1/ledger/me", headers=auth(people.member)).json()
    assert me["min_minutes"] == -1200 and me["max_minutes"] == 6000 and me["kind"] == "member"
    r = client.get("/api/v1/ledger/statement", params={"format": "csv", "from": str(today() - timedelta(days=30))},
                   headers=auth(people.member))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][0] == "date" and rows[-1][2] == "closing" and int(rows[-1][-1]) == me["balance"]
    js = client.get("/api/v1/ledger/statement", headers=auth(people.member)).json()
    assert js["closing_balance"] == me["balance"]
    bad = client.get("/api/v1/ledger/statement", params={"from": "2026-05-01", "to": "2026-04-01"},
                     headers=auth(people.member))
    assert bad.status_code == 422 and fields(bad) == ["from"]
    figs = client.get("/api/v1/ledger/figures", headers=auth(people.member)).json()
    assert figs["total_minutes"] > 0 and figs["per_commons"] and figs["per_activity"] and figs["per_month"]
    check = client.get("/api/v1/ledger/check", headers=auth(people.coordinator)).json()
    assert check["ok"] is True and check["total_balance"] == 0


def test_refund_by_the_payee_over_http(client, auth, people, db):
    t = client.post("/api/v1/ledger/payments", headers=auth(people.member), json={
        "payee": "oksana", "minutes": 20, "reason": "Cours", "idempotency_key": "to-refund"}).json()
    oksana = db.scalars(select(people.member.__class__).where(people.member.__class__.username == "oksana")).one()
    nope = client.post(f"/api/v1/ledger/transfers/{t['id']}/reverse", json={"reason": "x", "idempotency_key": "r"},
                       headers=auth(people.member))
    assert nope.status_code == 403
    r = client.post(f"/api/v1/ledger/transfers/{t['id']}/reverse",
                    json={"reason": "Cours annulé", "idempotency_key": "refund-1"}, headers=auth(oksana))
    assert r.status_code == 201 and r.json()["reverses_id"] == t["id"]
    seen = client.get(f"/api/v1/ledger/transfers/{t['id']}", headers=auth(people.member)).json()
    assert seen["reversed_by_id"] == r.json()["id"]
    assert client.get(f"/api/v1/ledger/transfers/{t['id']}", headers=auth(people.other_steward)).status_code == 404


def test_work_log_flow_over_http(client, auth, people, db):
    land = land_of(db, people.steward)
    body = {"commons_id": land.id, "work_date": str(today() - timedelta(days=1)), "minutes": 120,
            "activity": "weeding", "notes": "Désherbage des allées"}
    r = client.post("/api/v1/work-logs", json=body, headers=auth(people.member))
    assert r.status_code == 201, r.text
    log = r.json()
    assert log["state"] == "submitted" and log["activity_label_en"] == "Weeding"
    pending = client.get("/api/v1/work-logs/pending", headers=auth(people.steward)).json()
    assert log["id"] in [p["id"] for p in pending]
    patched = client.patch(f"/api/v1/work-logs/{log['id']}", json={"minutes": 100}, headers=auth(people.member))
    assert patched.status_code == 200 and patched.json()["minutes"] == 100
    own = client.post(f"/api/v1/work-logs/{log['id']}/approve", headers=auth(people.member))
    assert own.status_code == 403 and fields(own) == ["approver"]
    before = ledger.balance(db, member=people.member)
    ok = client.post(f"/api/v1/work-logs/{log['id']}/approve", headers=auth(people.steward))
    assert ok.status_code == 200 and ok.json()["state"] == "approved" and ok.json()["credit_transfer_id"]
    assert ledger.balance(db, member=people.member) == before + 100
    twice = client.post(f"/api/v1/work-logs/{log['id']}/approve", headers=auth(people.coordinator))
    assert twice.status_code == 409 and fields(twice) == ["state"]
    assert ledger.balance(db, member=people.member) == before + 100
    corr = client.post(f"/api/v1/work-logs/{log['id']}/correct", headers=auth(people.steward), json={
        "reason": "Une heure seulement", "log": {**body, "minutes": 60}})
    assert corr.status_code == 201 and corr.json()["corrects_id"] == log["id"]
    assert ledger.balance(db, member=people.member) == before + 60
    mine = client.get("/api/v1/work-logs", params={"mine": True}, headers=auth(people.member)).json()
    assert {log["id"], corr.json()["id"]} <= {m["id"] for m in mine}


def test_reject_over_http(client, auth, people, db):
    land = land_of(db, people.steward)
    log = client.post("/api/v1/work-logs", headers=auth(people.member), json={
        "commons_id": land.id, "work_date": str(today()), "minutes": 60, "activity": "watering"}).json()
    no_reason = client.post(f"/api/v1/work-logs/{log['id']}/reject", json={"reason": ""}, headers=auth(people.steward))
    assert no_reason.status_code == 422 and fields(no_reason) == ["reason"]
    r = client.post(f"/api/v1/work-logs/{log['id']}/reject", json={"reason": "Doublon"}, headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["credit_transfer_id"] is None


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"minutes": 0}, 422, "minutes"),
    ({"minutes": -5}, 422, "minutes"),
    ({"minutes": 17 * 60}, 422, "minutes"),
    ({"work_date": "FUTURE"}, 422, "work_date"),
    ({"work_date": "2019-06-01"}, 422, "work_date"),
    ({"work_date": "pas une date"}, 422, "work_date"),
    ({"activity": "jonglage"}, 422, "activity"),
    ({"commons_id": "PRIVATE"}, 404, "commons_id"),
    ({"commons_id": 999999}, 404, "commons_id"),
    ({"unknown_field": 1}, 422, "unknown_field"),
])
def test_bad_work_logs_over_http(client, auth, people, db, change, status, field):
    land = land_of(db, people.steward)
    body = {"commons_id": land.id, "work_date": str(today() - timedelta(days=1)), "minutes": 60,
            "activity": "weeding"}
    body.update(change)
    if body["work_date"] == "FUTURE":
        body["work_date"] = str(today() + timedelta(days=3))
    if body["commons_id"] == "PRIVATE":
        body["commons_id"] = db.scalars(select(Commons.id).where(Commons.external_id == "demo:home-0")).one()
    before = n_logs(db)
    r = client.post("/api/v1/work-logs", json=body, headers=auth(people.member))
    assert r.status_code == status, r.text
    assert field in fields(r)
    assert n_logs(db) == before


def test_activities_over_http(client, auth, people):
    acts = client.get("/api/v1/activities").json()
    assert any(a["code"] == "composting" and a["label_fr"] == "Compostage" for a in acts)
    assert client.post("/api/v1/activities", json={"code": "apiculture", "label_fr": "Apiculture",
                                                   "label_en": "Beekeeping"},
                       headers=auth(people.member)).status_code == 403
    r = client.post("/api/v1/activities", json={"code": "apiculture", "label_fr": "Apiculture",
                                                "label_en": "Beekeeping"}, headers=auth(people.coordinator))
    assert r.status_code == 201


def test_a_cooperatives_activities_are_its_own(client, auth, people, db):
    """Issue 18 item 15: another cooperative's coordinator could rename, retire and add Saillans'
    activities. Now each cooperative's added activities are its own, and a shipped one is retired
    by each cooperative for itself and keeps the software's names."""
    ours = client.post("/api/v1/activities", json={"code": "greffage", "label_fr": "Greffage", "label_en": "Grafting"},
                       headers=auth(people.coordinator))
    assert ours.status_code == 201
    outsider = auth(people.outsider)
    assert "greffage" not in [a["code"] for a in client.get("/api/v1/activities", headers=outsider).json()]
    assert "greffage" not in [a["code"] for a in client.get("/api/v1/activities").json()]
    assert "greffage" in [a["code"] for a in client.get("/api/v1/activities", headers=auth(people.member)).json()]
    for body in ({"active": False}, {"label_fr": "Pris"}):
        r = client.patch("/api/v1/activities/greffage", json=body, headers=outsider)
        assert r.status_code == 404, r.text
    # the code is taken for everyone (logs and forms name activities by code), without saying whose
    again = client.post("/api/v1/activities", json={"code": "greffage", "label_fr": "G", "label_en": "G"},
                        headers=outsider)
    assert again.status_code == 409
    # a shipped activity: retired by the other cooperative for itself; its names are the software's
    assert client.patch("/api/v1/activities/weeding", json={"active": False}, headers=outsider).status_code == 200
    assert "weeding" in [a["code"] for a in client.get("/api/v1/activities", headers=auth(people.member)).json()]
    relabel = client.patch("/api/v1/activities/weeding", json={"label_en": "Hoeing"}, headers=outsider)
    assert relabel.status_code == 422 and relabel.json()["errors"][0]["code"] == "worklog.activity_shipped"
    assert client.get("/api/v1/activities").json()[0]["label_en"] != "Hoeing"
    # the other cooperative's members cannot log Saillans' own activity; Saillans' members can
    land = land_of(db, people.steward)
    mine = client.post("/api/v1/work-logs", headers=auth(people.member), json={
        "commons_id": land.id, "work_date": str(today()), "minutes": 60, "activity": "greffage"})
    assert mine.status_code == 201, mine.text
    assert client.patch("/api/v1/activities/weeding", json={"active": True}, headers=outsider).status_code == 200


def test_a_fund_for_a_commons_receives_payments_and_cannot_go_negative(client, auth, people, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    assert client.post("/api/v1/ledger/funds", json={"commons_id": garden.id},
                       headers=auth(people.member)).status_code == 403
    r = client.post("/api/v1/ledger/funds", json={"commons_id": garden.id}, headers=auth(people.coordinator))
    assert r.status_code == 201 and r.json()["kind"] == "commons_fund" and r.json()["min_minutes"] == 0
    fund = r.json()["id"]
    paid = client.post("/api/v1/ledger/payments", headers=auth(people.member), json={
        "to_account_id": fund, "minutes": 30, "reason": "Pour les semences", "idempotency_key": "fund-1"})
    assert paid.status_code == 201
    by_id = client.post("/api/v1/ledger/payments", headers=auth(people.member), json={
        "payee": people.steward.id, "minutes": 10, "reason": "Merci", "idempotency_key": "by-id"})
    assert by_id.status_code == 201
    refund = client.post(f"/api/v1/ledger/transfers/{paid.json()['id']}/reverse", headers=auth(people.coordinator),
                         json={"reason": "Erreur", "idempotency_key": "fund-r"})
    assert refund.status_code == 201
    again = client.post(f"/api/v1/ledger/transfers/{refund.json()['id']}/reverse", headers=auth(people.coordinator),
                        json={"reason": "Annuler l'annulation", "idempotency_key": "fund-rr"})
    assert again.status_code == 422 and fields(again) == ["transfer_id"]


def test_coordinators_retire_an_activity_and_new_logs_cannot_use_it(client, auth, people, db):
    assert client.patch("/api/v1/activities/teaching", json={"active": False},
                        headers=auth(people.member)).status_code == 403
    empty = client.patch("/api/v1/activities/teaching", json={"label_fr": " "}, headers=auth(people.coordinator))
    assert empty.status_code == 422 and fields(empty) == ["label_fr"]
    assert client.patch("/api/v1/activities/nope", json={"active": False},
                        headers=auth(people.coordinator)).status_code == 404
    r = client.patch("/api/v1/activities/teaching", json={"active": False}, headers=auth(people.coordinator))
    assert r.status_code == 200 and r.json()["active"] is False
    # retired in this cooperative only: another cooperative still offers it
    assert "teaching" not in [a["code"] for a in
                              client.get("/api/v1/activities", headers=auth(people.member)).json()]
    assert "teaching" in [a["code"] for a in client.get("/api/v1/activities", headers=auth(people.outsider)).json()]
    land = land_of(db, people.steward)
    refused = client.post("/api/v1/work-logs", headers=auth(people.member), json={
        "commons_id": land.id, "work_date": str(today()), "minutes": 60, "activity": "teaching"})
    assert refused.status_code == 422 and fields(refused) == ["activity"]


@pytest.mark.parametrize("minutes", [True, False])
def test_a_boolean_is_never_read_as_minutes(client, auth, people, db, minutes):
    """Issue 18 item 23: `minutes: true` paid one minute (pydantic's lax mode reads true as 1)."""
    before = db.scalar(select(func.count()).select_from(Transfer))
    r = client.post("/api/v1/ledger/payments", headers=auth(people.member), json={
        "payee": people.steward.username, "minutes": minutes, "reason": "Merci",
        "idempotency_key": f"bool-{minutes}"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "minutes" and r.json()["errors"][0]["code"] == "input.int_type"
    land = land_of(db, people.steward)
    w = client.post("/api/v1/work-logs", headers=auth(people.member), json={
        "commons_id": land.id, "work_date": str(today()), "minutes": minutes, "activity": "weeding"})
    assert w.status_code == 422 and w.json()["errors"][0]["field"] == "minutes", w.text
    assert db.scalar(select(func.count()).select_from(Transfer)) == before
