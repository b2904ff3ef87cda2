"""Partner maps against a second instance of our own app on the loopback, serving its own database:
the cooperative lists it, its public layers (and nothing else) join our map; our server refreshes
the copy in the background, and shows the partner unavailable when it stops, keeping the copy.
And several refreshers at once (parallel connections) read each partner exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine

from commons_map.db import session_scope
from commons_map.partners import service
from commons_map.partners.models import Partner
from commons_map.people.models import Cooperative
from tests.commons_map.partners_helpers import TEST_LIMITS
from tests.faults.conftest import Server, free_port

SECRET = "partner-test-secret-0123456789-abcdefghij"
PRIVATE_NAME = "Jardin privé de la famille Sauvan"


def _coop(url: str, slug: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(
            "INSERT INTO cooperatives (slug, name, territory) VALUES (:slug, :slug,"
            " ST_Multi(ST_MakeEnvelope(5.0, 44.6, 5.5, 44.9, 4326)))"), {"slug": slug})
    eng.dispose()


def add_garden(url: str, name: str, visibility: str = "public", dx: float = 0.0) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " VALUES ((SELECT min(id) FROM cooperatives), 'garden', :name,"
            " ST_MakeEnvelope(5.02 + :dx, 44.75, 5.0204 + :dx, 44.7503, 4326), :vis, 'active')"),
            {"name": name, "vis": visibility, "dx": dx})
    eng.dispose()


def listed(fresh_database, urls: list[str]) -> Engine:  # noqa: ANN001
    """A committed database with one cooperative and partners at ``urls``, never read yet; its engine."""
    url = fresh_database()
    _coop(url, "cic-test")
    eng = create_engine(url, pool_size=8)
    with session_scope(eng) as session:
        coop = session.scalars(select(Cooperative)).one()
        for i, u in enumerate(urls):
            session.add(Partner(cooperative_id=coop.id, url=u, name=f"P{i}", licence="CC0-1.0", link=u))
    return eng


def start(database_url: str, **env: str) -> Server:
    import os

    port = free_port()
    s = Server(url=f"http://127.0.0.1:{port}", port=port,
               env=dict(os.environ, COMMONS_DATABASE_URL=database_url, COMMONS_SECRET_KEY=SECRET, **env))
    s.start()
    return s


@pytest.fixture
def partner_instance(fresh_database) -> Iterator[tuple[Server, str]]:
    """A second commons-map on the loopback, its own database: two public gardens and a private one."""
    url = fresh_database()
    _coop(url, "jardins-du-crestois")
    add_garden(url, "Jardin partagé des Rieux")
    add_garden(url, "Jardin de la Gare", dx=0.001)
    add_garden(url, PRIVATE_NAME, visibility="private", dx=0.002)
    server = start(url, COMMONS_PARTNERS_REFRESH_SECONDS="0")
    try:
        yield server, url
    finally:
        server.stop()


def test_our_map_joins_the_public_layers_of_another_instance(partner_instance, client, auth, people):
    server, _ = partner_instance
    r = client.post("/api/v1/partners", json={"url": f"{server.url}/ogc", "name": "Jardins du Crestois"},
                    headers=auth(people.coordinator))
    assert r.status_code == 201, r.text
    p = r.json()
    layers = {x["collection"]: x for x in p["layers"]}
    assert {"restored_land", "gardens", "tools_and_places"} <= set(layers)
    assert layers["gardens"]["features"] == 2 and layers["gardens"]["licence"] == "ODbL-1.0"
    gardens = client.get(f"/maps/partners/{p['id']}/gardens.geojson").json()
    assert sorted(f["properties"]["name"] for f in gardens["features"]) == ["Jardin de la Gare",
                                                                             "Jardin partagé des Rieux"]
    for x in layers:  # only what the partner publishes to anyone
        assert PRIVATE_NAME not in client.get(f"/maps/partners/{p['id']}/{x}.geojson").text
    page = client.get("/maps/public?lang=en&basemap=none").text
    assert "Jardins du Crestois" in page and f"{server.url}/ogc" in page and "ODbL-1.0" in page


def test_our_server_refreshes_the_copy_in_the_background_and_survives_the_partner_stopping(
        partner_instance, fresh_database):
    partner, partner_db = partner_instance
    ours = fresh_database()
    _coop(ours, "cic-test")
    eng = create_engine(ours)
    with session_scope(eng) as session:
        coop = session.scalars(select(Cooperative)).one()
        pid = service.add_partner(session, actor=None, cooperative=coop, url=f"{partner.url}/ogc",
                                  limits=TEST_LIMITS).id
    eng.dispose()
    server = start(ours, COMMONS_PARTNERS_REFRESH_SECONDS="1")
    try:
        layer = f"{server.url}/maps/partners/{pid}/gardens.geojson"
        assert len(httpx.get(layer).json()["features"]) == 2
        add_garden(partner_db, "Jardin neuf des Aires", dx=0.003)
        deadline = time.time() + 60
        while time.time() < deadline:
            names = [f["properties"]["name"] for f in httpx.get(layer).json()["features"]]
            if "Jardin neuf des Aires" in names:
                break
            time.sleep(0.5)
        assert "Jardin neuf des Aires" in names, "the copy was not refreshed in the background"

        partner.stop()
        deadline = time.time() + 60
        while time.time() < deadline:
            page = httpx.get(f"{server.url}/maps/public?lang=fr&basemap=none")
            if 'data-available="false"' in page.text:
                break
            time.sleep(0.5)
        assert page.status_code == 200 and "(indisponible, copie du " in page.text
        assert len(httpx.get(layer).json()["features"]) == 3  # the last good copy is still served
    finally:
        server.stop()


def test_parallel_refreshers_read_each_partner_exactly_once(fresh_database, partner_stub):
    eng = listed(fresh_database, [partner_stub.url(f"/good/?copy={i}") for i in range(6)])
    before = partner_stub.hits["/good/"]
    reports, errors = [], []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            reports.append(service.refresh_due(eng, max_age=timedelta(minutes=5),
                                               limits=TEST_LIMITS))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    done = [pid for r in reports for pid in r.ok + r.unavailable]
    assert len(done) == 6 and len(set(done)) == 6, done
    assert partner_stub.hits["/good/"] - before == 6  # each landing page read once
    with session_scope(eng) as session:
        rows = session.scalars(select(Partner)).all()
        assert {p.status for p in rows} == {"ok"} and all(p.lease_until is None for p in rows)
        # a second pass finds nothing due
        assert service.refresh_due(eng, max_age=timedelta(minutes=5)).ok == []
    eng.dispose()


def test_two_coordinators_adding_the_same_partner_at_once_make_one(fresh_database, partner_stub):
    from commons_map.errors import Conflict

    url = fresh_database()
    _coop(url, "cic-test")
    eng = create_engine(url, pool_size=4)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def add() -> None:
        with session_scope(eng) as session:
            coop = session.scalars(select(Cooperative)).one()
            barrier.wait()  # both have read the cooperative and checked for a duplicate before either writes
            try:
                service.add_partner(session, actor=None, cooperative=coop, url=partner_stub.url("/good/"),
                                    limits=TEST_LIMITS)
                outcomes.append("added")
            except Conflict as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=add) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == ["added", "partners.already_listed"]
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM partners")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM partner_layers")).scalar() == 2
    eng.dispose()


def test_a_partner_removed_while_it_is_being_read_is_not_written_back(fresh_database, partner_stub):
    eng = listed(fresh_database, [partner_stub.url("/good/")])

    def read_then_removed(address: str, *, limits=None):  # noqa: ANN001, ANN202
        snap = service.read_partner(address, limits=TEST_LIMITS)
        with eng.begin() as conn:  # a coordinator removes it meanwhile, on another connection
            conn.execute(text("DELETE FROM partners"))
        return snap

    report = service.refresh_due(eng, max_age=timedelta(minutes=5), read=read_then_removed)
    assert report.ok == [] and report.unavailable == []
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM partner_layers")).scalar() == 0
    eng.dispose()


def test_the_apps_refresher_survives_a_failing_pass(caplog):
    """A pass that fails (here: no such database) is logged, and the next pass comes all the same."""
    import asyncio

    from api import partners_scheduler
    from commons_map.settings import Settings

    settings = Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:5432/cm_no_such_database_x",
                        partners_refresh_seconds=0.05)
    eng = create_engine(settings.sync_url)

    async def run() -> None:
        task = partners_scheduler.start(eng, settings)
        assert task is not None
        await asyncio.sleep(1.0)
        await partners_scheduler.stop(task)
        assert task.cancelled()
        assert partners_scheduler.start(eng, Settings(partners_refresh_seconds=0)) is None

    import threading

    failures: list[BaseException] = []

    def own_loop() -> None:  # a thread of its own: the browser tests' Playwright holds this thread's loop
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - raised again below, in the test's thread
            failures.append(exc)

    with caplog.at_level("ERROR", logger="commons_map.partners"):
        t = threading.Thread(target=own_loop)
        t.start()
        t.join(timeout=60)
    eng.dispose()
    assert not t.is_alive() and not failures, failures
    assert len([r for r in caplog.records if "partners refresh failed" in r.message]) >= 2
