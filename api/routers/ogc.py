"""OGC API - Features (Parts 1, 2 and 3) over the public layers, at /ogc.

Thin: parameters are parsed and checked here (unknown or invalid ones answer 400 as the standard
says), the public rows, the SQL and the GeoJSON come from ``commons_map.publish``. Every answer
has an ETag (304 on a match), CORS headers and works with HEAD.
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import PublicReadSession, SettingsDep
from api.errors import problem, request_locale
from commons_map.errors import NotFound, ValidationFailed
from commons_map.publish import service
from commons_map.publish.collections import COLLECTIONS, Collection, get_collection
from commons_map.publish.crs import CRS84, STORAGE, SUPPORTED, parse_crs
from commons_map.publish.tilecache import etag_of

router = APIRouter(prefix="/ogc", tags=["ogc"])

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA = "application/schema+json"
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"

# Declared only because each is implemented and tested (tests/api/test_ogc*.py).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]

FILTER_LANGS = ("cql2-text", "cql-text")  # cql-text: the draft name GDAL sends
COMMON_PARAMS = {"f"}
ITEMS_PARAMS = {
    "f",
    "limit",
    "cursor",
    "bbox",
    "bbox-crs",
    "datetime",
    "crs",
    "filter",
    "filter-lang",
    "filter-crs",
}
CACHE_CONTROL = "public, max-age=60"


# --- HTTP helpers shared by the public routers ---------------------------------------------------


class BadRequest(ValidationFailed):
    """A parameter the standard says must be refused with 400: a ``publish.*`` code and its parameters."""


def cors_headers() -> dict[str, str]:
    """Anyone may read the public layers from any origin."""
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "ETag, Content-Crs, Link, Content-Disposition",
    }


def not_modified(request: Request, etag: str) -> bool:
    """True when the client's If-None-Match holds this ETag (weak comparison, as RFC 9110 says)."""
    return etag_matches(request.headers.get("if-none-match"), etag)


def etag_matches(inm: str | None, etag: str) -> bool:
    """True when an If-None-Match header value holds this ETag (weak comparison)."""
    if not inm:
        return False
    if inm.strip() == "*":
        return True
    tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
    return etag.removeprefix("W/") in tags


def accepts_gzip(request: Request) -> bool:
    """True when the client takes gzip."""
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def respond(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    headers: dict[str, str] | None = None,
    cache_control: str = CACHE_CONTROL,
    compress_over: int = 16_384,
    etag_basis: bytes | None = None,
) -> Response:
    """The answer with ETag, 304, HEAD, CORS, Cache-Control and gzip for large bodies.

    ``etag_basis``: for a body that holds the time it was made (an items page's ``timeStamp``),
    the same body without it. The ETag is then weak (RFC 9110, 8.8.1: the same features and links,
    the same validator), so a client's ``If-None-Match`` still matches a second later.
    """
    hdrs = {**cors_headers(), "Cache-Control": cache_control, "Vary": "Accept, Accept-Encoding"}
    if headers:
        hdrs.update(headers)
    suffix = ""
    if len(body) > compress_over and accepts_gzip(request):
        body = gzip.compress(body, compresslevel=1, mtime=0)  # the same bytes, the same ETag, every time
        hdrs["Content-Encoding"] = "gzip"
        suffix = "-gz"
    if etag_basis is None:
        hdrs["ETag"] = etag_of(body, suffix)
    else:
        hdrs["ETag"] = "W/" + etag_of(etag_basis, suffix)
    if not_modified(request, hdrs["ETag"]):
        hdrs.pop("Content-Encoding", None)
        return Response(status_code=304, headers=hdrs)
    if request.method == "HEAD":
        hdrs["Content-Length"] = str(len(body))
        return Response(content=b"", media_type=media_type, headers=hdrs)
    return Response(content=body, media_type=media_type, headers=hdrs)


