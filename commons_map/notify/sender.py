"""The sender: delivers the outbox by SMTP, exactly once per notification and address.

One pass (:func:`send_pending`):

1. *Claim* up to ``batch`` due deliveries with ``SELECT ... FOR UPDATE SKIP LOCKED`` and mark
   them ``sending`` (attempts + 1, claimed_at = now) in a transaction that commits at once: a
   second sender skips the locked rows and then sees them ``sending``, so it never takes them.
2. *Build* the batch's messages (:class:`Composer`: three queries a batch, each sentence rendered
   once per language), then *send* them in one tight loop over one SMTP connection (reused for the
   whole pass). ``bench/notify.py`` compares the rate with a bare ``smtplib`` loop.
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

import binascii
import html
import json
import logging
import secrets
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
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
UTF8 = Charset("utf-8")
UTF8.header_encoding = UTF8.body_encoding = QP

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


class Composer:
    """Builds the e-mails of a pass, as the bytes sent.

    Each batch's recipients and notifications are read in three queries (not two per message); each
    sentence is rendered once per language and parameters (one event told to a hundred members is
    rendered twice, not a hundred times); the fixed words once per language and kind; encoded
    headers once per text. The MIME is written here rather than by the ``email`` package, whose
    header folding cost more than the whole SMTP exchange (bench/notify.py): one fixed shape, a
    ``multipart/alternative`` of a plain-text and an HTML part in UTF-8 quoted-printable (encoded
    by ``binascii``, in C), CRLF line ends, non-ASCII headers as RFC 2047 encoded words of at most
    75 characters (folded by ``email.header``), and ``List-Unsubscribe`` left whole (a URL cut
    into encoded words is one no mail client reads). The boundary starts with ``=_``, which
    quoted-printable never writes, so it cannot occur in a body. The tests read these messages
    back with the ``email`` package and check the raw lines (test_notify_wire.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.public_url.rstrip("/")
        name, addr = parseaddr(settings.smtp_from)
        self.sender = _address(name, addr) if name else addr
        self.domain = addr.rpartition("@")[2] or "localhost"
        self._texts: dict[tuple[str, str, str], str] = {}
        self._words: dict[tuple[str, str], dict[str, str]] = {}
        self._subjects: dict[str, str] = {}
        self.members: dict[int, tuple[str, str]] = {}
        self.notifications: dict[int, Notification] = {}
        self.digests: dict[int, list[Notification]] = {}

    def load(self, session: Session, deliveries: list[Delivery]) -> Composer:
        """Read what the deliveries' messages say, in one query per table."""
        member_ids = {d.member_id for d in deliveries} - self.members.keys()
        if member_ids:
            self.members.update({i: (name, locale) for i, name, locale in session.execute(
                select(Member.id, Member.display_name, Member.locale).where(Member.id.in_(member_ids)))})
        single = [d.notification_id for d in deliveries if d.notification_id is not None]
        self.notifications = {n.id: n for n in session.scalars(select(Notification).where(Notification.id.in_(single)))
                              } if single else {}
        digests = [d.id for d in deliveries if d.notification_id is None]
        self.digests = {i: [] for i in digests}
        if digests:
            for n in session.scalars(select(Notification).where(Notification.digest_id.in_(digests))
                                     .order_by(Notification.id)):
                self.digests[n.digest_id or 0].append(n)
        return self

    def _text(self, n: Notification, locale: str) -> str:
        key = (n.code, json.dumps(n.params, sort_keys=True, ensure_ascii=False), locale)
        if key not in self._texts:
            self._texts[key] = text_of(n, locale)
        return self._texts[key]

    def _fixed(self, locale: str, kind: str) -> dict[str, str]:
        if (locale, kind) not in self._words:
            what = render("notify.kind_" + kind, {}, locale)
            self._words[locale, kind] = {
                "footer": render("notify.footer", {"kind": what}, locale),
                "unsub": render("notify.unsubscribe", {"kind": what}, locale),
                "open": render("notify.open", {}, locale), "inbox": render("notify.inbox", {}, locale),
            }
        return self._words[locale, kind]

    def _subject(self, subject: str) -> str:
        if subject not in self._subjects:
            self._subjects[subject] = Header(subject, UTF8 if not subject.isascii() else None,
                                             header_name="Subject").encode(linesep="\r\n", maxlinelen=76)
        return self._subjects[subject]

    def _absolute(self, link: str | None) -> str | None:
        if not link:
            return None
        return link if "://" in link else self.base + "/" + link.lstrip("/")

    def message_id(self, delivery: Delivery) -> str:
        """A delivery's Message-ID: the same on a second copy (see the module's note)."""
        return f"<notify-{delivery.id}@{self.domain}>"

    def build(self, delivery: Delivery) -> bytes:
        """The e-mail of one delivery (loaded before), in its recipient's language: subject, text and
        HTML parts, headers; as sent."""
        name, locale = self.members[delivery.member_id]
        if delivery.notification_id is not None:
            n = self.notifications[delivery.notification_id]
            items = [(self._text(n, locale), self._absolute(n.link))]
            subject = items[0][0]
        else:
            ns = self.digests.get(delivery.id, [])
            items = [(self._text(n, locale), self._absolute(n.link)) for n in ns]
            subject = render("notify.digest_subject", {"count": len(items)}, locale)
        words = self._fixed(locale, delivery.kind)
        token = unsubscribe_token(self.settings.secret_key, delivery_id=delivery.id, member_id=delivery.member_id,
                                  kind=delivery.kind)
        unsub = f"{self.base}/app/notifications/unsubscribe/{token}"
        inbox = f"{self.base}/app/notifications"
        greeting = render("notify.greeting", {"name": name}, locale)
        open_label = words["open"]

        plain_lines = [greeting, ""]
        html_items = []
        for sentence, link in items:
            plain_lines.append(("- " if delivery.notification_id is None else "") + sentence)
            if link:
                plain_lines.append(f"{open_label}: {link}")
            plain_lines.append("")
            a = f' <a href="{html.escape(link)}">{html.escape(open_label)}</a>' if link else ""
            html_items.append(f"<li>{html.escape(sentence)}{a}</li>")
        plain_lines += ["-- ", words["footer"], f"{words['inbox']}: {inbox}", f"{words['unsub']}: {unsub}"]
        body_html = (
            f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width"><title>{html.escape(subject)}</title></head>'
            f'<body style="font-family:sans-serif;line-height:1.5;max-width:40em">'
            f"<p>{html.escape(greeting)}</p><ul>{''.join(html_items)}</ul>"
            f'<hr><p style="font-size:90%">{html.escape(words["footer"])}<br>'
            f'<a href="{html.escape(inbox)}">{html.escape(words["inbox"])}</a> · '
            f'<a href="{html.escape(unsub)}">{html.escape(words["unsub"])}</a></p></body></html>'
        )
        boundary = f"=_notify-{delivery.id}-{secrets.token_hex(8)}"
        head = (
            f"From: {self.sender}\r\n"
            f"To: {_address(name, delivery.address)}\r\n"
            f"Subject: {self._subject(subject if len(subject) <= 150 else subject[:147] + '...')}\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: {self.message_id(delivery)}\r\n"
            f"Content-Language: {locale}\r\n"
            "Auto-Submitted: auto-generated\r\n"
            f"List-Unsubscribe: <{unsub}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        ).encode("ascii")
        return b"".join([head, _part(boundary, "plain", "\n".join(plain_lines)), _part(boundary, "html", body_html),
                         f"--{boundary}--\r\n".encode("ascii")])


def _address(name: str, address: str) -> str:
    """``Name <address>``, the name as encoded words when it is not ASCII."""
    if name.isascii():
        return formataddr((name, address))
    return f"{Header(name, UTF8, header_name='To').encode(linesep=chr(13) + chr(10), maxlinelen=76)} <{address}>"


def _part(boundary: str, subtype: str, body: str) -> bytes:
    """One text part in UTF-8 quoted-printable (CRLF line ends, lines of at most 76 characters)."""
    encoded = binascii.b2a_qp(body.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return (f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii") + encoded + b"\r\n"


def build_message(session: Session, delivery: Delivery, settings: Settings) -> bytes:
    """The e-mail of one delivery, as sent, in its recipient's language (the sender builds a batch at once)."""
    return Composer(settings).load(session, [delivery]).build(delivery)


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
    sender = parseaddr(settings.smtp_from)[1]
    composer = Composer(settings)
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
            # Build the whole batch, then send it in one tight loop: the SMTP round trips go about
            # twice as fast when nothing else runs between them (bench/notify.py).
            with session_scope(engine) as session:
                deliveries = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
                composer.load(session, list(deliveries.values()))
                ready = [(deliveries[did], composer.build(deliveries[did])) for did in ids]
            for i, (d, data) in enumerate(ready):
                try:
                    if smtp is None:
                        smtp = _connect(settings)
                    smtp.sendmail(sender, [d.address], data)
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
                        for rest, _data in ready[i + 1:]:
                            results.append(_release(rest, outcome, _describe(exc), moment))
                        report.errors.append(_describe(exc))
                        _record(engine, results, report)
                        return report
                    continue
                results.append({"id": d.id, "state": "sent", "sent_at": datetime.now(UTC),
                                "message_id": composer.message_id(d), "last_error": None,
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
