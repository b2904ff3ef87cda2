"""Defences for what comes from outside: zip archives, XML, file names, sizes.

Every check raises ``ValidationFailed`` naming the rule and the value, before anything is
extracted or parsed, so a hostile file never reaches GDAL or an XML parser unchecked.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from commons_map.errors import ValidationFailed


@dataclass(frozen=True)
class Limits:
    """Caps on what we accept (bytes unless said otherwise)."""

    upload_bytes: int = 200 * 1024 * 1024
    zip_entries: int = 2_000
    zip_total_bytes: int = 2 * 1024 * 1024 * 1024
    # A compression ratio above this, for an entry larger than ``zip_ratio_floor``, is a bomb.
    zip_ratio: float = 200.0
    zip_ratio_floor: int = 1024 * 1024
    xml_bytes: int = 4 * 1024 * 1024
    attachment_bytes: int = 25 * 1024 * 1024
    submission_bytes: int = 100 * 1024 * 1024
    submission_parts: int = 40


LIMITS = Limits()

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_basename(name: str | None, *, field: str = "filename") -> str:
    """The name itself when it is a plain file name; ValidationFailed for paths and tricks."""
    if not name:
        raise ValidationFailed("ingest.filename_required", field=field)
    if _CONTROL.search(name):
        raise ValidationFailed("ingest.filename_control", field=field, name=name)
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise ValidationFailed("ingest.filename_not_plain", field=field, name=name)
    if len(name) > 255:
        raise ValidationFailed("ingest.filename_too_long", field=field)
    return name


def _check_member_name(name: str) -> None:
    if _CONTROL.search(name):
        raise ValidationFailed("ingest.entry_control", field="file", entry=name)
    if "\\" in name:
        raise ValidationFailed("ingest.entry_backslash", field="file", entry=name)
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise ValidationFailed("ingest.entry_absolute", field="file", entry=name)
    if ".." in path.parts:
        raise ValidationFailed("ingest.entry_climbs", field="file", entry=name)


def check_zip(zf: zipfile.ZipFile, limits: Limits = LIMITS) -> list[zipfile.ZipInfo]:
    """The archive's file entries, after checking names, count, sizes and ratios (nothing extracted)."""
    infos = zf.infolist()
    if len(infos) > limits.zip_entries:
        raise ValidationFailed("ingest.too_many_entries", field="file", count=len(infos), maximum=limits.zip_entries)
    total = 0
    files = []
    for info in infos:
        _check_member_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ValidationFailed("ingest.entry_symlink", field="file", entry=info.filename)
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise ValidationFailed("ingest.entry_encrypted", field="file", entry=info.filename)
        total += info.file_size
        if total > limits.zip_total_bytes:
            raise ValidationFailed("ingest.archive_too_big", field="file", megabytes=limits.zip_total_bytes // 2**20)
        if info.file_size > limits.zip_ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.zip_ratio:
                raise ValidationFailed("ingest.zip_bomb", field="file", entry=info.filename, ratio=round(ratio),
                                       maximum=limits.zip_ratio)
        files.append(info)
    return files


def safe_extract(path: Path, dest: Path, limits: Limits = LIMITS) -> list[Path]:
    """Extract a checked archive into ``dest``, counting the real bytes as they come out."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValidationFailed("ingest.not_a_zip", field="file", reason=str(exc)) from exc
    out: list[Path] = []
    written = 0
    with zf:
        for info in check_zip(zf, limits):
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise ValidationFailed("ingest.entry_leaves", field="file", entry=info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                left = info.file_size
                while True:
                    chunk = src.read(1024 * 1024)
                    if not chunk:
                        break
                    written += len(chunk)
                    left -= len(chunk)
                    # The header lied about the size: stop before the disk fills.
                    if left < 0 or written > limits.zip_total_bytes:
                        raise ValidationFailed("ingest.entry_lies", field="file", entry=info.filename)
                    dst.write(chunk)
            out.append(target)
    return out


def parse_xml(data: bytes, limits: Limits = LIMITS, *, field: str = "xml_submission_file") -> Any:
    """The root element of ``data``: capped in size, no DTD, no entities (defusedxml)."""
    if len(data) > limits.xml_bytes:
        raise ValidationFailed("ingest.xml_too_large", field=field, size=len(data), maximum=limits.xml_bytes)
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValidationFailed("ingest.xml_dtd", field=field, reason=type(exc).__name__) from exc
    except SafeET.ParseError as exc:
        raise ValidationFailed("ingest.xml_malformed", field=field, reason=str(exc)) from exc


def remove_tree(path: Path) -> None:
    """Remove a temporary folder, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


def file_size(path: str | os.PathLike[str]) -> int:
    """The size of a file in bytes."""
    return os.stat(path).st_size