def _ogc_problem(status: int, kind: str, exc: ValidationFailed | NotFound, locale: str) -> Response:
    body = exc.as_dict(locale)
    resp = problem(status, body["detail"], errors=body["errors"] or None, code=exc.code, kind=kind,
                   **({"params": body["params"]} if body["params"] else {}))
    resp.headers.update(cors_headers())
    return resp


def bad_request(exc: BadRequest | ValidationFailed, locale: str = "en") -> Response:
    """400 as problem+json, naming the parameter: the message code, and its text in ``locale``."""
    return _ogc_problem(400, "invalid_parameter", exc, locale)


def not_found(exc: NotFound, locale: str = "en") -> Response:
    """404 as problem+json, with the message code."""
    return _ogc_problem(404, "not_found", exc, locale)


def single(request: Request, name: str) -> str | None:
    """A query parameter given at most once (twice is a 400)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest("publish.given_twice", field=name, count=len(values))
    return values[0] if values else None


def check_params(request: Request, allowed: Iterable[str]) -> None:
    """Refuse unknown query parameters (400), naming them and the allowed ones."""
    allowed = set(allowed)
    unknown = sorted({k for k in request.query_params.keys() if k not in allowed})
    if unknown:
        raise BadRequest("publish.unknown_parameter", field=unknown[0], unknown=unknown, allowed=sorted(allowed))
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise BadRequest("input.nul_character", field=name)


def wants_html(request: Request) -> bool:
    """``f=html|json`` first, else the Accept header (JSON when both are equally welcome)."""
    f = single(request, "f")
    if f is not None:
        v = f.lower()
        if v in ("html", "text/html"):
            return True
        if v in ("json", "geojson", "application/json", "application/geo+json"):
            return False
        raise BadRequest("publish.unknown_format", field="f", given=f)
    best_html, best_json = 0.0, 0.0
    for part in request.headers.get("accept", "").split(","):
        bits = [b.strip() for b in part.split(";")]
        mt = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if mt in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif mt in ("application/json", "application/geo+json", "application/*") or mt.endswith(
            "+json"
        ):
            best_json = max(best_json, q)
    return best_html > best_json


def base_url(request: Request) -> str:
    """The public root URL of this server (no trailing slash)."""
    return str(request.base_url).rstrip("/")


def dumps(value: Any) -> bytes:
    """Compact JSON."""
    return orjson.dumps(value)


def html_page(title: str, body: str, *, json_href: str | None = None) -> bytes:
    """A small, readable HTML page (the html conformance class)."""
    alt = f'<p><a href="{html.escape(json_href)}">JSON</a></p>' if json_href else ""
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
        "code{background:#f4f4f4}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{alt}{body}</body></html>"
    ).encode()


def link_list(links: list[dict]) -> str:
    """Links as an HTML list."""
    items = "".join(
        f'<li><a href="{html.escape(ln["href"])}">{html.escape(ln.get("title") or ln["rel"])}</a>'
        f" <small>({html.escape(ln['rel'])}, {html.escape(ln['type'])})</small></li>"
        for ln in links
    )
    return f"<ul>{items}</ul>"


def _locale(args: tuple, kwargs: dict) -> str:
    """The language of the request a guarded endpoint was called with (English without one)."""
    request = kwargs.get("request") or next((a for a in args if isinstance(a, Request)), None)
    return request_locale(request) if request is not None else "en"


def guard(fn):  # noqa: ANN001, ANN201 - small decorator
    """Turn parameter problems into 400 and unknown things into 404."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return fn(*args, **kwargs)
        except (BadRequest, ValidationFailed) as exc:
            return bad_request(exc, _locale(args, kwargs))
        except NotFound as exc:
            return not_found(exc, _locale(args, kwargs))

    return wrapper


# --- documents -----------------------------------------------------------------------------------


