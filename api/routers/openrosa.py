"""OpenRosa for ODK Collect and KoboCollect: /openrosa/formList, the forms, /openrosa/submission.

Two ways in: ``/openrosa/key/{token}/…`` (a member's field token in the URL, as ODK Central's
app users do: nothing to type on a phone, fits a QR code) and ``/openrosa/…`` with HTTP Basic
(Collect sends Basic only over HTTPS; in production we refuse it over plain HTTP too).
Every answer carries ``X-OpenRosa-Version: 1.0`` and ``Date``; errors use the OpenRosaResponse
envelope that Collect shows to the person holding the phone. Field tokens are managed under
/api/v1/field-tokens.
"""

from __future__ import annotations

import base64
import binascii
import logging
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser

from api.deps import CurrentMember, OptionalMember, SessionDep, SettingsDep, sign_in
from api.errors import status_for
from commons_map.db import DbId
from commons_map.errors import AuthenticationFailed, DomainError, ValidationFailed
from commons_map.fieldforms import service as fieldforms
from commons_map.fieldforms.attachments import attachment_file
from commons_map.messages import Message, render
from commons_map.people.models import Member
from commons_map.people.service import get_member
from ingest import openrosa as receiving
from ingest.safety import LIMITS
from ingest.xforms import FORMS, media_file, media_files, served_form

log = logging.getLogger("commons_map.openrosa")
router = APIRouter(prefix="/openrosa", tags=["openrosa"])
tokens_router = APIRouter(prefix="/api/v1/field-tokens", tags=["field tokens"])
attachments_router = APIRouter(prefix="/api/v1/attachments", tags=["field tokens"])
NS_LIST = "http://openrosa.org/xforms/xformsList"
NS_RESPONSE = "http://openrosa.org/http/response"
NS_MANIFEST = "http://openrosa.org/xforms/xformsManifest"
REALM = "commons-map"


class PayloadTooLarge(DomainError):
    """The request is larger than we accept."""

    code = "payload_too_large"


def headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers every OpenRosa answer carries."""
    h = {"X-OpenRosa-Version": "1.0", "Date": formatdate(usegmt=True)}
    h.update(extra or {})
    return h


def envelope(status: int, message: str, *, nature: str = "", extra: dict[str, str] | None = None) -> Response:
    """An OpenRosaResponse: what Collect shows the member."""
    body = (f'<OpenRosaResponse xmlns="{NS_RESPONSE}"><message nature="{nature}">{escape(message)}</message>'
            "</OpenRosaResponse>")
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8", headers=headers(extra))


def bilingual(said: DomainError | Message) -> str:
    """What Collect shows the member: French, then English (one language when both read the same)."""
    fr, en = (_in(said, loc) for loc in ("fr", "en"))
    return en if fr == en else f"{fr} / {en}"


def _in(said: DomainError | Message, locale: str) -> str:
    return said.text(locale) if isinstance(said, Message) else said.summary(locale)


def error_response(exc: DomainError) -> Response:
    """A domain error as an OpenRosa envelope (401 with a Basic challenge)."""
    status = 413 if isinstance(exc, PayloadTooLarge) else status_for(exc)
    extra = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'} if status == 401 else None
    if "retry_after" in exc.detail:  # a throttled sign-in: when to try again
        extra = {"Retry-After": str(exc.detail["retry_after"])}
    log.info("openrosa -> %s %s", status, exc.message)
    return envelope(status, bilingual(exc), nature="error", extra=extra)


def _basic_member(request: Request, session: Any, settings: Any) -> Member:
    raw = request.headers.get("authorization", "")
    scheme, _, value = raw.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise AuthenticationFailed("openrosa.sign_in")
    if settings.environment == "production" and request.url.scheme != "https":
        raise AuthenticationFailed("openrosa.basic_https_only")
    try:
        username, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("openrosa.basic_malformed") from exc
    return sign_in(request, session, username=username, password=password)


def _member(request: Request, session: Any, settings: Any, token: str | None) -> Member:
    if token is not None:
        return fieldforms.member_from_token(session, token)
    return _basic_member(request, session, settings)


def _base(request: Request, token: str | None) -> str:
    root = str(request.base_url).rstrip("/") + "/openrosa"
    return f"{root}/key/{token}" if token is not None else root


def _form_list(request: Request, session: Any, settings: Any, token: str | None, form_id: str | None) -> Response:
    try:
        member = _member(request, session, settings, token)
        base = _base(request, token)
        items = []
        for fid in FORMS:
            if form_id and fid != form_id:
                continue
            f = served_form(session, member=member, form_id=fid)
            manifest = (f"<manifestUrl>{escape(base)}/forms/{escape(f.form_id)}/manifest</manifestUrl>"
                        if f.has_media else "")
            items.append(
                f"<xform><formID>{escape(f.form_id)}</formID><name>{escape(f.title)}</name>"
                f"<version>{escape(f.version)}</version><hash>md5:{f.md5}</hash>"
                f"<downloadUrl>{escape(base)}/forms/{escape(f.form_id)}.xml</downloadUrl>{manifest}</xform>"
            )
    except DomainError as exc:
        return error_response(exc)
    body = f'<?xml version="1.0" encoding="UTF-8"?><xforms xmlns="{NS_LIST}">{"".join(items)}</xforms>'
    return Response(body, media_type="text/xml; charset=utf-8", headers=headers())


def _form(request: Request, session: Any, settings: Any, token: str | None, filename: str) -> Response:
    try:
        member = _member(request, session, settings, token)
        if not filename.endswith(".xml"):
            raise ValidationFailed("openrosa.form_filename", field="form", filename=filename)
        f = served_form(session, member=member, form_id=filename[:-4])
    except DomainError as exc:
        return error_response(exc)
    return Response(f.xml, media_type="text/xml; charset=utf-8",
                    headers=headers({"Content-Disposition": f'attachment; filename="{f.form_id}.xml"'}))


def _manifest(request: Request, session: Any, settings: Any, token: str | None, form_id: str) -> Response:
    try:
        member = _member(request, session, settings, token)
        files = media_files(session, member=member, form_id=form_id)
    except DomainError as exc:
        return error_response(exc)
    base = f"{_base(request, token)}/forms/{escape(form_id)}/media"
    items = "".join(
        f"<mediaFile><filename>{escape(m.filename)}</filename><hash>md5:{m.md5}</hash>"
        f"<downloadUrl>{base}/{escape(m.filename)}</downloadUrl></mediaFile>" for m in files)
    body = f'<?xml version="1.0" encoding="UTF-8"?><manifest xmlns="{NS_MANIFEST}">{items}</manifest>'
    return Response(body, media_type="text/xml; charset=utf-8", headers=headers())


def _media(request: Request, session: Any, settings: Any, token: str | None, form_id: str, filename: str) -> Response:
    try:
        member = _member(request, session, settings, token)
        m = media_file(session, member=member, form_id=form_id, filename=filename)
    except DomainError as exc:
        return error_response(exc)
    return Response(m.data, media_type="text/csv; charset=utf-8",
                    headers=headers({"Content-Disposition": f'attachment; filename="{m.filename}"',
                                     "ETag": f'"{m.md5}"'}))


def _head(request: Request, session: Any, settings: Any, token: str | None) -> Response:
    try:
        _member(request, session, settings, token)
    except DomainError as exc:
        return error_response(exc)
    return Response(status_code=204, headers=headers({"X-OpenRosa-Accept-Content-Length":
                                                      str(LIMITS.submission_bytes)}))


async def read_multipart(request: Request, *, max_bytes: int, max_files: int, max_fields: int = 20,
                         max_part_size: int = 64 * 1024) -> Any:
    """Parse a multipart body, refusing it as soon as it grows past ``max_bytes`` (413)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLarge("openrosa.request_too_large", field="request", size=int(length), max_bytes=max_bytes)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationFailed("openrosa.multipart_needed", field="request")

    async def limited():  # type: ignore[no-untyped-def]
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise PayloadTooLarge("openrosa.request_over", field="request", max_bytes=max_bytes)
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=max_files, max_fields=max_fields,
                             max_part_size=max_part_size)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ValidationFailed("openrosa.multipart_invalid", field="request", reason=exc.message) from exc


