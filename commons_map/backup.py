"""Backups that restore: pg_dump's custom format plus the attachments kept on disk.

A backup is one tar file holding ``database.dump`` (pg_dump -Fc), ``attachments/`` and a
``manifest.json`` with each table's row count and content checksum, so a restore can prove
that it found every record again.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from commons_map.db import ensure_database, session_scope
from commons_map.errors import Conflict, ValidationFailed
from commons_map.messages import Message
from commons_map.notify import jobs


def libpq_url(url: str) -> str:
    """The URL as libpq tools (pg_dump, pg_restore, psql) want it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def table_fingerprints(url: str) -> dict[str, dict[str, object]]:
    """Row count and an order-independent checksum of every table of the public schema."""
    engine = create_engine(url)
    out: dict[str, dict[str, object]] = {}
    try:
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename NOT IN ('spatial_ref_sys') ORDER BY tablename"
            )).scalars().all()
            for t in tables:
                row = conn.execute(text(
                    f'SELECT count(*), coalesce(md5(string_agg(md5(x::text), \'\' ORDER BY md5(x::text))), \'\')'
                    f' FROM "{t}" x'
                )).one()
                out[t] = {"rows": int(row[0]), "md5": row[1]}
    finally:
        engine.dispose()
    return out


def _files(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@dataclass
class BackupReport:
    """What a backup or a restore did."""

    path: Path
    tables: int
    rows: int
    attachments: int


class DumpFailed(RuntimeError):
    """pg_dump refused or failed; ``detail`` is what it said."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"pg_dump failed: {detail}")
        self.detail = detail


def backup(url: str, attachments_dir: Path, out: Path, *, tell: int | None = None) -> BackupReport:
    """Write a backup of the database at ``url`` and of ``attachments_dir`` to ``out`` (.tar).

    ``tell``: the id of the coordinator who runs it, notified (in the database backed up) when it
    finished or failed; the notice of a success is written after the dump, so it is not in it.
    """
    run = jobs.run_id()
    try:
        report = _backup(url, Path(attachments_dir), Path(out))
    except Exception as exc:
        if tell is not None:
            why = Message("backup.dump_failed", {"detail": exc.detail}) if isinstance(exc, DumpFailed) \
                else jobs.reason(exc)
            _tell(url, tell, "notify.backup_failed", {"path": str(out), "reason": why}, run)
        raise
    if tell is not None:
        _tell(url, tell, "notify.backup_finished", {"path": str(report.path), "tables": report.tables,
                                                     "rows": report.rows, "attachments": report.attachments}, run)
    return report


def _tell(url: str, member_id: int, code: str, params: dict, run: str) -> None:
    engine = create_engine(url)
    try:
        with session_scope(engine) as session:
            jobs.tell(session, member_id=member_id, failed=code.endswith("_failed"), code=code, params=params,
                      link=None, run=run)
    finally:
        engine.dispose()


def _backup(url: str, attachments_dir: Path, out: Path) -> BackupReport:
    with tempfile.TemporaryDirectory(prefix="cm-backup-") as tmp:
        dump = Path(tmp) / "database.dump"
        proc = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(dump),
             "--dbname", libpq_url(url)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise DumpFailed(proc.stderr.strip())
        fingerprints = table_fingerprints(url)
        files = _files(Path(attachments_dir))
        manifest = {
            "format": "commons-map-backup/1",
            "created_at": datetime.now(UTC).isoformat(),
            "database": make_url(url).database,
            "tables": fingerprints,
            "attachments": files,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(out.suffix + ".partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(dump, arcname="database.dump")
            if Path(attachments_dir).exists():
                tar.add(attachments_dir, arcname="attachments")
        partial.replace(out)  # a backup file exists only once complete
    return BackupReport(out, len(fingerprints), sum(int(t["rows"]) for t in fingerprints.values()), len(files))


def read_manifest(path: Path) -> dict:
    """The manifest of a backup file, or ValidationFailed when it is not one."""
    try:
        with tarfile.open(path, "r") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            manifest = json.loads(member.read())
    except (tarfile.TarError, KeyError, json.JSONDecodeError, OSError) as exc:
        raise ValidationFailed("backup.not_a_backup", field="file", path=str(path), reason=str(exc)) from exc
    if manifest.get("format") != "commons-map-backup/1":
        raise ValidationFailed("backup.unknown_format", field="file", path=str(path),
                               format=str(manifest.get("format")))
    return manifest


def restore(path: Path, url: str, attachments_dir: Path, *, force: bool = False) -> BackupReport:
    """Restore a backup into the (new or empty) database at ``url``, then verify every table."""
    manifest = read_manifest(Path(path))
    ensure_database(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        used = conn.execute(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'"
        )).scalar()
    engine.dispose()
    if used and not force:
        raise Conflict("backup.database_not_empty", field="database", database=str(make_url(url).database))
    attachments_dir = Path(attachments_dir)
    with tempfile.TemporaryDirectory(prefix="cm-restore-") as tmp:
        with tarfile.open(path, "r") as tar:
            tar.extractall(tmp, filter="data")  # refuses links and paths outside tmp
        proc = subprocess.run(
            ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
             *(["--clean", "--if-exists"] if force else []),
             "--dbname", libpq_url(url), str(Path(tmp) / "database.dump")],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pg_restore failed: {proc.stderr.strip()}")
        src = Path(tmp) / "attachments"
        if src.exists():
            attachments_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, attachments_dir, dirs_exist_ok=True)
    found = table_fingerprints(url)
    wanted = manifest["tables"]
    differ = sorted(t for t in wanted if found.get(t) != wanted[t])
    if differ:
        raise RuntimeError(f"restore verification failed for tables: {', '.join(differ)}")
    restored_files = _files(attachments_dir)
    missing = sorted(f for f, h in manifest["attachments"].items() if restored_files.get(f) != h)
    if missing:
        raise RuntimeError(f"restore verification failed for attachments: {', '.join(missing[:5])}")
    return BackupReport(Path(path), len(found), sum(int(t["rows"]) for t in found.values()),
                        len(manifest["attachments"]))
