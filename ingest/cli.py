"""`commons-map ingest …`: geodata files, field-form exports, field tokens."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commons_map.clikit import console, cooperative_named, fail
from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.messages import terminal_locale
from commons_map.settings import get_settings

app = typer.Typer(help="Bring data in: geodata files, ODK Central / Kobo exports, field tokens.",
                  no_args_is_help=True)
SKIP_HELP = "write the good rows even if some are rejected (default: all or nothing)"




def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, col = v.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise typer.BadParameter(f"{v!r}: write FIELD=COLUMN, e.g. name=NOM", param_hint=option)
        out[key.strip()] = col.strip()
    return out


def _bar() -> Progress:
    """The progress bar of long imports (on standard error, with the other messages)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def _actor(session, username: str | None, coop):
    from commons_map.people.service import get_member

    return get_member(session, cooperative_id=coop.id, username_or_id=username) if username else None


@app.command("commons")
def commons(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoPackage, zipped shapefile, "
                                         "GeoJSON, KML/KMZ, FlatGeobuf or CSV")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN (name, kind, external_id, "
                                                   "description, visibility, state, parent); repeatable")] = None,
    kind: Annotated[str | None, typer.Option(help="one kind for every row (e.g. garden)")] = None,
    external_id: Annotated[str | None, typer.Option("--external-id", help="the column that identifies a row")] = None,
    id_prefix: Annotated[str, typer.Option("--id-prefix", help="prepended to external ids (e.g. cadastre:)")] = "",
    crs: Annotated[str | None, typer.Option(help="CRS when the file has none, e.g. EPSG:2154")] = None,
    layer: Annotated[str | None, typer.Option(help="the layer to read (GeoPackage with several)")] = None,
    lat: Annotated[str | None, typer.Option(help="CSV latitude column")] = None,
    lon: Annotated[str | None, typer.Option(help="CSV longitude column")] = None,
    wkt: Annotated[str | None, typer.Option(help="CSV WKT column")] = None,
    encoding: Annotated[str | None, typer.Option(help="how a shapefile's (or CSV's) texts are encoded, e.g."
                                                 " UTF-8, ISO-8859-1, CP1252 (ogr2ogr: -oo ENCODING=); by default"
                                                 " the .cpg file, else UTF-8 when the texts are")] = None,
    make_valid: Annotated[bool, typer.Option("--make-valid", help="repair invalid geometries (ST_MakeValid)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would happen; write nothing")] = False,
    skip_rejected: Annotated[bool, typer.Option("--skip-rejected", help=SKIP_HELP)] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="the coordinator recorded in the history")] = None,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
    report: Annotated[Path | None, typer.Option(help="write the per-row report here (.csv or .json)")] = None,
) -> None:
    """Import commons from a geodata file: dry run first, then the real run (idempotent by external id)."""
    from ingest.geodata import ImportOptions, import_commons

    mapping = _pairs(map_, "--map")
    if external_id:
        mapping["external_id"] = external_id
    csv_columns = {k: v for k, v in (("lat", lat), ("lon", lon), ("wkt", wkt)) if v}
    options = ImportOptions(mapping=mapping, kind=kind, crs=crs, layer=layer, make_valid=make_valid,
                            dry_run=dry_run, id_prefix=id_prefix, skip_rejected=skip_rejected,
                            csv_columns=csv_columns, encoding=encoding)
    engine = make_engine(get_settings())
    try:
        with _bar() as bar, session_scope(engine) as session:
            coop = cooperative_named(session, cooperative)
            actor = _actor(session, as_user, coop)
            task = bar.add_task(f"reading {file.name}", total=None)

            def step(stage: str, done: int, total: int) -> None:
                bar.update(task, description=f"{stage} {file.name}", completed=done, total=total)

            result = import_commons(session, actor=actor, path=file, options=options, cooperative=coop,
                                    system=actor is None, progress=step)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    _print_report(result)
    if report is not None:
        _write_report(result, report)
        console.print(f"per-row report written to {report}")
    if result.counts["rejected"] and not result.written and not dry_run:
        console.print("[bold red]nothing was written[/]: fix the rejected rows, or use --skip-rejected")
        raise typer.Exit(1)


