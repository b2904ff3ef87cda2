"""Request bodies are bounded before anything parses them (413), on every route.

A pure ASGI middleware: a declared ``Content-Length`` over the bound is refused at once, without
reading the body; a body sent without one (chunked) is counted as it streams in and refused as
soon as it passes the bound, so a 100 MB JSON document never reaches the JSON parser nor the
memory. File uploads (OpenRosa submissions, geodata imports) are left to their routes, which bound
them by ``ingest.safety.LIMITS`` as they read them and answer in their own format (an OpenRosa
envelope is what Collect reads).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, too_large
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
