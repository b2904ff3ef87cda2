"""Backups restore: every record, balance and attachment equal in a new database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from commons_map.backup import read_manifest, restore, table_fingerprints
from commons_map.db import drop_database
from commons_map.errors import Conflict, ValidationFailed

CLI = str(Path(sys.executable).parent / "commons-map")


def _cli(args, url, attachments):
    env = dict(os.environ, COMMONS_DATABASE_URL=url, COMMONS_ATTACHMENTS_DIR=str(attachments))
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def test_backup_then_restore_into_a_new_database(database_url, engine, tmp_path):
    src_files = tmp_path / "attachments"
    (src_files / "2026" / "uuid-1").mkdir(parents=True)
    (src_files / "2026" / "uuid-1" / "photo.jpg").write_bytes(os.urandom(2048))
    (src_files / "sample.xml").write_text("<data/>")
    archive = tmp_path / "backup.tar"
    r = _cli(["db", "backup", str(archive)], database_url, src_files)
    assert r.returncode == 0, r.stderr
    manifest = read_manifest(archive)
    assert manifest["tables"]["commons"]["rows"] >= 69
    assert set(manifest["attachments"]) == {"2026/uuid-1/photo.jpg", "sample.xml"}

    target = make_url(database_url).set(database=make_url(database_url).database + "_restored")
    target_url = target.render_as_string(hide_password=False)
    restored_files = tmp_path / "restored-attachments"
    try:
        r = _cli(["db", "restore", str(archive), "--to", target_url], database_url, restored_files)
        assert r.returncode == 0, r.stderr
        assert "restored and verified" in r.stderr
        # Independently of the restore's own check: every table equal, row by row.
        assert table_fingerprints(target_url) == table_fingerprints(database_url)
        assert (restored_files / "2026" / "uuid-1" / "photo.jpg").read_bytes() == \
            (src_files / "2026" / "uuid-1" / "photo.jpg").read_bytes()
        # A second restore into the now-used database is refused, and writes nothing.
        with pytest.raises(Conflict, match="is not empty"):
            restore(archive, target_url, restored_files)
        r = _cli(["db", "restore", str(archive), "--to", target_url], database_url, restored_files)
        assert r.returncode != 0 and "not empty" in r.stderr
    finally:
        drop_database(target_url)


def test_restore_refuses_what_is_not_a_backup(tmp_path, database_url):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"not a tar file at all")
    with pytest.raises(ValidationFailed, match="not a commons-map backup"):
        restore(bogus, database_url, tmp_path / "a")