def _collection_doc(request: Request, session: Any, c: Collection, settings: Any) -> dict:
    root = base_url(request)
    href = f"{root}/ogc/collections/{c.id}"
    links = [
        {"rel": "self", "type": JSON, "title": c.title_en, "href": href + "?f=json"},
        {"rel": "alternate", "type": HTML, "title": c.title_fr, "href": href + "?f=html"},
        {
            "rel": "items",
            "type": GEOJSON,
            "title": "Features (GeoJSON)",
            "href": href + "/items?f=json",
        },
        {"rel": "items", "type": HTML, "title": "Features (HTML)", "href": href + "/items?f=html"},
        {
            "rel": REL_QUERYABLES,
            "type": SCHEMA,
            "title": "Queryables",
            "href": href + "/queryables",
        },
        {
            "rel": "license",
            "type": HTML,
            "title": settings.data_licence,
            "href": licence_url(settings.data_licence),
        },
        {
            "rel": "enclosure",
            "type": "application/geopackage+sqlite3",
            "title": "GeoPackage",
            "href": f"{root}/opendata/{c.id}.gpkg",
        },
        {
            "rel": "enclosure",
            "type": GEOJSON,
            "title": "GeoJSON",
            "href": f"{root}/opendata/{c.id}.geojson",
        },
        {
            "rel": "enclosure",
            "type": "text/csv",
            "title": "CSV",
            "href": f"{root}/opendata/{c.id}.csv",
        },
        {
            "rel": "describedby",
            "type": "application/vnd.mapbox.tile+json",
            "title": "TileJSON (vector tiles)",
            "href": f"{root}/tiles/{c.id}/tilejson.json",
        },
    ]
    doc = {
        "id": c.id,
        "title": c.title_en,
        "description": c.description_en,
        "title_fr": c.title_fr,
        "description_fr": c.description_fr,
        "itemType": "feature",
        "links": links,
        "extent": service.extent(session, collection=c),
        "crs": list(SUPPORTED),
        "storageCrs": CRS84,
    }
    return doc


def licence_url(licence: str) -> str:
    """A page describing the licence (SPDX list for SPDX ids)."""
    if licence.upper().startswith("ODBL"):
        return "https://opendatacommons.org/licenses/odbl/1-0/"
    return f"https://spdx.org/licenses/{licence}.html"


def landing_links(root: str) -> list[dict]:
    """Links of the landing page."""
    return [
        {"rel": "self", "type": JSON, "title": "This document", "href": f"{root}/ogc?f=json"},
        {
            "rel": "alternate",
            "type": HTML,
            "title": "This document as HTML",
            "href": f"{root}/ogc?f=html",
        },
        {
            "rel": "service-desc",
            "type": OPENAPI,
            "title": "OpenAPI definition",
            "href": f"{root}/ogc/api",
        },
        {
            "rel": "service-doc",
            "type": HTML,
            "title": "API documentation",
            "href": f"{root}/ogc/api?f=html",
        },
        {
            "rel": "conformance",
            "type": JSON,
            "title": "Conformance classes",
            "href": f"{root}/ogc/conformance",
        },
        {
            "rel": REL_CONFORMANCE,
            "type": JSON,
            "title": "Conformance classes",
            "href": f"{root}/ogc/conformance",
        },
        {"rel": "data", "type": JSON, "title": "Collections", "href": f"{root}/ogc/collections"},
        {"rel": REL_DATA, "type": JSON, "title": "Collections", "href": f"{root}/ogc/collections"},
        {"rel": "alternate", "type": HTML, "title": "Public map", "href": f"{root}/maps/public"},
    ]


