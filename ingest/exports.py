"""Importing ODK Central and KoboToolbox exports (CSV, GeoJSON), deduplicated with OpenRosa by instanceID.

Central's CSV joins group paths with ``-`` and splits a geopoint into ``-Latitude -Longitude
-Altitude -Accuracy`` columns; its repeats come as separate CSVs (``form-repeat.csv``) linked by
``PARENT_KEY``. Kobo's CSV joins groups with ``/`` (often ``;``-separated, decimal commas) and adds
``_location_latitude``-style columns; its GeoJSON carries the same properties. Every row becomes a
submission keyed by its instanceID (``meta/instanceID``, ``KEY``, or ``uuid:`` + ``_uuid``): a row
already received (by OpenRosa or an earlier import) is skipped; a new one is stored (its row as
canonical JSON, with the SHA-256) and processed by the same processors as OpenRosa submissions.
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.errors import DomainError, ValidationFailed
from commons_map.fieldforms.service import add_attachment, get_submission, store_submission
from commons_map.messages import render, terminal_locale
from commons_map.people.models import Cooperative, Member
from commons_map.settings import get_settings
from ingest.openrosa import Incoming, check_file, process
from ingest.readers import _decode
from ingest.safety import LIMITS, remove_tree, safe_extract
from ingest.xforms import FORMS, FormSpec

GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
KOBO_GEO = ("latitude", "longitude", "altitude", "precision")
ID_KEYS = ("meta/instanceID", "meta-instanceID", "instanceID", "KEY")
MEMBER_KEYS = ("_submitted_by", "SubmitterName", "username")


@dataclass
class ExportResult:
    """What an export import did (or would do), row by row."""

    form_id: str
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    processed: int = 0
    rejected: list[str] = field(default_factory=list)  # "line 4: uuid:…: the reason"
    written: bool = False
    attachments: int = 0  # media files kept (from a ZIP's media/ folder)


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _read_csv(path: Path) -> list[dict[str, str]]:
    text = _decode(path.read_bytes())
    head = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=head.count)
    return [dict(r) for r in csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _read_geojson(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed("ingest.geojson_unreadable", field="file", reason=str(exc)) from exc
    if (not isinstance(data, dict) or data.get("type") != "FeatureCollection"
            or not isinstance(data.get("features"), list)):
        raise ValidationFailed("ingest.geojson_not_collection", field="file")
    rows = []
    for f in data["features"]:
        props = dict((f or {}).get("properties") or {})
        geom = (f or {}).get("geometry") or {}
        if geom.get("type") == "Point" and "_geolocation" not in props:
            c = geom.get("coordinates") or []
            props["_geometry_point"] = (
                " ".join(str(x) for x in [c[1], c[0], *(c[2:3] or [0]), 0]) if len(c) >= 2 else ""
            )
        rows.append(props)
    return rows


def leaf_values(row: dict[str, Any], spec: FormSpec) -> dict[str, Any]:
    """The row's values by leaf name: group paths cut, geopoint parts joined as 'lat lon alt acc'."""
    values: dict[str, Any] = {}
    geo: dict[str, dict[str, str]] = defaultdict(dict)
    for key, raw in row.items():
        if key is None:
            continue
        value = "" if raw is None else str(raw)
        last = key.split("/")[-1]
        base, dash, part = last.rpartition("-")
        if dash and part in GEO_PARTS:  # Central: location-Latitude …
            geo[base.split("-")[-1]][part] = value
            continue
        if last.startswith("_") and last.rsplit("_", 1)[-1] in KOBO_GEO:  # Kobo: _location_latitude …
            name, _, part = last[1:].rpartition("_")
            geo[name]["Kobo_" + part] = value
            continue
        values[last.split("-")[-1]] = value
    for name, parts in geo.items():
        if values.get(name):
            continue  # the combined column is there already
        lat = parts.get("Latitude") or parts.get("Kobo_latitude") or ""
        lon = parts.get("Longitude") or parts.get("Kobo_longitude") or ""
        if lat.strip() and lon.strip():
            alt = parts.get("Altitude") or parts.get("Kobo_altitude") or "0"
            acc = parts.get("Accuracy") or parts.get("Kobo_precision") or "0"
            values[name] = f"{lat} {lon} {alt or 0} {acc or 0}"
        else:
            values.setdefault(name, "")
    if "_geometry_point" in values:
        point_field = "location" if spec.form_id == "commons_worklog" else "point"
        values.setdefault(point_field, values.pop("_geometry_point"))
        values.pop("_geometry_point", None)
    return values


def instance_id_of(row: dict[str, Any]) -> str | None:
    """The row's instanceID ('uuid:…'), from the columns Central and Kobo use."""
    for key in ID_KEYS:
        for k, v in row.items():
            if k and (k == key or k.endswith("/" + key)) and v and str(v).strip() and "/" not in str(v).strip()[5:]:
                return str(v).strip()
    uuid = str(row.get("_uuid") or "").strip()
    return f"uuid:{uuid}" if uuid else None


