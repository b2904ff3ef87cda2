"""Passwords (argon2) and bearer tokens (signed JWT, revocable per member)."""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from commons_map.errors import AuthenticationFailed
from commons_map.people.models import Cooperative, Member, WebSessionRow
from commons_map.settings import Settings
from commons_map.tenancy import act_for_member, member_id_by

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the username is unknown, so timing does not tell (made on first
    use: an argon2 hash costs ~0.1-0.4 s, which every command that imports this module paid)."""
    return _hasher.hash("not-a-real-password")


ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, *, username: str, password: str) -> Member:
    """The active member with these credentials, or AuthenticationFailed."""
    # No username holds a NUL character (PostgreSQL text cannot), so none is looked up.
    name = username.strip().lower()
    # No username holds a NUL character (PostgreSQL text cannot), so none is looked up.
    # The session acts for the member the username names before reading their row (tenancy).
    member = None
    if "\x00" not in name and act_for_member(session, member_id_by(session, "username", name)) is not None:
        member = session.scalar(select(Member).where(Member.username == name))
    if member is None:
        verify_password(_dummy_hash(), password)
        raise AuthenticationFailed("people.bad_credentials")
    if not verify_password(member.password_hash, password) or not member.is_active:
        raise AuthenticationFailed("people.bad_credentials")
    if _archived(session, member):
        raise AuthenticationFailed("cooperatives.archived_sign_in")
    if _hasher.check_needs_rehash(member.password_hash):
        member.password_hash = hash_password(password)
    return member


def issue_token(member: Member, settings: Settings) -> str:
    """A signed bearer token naming the member and their current token version."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(member.id),
        "ver": member.token_version,
        "iat": now,
        "exp": now + timedelta(minutes=settings.token_minutes),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def member_from_token(session: Session, token: str, settings: Settings) -> Member:
    """The member a valid, unrevoked token names, or AuthenticationFailed."""
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM])
        member_id = int(claims["sub"])
        version = int(claims.get("ver", -1))
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise AuthenticationFailed("people.token_expired") from exc
    act_for_member(session, member_id)  # the token is signed: its member acts (tenancy)
    # the member, their roles and whether their cooperative is archived, in one round trip
    row = session.execute(select(Member, Cooperative.archived_at).join(
        Cooperative, Cooperative.id == Member.cooperative_id).where(Member.id == member_id)
        .options(joinedload(Member.role_rows))).unique().first()
    if row is None or not row[0].is_active or row[0].token_version != version or row[1] is not None:
        raise AuthenticationFailed("people.token_revoked")
    return row[0]


def _archived(session: Session, member: Member) -> bool:
    """True when the member's cooperative is archived: its members sign in no more."""
    return session.scalar(select(Cooperative.archived_at).where(Cooperative.id == member.cooperative_id)) is not None


def revoke_tokens(member: Member) -> None:
    """Invalidate every token issued to the member so far (their browser sessions too: a cookie
    carries the version it was opened with)."""
    member.token_version += 1


# --- browser sessions, kept on the server ----------------------------------------------------------

WEB_SESSION_DAYS = 30


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def open_web_session(session: Session, *, member: Member, sid: str) -> None:
    """Record a browser session just signed in (and forget the member's sessions past their age)."""
    session.execute(delete(WebSessionRow).where(
        WebSessionRow.member_id == member.id,
        WebSessionRow.created_at < datetime.now(UTC) - timedelta(days=WEB_SESSION_DAYS)))
    session.add(WebSessionRow(sid_hash=_sid_hash(sid), member_id=member.id))
    session.flush()


def close_web_session(session: Session, *, sid: str) -> None:
    """End a browser session: its cookie, or any copy of it, signs nobody in any more."""
    session.execute(delete(WebSessionRow).where(WebSessionRow.sid_hash == _sid_hash(sid)))


def web_session_open(session: Session, *, sid: str, member_id: int) -> bool:
    """Whether the browser session ``sid`` is still open for this member."""
    return session.scalar(select(WebSessionRow.member_id).where(
        WebSessionRow.sid_hash == _sid_hash(sid),
        WebSessionRow.created_at >= datetime.now(UTC) - timedelta(days=WEB_SESSION_DAYS))) == member_id


def end_web_sessions(session: Session, *, member: Member, keep_sid: str | None = None) -> None:
    """End every browser session of the member (but ``keep_sid``, the one acting now)."""
    stmt = delete(WebSessionRow).where(WebSessionRow.member_id == member.id)
    if keep_sid is not None:
        stmt = stmt.where(WebSessionRow.sid_hash != _sid_hash(keep_sid))
    session.execute(stmt)


def sign_out_everywhere(session: Session, *, member: Member, keep_sid: str | None = None) -> None:
    """End every way the member is signed in: their tokens and every browser session (but
    ``keep_sid``, the one acting now, which the caller re-issues under the new token version)."""
    revoke_tokens(member)
    end_web_sessions(session, member=member, keep_sid=keep_sid)
