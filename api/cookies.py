"""The members' pages' session cookie: signed, HttpOnly, SameSite=Lax, with a CSRF token.

The cookie carries a random session id, a CSRF token and, once signed in, the member's id and
token version (so "sign out everywhere", which bumps the version, ends browser sessions too).
It is signed with ``Settings.secret_key`` (itsdangerous), never encrypted: it holds no secret
but the CSRF token, which the page echoes anyway.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, joinedload
from starlette.requests import Request
from starlette.responses import Response

from commons_map.people.auth import web_session_open
from commons_map.people.models import Member
from commons_map.settings import Settings
from commons_map.tenancy import act_for_member

COOKIE = "cm_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MAX_AGE_S = 60 * 60 * 24 * 30  # a phone in the field stays signed in for a month
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebSession:
    """What the cookie says, and whether it must be sent again."""

    sid: str
    csrf: str
    member_id: int | None = None
    version: int | None = None
    locale: str | None = None  # a visitor's language choice, before signing in
    dirty: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def sign_in(self, member: Member) -> None:
        """Bind the session to a member, with fresh identifiers (no session fixation)."""
        self.sid = secrets.token_urlsafe(16)
        self.csrf = secrets.token_urlsafe(32)
        self.member_id = member.id
        self.version = member.token_version
        self.dirty = True

    def sign_out(self) -> None:
        """Forget the member; a new CSRF token for the anonymous session."""
        self.sid = secrets.token_urlsafe(16)
        self.csrf = secrets.token_urlsafe(32)
        self.member_id = None
        self.version = None
        self.dirty = True

    def csrf_ok(self, given: str | None) -> bool:
        """True when ``given`` is this session's CSRF token (constant-time comparison)."""
        return bool(given) and hmac.compare_digest(str(given), self.csrf)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="commons-map.web-session")


def new_session() -> WebSession:
    """A fresh anonymous session."""
    return WebSession(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(32), dirty=True)


def read_session(request: Request, settings: Settings) -> WebSession | None:
    """The session the request's cookie carries, or None when absent, forged or expired."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(settings).loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("s"), str)
        or not isinstance(data.get("c"), str)
    ):
        return None
    return WebSession(
        sid=data["s"],
        csrf=data["c"],
        member_id=data.get("m") if isinstance(data.get("m"), int) else None,
        version=data.get("v") if isinstance(data.get("v"), int) else None,
        locale=data.get("l") if data.get("l") in ("fr", "en") else None,
    )


def session_of(request: Request, settings: Settings) -> WebSession:
    """The request's web session, read once and kept on ``request.state``."""
    ws = getattr(request.state, "web_session", None)
    if ws is None:
        ws = read_session(request, settings) or new_session()
        request.state.web_session = ws
    return ws


def write_cookie(response: Response, request: Request, settings: Settings, ws: WebSession) -> None:
    """Send the session cookie (Secure when the page was served over https)."""
    payload: dict[str, Any] = {"s": ws.sid, "c": ws.csrf}
    if ws.member_id is not None:
        payload["m"] = ws.member_id
        payload["v"] = ws.version
    if ws.locale:
        payload["l"] = ws.locale
    response.set_cookie(
        COOKIE,
        _serializer(settings).dumps(payload),
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    ws.dirty = False


def member_from_cookie(request: Request, session: Session, settings: Settings) -> Member | None:
    """The active member the session cookie names (with a current token version), else None."""
    ws = read_session(request, settings)
    if ws is None or ws.member_id is None:
        return None
    act_for_member(session, ws.member_id)  # the cookie is signed: its member acts (tenancy)
    member = session.get(Member, ws.member_id, options=[joinedload(Member.role_rows)])  # one round trip
    if member is None or not member.is_active or member.token_version != ws.version:
        return None
    if not web_session_open(session, sid=ws.sid, member_id=member.id):
        return None  # signed out (this cookie, or a copy of it, was ended on the server)
    return member


def csrf_header_ok(request: Request, settings: Settings) -> bool:
    """For cookie-authenticated API calls that change things: the CSRF header must match."""
    if request.method in SAFE_METHODS:
        return True
    ws = read_session(request, settings)
    return ws is not None and ws.csrf_ok(request.headers.get(CSRF_HEADER))
