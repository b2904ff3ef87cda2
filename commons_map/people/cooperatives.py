"""Cooperatives of one install: a new one in minutes, archived (never deleted), listed.

The CLI (``commons-map cooperatives``) calls these; the first coordinators come with the
cooperative, several of them, since no action is reserved to a single person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from commons_map.errors import Conflict, NotFound, ValidationFailed, collector
from commons_map.geo import to_ewkt
from commons_map.messages import LOCALES
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import MIN_PASSWORD, USERNAME_RE, create_member

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
MIN_FOUNDING_COORDINATORS = 2
"""A cooperative starts with several coordinators: the last one can never be removed either."""


@dataclass(frozen=True)
class Founder:
    """One of the first coordinators of a new cooperative."""

    username: str
    password: str
    display_name: str = ""
    email: str | None = None


def parse_bbox(value: str, *, field: str = "bbox") -> Polygon:
    """``minx,miny,maxx,maxy`` in WGS84 degrees as a polygon, or ValidationFailed saying why not."""
    parts = [p.strip() for p in (value or "").split(",")]
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise ValidationFailed("cooperatives.bbox_form", field=field, given=value) from None
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise ValidationFailed("cooperatives.bbox_range", field=field, given=value)
    return box(minx, miny, maxx, maxy)


def as_territory(geom: BaseGeometry | None) -> MultiPolygon | None:
    """A territory as the cooperatives table holds it (a valid WGS84 multipolygon), or None."""
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    multi = MultiPolygon([geom]) if isinstance(geom, Polygon) else geom
    minx, miny, maxx, maxy = multi.bounds
    if not multi.is_valid or minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return None
    return multi


def not_archived(cooperative_id: Any) -> ColumnElement[bool]:
    """SQL predicate: the row's cooperative is not archived (public reads hide archived ones)."""
    co = aliased(Cooperative)  # its own alias, never correlated away by a query that joins cooperatives
    return ~select(co.id).where(co.id == cooperative_id, co.archived_at.is_not(None)).correlate_except(co).exists()


def get_by_slug(session: Session, slug: str, *, field: str = "cooperative", active: bool = True) -> Cooperative:
    """The cooperative with that slug; NotFound when none, Conflict when archived (``active``)."""
    coop = session.scalar(select(Cooperative).where(Cooperative.slug == (slug or "").strip().lower()))
    if coop is None:
        raise NotFound("cooperatives.unknown", field=field, cooperative=slug)
    if active and coop.archived_at is not None:
        raise Conflict("cooperatives.archived", field=field, cooperative=coop.slug)
    return coop


def add_cooperative(
    session: Session,
    *,
    slug: str,
    name: str,
    territory: BaseGeometry | None,
    timezone: str,
    languages: list[str],
    coordinators: list[Founder],
    description: str = "",
) -> Cooperative:
    """A new cooperative with its territory and its first coordinators; all or nothing."""
    slug = (slug or "").strip().lower()
    langs = [lang.strip().lower() for lang in languages if lang.strip()]
    problems = collector()
    if not SLUG_RE.match(slug):
        problems.add("slug", "cooperatives.slug_form", slug=slug)
    if not (name or "").strip():
        problems.add("name", "form.empty")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add("timezone", "cooperatives.timezone_unknown", timezone=timezone)
    if not langs or any(lang not in LOCALES for lang in langs):
        problems.add("languages", "cooperatives.languages", given=langs, known=list(LOCALES))
    multi = as_territory(territory)
    if multi is None:
        problems.add("territory", "cooperatives.territory_invalid")
    if len(coordinators) < MIN_FOUNDING_COORDINATORS:
        problems.add("coordinators", "cooperatives.coordinators_few", count=len(coordinators),
                     minimum=MIN_FOUNDING_COORDINATORS)
    usernames = [f.username.strip().lower() for f in coordinators]
    for i, (founder, username) in enumerate(zip(coordinators, usernames, strict=True)):
        where = f"coordinators.{i}"  # the dotted path the API gives pydantic's own (issue 18 item 8)
        if not USERNAME_RE.match(username):
            problems.add(f"{where}.username", "people.username_form")
        elif usernames.index(username) != i:
            problems.add(f"{where}.username", "cooperatives.coordinator_twice", username=username)
        if len(founder.password) < MIN_PASSWORD:
            problems.add(f"{where}.password", "people.password_short", minimum=MIN_PASSWORD)
    problems.raise_if_any("cooperatives.add_invalid")
    if session.scalar(select(func.count()).where(Cooperative.slug == slug)):
        raise Conflict("cooperatives.slug_taken", field="slug", slug=slug)
    taken = session.scalars(select(Member.username).where(Member.username.in_(usernames))).all()
    if taken:
        raise Conflict("people.username_taken", field="coordinators", username=", ".join(sorted(taken)))
    assert multi is not None
    with session.begin_nested():
        coop = Cooperative(slug=slug, name=name.strip(), description=description.strip(),
                           territory=to_ewkt(multi), timezone=timezone, settings={"languages": langs})
        session.add(coop)
        session.flush()
        for founder, username in zip(coordinators, usernames, strict=True):
            create_member(session, cooperative=coop, username=username,
                          display_name=founder.display_name or username, password=founder.password,
                          roles={"coordinator"}, email=founder.email, locale=langs[0], bootstrap=True)
    return coop


def archive_cooperative(session: Session, *, slug: str) -> Cooperative:
    """Hide a cooperative everywhere (no sign-in, no public data, not listed); nothing is deleted."""
    coop = get_by_slug(session, slug, field="slug", active=False)
    if coop.archived_at is not None:
        raise Conflict("cooperatives.already_archived", field="slug", cooperative=coop.slug)
    # The row lock makes two archivings meet one after the other.
    session.execute(select(Cooperative.id).where(Cooperative.id == coop.id).with_for_update())
    coop.archived_at = func.now()
    session.flush()
    session.refresh(coop, ["archived_at"])
    return coop


def list_cooperatives(session: Session, *, include_archived: bool = False) -> list[dict[str, Any]]:
    """The cooperatives of the install with their member counts (archived ones only on request)."""
    members = (select(Member.cooperative_id, func.count().label("n")).where(Member.is_active)
               .group_by(Member.cooperative_id).subquery())
    stmt = (select(Cooperative.id, Cooperative.slug, Cooperative.name, Cooperative.timezone, Cooperative.settings,
                   Cooperative.archived_at, func.coalesce(members.c.n, 0))
            .outerjoin(members, members.c.cooperative_id == Cooperative.id).order_by(Cooperative.slug))
    if not include_archived:
        stmt = stmt.where(Cooperative.archived_at.is_(None))
    return [
        {"id": i, "slug": s, "name": n, "timezone": tz, "languages": list((st or {}).get("languages", ["fr", "en"])),
         "members": int(count), "archived": archived is not None}
        for i, s, n, tz, st, archived, count in session.execute(stmt)
    ]
