"""Members' pages of the exchange network: offers and needs as a list and a map, posting one (with
its place tapped on a small map), replying, an exchange's page (its thread, accepting, recording
and confirming it done, disputing it, asking the solidarity fund), my exchanges, and the
solidarity fund (its stewards propose, approve with four eyes, and end supports)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from api.web import PREFIX, Form, PageDep, PageRoute, field_values, try_action
from commons_map.errors import ValidationFailed, collector
from commons_map.exchange import service
from commons_map.exchange.schemas import PostIn
from commons_map.people.models import Member
from commons_map.people.permissions import is_coordinator_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
BASE = PREFIX + "/exchange"
POST_FIELDS = {"kind", "title", "description", "category", "minutes", "when", "visibility", "lat", "lon"}
GIFT_MAX_MINUTES = 100 * 60  # as service.give
ACTIONS = {"accept": service.accept, "done": service.done, "cancel": service.cancel,
           "solidarity": service.ask_fund}


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


def _minutes(problems: Any, raw: str, maximum: int = service.MAX_MINUTES) -> int | None:
    try:
        value = float((raw or "").replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.add("minutes", "exchange.minutes_range", minimum=service.MIN_MINUTES, maximum=maximum)
        return None
    return round(value)


def _coordinate(problems: Any, name: str, raw: str, limit: float) -> float | None:
    try:
        value = float(raw.strip().replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > limit:
        problems.add(name, "exchange.place_coordinates")
        return None
    return value


def _place(problems: Any, raw_lat: str, raw_lon: str) -> dict[str, Any] | None:
    """The point tapped on the map (or typed): both coordinates or neither."""
    if not raw_lat.strip() and not raw_lon.strip():
        return None
    lat = _coordinate(problems, "lat", raw_lat, 90)
    lon = _coordinate(problems, "lon", raw_lon, 180)
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


@router.post(BASE + "/new")
def create_post(page: PageDep, form: Form) -> Response:
    """Create the post; refusals are shown next to their field, nothing written."""
    me = page.require()
    values = field_values(form)

    def send():  # noqa: ANN202
        problems = collector()
        minutes = _minutes(problems, values.get("minutes", ""))
        place = _place(problems, values.get("lat", ""), values.get("lon", ""))
        problems.raise_if_any()
        return service.create_post(page.session, actor=me, data=PostIn(
            kind=values.get("kind", ""), title=values.get("title", ""), description=values.get("description", ""),
            category=values.get("category", ""), minutes=minutes, when=values.get("when", ""),
            visibility=values.get("visibility", "members"), place=place,
            exact_place=values.get("exact_place") == "on"))

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
    return page.render("exchange_post.html", post=feature, values={"minutes": str(post.minutes)},
                       geojson=_place_geojson(feature))


def _place_geojson(feature: dict[str, Any]) -> str:
    features = [dict(feature, properties={"name": feature["properties"]["title"]})] if feature["geometry"] else []
    return json.dumps({"type": "FeatureCollection", "features": features})


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
        return page.render("exchange_post.html", post=feature, values=values, errors=errors, status_code=422,
                           geojson=_place_geojson(feature))
    return page.redirect(f"{BASE}/mine", done="saved")


def _mine(page: Any, me: Any) -> list[dict[str, Any]]:
    return [service.exchange_out(page.session, actor=me, exchange=e)
            for e in service.list_exchanges(page.session, actor=me)]


@router.get(BASE + "/mine")
def mine(page: PageDep) -> Response:
    """My exchanges, with what I can do next on each."""
    me = page.require()
    return page.render("exchange_mine.html", exchanges=_mine(page, me))


def _moments(exchange: dict[str, Any]) -> dict[str, Any]:
    for m in exchange["messages"]:
        m["at"] = datetime.fromisoformat(m["created_at"])
    return exchange


def _show_exchange(page: Any, me: Any, exchange_id: int, values: dict[str, str] | None = None,
                   errors: Any = None, status_code: int = 200) -> Response:
    exchange = service.get_exchange(page.session, actor=me, exchange_id=exchange_id)
    out = _moments(service.exchange_out(page.session, actor=me, exchange=exchange))
    support = service.solidarity_out(page.session, actor=me)["my_support"] if out["my_role"] == "receiver" else None
    return page.render("exchange_one.html", e=out, supported=bool(support and support["active"]),
                       is_coordinator=me.is_coordinator, values=values or {}, errors=errors or {},
                       status_code=status_code)


@router.get(BASE + "/exchanges/{exchange_id}")
def show_exchange(page: PageDep, exchange_id: int) -> Response:
    """One exchange: who, how long, its state and what comes next, its messages."""
    me = page.require()
    return _show_exchange(page, me, exchange_id)


@router.post(BASE + "/exchanges/{exchange_id}/messages")
def add_message(page: PageDep, exchange_id: int, form: Form) -> Response:
    """Write in the exchange's thread; an empty or too long message is shown next to the field."""
    me = page.require()
    values = field_values(form)
    _, errors = try_action(page.session, lambda: service.add_message(
        page.session, actor=me, exchange_id=exchange_id, body=values.get("body", "")), fields={"body"})
    if errors is not None:
        return _show_exchange(page, me, exchange_id, values, errors, status_code=422)
    return page.redirect(f"{BASE}/exchanges/{exchange_id}#thread", done="saved")


