"""Members' pages of the exchange network: offers and needs as a list and a map, posting one,
replying, accepting, recording and confirming an exchange done, my exchanges."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api.web import PREFIX, Form, PageDep, PageRoute, field_values, try_action
from commons_map.errors import ValidationFailed, collector
from commons_map.exchange import service
from commons_map.exchange.schemas import PostIn

router = APIRouter(route_class=PageRoute, include_in_schema=False)
BASE = PREFIX + "/exchange"
POST_FIELDS = {"kind", "title", "description", "category", "minutes", "when", "visibility"}
ACTIONS = {"accept": service.accept, "done": service.done, "cancel": service.cancel}


def _categories(page: Any) -> list[tuple[str, str]]:
    return [(c.code, c.label_fr if page.locale == "fr" else c.label_en) for c in service.list_categories(page.session)]


@router.get(BASE)
def browse(page: PageDep, kind: str = "", category: str = "", q: str = "") -> Response:
    """Offers and needs as a list and on a map, newest first; new since my last visit marked."""
    me = page.require()
    values = {"kind": kind, "category": category, "q": q}
    errors = None
    result: dict[str, Any] = {"features": []}
    try:
        result = service.search_posts(page.session, actor=me, kind=kind or None, category=category or None,
                                      q=q or None, limit=200)
    except ValidationFailed as exc:
        from api.web import errors_from

        errors = errors_from(exc, fields={"kind", "category", "q"})
    previous = service.record_visit(page.session, actor=me)
    for f in result["features"]:
        f["properties"]["url"] = f"{BASE}/posts/{f['id']}"
        f["properties"]["name"] = f["properties"]["title"]
        f["properties"]["new"] = previous is not None and f["properties"]["created_at"] > previous.isoformat()
    mapped = {"type": "FeatureCollection", "features": [f for f in result["features"] if f["geometry"]]}
    return page.render("exchange_list.html", posts=result["features"], geojson=json.dumps(mapped),
                       categories=_categories(page), values=values, errors=errors or {})


def _post_form(page: Any, values: dict[str, str] | None = None, errors: Any = None, status_code: int = 200) -> Response:
    return page.render("exchange_new.html", categories=_categories(page),
                       values=values or {"kind": "offer", "minutes": "60", "visibility": "members"},
                       errors=errors or {}, status_code=status_code)


@router.get(BASE + "/new")
def new_post(page: PageDep) -> Response:
    """Post an offer or a need: five fields, under a minute."""
    page.require()
    return _post_form(page)


def _minutes(problems: Any, raw: str) -> int | None:
    try:
        return round(float((raw or "").replace(",", ".")))
    except ValueError:
        problems.add("minutes", "exchange.minutes_range", minimum=service.MIN_MINUTES, maximum=service.MAX_MINUTES)
        return None


@router.post(BASE + "/new")
def create_post(page: PageDep, form: Form) -> Response:
    """Create the post; refusals are shown next to their field, nothing written."""
    me = page.require()
    values = field_values(form)

    def send():  # noqa: ANN202
        problems = collector()
        minutes = _minutes(problems, values.get("minutes", ""))
        problems.raise_if_any()
        return service.create_post(page.session, actor=me, data=PostIn(
            kind=values.get("kind", ""), title=values.get("title", ""), description=values.get("description", ""),
            category=values.get("category", ""), minutes=minutes, when=values.get("when", ""),
            visibility=values.get("visibility", "members")))

    post, errors = try_action(page.session, send, fields=POST_FIELDS)
    if errors is not None:
        return _post_form(page, values, errors, status_code=422)
    return page.redirect(f"{BASE}/posts/{post.id}", done="saved")


@router.get(BASE + "/posts/{post_id}")
def show_post(page: PageDep, post_id: int) -> Response:
    """One post, with a reply form when it is someone else's."""
    me = page.require()
    post = service.get_post(page.session, actor=me, post_id=post_id)
    feature = service.post_feature(page.session, actor=me, post=post)
    return page.render("exchange_post.html", post=feature, values={"minutes": str(post.minutes)})


@router.post(BASE + "/posts/{post_id}/reply")
def reply(page: PageDep, post_id: int, form: Form) -> Response:
    """Reply: an exchange is proposed; then to my exchanges."""
    me = page.require()
    values = field_values(form)
    post = service.get_post(page.session, actor=me, post_id=post_id)

    def send():  # noqa: ANN202
        problems = collector()
        minutes = _minutes(problems, values.get("minutes", ""))
        problems.raise_if_any()
        return service.reply(page.session, actor=me, post_id=post_id, minutes=minutes,
                             message=values.get("message", ""))

    _, errors = try_action(page.session, send, fields={"minutes", "message", "post_id"},
                           aliases={"post_id": ""})
    if errors is not None:
        feature = service.post_feature(page.session, actor=me, post=post)
        return page.render("exchange_post.html", post=feature, values=values, errors=errors, status_code=422)
    return page.redirect(f"{BASE}/mine", done="saved")


def _mine(page: Any, me: Any) -> list[dict[str, Any]]:
    return [service.exchange_out(page.session, actor=me, exchange=e)
            for e in service.list_exchanges(page.session, actor=me)]


@router.get(BASE + "/mine")
def mine(page: PageDep) -> Response:
    """My exchanges, with what I can do next on each."""
    me = page.require()
    return page.render("exchange_mine.html", exchanges=_mine(page, me))


@router.post(BASE + "/exchanges/{exchange_id}/{action}")
def act(page: PageDep, exchange_id: int, action: str, form: Form) -> Response:
    """Accept, record or confirm done, or cancel an exchange; a refusal is shown on my exchanges."""
    me = page.require()
    verb = ACTIONS.get(action)
    if verb is None:
        return Response(status_code=404)
    _, errors = try_action(page.session, lambda: verb(page.session, actor=me, exchange_id=exchange_id),
                           fields=set())
    if errors is not None:
        return page.render("exchange_mine.html", exchanges=_mine(page, me), errors=errors, status_code=409)
    return page.redirect(f"{BASE}/mine", done="saved")
