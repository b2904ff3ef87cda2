"""`commons-map cooperatives`: add a cooperative in minutes, archive one, list them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from commons_map.clikit import fail
from commons_map.db import make_engine, session_scope
from commons_map.errors import DomainError, ValidationFailed
from commons_map.settings import get_settings

app = typer.Typer(help="The cooperatives of this install: add, archive, list.", no_args_is_help=True)




def read_territory(path: Path):  # noqa: ANN201 - a shapely geometry
    """The union of the polygons of a geodata file (any format the importers read), in WGS84."""
    import shapely
    from shapely import from_wkb

    from ingest.readers import read_source

    table = read_source(path)
    shapes = [g for g in (from_wkb(w) for w in table.wkb if w) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not shapes:
        raise ValidationFailed("cooperatives.territory_empty", field="territory", name=path.name)
    return shapely.union_all(shapes)


@app.command("add")
def add(
    slug: Annotated[str, typer.Argument(help="short name in URLs and payees (user@slug)")],
    name: Annotated[str, typer.Option(help="the cooperative's name")],
    coordinator: Annotated[list[str], typer.Option(
        help="a first coordinator, USERNAME or 'USERNAME:Display name' (repeat: several are required);"
             " their passwords come from stdin, one line each, in the same order")],
    territory: Annotated[Path | None, typer.Option(help="a geodata file with the territory's polygons")] = None,
    bbox: Annotated[str | None, typer.Option(help="or the territory as minx,miny,maxx,maxy (WGS84)")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone")] = "Europe/Paris",
    language: Annotated[list[str] | None, typer.Option(help="fr or en (repeatable; the first is the default)")] = None,
    description: Annotated[str, typer.Option(help="a line about it")] = "",
) -> None:
    """Add a cooperative with its territory and its first coordinators (passwords on stdin)."""
    from commons_map.people.cooperatives import Founder, add_cooperative, parse_bbox

    try:
        if (territory is None) == (bbox is None):
            raise ValidationFailed("cooperatives.territory_one", field="territory")
        shape = read_territory(territory) if territory is not None else parse_bbox(bbox or "")
        founders = []
        for spec in coordinator:
            username, _, shown = spec.partition(":")
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise ValidationFailed("cooperatives.password_missing", field="coordinator", username=username)
            founders.append(Founder(username=username, password=password, display_name=shown.strip()))
        engine = make_engine(get_settings())
        try:
            with session_scope(engine) as session:
                coop = add_cooperative(
                    session, slug=slug, name=name, territory=shape, timezone=timezone,
                    languages=language or ["fr", "en"], coordinators=founders, description=description,
                )
                typer.echo(f"added cooperative {coop.slug} (id {coop.id}) with coordinators "
                           + ", ".join(f.username.lower() for f in founders))
        finally:
            engine.dispose()
    except DomainError as exc:
        raise fail(exc) from exc


@app.command("archive")
def archive(slug: Annotated[str, typer.Argument(help="the cooperative's slug")]) -> None:
    """Archive a cooperative: hidden everywhere, its members sign in no more; nothing is deleted."""
    from commons_map.people.cooperatives import archive_cooperative

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            coop = archive_cooperative(session, slug=slug)
            typer.echo(f"archived {coop.slug} at {coop.archived_at:%Y-%m-%d %H:%M %Z}")
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()


@app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="archived ones too")] = False) -> None:
    """The cooperatives: slug, members, timezone, languages, name."""
    from commons_map.people.cooperatives import list_cooperatives

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            rows = list_cooperatives(session, include_archived=all_)
    finally:
        engine.dispose()
    for row in rows:
        flag = "  (archived)" if row["archived"] else ""
        typer.echo(f"{row['slug']}\t{row['members']} members\t{row['timezone']}\t{','.join(row['languages'])}"
                   f"\t{row['name']}{flag}")
