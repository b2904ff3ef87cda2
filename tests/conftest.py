"""Shared fixtures: one fresh PostGIS database per run, the demo cooperative, personas, clients.

Each test gets a session inside a transaction that is rolled back (SQLAlchemy's
``join_transaction_mode="create_savepoint"`` recipe), so tests never share what they write.
The demo cooperative is loaded and committed once per run: it is the shared, read-only baseline.
Concurrency tests make their own committed database with ``fresh_database``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from commons_map.db import drop_database, ensure_database, make_engine, session_scope
from commons_map.migrate import upgrade
from commons_map.people.auth import issue_token
from commons_map.people.models import Cooperative, Member
from commons_map.settings import Settings, get_settings

TEST_SECRET = "test-secret-not-for-production-0123456789"


def _test_url(prefix: str = "cm_test") -> str:
    base = get_settings().sync_url
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    return make_url(base).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A brand-new database for this run, migrated to every head, dropped at the end."""
    url = _test_url()
    ensure_database(url)
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """Make more brand-new migrated databases (for concurrency tests), dropped after the test."""
    made: list[str] = []

    def make() -> str:
        url = _test_url("cm_conc")
        ensure_database(url)
        upgrade(url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database. The app reads no partner again by itself (in process,
    and the live server too): its scheduler would write the demo partner (whose address answers
    nothing here) "unavailable" into the committed baseline every test shares, once the run is
    older than the refresh period (the scheduler has tests of its own, tests/api/test_partners_live.py)."""
    return Settings(database_url=database_url, environment="test", secret_key=TEST_SECRET,
                    partners_refresh_seconds=0)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the test database, with the demo cooperative committed once."""
    from commons_map.demo.load import load_demo

    eng = make_engine(url=database_url)
    with session_scope(eng) as session:
        load_demo(session)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, whatever it commits."""
    conn = engine.connect()
    trans = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        trans.rollback()
        conn.close()


@dataclass
class People:
    """The personas of the access matrix, from the demo cooperative."""

    coop: Cooperative
    other_coop: Cooperative
    member: Member          # a plain member, steward of nothing
    steward: Member         # steward of some land and of a private home
    other_steward: Member   # steward of other commons, not of the steward's
    coordinator: Member
    outsider: Member        # coordinator of another cooperative

    def by_role(self, role: str) -> Member | None:
        return None if role == "anonymous" else getattr(self, role)


@pytest.fixture
def people(db: Session) -> People:
    """The demo personas, loaded in the test's session."""
    from commons_map.demo.load import DEMO_SLUG, OTHER_SLUG

    def m(username: str) -> Member:
        return db.scalars(select(Member).where(Member.username == username)).one()

    return People(
        coop=db.scalars(select(Cooperative).where(Cooperative.slug == DEMO_SLUG)).one(),
        other_coop=db.scalars(select(Cooperative).where(Cooperative.slug == OTHER_SLUG)).one(),
        member=m("lucas"),
        steward=m("mamadou"),
        other_steward=m("lea"),
        coordinator=m("camille"),
        outsider=m("diois"),
    )


@pytest.fixture
def app(settings: Settings, engine: Engine, db: Session):
    """The app, its requests running inside the test's rolled-back transaction."""
    from api.deps import get_session
    from api.main import create_app

    application = create_app(settings, engine=engine)

    def _session() -> Iterator[Session]:
        # Each request runs as the app's role, held by row-level security like the served app
        # (which logs in as it: the live server does): inside the test's transaction, only a
        # SET LOCAL ROLE can, and the test's own queries after it run as the owner again.
        with as_app_role(db, settings):
            yield db
            db.flush()

    application.dependency_overrides[get_session] = _session
    return application


@contextmanager
def as_app_role(session: Session, settings: Settings) -> Iterator[Session]:
    """The session's statements run as the app's role (row-level security holds), anonymous until
    a member signs in; back to the owner after, unless the transaction failed (then rolled back)."""
    from sqlalchemy import text

    from commons_map.tenancy import act_as

    act_as(session, member_id=None, cooperative_id=None)
    session.execute(text(f'SET LOCAL ROLE "{settings.app_role}"'))
    try:
        yield session
    finally:
        if session.in_transaction() and session.get_transaction().is_active:
            try:
                session.execute(text("RESET ROLE"))
            except Exception:  # noqa: BLE001 - an aborted transaction: the rollback resets the role
                session.rollback()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """An HTTP client for the app (in process)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth(settings: Settings) -> Callable[[Member | None], dict[str, str]]:
    """Authorization headers for a member (none for anonymous)."""

    def headers(member: Member | None) -> dict[str, str]:
        if member is None:
            return {}
        return {"Authorization": f"Bearer {issue_token(member, settings)}"}

    return headers


def free_port() -> int:
    """A free TCP port on the loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A real uvicorn server on the loopback, over the committed test database."""

    url: str
    settings: Settings


@pytest.fixture(scope="session")
def live_server(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    """Serve the app for real (for GDAL, browsers, phones): `commons-map serve` in its own process.

    A separate process, not a thread: clients such as GDAL may hold this process's GIL while
    they wait for the answer.
    """
    import signal
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import httpx

    port = free_port()
    env = dict(
        os.environ,
        COMMONS_DATABASE_URL=settings.database_url,
        COMMONS_SECRET_KEY=settings.secret_key,
        COMMONS_ENVIRONMENT=settings.environment,
        COMMONS_ATTACHMENTS_DIR=str(settings.attachments_dir),
        # No partner read again in the background (as for the in-process app, ``settings``): this
        # server lives the whole run, over the baseline every test shares.
        COMMONS_PARTNERS_REFRESH_SECONDS=str(settings.partners_refresh_seconds),
    )
    log = Path(tempfile.mkstemp(prefix="cm-live-", suffix=".log")[1])
    cli = str(Path(sys.executable).parent / "commons-map")
    proc = subprocess.Popen([cli, "serve", "--port", str(port)], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"the live server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.1)
    try:
        yield LiveServer(url=url, settings=settings)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def add_public_parcels(db: Session, count: int) -> None:
    """``count`` small public land parcels on a grid (enough rows for the planner to use the indexes)."""
    from sqlalchemy import text

    db.execute(
        text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
            " SELECT (SELECT id FROM cooperatives ORDER BY id LIMIT 1), 'land', 'synthétique ' || i,"
            " ST_MakeEnvelope(5.0 + (i % 150) * 0.0006, 44.5 + (i / 150) * 0.0005,"
            "                 5.0 + (i % 150) * 0.0006 + 0.0004, 44.5 + (i / 150) * 0.0005 + 0.0003, 4326),"
            " 'public', 'restoring' FROM generate_series(1, :n) i"
        ),
        {"n": count},
    )
    db.execute(text("ANALYZE commons"))


# --- a real browser (Debian's chromium, driven by Playwright) --------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # screenshots


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium; waits a while for the apt install, skips only when it never came."""
    deadline = time.time() + 300
    while not Path(CHROMIUM).exists() and time.time() < deadline:
        time.sleep(5)
    if not shutil.which(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --- accessibility: axe-core from npm (scripts/ensure-axe.sh puts it in .tools/) ------------------

AXE = Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list[str]:  # noqa: ANN001
    """axe-core's violations of the WCAG 2.1 A/AA rules on the page as it is now (`make test` installs it)."""
    assert AXE.exists(), f"axe-core is missing at {AXE}: run scripts/ensure-axe.sh (make test does)"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    assert len(result["passes"]) > 10, "axe-core checked (almost) nothing"
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})" for v in result["violations"]]


@pytest.fixture(scope="session")
def partner_stub():
    """A misbehaving-on-demand partner server on the loopback (tests/commons_map/partners_helpers.py)."""
    from tests.commons_map.partners_helpers import start_stub

    stub, servers = start_stub()
    yield stub
    for s in servers:
        s.shutdown()
        s.server_close()
