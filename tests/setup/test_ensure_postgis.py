"""The set-up script's last resort: a private PostgreSQL cluster with PostGIS, started for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-postgis.sh"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")), reason="no PostgreSQL binaries")
def test_private_cluster_when_no_server_answers():
    data = Path(tempfile.mkdtemp(prefix="cm-pgdata-", dir="/var/tmp"))
    os.chmod(data, 0o755)
    pgdata = data / "cluster"
    env_file = data / "env"
    port = _free_port()
    env = dict(os.environ, COMMONS_PROBE_PORT="1", COMMONS_PRIVATE_PORT=str(port),
               COMMONS_PGDATA=str(pgdata), COMMONS_ENV_FILE=str(env_file))
    env.pop("COMMONS_DATABASE_URL", None)
    try:
        r = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "private PostgreSQL" in r.stderr
        url = env_file.read_text().strip().split("=", 1)[1]
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/commons_map"
        engine = create_engine(url.replace("/commons_map", "/postgres"))
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")).scalar() == 1
        engine.dispose()
        # Run twice, it reuses what exists.
        r2 = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
        assert r2.returncode == 0, r2.stderr
        assert "creating a private" not in r2.stderr
    finally:
        pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
        stop = [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "stop"]
        if os.geteuid() == 0:
            stop = ["runuser", "-u", "postgres", "--", *stop]
        subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)
