"""Request bodies are bounded before anything parses them (413), on every route.

A pure ASGI middleware: a declared ``Content-Length`` over the bound is refused at once, without
reading the body; a body sent without one (chunked) is counted as it streams in and refused as
soon as it passes the bound, so a 100 MB JSON document never reaches the JSON parser nor the
memory. File uploads (OpenRosa submissions, geodata imports) have their own, larger bounds
(``ingest.safety.LIMITS``), which their routes still check part by part.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, too_large
from commons_map.messages import negotiate
from ingest.safety import LIMITS

# Path prefixes whose routes take files, and their bound.
UPLOADS = (("/openrosa/", LIMITS.submission_bytes), ("/api/v1/ingest/", LIMITS.upload_bytes))


class BodyLimit:
    """Refuse request bodies larger than the bound of their route with a 413 problem+json."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def bound(self, path: str) -> int:
        """The largest body accepted on ``path``."""
        for prefix, limit in UPLOADS:
            if path.startswith(prefix):
                return max(limit, self.max_bytes)
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.bound(scope.get("path", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit, headers)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # FastAPI lets an HTTPException through its body parsing: errors._http answers
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit, headers)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int, headers: dict[str, str]) -> None:
        response = too_large(limit, negotiate(headers.get("accept-language"), default="en"))
        await response(scope, receive, send)
