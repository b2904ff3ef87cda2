"""The choice of the public reads' database, without a replica cluster: a replica that is away, a
URL that names a primary, the settings. (With a real streaming replica: tests/faults/test_replica.py.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from commons_map.db import make_replica_engine
from commons_map.replica import ReadRouter, lsn, on_replica
from commons_map.settings import Settings
from tests.conftest import free_port


def closed_port_url(database_url: str) -> str:
    """The test database's URL on a loopback port where nothing listens."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(host="127.0.0.1", port=free_port()).render_as_string(hide_password=False)


def test_lsn_reads_postgres_text_form():
    assert lsn("0/0") == 0
    assert lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert lsn(None) == 0
    assert lsn("1/0") > lsn("0/FFFFFFFF")


def test_a_replica_that_is_away_sends_public_reads_to_the_primary_checked_once_per_period(engine, database_url):
    router = ReadRouter(primary=engine, replica=make_replica_engine(closed_port_url(database_url)),
                        max_lag_seconds=30, check_seconds=60)
    try:
        assert router.replica_session() is None
        status = router.status()
        assert (status.state, status.use_replica) == ("unreachable", False)
        assert status.as_dict() == {"state": "unreachable", "public_reads": "primary"}
        with router.session() as s:
            assert s.get_bind() is engine and not on_replica(s)
            assert s.execute(text("SELECT pg_is_in_recovery()")).scalar() is False
        for _ in range(20):  # within the period: no new attempt at the replica
            assert router.replica_session() is None
        assert router.checks == 1
    finally:
        router.dispose()


def test_a_replica_url_naming_a_primary_is_never_read(engine, database_url):
    """A promoted replica (or a mistyped URL naming a primary) may diverge: the primary serves."""
    router = ReadRouter(primary=engine, replica=make_replica_engine(database_url), check_seconds=60)
    try:
        assert router.status().state == "not_standby"
        assert router.replica_session() is None
    finally:
        router.dispose()


def test_without_a_replica_there_is_no_check(engine):
    router = ReadRouter(primary=engine)
    assert router.status().state == "none" and router.replica_session() is None
    assert router.checks == 0


def test_the_app_serves_public_reads_from_the_primary_when_the_replica_is_away(settings, engine, db, database_url):
    from api.deps import get_session
    from api.main import create_app

    app = create_app(settings.model_copy(update={"database_replica_url": closed_port_url(database_url)}),
                     engine=engine)

    def _session():
        yield db
        db.flush()

    app.dependency_overrides[get_session] = _session
    with TestClient(app) as client:
        assert client.get("/ogc/collections/restored_land/items?limit=2").status_code == 200
        assert client.get("/maps/public").status_code == 200
        health = client.get("/health").json()
        assert health["replica"] == {"state": "unreachable", "public_reads": "primary"}


def test_replica_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("COMMONS_DATABASE_REPLICA_URL", "postgresql://postgres@10.0.0.2:5432/commons_map")
    monkeypatch.setenv("COMMONS_REPLICA_MAX_LAG_SECONDS", "5")
    s = Settings(_env_file=None)
    assert s.replica_sync_url == "postgresql+psycopg://postgres@10.0.0.2:5432/commons_map"
    assert s.replica_max_lag_seconds == 5.0
    assert Settings(_env_file=None, database_replica_url=None).replica_sync_url is None
    monkeypatch.setenv("COMMONS_REPLICA_MAX_LAG_SECONDS", "-1")
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None)
    assert "replica_max_lag_seconds" in str(err.value)


PUBLIC_PREFIXES = ("/ogc", "/tiles", "/maps", "/opendata")


def _calls(dependant) -> set:  # noqa: ANN001
    out = {dependant.call}
    for d in dependant.dependencies:
        out |= _calls(d)
    return out


def test_only_public_routes_may_read_the_replica_and_they_never_write_or_know_a_member(settings):
    """Every route that takes the replica's session is a public GET/HEAD under the public prefixes,
    and none of them asks who the member is (members' pages and the API take the primary)."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from api.deps import get_public_read_session, optional_member
    from api.main import create_app

    app = create_app(settings)
    on_replica_routes = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.route
        if isinstance(route, APIRoute) and get_public_read_session in _calls(route.dependant):
            on_replica_routes.append(ctx.path)
            assert ctx.path.startswith(PUBLIC_PREFIXES), ctx.path
            assert set(ctx.methods or ()) <= {"GET", "HEAD"}, (ctx.path, ctx.methods)
            assert optional_member not in _calls(route.dependant), ctx.path
    assert {p.split("/")[1] for p in on_replica_routes} == {p.strip("/") for p in PUBLIC_PREFIXES}
    assert "/ogc/collections/{collection_id}/items" in on_replica_routes
    assert "/tiles/{collection_id}/{z}/{x}/{y}.mvt" in on_replica_routes
    assert "/opendata/{name}" in on_replica_routes and "/maps/public" in on_replica_routes
