"""The sender: delivers the outbox by SMTP, exactly once per notification and address.

One pass (:func:`send_pending`):

1. *Claim* up to ``batch`` due deliveries with ``SELECT ... FOR UPDATE SKIP LOCKED`` and mark
   them ``sending`` (attempts + 1, claimed_at = now) in a transaction that commits at once: a
   second sender skips the locked rows and then sees them ``sending``, so it never takes them.
2. *Send* each over one SMTP connection (reused for the whole pass).
3. *Record* each outcome (sent with its Message-ID, retry later, bounced, held, failed) and commit.

Residual window, honestly: if the process dies after the SMTP server accepted a message but
before step 3 commits, the row stays ``sending``; after ``lease`` (10 minutes) a sender takes it
back and the message may go out a second time. Outcomes are committed per batch, so at most
``batch`` messages are exposed; the Message-ID is the same on the second copy (it is derived from
the delivery id), so most mail clients show it once. The reverse (a row marked sent that was
never accepted) cannot happen: ``sent`` is written only after the server said 250.

Outcomes: a recipient the server rejects for good (5xx) is ``bounced``; a refused login is
``held`` (our configuration: retried with backoff, shown to coordinators); a server down, a
timeout or a 4xx is retried with exponential backoff (1 min, 2, 4, ... capped at 6 h) and after
:data:`MAX_ATTEMPTS` becomes ``failed``. Nothing is dropped; ``commons-map notify retry`` puts
failed, bounced and held deliveries back in the queue.
"""

from __future__ import annotations

import html
import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commons_map.db import session_scope
from commons_map.messages import render
from commons_map.notify.digest import prepare_digests
from commons_map.notify.models import Delivery, Notification
from commons_map.notify.service import text_of, unsubscribe_token
from commons_map.people.models import Member
from commons_map.settings import Settings

log = logging.getLogger("commons_map.notify.sender")

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
LEASE = timedelta(minutes=10)

_CLAIM = text("""
    UPDATE deliveries SET state = 'sending', attempts = attempts + 1, claimed_at = :now
     WHERE id IN (SELECT id FROM deliveries
                   WHERE (state IN ('pending', 'held') AND next_attempt_at <= :now)
                      OR (state = 'sending' AND claimed_at < :stale)
                   ORDER BY next_attempt_at, id
                   LIMIT :batch
                     FOR UPDATE SKIP LOCKED)
    RETURNING id
""")


@dataclass
class Report:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    held: int = 0
    digests: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return self.sent + self.retried + self.failed + self.bounced + self.held


def email_enabled(settings: Settings) -> bool:
    """True when an SMTP host is configured."""
    return bool(settings.smtp_host)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def _domain(settings: Settings) -> str:
    addr = parseaddr(settings.smtp_from)[1]
    return addr.rpartition("@")[2] or "localhost"


def _absolute(settings: Settings, link: str | None) -> str | None:
    if not link:
        return None
    return link if "://" in link else settings.public_url.rstrip("/") + "/" + link.lstrip("/")