def _form_of(path: Path, form_id: str | None) -> FormSpec:
    if form_id:
        if form_id not in FORMS:
            raise ValidationFailed("ingest.unknown_form", field="form", form_id=form_id, known=list(FORMS))
        return FORMS[form_id]
    stem = path.stem
    for fid in FORMS:
        if stem == fid or stem.endswith("_" + fid) or stem.startswith(fid):
            return FORMS[fid]
    raise ValidationFailed("ingest.form_from_name", field="form", name=path.name, known=list(FORMS))


def _member_of(
    session: Session, cooperative: Cooperative, row: dict[str, Any], default: Member | None
) -> Member | None:
    for key in MEMBER_KEYS:
        name = str(row.get(key) or "").strip()
        if not name:
            continue
        found = session.scalar(select(Member).where(
            Member.cooperative_id == cooperative.id,
            (Member.username == name.lower()) | (func.lower(Member.display_name) == name.lower())))
        if found is not None:
            return found
    return default


def import_export(session: Session, *, path: Path, cooperative: Cooperative, form_id: str | None = None,
                  member: Member | None = None, repeats: dict[str, Path] | None = None,
                  dry_run: bool = False, skip_rejected: bool = False,
                  progress: Callable[[int, int], None] | None = None,
                  attachments_dir: Path | None = None) -> ExportResult:
    """Import a Central/Kobo export; see the module docstring. ``member`` is the default submitter,
    the member the import runs as (``--as``): they are told how a real import (not a dry run) ended.

    All or nothing: when a row is refused (no instanceID, no member, other bytes under a known
    instanceID, a record a service refuses), nothing is written unless ``skip_rejected``, which
    writes the good rows and leaves no trace of the refused ones.
    """
    from commons_map.notify import jobs

    teller = member.id if member is not None and not dry_run else None
    run = jobs.run_id()
    try:
        result = _import_export(session, path=path, cooperative=cooperative, form_id=form_id, member=member,
                                repeats=repeats, dry_run=dry_run, skip_rejected=skip_rejected, progress=progress,
                                attachments_dir=attachments_dir)
    except Exception as exc:
        if teller is not None:  # this transaction is lost: the notice is written in one of its own
            jobs.tell_apart(session, member_id=teller, code="notify.import_failed",
                            params={"file": path.name, "reason": jobs.reason(exc)}, link=None, run=run)
        raise
    if teller is not None:
        if result.written:
            jobs.tell(session, member_id=teller, failed=False, code="notify.import_finished", link="/app/work",
                      params={"file": path.name, "created": result.created, "updated": 0,
                              "unchanged": result.duplicates, "rejected": len(result.rejected)}, run=run)
        else:
            jobs.tell(session, member_id=teller, failed=True, code="notify.import_rejected", link=None,
                      params={"file": path.name, "rejected": len(result.rejected)}, run=run)
    return result


def _unpack_central_zip(path: Path, into: Path) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """ODK Central's "download all" ZIP, unpacked (checked like any archive): the main CSV, the repeat
    CSVs by repeat name (``form-repeat.csv``, with a PARENT_KEY column) and the media/ files by name."""
    files = safe_extract(path, into)
    csvs = [f for f in files if f.suffix.lower() == ".csv"]
    media = {f.name: f for f in files if f.parent.name == "media" and f.suffix.lower() != ".csv"}

    def is_repeat(f: Path) -> bool:
        head = _decode(f.read_bytes()[:65536]).split("\n", 1)[0]
        return "PARENT_KEY" in head

    mains = [f for f in csvs if not is_repeat(f)]
    if len(mains) != 1:
        raise ValidationFailed("ingest.zip_one_main_csv", field="file", name=path.name,
                               found=sorted(f.name for f in mains))
    main = mains[0]
    repeats = {}
    for f in csvs:
        if f is not main and f.stem.startswith(main.stem + "-"):
            repeats[f.stem[len(main.stem) + 1:].split("-")[-1]] = f
    return main, repeats, media


def _media_of(values: dict[str, Any], media: dict[str, Path]) -> list[str]:
    """The media files a row names (in its own values or its repeats' values)."""
    names: set[str] = set()
    for value in values.values():
        if isinstance(value, list):
            for item in value:
                names |= {str(v) for v in item.values() if str(v) in media}
        elif str(value) in media:
            names.add(str(value))
    return sorted(names)


