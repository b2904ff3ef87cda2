"""/api/v1/exchange: offers and needs, exchanges paid in time, the solidarity fund, figures."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from api.deps import CurrentMember, OptionalMember, SessionDep
from commons_map.db import DbId
from commons_map.errors import ValidationFailed
from commons_map.exchange import charts, figures, service
from commons_map.exchange.schemas import GiftIn, MessageIn, PostIn, PostPatch, ReplyIn, StewardIn, SupportIn

router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])


class CategoryIn(BaseModel):
    """A new category (coordinators)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    label_fr: str
    label_en: str


class DisputeIn(BaseModel):
    """Why the exchange is disputed (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""


def parse_near(raw: str | None, distance: float | None) -> service.Near | None:
    """``near=lon,lat`` and ``distance`` in metres (2000 when left out)."""
    if raw is None:
        if distance is not None:
            raise ValidationFailed("exchange.near_range", field="distance")
        return None
    try:
        lon, lat = (float(v) for v in raw.split(","))
    except ValueError as exc:
        raise ValidationFailed("exchange.near_range", field="near") from exc
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValidationFailed("exchange.near_range", field="near")
    return service.Near(lon, lat, 2000.0 if distance is None else distance)


@router.get("/categories")
def categories(session: SessionDep) -> list[dict[str, Any]]:
    """The categories of offers and needs, in French and English."""
    return [{"code": c.code, "label_fr": c.label_fr, "label_en": c.label_en} for c in service.list_categories(session)]


@router.post("/categories", status_code=201)
def add_category(body: CategoryIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Coordinators add a category."""
    c = service.add_category(session, actor=member, code=body.code, label_fr=body.label_fr, label_en=body.label_en)
    return {"code": c.code, "label_fr": c.label_fr, "label_en": c.label_en}


