"""The machinery of the members' pages: the viewer, CSRF-checked forms, rendering, form errors.

Pages are server-rendered Jinja2 templates (``api/templates``) with little JavaScript. Every
POST carries the session's CSRF token; every form that a service refuses is shown again with
the service's errors next to their fields, in the member's language, with what was typed, and
nothing written (the service call runs in a savepoint that is rolled back on refusal).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from api import i18n
from api.cookies import (
    CSRF_FIELD,
    CSRF_HEADER,
    WebSession,
    member_from_cookie,
    session_of,
    write_cookie,
)
from api.deps import SessionDep, SettingsDep
from commons_map.errors import DomainError, NotFound, PermissionDenied, input_problem
from commons_map.people.models import Cooperative, Member
from commons_map.settings import Settings

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
PREFIX = "/app"

T = TypeVar("T")


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = i18n.gettext
    return env


templates = _env()


class SignInRequired(Exception):
    """A page for members was asked for without a session; answered by a redirect."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfFailed(Exception):
    """A form came without this session's CSRF token."""


@dataclass
class Page:
    """Who is looking, in which language, and the tools a page needs."""

    request: Request
    session: Session
    settings: Settings
    ws: WebSession
    member: Member | None
    locale: str
    fmt: i18n.Formats
    cooperative: Cooperative | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return self.member is not None

    def require(self) -> Member:
        """The signed-in member, or a redirect to the sign-in page."""
        i18n.use(self.locale)  # this handler's thread speaks the viewer's language
        if self.member is None:
            raise SignInRequired(
                self.request.url.path
                + (("?" + self.request.url.query) if self.request.url.query else "")
            )
        return self.member

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The template in the viewer's language, with the session cookie sent when it changed."""
        i18n.use(self.locale)
        flash = self.request.query_params.get("done")
        ctx = {
            "page": self,
            "me": self.member,
            "locale": self.locale,
            "fmt": self.fmt,
            "csrf_token": self.ws.csrf,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            "prefix": PREFIX,
            "path": self.request.url.path,
            "done": flash,
            "errors": {},
            "values": {},
            **context,
        }
        html = templates.get_template(template).render(ctx)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Content-Language"] = self.locale
        response.headers["Cache-Control"] = "no-store" if self.member else "no-cache"
        response.headers["Vary"] = "Cookie, Accept-Language"
        self.finish(response)
        return response

    def redirect(self, url: str, *, done: str | None = None) -> RedirectResponse:
        """A 303 to a page of ours (with a short confirmation code to show there)."""
        if done:
            path, _, fragment = url.partition("#")
            url = (
                path
                + ("&" if "?" in path else "?")
                + "done="
                + quote(done)
                + ("#" + fragment if fragment else "")
            )
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> Response:
        """Send the session cookie when it is new or changed."""
        if self.ws.dirty:
            write_cookie(response, self.request, self.settings, self.ws)
        return response

    def t(self, message: str, **params: Any) -> str:
        """A string in the viewer's language."""
        i18n.use(self.locale)
        return i18n.gettext(message, **params)


def _locale_for(request: Request, ws: WebSession, member: Member | None) -> str:
    if member is not None and member.locale in i18n.LOCALES:
        return member.locale
    if ws.locale in i18n.LOCALES:
        return ws.locale  # type: ignore[return-value]
    return i18n.negotiate(request.headers.get("accept-language"))


def get_page(request: Request, session: SessionDep, settings: SettingsDep) -> Page:
    """The page context of a request: the member from the session cookie, the language."""
    ws = session_of(request, settings)
    member = member_from_cookie(request, session, settings) if ws.member_id is not None else None
    if ws.member_id is not None and member is None:
        ws.sign_out()  # the member was deactivated or signed out everywhere
    coop = session.get(Cooperative, member.cooperative_id) if member is not None else None
    locale = _locale_for(request, ws, member)
    tz = coop.timezone if coop is not None else settings.default_timezone
    i18n.use(locale)
    request.state.page_locale = locale
    return Page(
        request=request,
        session=session,
        settings=settings,
        ws=ws,
        member=member,
        locale=locale,
        fmt=i18n.Formats(locale, tz),
        cooperative=coop,
    )


PageDep = Annotated[Page, Depends(get_page)]


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (else 403)."""
    from api.deps import get_settings_dep

    form = await request.form()
    ws = session_of(request, get_settings_dep(request))
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not ws.csrf_ok(given if isinstance(given, str) else None):
        raise CsrfFailed()
    return form


Form = Annotated[FormData, Depends(csrf_form)]


async def csrf_json(request: Request) -> Any:
    """A posted JSON body, once the CSRF header matches the session's (else 403)."""
    from api.deps import get_settings_dep

    ws = session_of(request, get_settings_dep(request))
    if not ws.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise CsrfFailed()
    return await request.json()


