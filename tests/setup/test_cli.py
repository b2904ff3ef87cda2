"""The real `commons-map` command, run as a user or a script would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from commons_map.db import drop_database
from commons_map.people.auth import authenticate
from commons_map.people.models import Member

CLI = [str(Path(sys.executable).parent / "commons-map")]


def run(args: list[str], url: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    return subprocess.run(CLI + args, input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_members_add_reads_the_password_from_stdin(database_url, engine):
    r = run(["members", "add", "script-user", "--name", "Script User", "--role", "coordinator",
             "--cooperative", "cic-saillans", "--password-stdin"], database_url, "un-mot-de-passe\n")
    assert r.returncode == 0, r.stderr
    assert "added script-user" in r.stdout
    with Session(engine) as s:
        member = authenticate(s, username="script-user", password="un-mot-de-passe")
        assert member.is_coordinator
        s.delete(member)
        s.commit()


def test_members_add_refuses_bad_input_and_writes_nothing(database_url, engine):
    r = run(["members", "add", "Bad Name!", "--password-stdin"], database_url, "short\n")
    assert r.returncode != 0
    assert "username" in r.stderr and "password" in r.stderr
    r = run(["members", "add", "someone", "--role", "king", "--password-stdin"], database_url, "long-enough-pw\n")
    assert r.returncode != 0 and "roles: Unknown role(s) king; known: coordinator." in r.stderr
    r = run(["members", "add", "camille", "--password-stdin"], database_url, "long-enough-pw\n")
    assert r.returncode != 0 and "already taken" in r.stderr
    with Session(engine) as s:
        assert s.scalar(select(Member).where(Member.username.in_(["someone", "bad name!"]))) is None


def test_db_upgrade_creates_and_migrates_a_missing_database(database_url):
    url = make_url(database_url).set(database=make_url(database_url).database + "_cli").render_as_string(
        hide_password=False)
    try:
        r = run(["db", "upgrade"], url)
        assert r.returncode == 0, r.stderr
        assert "created database" in r.stderr
        r = run(["demo", "load"], url)
        assert r.returncode == 0, r.stderr
        r2 = run(["demo", "load"], url)
        assert "already loaded" in r2.stderr
        r3 = run(["demo", "synth", "--parcels", "2500"], url)
        assert r3.returncode == 0, r3.stderr
        eng = create_engine(url)
        with eng.connect() as c:
            synth = c.execute(text("SELECT count(*) FROM commons WHERE external_id LIKE 'synth:%'")).scalar()
            valid = c.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM commons")).scalar()
        eng.dispose()
        assert synth == 2500 and valid
        assert run(["db", "url"], url).stdout.strip().endswith("_cli")
    finally:
        drop_database(url)
