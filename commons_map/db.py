"""Engine, sessions and the declarative base. Nothing connects at import time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from sqlalchemy import DateTime, MetaData, create_engine, event, func
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from commons_map.settings import Settings, get_settings

# A row id as the database stores it (serial int4): bounded where ids come in (paths, queries,
# bodies), so an id out of range is a 422 naming the parameter, never a database error.
MAX_ID = 2**31 - 1
DbId = Annotated[int, Interval(ge=1, le=MAX_ID)]


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):  # pydantic's lax mode reads true as 1: one minute paid by mistake
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Minutes = Annotated[int, BeforeValidator(_not_a_bool)]
"""Minutes coming in (time currency, durations): an integer; ``true`` / ``false`` are refused."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    """Created and updated timestamps, set by the database."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


# A pooled connection idle for longer than this is pinged before it is handed out (a database
# restart, or a connection the server or the network dropped, costs nobody a request). One busier
# than that skips the ping: under load it would be one round trip more on every request, and a
# connection that breaks while busy is seen by its own query anyway (SQLAlchemy then replaces
# every connection of the pool, and the app answers 503 meanwhile).
PING_AFTER_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool drops this connection and hands out a fresh one
            raise DisconnectionError(f"a pooled connection was gone: {exc}") from exc


def make_engine(settings: Settings | None = None, *, url: str | None = None, **kw) -> Engine:
    """An engine for the configured database (or ``url``); a connection idle for a while is
    pinged before use, so a database restart costs no request (``PING_AFTER_IDLE_S``).

    JIT compilation is off for its connections: the app's queries are short, and when a plan's
    estimate passed ``jit_above_cost`` (a search on 100,000 posts whose filter row-level security
    kept from its indexes) PostgreSQL spent a second compiling a query that ran in a tenth of it."""
    settings = settings or get_settings()
    connect_args = dict(kw.pop("connect_args", None) or {})
    connect_args.setdefault("options", "-c jit=off")
    kw["connect_args"] = connect_args
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    engine = create_engine(url or settings.sync_url, **kw)
    if not kw.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def make_replica_engine(url: str, **kw) -> Engine:
    """An engine for a streaming replica: a short connect timeout, so a replica that is away costs
    at most one short wait per health check (``commons_map.replica``), never every request."""
    kw.setdefault("connect_args", {"connect_timeout": 2})
    # Pinged at every checkout, however busy: a replica stops on its own, and ``replica_session``
    # finds a dead one when it takes its connection, so that read still goes to the primary.
    kw.setdefault("pool_pre_ping", True)
    return make_engine(url=url, **kw)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep objects usable after commit. Every model is imported first: a mapper's
    relationships and foreign keys name other rooms' tables (the command line imports only the
    group it runs, so nothing else may have imported them yet)."""
    import commons_map.models  # noqa: F401

    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with make_sessionmaker(engine)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def server_url(url: str, database: str = "postgres") -> str:
    """The same server, another database (for CREATE/DROP DATABASE)."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` when missing; True when it was created."""
    u = make_url(url)
    admin = create_engine(server_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
                return True
            return False
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (used by the test suite)."""
    u = make_url(url)
    admin = create_engine(server_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
    finally:
        admin.dispose()
