"""Fixtures for fault tests: a private PostgreSQL cluster we may stop, and real server processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVER_SECRET = "fault-test-secret-0123456789-abcdefghij"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it answers something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")


def pg_bin(name: str) -> Path | None:
    """A PostgreSQL server program (the newest installed major version), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return found[-1] if found else None


def run_pg(name: str, *args: str) -> None:
    """Run a PostgreSQL program, as the postgres user when we are root (the server refuses root)."""
    program = pg_bin(name)
    assert program is not None, name
    cmd = [str(program), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


@dataclass
class Cluster:
    """A private PostgreSQL cluster (started by the project's own set-up script)."""

    pgdata: Path
    port: int
    url: str

    def _ctl(self, *args: str) -> None:
        run_pg("pg_ctl", "-D", str(self.pgdata), *args)

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        self._ctl("-w", "-l", str(self.pgdata / "server.log"), "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.pgdata}",
                  "start")


def start_cluster(data: Path) -> Cluster:
    """A private cluster in ``data``/pg on a free port, made by the project's own set-up script."""
    port = free_port()
    env = dict(os.environ, COMMONS_PROBE_PORT="1", COMMONS_PRIVATE_PORT=str(port),
               COMMONS_PGDATA=str(data / "pg"), COMMONS_ENV_FILE=str(data / "env"))
    env.pop("COMMONS_DATABASE_URL", None)
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-postgis.sh")], env=env, check=True,
                   capture_output=True, timeout=300)
    url = (data / "env").read_text().strip().split("=", 1)[1]
    return Cluster(pgdata=data / "pg", port=port, url=url)


def start_replica(primary: Cluster, pgdata: Path) -> Cluster:
    """A hot standby of ``primary`` in ``pgdata``, made with ``pg_basebackup -R``, started on a free port."""
    pgdata.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(pgdata, "postgres", "postgres")
    run_pg("pg_basebackup", "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast",
           "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres")
    port = free_port()
    r = Cluster(pgdata=pgdata, port=port, url=primary.url.replace(f":{primary.port}/", f":{port}/"))
    r.start()
    return r


def stop_quietly(c: Cluster) -> None:
    try:
        c._ctl("-m", "immediate", "stop")
    except subprocess.CalledProcessError:
        pass


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A private cluster on a free port, with the project migrated in database commons_map."""
    if pg_bin("initdb") is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    data = Path(tempfile.mkdtemp(prefix="cm-fault-", dir="/var/tmp"))
    os.chmod(data, 0o755)
    c = start_cluster(data)
    subprocess.run([str(BIN / "commons-map"), "db", "upgrade"], env=dict(os.environ, COMMONS_DATABASE_URL=c.url),
                   check=True, capture_output=True, timeout=300)
    try:
        yield c
    finally:
        stop_quietly(c)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def replica(cluster: Cluster) -> Iterator[Cluster]:
    """A hot standby of ``cluster`` made with ``pg_basebackup -R``, streaming on its own port."""
    if pg_bin("pg_basebackup") is None:
        pytest.skip("no pg_basebackup on this machine")
    r = start_replica(cluster, cluster.pgdata.parent / "replica")
    try:
        yield r
    finally:
        stop_quietly(r)


@dataclass
class Server:
    """`commons-map serve` as a real process."""

    url: str
    env: dict
    port: int
    workers: int = 1
    proc: subprocess.Popen | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mktemp(prefix="cm-server-", suffix=".log")))

    def start(self, timeout: float = 120) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "commons-map"), "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            try:
                httpx.get(self.url + "/openapi.json", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash or the OOM killer would do."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def server_factory() -> Iterator:
    """Start `commons-map serve` processes against a database URL; all stopped after the test."""
    servers: list[Server] = []

    def make(database_url: str, *, workers: int = 1, **env: str) -> Server:
        port = free_port()
        e = dict(os.environ, COMMONS_DATABASE_URL=database_url, COMMONS_SECRET_KEY=SERVER_SECRET, **env)
        s = Server(url=f"http://127.0.0.1:{port}", env=e, port=port, workers=workers)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def demo_database() -> Iterator[str]:
    """A brand-new migrated database with the demo loaded by `commons-map demo load`, for one module.

    Shared by the module's tests, which each work on their own rows (their own keys, instance ids
    and external ids) and check only those, plus the invariants that hold for the whole database.
    """
    from commons_map.db import drop_database, ensure_database
    from commons_map.migrate import upgrade
    from tests.conftest import _test_url

    url = _test_url("cm_fault")
    ensure_database(url)
    try:
        upgrade(url)
        subprocess.run([str(BIN / "commons-map"), "demo", "load"], env=dict(os.environ, COMMONS_DATABASE_URL=url),
                       check=True, capture_output=True, timeout=600)
        yield url
    finally:
        drop_database(url)
