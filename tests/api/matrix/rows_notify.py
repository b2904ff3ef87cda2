"""Access-matrix rows of the notifications: the inbox API and pages, preferences, failed deliveries,
the one-click unsubscribe (whose only authority is the signed token: a forged one is refused to all)."""

from __future__ import annotations

from typing import Any

from tests.api.test_access_matrix import C, M, Row, Subjects, X, _form, js, page, rule, signed_in

NOTE_TEXT = "Broyeur-matrice-notification"


def _my_note(s: Subjects) -> int:
    """A notification of the plain member (made in the test's transaction)."""
    from sqlalchemy import select

    from commons_map.notify.models import Notification
    from commons_map.notify.service import notify

    notify(s.db, recipients=[s.people.member], kind="reservation_approved", code="notify.reservation_approved",
                  params={"resource": NOTE_TEXT, "starts_at": "2026-12-03T09:30:00+00:00"}, link="/app/reservations",
                  dedupe="matrix:note")
    return s.db.scalar(select(Notification.id).where(Notification.member_id == s.people.member.id,
                                                     Notification.dedupe == "matrix:note"))


def _with_note(s: Subjects, role: str) -> dict[str, Any]:
    _my_note(s)
    return {}


SUBJECTS = {"my_note": _my_note}
TEXTS = {"my_note_text": lambda s: (_my_note(s), NOTE_TEXT)[1]}

ROWS = [
    Row("GET", "/api/v1/notifications", signed_in(200), hidden={"my_note_text": [M]}, shown=True, body=_with_note),
    Row("GET", "/api/v1/notifications/unread-count", signed_in(200)),
    Row("POST", "/api/v1/notifications/read-all", signed_in(200)),
    Row("GET", "/api/v1/notifications/preferences", signed_in(200)),
    Row("PUT", "/api/v1/notifications/preferences", signed_in(200), body=js(digest_hour=7)),
    Row("GET", "/api/v1/notifications/failed-deliveries", rule(403, anonymous=401, coordinator=200, outsider=200)),
    Row("POST", "/api/v1/notifications/{notification_id}/read", rule(404, anonymous=401, member=200),
        url="/api/v1/notifications/{my_note}/read"),
    Row("POST", "/app/notifications/unsubscribe/{token}", rule(403), url="/app/notifications/unsubscribe/forged.x"),
    Row("GET", "/app/notifications", page(200), page=True, hidden={"my_note_text": [M]}, shown=True,
        body=_with_note),
    Row("POST", "/app/notifications/read", page(303), page=True, body=_form()),
    Row("GET", "/app/notifications/preferences", page(200), page=True),
    Row("POST", "/app/notifications/preferences", page(303), page=True, body=_form(digest_hour="7")),
    Row("GET", "/app/notifications/unsubscribe/{token}", rule(403), page=True,
        url="/app/notifications/unsubscribe/forged.x"),
]
_ = (C, X)
