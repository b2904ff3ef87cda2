"""`commons-map reservations`: pass lapsed waiting-list offers on, show availability, list what is
overdue, export a resource's calendar. Thin over commons_map.reservations.service."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from commons_map.clikit import fail
from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.people.models import Member
from commons_map.register.models import Commons
from commons_map.reservations import service
from commons_map.reservations.models import Reservation
from commons_map.settings import get_settings

app = typer.Typer(help="Reservations of tools and places.", no_args_is_help=True)




def _member(session, username: str) -> Member:  # type: ignore[no-untyped-def]
    member = session.scalar(select(Member).where(Member.username == username.strip().lower()))
    if member is None:
        raise fail(f"--as: no member {username!r}")
    return member


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--{name}: {value!r} is not an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        raise fail(f"--{name}: {value!r} has no offset; write e.g. {value}+01:00")
    return parsed


@app.command("tick")
def tick() -> None:
    """Expire lapsed waiting-list offers and offer freed slots to the next in line (run from cron)."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            made = service.process_waiting_list(session)
    finally:
        engine.dispose()
    typer.echo(f"{made} offer(s) made")


@app.command("availability")
def availability(
    resource_id: int,
    as_: Annotated[str, typer.Option("--as", help="the member asking (what they may see)")],
    start: Annotated[str | None, typer.Option("--from", help="ISO 8601 with offset; default now")] = None,
    days: Annotated[int, typer.Option(min=1, max=92)] = 7,
) -> None:
    """The free slots of a resource."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            begin = _when(start, "from") or datetime.now().astimezone()
            out = service.availability(session, actor=_member(session, as_), resource_id=resource_id,
                                       start=begin, end=begin + timedelta(days=days))
            table = Table("free from", "until", title=f"resource {resource_id} ({out['timezone']})")
            for slot in out["free"]:
                table.add_row(f"{slot['starts_at']:%a %d/%m %H:%M}", f"{slot['ends_at']:%a %d/%m %H:%M}")
            Console().print(table)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()


@app.command("overdue")
def overdue() -> None:
    """Bookings checked out and past their end (overdue is derived, never stored)."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            now = datetime.now().astimezone()
            rows = session.execute(
                select(Reservation, Commons.name, Member.display_name)
                .join(Commons, Commons.id == Reservation.resource_id)
                .join(Member, Member.id == Reservation.member_id)
                .where(Reservation.state == "checked_out", Reservation.ends_at < now)
                .order_by(Reservation.ends_at)
            ).all()
            table = Table("id", "resource", "member", "due", title="overdue")
            for r, name, who in rows:
                table.add_row(str(r.id), name, who, f"{r.ends_at.astimezone():%d/%m %H:%M}")
            Console().print(table)
    finally:
        engine.dispose()


@app.command("calendar")
def calendar(
    resource_id: int,
    out: Annotated[Path, typer.Option(help="where to write the .ics file")],
    as_: Annotated[str | None, typer.Option("--as", help="the member asking; anonymous by default")] = None,
) -> None:
    """Write a resource's busy times as an iCalendar file."""
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            actor = _member(session, as_) if as_ else None
            out.write_bytes(service.resource_calendar(session, actor=actor, resource_id=resource_id))
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    typer.echo(f"wrote {out}")
