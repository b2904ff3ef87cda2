"""Notification pages: the inbox (mark read), preferences per kind, the unsubscribe confirmation.

Their words are message codes of the ``notify`` room (``say`` in the templates), rendered in the
viewer's language like the e-mails. The navigation's unread count comes from ``notify_unread``,
a template global this module installs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.routers.notify import item
from api.web import PREFIX, Form, Page, PageDep, PageRoute, templates, try_action
from commons_map.messages import render
from commons_map.notify import service

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def notify_unread(page: Page | None) -> int:
    """The unread count shown in the navigation (0 when nobody is signed in)."""
    if page is None or page.member is None:
        return 0
    return service.unread_count(page.session, actor=page.member)


def _say(page: Page):  # noqa: ANN202
    def say(code: str, **params: Any) -> str:
        return render("notify." + code, params, page.locale)

    return say


templates.globals["notify_unread"] = notify_unread
templates.globals["notify_say"] = lambda locale, code, **p: render("notify." + code, p, locale)


@router.get(PREFIX + "/notifications")
def inbox(page: PageDep, all: bool = False) -> Response:
    """My notifications, newest first (unread ones marked), with buttons to mark them read."""
    me = page.require()
    rows = service.inbox(page.session, actor=me, limit=100)
    return page.render("inbox.html", items=[item(n, page.locale) for n in rows], say=_say(page),
                       unread=service.unread_count(page.session, actor=me))


@router.post(PREFIX + "/notifications/read")
def mark_read(page: PageDep, form: Form) -> Response:
    """Mark one notification read (``id``) or all of them."""
    me = page.require()
    raw = form.get("id")
    nid = int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 10 else None
    if raw and nid is None:
        return page.redirect(PREFIX + "/notifications")
    try_action(page.session, lambda: service.mark_read(page.session, actor=me, notification_id=nid))
    return page.redirect(PREFIX + "/notifications", done="saved")


def _prefs_page(page: Page, errors: dict | None = None, status_code: int = 200) -> Response:
    me = page.require()
    prefs = service.preferences(page.session, actor=me)
    return page.render("inbox_preferences.html", prefs=prefs, say=_say(page), errors=errors or {},
                       kinds=list(service.KINDS), status_code=status_code)


@router.get(PREFIX + "/notifications/preferences")
def preferences(page: PageDep) -> Response:
    """How I hear each kind: inbox only, e-mail at once, daily digest; my digest hour."""
    return _prefs_page(page)


@router.post(PREFIX + "/notifications/preferences")
def save_preferences(page: PageDep, form: Form) -> Response:
    """Save my choices; a bad value is shown next to its field, nothing saved."""
    me = page.require()
    channels = {k: str(form.get("kind_" + k)) for k in service.KINDS if form.get("kind_" + k)}
    hour_raw = str(form.get("digest_hour") or "")
    hour = int(hour_raw) if hour_raw.lstrip("-").isdigit() and len(hour_raw) < 4 else -1 if hour_raw else None
    _done, errors = try_action(page.session, lambda: service.set_preferences(
        page.session, actor=me, channels=channels, digest_hour=hour,
        timezone=str(form.get("timezone")) if form.get("timezone") else None))
    if errors:
        return _prefs_page(page, errors=errors, status_code=422)
    return page.redirect(PREFIX + "/notifications/preferences", done="saved")


@router.get(PREFIX + "/notifications/unsubscribe/{token}")
def unsubscribe_page(page: PageDep, token: str) -> Response:
    """The link of an e-mail: a button that unsubscribes (a GET changes nothing: link scanners follow it)."""
    service.read_unsubscribe_token(page.settings.secret_key, token)
    return page.render("inbox_unsubscribe.html", token=token, say=_say(page))
