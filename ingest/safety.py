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
        raise ValidationFailed(f"{field}: a file name is required", field=field)
    if _CONTROL.search(name):
        raise ValidationFailed(f"{field}: {name!r} holds control characters", field=field)
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise ValidationFailed(
            f"{field}: {name!r} is not a plain file name (no folders, no '..')", field=field
        )
    if len(name) > 255:
        raise ValidationFailed(f"{field}: the file name is longer than 255 characters", field=field)
    return name


def _check_member_name(name: str) -> None:
    if _CONTROL.search(name):
        raise ValidationFailed(f"archive: entry {name!r} holds control characters", field="file")
    if "\\" in name:
        raise ValidationFailed(f"archive: entry {name!r} uses backslashes", field="file")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise ValidationFailed(f"archive: entry {name!r} is an absolute path", field="file")
    if ".." in path.parts:
        raise ValidationFailed(f"archive: entry {name!r} climbs out of the archive ('..')", field="file")


def check_zip(zf: zipfile.ZipFile, limits: Limits = LIMITS) -> list[zipfile.ZipInfo]:
    """The archive's file entries, after checking names, count, sizes and ratios (nothing extracted)."""
    infos = zf.infolist()
    if len(infos) > limits.zip_entries:
        raise ValidationFailed(
            f"archive: {len(infos)} entries; at most {limits.zip_entries} are accepted", field="file"
        )
    total = 0
    files = []
    for info in infos:
        _check_member_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ValidationFailed(f"archive: entry {info.filename!r} is a symbolic link", field="file")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise ValidationFailed(f"archive: entry {info.filename!r} is encrypted", field="file")
        total += info.file_size
        if total > limits.zip_total_bytes:
            raise ValidationFailed(
                f"archive: would expand to more than {limits.zip_total_bytes // 2**20} MB", field="file"
            )
        if info.file_size > limits.zip_ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.zip_ratio:
                raise ValidationFailed(
                    f"archive: entry {info.filename!r} expands {ratio:.0f} times"
                    f" (more than {limits.zip_ratio:g}): refused as a decompression bomb",
                    field="file",
                )
        files.append(info)
    return files


def safe_extract(path: Path, dest: Path, limits: Limits = LIMITS) -> list[Path]:
    """Extract a checked archive into ``dest``, counting the real bytes as they come out."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValidationFailed(f"file: not a readable zip archive ({exc})", field="file") from exc
    out: list[Path] = []
    written = 0
    with zf:
        for info in check_zip(zf, limits):
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise ValidationFailed(f"archive: entry {info.filename!r} leaves the folder", field="file")
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
                        raise ValidationFailed(
                            f"archive: entry {info.filename!r} is larger than it declares", field="file"
                        )
                    dst.write(chunk)
            out.append(target)
    return out


def parse_xml(data: bytes, limits: Limits = LIMITS, *, field: str = "xml_submission_file") -> Any:
    """The root element of ``data``: capped in size, no DTD, no entities (defusedxml)."""
    if len(data) > limits.xml_bytes:
        raise ValidationFailed(
            f"{field}: {len(data)} bytes; at most {limits.xml_bytes} are accepted", field=field
        )
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValidationFailed(
            f"{field}: refused: the XML declares a DTD or entities ({type(exc).__name__})", field=field
        ) from exc
    except SafeET.ParseError as exc:
        raise ValidationFailed(f"{field}: not well-formed XML ({exc})", field=field) from exc


def remove_tree(path: Path) -> None:
    """Remove a temporary folder, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


def file_size(path: str | os.PathLike[str]) -> int:
    """The size of a file in bytes."""
    return os.stat(path).st_size
