"""Confirmations racing on real parallel connections: an exchange is paid exactly once."""

from __future__ import annotations

from sqlalchemy import func, select

from commons_map.db import make_engine, make_sessionmaker
from commons_map.exchange import service
from commons_map.exchange.models import Exchange
from commons_map.exchange.schemas import PostIn
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.people.models import Member
from tests.commons_map.exchange_helpers import race_confirmations, small_coop

THREADS = 8
EXCHANGES = 6


def test_concurrent_confirmations_pay_once(fresh_database):
    engine = make_engine(url=fresh_database(), pool_size=THREADS + 2)
    Session = make_sessionmaker(engine)
    try:
        with Session() as s:
            _, provider, receiver = small_coop(s, "conc-ex")
            ids = []
            for i in range(EXCHANGES):
                post = service.create_post(s, actor=provider, data=PostIn(
                    kind="offer", title=f"Service {i}", category="bricoler", minutes=45))
                ex = service.reply(s, actor=receiver, post_id=post.id)
                service.accept(s, actor=provider, exchange_id=ex.id)
                ids.append(ex.id)
            s.commit()
            receiver_id, provider_id = receiver.id, provider.id

        outcomes = race_confirmations(Session, lambda s: s.get(Member, receiver_id), ids, threads=THREADS)

        with Session() as s:
            for exchange_id in ids:
                mine = [r for e, r in outcomes if e == exchange_id]
                assert mine.count("paid") == 1, mine
                assert set(mine) == {"paid", "exchange.already_paid"}
                assert s.scalar(select(func.count()).select_from(Transfer).where(
                    Transfer.idempotency_key == f"exchange:{exchange_id}:payment")) == 1
                assert s.get(Exchange, exchange_id).transfer_id is not None
            assert ledger.balance(s, member=s.get(Member, provider_id)) == 45 * EXCHANGES
            assert ledger.balance(s, member=s.get(Member, receiver_id)) == -45 * EXCHANGES
            assert ledger.check(s).breaches == []
    finally:
        engine.dispose()
