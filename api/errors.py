"""One table from domain errors to HTTP statuses, answered as problem+json (RFC 9457)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from commons_map import errors as e
from commons_map.messages import negotiate, render
from commons_map.people.throttle import TooManyAttempts

log = logging.getLogger("commons_map.api")
NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # PostgreSQL's SQLSTATE for a number its type cannot hold

STATUS: dict[type[e.DomainError], int] = {
    e.ValidationFailed: 422,
    e.NotFound: 404,
    e.PermissionDenied: 403,
    e.AuthenticationFailed: 401,
    e.Conflict: 409,
    TooManyAttempts: 429,
}

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    500: "Internal error",
    503: "Service unavailable",
    422: "Unprocessable content",
    429: "Too many requests",
}


def problem(status: int, detail: str, *, errors: list[dict] | None = None, **extra: object) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, object] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 429 and "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_for(exc: e.DomainError) -> int:
    """The HTTP status of a domain error (its nearest known class)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def request_locale(request: Request) -> str:
    """The language of an API answer: Accept-Language when sent, else the member's setting, else English.

    English stays the default of the JSON API, so that scripts written against it keep reading
    the same words; the members' pages default to French (api/web.py).
    """
    header = request.headers.get("accept-language")
    if header and header.strip() != "*":
        return negotiate(header, default="en")
    return getattr(request.state, "member_locale", None) or "en"


async def _domain(request: Request, exc: e.DomainError) -> JSONResponse:
    status = status_for(exc)
    log.info("%s %s -> %s %s", request.method, request.url.path, status, exc.message)
    body = exc.as_dict(request_locale(request))
    params = body["params"]
    return problem(
        status,
        body["detail"],
        errors=body["errors"],
        code=exc.code,
        kind=exc.kind,
        **({"params": params} if params else {}),
        **exc.detail,
    )


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    locale = request_locale(request)
    problems = [e.input_problem(err, _loc(tuple(err.get("loc", ())))) for err in exc.errors()]
    if not problems:
        problems = [e.FieldProblem("body", "input.invalid")]
    errors = [p.as_dict(locale) for p in problems]
    detail = f"{errors[0]['field']}: {errors[0]['message']}"
    if len(errors) > 1:
        detail += " " + render("input.and_more", {"count": len(errors) - 1}, locale)
    return problem(422, detail, errors=errors, code=problems[0].code, kind="validation_failed")


class BodyTooLarge(StarletteHTTPException):
    """A request body grew past its bound while it was read (api.limits)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "request.too_large")
        self.limit = limit


def too_large(limit: int, locale: str) -> JSONResponse:
    """The 413 answer to a body over ``limit`` bytes, in ``locale``."""
    params = {"limit_bytes": limit, "limit_mb": round(limit / 2**20, 1)}
    text = render("request.too_large", params, locale)
    resp = problem(413, text, code="request.too_large", kind="payload_too_large", params=params,
                   errors=[{"field": "body", "message": text, "code": "request.too_large", "params": params}])
    resp.headers["Connection"] = "close"  # the rest of the body is not read
    return resp


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc, BodyTooLarge):
        return too_large(exc.limit, request_locale(request))
    resp = problem(exc.status_code, str(exc.detail))
    if exc.headers:
        resp.headers.update(exc.headers)
    return resp


async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
    if exc.connection_invalidated or type(exc.orig).__name__ in ("OperationalError", "InterfaceError"):
        log.warning("%s %s -> 503 database unavailable: %s", request.method, request.url.path, type(exc.orig).__name__)
        resp = problem(503, "The database is unavailable for a moment; try again shortly", code="database_unavailable")
        resp.headers["Retry-After"] = "5"
        return resp
    if getattr(exc.orig, "sqlstate", None) == NUMERIC_VALUE_OUT_OF_RANGE:
        # An id or number larger than its column can hold (found by fuzzing): bad input, not a fault.
        log.info("%s %s -> 422 number out of range", request.method, request.url.path)
        return problem(422, "A number in the request is out of range (ids and counts are at most 2147483647)",
                       code="validation_failed")
    log.exception("database error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", code="internal_error")


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(DBAPIError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(e.DomainError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