async def _submit(request: Request, session: Any, settings: Any, token: str | None) -> Response:
    try:
        member = await run_in_threadpool(_member, request, session, settings, token)
        form = await read_multipart(request, max_bytes=LIMITS.submission_bytes, max_files=LIMITS.submission_parts)
        xml_parts = form.getlist("xml_submission_file")
        if len(xml_parts) != 1 or isinstance(xml_parts[0], str):
            raise ValidationFailed("openrosa.one_xml_part", field="xml_submission_file")
        xml = await xml_parts[0].read(LIMITS.xml_bytes + 1)
        files = []
        for key, value in form.multi_items():
            if key == "xml_submission_file" or isinstance(value, str):
                continue
            data = await value.read(LIMITS.attachment_bytes + 1)
            files.append(receiving.Incoming(name=value.filename or key, content_type=value.content_type or "",
                                            data=data))
        incomplete = str(form.get("*isIncomplete*", "")).lower() in ("yes", "true", "1")
        await form.close()
        outcome = await run_in_threadpool(_receive_in_savepoint, session, member, xml, files, incomplete,
                                          settings.attachments_dir)
    except DomainError as exc:
        return error_response(exc)
    if outcome.refusal is not None:  # a rule refused the record: the reason, in French and English
        reason = {loc: _in(outcome.refusal, loc) for loc in ("fr", "en")}
        said = " / ".join(render("openrosa.refused", {"reason": reason[loc]}, loc) for loc in ("fr", "en"))
        return envelope(outcome.status, said, nature="error")
    return envelope(outcome.status, bilingual(outcome.message), nature="submit_success")


def _receive_in_savepoint(session: Any, member: Member, xml: bytes, files: list, incomplete: bool,
                          attachments_dir: Any) -> receiving.Outcome:
    """Receive inside a savepoint: a refusal leaves nothing of this request behind."""
    with session.begin_nested():
        return receiving.receive(session, member=member, xml=xml, files=files, incomplete=incomplete,
                                 attachments_dir=attachments_dir)


# --- routes: the same handlers with a token in the path, or with Basic --------------------------


@router.get("/formList")
def form_list(request: Request, session: SessionDep, settings: SettingsDep, formID: str | None = None) -> Response:  # noqa: N803
    """The forms this member may fill (OpenRosa form list)."""
    return _form_list(request, session, settings, None, formID)


@router.get("/key/{token}/formList")
def form_list_key(token: str, request: Request, session: SessionDep, settings: SettingsDep,
                  formID: str | None = None) -> Response:  # noqa: N803
    """The forms this member may fill, authenticated by the field token in the path."""
    return _form_list(request, session, settings, token, formID)