JsonBody = Annotated[Any, Depends(csrf_json)]


# --- form errors ------------------------------------------------------------------------------


class FormErrors(dict[str, list[str]]):
    """Messages by field name ('' for the form as a whole), in the member's language."""

    def add(self, field_name: str | None, message: str) -> None:
        self.setdefault(field_name or "", []).append(message)

    @property
    def general(self) -> list[str]:
        return self.get("", [])


def errors_from(
    exc: Exception, *, fields: set[str] | None = None, aliases: dict[str, str] | None = None
) -> FormErrors:
    """A domain or pydantic error as messages next to the form's fields (translated)."""
    out = FormErrors()
    aliases = aliases or {}

    def place(name: str | None) -> str:
        if not name:
            return ""
        name = aliases.get(name, name)
        parts = [p for p in re.split(r"[.\[\]]+", name) if p and not p.isdigit()]
        for candidate in [name, *reversed(parts)]:
            candidate = aliases.get(candidate, candidate)
            if fields is None and candidate:
                return parts[0] if parts else candidate
            if fields is not None and candidate in fields:
                return candidate
        return ""

    if isinstance(exc, ValidationError):
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
            target = place(loc)
            msg = i18n.error_text(input_problem(err))
            out.add(target, msg if target or not loc else f"{loc}: {msg}")
        return out
    assert isinstance(exc, DomainError)
    problems = exc.problems or []
    if not problems:
        out.add("", i18n.error_text(exc))
        return out
    for p in problems:
        out.add(place(p.field), i18n.error_text(p))
    return out


def attempt(session: Session, action: Callable[[], T]) -> T:
    """Run a service call in a savepoint: on any error nothing it wrote remains."""
    with session.begin_nested():
        return action()


def try_action(
    session: Session, action: Callable[[], T], **kw: Any
) -> tuple[T | None, FormErrors | None]:
    """(result, None), or (None, errors to show) when the service refused; nothing written then."""
    try:
        return attempt(session, action), None
    except PermissionDenied:
        raise  # a page of its own (403), not a field error
    except NotFound as exc:
        fields = kw.get("fields")
        target = (kw.get("aliases") or {}).get(exc.field or "", exc.field)
        if fields is None or target not in fields:
            raise
        return None, errors_from(exc, **kw)
    except (DomainError, ValidationError) as exc:
        return None, errors_from(exc, **kw)


def safe_next(url: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not url:
        return PREFIX + "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return PREFIX + "/"
    return url


def field_values(form: FormData) -> dict[str, str]:
    """What was typed, to put back in the form (never the CSRF token or passwords)."""
    return {
        k: v
        for k, v in form.items()
        if isinstance(v, str) and k != CSRF_FIELD and "password" not in k
    }


def static_file(path: str) -> Response:
    """A file under api/static (no escaping the folder), cached for a day."""
    target = (STATIC / path).resolve()
    if not target.is_file() or STATIC.resolve() not in target.parents:
        return Response(status_code=404)
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".js":
        media = "text/javascript"
    if target.suffix == ".webmanifest":
        media = "application/manifest+json"
    resp = FileResponse(target, media_type=media)
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp


class PageRoute(APIRoute):
    """A page route: a missing session redirects to sign-in, a bad CSRF token or a refusal
    of the services is shown as a page in the member's language (not as problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return RedirectResponse(
                    f"{PREFIX}/signin?next={quote(exc.next_url)}", status_code=303
                )
            except CsrfFailed:
                return error_page(request, 403, "csrf")
            except NotFound:
                return error_page(request, 404, "not_found")
            except PermissionDenied:
                return error_page(request, 403, "denied")

        return page_handler


def error_page(request: Request, status: int, what: str) -> HTMLResponse:
    """A small error page in the visitor's language (no database needed)."""
    from api.cookies import read_session

    settings = request.app.state.settings
    ws = read_session(request, settings)
    locale = (ws.locale if ws and ws.locale else None) or i18n.negotiate(
        request.headers.get("accept-language")
    )
    member_locale = getattr(request.state, "page_locale", None)
    locale = member_locale or locale
    i18n.use(locale)
    html = templates.get_template("error.html").render(
        {
            "page": None,
            "me": None,
            "locale": locale,
            "prefix": PREFIX,
            "errors": {},
            "values": {},
            "csrf_token": ws.csrf if ws else "",
            "csrf_field": CSRF_FIELD,
            "path": request.url.path,
            "done": None,
            "what": what,
            "status": status,
        }
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Language": locale})
