"""/api/v1/ingest: coordinators upload geodata files (dry run first) and field-form exports."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentMember, SessionDep
from api.errors import problem, request_locale
from api.routers.openrosa import PayloadTooLarge, read_multipart
from commons_map.errors import PermissionDenied, ValidationFailed
from commons_map.messages import render
from commons_map.people.permissions import is_coordinator_of
from ingest.geodata import ImportOptions, import_commons
from ingest.safety import LIMITS, check_basename

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
BOOL = {
    "true": True, "1": True, "yes": True, "on": True,
    "false": False, "0": False, "no": False, "off": False, "": False,
}


def _flag(form: Any, name: str) -> bool:
    raw = str(form.get(name, "")).strip().lower()
    if raw not in BOOL:
        raise ValidationFailed("ingest.not_a_flag", field=name, raw=raw)
    return BOOL[raw]


def _mapping(form: Any) -> dict[str, str]:
    raw = form.get("map")
    if raw is None or raw == "":
        mapping: dict[str, str] = {}
    else:
        try:
            mapping = json.loads(str(raw))
        except json.JSONDecodeError as exc:
            raise ValidationFailed("ingest.map_json", field="map") from exc
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValidationFailed("ingest.map_json", field="map")
    for key in ("name", "kind_column", "external_id", "description", "visibility", "state", "parent"):
        value = form.get(key)
        if isinstance(value, str) and value.strip():
            mapping["kind" if key == "kind_column" else key] = value.strip()
    return mapping


async def _save_upload(upload: Any, dest: Path) -> Path:
    name = check_basename(Path(upload.filename or "").name or None, field="file")
    path = dest / name
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(1024 * 1024):
            size += len(chunk)
            if size > LIMITS.upload_bytes:
                raise PayloadTooLarge("ingest.file_too_large", field="file", max_bytes=LIMITS.upload_bytes)
            out.write(chunk)
    return path


@router.post("/commons")
async def upload_commons(request: Request, session: SessionDep, member: CurrentMember) -> JSONResponse:
    """Import commons from an uploaded file (multipart: ``file`` and the options as fields).

    Fields: map (JSON object target->column) or name / external_id / kind_column / description /
    visibility / state / parent; kind (one kind for all rows); crs; layer; lat; lon; wkt;
    id_prefix; encoding (a shapefile's or CSV's, e.g. ISO-8859-1; by default its .cpg, else UTF-8
    when its texts are); make_valid; dry_run; skip_rejected. Answers the per-row report: 200 for a dry
    run, 201 when written, 422 (nothing written) when rows are rejected.
    """
    if not is_coordinator_of(member, member.cooperative_id):
        raise PermissionDenied("ingest.coordinators_only")
    try:
        return await _upload(request, session, member)
    except PayloadTooLarge as exc:
        locale = request_locale(request)
        return problem(413, exc.text(locale), errors=[p.as_dict(locale) for p in exc.problems], code=exc.code,
                       kind="payload_too_large", params=exc.as_dict()["params"])


async def _upload(request: Request, session: Any, member: Any) -> JSONResponse:
    form = await read_multipart(request, max_bytes=LIMITS.upload_bytes + 64 * 1024, max_files=1)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed("ingest.file_part", field="file")
        options = ImportOptions(
            mapping=_mapping(form), kind=(str(form.get("kind") or "").strip() or None),
            crs=(str(form.get("crs") or "").strip() or None), layer=(str(form.get("layer") or "").strip() or None),
            make_valid=_flag(form, "make_valid"), dry_run=_flag(form, "dry_run"),
            id_prefix=str(form.get("id_prefix") or ""), skip_rejected=_flag(form, "skip_rejected"),
            csv_columns={k: str(form.get(k)).strip() for k in ("lat", "lon", "wkt") if str(form.get(k) or "").strip()},
            encoding=(str(form.get("encoding") or "").strip() or None),
        )
        with tempfile.TemporaryDirectory(prefix="commons-upload-") as tmp:
            path = await _save_upload(upload, Path(tmp))
            report = await run_in_threadpool(import_commons, session, actor=member, path=path, options=options,
                                             filename=path.name)
    finally:
        await form.close()
    locale = request_locale(request)
    body = report.as_dict(locale)
    if report.counts["rejected"] and not report.written and not report.dry_run:
        errors = [{"field": f"row {r.row}", "message": "; ".join(r.reasons_in(locale))} for r in report.rejected[:200]]
        return problem(422, render("ingest.rows_rejected", {"count": report.counts["rejected"]}, locale),
                       errors=errors, code="validation_failed", report=body)
    changed = report.counts["create"] + report.counts["update"]
    return JSONResponse(body, status_code=201 if report.written and changed else 200)
