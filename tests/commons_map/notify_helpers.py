"""A real SMTP server on loopback (aiosmtpd) and a committed database of its own, for the sender tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import text
from sqlalchemy.engine import Engine

from commons_map.db import drop_database, ensure_database, make_engine, session_scope
from commons_map.migrate import upgrade
from commons_map.people.models import Cooperative, Member
from commons_map.settings import Settings
from tests.conftest import TEST_SECRET, _test_url, free_port


@dataclass
class Inbox:
    """What an SMTP server received: one entry per message, with its envelope recipients."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # each message as it came over the wire
    lock: threading.Lock = field(default_factory=threading.Lock)
    reject: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        data = envelope.original_content or envelope.content
        msg = message_from_bytes(data, policy=policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg))
            self.raw.append(data)
        return "250 Message accepted for delivery"


@dataclass
class Smtp:
    host: str
    port: int
    inbox: Inbox


def smtp_server(*, refuse_login: bool = False) -> Iterator[Smtp]:
    """An aiosmtpd server on a free loopback port (refusing every login when asked)."""
    inbox = Inbox()
    port = free_port()
    kw = {}
    if refuse_login:
        kw = {"auth_required": True, "auth_require_tls": False,
              "authenticator": lambda *a, **k: AuthResult(success=False, handled=False)}
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    try:
        yield Smtp("127.0.0.1", port, inbox)
    finally:
        ctl.stop()


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[Smtp]:
    yield from smtp_server()


@pytest.fixture(scope="module", name="notify_engine")
def notify_engine_fixture() -> Iterator[Engine]:
    """A committed database of this module's own (the sender commits), with a small cooperative."""
    url = _test_url("cm_notify")
    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="n", name="Notifiers", timezone="Europe/Paris",
                           territory="SRID=4326;MULTIPOLYGON(((5 44,6 44,6 45,5 45,5 44)))")
        s.add(coop)
        s.flush()
        s.add_all([
            Member(cooperative_id=coop.id, username="amelie", display_name="Amélie Durand",
                   email="amelie@example.org", password_hash="x", locale="fr"),
            Member(cooperative_id=coop.id, username="john", display_name="John Smith",
                   email="john@example.org", password_hash="x", locale="en"),
            Member(cooperative_id=coop.id, username="nomail", display_name="No Mail",
                   email=None, password_hash="x", locale="fr"),
        ])
    yield engine
    engine.dispose()
    drop_database(url)


@pytest.fixture(name="clean")
def clean_fixture(notify_engine: Engine) -> Engine:
    """The module's database with an empty outbox and no preferences."""
    with notify_engine.begin() as c:
        c.execute(text("TRUNCATE deliveries, notifications, notification_preferences, notify_settings CASCADE"))
    return notify_engine


def mail_settings(port: int, **kw) -> Settings:
    """Settings that send to the loopback server."""
    return Settings(environment="test", secret_key=TEST_SECRET, smtp_host="127.0.0.1", smtp_port=port,
                    smtp_from="Commons <noreply@commons.example>", public_url="https://commons.example",
                    smtp_timeout=5, **kw)


def member(engine: Engine, username: str) -> Member:
    from sqlalchemy import select

    with session_scope(engine) as s:
        return s.scalars(select(Member).where(Member.username == username)).one()
