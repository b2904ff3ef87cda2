"""`commons-map exchange settle-due`: pay the exchanges providers recorded done 14 days ago, undisputed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from commons_map.db import make_engine, session_scope
from commons_map.settings import get_settings

app = typer.Typer(help="The exchange network: offers, needs and exchanges paid in time.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


@app.command("settle-due")
def settle_due(
    days: Annotated[int, typer.Option(min=1, max=365, help="pay what was recorded done this many days ago")] = 14,
) -> None:
    """Pay every exchange recorded done by its provider DAYS ago without a dispute (run it daily)."""
    from commons_map.exchange import service

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session, Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
        ) as bar:
            task = bar.add_task("exchanges due", total=None)
            report = service.settle_due(session, days=days,
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        engine.dispose()
    for exchange_id, why in report.refused.items():
        console.print(f"exchange {exchange_id}: not paid: {why}")
    typer.echo(f"paid {len(report.paid)} exchange(s); {len(report.refused)} refused by a balance limit")
    if report.refused:
        raise typer.Exit(2)
