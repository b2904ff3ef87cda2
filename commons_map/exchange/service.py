"""The rules of the exchange network: posts, finding them, exchanges paid once in time, solidarity.

An exchange is opened by a reply to a post (never to one's own, never to an expired or archived
one) and goes proposed -> accepted -> done, or cancelled, or disputed. The provider recording it
done waits for the receiver; the receiver confirming it done pays the provider at once through
the ledger's one door (:func:`commons_map.ledger.service.post`): one transfer naming the
exchange, under a lock on the exchange row and an idempotency key derived from its id, so that
two confirmations racing pay once. ``settle_due`` pays what providers recorded done 14 days ago
without a dispute. A receiver the solidarity fund supports (two stewards approved it) may have
the fund pay instead; who is supported is seen only by the fund's stewards and the member.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from commons_map.clearing import service as clearing
from commons_map.clearing.models import ClearingLine
from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.exchange.models import (
    POST_KINDS,
    SEARCH_CONFIG,
    VISIBILITIES,
    Category,
    Exchange,
    ExchangeHistory,
    ExchangeMessage,
    FundSteward,
    Post,
    Support,
    Visit,
)
from commons_map.geo import parse_geojson_geometry, to_ewkt
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Account, Transfer
from commons_map.notify.service import notify
from commons_map.people.cooperatives import not_archived
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of, is_member_of, require_coordinator, require_member
from commons_map.tenancy import acting, acting_cooperative

MIN_MINUTES, MAX_MINUTES = 1, 24 * 60
EXPIRY_DAYS = 60
SETTLE_AFTER_DAYS = 14
MAX_TITLE, MAX_DESCRIPTION, MAX_WHEN, MAX_MESSAGE = 120, 4000, 200, 2000
MAX_PAGE = 500
MAX_DISTANCE_M = 100_000
FUND_NAME = "Fonds de solidarité"
# Query lexemes become prefixes, a final s or x dropped: "velo" finds "vélos", "vélos" finds "vélo".
PREFIX_RE, PREFIX_TO = "'([^']{3,}?)[sx]?'", "'\\1':*"


def _now(session: Session) -> datetime:
    return session.scalar(select(func.now()))


def _record(session: Session, *, cooperative_id: int, actor: Member | None, action: str,
            post_id: int | None = None, exchange_id: int | None = None, support_id: int | None = None,
            changes: dict[str, Any] | None = None) -> None:
    session.add(ExchangeHistory(cooperative_id=cooperative_id, post_id=post_id, exchange_id=exchange_id,
                                support_id=support_id, member_id=actor.id if actor else None, action=action,
                                changes=changes or {}))


# --- categories -------------------------------------------------------------------------------


def list_categories(session: Session) -> list[Category]:
    """The active categories, in their order."""
    return list(session.scalars(select(Category).where(Category.active).order_by(Category.position, Category.code)))


def add_category(session: Session, *, actor: Member, code: str, label_fr: str, label_en: str) -> Category:
    """Coordinators extend the categories (a code, a French and an English label)."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    code = (code or "").strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,39}", code):
        problems.add("code", "exchange.category_code")
    for name, value in (("label_fr", label_fr), ("label_en", label_en)):
        _check_text(problems, name, value or "", MAX_TITLE, required=True)
    problems.raise_if_any()
    if session.get(Category, code) is not None:
        raise Conflict("exchange.category_exists", field="code", code=code)
    category = Category(code=code, label_fr=label_fr.strip(), label_en=label_en.strip())
    session.add(category)
    session.flush()
    return category


# --- posts ------------------------------------------------------------------------------------


def _check_minutes(problems: Any, minutes: Any, name: str = "minutes") -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        problems.add(name, "exchange.minutes_range", minimum=MIN_MINUTES, maximum=MAX_MINUTES)


def _check_text(problems: Any, name: str, value: str | None, maximum: int, required: bool = False) -> None:
    if value is None:
        return
    if "\x00" in value:  # PostgreSQL text cannot hold it
        problems.add(name, "exchange.text_nul")
    elif (required and not value.strip()) or len(value) > maximum:
        problems.add(name, "exchange.text_length", minimum=1 if required else 0, maximum=maximum)


def _place(problems: Any, place: dict[str, Any] | None) -> str | None:
    if place is None:
        return None
    try:
        geom = parse_geojson_geometry(place, field="place")
    except ValidationFailed:
        problems.add("place", "exchange.place_point")
        return None
    if geom.geom_type != "Point":
        problems.add("place", "exchange.place_point")
        return None
    return to_ewkt(geom)


def _check_post_fields(session: Session, problems: Any, values: dict[str, Any]) -> None:
    if "kind" in values and values["kind"] not in POST_KINDS:
        problems.add("kind", "exchange.kind", known=", ".join(POST_KINDS))
    if values.get("visibility") is not None and values["visibility"] not in VISIBILITIES:
        problems.add("visibility", "exchange.visibility", known=", ".join(VISIBILITIES))
    _check_text(problems, "title", values.get("title"), MAX_TITLE, required=True)
    _check_text(problems, "description", values.get("description"), MAX_DESCRIPTION)
    _check_text(problems, "when", values.get("when"), MAX_WHEN)
    if values.get("minutes") is not None or "minutes" in values and values["minutes"] is None:
        _check_minutes(problems, values.get("minutes"))
    category = values.get("category")
    if category is not None:
        found = None if "\x00" in category else session.get(Category, category)
        if found is None or not found.active:
            problems.add("category", "exchange.category", known=", ".join(c.code for c in list_categories(session)))
    starts, ends = values.get("starts_on"), values.get("ends_on")
    if starts is not None and ends is not None and starts > ends:
        problems.add("ends_on", "exchange.dates_order")


