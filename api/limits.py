"""Request bodies are bounded before anything parses them (413), on every route.

A pure ASGI middleware: a declared ``Content-Length`` over the bound is refused at once, without
reading the body; a body sent without one (chunked) is counted as it streams in and refused as
soon as it passes the bound, so a 100 MB JSON document never reaches the JSON parser nor the
memory. File uploads (OpenRosa submissions, geodata imports) are left to their routes, which bound
them by ``ingest.safety.LIMITS`` as they read them and answer in their own format (an OpenRosa
envelope is what Collect reads).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, too_large
from commons_map.errors import ValidationFailed
from commons_map.messages import negotiate

# Path prefixes whose routes take files and bound them themselves (api.routers.openrosa.read_multipart).
UPLOADS = ("/openrosa/", "/api/v1/ingest/")


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with a 413 problem+json (uploads aside)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(UPLOADS):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit, headers)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # an HTTPException: FastAPI's body parsing lets it through to errors._http
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int, headers: dict[str, str]) -> None:
        response = too_large(limit, negotiate(headers.get("accept-language"), default="en"))
        await response(scope, receive, send)


# --- NUL characters ------------------------------------------------------------------------------
# PostgreSQL text cannot hold U+0000: psycopg refuses it with a ValueError deep in a query (a 500
# that names nothing). It is refused on the way in instead, naming the parameter or the field.


def _nul_path(value: object, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL in a decoded JSON document."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if "\x00" in str(k):
                return where
            found = _nul_path(v, where)
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_path(v, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


async def refuse_nul_characters(request: Request) -> None:
    """A 422 ``input.nul_character`` naming the path parameter, query parameter or JSON field that
    holds a NUL character (every route: an app-wide dependency)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise ValidationFailed("input.nul_character", field=name)
    # The OGC API answers 400 to a bad parameter, as its standard says (api.routers.ogc.check_params).
    standard = request.url.path.startswith(("/ogc", "/tiles"))
    for name, value in request.query_params.multi_items():
        if not standard and ("\x00" in name or "\x00" in value):
            raise ValidationFailed("input.nul_character", field=name.replace("\x00", "\\0"))
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        body = await request.body()
        if b"\\u0000" in body:  # JSON writes U+0000 only as this escape
            try:
                where = _nul_path(json.loads(body))
            except ValueError:
                return  # not JSON: the route's own validation says so
            if where:
                raise ValidationFailed("input.nul_character", field=where)
