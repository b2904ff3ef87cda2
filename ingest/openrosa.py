"""Receiving a filled form (OpenRosa, or a row of a Central/Kobo export): store once, then process.

The raw bytes are kept with their SHA-256 whatever happens next, so a submission can be
reprocessed after a fix. Processing runs in a savepoint: when a rule refuses the record, the
submission stays, marked ``rejected`` with the reason, and the phone is told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from commons_map.errors import DomainError, ValidationFailed
from commons_map.fieldforms.models import Submission
from commons_map.fieldforms.service import add_attachment, get_submission, store_submission
from commons_map.people.models import Member
from ingest.processors import PROCESSORS
from ingest.safety import LIMITS, Limits, check_basename, parse_xml
from ingest.xforms import FormSpec, get_spec

MEDIA_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".gif", ".m4a", ".mp3", ".amr", ".ogg", ".oga",
                    ".wav", ".3gp", ".3gpp", ".mp4", ".webm"}
MEDIA_TYPES = ("image/", "audio/", "video/", "application/octet-stream")
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
    message: str
    submission_id: int | None = None
    ignored: list[str] = field(default_factory=list)


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
        raise ValidationFailed("instanceID: the submission has no meta/instanceID", field="instanceID")
    for name, value in (("instanceID", instance_id), ("deprecatedID", meta.get("deprecatedID"))):
        if value and not _ID.match(value):
            raise ValidationFailed(f"{name}: {value[:60]!r} is not an instance id", field=name)
    referenced = {(el.text or "").strip() for el in root.iter() if not len(el) and (el.text or "").strip()}
    return Parsed(spec=spec, form_version=root.get("version") or "", instance_id=instance_id,
                  deprecated_id=meta.get("deprecatedID") or None, values=form_values(root, spec),
                  referenced=referenced)


def check_file(f: Incoming, limits: Limits | None = None) -> None:
    """Refuse a part whose name is a path, whose size is over the cap, or which is not media."""
    limits = limits or LIMITS
    check_basename(f.name, field="attachment")
    if len(f.data) > limits.attachment_bytes:
        raise ValidationFailed(f"attachment: {f.name!r} is {len(f.data)} bytes; at most {limits.attachment_bytes}",
                               field="attachment")
    ext = Path(f.name).suffix.lower()
    ctype = (f.content_type or "application/octet-stream").lower()
    if ext not in MEDIA_EXTENSIONS or not ctype.startswith(MEDIA_TYPES):
        raise ValidationFailed(f"attachment: {f.name!r} ({ctype}) is not a photo, a sound or a video",
                               field="attachment")


def process(session: Session, sub: Submission, parsed_values: dict[str, Any], member: Member,
            previous: dict[str, Any] | None) -> None:
    """Make the records of a complete submission; on a refusal keep it as ``rejected`` with the reason."""
    processor = PROCESSORS.get(sub.form_id)
    if processor is None:
        sub.status = "received"
        return
    try:
        with session.begin_nested():
            records = processor(session, member=member, values=parsed_values, instance_id=sub.instance_id,
                                previous=previous)
    except DomainError as exc:
        sub.status, sub.problem = "rejected", _explain(exc)
        return
    except ValidationError as exc:
        first = exc.errors()[0]
        sub.status = "rejected"
        sub.problem = f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg')}"
        return
    sub.status, sub.records, sub.problem = "processed", records, None


def _explain(exc: DomainError) -> str:
    if len(exc.problems) > 1:
        return "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
    return exc.message


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
    ignored = []
    for f in files:
        if f.name not in parsed.referenced:
            ignored.append(f.name)
            continue
        add_attachment(session, submission=sub, name=f.name, content_type=f.content_type or "application/octet-stream",
                       data=f.data, root=attachments_dir)
    completing = not incomplete and sub.status == "incomplete"
    if stored.created and not incomplete or completing:
        previous = None
        if parsed.deprecated_id:
            old = get_submission(session, form_id=sub.form_id, instance_id=parsed.deprecated_id)
            previous = old.records if old is not None else None
        if completing:
            from datetime import UTC, datetime

            sub.completed_at = datetime.now(UTC)
        process(session, sub, parsed.values, member, previous)
        session.flush()
        return Outcome(201, _message(sub), sub.id, ignored)
    if incomplete:
        return Outcome(201, "Partie reçue, la suite est attendue. / Part received, waiting for the rest.", sub.id, ignored)
    return Outcome(201, "Déjà reçu, rien de nouveau. / Already received; nothing new.", sub.id, ignored)


def _message(sub: Submission) -> str:
    if sub.status == "rejected":
        return f"Reçu, mais à vérifier : {sub.problem} / Received, but needs attention: {sub.problem}"
    if sub.records.get("kind") == "work_log":
        return "Reçu, merci ! Vos heures attendent la validation d'un·e référent·e. / Received, thank you! Your hours await a steward's approval."
    return "Reçu, merci ! / Received, thank you!"


def values_of(sub: Submission) -> dict[str, Any]:
    """The form values of a stored submission, from its raw bytes (XML, or an export row as JSON)."""
    spec = get_spec(sub.form_id)
    if sub.source == "openrosa":
        return parse_submission(sub.raw).values
    import json

    from ingest.exports import leaf_values

    data = json.loads(sub.raw)
    values = leaf_values(data["row"], spec)
    for name, items in (data.get("repeats") or {}).items():
        values[name] = items or []
    return values


def reprocess(session: Session, *, actor: Member | None, submission_id: int, system: bool = False) -> Submission:
    """Run a stored submission through its processor again (after a fix), as the member who sent it.

    Only a submission that is ``rejected`` or ``received`` is reprocessed (a coordinator of its
    cooperative, or the command line); the records of a processed one are never made twice.
    """
    from commons_map.errors import Conflict, NotFound, PermissionDenied
    from commons_map.people.permissions import is_coordinator_of

    sub = session.get(Submission, submission_id, with_for_update=True)
    if sub is None or not (system or is_coordinator_of(actor, sub.cooperative_id)):
        if sub is not None and actor is not None and actor.cooperative_id == sub.cooperative_id:
            raise PermissionDenied("Only coordinators reprocess submissions")
        raise NotFound(f"No submission {submission_id}", field="submission_id")
    if sub.status not in ("rejected", "received"):
        raise Conflict(f"submission {sub.id} is {sub.status}; only rejected or received ones are reprocessed",
                       field="status")
    member = session.get(Member, sub.member_id) if sub.member_id else None
    if member is None:
        raise Conflict(f"submission {sub.id} has no member to record it for", field="member")
    previous = None
    if sub.deprecated_id:
        old = get_submission(session, form_id=sub.form_id, instance_id=sub.deprecated_id)
        previous = old.records if old is not None else None
    process(session, sub, values_of(sub), member, previous)
    session.flush()
    return sub