@router.get("/forms/{filename}")
def form_xml(filename: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """One XForm, with its choice lists filled for this member."""
    return _form(request, session, settings, None, filename)


@router.get("/key/{token}/forms/{filename}")
def form_xml_key(token: str, filename: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """One XForm (field token in the path)."""
    return _form(request, session, settings, token, filename)


@router.get("/forms/{form_id}/manifest")
def form_manifest(form_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The form's media files (its choice lists as CSV), each with its MD5 (OpenRosa manifest)."""
    return _manifest(request, session, settings, None, form_id)


@router.get("/key/{token}/forms/{form_id}/manifest")
def form_manifest_key(token: str, form_id: str, request: Request, session: SessionDep,
                      settings: SettingsDep) -> Response:
    """The form's media files (field token in the path)."""
    return _manifest(request, session, settings, token, form_id)


@router.get("/forms/{form_id}/media/{filename}")
def form_media(form_id: str, filename: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """One media file of a form: a choice list as CSV, made from the register now, for this member."""
    return _media(request, session, settings, None, form_id, filename)


@router.get("/key/{token}/forms/{form_id}/media/{filename}")
def form_media_key(token: str, form_id: str, filename: str, request: Request, session: SessionDep,
                   settings: SettingsDep) -> Response:
    """One media file of a form (field token in the path)."""
    return _media(request, session, settings, token, form_id, filename)


@router.head("/submission")
def submission_head(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """204: Collect's check that this is an OpenRosa server, and the size it accepts."""
    return _head(request, session, settings, None)


@router.head("/key/{token}/submission")
def submission_head_key(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """204 (field token in the path)."""
    return _head(request, session, settings, token)


@router.post("/submission", status_code=201)
async def submission(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A filled form, with its attachments (split over several POSTs with *isIncomplete*)."""
    return await _submit(request, session, settings, None)


@router.post("/key/{token}/submission", status_code=201)
async def submission_key(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """A filled form (field token in the path)."""
    return await _submit(request, session, settings, token)


# --- field tokens ----------------------------------------------------------------------------------


class TokenIn(BaseModel):
    """A new field token: for me, or (coordinators) for a member."""

    member: str | None = Field(default=None, description="username; yourself when left out")
    label: str = Field(default="", max_length=200)


class TokenOut(BaseModel):
    """A field token (never its secret, except once when issued)."""

    id: int
    member_id: DbId
    label: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    secret: str | None = None
    server_url: str | None = None


def _out(row: Any, secret: str | None = None, url: str | None = None) -> TokenOut:
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return TokenOut(id=row.id, member_id=row.member_id, label=row.label, created_at=iso(row.created_at) or "",
                    last_used_at=iso(row.last_used_at), revoked_at=iso(row.revoked_at), secret=secret, server_url=url)


@tokens_router.post("", status_code=201, response_model=TokenOut)
def issue(body: TokenIn, request: Request, session: SessionDep, member: CurrentMember) -> TokenOut:
    """Issue a field token; the answer holds the secret and the server URL for ODK Collect, once."""
    target = member if not body.member else get_member(session, cooperative_id=member.cooperative_id,
                                                       username_or_id=body.member)
    secret, row = fieldforms.issue_token(session, actor=member, member=target, label=body.label)
    session.flush()
    session.refresh(row)
    return _out(row, secret, str(request.base_url).rstrip("/") + f"/openrosa/key/{secret}")


@tokens_router.get("", response_model=list[TokenOut])
def list_tokens(session: SessionDep, member: CurrentMember, username: str | None = None) -> list[TokenOut]:
    """My field tokens (coordinators: a member's, with ?username=)."""
    target = member if not username else get_member(session, cooperative_id=member.cooperative_id,
                                                    username_or_id=username)
    return [_out(r) for r in fieldforms.list_tokens(session, actor=member, member=target)]


@tokens_router.delete("/{token_id}", response_model=TokenOut)
def revoke(token_id: DbId, session: SessionDep, member: CurrentMember) -> TokenOut:
    """Revoke a field token: the phone using it is refused from now on."""
    return _out(fieldforms.revoke_token(session, actor=member, token_id=token_id))


# --- the files sent with a submission, on the record it made -------------------------------------


@attachments_router.get("/{kind}/{record_id}/{name}", response_class=FileResponse)
def attachment(kind: str, record_id: DbId, name: str, session: SessionDep, settings: SettingsDep,
               member: OptionalMember) -> FileResponse:
    """A photo sent with the field form that made a work log, a harvest or a soil sample (kind
    ``work_log``, ``harvest``, ``soil_sample``): only to those who may read that record; 404 otherwise."""
    att, path = attachment_file(session, actor=member, kind=kind, record_id=record_id, name=name,
                                root=settings.attachments_dir)
    return FileResponse(path, media_type=att.content_type, headers={
        "Cache-Control": "private, max-age=3600", "Content-Disposition": f'inline; filename="{att.sha256[:16]}"',
        "X-Content-Type-Options": "nosniff"})