@router.api_route("", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/", methods=["GET", "HEAD"], summary="Landing page")
@guard
def landing(request: Request) -> Response:
    """The landing page: what this service is and where everything is."""
    check_params(request, COMMON_PARAMS)
    root = base_url(request)
    links = landing_links(root)
    doc = {
        "title": "commons-map: public layers of the cooperatives",
        "description": "Terres restaurées, jardins, outils et lieux partagés, en données ouvertes."
        " / Restored land, gardens, shared tools and places, as open data.",
        "links": links,
    }
    if wants_html(request):
        return respond(
            request,
            html_page(
                doc["title"],
                f"<p>{html.escape(doc['description'])}</p>" + link_list(links),
                json_href=f"{root}/ogc?f=json",
            ),
            HTML,
        )
    return respond(request, dumps(doc), JSON)


@router.api_route("/conformance", methods=["GET", "HEAD"], summary="Conformance classes")
@guard
def conformance(request: Request) -> Response:
    """The conformance classes this service implements (and its tests prove)."""
    check_params(request, COMMON_PARAMS)
    doc = {"conformsTo": CONFORMANCE}
    if wants_html(request):
        body = (
            "<ul>"
            + "".join(f"<li><code>{html.escape(c)}</code></li>" for c in CONFORMANCE)
            + "</ul>"
        )
        return respond(request, html_page("Conformance", body, json_href="?f=json"), HTML)
    return respond(request, dumps(doc), JSON)


@router.api_route("/collections", methods=["GET", "HEAD"], summary="Collections")
@guard
def collections(request: Request, session: PublicReadSession, settings: SettingsDep) -> Response:
    """The public collections."""
    check_params(request, COMMON_PARAMS)
    root = base_url(request)
    docs = [_collection_doc(request, session, c, settings) for c in COLLECTIONS.values()]
    doc = {
        "links": [
            {
                "rel": "self",
                "type": JSON,
                "title": "Collections",
                "href": f"{root}/ogc/collections?f=json",
            },
            {
                "rel": "alternate",
                "type": HTML,
                "title": "Collections (HTML)",
                "href": f"{root}/ogc/collections?f=html",
            },
        ],
        "collections": docs,
        "crs": list(SUPPORTED),
    }
    if wants_html(request):
        rows = "".join(
            f'<tr><td><a href="{root}/ogc/collections/{d["id"]}?f=html">{html.escape(d["title_fr"])}</a></td>'
            f"<td>{html.escape(d['title'])}</td><td>{html.escape(d['description_fr'])}</td></tr>"
            for d in docs
        )
        body = (
            f"<table><tr><th>Collection</th><th>English</th><th>Description</th></tr>{rows}</table>"
        )
        return respond(
            request,
            html_page("Collections", body, json_href=f"{root}/ogc/collections?f=json"),
            HTML,
        )
    return respond(request, dumps(doc), JSON)


@router.api_route("/collections/{collection_id}", methods=["GET", "HEAD"], summary="One collection")
@guard
def collection(
    collection_id: str, request: Request, session: PublicReadSession, settings: SettingsDep
) -> Response:
    """One public collection: its extent, CRSs and links."""
    c = get_collection(collection_id)
    check_params(request, COMMON_PARAMS)
    doc = _collection_doc(request, session, c, settings)
    if wants_html(request):
        body = (
            f"<p>{html.escape(c.description_fr)}</p><p>{html.escape(c.description_en)}</p>"
            + link_list(doc["links"])
        )
        return respond(request, html_page(c.title_fr, body, json_href="?f=json"), HTML)
    return respond(request, dumps(doc), JSON)


@router.api_route(
    "/collections/{collection_id}/queryables", methods=["GET", "HEAD"], summary="Queryables"
)
@guard
def queryables(collection_id: str, request: Request) -> Response:
    """The properties a filter may name, as JSON Schema."""
    c = get_collection(collection_id)
    check_params(request, COMMON_PARAMS)
    root = base_url(request)
    props: dict[str, Any] = {
        "geometry": {
            "format": "geometry-point" if c.as_points else "geometry-any",
            "title": "Geometry",
            "description": "Géométrie (publique)",
        },
    }
    for q in c.queryables:
        props[q.name] = q.json_schema()
    doc = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{root}/ogc/collections/{c.id}/queryables",
        "type": "object",
        "title": c.title_en,
        "properties": props,
        "additionalProperties": False,
    }
    if wants_html(request):
        rows = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(str(v.get('type') or v.get('format')))}</td>"
            f"<td>{html.escape(v.get('description', ''))}</td></tr>"
            for k, v in props.items()
        )
        return respond(
            request,
            html_page(f"Queryables: {c.title_fr}", f"<table>{rows}</table>", json_href="?f=json"),
            HTML,
        )
    return respond(request, dumps(doc), SCHEMA)


