"""`commons-map ledger`: check the invariant, print statements and figures."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from commons_map.clikit import console, cooperative_named, fail
from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.messages import terminal_locale
from commons_map.settings import get_settings

ledger_app = typer.Typer(help="The time ledger: check, statements, figures.", no_args_is_help=True)




def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value))



@ledger_app.command("check")
def check(
    cooperative: Annotated[str | None, typer.Option(help="slug; every cooperative by default")] = None,
    network: Annotated[bool, typer.Option(
        "--network", help="every ledger, and each pair of clearing accounts mirror each other")] = False,
) -> None:
    """Verify that balances sum to zero and each equals its postings; exit 1 on any breach."""
    from commons_map.ledger import service
    from commons_map.people.service import get_cooperative

    if network and cooperative:
        raise fail("--network checks every cooperative: leave out --cooperative")
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            if network:
                from commons_map.clearing.service import check_network

                report = check_network(session)
            else:
                coop_id = get_cooperative(session, cooperative).id if cooperative else None
                report = service.check(session, cooperative_id=coop_id)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    typer.echo(f"accounts: {report.accounts}  transfers: {report.transfers}  postings: {report.postings}"
               f"  sum of balances: {report.total_balance} min")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if not report.ok:
        for breach in report.breaches:
            console.print(f"[bold red]breach:[/] {breach}")
        raise typer.Exit(1)
    typer.echo("ledger OK: balances sum to zero and every balance equals the sum of its postings"
               + ("; every pair of clearing accounts mirror each other" if network else ""))


@ledger_app.command("statement")
def statement(
    member: Annotated[str, typer.Argument(help="username or member id")],
    date_from: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """A member's postings with running balance over a period, as CSV or JSON on stdout."""
    from commons_map.ledger import service
    from commons_map.people.service import get_member

    if fmt not in ("csv", "json"):
        raise fail(f"--format: {fmt!r} is not csv or json")
    start, end = _date(date_from, "from"), _date(date_to, "to")
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            coop = cooperative_named(session, cooperative)
            who = get_member(session, cooperative_id=coop.id, username_or_id=member)
            account = service.ensure_member_account(session, member=who)
            data = service.statement(session, account=account, date_from=start, date_to=end)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    if fmt == "csv":
        typer.echo(service.statement_csv(data), nl=False)
    else:
        typer.echo(json.dumps(data, default=_json_default, ensure_ascii=False, indent=2))


@ledger_app.command("figures")
def figures(
    year: Annotated[int | None, typer.Option(help="one year only")] = None,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables")] = False,
) -> None:
    """Hours of approved work per commons, per activity and per month."""
    from commons_map.ledger import service

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            coop = cooperative_named(session, cooperative)
            data = service.figures(session, cooperative_id=coop.id, actor=None, year=year, all_commons=True)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from commons_map.messages import duration

    locale = terminal_locale()
    out = Console()
    for title, rows, key in (("Par commun / per commons", data["per_commons"], "name"),
                             ("Par activité / per activity", data["per_activity"], "label_fr"),
                             ("Par mois / per month", data["per_month"], "month")):
        table = Table(title=title)
        table.add_column(key)
        table.add_column("heures / hours", justify="right")
        table.add_column("journaux / logs", justify="right")
        for row in rows:
            table.add_row(str(row[key]), duration(row["minutes"], locale), str(row["logs"]))
        out.print(table)
    out.print(f"total: {duration(data['total_minutes'], locale)}")