def _import_export(session: Session, *, path: Path, cooperative: Cooperative, form_id: str | None,
                   member: Member | None, repeats: dict[str, Path] | None, dry_run: bool, skip_rejected: bool,
                   progress: Callable[[int, int], None] | None, attachments_dir: Path | None = None) -> ExportResult:
    if path.stat().st_size > LIMITS.upload_bytes:
        raise ValidationFailed("ingest.file_too_large_mb", field="file", megabytes=LIMITS.upload_bytes // 2**20)
    if path.suffix.lower() == ".zip":
        tmp = Path(tempfile.mkdtemp(prefix="cm-export-"))
        try:
            main, found, media = _unpack_central_zip(path, tmp)
            if form_id is None and _guess_form(main) is None:
                form_id = _guess_form(path)  # the archive's name may say it when the CSV's does not
            return _import_rows(session, path=main, cooperative=cooperative, form_id=form_id, member=member,
                                repeats={**found, **(repeats or {})}, dry_run=dry_run, skip_rejected=skip_rejected,
                                progress=progress, media=media, attachments_dir=attachments_dir)
        finally:
            remove_tree(tmp)
    return _import_rows(session, path=path, cooperative=cooperative, form_id=form_id, member=member,
                        repeats=repeats, dry_run=dry_run, skip_rejected=skip_rejected, progress=progress,
                        media={}, attachments_dir=attachments_dir)


def _guess_form(path: Path) -> str | None:
    try:
        return _form_of(path, None).form_id
    except ValidationFailed:
        return None


def _import_rows(session: Session, *, path: Path, cooperative: Cooperative, form_id: str | None,
                 member: Member | None, repeats: dict[str, Path] | None, dry_run: bool, skip_rejected: bool,
                 progress: Callable[[int, int], None] | None, media: dict[str, Path],
                 attachments_dir: Path | None) -> ExportResult:
    spec = _form_of(path, form_id)
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        rows = _read_geojson(path)
        source = "geojson"
    elif suffix == ".csv":
        rows = _read_csv(path)
        cols = set(rows[0]) if rows else set()
        source = "kobo_csv" if any(c and ("/" in c or c.startswith("_")) for c in cols) else "central_csv"
    else:
        raise ValidationFailed("ingest.export_format", field="file", name=path.name)
    repeat_rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    found_repeats = dict(repeats or {})
    for name in spec.repeats:  # Central names repeat files form-repeat.csv, next to the main file
        sibling = path.with_name(f"{path.stem}-{name}.csv")
        if name not in found_repeats and sibling.exists():
            found_repeats[name] = sibling
    for name, rpath in found_repeats.items():
        if name not in spec.repeats:
            raise ValidationFailed("ingest.unknown_repeat", field="repeat", form_id=spec.form_id, name=name)
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in _read_csv(rpath):
            grouped[str(r.get("PARENT_KEY") or "").strip()].append(leaf_values(r, spec))
        repeat_rows[name] = grouped
    result = ExportResult(form_id=spec.form_id, rows=len(rows))
    pending: list[tuple[Any, str]] = []  # (submission, media file name): kept once the import is written
    savepoint = session.begin_nested()
    say = progress or (lambda done, total: None)
    locale = terminal_locale()  # the report is read in the terminal (the CLI), in its language
    for n, row in enumerate(rows, 2 if suffix == ".csv" else 1):
        say(n - (2 if suffix == ".csv" else 1), len(rows))
        where = render("ingest.at_line" if suffix == ".csv" else "ingest.at_feature", {"n": n}, locale)
        iid = instance_id_of(row)
        if not iid:
            result.rejected.append(render("ingest.export_no_instance_id", {"where": where}, locale))
            continue
        if get_submission(session, form_id=spec.form_id, instance_id=iid) is not None:
            result.duplicates += 1
            continue
        who = _member_of(session, cooperative, row, member)
        if who is None:
            result.rejected.append(render("ingest.export_no_submitter", {"where": where, "instance_id": iid,
                                                                         "cooperative": cooperative.slug}, locale))
            continue
        values = leaf_values(row, spec)
        for name, grouped in repeat_rows.items():
            values[name] = grouped.get(iid, [])
        raw = json.dumps({"row": row, "repeats": {k: values.get(k) for k in repeat_rows}}, sort_keys=True,
                         ensure_ascii=False, default=str).encode("utf-8")
        try:
            with session.begin_nested():  # a refused row leaves nothing, whatever happens to the others
                stored = store_submission(
                    session, cooperative_id=cooperative.id, member=who, form_id=spec.form_id,
                    form_version=str(row.get("FormVersion") or row.get("__version__") or ""), instance_id=iid,
                    deprecated_id=str(row.get("meta-deprecatedID") or row.get("meta/deprecatedID") or "") or None,
                    raw=raw, source=source)
                if stored.created:
                    process(session, stored.submission, values, who, None)
                    named = _media_of(values, media)
                    for name in named:
                        check_file(Incoming(name, _content_type(name), b""))
                    pending += [(stored.submission, name) for name in named]
        except DomainError as exc:
            result.rejected.append(f"{where} : {iid} : {exc.summary(locale)}" if locale == "fr"
                                   else f"{where}: {iid}: {exc.summary(locale)}")
            continue
        if not stored.created:
            result.duplicates += 1
            continue
        result.created += 1
        result.processed += stored.submission.status == "processed"
    say(len(rows), len(rows))
    result.written = not dry_run and (not result.rejected or skip_rejected)
    if result.written:
        root = attachments_dir or get_settings().attachments_dir
        for sub, name in pending:  # only now do files reach the disk (nothing of a refused row does)
            data = media[name].read_bytes()
            check_file(Incoming(name, _content_type(name), data))
            add_attachment(session, submission=sub, name=name, content_type=_content_type(name), data=data, root=root)
            result.attachments += 1
        savepoint.commit()
    else:
        savepoint.rollback()
    return result