def parse_items_query(request: Request, c: Collection) -> service.ItemsQuery:
    """The items parameters, checked (400 for anything unknown or invalid)."""
    allowed = ITEMS_PARAMS | {q.name for q in c.queryables}
    check_params(request, allowed)
    lang = single(request, "filter-lang")
    if lang is not None and lang not in FILTER_LANGS:
        raise BadRequest("publish.filter_lang", field="filter-lang", given=lang)
    bbox_crs = parse_crs(single(request, "bbox-crs"), field="bbox-crs")
    raw_bbox = single(request, "bbox")
    if single(request, "bbox-crs") is not None and raw_bbox is None:
        raise BadRequest("publish.bbox_crs_alone", field="bbox-crs")
    filter_text = single(request, "filter")
    filter_crs = parse_crs(single(request, "filter-crs"), field="filter-crs")
    props = {}
    for q in c.queryables:
        v = single(request, q.name)
        if v is not None:
            props[q.name] = v
    return service.ItemsQuery(
        collection=c,
        limit=service.parse_limit(single(request, "limit")),
        cursor=service.parse_cursor(single(request, "cursor")),
        bbox=service.parse_bbox(raw_bbox, bbox_crs),
        datetime=service.parse_datetime(single(request, "datetime")),
        filter=filter_text,
        filter_crs=filter_crs,
        crs=parse_crs(single(request, "crs"), field="crs"),
        properties=props,
    )


def _self_query(request: Request, **override: str | None) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in override]
    pairs += [(k, v) for k, v in override.items() if v is not None]
    return urlencode(pairs)


def _features_links(
    request: Request, href: str, *, title: str, as_html: bool, root: str, collection: Collection
) -> list[dict]:
    """self and alternate (the same query in the other format) and the collection, of a page or a feature."""
    return [
        {
            "rel": "self",
            "type": HTML if as_html else GEOJSON,
            "title": title,
            "href": f"{href}?{_self_query(request)}",
        },
        {
            "rel": "alternate",
            "type": GEOJSON if as_html else HTML,
            "title": title,
            "href": f"{href}?{_self_query(request, f='json' if as_html else 'html')}",
        },
        {
            "rel": "collection",
            "type": JSON,
            "title": collection.title_en,
            "href": f"{root}/ogc/collections/{collection.id}",
        },
    ]


@router.api_route("/collections/{collection_id}/items", methods=["GET", "HEAD"], summary="Features")
@guard
def items(collection_id: str, request: Request, session: PublicReadSession) -> Response:
    """A page of public features: limit, bbox, datetime, crs, CQL2 filter; keyset paging."""
    c = get_collection(collection_id)
    query = parse_items_query(request, c)
    as_html = wants_html(request)
    page = service.items(session, query=query)
    root = base_url(request)
    href = f"{root}/ogc/collections/{c.id}/items"
    links = _features_links(request, href, title="This page", as_html=as_html, root=root, collection=c)
    if page.next_cursor is not None:
        links.append(
            {
                "rel": "next",
                "type": HTML if as_html else GEOJSON,
                "title": "Next page",
                "href": f"{href}?{_self_query(request, cursor=str(page.next_cursor))}",
            }
        )
    headers = {"Content-Crs": f"<{query.crs.uri}>"}
    if as_html:
        return respond(request, _items_html(c, page, links), HTML, headers=headers)
    counts: dict[str, Any] = {"numberReturned": len(page.features)}
    if page.number_matched is not None:
        counts["numberMatched"] = page.number_matched
    features = b'{"type":"FeatureCollection","features":[' + ",".join(page.features).encode() + b"],"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = features + dumps({"links": links, "timeStamp": now, **counts})[1:]
    basis = features + dumps({"links": links, **counts})[1:]  # the page without the time it was made
    return respond(request, body, GEOJSON, headers=headers, etag_basis=basis)


