"""The pool pings a connection only after it sat idle (``commons_map.db.PING_AFTER_IDLE_S``): a
connection the server dropped while idle costs no request; a busy pool pays no round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from commons_map import db
from commons_map.db import make_engine


def _backend_of(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(admin, pid: int) -> None:  # noqa: ANN001
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        conn.commit()


@pytest.fixture
def engines(database_url: str):
    engine = make_engine(url=database_url, pool_size=1, max_overflow=0)
    admin = make_engine(url=database_url, pool_size=1, max_overflow=0)
    yield engine, admin
    engine.dispose()
    admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(engines, monkeypatch) -> None:
    engine, admin = engines
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every checkout after a checkin is "idle"
    first = _backend_of(engine)
    _terminate(admin, first)
    # the ping finds it gone: the pool hands out a fresh connection, the request never sees it
    second = _backend_of(engine)
    assert second != first


def test_a_busy_connection_is_not_pinged_and_a_drop_is_seen_once(engines, monkeypatch) -> None:
    engine, admin = engines
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # never idle long enough: no ping
    first = _backend_of(engine)
    _terminate(admin, first)
    with pytest.raises(OperationalError) as caught:
        _backend_of(engine)
    assert caught.value.connection_invalidated  # SQLAlchemy saw a disconnect: the pool is renewed
    assert _backend_of(engine) != first


def test_no_ping_while_the_pool_is_busy(engines, monkeypatch) -> None:
    engine, _ = engines
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    for _ in range(5):
        _backend_of(engine)  # back-to-back: idle for far less than PING_AFTER_IDLE_S
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    _backend_of(engine)
    assert len(pings) == 1
