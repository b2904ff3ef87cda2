"""Sign-in throttling: too many failed attempts for a username, or from an address, wait a while.

Failures are kept in the database, so every worker process and restart sees the same count.
They are recorded on their own connection: the failed request's transaction is rolled back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Text, delete, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from commons_map.db import Base
from commons_map.errors import DomainError

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 30


class TooManyAttempts(DomainError):
    """Sign-in refused for a while after repeated failures."""

    code = "too_many_attempts"


class LoginFailure(Base):
    """One failed sign-in: the username tried and where from (never the password)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(Text, index=True)
    remote_addr: Mapped[str] = mapped_column(Text, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


def _key(username: str) -> str:
    """The username as failures are counted: PostgreSQL text cannot hold NUL, so it is replaced."""
    return username.strip().lower().replace("\x00", "\ufffd")[:200]


def check_allowed(session: Session, *, username: str, remote_addr: str) -> None:
    """Raise TooManyAttempts when this username or address failed too often lately."""
    since = datetime.now(UTC) - WINDOW
    username = _key(username)
    by_user, by_addr = session.execute(
        select(
            func.count().filter(LoginFailure.username == username),
            func.count().filter(LoginFailure.remote_addr == remote_addr),
        ).where(LoginFailure.at > since,
                or_(LoginFailure.username == username, LoginFailure.remote_addr == remote_addr))
    ).one()
    if by_user >= MAX_PER_USERNAME or by_addr >= MAX_PER_ADDRESS:
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            "people.too_many_attempts", minutes=minutes,
            field="username",
            detail={"retry_after": int(WINDOW.total_seconds())},
        )


def record_failure(engine: Engine, *, username: str, remote_addr: str) -> None:
    """Remember a failed sign-in, in a transaction of its own."""
    with Session(engine) as s, s.begin():
        s.add(LoginFailure(username=_key(username), remote_addr=remote_addr[:100]))
        s.execute(delete(LoginFailure).where(LoginFailure.at < datetime.now(UTC) - 4 * WINDOW))


def clear_failures(session: Session, *, username: str) -> None:
    """Forget a username's failures after it signs in."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == _key(username)))