@router.get("/posts", response_model=dict[str, Any])
def list_posts(
    session: SessionDep,
    member: OptionalMember,
    kind: str | None = None,
    category: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    near: Annotated[str | None, Query(description="lon,lat (WGS84)")] = None,
    distance: Annotated[float | None, Query(description="metres from near (default 2000)")] = None,
    since: Annotated[str | None, Query(description="an ISO moment, or last_visit")] = None,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Open offers and needs I may read, as a GeoJSON FeatureCollection (nearest first with near)."""
    when: datetime | str | None = since
    if since is not None and since != "last_visit":
        try:
            when = datetime.fromisoformat(since)
        except ValueError as exc:
            raise ValidationFailed("exchange.since", field="since") from exc
    found = service.search_posts(session, actor=member, kind=kind, category=category, q=q,
                                 near=parse_near(near, distance), since=when, mine=mine, limit=limit, offset=offset)
    # Plain JSON values already (the service's): written at once, not walked again by FastAPI's encoder.
    return Response(orjson.dumps(found), media_type="application/json")


@router.post("/posts", status_code=201)
def create_post(body: PostIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Post an offer or a need (a GeoJSON Feature back)."""
    post = service.create_post(session, actor=member, data=body)
    return service.post_feature(session, actor=member, post=post)


@router.get("/posts/{post_id}")
def get_post(post_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """One post (public ones to anyone; members' ones to the cooperative's members)."""
    return service.post_feature(session, actor=member, post=service.get_post(session, actor=member, post_id=post_id))


@router.patch("/posts/{post_id}")
def update_post(post_id: DbId, body: PostPatch, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Change, renew or archive my post."""
    post = service.update_post(session, actor=member, post_id=post_id, data=body)
    return service.post_feature(session, actor=member, post=post)


@router.post("/posts/{post_id}/replies", status_code=201)
def reply(post_id: DbId, body: ReplyIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Reply to a post: the exchange it opens."""
    exchange = service.reply(session, actor=member, post_id=post_id, minutes=body.minutes, message=body.message)
    return service.exchange_out(session, actor=member, exchange=exchange)


@router.get("/exchanges")
def my_exchanges(session: SessionDep, member: CurrentMember,
                 state: Literal["proposed", "accepted", "done", "cancelled", "disputed"] | None = None,
                 ) -> list[dict[str, Any]]:
    """The exchanges I provide or receive."""
    return [service.exchange_out(session, actor=member, exchange=e)
            for e in service.list_exchanges(session, actor=member, state=state)]


@router.get("/exchanges/{exchange_id}")
def get_exchange(exchange_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """One of my exchanges, with its thread."""
    exchange = service.get_exchange(session, actor=member, exchange_id=exchange_id)
    return service.exchange_out(session, actor=member, exchange=exchange)


def _act(action: Any, session: Any, member: Any, exchange_id: int, **kw: Any) -> dict[str, Any]:
    exchange = action(session, actor=member, exchange_id=exchange_id, **kw)
    return service.exchange_out(session, actor=member, exchange=exchange)


@router.post("/exchanges/{exchange_id}/accept")
def accept(exchange_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """The post's author accepts the exchange."""
    return _act(service.accept, session, member, exchange_id)


@router.post("/exchanges/{exchange_id}/done")
def done(exchange_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """The provider records it done; the receiver confirms it done (the provider is paid)."""
    return _act(service.done, session, member, exchange_id)


@router.post("/exchanges/{exchange_id}/cancel")
def cancel(exchange_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Either party cancels an exchange not yet paid."""
    return _act(service.cancel, session, member, exchange_id)


@router.post("/exchanges/{exchange_id}/dispute")
def dispute(exchange_id: DbId, session: SessionDep, member: CurrentMember,
            body: DisputeIn | None = None) -> dict[str, Any]:
    """Either party disputes the exchange (no automatic payment then)."""
    return _act(service.dispute, session, member, exchange_id, reason=body.reason if body else "")


@router.post("/exchanges/{exchange_id}/solidarity")
def ask_fund(exchange_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """The receiver, supported by the solidarity fund, has the fund pay this exchange."""
    return _act(service.ask_fund, session, member, exchange_id)


@router.post("/exchanges/{exchange_id}/messages", status_code=201)
def add_message(exchange_id: DbId, body: MessageIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Write in the exchange's thread."""
    m = service.add_message(session, actor=member, exchange_id=exchange_id, body=body.body)
    return {"id": m.id, "author_id": m.author_id, "body": m.body, "created_at": m.created_at.isoformat()}


@router.get("/solidarity")
def solidarity(session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """The solidarity fund: balance and stewards; my support; every support for the stewards."""
    return service.solidarity_out(session, actor=member)


@router.post("/solidarity/gifts", status_code=201)
def give(body: GiftIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Give hours to the fund (coordinators may give from the cooperative account)."""
    transfer = service.give(session, actor=member, minutes=body.minutes, idempotency_key=body.idempotency_key,
                            from_cooperative=body.from_cooperative)
    return {"transfer_id": transfer.id, "minutes": body.minutes}


@router.post("/solidarity/stewards", status_code=201)
def appoint_steward(body: StewardIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Coordinators appoint a steward of the fund."""
    steward = service.appoint_steward(session, actor=member, member_id=body.member_id)
    return {"member_id": steward.member_id}


@router.post("/solidarity/supports", status_code=201)
def propose_support(body: SupportIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """A steward proposes to support a member (active when a second steward approves)."""
    return service.support_out(service.propose_support(session, actor=member, member_id=body.member_id,
                                                       note=body.note))


@router.post("/solidarity/supports/{support_id}/approve")
def approve_support(support_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """A second, different steward approves the support."""
    return service.support_out(service.approve_support(session, actor=member, support_id=support_id))


class EndSupportIn(BaseModel):
    """Why the support ends (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""


@router.post("/solidarity/supports/{support_id}/end")
def end_support(support_id: DbId, session: SessionDep, member: CurrentMember,
                body: EndSupportIn | None = None) -> dict[str, Any]:
    """A fund steward ends a support or withdraws a proposal (one steward is enough); the member may end theirs."""
    support = service.end_support(session, actor=member, support_id=support_id, reason=body.reason if body else "")
    return service.support_out(support) | {"ended": True}


@router.get("/figures", responses={200: {"content": {"text/csv": {}, "image/png": {}}}})
def exchange_figures(session: SessionDep, member: CurrentMember,
                     format: Literal["json", "csv", "png"] = "json",
                     year: Annotated[int | None, Query(ge=1990, le=2200, description="one calendar year")] = None,
                     lang: Literal["fr", "en"] | None = None) -> Any:
    """Hours exchanged per month and category, members active, share reaching supported members, pairs.

    ``format=png`` draws them as the annual report's chart (French and English, or ``lang`` only).
    """
    data = figures.figures(session, actor=member, year=year)
    if format == "csv":
        return Response(figures.to_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="exchange-figures.csv"'})
    if format == "png":
        return Response(charts.figures_png(data, locale=lang), media_type="image/png")
    return data