@router.post(BASE + "/exchanges/{exchange_id}/dispute")
def dispute(page: PageDep, exchange_id: int, form: Form) -> Response:
    """Dispute the exchange, with a reason (it goes into the thread); no automatic payment then."""
    me = page.require()
    values = field_values(form)
    _, errors = try_action(page.session, lambda: service.dispute(
        page.session, actor=me, exchange_id=exchange_id, reason=values.get("reason", "")), fields={"reason"})
    if errors is not None:
        status = 422 if errors.get("reason") else 409
        return _show_exchange(page, me, exchange_id, values, errors, status_code=status)
    return page.redirect(f"{BASE}/exchanges/{exchange_id}", done="saved")


@router.post(BASE + "/exchanges/{exchange_id}/{action}")
def act(page: PageDep, exchange_id: int, action: str, form: Form) -> Response:
    """Accept, record or confirm done, cancel, or have the fund pay; a refusal is shown on the exchange."""
    me = page.require()
    verb = ACTIONS.get(action)
    if verb is None:
        return Response(status_code=404)
    _, errors = try_action(page.session, lambda: verb(page.session, actor=me, exchange_id=exchange_id),
                           fields=set())
    if errors is not None:
        return _show_exchange(page, me, exchange_id, errors=errors, status_code=409)
    return page.redirect(f"{BASE}/exchanges/{exchange_id}", done="saved")


# --- the solidarity fund ----------------------------------------------------------------------


def _members(page: Any, me: Any) -> dict[int, str]:
    rows = page.session.execute(select(Member.id, Member.display_name).where(
        Member.cooperative_id == me.cooperative_id, Member.is_active.is_(True)).order_by(Member.display_name))
    return dict(rows.all())


def _fund_page(page: Any, me: Any, values: dict[str, str] | None = None, errors: Any = None,
               status_code: int = 200) -> Response:
    fund = service.solidarity_out(page.session, actor=me)
    names = _members(page, me) if fund["i_am_steward"] else {}
    values = dict(values or {})
    values.setdefault("idempotency_key", str(uuid.uuid4()))  # a gift sent twice is given once
    return page.render("exchange_fund.html", fund=fund, names=names, values=values, errors=errors or {},
                       choices=[(str(i), n) for i, n in names.items()], status_code=status_code,
                       i_am_coordinator=is_coordinator_of(me, me.cooperative_id))


@router.get(BASE + "/solidarity")
def solidarity(page: PageDep) -> Response:
    """The solidarity fund: its hours and stewards, my support; for its stewards, every support."""
    me = page.require()
    return _fund_page(page, me)


@router.post(BASE + "/solidarity/gifts")
def give(page: PageDep, form: Form) -> Response:
    """A member gives minutes of their time account to the fund (a coordinator may give from the
    cooperative's account instead); refusals next to the field."""
    me = page.require()
    values = field_values(form)

    def send():  # noqa: ANN202
        problems = collector()
        minutes = _minutes(problems, values.get("minutes", ""), maximum=GIFT_MAX_MINUTES)
        problems.raise_if_any()
        return service.give(page.session, actor=me, minutes=minutes,
                            idempotency_key=values.get("idempotency_key") or str(uuid.uuid4()),
                            from_cooperative=bool(values.get("from_cooperative")))

    _, errors = try_action(page.session, send, fields={"minutes"},
                           aliases={"amount": "minutes", "to_account_id": "", "idempotency_key": ""})
    if errors is not None:
        return _fund_page(page, me, values, errors, status_code=422)
    return page.redirect(f"{BASE}/solidarity", done="saved")


def _member_id(problems: Any, raw: str) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 2_147_483_647:
        problems.add("member_id", "exchange.choose_member")
        return None
    return value


@router.post(BASE + "/solidarity/supports")
def propose_support(page: PageDep, form: Form) -> Response:
    """A fund steward proposes to support a member (active when a second steward approves)."""
    me = page.require()
    service.require_fund_steward(page.session, me)
    values = field_values(form)

    def send():  # noqa: ANN202
        problems = collector()
        member_id = _member_id(problems, values.get("member_id", ""))
        problems.raise_if_any()
        return service.propose_support(page.session, actor=me, member_id=member_id, note=values.get("note", ""))

    _, errors = try_action(page.session, send, fields={"member_id", "note"})
    if errors is not None:
        return _fund_page(page, me, values, errors, status_code=422)
    return page.redirect(f"{BASE}/solidarity", done="saved")


@router.post(BASE + "/solidarity/supports/{support_id}/approve")
def approve_support(page: PageDep, support_id: int, form: Form) -> Response:
    """A second, different steward approves a support (four eyes)."""
    me = page.require()
    _, errors = try_action(page.session, lambda: service.approve_support(page.session, actor=me,
                                                                          support_id=support_id), fields=set())
    if errors is not None:
        return _fund_page(page, me, errors=errors, status_code=409)
    return page.redirect(f"{BASE}/solidarity", done="saved")


@router.post(BASE + "/solidarity/supports/{support_id}/end")
def end_support(page: PageDep, support_id: int, form: Form) -> Response:
    """A steward ends a support (or withdraws a proposal), saying why; the member may end their own."""
    me = page.require()
    values = field_values(form)
    name = f"reason-{support_id}"  # one form per support on the page: each its own field
    _, errors = try_action(page.session, lambda: service.end_support(
        page.session, actor=me, support_id=support_id, reason=values.get(name, "")),
        fields={name}, aliases={"reason": name})
    if errors is not None:
        return _fund_page(page, me, values, errors, status_code=422 if errors.get(name) else 409)
    return page.redirect(f"{BASE}/solidarity", done="saved")
