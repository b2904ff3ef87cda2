"""A payment across cooperatives through the served app, committed for real.

The served app logs in as the role row-level security holds, and the ledger's balance check is a
deferred trigger: it runs at commit, while the transaction acts for the payer's cooperative, and
must still see the other ledger's leg. The in-process client never commits, so only a real server
over a database of its own (the demo, loaded fresh) shows it."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from commons_map.clearing.models import ClearingPayment
from commons_map.clearing.service import check_network
from commons_map.db import make_engine, session_scope
from commons_map.demo.load import OTHER_SLUG
from commons_map.ledger.models import Transfer
from commons_map.people.auth import issue_token
from commons_map.people.models import Member
from commons_map.settings import Settings
from tests.faults.conftest import SERVER_SECRET


def test_a_payment_across_commits_through_the_served_app(demo_database, server_factory):
    server = server_factory(demo_database)
    server.start()
    engine = make_engine(url=demo_database)
    try:
        with session_scope(engine) as s:
            camille = s.scalars(select(Member).where(Member.username == "camille")).one()
            token = issue_token(camille, Settings(database_url=demo_database, secret_key=SERVER_SECRET))
        r = httpx.post(f"{server.url}/api/v1/ledger/payments", headers={"Authorization": f"Bearer {token}"},
                       json={"payee": f"maelle@{OTHER_SLUG}", "minutes": 15, "reason": "Semis partagés",
                             "idempotency_key": "across-live-1"}, timeout=30)
        assert r.status_code == 201, r.text
        again = httpx.post(f"{server.url}/api/v1/ledger/payments", headers={"Authorization": f"Bearer {token}"},
                           json={"payee": f"maelle@{OTHER_SLUG}", "minutes": 15, "reason": "Semis partagés",
                                 "idempotency_key": "across-live-1"}, timeout=30)
        assert again.status_code in (200, 201) and again.json()["id"] == r.json()["id"]  # once
        with session_scope(engine) as s:
            assert s.scalar(select(func.count()).select_from(ClearingPayment).join(
                Transfer, Transfer.id == ClearingPayment.payer_transfer_id).where(
                Transfer.idempotency_key == "across-live-1")) == 1
            assert check_network(s).breaches == []
    finally:
        server.stop()
        engine.dispose()
