"""`commons-map notify`: send the outbox (once or as a service), periodic reminders, retry, list what failed."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from commons_map.db import make_engine, session_scope
from commons_map.notify import sender
from commons_map.notify.models import Delivery
from commons_map.notify.remind import Reminded
from commons_map.notify.remind import remind as remind_all
from commons_map.settings import get_settings

app = typer.Typer(help="Notifications: the e-mail sender, reminders, failed deliveries.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.command("send")
def send(
    loop: Annotated[bool, typer.Option("--loop", help="run as a service: a pass every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes with --loop")] = 10.0,
    batch: Annotated[int, typer.Option(help="deliveries claimed per transaction")] = 50,
) -> None:
    """Deliver due e-mails and daily digests (one pass, or forever with --loop)."""
    settings = get_settings()
    if not sender.email_enabled(settings):
        console.print("e-mail is off (COMMONS_SMTP_HOST is not set): notifications stay in the inbox")
        if not loop:
            return
    engine = make_engine(settings)
    try:
        if loop:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
            sender.run_loop(engine, settings, interval=interval, before=_remind_pass)
        report = sender.send_pending(engine, settings, batch=batch)
        typer.echo(f"sent {report.sent}, retried {report.retried}, failed {report.failed}, "
                   f"bounced {report.bounced}, held {report.held}, digests {report.digests}")
        for error in report.errors:
            console.print(f"[yellow]{error}[/]")
    finally:
        engine.dispose()


def _remind_pass(engine) -> Reminded:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return remind_all(session)


@app.command("remind")
def remind() -> None:
    """Periodic notifications, each told once (run from cron, or the sender's loop does it): return
    reminders a day ahead, overdue returns, proposals closing within a day, agreements due for review."""
    engine = make_engine(get_settings())
    try:
        done = _remind_pass(engine)
        typer.echo(f"{done.total} notification(s): {done.returns} return reminder(s), {done.overdue} overdue, "
                   f"{done.closing} proposal(s) closing, {done.reviews} agreement review(s)")
    finally:
        engine.dispose()


@app.command("failed")
def failed() -> None:
    """Deliveries that did not go out: failed, bounced, held (with their last error)."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            rows = session.scalars(select(Delivery).where(Delivery.state.in_(("failed", "bounced", "held")))
                                   .order_by(Delivery.id))
            table = Table("id", "state", "address", "attempts", "last error", title="undelivered")
            for d in rows:
                table.add_row(str(d.id), d.state, d.address, str(d.attempts), d.last_error or "")
            Console().print(table)
    finally:
        engine.dispose()


@app.command("retry")
def retry() -> None:
    """Queue failed, bounced and held deliveries again (after fixing the cause)."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            typer.echo(f"{sender.retry(session)} delivery(ies) queued again")
    finally:
        engine.dispose()
