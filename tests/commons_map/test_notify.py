"""Notifications: the outbox, the sender over a real SMTP server on loopback, unsubscribe, digest."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from commons_map.db import session_scope
from commons_map.errors import PermissionDenied
from commons_map.notify.digest import prepare_digests
from commons_map.notify.models import Delivery, Notification, Preference
from commons_map.notify.sender import MAX_ATTEMPTS, send_pending
from commons_map.notify.service import inbox, mark_read, notify, set_preferences, unread_count, unsubscribe
from commons_map.settings import Settings
from tests.commons_map.notify_helpers import (  # noqa: F401 (fixtures)
    clean_fixture,
    mail_settings,
    member,
    notify_engine_fixture,
    smtp_fixture,
    smtp_server,
)
from tests.conftest import TEST_SECRET, free_port

WHEN = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def _notify_both(engine, dedupe="r1"):
    a, j = member(engine, "amelie"), member(engine, "john")
    with session_scope(engine) as s:
        notify(s, recipients=[a, j.id, a], kind="reservation_approved", code="notify.reservation_approved",
               params={"resource": "Broyeur", "starts_at": WHEN}, link="/reservations/7", dedupe=dedupe)
    return a, j


def _states(engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Delivery.state).order_by(Delivery.id)))


def test_a_rolled_back_event_notifies_nobody_and_a_key_notifies_once(clean):
    a = member(clean, "amelie")
    with pytest.raises(RuntimeError), session_scope(clean) as s:
        notify(s, recipients=[a], kind="hours_received", code="notify.hours_received",
               params={"minutes": 90, "payer": "John"}, dedupe="t1")
        raise RuntimeError("the event failed")
    with session_scope(clean) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    for _ in range(2):
        with session_scope(clean) as s:
            notify(s, recipients=[a], kind="hours_received", code="notify.hours_received",
                   params={"minutes": 90, "payer": "John"}, dedupe="t1")
    with session_scope(clean) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 1
        # hours_received defaults to the digest: no immediate e-mail
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        n = inbox(s, actor=a)[0]
        assert n.params == {"minutes": 90, "payer": "John"}
        assert unread_count(s, actor=a) == 1
        assert mark_read(s, actor=a) == 1
        assert unread_count(s, actor=a) == 0


def test_no_address_no_email_but_the_inbox(clean):
    nomail = member(clean, "nomail")
    with session_scope(clean) as s:
        created = notify(s, recipients=[nomail], kind="reservation_approved", code="notify.reservation_approved",
                         params={"resource": "Broyeur", "starts_at": WHEN}, dedupe="x")
        assert len(created) == 1
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


def test_email_off_without_smtp_host(clean):
    _notify_both(clean)
    report = send_pending(clean, Settings(environment="test", secret_key=TEST_SECRET))
    assert report.claimed == 0
    assert _states(clean) == ["pending", "pending"]


def test_each_member_gets_one_message_in_their_language(clean, smtp):
    _notify_both(clean)
    report = send_pending(clean, mail_settings(smtp.port))
    assert report.sent == 2 and _states(clean) == ["sent", "sent"]
    got = {rcpt[0]: msg for rcpt, msg in smtp.inbox.messages}
    assert sorted(got) == ["amelie@example.org", "john@example.org"]
    for rcpts, msg in smtp.inbox.messages:
        assert len(rcpts) == 1
        assert rcpts[0] in msg["To"]
        other = "john@example.org" if rcpts[0].startswith("amelie") else "amelie@example.org"
        assert other not in msg.as_string()
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsub = msg["List-Unsubscribe"]
        assert re.fullmatch(r"<https://commons\.example/app/notifications/unsubscribe/[\w.-]+>", unsub)
        assert msg["Message-ID"].endswith("@commons.example>")
        plain = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "https://commons.example/reservations/7" in plain
        assert 'href="https://commons.example/reservations/7"' in html
        assert msg["List-Unsubscribe"][1:-1] in plain
    fr, en = got["amelie@example.org"], got["john@example.org"]
    assert fr["Subject"] == "Votre réservation de Broyeur à partir du 3 déc. 2026, 09:30 est acceptée."
    assert en["Subject"] == "Your reservation of Broyeur from Dec 3, 2026, 9:30\u202fAM is approved."
    assert "Bonjour Amélie Durand," in fr.get_body(("plain",)).get_content()
    assert "Hello John Smith," in en.get_body(("plain",)).get_content()
    assert 'lang="fr"' in fr.get_body(("html",)).get_content()
    # a second pass sends nothing more
    assert send_pending(clean, mail_settings(smtp.port)).claimed == 0
    assert len(smtp.inbox.messages) == 2


def test_the_unsubscribe_link_works_once_and_a_forged_one_is_refused(clean, smtp):
    a, _j = _notify_both(clean)
    send_pending(clean, mail_settings(smtp.port))
    msg = next(m for r, m in smtp.inbox.messages if r == ["amelie@example.org"])
    token = msg["List-Unsubscribe"].rsplit("/", 1)[1].rstrip(">")
    with session_scope(clean) as s:
        assert unsubscribe(s, secret=TEST_SECRET, token=token)["kinds"] == ["reservation_approved"]
    with session_scope(clean) as s:
        assert s.get(Preference, (a.id, "reservation_approved")).channel == "inbox"
    with pytest.raises(PermissionDenied) as used, session_scope(clean) as s:
        unsubscribe(s, secret=TEST_SECRET, token=token)
    assert used.value.code == "notify.unsubscribe_used"
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with pytest.raises(PermissionDenied) as bad, session_scope(clean) as s:
        unsubscribe(s, secret=TEST_SECRET, token=forged)
    assert bad.value.code == "notify.unsubscribe_invalid"
    # now inbox only: the next event of that kind sends no e-mail to her, still to John
    _notify_both(clean, dedupe="r2")
    with session_scope(clean) as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.member_id == a.id)) == 1


def test_a_rejected_recipient_is_bounced_and_kept(clean, smtp):
    smtp.inbox.reject.add("john@example.org")
    _notify_both(clean)
    report = send_pending(clean, mail_settings(smtp.port))
    assert (report.sent, report.bounced) == (1, 1)
    with session_scope(clean) as s:
        d = s.scalars(select(Delivery).where(Delivery.address == "john@example.org")).one()
        assert d.state == "bounced" and "550" in d.last_error


def test_a_refused_login_holds_the_deliveries(clean):
    for server in smtp_server(refuse_login=True):
        _notify_both(clean)
        report = send_pending(clean, mail_settings(server.port, smtp_user="u", smtp_password="wrong"))
        assert report.held == 2 and report.sent == 0
        assert not server.inbox.messages
    with session_scope(clean) as s:
        rows = s.scalars(select(Delivery)).all()
        assert {d.state for d in rows} == {"held"}
        assert all("535" in d.last_error for d in rows)
        assert all(d.next_attempt_at > datetime.now(UTC) for d in rows)


def test_a_server_down_retries_with_backoff_then_fails(clean):
    _notify_both(clean)
    settings = mail_settings(free_port())  # nobody listens there
    report = send_pending(clean, settings)
    assert report.retried == 2 and report.sent == 0
    with session_scope(clean) as s:
        rows = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        assert [d.state for d in rows] == ["pending", "pending"]
        assert [d.attempts for d in rows] == [1, 0]  # the second one waited without spending an attempt
        assert "Connection refused" in rows[0].last_error or "Errno" in rows[0].last_error
    later = datetime.now(UTC)
    for _ in range(2 * MAX_ATTEMPTS + 2):  # one row per pass spends an attempt while the server is down
        later += timedelta(hours=7)
        send_pending(clean, settings, now=later)
    assert _states(clean) == ["failed", "failed"]


def test_two_senders_deliver_each_message_exactly_once(clean, smtp):
    people = [member(clean, "amelie"), member(clean, "john")]
    with session_scope(clean) as s:
        for i in range(150):
            notify(s, recipients=people, kind="reservation_approved", code="notify.reservation_approved",
                   params={"resource": f"R{i}", "starts_at": WHEN}, link=f"/r/{i}", dedupe=f"r{i}")
    settings = mail_settings(smtp.port)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(send_pending(clean, settings, batch=10)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(smtp.inbox.messages) == 300
    ids = [m["Message-ID"] for _r, m in smtp.inbox.messages]
    assert len(set(ids)) == 300
    assert sum(r.sent for r in reports) == 300
    assert all(r.sent > 0 for r in reports), "both senders should have worked"
    assert set(_states(clean)) == {"sent"}


def test_the_daily_digest_gathers_the_day_at_the_local_hour(clean, smtp):
    a = member(clean, "amelie")
    with session_scope(clean) as s:
        set_preferences(s, actor=a, channels={"reservation_approved": "digest"}, digest_hour=18)
    _notify_both(clean, dedupe="d1")
    _notify_both(clean, dedupe="d2")
    with clean.begin() as c:  # put them in the morning of 3 December
        c.execute(text("UPDATE notifications SET created_at = '2026-12-03 08:00+00'"))
    morning = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 16:00 in Paris: too early
    with session_scope(clean) as s:
        assert prepare_digests(s, now=morning) == 0
    evening = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)  # 18:30 in Paris
    report = send_pending(clean, mail_settings(smtp.port), now=evening)
    assert report.digests == 1
    digests = [m for r, m in smtp.inbox.messages if r == ["amelie@example.org"]]
    assert len(digests) == 1
    body = digests[0].get_body(("plain",)).get_content()
    assert digests[0]["Subject"] == "Votre résumé du jour : 2 notifications"
    assert body.count("Broyeur") == 2
    with session_scope(clean) as s:
        assert prepare_digests(s, now=evening + timedelta(minutes=5)) == 0
