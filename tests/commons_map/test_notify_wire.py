"""The e-mails as they go over the wire: what strict mail software expects, not only what Python's
``email`` package forgives (the sender writes its MIME itself, for speed: notify.sender.Composer)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from commons_map.db import session_scope
from commons_map.notify.sender import send_pending
from commons_map.notify.service import notify
from tests.commons_map.notify_helpers import (  # noqa: F401 (fixtures)
    clean_fixture,
    mail_settings,
    member,
    notify_engine_fixture,
    smtp_fixture,
)

ENCODED_WORD = re.compile(rb"=\?utf-8\?q\?[^?]*\?=", re.IGNORECASE)


def test_lines_headers_and_parts_are_what_strict_readers_expect(clean, smtp):
    a, j = member(clean, "amelie"), member(clean, "john")
    long_name = "Pépinière « Les Jardins partagés du Haut-Diois », serre n° 3 " * 2
    with session_scope(clean) as s:
        notify(s, recipients=[a, j], kind="reservation_approved", code="notify.reservation_approved",
               params={"resource": long_name, "starts_at": datetime(2026, 12, 3, 9, 30, tzinfo=UTC)},
               link="/app/reserve/7", dedupe="wire")
    assert send_pending(clean, mail_settings(smtp.port)).sent == 2
    for raw, (_rcpts, msg) in zip(smtp.inbox.raw, smtp.inbox.messages, strict=True):
        assert b"\r\n" in raw and re.search(rb"(?<!\r)\n", raw) is None  # CRLF only
        head, _, _body = raw.partition(b"\r\n\r\n")
        for line in raw.split(b"\r\n"):
            assert line.isascii()
            assert len(line) <= 78 or line.startswith(b"List-Unsubscribe: <https://"), line
        # List-Unsubscribe stays one URL in angle brackets, never encoded words
        assert re.search(rb"\r\nList-Unsubscribe: <https://commons\.example/app/notifications/unsubscribe/"
                         rb"[\w.-]+>\r\n", head)
        subject = re.search(rb"\r\nSubject: (.*?)\r\n(?! )", head, re.S).group(1)
        words = ENCODED_WORD.findall(subject)
        assert words and all(len(w) <= 75 for w in words)  # RFC 2047's limit per encoded word
        assert not msg.defects and all(not p.defects for p in msg.walk())
        assert [p.get_content_type() for p in msg.walk()] == ["multipart/alternative", "text/plain", "text/html"]
        assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in msg.walk() if not p.is_multipart())
        assert long_name.strip() in msg["Subject"]
        assert long_name.strip() in msg.get_body(("plain",)).get_content()
    got = {m["To"].addresses[0].addr_spec: m for _r, m in smtp.inbox.messages}
    assert got["amelie@example.org"]["To"].addresses[0].display_name == "Amélie Durand"
    assert got["john@example.org"]["To"] == "John Smith <john@example.org>"
    assert got["amelie@example.org"]["Content-Language"] == "fr"
    assert "Pépinière" in got["amelie@example.org"].get_body(("html",)).get_content()
