"""The public map served by the app, and the same map as a static site with its data beside it."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy.orm import Session

from commons_map.partners import service as partners
from commons_map.publish import export, service
from commons_map.publish.collections import COLLECTIONS
from maps.archive import ARCHIVE_NAME, LayerTiles, write_pmtiles

if TYPE_CHECKING:
    from maps.public import PartnerSource

# maps.public (the pages) is imported where a page is made: it imports folium, and pandas under
# it (about 45 MB), which ``build_static_site`` so holds only once its data and tiles are written.

MAP_LAYERS = ("restored_land", "gardens", "tools_and_places")


def public_bounds(session: Session) -> tuple[float, float, float, float] | None:
    """The CRS84 box around every public layer of the map (None when nothing is public)."""
    boxes = []
    for cid in MAP_LAYERS:
        ext = service.extent(session, collection=COLLECTIONS[cid]).get("spatial")
        if ext:
            boxes.append(ext["bbox"][0])
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def partner_sources(session: Session, url: Callable[[partners.MapLayer], str]) -> tuple[PartnerSource, ...]:
    """The partners for the map, each layer read from ``url(layer)`` (our copy, never the partner)."""
    from maps.public import PartnerLayerSource, PartnerSource

    return tuple(
        PartnerSource(
            name=p.name, link=p.link, licence=p.licence, available=p.available,
            copy_of=p.fetched_at.date().isoformat() if p.fetched_at and not p.available and p.layers else None,
            layers=tuple(PartnerLayerSource(key=f"{x.partner_id}/{x.collection_id}", title=x.title, url=url(x),
                                            licence=x.licence, truncated=x.truncated) for x in p.layers),
        )
        for p in partners.map_partners(session)
    )


def server_page(session: Session, *, lang: str, root: str = "", basemap: str | None = "osm") -> str:
    """The HTML of ``GET /maps/public``: layers loaded from this server's tiles and OGC API."""
    from maps.public import Sources, build_public_map, render

    other = "en" if lang == "fr" else "fr"
    sources = Sources(
        restored_land_tiles=f"{root}/tiles/restored_land/{{z}}/{{x}}/{{y}}.mvt",
        restored_land_items=f"{root}/ogc/collections/restored_land/items",
        gardens_geojson=f"{root}/ogc/collections/gardens/items?f=json&limit=10000",
        tools_and_places_geojson=f"{root}/ogc/collections/tools_and_places/items?f=json&limit=10000",
        assets=f"{root}/maps/static/vendor",
        other_lang_href=f"{root}/maps/public?lang={other}"
        + ("&basemap=none" if basemap is None else ""),
        open_data_href=f"{root}/opendata",
        partners=partner_sources(
            session, lambda x: f"{root}/maps/partners/{x.partner_id}/{quote(x.collection_id, safe='')}.geojson"),
    )
    m = build_public_map(sources, lang=lang, bounds=public_bounds(session), basemap=basemap)
    return render(m, lang=lang)


def tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[range, range]:
    """The x and y ranges of WebMercatorQuad tiles at zoom ``z`` covering a CRS84 box."""
    minx, miny, maxx, maxy = bounds
    n = 2**z

    def tx(lon: float) -> int:
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def ty(lat: float) -> int:
        lat = max(min(lat, 85.0511), -85.0511)
        r = math.radians(lat)
        return min(
            n - 1, max(0, int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n))
        )

    return range(tx(minx), tx(maxx) + 1), range(ty(maxy), ty(miny) + 1)


