"""`commons-map maps ...`: the public map as a static site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Public maps.", no_args_is_help=True)


@app.command("build")
def build(
    out: Annotated[Path, typer.Option("--out", help="folder to write the static site into")],
    min_zoom: Annotated[
        int, typer.Option(min=0, max=22, help="lowest zoom of the written tiles")
    ] = 10,
    max_zoom: Annotated[
        int, typer.Option(min=0, max=22, help="highest zoom of the written tiles")
    ] = 16,
    basemap: Annotated[str, typer.Option(help="osm (OpenStreetMap tiles) or none")] = "osm",
    archive_max_zoom: Annotated[
        int, typer.Option(min=0, max=22, help="highest zoom of the PMTiles archive (public.pmtiles)")
    ] = 16,
    archive: Annotated[
        bool, typer.Option(help="also write public.pmtiles and the pages reading it")
    ] = True,
) -> None:
    """Write the public map (French index.html, English index.en.html) and its data to OUT."""
    from commons_map.cli import console, progress
    from commons_map.db import make_engine, session_scope
    from commons_map.settings import get_settings
    from maps.site import build_static_site

    if min_zoom > max_zoom:
        console.print("[bold red]error:[/] --min-zoom must not exceed --max-zoom")
        raise typer.Exit(1)
    if basemap not in ("osm", "none"):
        console.print(f"[bold red]error:[/] --basemap must be osm or none, not {basemap!r}")
        raise typer.Exit(1)
    settings = get_settings()
    engine = make_engine(settings)
    try:
        with progress() as bar, session_scope(engine) as session:
            tasks: dict[str, int] = {}

            def say(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total)
                bar.update(tasks[what], completed=done, total=total)

            counts = build_static_site(
                session,
                out,
                licence=settings.data_licence,
                min_zoom=min_zoom,
                max_zoom=max_zoom,
                basemap=None if basemap == "none" else basemap,
                progress=say,
                archive_max_zoom=archive_max_zoom if archive else None,
            )
    finally:
        engine.dispose()
    console.print(
        f"wrote {out}/index.html (fr), {out}/index.en.html (en), {counts['tiles']} tiles,"
        f" {sum(1 for k in counts if k.startswith('data/'))} GeoJSON layers"
    )
    if "public.pmtiles" in counts:
        console.print(
            f"wrote {out}/public.pmtiles ({counts['archive_tiles']} tiles, {counts['public.pmtiles']:,} bytes)"
            f" read by {out}/pmtiles.html (fr) and {out}/pmtiles.en.html (en)"
        )
