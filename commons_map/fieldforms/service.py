"""Field tokens for phones, and the submissions store: one row per (form, instanceID), ever.

The uniqueness lives in the database (``uq_field_submissions_instance``), so concurrent
resends from a phone on a bad connection land as exactly one row: the loser of the race sees
the winner's row and is answered as a resend (same bytes) or a conflict (other bytes).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from commons_map.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied
from commons_map.fieldforms.models import Attachment, FieldToken, Submission
from commons_map.people.models import Member
from commons_map.people.permissions import is_coordinator_of
from commons_map.tenancy import act_for_member, member_id_by

TOKEN_BYTES = 32


# --- field tokens -----------------------------------------------------------------------------


def token_hash(secret: str) -> str:
    """The stored form of a token (SHA-256 hex): the secret itself is never stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, *, actor: Member | None, member: Member, label: str = "",
                system: bool = False) -> tuple[str, FieldToken]:
    """A new token for ``member``'s phone: the member themself or a coordinator issues it.

    Returns the secret (shown once, e.g. as a QR code) and the stored row.
    """
    if not system and not (actor is not None and actor.is_active and (
            actor.id == member.id or is_coordinator_of(actor, member.cooperative_id))):
        raise PermissionDenied("fieldforms.issue_own_tokens")
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    row = FieldToken(member_id=member.id, token_hash=token_hash(secret), label=label.strip()[:200],
                     created_by_id=actor.id if actor else None)
    session.add(row)
    session.flush()
    return secret, row


def list_tokens(session: Session, *, actor: Member, member: Member) -> list[FieldToken]:
    """The tokens of a member (never their secrets), for themself or a coordinator."""
    if actor.id != member.id and not is_coordinator_of(actor, member.cooperative_id):
        raise PermissionDenied("fieldforms.see_own_tokens")
    return list(session.scalars(select(FieldToken).where(FieldToken.member_id == member.id).order_by(FieldToken.id)))


def revoke_token(session: Session, *, actor: Member, token_id: int) -> FieldToken:
    """Revoke a token: the phone using it is refused from now on."""
    row = session.get(FieldToken, token_id)
    owner = session.get(Member, row.member_id) if row else None
    if row is None or owner is None or not (
            actor.id == owner.id or is_coordinator_of(actor, owner.cooperative_id)):
        raise NotFound("fieldforms.no_token", field="token_id", token_id=token_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
    return row


def member_from_token(session: Session, secret: str) -> Member:
    """The active member whose unrevoked token this is, or AuthenticationFailed."""
    if not secret or len(secret) > 200:
        raise AuthenticationFailed("fieldforms.unknown_token")
    act_for_member(session, member_id_by(session, "field_token", token_hash(secret)))  # tenancy
    row = session.scalar(select(FieldToken).where(FieldToken.token_hash == token_hash(secret)))
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("fieldforms.unknown_token")
    member = session.get(Member, row.member_id)
    if member is None or not member.is_active:
        raise AuthenticationFailed("fieldforms.unknown_token")
    row.last_used_at = datetime.now(UTC)
    return member


# --- submissions --------------------------------------------------------------------------------


@dataclass
class Stored:
    """Where a submission stands after an attempt to store it."""

    submission: Submission
    created: bool  # a new row (False: a resend of the same bytes)


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def get_submission(session: Session, *, form_id: str, instance_id: str, lock: bool = False) -> Submission | None:
    """The submission with that instanceID in that form, if any."""
    stmt = select(Submission).where(Submission.form_id == form_id, Submission.instance_id == instance_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _same_or_conflict(found: Submission, digest: str, cooperative_id: int) -> Stored:
    if found.cooperative_id != cooperative_id or found.sha256 != digest:
        raise Conflict("fieldforms.instance_conflict", field="instanceID", instance_id=found.instance_id)
    return Stored(found, created=False)


def store_submission(
    session: Session, *, cooperative_id: int, member: Member | None, form_id: str, form_version: str,
    instance_id: str, deprecated_id: str | None, raw: bytes, source: str, incomplete: bool = False,
) -> Stored:
    """Store a submission once: same instanceID and bytes -> the existing row; other bytes -> Conflict.

    An edit (``deprecated_id``) must name the current version of a submission of this form
    (NotFound when unknown, Conflict when it was already replaced); the old row is marked
    superseded and points at the new one.
    """
    digest = sha256(raw)
    found = get_submission(session, form_id=form_id, instance_id=instance_id, lock=True)
    if found is not None:
        return _same_or_conflict(found, digest, cooperative_id)
    old: Submission | None = None
    if deprecated_id:
        old = get_submission(session, form_id=form_id, instance_id=deprecated_id, lock=True)
        if old is None or old.cooperative_id != cooperative_id:
            raise NotFound("fieldforms.deprecated_unknown", field="deprecatedID", deprecated_id=deprecated_id,
                           form_id=form_id)
        if old.status == "superseded":
            raise Conflict("fieldforms.deprecated_replaced", field="deprecatedID", deprecated_id=deprecated_id)
        if member is not None and old.member_id not in (None, member.id) and not member.is_coordinator:
            raise PermissionDenied("fieldforms.edit_own")
    now = datetime.now(UTC)
    stmt = (
        insert(Submission)
        .values(cooperative_id=cooperative_id, member_id=member.id if member else None, form_id=form_id,
                form_version=form_version, instance_id=instance_id, deprecated_id=deprecated_id or None,
                source=source, raw=raw, sha256=digest, status="incomplete" if incomplete else "received",
                completed_at=None if incomplete else now)
        .on_conflict_do_nothing()
        .returning(Submission.id)
    )
    new_id = session.scalar(stmt)
    if new_id is None:
        # A concurrent request won the race (it committed first): answer as a resend or a conflict.
        winner = get_submission(session, form_id=form_id, instance_id=instance_id)
        if winner is None:
            raise Conflict("fieldforms.deprecated_concurrent", field="deprecatedID", deprecated_id=deprecated_id)
        session.refresh(winner)
        return _same_or_conflict(winner, digest, cooperative_id)
    sub = session.get(Submission, new_id)
    assert sub is not None
    if old is not None:
        old.status = "superseded"
        old.superseded_by_id = sub.id
    session.flush()
    return Stored(sub, created=True)


def discard_submission(session: Session, sub: Submission) -> None:
    """Remove a submission a rule refused (its attachments' rows go with it): the undoing of
    ``store_submission``, so the version it was editing is the current one again."""
    for old in session.scalars(select(Submission).where(Submission.superseded_by_id == sub.id)):
        old.superseded_by_id = None
        old.status = "processed" if old.records else "received"
    session.delete(sub)
    session.flush()


def attachment_path(root: Path, digest: str) -> Path:
    """Where a file with this SHA-256 lives (content-addressed: no name from outside reaches the disk)."""
    return root / digest[:2] / digest


def add_attachment(session: Session, *, submission: Submission, name: str, content_type: str,
                   data: bytes, root: Path) -> Attachment | None:
    """Keep one attached file (once per name); None when that name is already stored."""
    if any(a.name == name for a in submission.attachments):
        return None
    digest = sha256(data)
    path = attachment_path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part-" + secrets.token_hex(4))
        tmp.write_bytes(data)
        tmp.replace(path)
    att = Attachment(submission_id=submission.id, name=name, content_type=content_type, size=len(data),
                     sha256=digest)
    submission.attachments.append(att)
    session.flush()
    return att