def create_post(session: Session, *, actor: Member, data: Any) -> Post:
    """A member posts an offer or a need (members-only unless public; expires in 60 days)."""
    require_member(actor, actor.cooperative_id)
    values = data.model_dump()
    problems = collector()
    _check_post_fields(session, problems, values)
    if not 1 <= data.expires_in_days <= EXPIRY_DAYS:
        problems.add("expires_in_days", "exchange.expiry_range", minimum=1, maximum=EXPIRY_DAYS)
    geom = _place(problems, data.place)
    problems.raise_if_any()
    post = Post(
        cooperative_id=actor.cooperative_id, author_id=actor.id, kind=data.kind, title=data.title.strip(),
        description=data.description.strip(), category_code=data.category, minutes=data.minutes,
        when_text=data.when.strip(), starts_on=data.starts_on, ends_on=data.ends_on, geom=geom,
        exact_place=data.exact_place, visibility=data.visibility,
        expires_at=_now(session) + timedelta(days=data.expires_in_days),
    )
    session.add(post)
    session.flush()
    _record(session, cooperative_id=post.cooperative_id, actor=actor, action="posted", post_id=post.id,
            changes={k: v for k, v in values.items() if k != "place" and v is not None and not isinstance(v, date)})
    session.refresh(post)
    return post


def _may_see_post(actor: Member | None, post: Post) -> bool:
    return post.visibility == "public" or is_member_of(actor, post.cooperative_id)


def get_post(session: Session, *, actor: Member | None, post_id: int) -> Post:
    """A post the actor may read (public ones to anyone, members' ones to the cooperative's members)."""
    post = session.get(Post, post_id)
    if post is None or not _may_see_post(actor, post):
        raise NotFound("exchange.no_post", field="post_id", post_id=post_id)
    if post.archived_at is not None and not (actor is not None and actor.id == post.author_id):
        raise NotFound("exchange.no_post", field="post_id", post_id=post_id)
    return post


def update_post(session: Session, *, actor: Member, post_id: int, data: Any) -> Post:
    """The author changes, renews (60 more days) or archives their post; coordinators archive any."""
    post = get_post(session, actor=actor, post_id=post_id)
    changes = data.model_dump(exclude_unset=True)
    author = post.author_id == actor.id
    if not author and not (is_coordinator_of(actor, post.cooperative_id) and set(changes) <= {"archived"}):
        raise PermissionDenied("exchange.not_author", field="post_id")
    problems = collector()
    for name in ("title", "category", "kind", "visibility", "minutes", "exact_place", "renew", "archived"):
        if name in changes and changes[name] is None:
            problems.add(name, "exchange.not_null")
    _check_post_fields(session, problems, {k: v for k, v in changes.items() if k != "kind"})
    geom = _place(problems, changes.get("place"))
    starts = changes.get("starts_on", post.starts_on)
    ends = changes.get("ends_on", post.ends_on)
    if starts is not None and ends is not None and starts > ends:
        problems.add("ends_on", "exchange.dates_order")
    problems.raise_if_any()
    simple = {"title": "title", "description": "description", "category": "category_code", "minutes": "minutes",
              "when": "when_text", "starts_on": "starts_on", "ends_on": "ends_on", "exact_place": "exact_place",
              "visibility": "visibility"}
    recorded: dict[str, Any] = {}
    for name, attr in simple.items():
        if name in changes:
            value = changes[name].strip() if isinstance(changes[name], str) else changes[name]
            recorded[name] = [str(getattr(post, attr)), str(value)]
            setattr(post, attr, value)
    if "place" in changes:
        post.geom = geom
        recorded["place"] = "changed"
    now = _now(session)
    if changes.get("renew"):
        post.expires_at = now + timedelta(days=EXPIRY_DAYS)
        recorded["expires_at"] = post.expires_at.isoformat()
    if "archived" in changes:
        post.archived_at = now if changes["archived"] else None
        recorded["archived"] = bool(changes["archived"])
    post.updated_at = now
    session.flush()
    _record(session, cooperative_id=post.cooperative_id, actor=actor, action="updated", post_id=post.id,
            changes=recorded)
    session.refresh(post)
    return post


# The posts the caller may read, by the very rule of exchange_posts' policies, as a view the owner
# owns (migration 0019_exchange_network): under the table's policies the text search's @@ and
# PostGIS's && (not leakproof) kept the search from its indexes. The search reads it as a Post.
READABLE = Table("exchange_posts_readable", MetaData(),
                 *(Column(c.name, c.type, key=c.key) for c in Post.__table__.columns))
Readable = aliased(Post, READABLE, adapt_on_names=True)


@dataclass
class Near:
    """A point and a distance in metres."""

    lon: float
    lat: float
    distance_m: float


def search_tsquery(q: str) -> Any:
    """The French-aware query for ``q``: unaccented, stemmed, each word a prefix (plurals forgiven)."""
    parsed = cast(func.websearch_to_tsquery(literal(SEARCH_CONFIG).cast(REGCONFIG), q), Text)
    return func.to_tsquery(literal("simple").cast(REGCONFIG), func.regexp_replace(parsed, PREFIX_RE, PREFIX_TO, "g"))


def _case(cond: Any, a: Any, b: Any) -> Any:
    return case((cond, a), else_=b)


