"""Mapbox Vector Tiles of the public layers (/tiles/{collection}/{z}/{x}/{y}.mvt) and TileJSON."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import PublicReadSession, SettingsDep
from api.routers.ogc import (
    base_url,
    check_params,
    cors_headers,
    cors_preflight,
    dumps,
    etag_matches,
    etag_of,
    guard,
    respond,
)
from commons_map.errors import NotFound
from commons_map.publish import service
from commons_map.publish.collections import get_collection
from commons_map.publish.tilecache import TileEntry

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
TILE_CACHE = "public, max-age=300"


def _int(raw: str, name: str) -> int:
    if not re.fullmatch(r"\d{1,9}", raw):
        raise NotFound("publish.tile_number", field=name, name=name, given=raw)
    return int(raw)


@router.api_route(
    "/{collection_id}/{z}/{x}/{y}.mvt", methods=["GET", "HEAD"], summary="A vector tile"
)
@guard
def tile(
    collection_id: str, z: str, x: str, y: str, request: Request, session: PublicReadSession
) -> Response:
    """One Mapbox Vector Tile (WebMercatorQuad); 204 when nothing public is in it."""
    c = get_collection(collection_id)
    check_params(request, set())
    entry = service.tile_entry(
        session, collection=c, z=_int(z, "z"), x=_int(x, "x"), y=_int(y, "y")
    )
    return tile_response(entry, request.method, request.headers)


def tile_response(entry: TileEntry, method: str, headers_in: Mapping[str, str]) -> Response:
    """The response for a tile (this route's, and ``api.fast_tiles``'s): 204 when empty, gzip
    when the client takes it, an ETag per form and 304 when the client holds it, HEAD's length."""
    headers = {**cors_headers(), "Cache-Control": TILE_CACHE, "Vary": "Accept-Encoding"}
    inm = headers_in.get("if-none-match")
    if not entry.data:
        headers["ETag"] = etag_of(b"")
        if etag_matches(inm, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(status_code=204, headers=headers)
    if "gzip" in headers_in.get("accept-encoding", "").lower():
        data = entry.gzipped()  # made once per cached tile
        headers["Content-Encoding"] = "gzip"
        headers["ETag"] = entry.etag(gz=True)
    else:
        data = entry.data
        headers["ETag"] = entry.etag(gz=False)
    if etag_matches(inm, headers["ETag"]):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    if method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(content=b"", media_type=MVT, headers=headers)
    return Response(content=data, media_type=MVT, headers=headers)


@router.api_route("/{collection_id}/tilejson.json", methods=["GET", "HEAD"], summary="TileJSON")
@guard
def tilejson(
    collection_id: str, request: Request, session: PublicReadSession, settings: SettingsDep
) -> Response:
    """The TileJSON 3.0.0 document of a collection's tiles."""
    c = get_collection(collection_id)
    check_params(request, set())
    doc = tilejson_document(
        c, base_url(request) + "/tiles", session=session, licence=settings.data_licence
    )
    return respond(request, dumps(doc), "application/json")


def tilejson_document(c, tiles_root: str, *, session, licence: str, suffix: str = ".mvt") -> dict:  # noqa: ANN001
    """TileJSON for collection ``c`` whose tiles live under ``tiles_root`` (absolute or relative)."""
    ext = (
        service.extent(session, collection=c)
        .get("spatial", {})
        .get("bbox", [[-180, -85.05, 180, 85.05]])[0]
    )
    fields = {}
    for name in c.tile_props:
        q = c.queryable(name)
        fields[name] = "Number" if q and q.type in ("integer", "number") else "String"
    return {
        "tilejson": "3.0.0",
        "name": c.title_en,
        "description": c.description_en,
        "attribution": f"commons-map, {licence}",
        "scheme": "xyz",
        "tiles": [f"{tiles_root}/{c.id}/{{z}}/{{x}}/{{y}}{suffix}"],
        "minzoom": 0,
        "maxzoom": service.MAX_ZOOM,
        "bounds": ext,
        "center": [round((ext[0] + ext[2]) / 2, 6), round((ext[1] + ext[3]) / 2, 6), 13],
        "vector_layers": [{"id": c.id, "description": c.title_fr, "fields": fields}],
    }


@router.options("/{path:path}", include_in_schema=False)
def preflight(path: str) -> Response:
    """CORS preflight."""
    return cors_preflight()
