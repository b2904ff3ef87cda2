"""`commons-map governance`: close the due proposals (run it every few minutes), list agreements due
for review. Thin over commons_map.governance.service."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.governance import service
from commons_map.governance.models import Agreement, Proposal
from commons_map.messages import render, terminal_locale
from commons_map.settings import get_settings

app = typer.Typer(help="Governance: proposals and agreements.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.command("close-due")
def close_due(as_json: Annotated[bool, typer.Option("--json", help="one JSON line per proposal closed")] = False,
              ) -> None:
    """Close every proposal whose closing time has passed: count, record the outcome, apply its effect.

    Each proposal closes in its own transaction; one that another closer (a read, the proposer) closed
    meanwhile is left as it is. Safe to run often and from several machines at once.
    """
    engine = make_engine(get_settings())
    locale = terminal_locale()
    closed = 0
    try:
        now = datetime.now(UTC)
        with session_scope(engine) as session:
            ids = list(session.scalars(select(Proposal.id).where(Proposal.state == "open", Proposal.closes_at <= now)
                                       .order_by(Proposal.closes_at, Proposal.id)))
        for pid in ids:
            with session_scope(engine) as session:
                p = session.get(Proposal, pid)
                if p is None or p.state == "closed":
                    continue
                p = service.close(session, actor=None, proposal_id=pid, now=now)
                closed += 1
                out = p.outcome or {}
                if as_json:
                    typer.echo(json.dumps({"id": p.id, "title": p.title, "outcome": out}, ensure_ascii=False))
                else:
                    effect = out.get("effect")
                    note = ""
                    if effect and not effect.get("applied") and effect.get("code"):
                        note = " · " + render(effect["code"], effect.get("params") or {}, locale)
                    typer.echo(f"{p.id}\t{p.title}\t{render('governance.why_' + out.get('why', 'tie'), {}, locale)}"
                               f"{note}")
    except DomainError as exc:
        console.print(f"[bold red]error:[/] {exc.summary(locale)}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    console.print(f"{closed} closed")


@app.command("agreements-due")
def agreements_due(within: Annotated[int, typer.Option(min=0, max=3660, help="days ahead")] = 30) -> None:
    """Agreements whose review date falls within the next days (overdue included), every cooperative."""
    from datetime import date, timedelta

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            limit = date.today() + timedelta(days=within)
            rows = session.scalars(select(Agreement).where(Agreement.review_on.is_not(None),
                                                           Agreement.review_on <= limit)
                                   .order_by(Agreement.review_on, Agreement.id)).all()
            for a in rows:
                typer.echo(f"{a.review_on.isoformat() if a.review_on else ''}\t{a.cooperative_id}\t{a.id}\t{a.title}")
    finally:
        engine.dispose()
