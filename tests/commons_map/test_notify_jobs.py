"""A backup tells the coordinator who ran it (``db backup --as``) that it finished or failed, and why."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from commons_map.backup import DumpFailed, backup
from commons_map.db import session_scope
from commons_map.notify.models import Notification
from commons_map.notify.service import text_of
from commons_map.people.models import MemberRole
from tests.commons_map.notify_helpers import clean_fixture, member, notify_engine_fixture  # noqa: F401 (fixtures)

CLI = str(Path(sys.executable).parent / "commons-map")


@pytest.fixture(name="coordinator")
def coordinator_fixture(clean: Engine) -> Iterator[int]:
    """amelie, made coordinator of the module's cooperative for the test."""
    amelie = member(clean, "amelie")
    with session_scope(clean) as s:
        s.add(MemberRole(member_id=amelie.id, role="coordinator"))
    yield amelie.id
    with session_scope(clean) as s:
        s.execute(delete(MemberRole).where(MemberRole.member_id == amelie.id))


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _told(engine: Engine) -> list[Notification]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Notification).order_by(Notification.id)))
        s.expunge_all()
        return rows


def test_a_finished_backup_tells_what_it_holds(clean, coordinator, tmp_path):
    report = backup(_url(clean), tmp_path / "files", tmp_path / "out" / "b.tar", tell=coordinator)
    assert report.path.exists()
    [n] = _told(clean)
    assert (n.member_id, n.kind, n.code) == (coordinator, "job_finished", "notify.backup_finished")
    assert n.params["tables"] == report.tables and n.params["rows"] == report.rows
    out = str(tmp_path / "out" / "b.tar")
    assert text_of(n, "fr") == f"La sauvegarde {out} est écrite : {report.tables} tables, {report.rows} lignes, " \
                               "0 pièces jointes."
    assert text_of(n, "en") == f"The backup {out} is written: {report.tables} tables, {report.rows} rows, " \
                               "0 attachments."
    backup(_url(clean), tmp_path / "files", tmp_path / "silent.tar")  # nobody named: nobody told
    assert len(_told(clean)) == 1


def test_a_failed_backup_tells_why(clean, coordinator, tmp_path, monkeypatch):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    with pytest.raises(OSError):
        backup(_url(clean), tmp_path / "files", in_the_way / "b.tar", tell=coordinator)
    [n] = _told(clean)
    assert (n.kind, n.code, n.params["reason"]["code"]) == ("job_failed", "notify.backup_failed", "notify.job_error")
    assert text_of(n, "en") == (f"The backup {in_the_way / 'b.tar'} failed: an unexpected error (FileExistsError); "
                                "the server's log tells more.")
    assert text_of(n, "fr").startswith(f"La sauvegarde {in_the_way / 'b.tar'} a échoué : une erreur inattendue")

    # pg_dump itself refusing (here one older than the server, the usual cause): its words are passed on.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump: error: aborting because of server version mismatch' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DumpFailed):
        backup(_url(clean), tmp_path / "files", tmp_path / "c.tar", tell=coordinator)
    last = _told(clean)[-1]
    said = "pg_dump: error: aborting because of server version mismatch"
    assert last.params["reason"] == {"code": "backup.dump_failed", "params": {"detail": said}}
    assert text_of(last, "fr") == (f"La sauvegarde {tmp_path / 'c.tar'} a échoué : pg_dump a échoué : "
                                   "pg_dump: error: aborting because of server version mismatch")
    assert not (tmp_path / "c.tar").exists()


def test_db_backup_as_a_coordinator_only(clean, coordinator, tmp_path):
    env = dict(os.environ, COMMONS_DATABASE_URL=_url(clean), COMMONS_ATTACHMENTS_DIR=str(tmp_path / "files"),
               COMMONS_LOCALE="en")
    refused = subprocess.run([CLI, "db", "backup", str(tmp_path / "x.tar"), "--as", "john"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "john is not a coordinator" in refused.stderr
    unknown = subprocess.run([CLI, "db", "backup", str(tmp_path / "x.tar"), "--as", "nobody"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 1 and "No member nobody" in unknown.stderr
    assert not (tmp_path / "x.tar").exists() and _told(clean) == []
    ok = subprocess.run([CLI, "db", "backup", str(tmp_path / "x.tar"), "--as", "Amelie"], env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert [(n.member_id, n.code) for n in _told(clean)] == [(coordinator, "notify.backup_finished")]
