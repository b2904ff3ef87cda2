"""The files (photos) sent with a field submission, shown on the record it made.

A submission's ``records`` say which records it made (``{"kind": "work_log", "ids": [12]}``); its
attachments belong to those records. They are shown only to those who may read the record: the
owning service decides (a work log: its worker, companions, the stewards who approve it and the
coordinators; a harvest or a soil sample: the cooperative's members who see its parcel); for anyone
else, anonymous visitors included, the file does not exist (NotFound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from commons_map.errors import NotFound
from commons_map.fieldforms.models import Attachment, Submission
from commons_map.fieldforms.service import attachment_path
from commons_map.people.models import Member
from commons_map.people.permissions import is_member_of

KINDS = ("work_log", "harvest", "soil_sample")


def record_attachments(session: Session, *, kind: str, record_id: int) -> list[Attachment]:
    """The files of the current submission that made this record (none for a record typed in a page)."""
    subs = select(Submission.id).where(
        Submission.records["kind"].astext == kind, Submission.records["ids"].contains([record_id]),
        Submission.status != "superseded")
    return list(session.scalars(select(Attachment).where(Attachment.submission_id.in_(subs))
                                .order_by(Attachment.name)))


def _readable(session: Session, *, actor: Member | None, kind: str, record_id: int) -> None:
    """NotFound unless ``actor`` may read the record (the rule of the service that owns it)."""
    missing = NotFound("fieldforms.no_attachment", field="record_id", kind=kind, record_id=record_id)
    if actor is None or kind not in KINDS:
        raise missing
    try:
        if kind == "work_log":
            from commons_map.worklog.service import get_work_log

            get_work_log(session, actor=actor, work_log_id=record_id)
            return
        from commons_map.soil.service import get_harvest, get_sample

        record: Any = (get_harvest if kind == "harvest" else get_sample)(session, actor=actor, **{
            "harvest_id" if kind == "harvest" else "sample_id": record_id})
    except NotFound:
        raise missing from None
    if not is_member_of(actor, record.cooperative_id):  # a public parcel's record: its photos stay inside
        raise missing


def attachments_of(session: Session, *, actor: Member | None, kind: str, record_id: int) -> list[Attachment]:
    """The files of a record the actor may read; none when they may not (nothing said about it)."""
    try:
        _readable(session, actor=actor, kind=kind, record_id=record_id)
    except NotFound:
        return []
    return record_attachments(session, kind=kind, record_id=record_id)


def attachment_file(session: Session, *, actor: Member | None, kind: str, record_id: int, name: str,
                    root: Path) -> tuple[Attachment, Path]:
    """One file of a record the actor may read, and where it is on disk; else NotFound."""
    _readable(session, actor=actor, kind=kind, record_id=record_id)
    for att in record_attachments(session, kind=kind, record_id=record_id):
        path = attachment_path(root, att.sha256)
        if att.name == name and path.is_file():
            return att, path
    raise NotFound("fieldforms.no_attachment", field="name", kind=kind, record_id=record_id)


def attachment_url(kind: str, record_id: int, name: str) -> str:
    """Where the API serves one file of a record."""
    from urllib.parse import quote

    return f"/api/v1/attachments/{kind}/{record_id}/{quote(name)}"


def attachments_out(session: Session, *, actor: Member | None, kind: str, record_id: int) -> list[dict[str, Any]]:
    """The files of a record as the API lists them: name, type, size, URL."""
    return [{"name": a.name, "content_type": a.content_type, "size": a.size,
             "url": attachment_url(kind, record_id, a.name)}
            for a in attachments_of(session, actor=actor, kind=kind, record_id=record_id)]


# The images sent with the harvests and soil samples of one commons (a withdrawn sample's left out).
_COMMONS_PHOTOS = text("""
    SELECT * FROM (
        SELECT DISTINCT ON (a.id) a.id, a.name, a.content_type, a.size, a.received_at,
               s.records->>'kind' AS kind, r.id::int AS record_id
          FROM field_submissions s
          CROSS JOIN LATERAL jsonb_array_elements_text(s.records->'ids') AS r(id)
          JOIN field_submission_attachments a ON a.submission_id = s.id
         WHERE s.status <> 'superseded' AND a.content_type LIKE 'image/%'
           AND ((s.records->>'kind' = 'harvest'
                 AND r.id::int IN (SELECT id FROM harvests WHERE commons_id = :c))
             OR (s.records->>'kind' = 'soil_sample'
                 AND r.id::int IN (SELECT id FROM soil_samples WHERE commons_id = :c AND withdrawn_at IS NULL)))
         ORDER BY a.id, r.id::int) one_per_file  -- a photo of a form with two crops is shown once
     ORDER BY received_at DESC, id DESC
     LIMIT :n""")


def commons_photos(session: Session, *, actor: Member | None, commons_id: int, cooperative_id: int,
                   limit: int = 24) -> list[dict[str, Any]]:
    """The photos sent from the field with the harvests and soil samples recorded on one commons,
    newest first, as ``attachments_out`` lists them; for the members of its cooperative only (the
    rule of ``_readable``: whoever sees the commons sees its harvests and samples), none for
    anyone else. One query, however many records."""
    if not is_member_of(actor, cooperative_id):
        return []
    rows = session.execute(_COMMONS_PHOTOS, {"c": commons_id, "n": limit})
    return [{"name": r.name, "content_type": r.content_type, "size": r.size, "kind": r.kind,
             "url": attachment_url(r.kind, r.record_id, r.name)} for r in rows]
