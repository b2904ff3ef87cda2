"""Sign-in throttling, alike for every way of signing in (the API's token, the members' pages,
ODK Collect's HTTP Basic): growing delays per (username, address), never a lockout.

The first ``FREE_FAILURES`` failures of a username from one address cost nothing; after them each
new attempt from that address must wait ``BASE_DELAY`` doubled at each failure, up to
``MAX_DELAY``. Someone guessing a coordinator's password from elsewhere therefore slows only
themself: the coordinator, from their own address, signs in as usual. One address trying many
usernames (credential stuffing) meets the same growing delays past ``FREE_PER_ADDRESS`` failures.

Failures are kept in the database, so every worker process and restart sees the same count.
They are recorded on their own connection: the failed request's transaction is rolled back.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Text, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from commons_map.db import Base
from commons_map.errors import AuthenticationFailed, DomainError

WINDOW = timedelta(hours=1)  # failures older than this are forgotten
FREE_FAILURES = 3  # per username and address
FREE_PER_ADDRESS = 20  # per address, whatever the usernames
BASE_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=15)


class TooManyAttempts(DomainError):
    """Sign-in refused for a moment after repeated failures."""

    kind = "too_many_attempts"


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


def _addr(remote_addr: str) -> str:
    return remote_addr[:100]


def delay_after(failures: int, free: int) -> timedelta:
    """How long the next attempt waits after ``failures`` failures, the first ``free`` of them free."""
    if failures < free:
        return timedelta(0)
    return min(BASE_DELAY * 2 ** (failures - free), MAX_DELAY)


def check_allowed(session: Session, *, username: str, remote_addr: str) -> None:
    """Raise TooManyAttempts when this username from this address (or this address at all) must wait."""
    now = datetime.now(UTC)
    username, remote_addr = _key(username), _addr(remote_addr)
    pair_n, pair_last, addr_n, addr_last = session.execute(
        select(
            func.count().filter(LoginFailure.username == username),
            func.max(LoginFailure.at).filter(LoginFailure.username == username),
            func.count(),
            func.max(LoginFailure.at),
        ).where(LoginFailure.at > now - WINDOW, LoginFailure.remote_addr == remote_addr)
    ).one()
    waits = [
        last + delay_after(n, free) - now
        for n, last, free in ((pair_n, pair_last, FREE_FAILURES), (addr_n, addr_last, FREE_PER_ADDRESS))
        if last is not None
    ]
    wait = max(waits, default=timedelta(0))
    if wait > timedelta(0):
        seconds = math.ceil(wait.total_seconds())
        raise TooManyAttempts("signin.too_many_attempts", field="username", retry_after_seconds=seconds,
                              detail={"retry_after": seconds})


def record_failure(engine: Engine, *, username: str, remote_addr: str) -> None:
    """Remember a failed sign-in, in a transaction of its own."""
    with Session(engine) as s, s.begin():
        s.add(LoginFailure(username=_key(username), remote_addr=_addr(remote_addr)))
        s.execute(delete(LoginFailure).where(LoginFailure.at < datetime.now(UTC) - WINDOW))


def clear_failures(session: Session, *, username: str, remote_addr: str | None = None) -> None:
    """Forget a username's failures (from this address, when given) after it signs in."""
    stmt = delete(LoginFailure).where(LoginFailure.username == _key(username))
    if remote_addr is not None:
        stmt = stmt.where(LoginFailure.remote_addr == _addr(remote_addr))
    session.execute(stmt)


def sign_in(session: Session, engine: Engine | None, *, username: str, password: str,  # noqa: ANN201
            remote_addr: str):
    """The member with these credentials, throttled: every way of signing in goes through here.

    A failure is recorded through ``engine`` (the session's own when None), outside the request's
    transaction, which the failure rolls back."""
    from commons_map.people.auth import authenticate

    check_allowed(session, username=username, remote_addr=remote_addr)
    try:
        member = authenticate(session, username=username, password=password)
    except AuthenticationFailed:
        record_failure(engine or session.get_bind().engine, username=username, remote_addr=remote_addr)
        raise
    clear_failures(session, username=member.username, remote_addr=remote_addr)
    return member
