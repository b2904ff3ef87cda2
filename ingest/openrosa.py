"""Receiving a filled form (OpenRosa, or a row of a Central/Kobo export): store once, then process.

The raw bytes are kept with their SHA-256 beside the records they became. Processing runs in a
savepoint: when a rule refuses the record, nothing of the submission is kept (no row, no
attachment row, no record) but a log line, and the phone is answered 422 with the reason, so
it keeps the form to correct and send again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from commons_map.errors import DomainError, ValidationFailed, input_problem
from commons_map.fieldforms.models import Submission
from commons_map.fieldforms.service import add_attachment, discard_submission, get_submission, store_submission
from commons_map.messages import Message
from commons_map.people.models import Member
from ingest.processors import PROCESSORS
from ingest.safety import LIMITS, Limits, check_basename, parse_xml
from ingest.xforms import FormSpec, get_spec

MEDIA_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".gif", ".m4a", ".mp3", ".amr", ".ogg", ".oga",
                    ".wav", ".3gp", ".3gpp", ".mp4", ".webm"}
MEDIA_TYPES = ("image/", "audio/", "video/", "application/octet-stream")
log = logging.getLogger("commons_map.openrosa")
_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass
class Incoming:
    """A file part of a submission."""

    name: str
    content_type: str
    data: bytes


@dataclass
class Outcome:
    """What to answer the phone."""

    status: int
    message: Message  # to show the member (the server says it in French and English)
    submission_id: int | None = None
    ignored: list[str] = field(default_factory=list)
    refusal: DomainError | None = None  # the rule that refused the record, if one did


def local(tag: str) -> str:
    """The local name of an ElementTree tag ('{ns}meta' -> 'meta')."""
    return tag.rsplit("}", 1)[-1]


def form_values(root: Any, spec: FormSpec) -> dict[str, Any]:
    """The values of a submission by leaf name: groups flattened, repeats as lists of dicts."""
    values: dict[str, Any] = {}

    def walk(el: Any, target: dict[str, Any]) -> None:
        for child in el:
            name = local(child.tag)
            if name in spec.repeats:
                item: dict[str, Any] = {}
                walk(child, item)
                target.setdefault(name, []).append(item)
            elif len(child):
                walk(child, target)
            else:
                target[name] = (child.text or "").strip()

    walk(root, values)
    return values


@dataclass
class Parsed:
    """A submission's identity and values."""

    spec: FormSpec
    form_version: str
    instance_id: str
    deprecated_id: str | None
    values: dict[str, Any]
    referenced: set[str]


def parse_submission(xml: bytes, limits: Limits | None = None) -> Parsed:
    """Parse and identify a submission (defusedxml, size cap); ValidationFailed naming what is wrong."""
    limits = limits or LIMITS
    root = parse_xml(xml, limits)
    form_id = root.get("id") or ""
    spec = get_spec(form_id)
    meta = {}
    for el in root.iter():
        if local(el.tag) == "meta":
            meta = {local(c.tag): (c.text or "").strip() for c in el}
            break
    instance_id = meta.get("instanceID", "")
    if not instance_id:
        raise ValidationFailed("openrosa.no_instance_id", field="instanceID")
    for name, value in (("instanceID", instance_id), ("deprecatedID", meta.get("deprecatedID"))):
        if value and not _ID.match(value):
            raise ValidationFailed("openrosa.bad_instance_id", field=name, value=value[:60])
    referenced = {(el.text or "").strip() for el in root.iter() if not len(el) and (el.text or "").strip()}
    return Parsed(spec=spec, form_version=root.get("version") or "", instance_id=instance_id,
                  deprecated_id=meta.get("deprecatedID") or None, values=form_values(root, spec),
                  referenced=referenced)


def check_file(f: Incoming, limits: Limits | None = None) -> None:
    """Refuse a part whose name is a path, whose size is over the cap, or which is not media."""
    limits = limits or LIMITS
    check_basename(f.name, field="attachment")
    if len(f.data) > limits.attachment_bytes:
        raise ValidationFailed("openrosa.attachment_too_large", field="attachment", name=f.name, size=len(f.data),
                               max_bytes=limits.attachment_bytes)
    ext = Path(f.name).suffix.lower()
    ctype = (f.content_type or "application/octet-stream").lower()
    if ext not in MEDIA_EXTENSIONS or not ctype.startswith(MEDIA_TYPES):
        raise ValidationFailed("openrosa.attachment_not_media", field="attachment", name=f.name, content_type=ctype)


def process(session: Session, sub: Submission, parsed_values: dict[str, Any], member: Member,
            previous: dict[str, Any] | None) -> None:
    """Make the records of a complete submission through the services; DomainError when one refuses.

    The records are made in a savepoint: on a refusal nothing of them is left, and the caller
    decides what becomes of the submission itself (``receive`` discards it).
    """
    processor = PROCESSORS.get(sub.form_id)
    if processor is None:
        sub.status = "received"
        return
    try:
        with session.begin_nested():
            records = processor(session, member=member, values=parsed_values, instance_id=sub.instance_id,
                                previous=previous)
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = input_problem(first, ".".join(str(p) for p in first.get("loc", ())) or "submission")
        raise ValidationFailed(problem.code, problems=[problem], **problem.params) from None
    sub.status, sub.records, sub.problem = "processed", records, None


def receive(session: Session, *, member: Member, xml: bytes, files: list[Incoming], incomplete: bool,
            attachments_dir: Path, limits: Limits | None = None) -> Outcome:
    """One OpenRosa POST: store the submission once, keep its referenced files, process when complete."""
    limits = limits or LIMITS
    parsed = parse_submission(xml, limits)
    for f in files:
        check_file(f, limits)
    stored = store_submission(
        session, cooperative_id=member.cooperative_id, member=member, form_id=parsed.spec.form_id,
        form_version=parsed.form_version, instance_id=parsed.instance_id, deprecated_id=parsed.deprecated_id,
        raw=xml, source="openrosa", incomplete=incomplete)
    sub = stored.submission
    kept = [f for f in files if f.name in parsed.referenced]
    ignored = [f.name for f in files if f.name not in parsed.referenced]

    def keep_files() -> None:
        for f in kept:
            add_attachment(session, submission=sub, name=f.name,
                           content_type=f.content_type or "application/octet-stream", data=f.data,
                           root=attachments_dir)

    completing = not incomplete and sub.status == "incomplete"
    if stored.created and not incomplete or completing:
        previous = None
        if parsed.deprecated_id:
            old = get_submission(session, form_id=sub.form_id, instance_id=parsed.deprecated_id)
            previous = old.records if old is not None else None
        if completing:
            from datetime import UTC, datetime

            sub.completed_at = datetime.now(UTC)
        try:
            process(session, sub, parsed.values, member, previous)
        except DomainError as exc:
            reason = exc.summary()
            # A refused submission leaves no trace but this line (its files of this request never
            # reach the disk); the phone keeps it to fix and resend.
            log.warning("openrosa: refused %s %s from member %s: %s", sub.form_id, sub.instance_id,
                        member.id, reason)
            discard_submission(session, sub)
            return Outcome(422, Message("openrosa.refused"), refusal=exc)
        keep_files()
        session.flush()
        return Outcome(201, _message(sub), sub.id, ignored)
    keep_files()
    if incomplete:
        return Outcome(201, Message("openrosa.part_received"), sub.id, ignored)
    return Outcome(201, Message("openrosa.already_received"), sub.id, ignored)


def _message(sub: Submission) -> Message:
    if sub.records.get("kind") == "work_log":
        return Message("openrosa.received_work_log")
    return Message("openrosa.received")
