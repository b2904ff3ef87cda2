"""Dependencies: the settings, a database session per request, the signed-in member."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.cookies import CSRF_HEADER, csrf_header_ok, member_from_cookie
from commons_map.errors import AuthenticationFailed, PermissionDenied
from commons_map.people import throttle
from commons_map.people.auth import member_from_token
from commons_map.people.models import Member
from commons_map.settings import Settings
from commons_map.tenancy import ONE_STATEMENT_KEY, act_as

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def sign_in(request: Request, session: Session, *, username: str, password: str) -> Member:
    """The member with these credentials, throttled by (username, the connection's address): the one way in
    for the API's token, the members' pages and ODK Collect's Basic (commons_map.people.throttle)."""
    address = request.client.host if request.client else "unknown"
    engine = getattr(request.app.state, "engine", None)  # None before the lifespan: the session's own
    return throttle.sign_in(session, engine, username=username, password=password, remote_addr=address)


def get_settings_dep(request: Request) -> Settings:
    """The app's settings (also called directly, as a function, by api.web)."""
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: committed when the handler returns, else rolled back.

    Async, so that a request does not pay two worker-thread hops for it: opening the session does
    no I/O (it connects on first use, in the handler's thread); the commit, which does, runs in a
    worker thread, and only when the request began a transaction.
    """
    session = request.app.state.sessionmaker()
    act_as(session, member_id=None, cooperative_id=None)  # anonymous until a member signs in (tenancy)
    try:
        yield session
        # A read in one statement (tenancy.read_in_one_statement) ran in autocommit: nothing to end.
        if session.in_transaction() and not session.info.get(ONE_STATEMENT_KEY):
            await run_in_threadpool(session.commit)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_public_read_session(
    request: Request, primary: Annotated[Session, Depends(get_session, scope="function")]
) -> AsyncIterator[Session]:
    """A session for a public read (OGC API, tiles, public map, open data): on the streaming replica
    while it is healthy and close enough behind, else the request's session on the primary
    (``commons_map.replica``; an unused session never takes a connection). Never for members'
    pages or writes: those take ``SessionDep``."""
    reads = request.app.state.reads
    # Without a replica there is nothing to check (no I/O); with one, the check may connect.
    session = await run_in_threadpool(reads.replica_session) if reads.replica is not None else None
    if session is None:
        yield primary
        return
    try:
        yield session
        await run_in_threadpool(session.commit)  # read-only: ends the transaction
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": the commit happens before the response is sent, so a failed commit is an error.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PublicReadSession = Annotated[Session, Depends(get_public_read_session, scope="function")]


def optional_member(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2)],
) -> Member | None:
    """The member named by the bearer token (or the session cookie), or None for anonymous."""
    if token:
        member = member_from_token(session, token, settings)
        request.state.member_locale = member.locale
        return member
    member = member_from_cookie(request, session, settings)
    if member is not None:
        request.state.member_locale = member.locale
    if member is not None and not csrf_header_ok(request, settings):
        raise PermissionDenied("auth.csrf_header", field=CSRF_HEADER, header=CSRF_HEADER)
    return member


def current_member(member: Annotated[Member | None, Depends(optional_member)]) -> Member:
    """The signed-in member, or 401."""
    if member is None:
        raise AuthenticationFailed("auth.sign_in_first")
    return member


OptionalMember = Annotated[Member | None, Depends(optional_member)]
CurrentMember = Annotated[Member, Depends(current_member)]
