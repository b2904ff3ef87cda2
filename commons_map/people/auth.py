"""Passwords (argon2) and bearer tokens (signed JWT, revocable per member)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.errors import AuthenticationFailed
from commons_map.people.models import Member
from commons_map.settings import Settings
from commons_map.tenancy import act_for_member, member_id_by

_hasher = PasswordHasher()
# A hash to verify against when the username is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
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
        verify_password(_DUMMY_HASH, password)
        raise AuthenticationFailed("people.bad_credentials")
    if not verify_password(member.password_hash, password) or not member.is_active:
        raise AuthenticationFailed("people.bad_credentials")
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
    member = session.get(Member, member_id)
    if member is None or not member.is_active or member.token_version != version:
        raise AuthenticationFailed("people.token_revoked")
    return member


def revoke_tokens(member: Member) -> None:
    """Invalidate every token issued to the member so far."""
    member.token_version += 1
