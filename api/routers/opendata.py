"""Downloads of the public layers: /opendata (index) and /opendata/{collection}.{geojson,gpkg,csv}."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import PublicReadSession, SettingsDep
from api.routers.ogc import (
    base_url,
    check_params,
    cors_preflight,
    dumps,
    guard,
    html_page,
    licence_url,
    respond,
    wants_html,
)
from commons_map.errors import NotFound
from commons_map.publish import export
from commons_map.publish.collections import COLLECTIONS, get_collection

router = APIRouter(prefix="/opendata", tags=["opendata"])


@router.api_route("", methods=["GET", "HEAD"], summary="Open data downloads")
@guard
def index(request: Request, settings: SettingsDep) -> Response:
    """Every public layer, in every format, with its licence and today's date."""
    check_params(request, {"f"})
    root = base_url(request)
    today = datetime.now(UTC).date().isoformat()
    doc = {
        "licence": settings.data_licence,
        "licence_url": licence_url(settings.data_licence),
        "date": today,
        "layers": [
            {
                "id": c.id,
                "title_fr": c.title_fr,
                "title_en": c.title_en,
                "downloads": {fmt: f"{root}/opendata/{c.id}.{fmt}" for fmt in export.FORMATS},
            }
            for c in COLLECTIONS.values()
        ],
    }
    if wants_html(request):
        rows = "".join(
            f"<tr><td>{html.escape(layer['title_fr'])}<br><small>{html.escape(layer['title_en'])}</small></td><td>"
            + " · ".join(
                f'<a href="{html.escape(u)}">{fmt}</a>' for fmt, u in layer["downloads"].items()
            )
            + "</td></tr>"
            for layer in doc["layers"]
        )
        body = (
            f'<p>Licence : <a href="{doc["licence_url"]}">{html.escape(doc["licence"])}</a> — {today}</p>'
            f"<table>{rows}</table>"
        )
        return respond(
            request,
            html_page("Données ouvertes / Open data", body, json_href="?f=json"),
            "text/html",
        )
    return respond(request, dumps(doc), "application/json")


@router.api_route("/{name}", methods=["GET", "HEAD"], summary="Download one public layer")
@guard
def download(name: str, request: Request, session: PublicReadSession, settings: SettingsDep) -> Response:
    """One layer as GeoJSON, GeoPackage or CSV; licence in a Link header and in the file."""
    check_params(request, set())
    stem, _, fmt = name.rpartition(".")
    if fmt not in export.FORMATS:
        raise NotFound("publish.format_not_offered", field="format", format=fmt, formats=list(export.FORMATS))
    c = get_collection(stem)
    body = export.export(session, collection=c, fmt=fmt, licence=settings.data_licence)
    today = datetime.now(UTC).date().isoformat()
    headers = {
        "Content-Disposition": f'attachment; filename="{c.id}-{today}.{fmt}"',
        "Link": f'<{licence_url(settings.data_licence)}>; rel="license"; title="{settings.data_licence}"',
        "X-Data-Licence": settings.data_licence,
        "X-Data-Date": today,
    }
    return respond(
        request, body, export.FORMATS[fmt], headers=headers, cache_control="public, max-age=300"
    )


@router.options("/{path:path}", include_in_schema=False)
def preflight(path: str) -> Response:
    """CORS preflight."""
    return cors_preflight()