def build_static_site(
    session: Session,
    out: Path,
    *,
    licence: str,
    min_zoom: int = 10,
    max_zoom: int = 16,
    basemap: str | None = "osm",
    progress: Callable[[str, int, int], None] | None = None,
    archive_max_zoom: int | None = 16,
) -> dict[str, int]:
    """Write the public map as a static site in ``out``: pages, GeoJSON per layer, MVT tiles, scripts.

    Every URL in the pages is relative, so any web server (or a USB stick behind one) can serve it.
    Tiles are written for the public layers' extent from ``min_zoom`` to ``max_zoom`` (the browser
    over-zooms beyond); an empty tile is an empty file, so no request fails.
    The map's layers are also written as one PMTiles archive (``public.pmtiles``, zoom 0 to
    ``archive_max_zoom``; None: none) with pages that read it (``pmtiles.html``, ``pmtiles.en.html``).
    """
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _what, _done, _total: None)
    counts: dict[str, int] = {}

    data = out / "data"
    data.mkdir(exist_ok=True)
    for i, cid in enumerate(COLLECTIONS):
        with (data / f"{cid}.geojson").open("wb") as f:  # streamed: a layer may hold 100,000 parcels
            counts[f"data/{cid}.geojson"] = export.write_geojson(
                session, f, collection=COLLECTIONS[cid], licence=licence)
        say("data", i + 1, len(COLLECTIONS))

    written: dict[str, str] = {}
    for x in (layer for p in partners.map_partners(session) for layer in p.layers):
        body, _ = partners.layer_geojson(session, partner_id=x.partner_id, collection_id=x.collection_id)
        name = f"data/partners/{x.partner_id}-{len(written) + 1}.geojson"
        (out / "data" / "partners").mkdir(exist_ok=True)
        (out / name).write_bytes(body)
        written[f"{x.partner_id}/{x.collection_id}"] = name
        counts[name] = len(body)

    bounds = public_bounds(session)
    tiles_written = 0
    land = COLLECTIONS["restored_land"]
    land_box = service.extent(session, collection=land).get("spatial", {}).get("bbox", [None])[0]
    if land_box is not None:
        # Every tile of a zoom from one statement (maps.archive), the served tiles' rules.
        plan = [(z, tile_range(land_box, z)) for z in range(min_zoom, max_zoom + 1)]
        total = sum(len(xs) * len(ys) for _, (xs, ys) in plan)
        service.no_jit(session)
        tiles = LayerTiles(session, land)
        try:
            for z, (xs, ys) in plan:
                for x in xs:
                    (out / "tiles" / land.id / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
                made = set()
                for x, y, body in tiles.zoom(z, xs, ys):  # each tile written as it comes
                    (out / "tiles" / land.id / str(z) / str(x) / f"{y}.mvt").write_bytes(body)
                    made.add((x, y))
                for x in xs:
                    for y in ys:  # an empty tile is an empty file: no request fails
                        if (x, y) not in made:
                            (out / "tiles" / land.id / str(z) / str(x) / f"{y}.mvt").write_bytes(b"")
                tiles_written += len(xs) * len(ys)
                say("tiles", tiles_written, total)
        finally:
            tiles.drop()
    counts["tiles"] = tiles_written

    if archive_max_zoom is not None and bounds is not None:
        made = write_pmtiles(session, out / ARCHIVE_NAME, layers=MAP_LAYERS, bounds=bounds,
                             max_zoom=archive_max_zoom, attribution=licence, progress=say)
        counts[ARCHIVE_NAME] = made["bytes"]
        counts["archive_tiles"] = made["tiles"]

    # The pages last (see the import of maps.public above).
    from maps.public import LANGS, VENDOR_DIR, Sources, build_public_map, render

    if (out / "vendor").exists():
        shutil.rmtree(out / "vendor")
    shutil.copytree(VENDOR_DIR, out / "vendor")
    static_partners = partner_sources(session, lambda x: written[f"{x.partner_id}/{x.collection_id}"])
    if ARCHIVE_NAME in counts:
        for lang in LANGS:
            other = "en" if lang == "fr" else "fr"
            sources = Sources(
                restored_land_tiles="",
                pmtiles=ARCHIVE_NAME,
                gardens_geojson="data/gardens.geojson",
                tools_and_places_geojson="data/tools_and_places.geojson",
                assets="vendor",
                other_lang_href=archive_page_name(other),
                open_data_href="data/",
                max_native_zoom=archive_max_zoom,
                partners=static_partners,
            )
            page = render(build_public_map(sources, lang=lang, bounds=bounds, basemap=basemap), lang=lang)
            (out / archive_page_name(lang)).write_text(page, encoding="utf-8")
            counts[archive_page_name(lang)] = len(page)

    for lang in LANGS:
        other = "en" if lang == "fr" else "fr"
        sources = Sources(
            restored_land_tiles="tiles/restored_land/{z}/{x}/{y}.mvt",
            gardens_geojson="data/gardens.geojson",
            tools_and_places_geojson="data/tools_and_places.geojson",
            assets="vendor",
            other_lang_href=page_name(other),
            open_data_href="data/",
            max_native_zoom=max_zoom,
            min_tile_zoom=min_zoom,
            tile_bounds=land_box,
            partners=static_partners,
        )
        page = render(
            build_public_map(sources, lang=lang, bounds=bounds, basemap=basemap), lang=lang
        )
        (out / page_name(lang)).write_text(page, encoding="utf-8")
        counts[page_name(lang)] = len(page)
    today = datetime.now(UTC).date().isoformat()
    (data / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Données ouvertes / Open data</title>"
        f"<p>Licence : {licence} — {today}</p><ul>"
        + "".join(
            f'<li><a href="{cid}.geojson">{COLLECTIONS[cid].title_fr} / {COLLECTIONS[cid].title_en}</a></li>'
            for cid in COLLECTIONS
        )
        + "</ul>",
        encoding="utf-8",
    )
    (out / "LICENCE.txt").write_text(
        f"Data: {licence}, extracted {today} from commons-map (public layers only).\n"
        "Scripts in vendor/: Leaflet (BSD-2-Clause), Leaflet.markercluster (MIT),"
        " Leaflet.VectorGrid (Beerware), pmtiles (BSD-3-Clause); see each LICENSE file.\n",
        encoding="utf-8",
    )
    return counts


def archive_page_name(lang: str) -> str:
    """The page reading the PMTiles archive: pmtiles.html in French, pmtiles.en.html in English."""
    return "pmtiles.html" if lang == "fr" else f"pmtiles.{lang}.html"


def page_name(lang: str) -> str:
    """The static page of a language: index.html in French, index.en.html in English."""
    return "index.html" if lang == "fr" else f"index.{lang}.html"
