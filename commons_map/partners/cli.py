"""`commons-map partners`: list, add, remove and refresh the partner maps of a cooperative."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Annotated

import typer

from commons_map.clikit import cooperative_named, unit_of_work
from commons_map.db import make_engine
from commons_map.messages import terminal_locale
from commons_map.partners import service
from commons_map.settings import get_settings

app = typer.Typer(help="Partner initiatives shown on the public map (OGC API - Features).", no_args_is_help=True)
CoopOpt = Annotated[str | None, typer.Option("--cooperative", help="slug; the first cooperative by default")]


def _line(p: dict) -> str:
    layers = ", ".join(f"{x['collection']} ({x['features']})" for x in p["layers"]) or "-"
    state = p["status"] + (f": {p['error']}" if p["error"] else "")
    return f"{p['id']}\t{p['name']}\t{p['url']}\t{p['licence']}\t{state}\t{layers}"


@app.command("list")
def list_cmd(cooperative: CoopOpt = None,
             as_json: Annotated[bool, typer.Option("--json", help="one JSON object per partner")] = False) -> None:
    """The partners of a cooperative and how their last reading went."""
    with unit_of_work() as session:
        for p in service.list_partners(session, actor=None, cooperative=cooperative_named(session, cooperative)):
            d = service.as_dict(p, terminal_locale())
            typer.echo(json.dumps(d, default=str, ensure_ascii=False) if as_json else _line(d))


@app.command("add")
def add(url: Annotated[str, typer.Argument(help="the OGC API - Features landing page, e.g. https://…/ogc")],
        cooperative: CoopOpt = None,
        name: Annotated[str | None, typer.Option(help="shown on the map (default: the partner's title)")] = None,
        licence: Annotated[str | None, typer.Option(help="when the partner declares none")] = None) -> None:
    """List a partner: it is read now, and refused with the reason when it is not a usable OGC API."""
    with unit_of_work() as session:
        p = service.add_partner(session, actor=None, cooperative=cooperative_named(session, cooperative), url=url,
                                name=name, licence=licence, limits=service.limits_from(get_settings()))
        typer.echo(_line(service.as_dict(p, terminal_locale())))


@app.command("remove")
def remove(partner_id: int, cooperative: CoopOpt = None) -> None:
    """Stop showing a partner (its cached layers are deleted)."""
    with unit_of_work() as session:
        coop = cooperative_named(session, cooperative)
        service.remove_partner(session, actor=None, cooperative=coop, partner_id=partner_id)
    typer.echo(f"removed partner {partner_id}")


@app.command("refresh")
def refresh(
    loop: Annotated[bool, typer.Option("--loop", help="run as a service: a pass every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between passes with --loop")] = 60.0,
    max_age: Annotated[float | None, typer.Option(
        min=0, help="read partners older than this (seconds; default COMMONS_PARTNERS_REFRESH_SECONDS,"
                    " 0: all of them)")] = None,
) -> None:
    """Read again the partners whose copy is old (once, or forever with --loop)."""
    settings = get_settings()
    age = timedelta(seconds=settings.partners_refresh_seconds if max_age is None else max_age)
    limits = service.limits_from(settings)
    engine = make_engine(settings)
    if loop:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        while True:
            report = service.refresh_due(engine, max_age=age, limits=limits)
            typer.echo(f"{len(report.ok)} ok, {len(report.unavailable)} unavailable")
            if not loop:
                return
            time.sleep(interval)
    finally:
        engine.dispose()
