"""The app's OpenAPI document, made honest about what each operation can answer.

FastAPI documents the success answer and a 422 in its own shape. Our errors are problem+json
(``api/errors.py``), some answers are not JSON at all (tiles, XML, HTML, CSV, PNG, iCalendar) and
some request bodies are read by hand (multipart uploads). This module rewrites the generated
document once, so that clients (and schemathesis, tests/api/test_fuzz.py) read what the server
really does:

- every operation lists the problem+json errors it can produce, decided from what it depends on:
  a database session (404, 409 for writes, 503 while the database is away), the signed-in member
  (401, 403), parameters or a body (422), and the few special cases in ``EXTRA_STATUSES``;
- the non-JSON operations list their real media types (``MEDIA``);
- the hand-read multipart bodies are described (``BODIES``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.deps import get_session, optional_member
from api.errors import TITLES

PROBLEM = "application/problem+json"
XML = "text/xml"
HTML = "text/html"
JSON = "application/json"
GEOJSON = "application/geo+json"
CSV = "text/csv"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error (RFC 9457 problem details); `errors` names the fields at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": ["string", "null"]}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

# Operations whose answers are not (only) JSON: their media types by status ("2xx" = the success
# statuses the route declares). OpenRosa answers its errors in its own XML envelope too.
OGC_DOC = {"2xx": [JSON, HTML]}
MEDIA: dict[str, dict[str, list[str]]] = {
    "/api/v1/soil/parcels/{commons_id}/timeline": {"2xx": [JSON, CSV]},
    "/api/v1/soil/report": {"2xx": [JSON, CSV]},
    "/api/v1/soil/report.html": {"2xx": [HTML]},
    "/api/v1/soil/charts/{name}.png": {"2xx": ["image/png"]},
    "/api/v1/ledger/statement": {"2xx": [JSON, CSV]},
    "/api/v1/resources/{resource_id}/calendar.ics": {"2xx": ["text/calendar"]},
    "/api/v1/calendars/{token}.ics": {"2xx": ["text/calendar"]},
    "/ogc/": OGC_DOC,
    "/ogc/conformance": OGC_DOC,
    "/ogc/collections": OGC_DOC,
    "/ogc/collections/{collection_id}": OGC_DOC,
    "/ogc/collections/{collection_id}/queryables": {"2xx": ["application/schema+json", HTML]},
    "/ogc/collections/{collection_id}/items": {"2xx": [GEOJSON, HTML]},
    "/ogc/collections/{collection_id}/items/{feature_id}": {"2xx": [GEOJSON, HTML]},
    "/ogc/api": {"2xx": ["application/vnd.oai.openapi+json;version=3.0", HTML]},
    "/tiles/{collection_id}/{z}/{x}/{y}.mvt": {"2xx": ["application/vnd.mapbox-vector-tile"]},
    "/opendata": OGC_DOC,
    "/opendata/{name}": {"2xx": [GEOJSON, "application/geopackage+sqlite3", CSV]},
    "/maps/public": {"2xx": [HTML]},
    "/maps/partners/{partner_id}/{collection}.geojson": {"2xx": [GEOJSON]},
    "/openrosa/formList": {"2xx": [XML], "errors": [XML]},
    "/openrosa/key/{token}/formList": {"2xx": [XML], "errors": [XML]},
    "/openrosa/forms/{filename}": {"2xx": [XML], "errors": [XML]},
    "/openrosa/key/{token}/forms/{filename}": {"2xx": [XML], "errors": [XML]},
    "/openrosa/submission": {"2xx": [XML], "errors": [XML]},
    "/openrosa/key/{token}/submission": {"2xx": [XML], "errors": [XML]},
    # A form's media: its manifest (XML) and its choice lists as CSV.
    "/openrosa/forms/{form_id}/manifest": {"2xx": [XML], "errors": [XML]},
    "/openrosa/key/{token}/forms/{form_id}/manifest": {"2xx": [XML], "errors": [XML]},
    "/openrosa/forms/{form_id}/media/{filename}": {"2xx": [CSV], "errors": [XML]},
    "/openrosa/key/{token}/forms/{form_id}/media/{filename}": {"2xx": [CSV], "errors": [XML]},
    # A photo (or sound, video) sent with a field form, as it came.
    "/api/v1/attachments/{kind}/{record_id}/{name}": {"2xx": [
        "image/jpeg", "image/png", "image/webp", "image/heic", "image/gif", "audio/mp4", "audio/mpeg", "audio/ogg",
        "audio/wav", "video/mp4", "video/webm", "video/3gpp", "application/octet-stream"]},
}

# Statuses an operation answers beyond the rules in `error_statuses`, with why.
PUBLIC_LAYER = {"400": "Invalid parameter", "404": "No such collection or feature",
                "304": "Not modified (If-None-Match)"}
OPENROSA = {"401": "Sign in: HTTP Basic, or a field token in the path", "403": "Not allowed",
            "404": "No such form"}
EXTRA_STATUSES: dict[str, dict[str, str]] = {
    # The public layers refuse unknown or invalid query parameters with 400 (OGC API rule),
    # answer 404 for an unknown collection or feature, 304 to a matching If-None-Match.
    **{p: dict(PUBLIC_LAYER) for p in MEDIA if p.startswith(("/ogc", "/tiles", "/opendata", "/maps"))},
    "/tiles/{collection_id}/tilejson.json": dict(PUBLIC_LAYER),
    "/tiles/{collection_id}/{z}/{x}/{y}.mvt": {**PUBLIC_LAYER, "204": "Nothing public in this tile"},
    "/api/v1/auth/token": {"401": "Unknown username or wrong password",
                           "429": "Too many failed sign-ins; wait (Retry-After)"},
    # OpenRosa signs in with HTTP Basic or a field token in the path (not the bearer token).
    **{p: dict(OPENROSA) for p in MEDIA if p.startswith("/openrosa")},
    "/openrosa/submission": {**OPENROSA, "413": "Too large"},
    "/openrosa/key/{token}/submission": {**OPENROSA, "413": "Too large"},
    "/openrosa/submission#head": {"204": "An OpenRosa server; X-OpenRosa-Accept-Content-Length says how much"},
    "/openrosa/key/{token}/submission#head": {"204": "An OpenRosa server (field token)"},
    "/api/v1/ingest/commons": {"413": "Too large", "201": "Commons written"},
}

MULTIPART_INGEST = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "map": {"type": "string", "description": 'JSON object target->column, e.g. {"name": "NOM"}'},
        "kind": {"type": "string"},
        "crs": {"type": "string"},
        "layer": {"type": "string"},
        "dry_run": {"type": "string", "enum": ["true", "false"]},
        "skip_rejected": {"type": "string", "enum": ["true", "false"]},
        "make_valid": {"type": "string", "enum": ["true", "false"]},
        "id_prefix": {"type": "string"},
    },
}
MULTIPART_SUBMISSION = {
    "type": "object",
    "required": ["xml_submission_file"],
    "properties": {
        "xml_submission_file": {"type": "string", "format": "binary"},
        "*isIncomplete*": {"type": "string", "enum": ["yes", "no"]},
    },
}
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/ingest/commons": MULTIPART_INGEST,
    "/openrosa/submission": MULTIPART_SUBMISSION,
    "/openrosa/key/{token}/submission": MULTIPART_SUBMISSION,
}


def _calls(route: APIRoute) -> set[Callable[..., Any]]:
    """Every dependency callable of a route, however deep."""
    seen: set[Callable[..., Any]] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            seen.add(dep.call)
        stack.extend(dep.dependencies)
    return seen


def _api_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            yield ctx.path or route.path, method.lower(), route


def error_statuses(route: APIRoute, method: str, op: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it depends on."""
    calls = _calls(route)
    uses_db = get_session in calls
    out: set[int] = set()
    if uses_db:
        out |= {404, 503}
        if method not in ("get", "head"):
            out.add(409)
    if optional_member in calls:
        # A bad or revoked token is a 401; a known member who may not do this, a 403.
        out |= {401, 403}
    if op.get("parameters") or op.get("requestBody") or uses_db:
        out.add(422)
    if op.get("requestBody"):
        out.add(400)  # a body that cannot be parsed at all (bad JSON, bad encoding)
    return out


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``, with the errors, media types and bodies described."""
    with warnings.catch_warnings():
        # GET+HEAD routes share an operation id; made unique below.
        warnings.filterwarnings("ignore", message="Duplicate Operation ID")
        doc = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
    seen_ids: set[str] = set()
    for path_item in doc.get("paths", {}).values():
        for method, op in path_item.items():
            op_id = op.get("operationId")
            if op_id in seen_ids:
                op["operationId"] = op_id = f"{op_id}_{method}"
            seen_ids.add(op_id)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, method, route in _api_routes(app):
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            continue
        if path in BODIES and method == "post":
            op["requestBody"] = {"required": True,
                                 "content": {"multipart/form-data": {"schema": BODIES[path]}}}
        responses: dict[str, Any] = op.setdefault("responses", {})
        media = MEDIA.get(path, {})
        extra = {**EXTRA_STATUSES.get(path, {}), **EXTRA_STATUSES.get(f"{path}#{method}", {})}
        success = [s for s in responses if s.startswith("2")]
        for s, why in extra.items():
            if s.startswith(("2", "3")) and s not in responses:
                responses[s] = {"description": why}
                if s != "204" and s != "304":
                    success.append(s)
        if "2xx" in media:
            for s in success:
                if s == "204":
                    continue
                known = responses[s].get("content", {})
                responses[s]["content"] = {t: known.get(t, {}) for t in media["2xx"]}
        for s in [s for s in responses if s.startswith("3") or s == "204"]:
            responses[s].pop("content", None)
        statuses = error_statuses(route, method, op) | {int(s) for s in extra if s[0] in "45"}
        error_types = [PROBLEM] + media.get("errors", [])
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": extra.get(str(status), TITLES.get(status, "Error")),
                "content": {t: {"schema": problem_ref} if t == PROBLEM else {} for t in error_types},
            }
    return doc


def install(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
