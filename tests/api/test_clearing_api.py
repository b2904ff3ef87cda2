"""Hours across cooperatives over HTTP: the payment API with a payee user@slug, its 409 at the
line's limit, the lines, and an archived cooperative hidden from the public API and sign-in."""

from __future__ import annotations

from sqlalchemy import select

from commons_map.clearing.models import ClearingPayment
from commons_map.people.cooperatives import archive_cooperative


def test_a_payment_across_through_the_payment_api(client, db, people, auth):
    body = {"payee": "maelle@cic-diois", "minutes": 30, "reason": "Aide aux semis", "idempotency_key": "api-x1"}
    r = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert sorted(p["amount"] for p in transfer["postings"]) == [-30, 30]
    assert any(p["account"].startswith("Compensation") for p in transfer["postings"])
    assert db.scalars(select(ClearingPayment).where(ClearingPayment.payer_transfer_id == transfer["id"])).one()
    again = client.post("/api/v1/ledger/payments", json=body, headers=auth(people.member))
    assert again.status_code == 200 and again.json()["id"] == transfer["id"]
    lines = client.get("/api/v1/clearing/lines", headers=auth(people.member)).json()
    diois = next(line for line in lines if line["partner"] == "cic-diois")
    assert diois["state"] == "accepted" and diois["we_owe_minutes"] == 0
    assert diois["they_owe_minutes"] == 45 - 30  # the demo's crossings left the Diois owing 45
    seen = client.get("/api/v1/clearing/lines", headers=auth(people.outsider)).json()
    assert {line["partner"] for line in seen} == {"cic-saillans", "cic-crest"}


def test_a_payment_past_the_line_is_a_409_with_the_line_and_the_minutes(client, people, auth):
    lines = client.get("/api/v1/clearing/lines", headers=auth(people.member)).json()
    line = next(line for line in lines if line["partner"] == "cic-diois")
    room = line["limit_minutes"] - line["we_owe_minutes"] + line["they_owe_minutes"]
    r = client.post("/api/v1/ledger/payments", headers={**auth(people.member), "Accept-Language": "en"},
                    json={"payee": "maelle@cic-diois", "minutes": room + 15, "reason": "Trop",
                          "idempotency_key": "api-over"})
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "clearing.limit_exceeded"
    assert problem["params"]["line_id"] == line["id"] and problem["params"]["short_minutes"] == 15
    assert "15 min" in problem["detail"]


def test_bad_payees_across_are_422_naming_the_payee(client, people, auth):
    for payee, code in (("maelle@nowhere", "cooperatives.unknown"), ("gaspard@cic-crest", "clearing.no_line"),
                        ("nobody@cic-diois", "ledger.no_payee")):
        r = client.post("/api/v1/ledger/payments", headers=auth(people.member),
                        json={"payee": payee, "minutes": 5, "reason": "Essai", "idempotency_key": f"bad-{payee}"})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code and r.json()["errors"][0]["field"] == "payee"


def test_an_archived_cooperative_is_gone_from_the_public_api_and_sign_in(client, db, people):
    def saillans_items() -> int:
        features = client.get("/ogc/collections/commons/items?limit=1000").json()["features"]
        return sum(1 for f in features if f["properties"].get("cooperative") == "cic-saillans")

    assert saillans_items() > 0
    public = client.get("/api/v1/commons?limit=500").json()["features"]
    assert public
    one = public[0]["id"]
    assert client.get(f"/api/v1/commons/{one}").status_code == 200
    ok = client.post("/api/v1/auth/token", data={"username": "camille", "password": "demo-commons"})
    assert ok.status_code == 200
    archive_cooperative(db, slug="cic-saillans")
    assert saillans_items() == 0
    assert client.get("/api/v1/commons?limit=500").json()["features"] == []
    assert client.get(f"/api/v1/commons/{one}").status_code == 404
    refused = client.post("/api/v1/auth/token", data={"username": "camille", "password": "demo-commons"})
    assert refused.status_code == 401 and refused.json()["code"] == "cooperatives.archived_sign_in"
    stale = client.get("/api/v1/ledger/me", headers={"Authorization": f"Bearer {ok.json()['access_token']}"})
    assert stale.status_code == 401

