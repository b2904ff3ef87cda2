"""GET /maps/public: the public map (HTML), and the map's own scripts under /maps/static."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from api.deps import PublicReadSession
from api.routers.ogc import BadRequest, check_params, guard, respond, single
from commons_map.errors import NotFound
from commons_map.publish.parcel import parcel_story
from maps.parcel_page import parcel_page
from maps.public import STATIC_DIR, pick_lang
from maps.site import server_page

router = APIRouter(prefix="/maps", tags=["maps"])


def _html(request: Request, page: str, lang: str) -> Response:
    """A public page in ``lang``, cached a minute by anyone."""
    return respond(
        request,
        page.encode("utf-8"),
        "text/html; charset=utf-8",
        headers={"Content-Language": lang, "Vary": "Accept-Language, Accept-Encoding"},
        cache_control="public, max-age=60",
    )


@router.api_route("/public", methods=["GET", "HEAD"], summary="The public map")
@guard
def public_map(request: Request, session: PublicReadSession) -> Response:
    """Restored land by soil status, gardens, tools and places; ``?lang=fr|en``, ``?basemap=osm|none``."""
    check_params(request, {"lang", "basemap"})
    lang = single(request, "lang")
    if lang is not None and lang not in ("fr", "en"):
        raise BadRequest("publish.lang_not_offered", field="lang", given=lang)
    basemap = single(request, "basemap") or "osm"
    if basemap not in ("osm", "none"):
        raise BadRequest("publish.basemap_not_offered", field="basemap", given=basemap)
    lang = pick_lang(lang, request.headers.get("accept-language"))
    page = server_page(
        session,
        lang=lang,
        root=str(request.base_url).rstrip("/"),
        basemap=None if basemap == "none" else basemap,
    )
    return _html(request, page, lang)


@router.api_route("/parcels/{commons_id}", methods=["GET", "HEAD"], summary="A public parcel's page")
@guard
def parcel(commons_id: str, request: Request, session: PublicReadSession) -> Response:
    """A public parcel's permalink: its status, soil carbon and harvests by year; ``?lang=fr|en``."""
    check_params(request, {"lang"})
    lang = single(request, "lang")
    if lang is not None and lang not in ("fr", "en"):
        raise BadRequest("publish.lang_not_offered", field="lang", given=lang)
    if not commons_id.isdigit() or len(commons_id) > 18:
        raise NotFound("parcelpage.not_public", field="commons_id", commons_id=commons_id[:40])
    story = parcel_story(session, commons_id=int(commons_id))
    lang = pick_lang(lang, request.headers.get("accept-language"))
    page = parcel_page(story, lang=lang, root=str(request.base_url).rstrip("/"))
    return _html(request, page, lang)


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str) -> FileResponse:
    """The map's vendored scripts, styles and images."""
    root = STATIC_DIR.resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise NotFound("publish.no_file", field="path", path=path)
    return FileResponse(target, headers={"Cache-Control": "public, max-age=86400"})


__all__ = ["router", "Path"]