def build_message(session: Session, delivery: Delivery, settings: Settings) -> EmailMessage:
    """The e-mail of one delivery, in its recipient's language: subject, text and HTML parts, headers."""
    member = session.get(Member, delivery.member_id)
    assert member is not None
    locale = member.locale
    if delivery.notification_id is not None:
        n = session.get(Notification, delivery.notification_id)
        assert n is not None
        items = [(text_of(n, locale), _absolute(settings, n.link))]
        subject = items[0][0]
    else:
        ns = session.scalars(select(Notification).where(Notification.digest_id == delivery.id)
                             .order_by(Notification.id))
        items = [(text_of(n, locale), _absolute(settings, n.link)) for n in ns]
        subject = render("notify.digest_subject", {"count": len(items)}, locale)
    token = unsubscribe_token(settings.secret_key, delivery_id=delivery.id, member_id=member.id, kind=delivery.kind)
    unsub = f"{settings.public_url.rstrip('/')}/app/notifications/unsubscribe/{token}"
    inbox = f"{settings.public_url.rstrip('/')}/app/notifications"
    what = render("notify.kind_" + delivery.kind, {}, locale)
    footer = render("notify.footer", {"kind": what}, locale)
    unsub_label = render("notify.unsubscribe", {"kind": what}, locale)
    open_label = render("notify.open", {}, locale)
    greeting = render("notify.greeting", {"name": member.display_name}, locale)

    plain_lines = [greeting, ""]
    html_items = []
    for sentence, link in items:
        plain_lines.append(("- " if delivery.notification_id is None else "") + sentence)
        if link:
            plain_lines.append(f"{open_label}: {link}")
        plain_lines.append("")
        a = f' <a href="{html.escape(link)}">{html.escape(open_label)}</a>' if link else ""
        html_items.append(f"<li>{html.escape(sentence)}{a}</li>")
    plain_lines += ["-- ", footer, f"{render('notify.inbox', {}, locale)}: {inbox}", f"{unsub_label}: {unsub}"]
    body_html = (
        f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{html.escape(subject)}</title></head>'
        f'<body style="font-family:sans-serif;line-height:1.5;max-width:40em">'
        f"<p>{html.escape(greeting)}</p><ul>{''.join(html_items)}</ul>"
        f'<hr><p style="font-size:90%">{html.escape(footer)}<br>'
        f'<a href="{html.escape(inbox)}">{html.escape(render("notify.inbox", {}, locale))}</a> · '
        f'<a href="{html.escape(unsub)}">{html.escape(unsub_label)}</a></p></body></html>'
    )
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = formataddr((member.display_name, delivery.address))
    msg["Subject"] = subject if len(subject) <= 150 else subject[:147] + "..."
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<notify-{delivery.id}@{_domain(settings)}>"
    msg["Content-Language"] = locale
    msg["Auto-Submitted"] = "auto-generated"
    msg["List-Unsubscribe"] = f"<{unsub}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("\n".join(plain_lines))
    msg.add_alternative(body_html, subtype="html")
    return msg


def _connect(settings: Settings) -> smtplib.SMTP:
    cls = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    smtp = cls(settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout)
    if settings.smtp_starttls and not settings.smtp_ssl:
        smtp.starttls()
    if settings.smtp_user:
        smtp.login(settings.smtp_user, settings.smtp_password or "")
    return smtp


def _code(exc: Exception) -> int:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _m in exc.recipients.values()]
        return max(codes) if codes else 0
    return int(getattr(exc, "smtp_code", 0) or 0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{a}: {c} {m.decode(errors='replace') if isinstance(m, bytes) else m}"
                         for a, (c, m) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{type(exc).__name__}: {exc.smtp_code} {err}"
    return f"{type(exc).__name__}: {exc}"


def _outcome(exc: BaseException) -> str:
    """What a failure means: bounced (the recipient, for good), held (our login), retry (anything else)."""
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        return "held"
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and _code(exc) >= 500:
        return "bounced"
    return "retry"


def send_pending(engine: Engine, settings: Settings, *, batch: int = 50, max_batches: int | None = None,
                 now: datetime | None = None) -> Report:
    """One pass of the sender: queue due digests, then deliver every due delivery; what it did."""
    report = Report()
    if not email_enabled(settings):
        return report
    with session_scope(engine) as session:
        report.digests = prepare_digests(session, now=now)
    smtp: smtplib.SMTP | None = None
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            batches += 1
            moment = now or datetime.now(UTC)
            with session_scope(engine) as session:
                ids = list(session.scalars(_CLAIM, {"now": moment, "stale": moment - LEASE, "batch": batch}))
            if not ids:
                break
            results: list[dict] = []
            with session_scope(engine) as session:
                deliveries = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
                for i, did in enumerate(ids):
                    d = deliveries[did]
                    try:
                        msg = build_message(session, d, settings)
                        if smtp is None:
                            smtp = _connect(settings)
                        smtp.send_message(msg, to_addrs=[d.address])
                    except (smtplib.SMTPException, OSError) as exc:
                        outcome = _outcome(exc)
                        results.append(_failure(d, outcome, _describe(exc), moment))
                        log.warning("delivery %s: %s", d.id, _describe(exc))
                        if not isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError):
                            # The connection is unusable (or our login refused): the rest of the
                            # batch waits, without spending one of its attempts.
                            if smtp is not None:
                                _quit(smtp)
                            smtp = None
                            for rest in ids[i + 1:]:
                                results.append(_release(deliveries[rest], outcome, _describe(exc), moment))
                            report.errors.append(_describe(exc))
                            _record(engine, results, report)
                            return report
                        continue
                    results.append({"id": d.id, "state": "sent", "sent_at": datetime.now(UTC),
                                    "message_id": msg["Message-ID"], "last_error": None,
                                    "next_attempt_at": d.next_attempt_at, "attempts": d.attempts})
            _record(engine, results, report)
    finally:
        if smtp is not None:
            _quit(smtp)
    return report


