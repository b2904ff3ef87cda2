"""Confirmations of exchanges across two cooperatives racing on real parallel connections, logged
in as the app's role (row-level security holds, as served): each exchange is paid exactly once,
through both ledgers; then `commons-map ledger check --network` passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from commons_map.clearing import service as clearing
from commons_map.clearing.models import ClearingPayment
from commons_map.db import make_engine, make_sessionmaker
from commons_map.exchange import service
from commons_map.exchange.models import Exchange
from commons_map.exchange.schemas import PostIn
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.people.models import Member, MemberRole
from commons_map.settings import Settings
from commons_map.tenancy import act_for_member
from tests.commons_map.exchange_helpers import race_confirmations, small_coop

THREADS = 8
EXCHANGES = 4
CLI = [str(Path(sys.executable).parent / "commons-map")]


def test_concurrent_confirmations_across_cooperatives_pay_once(fresh_database):
    url = fresh_database()
    owner = make_engine(url=url, pool_size=2)
    app = make_engine(url=Settings(database_url=url).app_url, pool_size=THREADS + 2)
    Owner, App = make_sessionmaker(owner), make_sessionmaker(app)
    try:
        with Owner() as s:
            _, provider, _ = small_coop(s, "rive-a")
            _, _, receiver = small_coop(s, "rive-b")
            coords = [Member(cooperative_id=m.cooperative_id, username=f"coord-{m.id}", display_name="C",
                             password_hash="-", role_rows=[MemberRole(role="coordinator")])
                      for m in (provider, receiver)]
            s.add_all(coords)
            s.flush()
            line = clearing.propose_line(s, actor=coords[0], partner="rive-b", limit_minutes=10 * 60)
            clearing.accept_line(s, actor=coords[1], line_id=line.id)
            s.commit()
            provider_id, receiver_id = provider.id, receiver.id

        def as_member(s, member_id: int) -> Member:  # noqa: ANN001 - what the API does per request
            act_for_member(s, member_id)
            return s.get(Member, member_id)

        ids = []
        for i in range(EXCHANGES):
            with App() as s:
                post = service.create_post(s, actor=as_member(s, provider_id), data=PostIn(
                    kind="offer", title=f"Service {i}", category="bricoler", minutes=45, visibility="public"))
                s.commit()
            with App() as s:
                ex = service.reply(s, actor=as_member(s, receiver_id), post_id=post.id)
                s.commit()
            with App() as s:
                service.accept(s, actor=as_member(s, provider_id), exchange_id=ex.id)
                s.commit()
            ids.append(ex.id)

        outcomes = race_confirmations(App, lambda s: as_member(s, receiver_id), ids, threads=THREADS)

        with Owner() as s:
            for exchange_id in ids:
                mine = [r for e, r in outcomes if e == exchange_id]
                assert mine.count("paid") == 1, mine
                assert set(mine) == {"paid", "exchange.already_paid"}
                assert s.scalar(select(func.count()).select_from(Transfer).where(
                    Transfer.idempotency_key == f"exchange:{exchange_id}:payment")) == 1
                assert s.get(Exchange, exchange_id).transfer_id is not None
            assert s.scalar(select(func.count()).select_from(ClearingPayment)) == EXCHANGES
            assert ledger.balance(s, member=s.get(Member, provider_id)) == 45 * EXCHANGES
            assert ledger.balance(s, member=s.get(Member, receiver_id)) == -45 * EXCHANGES
            assert clearing.check_network(s).ok
    finally:
        app.dispose()
        owner.dispose()
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    ok = subprocess.run([*CLI, "ledger", "check", "--network"], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "mirror each other" in ok.stdout