def _items_html(c: Collection, page: service.Page, links: list[dict]) -> bytes:
    feats = [orjson.loads(f) for f in page.features]
    names = [q.name for q in c.queryables if q.name not in ("id", "description")]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["id", *names])
    rows = "".join(
        f'<tr><td><a href="items/{f["id"]}?f=html">{f["id"]}</a></td>'
        + "".join(
            f"<td>{html.escape('' if f['properties'].get(n) is None else str(f['properties'].get(n)))}</td>"
            for n in names
        )
        + "</tr>"
        for f in feats
    )
    nav = link_list([ln for ln in links if ln["rel"] in ("next", "alternate", "collection")])
    return html_page(
        f"{c.title_fr} / {c.title_en}",
        f"<p>{len(feats)} objets</p>{nav}<table><tr>{head}</tr>{rows}</table>",
    )


@router.api_route(
    "/collections/{collection_id}/items/{feature_id}",
    methods=["GET", "HEAD"],
    summary="One feature",
)
@guard
def feature(collection_id: str, feature_id: str, request: Request, session: PublicReadSession) -> Response:
    """One public feature."""
    c = get_collection(collection_id)
    check_params(request, {"f", "crs"})
    crs = parse_crs(single(request, "crs"), field="crs")
    as_html = wants_html(request)
    text_ = service.item(session, collection=c, feature_id=feature_id, crs=crs)
    root = base_url(request)
    href = f"{root}/ogc/collections/{c.id}/items/{feature_id}"
    links = _features_links(request, href, title="This feature", as_html=as_html, root=root, collection=c)
    headers = {"Content-Crs": f"<{crs.uri}>"}
    doc = orjson.loads(text_)
    if as_html:
        props = doc["properties"]
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape('' if v is None else str(v))}</td></tr>"
            for k, v in props.items()
        )
        return respond(
            request,
            html_page(str(props.get("name")), f"<table>{rows}</table>" + link_list(links)),
            HTML,
            headers=headers,
        )
    doc["links"] = links
    return respond(request, dumps(doc), GEOJSON, headers=headers)


@router.api_route("/api", methods=["GET", "HEAD"], summary="OpenAPI definition of this OGC API")
@guard
def openapi(request: Request) -> Response:
    """The OpenAPI 3.0 document of /ogc (service-desc); HTML for people (service-doc)."""
    check_params(request, COMMON_PARAMS)
    doc = openapi_document(base_url(request))
    if wants_html(request):
        rows = "".join(
            f"<h2><code>{html.escape(path)}</code></h2><p>{html.escape(op['get']['summary'])}</p>"
            + "<ul>"
            + "".join(
                f"<li><code>{html.escape(p.get('name', p.get('$ref', '').rsplit('/', 1)[-1]))}</code></li>"
                for p in op["get"].get("parameters", [])
            )
            + "</ul>"
            for path, op in doc["paths"].items()
        )
        return respond(
            request, html_page("commons-map OGC API - Features", rows, json_href="?f=json"), HTML
        )
    return respond(request, dumps(doc), OPENAPI)


def _query(name: str, schema: dict, description: str, *, form: bool = False) -> dict:
    """A query parameter; ``form``: a comma-separated list or a value as it is (no explode)."""
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description,
                           "schema": schema}
    if form:
        out |= {"style": "form", "explode": False}
    return out