def _print_report(result) -> None:
    console.print(f"{result.file} ({result.format}), CRS {result.crs}")
    console.print("columns: " + ", ".join(f"{k}={v}" for k, v in result.mapping.items()))
    t = Table("created" if result.written else "to create", "updated" if result.written else "to update",
              "unchanged", "rejected", "repaired")
    c = result.counts
    t.add_row(*(str(c[k]) for k in ("create", "update", "unchanged", "rejected", "repaired")))
    console.print(t)
    locale = terminal_locale()
    for r in result.rejected[:50]:
        console.print(f"[red]rejected[/] {'; '.join(r.reasons_in(locale))}")
    if len(result.rejected) > 50:
        console.print(f"… and {len(result.rejected) - 50} more rejected rows (see --report)")
    for r in [r for r in result.rows if r.repaired][:50]:
        console.print(f"[yellow]repaired[/] {result.row_label} {r.row} ({r.external_id})")
    if result.dry_run:
        console.print("[bold]dry run[/]: nothing was written")


def _write_report(result, path: Path) -> None:
    locale = terminal_locale()
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(result.as_dict(locale), ensure_ascii=False, indent=1), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([result.row_label, "external_id", "action", "repaired", "commons_id", "reasons"])
        for r in result.rows:
            w.writerow([r.row, r.external_id or "", r.action, "yes" if r.repaired else "", r.commons_id or "",
                        " | ".join(r.reasons_in(locale))])


EXPORT_HELP = "ODK Central / Kobo CSV or GeoJSON export, or Central's 'download all' ZIP (CSVs and media/)"


@app.command("submissions")
def submissions(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=EXPORT_HELP)],
    form: Annotated[str | None, typer.Option(help="the form id, when the file does not say it")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="whose submissions, when the export does not say")] = None,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
    repeat: Annotated[list[str] | None, typer.Option(help="NAME=FILE: a Central repeat CSV (found next to"
                                                     " the main file when named FORM-NAME.csv)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    skip_rejected: Annotated[bool, typer.Option("--skip-rejected", help=SKIP_HELP)] = False,
) -> None:
    """Import submissions exported from ODK Central or KoboToolbox, deduplicated by instanceID."""
    from ingest.exports import import_export

    engine = make_engine(get_settings())
    try:
        with _bar() as bar, session_scope(engine) as session:
            coop = cooperative_named(session, cooperative)
            actor = _actor(session, as_user, coop)
            repeats = {k: Path(v) for k, v in _pairs(repeat, "--repeat").items()}
            task = bar.add_task(f"importing {file.name}", total=None)
            result = import_export(session, path=file, cooperative=coop, form_id=form, member=actor,
                                   repeats=repeats, dry_run=dry_run, skip_rejected=skip_rejected,
                                   progress=lambda done, total: bar.update(task, completed=done, total=total))
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    t = Table("form", "rows", "new" if result.written else "to add", "already here", "records", "rejected")
    t.add_row(result.form_id, str(result.rows), str(result.created), str(result.duplicates),
              str(result.processed), str(len(result.rejected)))
    console.print(t)
    for line in result.rejected[:50]:
        console.print(f"[red]rejected[/] {line}")
    if len(result.rejected) > 50:
        console.print(f"… and {len(result.rejected) - 50} more rejected rows")
    if dry_run:
        console.print("[bold]dry run[/]: nothing was written")
    elif not result.written:
        console.print("[bold red]nothing was written[/]: fix the rejected rows, or use --skip-rejected")
        raise typer.Exit(1)


@app.command("token")
def token(
    username: str,
    label: Annotated[str, typer.Option(help="which phone, e.g. 'Android de Léa'")] = "",
    base_url: Annotated[str, typer.Option(help="the public address of this server")] = "http://127.0.0.1:8000",
) -> None:
    """Issue a field token for a member's phone and print the server URL to type or scan in ODK Collect."""
    from commons_map.fieldforms.service import issue_token
    from commons_map.people.models import Member

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            from sqlalchemy import select

            member = session.scalar(select(Member).where(Member.username == username.lower()))
            if member is None:
                console.print(f"[bold red]error:[/] no member {username!r}")
                raise typer.Exit(1)
            secret, _ = issue_token(session, actor=None, member=member, label=label, system=True)
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    typer.echo(f"{base_url.rstrip('/')}/openrosa/key/{secret}")