def _failure(d: Delivery, outcome: str, error: str, now: datetime) -> dict:
    state = {"retry": "pending", "held": "held", "bounced": "bounced"}[outcome]
    if state == "pending" and d.attempts >= MAX_ATTEMPTS:
        state = "failed"
    return {"id": d.id, "state": state, "sent_at": None, "message_id": None, "last_error": error,
            "next_attempt_at": now + backoff(d.attempts), "attempts": d.attempts}


def _release(d: Delivery, outcome: str, error: str, now: datetime) -> dict:
    return {"id": d.id, "state": "held" if outcome == "held" else "pending", "sent_at": None, "message_id": None,
            "last_error": error, "next_attempt_at": now + backoff(d.attempts), "attempts": d.attempts - 1}


def _record(engine: Engine, results: list[dict], report: Report) -> None:
    if not results:
        return
    with engine.begin() as conn:
        conn.execute(
            update(Delivery.__table__).where(Delivery.__table__.c.id == bindparam("b_id")).values(
                state=bindparam("b_state"), sent_at=bindparam("b_sent_at"), message_id=bindparam("b_message_id"),
                last_error=bindparam("b_last_error"), next_attempt_at=bindparam("b_next_attempt_at"),
                attempts=bindparam("b_attempts"), claimed_at=None,
            ),
            [{"b_" + k: v for k, v in r.items()} for r in results],
        )
    for r in results:
        key = {"sent": "sent", "pending": "retried", "failed": "failed", "bounced": "bounced", "held": "held"}
        setattr(report, key[r["state"]], getattr(report, key[r["state"]]) + 1)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def retry(session: Session, *, states: tuple[str, ...] = ("failed", "bounced", "held")) -> int:
    """Put deliveries that did not go out back in the queue (after fixing the cause); how many."""
    return session.execute(
        update(Delivery).where(Delivery.state.in_(states))
        .values(state="pending", next_attempt_at=datetime.now(UTC), attempts=0)
    ).rowcount or 0


def run_loop(engine: Engine, settings: Settings, *, interval: float = 10.0,
             before: Callable[[Engine], object] | None = None) -> None:  # pragma: no cover
    """The sender service: ``before`` (the reminders) then a pass, every ``interval`` seconds, forever."""
    while True:
        try:
            if before is not None:
                before(engine)
            report = send_pending(engine, settings)
            if report.claimed or report.digests:
                log.info("sent %s, retried %s, failed %s, bounced %s, held %s, digests %s", report.sent,
                         report.retried, report.failed, report.bounced, report.held, report.digests)
        except Exception:  # keep serving: the next pass retries
            log.exception("notify pass failed")
        time.sleep(interval)
