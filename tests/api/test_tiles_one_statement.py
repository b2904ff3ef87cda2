"""With the tile cache off, an anonymous tile is one statement in autocommit (no BEGIN, no COMMIT):
the same tile, the figures table still brought up to date in a transaction, a member's or a begun
session left in its transaction, and the pooled connection back to transactions after."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from psycopg.pq import TransactionStatus
from sqlalchemy import text

from commons_map import tenancy
from commons_map.db import make_engine, make_sessionmaker
from commons_map.publish import figures, service, tilecache
from commons_map.publish.collections import COLLECTIONS
from tests.api.test_tiles import centre, tile_of

LAND = COLLECTIONS["restored_land"]


@pytest.fixture
def cache_off(monkeypatch):
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=0))
    monkeypatch.setattr(figures, "SYNC_EVERY_S", 3600.0)  # once synced, not due again in this test
    figures.clear_cache()
    yield
    figures.clear_cache()


@pytest.fixture
def own_engine(database_url: str, engine):  # noqa: ANN001 - `engine`: the demo is committed
    eng = make_engine(url=database_url, pool_size=1, max_overflow=0)  # one connection, reused
    yield eng
    eng.dispose()


def _land_tile(db) -> tuple[int, int, int]:  # noqa: ANN001
    lon, lat, _ = centre(db, "demo:land-0")
    return (14, *tile_of(lon, lat, 14))


def _status(session) -> TransactionStatus:  # noqa: ANN001
    return session.connection().connection.driver_connection.info.transaction_status


def test_one_statement_outside_a_transaction_and_the_same_tile(cache_off, own_engine, db):
    z, x, y = _land_tile(db)
    sessions = make_sessionmaker(own_engine)
    with sessions() as s:  # the figures table is due: brought up to date in a transaction
        assert service.tile(s, collection=LAND, z=z, x=x, y=y)
        assert _status(s) == TransactionStatus.INTRANS
        assert not s.info.get(tenancy.ONE_STATEMENT_KEY)
    with sessions() as s:  # the reference: the same read inside a transaction begun first
        s.execute(text("SELECT 1"))
        reference = service.tile(s, collection=LAND, z=z, x=x, y=y)
    assert reference
    with sessions() as s:
        assert service.tile(s, collection=LAND, z=z, x=x, y=y) == reference
        assert s.info[tenancy.ONE_STATEMENT_KEY]
        assert _status(s) == TransactionStatus.IDLE  # no transaction was opened: no BEGIN, no COMMIT
    with sessions() as s:  # the same pooled connection, back to transactions
        s.execute(text("CREATE TEMP TABLE one_statement_probe (x int)"))
        assert _status(s) == TransactionStatus.INTRANS
        s.rollback()
        assert s.scalar(text("SELECT to_regclass('pg_temp.one_statement_probe')")) is None


def test_a_member_or_a_begun_session_keeps_its_transaction(cache_off, own_engine, db, people):
    z, x, y = _land_tile(db)
    sessions = make_sessionmaker(own_engine)
    with sessions() as s:
        service.tile(s, collection=LAND, z=z, x=x, y=y)  # the figures' sync, out of the way
    with sessions() as s:  # acting for a member: the tenancy settings live in the transaction
        tenancy.act_as(s, member_id=people.member.id, cooperative_id=people.coop.id)
        assert not tenancy.read_in_one_statement(s)
        service.tile(s, collection=LAND, z=z, x=x, y=y)
        assert _status(s) == TransactionStatus.INTRANS
    with sessions() as s:  # already begun: left as it is
        s.execute(text("SELECT 1"))
        assert not tenancy.read_in_one_statement(s)
        assert _status(s) == TransactionStatus.INTRANS


def test_the_served_tile_through_the_real_request_session(cache_off, own_engine, settings, db, monkeypatch):
    """Through the app's own request session (``api.deps.get_session``, no override; the route, its
    fast path set aside): the tile is read in one statement, nothing is left to commit, and the
    pooled connection is reset."""
    from api.main import create_app

    z, x, y = _land_tile(db)
    applied: list[bool] = []
    real = tenancy.read_in_one_statement
    monkeypatch.setattr(tenancy, "read_in_one_statement", lambda s: applied.append(real(s)) or applied[-1])
    url = f"/tiles/restored_land/{z}/{x}/{y}.mvt"
    app = create_app(settings, engine=own_engine)
    with TestClient(app) as c:
        pool, app.state.tile_pool = app.state.tile_pool, None  # the route, not api.fast_tiles
        try:
            first = c.get(url, headers={"Accept-Encoding": "identity"})  # syncs the figures: a transaction
            second = c.get(url, headers={"Accept-Encoding": "identity"})  # one statement
        finally:
            app.state.tile_pool = pool
    assert first.status_code == second.status_code == 200
    assert second.content == first.content  # the figures the first committed, read again
    assert applied == [True]
    with own_engine.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False
