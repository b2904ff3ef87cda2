"""/api/v1/notifications: the inbox, preferences, failed deliveries; the one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from api.deps import CurrentMember, SessionDep, SettingsDep
from commons_map.db import DbId
from commons_map.messages import negotiate, render
from commons_map.notify import service
from commons_map.notify.schemas import DeliveryOut, InboxOut, NotificationOut, PreferencesIn, PreferencesOut

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
unsubscribe_router = APIRouter(include_in_schema=False)


def item(n: Any, locale: str) -> dict[str, Any]:
    """A notification as the API and the pages show it."""
    return {"id": n.id, "kind": n.kind, "code": n.code, "params": n.params, "text": service.text_of(n, locale),
            "link": n.link, "created_at": n.created_at, "read_at": n.read_at}


def _locale(request: Request, member: Any) -> str:
    return negotiate(request.headers.get("accept-language"), default=member.locale)


@router.get("", response_model=InboxOut)
def list_notifications(
    request: Request, session: SessionDep, member: CurrentMember,
    unread: bool = False, limit: Annotated[int, Query(ge=1, le=200)] = 50, before_id: DbId | None = None,
) -> Any:
    """My notifications, newest first, in my language (or Accept-Language), with the unread count."""
    locale = _locale(request, member)
    rows = service.inbox(session, actor=member, unread_only=unread, limit=limit, before_id=before_id)
    return {"items": [item(n, locale) for n in rows], "unread": service.unread_count(session, actor=member)}


@router.get("/unread-count")
def unread_count(session: SessionDep, member: CurrentMember) -> dict[str, int]:
    """How many of my notifications are unread."""
    return {"unread": service.unread_count(session, actor=member)}


@router.post("/read-all")
def read_all(session: SessionDep, member: CurrentMember) -> dict[str, int]:
    """Mark all my notifications read."""
    return {"changed": service.mark_read(session, actor=member)}


@router.get("/preferences", response_model=PreferencesOut)
def get_preferences(session: SessionDep, member: CurrentMember) -> Any:
    """How I hear each kind (inbox, email, digest), my timezone and digest hour."""
    return service.preferences(session, actor=member)


@router.put("/preferences", response_model=PreferencesOut)
def put_preferences(body: PreferencesIn, session: SessionDep, member: CurrentMember) -> Any:
    """Change how I hear some kinds, my timezone or my digest hour."""
    return service.set_preferences(session, actor=member, channels=body.channels, timezone=body.timezone,
                                   digest_hour=body.digest_hour)


@router.get("/failed-deliveries", response_model=list[DeliveryOut])
def failed_deliveries(session: SessionDep, member: CurrentMember) -> Any:
    """E-mails of my cooperative that did not go out (failed, bounced, held): coordinators."""
    return service.failed_deliveries(session, actor=member)


@router.post("/{notification_id}/read", response_model=NotificationOut)
def read_one(notification_id: DbId, request: Request, session: SessionDep, member: CurrentMember) -> Any:
    """Mark one of my notifications read."""
    service.mark_read(session, actor=member, notification_id=notification_id)
    n = next(iter(service.inbox(session, actor=member, limit=1, before_id=notification_id + 1)))
    return item(n, _locale(request, member))


@unsubscribe_router.post("/app/notifications/unsubscribe/{token}")
def one_click_unsubscribe(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    """RFC 8058 one-click unsubscribe: the signed token is the authority (no sign-in, no CSRF)."""
    done = service.unsubscribe(session, secret=settings.secret_key, token=token)
    locale = negotiate(request.headers.get("accept-language"), default=done["locale"])
    kinds = ", ".join(render("notify.kind_" + k, {}, locale) for k in done["kinds"]) or "-"
    return PlainTextResponse(render("notify.unsubscribed", {"kind": kinds}, locale))