def search_posts(
    session: Session,
    *,
    actor: Member | None,
    kind: str | None = None,
    category: str | None = None,
    q: str | None = None,
    near: Near | None = None,
    since: datetime | str | None = None,
    mine: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Open posts the actor may read, filtered; nearest first with ``near``, else newest first.

    ``since`` is a moment, or ``"last_visit"`` (the member's last visit, recorded by :func:`record_visit`).
    """
    problems = collector()
    if not 1 <= limit <= MAX_PAGE:
        problems.add("limit", "exchange.limit_range", minimum=1, maximum=MAX_PAGE)
    if offset < 0:
        problems.add("offset", "exchange.offset_negative")
    if kind is not None and kind not in POST_KINDS:
        problems.add("kind", "exchange.kind", known=", ".join(POST_KINDS))
    def unknown(category: str) -> bool:
        return "\x00" in category or session.get(Category, category) is None

    def refuse_category() -> None:
        problems.add("category", "exchange.category", known=", ".join(c.code for c in list_categories(session)))

    # An unknown category is looked up now only beside other problems (all are named at once), or
    # when the search finds nothing below (a category that finds posts is known: the join says so):
    # one round trip less for every search that finds something.
    if category is not None and "\x00" in category:
        refuse_category()
    if near is not None:
        if not (-180 <= near.lon <= 180 and -90 <= near.lat <= 90):
            problems.add("near", "exchange.near_range")
        if not 0 < near.distance_m <= MAX_DISTANCE_M:
            problems.add("distance", "exchange.distance_range", minimum=1, maximum=MAX_DISTANCE_M)
    _check_text(problems, "q", q, 200)
    if (since == "last_visit" or mine) and actor is None:
        problems.add("since" if since else "mine", "exchange.sign_in_first")
    if problems.problems and category is not None and "\x00" not in category and unknown(category):
        refuse_category()
    problems.raise_if_any()

    seen: datetime | None = since if isinstance(since, datetime) else None
    if since == "last_visit" and actor is not None:
        seen = session.scalar(select(Visit.seen_at).where(Visit.member_id == actor.id))
    member = actor is not None and actor.is_active
    shape = (actor is not None, member, bool(mine and actor is not None), bool(kind), bool(category),
             bool(q and q.strip()), seen is not None, near is not None)
    stmt = _SEARCHES.get(shape)
    if stmt is None:
        stmt = _SEARCHES.setdefault(shape, _search_statement(*shape))
    params: dict[str, Any] = {"actor_id": actor.id if actor is not None else None,
                              "coop_id": actor.cooperative_id if actor is not None else None,
                              "kind": kind, "category": category, "q": (q or "").strip(), "since": seen,
                              "lim": limit, "off": offset}
    if near is not None:
        params.update(lon=near.lon, lat=near.lat, distance=near.distance_m)
    rows = session.execute(stmt, params).all()
    if not rows and category is not None and unknown(category):
        refuse_category()
        problems.raise_if_any()
    features = [_feature(row, row.geojson, actor, row.label_fr, row.label_en, row.author_name, row.distance)
                for row in rows]
    matched = rows[0].matched if rows else 0
    return {"type": "FeatureCollection", "features": features, "numberMatched": matched,
            "numberReturned": len(features), "limit": limit, "offset": offset}


# One statement per shape of search (which filters are given), built once and kept: its values are
# bound parameters. Building a statement of this size and its cache key cost more CPU per request
# than reading the rows.
_SEARCHES: dict[tuple[bool, ...], Any] = {}


def _search_statement(signed_in: bool, member: bool, mine: bool, kind: bool, category: bool, q: bool,
                      since: bool, near: bool) -> Any:
    P = Readable  # noqa: N806
    public = and_(P.visibility == "public", not_archived(P.cooperative_id))
    conditions: list[ColumnElement[bool]] = [
        or_(public, P.cooperative_id == bindparam("coop_id", type_=Integer)) if member else public]
    if mine:
        conditions.append(P.author_id == bindparam("actor_id", type_=Integer))
    else:
        conditions += [P.archived_at.is_(None), P.expires_at > func.now()]
    if kind:
        conditions.append(P.kind == bindparam("kind", type_=Text))
    if category:
        conditions.append(P.category_code == bindparam("category", type_=Text))
    if q:
        conditions.append(P.search.op("@@")(search_tsquery(bindparam("q", type_=Text))))
    if since:
        conditions.append(P.created_at > bindparam("since", type_=DateTime(timezone=True)))
    own = P.author_id == bindparam("actor_id", type_=Integer) if signed_in else false()
    place = _case(own, P.geom, P.shown)
    distance: Any = literal(None)
    order: list[Any] = [P.created_at.desc(), P.id.desc()]
    if near:
        target = func.Geography(func.ST_SetSRID(func.ST_MakePoint(
            bindparam("lon", type_=Float), bindparam("lat", type_=Float)), 4326))
        # On what others are shown (the snapped point, indexed), so that small distances never
        # reveal the exact spot.
        conditions.append(func.ST_DWithin(func.Geography(P.shown), target, bindparam("distance", type_=Float)))
        distance = func.ST_Distance(func.Geography(P.shown), target)
        order = [func.Geography(P.shown).op("<->")(target), P.id]
    member_of = P.cooperative_id == bindparam("coop_id", type_=Integer) if member else false()
    return (
        # columns, not Post objects: what a feature shows, without the ORM's bookkeeping per row
        select(*(getattr(P, name) for name in FEATURE_COLUMNS),
               func.ST_AsGeoJSON(place, 7).label("geojson"), distance.label("distance"),
               Category.label_fr, Category.label_en,
               _case(member_of, Member.display_name, literal(None)).label("author_name"),
               func.count().over().label("matched"))
        .join(Category, Category.code == P.category_code)
        # outer: another cooperative's member is out of reach of the reader (row-level security)
        .outerjoin(Member, Member.id == P.author_id)
        .where(*conditions).order_by(*order)
        .limit(bindparam("lim", type_=Integer)).offset(bindparam("off", type_=Integer))
    )


FEATURE_COLUMNS = ("id", "cooperative_id", "author_id", "kind", "title", "description", "category_code", "minutes",
                   "when_text", "starts_on", "ends_on", "exact_place", "visibility", "expires_at", "archived_at",
                   "created_at")


def _feature(post: Any, geojson: str | None, actor: Member | None, label_fr: str, label_en: str,
             author_name: str | None, distance: float | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "kind": post.kind, "title": post.title, "description": post.description, "category": post.category_code,
        "category_label": {"fr": label_fr, "en": label_en}, "minutes": post.minutes, "when": post.when_text,
        "starts_on": post.starts_on.isoformat() if post.starts_on else None,
        "ends_on": post.ends_on.isoformat() if post.ends_on else None,
        "exact_place": post.exact_place, "visibility": post.visibility,
        "expires_at": post.expires_at.isoformat(), "created_at": post.created_at.isoformat(),
        "archived": post.archived_at is not None, "author": author_name,
        "mine": actor is not None and actor.id == post.author_id,
    }
    if distance is not None:
        props["distance_m"] = round(float(distance))
    return {"type": "Feature", "id": post.id, "geometry": json.loads(geojson) if geojson else None,
            "properties": props}


def post_feature(session: Session, *, actor: Member | None, post: Post) -> dict[str, Any]:
    """One post as a GeoJSON Feature, its place as this reader is shown it."""
    own = actor is not None and actor.id == post.author_id
    geojson = session.scalar(select(func.ST_AsGeoJSON(Post.geom if own else Post.shown, 7)).where(Post.id == post.id))
    category = session.get(Category, post.category_code)
    author = session.get(Member, post.author_id)
    name = author.display_name if author is not None and is_member_of(actor, post.cooperative_id) else None
    return _feature(post, geojson, actor, category.label_fr, category.label_en, name)  # type: ignore[union-attr]


def record_visit(session: Session, *, actor: Member) -> datetime | None:
    """Remember that the member looked at the posts now; returns their previous visit."""
    previous = session.scalar(select(Visit.seen_at).where(Visit.member_id == actor.id))
    now = _now(session)
    session.execute(pg_insert(Visit).values(member_id=actor.id, seen_at=now)
                    .on_conflict_do_update(index_elements=["member_id"], set_={"seen_at": now}))
    return previous


# --- exchanges --------------------------------------------------------------------------------
#
# An exchange may join members of two cooperatives that agreed to it: an accepted clearing line
# between them (commons_map.clearing), the one agreement two cooperatives make, by a coordinator
# of each. A member of B answers a public post of A; the exchange and its thread live in A's tables
# (its post's), and B's party reads and writes them through the ``party`` policies (migration
# 0019_exchange_network); the receiver's confirmation pays through the crossing payment (both
# ledgers, the clearing accounts, the line's limit). The other party's name and notifications are
# read and written in their own cooperative (``acting_cooperative``), nothing else there.


def _cooperative_of(session: Session, member_id: int) -> int | None:
    """A member's cooperative, whichever it is (the narrow lookup of commons_map.tenancy)."""
    return session.scalar(text("SELECT commons_member_cooperative(:m)"), {"m": member_id})


def _cooperative_name(session: Session, cooperative_id: int) -> str:
    return session.scalar(select(Cooperative.name).where(Cooperative.id == cooperative_id)) or str(cooperative_id)


def _line_between(session: Session, a: int, b: int) -> ClearingLine | None:
    """The accepted clearing line between two cooperatives, or None."""
    return session.scalar(select(ClearingLine).where(ClearingLine.state == "accepted", or_(
        and_(ClearingLine.cooperative_id == a, ClearingLine.partner_cooperative_id == b),
        and_(ClearingLine.cooperative_id == b, ClearingLine.partner_cooperative_id == a))))


def _parties_by_cooperative(session: Session, exchange: Exchange, ids: list[int]) -> dict[int | None, list[int]]:
    out: dict[int | None, list[int]] = {}
    for i in ids:
        coop = _cooperative_of(session, i)
        out.setdefault(coop, []).append(i)
    return out



def reply(session: Session, *, actor: Member, post_id: int, minutes: int | None = None, message: str = "") -> Exchange:
    """Reply to someone else's open post: an exchange is proposed between a provider and a receiver."""
    post = get_post(session, actor=actor, post_id=post_id)
    if post.cooperative_id == actor.cooperative_id:
        require_member(actor, post.cooperative_id)
    else:  # a post of another cooperative (a public one: get_post): only if the two agreed to it
        require_member(actor, actor.cooperative_id)
        if _line_between(session, post.cooperative_id, actor.cooperative_id) is None:
            raise PermissionDenied("exchange.no_line", field="post_id",
                                   cooperative=_cooperative_name(session, post.cooperative_id))
    if post.author_id == actor.id:
        raise ValidationFailed("exchange.own_post", field="post_id")
    if post.archived_at is not None:
        raise Conflict("exchange.post_archived", field="post_id")
    if post.expires_at <= _now(session):
        raise Conflict("exchange.post_expired", field="post_id", expired_at=post.expires_at)
    minutes = post.minutes if minutes is None else minutes
    problems = collector()
    _check_minutes(problems, minutes)
    _check_text(problems, "message", message, MAX_MESSAGE)
    problems.raise_if_any()
    open_one = session.scalar(select(Exchange.id).where(
        Exchange.post_id == post.id, Exchange.opened_by_id == actor.id,
        Exchange.state.in_(("proposed", "accepted"))))
    if open_one is not None:
        raise Conflict("exchange.already_replied", field="post_id", exchange_id=open_one)
    provider, receiver = (post.author_id, actor.id) if post.kind == "offer" else (actor.id, post.author_id)
    exchange = Exchange(cooperative_id=post.cooperative_id, post_id=post.id, provider_id=provider,
                        receiver_id=receiver, opened_by_id=actor.id, minutes=minutes, state="proposed")
    session.add(exchange)
    session.flush()
    if message and message.strip():
        session.add(ExchangeMessage(exchange_id=exchange.id, author_id=actor.id, body=message.strip()))
    _record(session, cooperative_id=exchange.cooperative_id, actor=actor, action="proposed",
            exchange_id=exchange.id, post_id=post.id, changes={"minutes": minutes})
    session.flush()
    session.refresh(exchange)
    _tell(session, actor, exchange, "proposed")
    return exchange


def _party(actor: Member, exchange: Exchange) -> bool:
    return actor.is_active and actor.id in (exchange.provider_id, exchange.receiver_id)


def get_exchange(session: Session, *, actor: Member, exchange_id: int, lock: bool = False) -> Exchange:
    """An exchange the actor takes part in (coordinators see their cooperative's); else NotFound."""
    stmt = select(Exchange).where(Exchange.id == exchange_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    exchange = session.scalar(stmt)
    if exchange is None or not (_party(actor, exchange) or is_coordinator_of(actor, exchange.cooperative_id)):
        raise NotFound("exchange.no_exchange", field="exchange_id", exchange_id=exchange_id)
    return exchange


def _acting(session: Session, actor: Member, exchange_id: int) -> Exchange:
    exchange = get_exchange(session, actor=actor, exchange_id=exchange_id, lock=True)
    if not _party(actor, exchange):
        raise PermissionDenied("exchange.not_party", field="exchange_id")
    return exchange


def _wrong_state(exchange: Exchange) -> Conflict:
    return Conflict("exchange.wrong_state", field="exchange_id", state=exchange.state)


def list_exchanges(session: Session, *, actor: Member, state: str | None = None) -> list[Exchange]:
    """The exchanges I provide or receive, newest first."""
    require_member(actor, actor.cooperative_id)
    stmt = select(Exchange).where(or_(Exchange.provider_id == actor.id, Exchange.receiver_id == actor.id))
    if state is not None:
        stmt = stmt.where(Exchange.state == state)
    return list(session.scalars(stmt.order_by(Exchange.id.desc()).limit(MAX_PAGE)))


def accept(session: Session, *, actor: Member, exchange_id: int) -> Exchange:
    """The post's author accepts a proposed exchange."""
    exchange = _acting(session, actor, exchange_id)
    if actor.id == exchange.opened_by_id:
        raise PermissionDenied("exchange.accept_not_opener", field="exchange_id")
    if exchange.state != "proposed":
        raise _wrong_state(exchange)
    return _move(session, actor, exchange, "accepted")


def _move(session: Session, actor: Member | None, exchange: Exchange, state: str, **changes: Any) -> Exchange:
    old = exchange.state
    exchange.state = state
    exchange.updated_at = _now(session)
    _record(session, cooperative_id=exchange.cooperative_id, actor=actor, action=state, exchange_id=exchange.id,
            changes={"state": [old, state], **changes})
    session.flush()
    event = "paid" if "transfer_id" in changes else "recorded" if state == "done" else state
    _tell(session, actor, exchange, event)
    return exchange


def _tell(session: Session, actor: Member | None, exchange: Exchange, event: str, key: str | None = None) -> None:
    """Notify the parties of an exchange but the one who acted (both when the schedule acted)."""
    post = session.get(Post, exchange.post_id)
    others = [i for i in (exchange.provider_id, exchange.receiver_id) if actor is None or i != actor.id]
    here = acting(session)[1]
    for coop, ids in _parties_by_cooperative(session, exchange, others).items():
        def tell(ids: list[int] = ids) -> None:
            notify(session, recipients=ids, kind="exchange", code=f"notify.exchange_{event}",
                   params={"title": post.title if post else "", "minutes": exchange.minutes,
                           "who": actor.display_name if actor is not None else ""},
                   link=f"/app/exchange/exchanges/{exchange.id}",  # its page: thread, actions
                   dedupe=key or f"exchange:{exchange.id}:{event}")
        if here is None or coop is None or coop == here:  # the owner (the schedule), or our own
            tell()
        else:  # WRITES ACROSS COOPERATIVES: the other party's notification, in their cooperative
            with acting_cooperative(session, coop):
                tell()


def cancel(session: Session, *, actor: Member, exchange_id: int) -> Exchange:
    """Either party cancels an exchange not yet paid (a coordinator also ends a disputed one)."""
    exchange = get_exchange(session, actor=actor, exchange_id=exchange_id, lock=True)
    coordinator = is_coordinator_of(actor, exchange.cooperative_id)
    if not _party(actor, exchange) and not (coordinator and exchange.state == "disputed"):
        raise PermissionDenied("exchange.not_party", field="exchange_id")
    if exchange.transfer_id is not None or exchange.state == "cancelled" or (
            exchange.state == "disputed" and not coordinator):
        raise _wrong_state(exchange)
    return _move(session, actor, exchange, "cancelled")


def dispute(session: Session, *, actor: Member, exchange_id: int, reason: str = "") -> Exchange:
    """Either party disputes an accepted or recorded-done exchange not yet paid (stops the auto-pay)."""
    exchange = _acting(session, actor, exchange_id)
    if exchange.state not in ("accepted", "done") or exchange.transfer_id is not None:
        raise _wrong_state(exchange)
    problems = collector()
    _check_text(problems, "reason", reason, MAX_MESSAGE)
    problems.raise_if_any()
    if reason.strip():
        session.add(ExchangeMessage(exchange_id=exchange.id, author_id=actor.id, body=reason.strip()))
    return _move(session, actor, exchange, "disputed")


def done(session: Session, *, actor: Member, exchange_id: int) -> Exchange:
    """The provider records it done (then waits); the receiver confirms it done, which pays the provider."""
    exchange = _acting(session, actor, exchange_id)
    if exchange.transfer_id is not None:
        raise Conflict("exchange.already_paid", field="exchange_id", transfer_id=exchange.transfer_id)
    if actor.id == exchange.provider_id:
        if exchange.state == "done":
            raise Conflict("exchange.already_recorded", field="exchange_id")
        if exchange.state != "accepted":
            raise _wrong_state(exchange)
        exchange.done_recorded_by_id, exchange.done_recorded_at = actor.id, _now(session)
        return _move(session, actor, exchange, "done", recorded_by="provider")
    if exchange.state not in ("accepted", "done"):
        raise _wrong_state(exchange)
    return _pay(session, actor, exchange)


def _fund_account(session: Session, cooperative_id: int) -> Account:
    """The cooperative's solidarity fund (never below zero), opened on first use."""
    stmt = select(Account).where(Account.cooperative_id == cooperative_id, Account.kind == "solidarity_fund")
    account = session.scalar(stmt)
    if account is None:
        session.execute(pg_insert(Account).values(cooperative_id=cooperative_id, kind="solidarity_fund",
                                                  name=FUND_NAME, min_minutes=0)
                        .on_conflict_do_nothing(index_elements=["cooperative_id"],
                                                index_where=Account.kind == "solidarity_fund"))
        account = session.scalars(stmt).one()
    return account


def _pay(session: Session, actor: Member | None, exchange: Exchange) -> Exchange:
    """Pay the provider: one transfer naming the exchange, idempotent by the exchange's key.

    The caller holds the exchange row's lock and has checked it is unpaid; limits are enforced by
    the ledger (a receiver over their limit gets ``exchange.limit_below`` with the minutes short).
    """
    provider_coop = _cooperative_of(session, exchange.provider_id)
    receiver_coop = _cooperative_of(session, exchange.receiver_id)
    if provider_coop != receiver_coop:
        return _pay_across(session, actor, exchange, provider_coop=provider_coop, receiver_coop=receiver_coop)
    provider = session.get(Member, exchange.provider_id)
    receiver = session.get(Member, exchange.receiver_id)
    if exchange.by_fund and _active_support(session, exchange.receiver_id) is None:
        exchange.by_fund = False  # the support ended since: the receiver pays
    source = (_fund_account(session, exchange.cooperative_id) if exchange.by_fund
              else ledger.ensure_member_account(session, member=receiver))  # type: ignore[arg-type]
    target = ledger.ensure_member_account(session, member=provider)  # type: ignore[arg-type]
    title = session.scalar(select(Post.title).where(Post.id == exchange.post_id)) or ""
    try:
        transfer = ledger.post(
            session, cooperative_id=exchange.cooperative_id, kind="service_payment",
            legs=[ledger.Leg(source.id, -exchange.minutes), ledger.Leg(target.id, exchange.minutes)],
            reason=f"Échange n° {exchange.id} : {title}"[:ledger.MAX_REASON], initiated_by=None,
            idempotency_key=f"exchange:{exchange.id}:payment",
        )
    except ledger.LimitExceeded as exc:
        if exc.code == "ledger.limit_below":
            code = "exchange.fund_short" if exchange.by_fund else "exchange.limit_below"
            raise ledger.LimitExceeded(code, field="minutes", short_minutes=exc.params["short_minutes"],
                                       limit_minutes=exc.params["limit_minutes"], detail=exc.detail) from exc
        raise
    now = _now(session)
    if exchange.state != "done":
        exchange.done_recorded_by_id, exchange.done_recorded_at = (actor.id if actor else None), now
    exchange.transfer_id, exchange.paid_at = transfer.id, now
    return _move(session, actor, exchange, "done", transfer_id=transfer.id, by_fund=exchange.by_fund)


def _pay_across(session: Session, actor: Member | None, exchange: Exchange, *, provider_coop: int | None,
                receiver_coop: int | None) -> Exchange:
    """Pay the provider of another cooperative: a crossing payment from the receiver (both ledgers
    through their clearing accounts, within the line's limit: ``clearing.limit_exceeded``, a 409
    naming the line and the minutes), idempotent by the exchange's key. The exchange names the
    transfer in its own cooperative's ledger.

    The session acts for the receiver's cooperative (the receiver confirms) or is the owner's (the
    schedule): the receiver is read here; the provider's username is read in theirs."""
    assert provider_coop is not None and receiver_coop is not None
    receiver = session.get(Member, exchange.receiver_id)
    if receiver is None:  # pragma: no cover - only the receiver or the schedule pays
        raise PermissionDenied("exchange.receiver_only", field="exchange_id")
    with acting_cooperative(session, provider_coop):  # READS ACROSS: the provider's username
        username = session.scalar(select(Member.username).where(Member.id == exchange.provider_id))
    slug = session.scalar(select(Cooperative.slug).where(Cooperative.id == provider_coop))
    title = session.scalar(select(Post.title).where(Post.id == exchange.post_id)) or ""
    try:
        crossing = clearing.pay_across(
            session, payer=receiver, payee=f"{username}@{slug}", minutes=exchange.minutes,
            reason=f"Échange n° {exchange.id} : {title}"[:ledger.MAX_REASON],
            idempotency_key=f"exchange:{exchange.id}:payment",
        )
    except ledger.LimitExceeded as exc:
        if exc.code == "ledger.limit_below":
            raise ledger.LimitExceeded("exchange.limit_below", field="minutes",
                                       short_minutes=exc.params["short_minutes"],
                                       limit_minutes=exc.params["limit_minutes"], detail=exc.detail) from exc
        raise
    transfer = crossing.payer_transfer if receiver_coop == exchange.cooperative_id else crossing.payee_transfer
    now = _now(session)
    if exchange.state != "done":
        exchange.done_recorded_by_id, exchange.done_recorded_at = (actor.id if actor else None), now
    exchange.transfer_id, exchange.paid_at = transfer.id, now
    return _move(session, actor, exchange, "done", transfer_id=transfer.id, by_fund=False,
                 crossing_payment_id=crossing.payment.id)


def add_message(session: Session, *, actor: Member, exchange_id: int, body: str) -> ExchangeMessage:
    """A party writes in the exchange's thread."""
    exchange = get_exchange(session, actor=actor, exchange_id=exchange_id)
    if not _party(actor, exchange):
        raise PermissionDenied("exchange.not_party", field="exchange_id")
    problems = collector()
    _check_text(problems, "body", body or "", MAX_MESSAGE, required=True)
    problems.raise_if_any()
    message = ExchangeMessage(exchange_id=exchange.id, author_id=actor.id, body=body.strip())
    session.add(message)
    session.flush()
    session.refresh(message)
    _tell(session, actor, exchange, "message", key=f"exchange:{exchange.id}:message:{message.id}")
    return message


def ask_fund(session: Session, *, actor: Member, exchange_id: int) -> Exchange:
    """The receiver, supported by the solidarity fund, asks it to pay this exchange."""
    exchange = _acting(session, actor, exchange_id)
    if actor.id != exchange.receiver_id:
        raise PermissionDenied("exchange.receiver_only", field="exchange_id")
    if exchange.transfer_id is not None or exchange.state in ("cancelled", "disputed"):
        raise _wrong_state(exchange)
    if _active_support(session, actor.id) is None:
        raise PermissionDenied("exchange.not_supported", field="exchange_id")
    if _cooperative_of(session, exchange.provider_id) != actor.cooperative_id:
        raise Conflict("exchange.fund_not_across", field="exchange_id")
    exchange.by_fund = True
    _record(session, cooperative_id=exchange.cooperative_id, actor=actor, action="fund_asked",
            exchange_id=exchange.id)
    session.flush()
    return exchange


def exchange_out(session: Session, *, actor: Member, exchange: Exchange) -> dict[str, Any]:
    """An exchange as its parties see it: who, minutes, state, who must act next, its thread."""
    names = dict(session.execute(select(Member.id, Member.display_name).where(
        Member.id.in_([exchange.provider_id, exchange.receiver_id]))).all())
    here = acting(session)[1]
    for i in {exchange.provider_id, exchange.receiver_id} - set(names):
        coop = _cooperative_of(session, i)  # a party of another cooperative: their name, and its
        if coop is not None and here is not None:
            with acting_cooperative(session, coop):  # READS ACROSS: the other party's name only
                name = session.scalar(select(Member.display_name).where(Member.id == i))
            names[i] = f"{name} ({_cooperative_name(session, coop)})"
    post = session.get(Post, exchange.post_id)
    awaiting = None
    if exchange.state == "proposed":
        awaiting = "receiver" if exchange.opened_by_id == exchange.provider_id else "provider"
        awaiting = f"{awaiting}_acceptance"
    elif exchange.state == "accepted":
        awaiting = "done"
    elif exchange.state == "done" and exchange.transfer_id is None:
        awaiting = "receiver_confirmation"
    messages = session.scalars(select(ExchangeMessage).where(ExchangeMessage.exchange_id == exchange.id)
                               .order_by(ExchangeMessage.id)).all()
    role = ("provider" if actor.id == exchange.provider_id else
            "receiver" if actor.id == exchange.receiver_id else None)
    return {
        "id": exchange.id, "post_id": exchange.post_id, "post_title": post.title if post else "",
        "post_kind": post.kind if post else None, "minutes": exchange.minutes, "state": exchange.state,
        "provider": {"id": exchange.provider_id, "name": names.get(exchange.provider_id)},
        "receiver": {"id": exchange.receiver_id, "name": names.get(exchange.receiver_id)},
        "opened_by_id": exchange.opened_by_id, "my_role": role, "awaiting": awaiting,
        "done_recorded_by_id": exchange.done_recorded_by_id,
        "done_recorded_at": exchange.done_recorded_at.isoformat() if exchange.done_recorded_at else None,
        "paid": exchange.transfer_id is not None, "transfer_id": exchange.transfer_id,
        "paid_at": exchange.paid_at.isoformat() if exchange.paid_at else None,
        "paid_by": (None if exchange.transfer_id is None and not exchange.by_fund
                    else "solidarity_fund" if exchange.by_fund else "receiver"),
        "created_at": exchange.created_at.isoformat(),
        "messages": [{"id": m.id, "author_id": m.author_id, "author": names.get(m.author_id), "body": m.body,
                      "created_at": m.created_at.isoformat()} for m in messages],
    }


@dataclass
class SettleReport:
    """What ``settle_due`` did."""

    paid: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def settle_due(session: Session, *, now: datetime | None = None, days: int = SETTLE_AFTER_DAYS,
               progress: Callable[[int, int], None] | None = None) -> SettleReport:
    """Pay every exchange its provider recorded done ``days`` ago, undisputed and unconfirmed."""
    now = now or _now(session)
    due = list(session.scalars(select(Exchange.id).where(
        Exchange.state == "done", Exchange.transfer_id.is_(None),
        Exchange.done_recorded_at <= now - timedelta(days=days)).order_by(Exchange.id)))
    report = SettleReport()
    for i, exchange_id in enumerate(due, 1):
        with session.begin_nested():
            exchange = session.scalar(select(Exchange).where(Exchange.id == exchange_id).with_for_update()
                                      .execution_options(populate_existing=True))
            if exchange is not None and exchange.state == "done" and exchange.transfer_id is None:
                try:
                    with session.begin_nested():
                        _pay(session, None, exchange)
                    report.paid.append(exchange_id)
                except ledger.LimitExceeded as exc:
                    report.refused[exchange_id] = exc.text("en")
        if progress:
            progress(i, len(due))
    return report


# --- the solidarity fund ------------------------------------------------------------------------


def is_fund_steward(session: Session, actor: Member | None, cooperative_id: int) -> bool:
    """True for a steward of the cooperative's solidarity fund."""
    return is_member_of(actor, cooperative_id) and session.get(
        FundSteward, (cooperative_id, actor.id)) is not None  # type: ignore[union-attr]


def require_fund_steward(session: Session, actor: Member) -> None:
    """PermissionDenied unless the actor stewards their cooperative's solidarity fund."""
    if not is_fund_steward(session, actor, actor.cooperative_id):
        raise PermissionDenied("exchange.not_fund_steward")


def _coop_member(session: Session, actor: Member, member_id: int, name: str = "member_id") -> Member:
    member = session.get(Member, member_id)
    if member is None or member.cooperative_id != actor.cooperative_id or not member.is_active:
        raise ValidationFailed("exchange.no_member", field=name, member_id=member_id)
    return member


def appoint_steward(session: Session, *, actor: Member, member_id: int) -> FundSteward:
    """Coordinators appoint a steward of the solidarity fund."""
    require_coordinator(actor, actor.cooperative_id)
    member = _coop_member(session, actor, member_id)
    existing = session.get(FundSteward, (actor.cooperative_id, member.id))
    if existing is not None:
        return existing
    steward = FundSteward(cooperative_id=actor.cooperative_id, member_id=member.id, appointed_by_id=actor.id)
    session.add(steward)
    _record(session, cooperative_id=actor.cooperative_id, actor=actor, action="fund_steward",
            changes={"member_id": member.id})
    session.flush()
    return steward


def _active_support(session: Session, member_id: int) -> Support | None:
    return session.scalar(select(Support).where(Support.member_id == member_id, Support.ended_at.is_(None),
                                                Support.approved_at.is_not(None)))


def propose_support(session: Session, *, actor: Member, member_id: int, note: str = "") -> Support:
    """A fund steward proposes to support a member (active once a second steward approves)."""
    require_fund_steward(session, actor)
    member = _coop_member(session, actor, member_id)
    problems = collector()
    _check_text(problems, "note", note, MAX_MESSAGE)
    problems.raise_if_any()
    if session.scalar(select(Support.id).where(Support.member_id == member.id, Support.ended_at.is_(None))):
        raise Conflict("exchange.support_exists", field="member_id")
    support = Support(cooperative_id=actor.cooperative_id, member_id=member.id, proposed_by_id=actor.id,
                      note=note.strip())
    session.add(support)
    session.flush()
    _record(session, cooperative_id=actor.cooperative_id, actor=actor, action="support_proposed",
            support_id=support.id)
    return support


def approve_support(session: Session, *, actor: Member, support_id: int) -> Support:
    """A second, different fund steward approves a support (four eyes)."""
    require_fund_steward(session, actor)
    support = session.scalar(select(Support).where(Support.id == support_id).with_for_update())
    if support is None or support.cooperative_id != actor.cooperative_id:
        raise NotFound("exchange.no_support", field="support_id", support_id=support_id)
    if support.proposed_by_id == actor.id:
        raise ValidationFailed("exchange.four_eyes", field="support_id")
    if support.approved_at is not None or support.ended_at is not None:
        raise Conflict("exchange.support_decided", field="support_id")
    support.approved_by_id, support.approved_at = actor.id, _now(session)
    _record(session, cooperative_id=actor.cooperative_id, actor=actor, action="support_approved",
            support_id=support.id)
    session.flush()
    return support


def end_support(session: Session, *, actor: Member, support_id: int, reason: str = "") -> Support:
    """A fund steward ends a support, or withdraws one not yet approved; the member may end their own.

    One steward is enough: four eyes guard the fund's hours going out, and ending a support only
    stops them. An exchange the fund was asked to pay and not yet paid is then paid by the receiver.
    """
    require_member(actor, actor.cooperative_id)
    support = session.scalar(select(Support).where(Support.id == support_id).with_for_update())
    steward = is_fund_steward(session, actor, actor.cooperative_id)
    # Who is supported is private: to anyone else a support is not there at all.
    if support is None or support.cooperative_id != actor.cooperative_id or (
            not steward and support.member_id != actor.id):
        raise NotFound("exchange.no_support", field="support_id", support_id=support_id)
    problems = collector()
    _check_text(problems, "reason", reason, MAX_MESSAGE)
    problems.raise_if_any()
    if support.ended_at is not None:
        raise Conflict("exchange.support_ended", field="support_id")
    support.ended_at = _now(session)
    _record(session, cooperative_id=support.cooperative_id, actor=actor, action="support_ended",
            support_id=support.id, changes={"reason": (reason or "").strip(),
                                            "was_active": support.approved_at is not None})
    session.flush()
    return support


def give(session: Session, *, actor: Member, minutes: int, idempotency_key: str,
         from_cooperative: bool = False) -> Transfer:
    """A member gives hours to the solidarity fund; a coordinator gives from the cooperative account."""
    require_member(actor, actor.cooperative_id)
    problems = collector()
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 100 * 60:
        problems.add("minutes", "exchange.minutes_range", minimum=1, maximum=100 * 60)
    _check_text(problems, "idempotency_key", idempotency_key, ledger.MAX_KEY, required=True)
    problems.raise_if_any()
    fund = _fund_account(session, actor.cooperative_id)
    reason = "Don au fonds de solidarité"
    if from_cooperative:
        return ledger.adjust(session, actor=actor, minutes=minutes, reason=reason, account_id=fund.id,
                             idempotency_key=idempotency_key)
    return ledger.pay(session, payer=actor, minutes=minutes, reason=reason, to_account_id=fund.id,
                      idempotency_key=idempotency_key)


def solidarity_out(session: Session, *, actor: Member) -> dict[str, Any]:
    """The fund as this member may see it: its balance; their own support; every support for stewards."""
    require_member(actor, actor.cooperative_id)
    fund = _fund_account(session, actor.cooperative_id)
    steward = is_fund_steward(session, actor, actor.cooperative_id)
    mine = session.scalar(select(Support).where(Support.member_id == actor.id, Support.ended_at.is_(None)))
    out: dict[str, Any] = {
        "account_id": fund.id, "balance": fund.balance, "i_am_steward": steward,
        "my_support": None if mine is None else {"id": mine.id, "active": mine.approved_at is not None},
        "stewards": list(session.scalars(select(Member.display_name).join(
            FundSteward, FundSteward.member_id == Member.id).where(
            FundSteward.cooperative_id == actor.cooperative_id).order_by(Member.display_name))),
    }
    if steward:
        rows = session.execute(select(Support, Member.display_name).join(Member, Member.id == Support.member_id)
                               .where(Support.cooperative_id == actor.cooperative_id, Support.ended_at.is_(None))
                               .order_by(Support.id)).all()
        out["supports"] = [{"id": s.id, "member_id": s.member_id, "member": name, "note": s.note,
                            "proposed_by_id": s.proposed_by_id, "approved_by_id": s.approved_by_id,
                            "active": s.approved_at is not None} for s, name in rows]
    return out


def support_out(support: Support) -> dict[str, Any]:
    """A support as its stewards see it."""
    return {"id": support.id, "member_id": support.member_id, "note": support.note,
            "proposed_by_id": support.proposed_by_id, "approved_by_id": support.approved_by_id,
            "active": support.approved_at is not None and support.ended_at is None}

