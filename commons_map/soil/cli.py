"""`commons-map soil ...`: the annual report, a parcel's timeline, charts, the indicator catalogue."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from commons_map.clikit import console, cooperative_named, fail
from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.settings import get_settings

app = typer.Typer(help="Soil regeneration and food production: reports, timelines, charts.", no_args_is_help=True)




def _actor(session: Any, username: str | None, cooperative: str | None) -> tuple[Any, int]:
    """The member the command acts as (a coordinator by default) and the cooperative id."""
    from sqlalchemy import select

    from commons_map.people.models import Member
    coop = cooperative_named(session, cooperative)
    q = select(Member).where(Member.cooperative_id == coop.id, Member.is_active.is_(True))
    if username:
        member = session.scalars(q.where(Member.username == username)).first()
        if member is None:
            raise typer.BadParameter(f"no member {username!r} in {coop.slug}")
    else:
        member = next((m for m in session.scalars(q.order_by(Member.id)) if m.is_coordinator), None)
    return member, coop.id


def _json(obj: Any) -> str:
    return json.dumps(
        obj, ensure_ascii=False, indent=2, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o)
    )


def _out(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


AsOpt = Annotated[str | None, typer.Option("--as", help="act as this member (a coordinator by default)")]
CoopOpt = Annotated[str | None, typer.Option(help="cooperative slug; the first by default")]


@app.command("report")
def report(
    year: Annotated[int, typer.Option(help="the calendar year")] = date.today().year,
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    out: Annotated[Path | None, typer.Option(help="write to this file instead of stdout")] = None,
    as_: AsOpt = None,
    cooperative: CoopOpt = None,
) -> None:
    """The cooperative's annual soil and food report."""
    from commons_map.soil import reports

    if fmt not in ("json", "csv"):
        raise typer.BadParameter("--format must be json or csv")
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            actor, coop_id = _actor(session, as_, cooperative)
            rep = reports.annual_report(session, actor=actor, cooperative_id=coop_id, year=year)
            _out(_json(rep) if fmt == "json" else reports.report_csv(rep), out)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()


@app.command("timeline")
def timeline(
    parcel: Annotated[str, typer.Argument(help="commons id or external id (e.g. demo:land-0)")],
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    out: Annotated[Path | None, typer.Option(help="write to this file instead of stdout")] = None,
    as_: AsOpt = None,
    cooperative: CoopOpt = None,
) -> None:
    """A parcel's observations, practices, harvests and work hours, in order."""
    from sqlalchemy import select

    from commons_map.register.models import Commons
    from commons_map.soil import reports

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            actor, coop_id = _actor(session, as_, cooperative)
            cid = int(parcel) if parcel.isdigit() else session.scalar(
                select(Commons.id).where(Commons.cooperative_id == coop_id, Commons.external_id == parcel)
            )
            if cid is None:
                raise typer.BadParameter(f"no parcel {parcel!r}")
            tl = reports.timeline(session, actor=actor, commons_id=cid)
            _out(_json(tl) if fmt == "json" else reports.timeline_csv(tl), out)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()


@app.command("charts")
def charts_cmd(
    out: Annotated[Path, typer.Option(help="directory for soc.png, yields.png and exchange.png")] = Path("."),
    year: Annotated[int, typer.Option(help="the calendar year of the exchange chart")] = date.today().year,
    as_: AsOpt = None,
    cooperative: CoopOpt = None,
) -> None:
    """PNG charts: SOC trend per parcel (soc.png), yields per garden and year (yields.png), and the
    year's exchanges in time (exchange.png, French and English)."""
    from commons_map.exchange import charts as exchange_charts
    from commons_map.soil import charts, reports

    if not 1990 <= year <= 2200:
        raise typer.BadParameter("--year must be between 1990 and 2200")
    out.mkdir(parents=True, exist_ok=True)
    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            actor, coop_id = _actor(session, as_, cooperative)
            data = reports.chart_series(session, actor=actor, cooperative_id=coop_id)
            exchange = reports.exchange_figures(session, actor=actor, cooperative_id=coop_id, year=year)
        (out / "soc.png").write_bytes(charts.soc_trend_png(data["soc"]))
        (out / "yields.png").write_bytes(charts.yields_png(data["yields"]))
        written = [out / "soc.png", out / "yields.png"]
        if exchange is not None:
            (out / "exchange.png").write_bytes(exchange_charts.figures_png(exchange))
            written.append(out / "exchange.png")
        console.print("wrote " + ", ".join(str(p) for p in written))
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()


@app.command("indicators")
def indicators() -> None:
    """The indicator catalogue: code, units, plausible range, methods."""
    from commons_map.soil.service import list_indicators

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            for ind in list_indicators(session):
                typer.echo(f"{ind.code:24} {ind.canonical_unit:14} {ind.range_min:g}-{ind.range_max:g}"
                           f"  units: {', '.join(ind.units)}  methods: {', '.join(ind.methods) or '-'}")
    finally:
        engine.dispose()


@app.command("crops")
def crops(cooperative: CoopOpt = None, add: Annotated[str | None, typer.Option(
        help="add a crop of the cooperative: CODE (with --fr and --en)")] = None,
        fr: Annotated[str | None, typer.Option("--fr", help="French name of the crop added")] = None,
        en: Annotated[str | None, typer.Option("--en", help="English name of the crop added")] = None,
        as_user: AsOpt = None) -> None:
    """The crop catalogue of a cooperative (shared crops and its own); --add CODE --fr … --en … adds one."""
    from commons_map.soil.crops import add_crop, list_crops

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            member, coop_id = _actor(session, as_user, cooperative)
            if add is not None:
                try:
                    crop = add_crop(session, actor=member, code=add, label_fr=fr or "", label_en=en or "")
                except DomainError as exc:
                    raise fail(exc) from exc
                console.print(f"added {crop.code}")
            for crop in list_crops(session, cooperative_id=coop_id):
                own = "" if crop.cooperative_id is None else "  (own)"
                typer.echo(f"{crop.code:20} {crop.label_fr} / {crop.label_en}{own}")
    finally:
        engine.dispose()