def _query_parameters() -> dict[str, dict]:
    """The query parameters of the OGC endpoints, with the limits and enums clients read."""
    crs = {"type": "string", "format": "uri", "enum": list(SUPPORTED)}
    limit = {"type": "integer", "minimum": 1, "maximum": service.MAX_LIMIT, "default": service.DEFAULT_LIMIT}
    bbox = {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}
    langs = {"type": "string", "enum": list(FILTER_LANGS), "default": "cql2-text"}
    return {q["name"]: q for q in (
        _query("f", {"type": "string", "enum": ["json", "html"]}, "The format of the answer."),
        _query("limit", limit, f"Features per page; values above {service.MAX_LIMIT} are clamped.", form=True),
        _query("bbox", bbox, "Bounding box (in bbox-crs, CRS84 by default).", form=True),
        _query("bbox-crs", crs, "CRS of bbox."),
        _query("crs", crs, "CRS of the answer."),
        _query("datetime", {"type": "string"}, "Instant or interval on updated_at (RFC 3339).", form=True),
        _query("filter", {"type": "string"}, "A CQL2 text filter on the queryables."),
        _query("filter-lang", langs, "Language of filter (cql-text is accepted as the draft name of cql2-text)."),
        _query("filter-crs", crs, "CRS of geometries in filter."),
        _query("cursor", {"type": "string"}, "Where the page starts (from a next link)."),
    )}


_ITEMS_QUERY = ("f", "limit", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs", "cursor")
# path, summary, its path parameters, its query parameters, the media type of a 200
_PATHS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("/", "Landing page", (), ("f",), JSON),
    ("/conformance", "Conformance classes", (), ("f",), JSON),
    ("/collections", "Collections", (), ("f",), JSON),
    ("/collections/{collectionId}", "One collection", ("collectionId",), ("f",), JSON),
    ("/collections/{collectionId}/queryables", "Queryables", ("collectionId",), ("f",), SCHEMA),
    ("/collections/{collectionId}/items", "Features", ("collectionId",), _ITEMS_QUERY, GEOJSON),
    ("/collections/{collectionId}/items/{featureId}", "One feature", ("collectionId", "featureId"), ("f", "crs"),
     GEOJSON),
)


def _path_parameter(name: str) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    if name == "collectionId":
        schema["enum"] = list(COLLECTIONS)
    return {"name": name, "in": "path", "required": True, "schema": schema}


def openapi_document(root: str) -> dict:
    """OpenAPI 3.0 for the OGC endpoints, with the limits and enums clients read (GDAL does)."""
    responses = {"400": {"description": "Invalid parameter"}, "404": {"description": "Not found"}}
    paths = {
        path: {"get": {
            "summary": summary,
            "parameters": [_path_parameter(n) for n in in_path]
            + [{"$ref": f"#/components/parameters/{n}"} for n in in_query],
            "responses": {"200": {"description": "OK", "content": {media: {}}}, **responses},
        }}
        for path, summary, in_path, in_query, media in _PATHS
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "commons-map OGC API - Features",
            "version": "1.0.0",
            "description": "Public layers of citizens' cooperatives: restored land, gardens, tools and places.",
        },
        "servers": [{"url": f"{root}/ogc"}],
        "paths": paths,
        "components": {"parameters": _query_parameters()},
    }


@router.options("/{path:path}", include_in_schema=False)
def preflight(path: str) -> Response:
    """CORS preflight: GET and HEAD from anywhere."""
    return cors_preflight()


def cors_preflight() -> Response:
    """The answer to a CORS preflight request."""
    return Response(
        status_code=204,
        headers={
            **cors_headers(),
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Accept, Accept-Encoding, If-None-Match, Content-Type",
            "Access-Control-Max-Age": "86400",
        },
    )


__all__ = [
    "router",
    "respond",
    "guard",
    "check_params",
    "single",
    "wants_html",
    "BadRequest",
    "STORAGE",
]
