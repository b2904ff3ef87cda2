"""The rules of the register: who sees which commons, what a valid commons is, its history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely import affinity
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, or_, select, true
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.geo import check_geometry_class, parse_geojson_geometry, to_ewkt
from commons_map.people.cooperatives import not_archived
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of, is_member_of
from commons_map.people.service import refuse_direct_role_change
from commons_map.register.models import Commons, CommonsHistory, CommonsKind, Steward
from commons_map.register.schemas import CommonsIn, CommonsPatch, KindIn
from commons_map.settings import get_settings

# Approximate places are shown to outsiders snapped to a grid of this many degrees (~500 m).
APPROXIMATE_GRID_DEG = 0.005
MAX_PAGE = 1000


# --- who sees what -------------------------------------------------------------------------


def visible_clause(actor: Member | None, table: Any = Commons) -> ColumnElement[bool]:
    """SQL predicate: the commons rows of ``table`` that ``actor`` may see (archived aside)."""
    public = and_(table.visibility == "public", not_archived(table.cooperative_id))
    if actor is None or not actor.is_active:
        return public
    own = table.cooperative_id == actor.cooperative_id
    if actor.is_coordinator:
        private_ok: ColumnElement[bool] = true()
    else:
        private_ok = exists().where(
            Steward.commons_id == table.id, Steward.member_id == actor.id
        )
    return or_(
        public,
        and_(own, table.visibility == "members"),
        and_(own, table.visibility == "private", private_ok),
    )


def can_see(session: Session, actor: Member | None, commons: Commons) -> bool:
    """True when the actor may see this commons."""
    return sees_at(actor, commons, commons.visibility)


def sees_at(actor: Member | None, commons: Commons, visibility: str | None) -> bool:
    """True when the actor may see this commons while it has (or had) ``visibility``."""
    if visibility == "public":
        return True
    if not is_member_of(actor, commons.cooperative_id):
        return False
    if visibility == "members":
        return True
    assert actor is not None
    return actor.is_coordinator or actor.id in commons.steward_ids


def can_edit(actor: Member | None, commons: Commons) -> bool:
    """Stewards of the commons and the cooperative's coordinators edit it."""
    if not is_member_of(actor, commons.cooperative_id):
        return False
    assert actor is not None
    return actor.is_coordinator or actor.id in commons.steward_ids


def get_commons(session: Session, *, actor: Member | None, commons_id: int) -> Commons:
    """The commons, when the actor may see it; NotFound otherwise (never says it exists)."""
    commons = session.get(Commons, commons_id)
    if commons is None or not can_see(session, actor, commons):
        raise NotFound("register.no_commons", field="commons_id", commons_id=commons_id)
    if not is_member_of(actor, commons.cooperative_id) and (
        commons.archived_at is not None
        or session.scalar(select(Cooperative.archived_at).where(Cooperative.id == commons.cooperative_id))
    ):  # an archived commons, or one of an archived cooperative, is gone for outsiders
        raise NotFound("register.no_commons", field="commons_id", commons_id=commons_id)
    return commons


# --- kinds ------------------------------------------------------------------------------------


def list_kinds(session: Session, *, cooperative_id: int | None = None) -> list[CommonsKind]:
    """The kinds of commons, ordered by category then code: the shipped ones and, given a
    cooperative, the ones it added (without one: every kind, to name any commons)."""
    stmt = select(CommonsKind).order_by(CommonsKind.category, CommonsKind.code)
    if cooperative_id is not None:
        stmt = stmt.where(or_(CommonsKind.cooperative_id.is_(None), CommonsKind.cooperative_id == cooperative_id))
    return list(session.scalars(stmt))


def get_kind(session: Session, code: str, *, field: str = "kind", cooperative_id: int | None = None) -> CommonsKind:
    """The kind with that code, or a ValidationFailed listing the known ones. Given a cooperative,
    another cooperative's kind is unknown there."""
    kind = session.get(CommonsKind, code)
    if kind is None or (cooperative_id is not None and kind.cooperative_id not in (None, cooperative_id)):
        known = [k.code for k in list_kinds(session, cooperative_id=cooperative_id)]
        raise ValidationFailed("register.unknown_kind", field=field, kind=code, known=known)
    return kind


def add_kind(session: Session, *, actor: Member | None, data: KindIn) -> CommonsKind:
    """A new kind of commons for the coordinator's cooperative (its members use it; the shipped
    kinds are everyone's). French and English labels; a code unique in the install."""
    if actor is None or not actor.is_coordinator:
        raise PermissionDenied("register.add_kind_coordinators")
    problems = collector()
    for label in ("label_fr", "label_en"):
        if not getattr(data, label).strip():
            problems.add(label, "form.empty")
    for i, parent in enumerate(data.parent_kinds):
        if parent == data.code:
            continue
        found = session.get(CommonsKind, parent)
        if found is None or found.cooperative_id not in (None, actor.cooperative_id):
            problems.add(f"parent_kinds.{i}", "register.unknown_kind", kind=parent,
                         known=[k.code for k in list_kinds(session, cooperative_id=actor.cooperative_id)])
    if data.requires_parent and not data.parent_kinds:
        problems.add("parent_kinds", "register.kind_needs_parent_kinds")
    problems.raise_if_any()
    kind = CommonsKind(
        code=data.code, cooperative_id=actor.cooperative_id, label_fr=data.label_fr.strip(),
        label_en=data.label_en.strip(), category=data.category, geometry=data.geometry,
        parent_kinds=list(data.parent_kinds), requires_parent=data.requires_parent, may_be_kept=data.may_be_kept,
        default_visibility=data.default_visibility,
    )
    try:
        with session.begin_nested():
            session.add(kind)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("register.kind_exists", field="code", kind=data.code) from exc
    return kind


# --- checks on the way in ---------------------------------------------------------------------


def _check_in_territory(session: Session, coop: Cooperative, geom: BaseGeometry) -> None:
    """Refuse a geometry far outside the territory, suggesting swapped coordinates."""
    margin = get_settings().territory_margin_m
    territory = select(Cooperative.territory).where(Cooperative.id == coop.id).scalar_subquery()

    def near(g: BaseGeometry) -> bool:
        return bool(
            session.scalar(
                select(
                    func.ST_DWithin(
                        func.Geography(territory),
                        func.Geography(func.ST_GeomFromEWKT(to_ewkt(g))),
                        margin,
                    )
                )
            )
        )

    if near(geom):
        return
    code = "register.outside_territory"
    swapped = affinity.affine_transform(geom, [0, 1, 1, 0, 0, 0])
    try:
        if swapped.is_valid and near(swapped):
            code = "register.outside_territory_swapped"
    except Exception:  # noqa: BLE001 - a swapped copy out of range is just no hint
        code = "register.outside_territory"
    raise ValidationFailed(code, field="geometry", km=margin / 1000, cooperative=coop.name)


def _check_parent(
    session: Session, coop: Cooperative, kind: CommonsKind, parent_id: int | None, geom: BaseGeometry | None
) -> Commons | None:
    if parent_id is None:
        if kind.requires_parent:
            raise ValidationFailed("register.parent_required", field="parent_id", kind=kind.code,
                                   parent_kinds=list(kind.parent_kinds))
        return None
    parent = session.get(Commons, parent_id)
    if parent is None or parent.cooperative_id != coop.id or parent.archived_at is not None:
        raise ValidationFailed("register.no_parent", field="parent_id", commons_id=parent_id)
    if kind.parent_kinds and parent.kind_code not in kind.parent_kinds:
        raise ValidationFailed("register.parent_wrong_kind", field="parent_id", kind=kind.code,
                               parent_kinds=list(kind.parent_kinds), commons_id=parent_id, parent_kind=parent.kind_code)
    if geom is not None and parent.geom is not None and geom.geom_type in ("Polygon", "MultiPolygon"):
        share = session.scalar(
            select(
                func.ST_Area(func.ST_Intersection(func.ST_GeomFromEWKT(to_ewkt(geom)), Commons.geom))
                / func.nullif(func.ST_Area(func.ST_GeomFromEWKT(to_ewkt(geom))), 0)
            ).where(Commons.id == parent.id)
        )
        if share is None or share < 0.9:
            raise ValidationFailed("register.outside_parent", field="geometry", parent=parent.name,
                                   percent=round(100 * (share or 0)))
    return parent


def _check_kept_at(session: Session, coop: Cooperative, kind: CommonsKind, kept_at_id: int | None) -> None:
    if kept_at_id is None:
        return
    if not kind.may_be_kept:
        raise ValidationFailed("register.not_kept", field="kept_at_id", kind=kind.code)
    place = session.get(Commons, kept_at_id)
    if place is None or place.cooperative_id != coop.id or place.archived_at is not None:
        raise ValidationFailed("register.no_place", field="kept_at_id", commons_id=kept_at_id)
    if place.kind.category not in ("place", "housing") or place.kind.may_be_kept:
        raise ValidationFailed("register.not_a_place", field="kept_at_id", commons_id=kept_at_id,
                               place_kind=place.kind_code)


def _check_stewards(session: Session, coop: Cooperative, ids: list[int]) -> list[int]:
    ids = sorted(set(ids))
    if not ids:
        return ids
    found = set(
        session.scalars(select(Member.id).where(Member.id.in_(ids), Member.cooperative_id == coop.id))
    )
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed("register.no_steward", field="steward_ids", member_ids=missing)
    return ids


def _geometry(
    session: Session, coop: Cooperative, kind: CommonsKind, raw: dict | None, kept_at_id: int | None
) -> BaseGeometry | None:
    if raw is None:
        if kind.may_be_kept and kept_at_id is not None:
            return None
        code = "register.geometry_or_place" if kind.may_be_kept else "register.geometry_required"
        raise ValidationFailed(code, field="geometry", kind=kind.code)
    geom = parse_geojson_geometry(raw)
    check_geometry_class(geom, kind.geometry, kind.code)
    _check_in_territory(session, coop, geom)
    return geom


# --- history ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _record(session: Session, commons: Commons, actor: Member | None, action: str, changes: dict) -> None:
    session.add(
        CommonsHistory(
            commons_id=commons.id,
            member_id=actor.id if actor else None,
            action=action,
            changes={k: [_jsonable(a), _jsonable(b)] for k, (a, b) in changes.items()},
        )
    )


# What places a commons on the map: outsiders never read these of an approximate place.
PLACING = ("geometry", "kept_at_id", "location_precision")


def history(session: Session, *, actor: Member | None, commons_id: int) -> list[dict[str, Any]]:
    """The changes to a commons, oldest first, filtered like the commons itself: a value is shown only
    to whom could see the commons when it held that value (a name it had while private stays with
    those who saw it then), and outsiders never read where an approximate place exactly is; what is
    withheld is named in ``withheld``. Only members see who made the changes."""
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    rows = session.execute(
        select(CommonsHistory, Member.display_name)
        .outerjoin(Member, Member.id == CommonsHistory.member_id)
        .where(CommonsHistory.commons_id == commons.id)
        .order_by(CommonsHistory.at, CommonsHistory.id)
    ).all()
    member = is_member_of(actor, commons.cooperative_id)
    visibility = precision = None  # as the commons was before each change, replayed from its creation
    out = []
    for h, name in rows:
        changes: dict[str, list[Any]] = dict(h.changes or {})
        after_vis = changes.get("visibility", [None, visibility])[1] or visibility or commons.visibility
        after_prec = changes.get("location_precision", [None, precision])[1] or precision or "exact"
        moments = ((visibility, precision), (after_vis, after_prec))
        shown: dict[str, list[Any]] = {}
        withheld = []
        for key, values in changes.items():
            pair = list(values)
            for i, (vis, prec) in enumerate(moments):
                hidden = not sees_at(actor, commons, vis) or (key in PLACING and prec == "approximate"
                                                              and not member)
                if hidden and pair[i] is not None:
                    pair[i] = None
                    withheld.append(key)
            if pair != [None, None] or values == [None, None]:
                shown[key] = pair
        visibility, precision = after_vis, after_prec
        out.append({
            "at": h.at.isoformat(),
            "member": name if member else None,
            "action": h.action,
            "changes": shown,
            "withheld": sorted(set(withheld)),
        })
    return out


# --- create, update, archive ------------------------------------------------------------------


def create_commons(
    session: Session, *, actor: Member | None, data: CommonsIn, cooperative: Cooperative | None = None
) -> Commons:
    """A new commons, checked against every rule of the register, with its history row."""
    if actor is None:
        raise PermissionDenied("register.sign_in_to_add")
    coop = cooperative or session.get(Cooperative, actor.cooperative_id)
    assert coop is not None
    if not is_member_of(actor, coop.id):
        raise PermissionDenied("register.add_members_only")
    kind = get_kind(session, data.kind, cooperative_id=coop.id)
    geom = _geometry(session, coop, kind, data.geometry, data.kept_at_id)
    parent = _check_parent(session, coop, kind, data.parent_id, geom)
    _check_kept_at(session, coop, kind, data.kept_at_id)
    if not is_coordinator_of(actor, coop.id) and not (parent is not None and actor.id in parent.steward_ids):
        raise PermissionDenied("register.add_not_allowed")
    stewards = _check_stewards(session, coop, data.steward_ids)
    if stewards:
        refuse_direct_role_change(session, coop.id, field="steward_ids")
    if data.external_id and session.scalar(
        select(Commons.id).where(Commons.cooperative_id == coop.id, Commons.external_id == data.external_id)
    ):
        raise Conflict("register.external_id_used", field="external_id", external_id=data.external_id)
    commons = Commons(
        cooperative_id=coop.id,
        kind_code=kind.code,
        name=data.name.strip(),
        description=data.description,
        geom=to_ewkt(geom) if geom is not None else None,
        parent_id=data.parent_id,
        kept_at_id=data.kept_at_id,
        state=data.state,
        rules_of_use=data.rules_of_use,
        tenure=data.tenure,
        tenure_end=data.tenure_end,
        tenure_notes=data.tenure_notes,
        visibility=data.visibility or kind.default_visibility,
        location_precision=data.location_precision,
        external_id=data.external_id,
        steward_rows=[Steward(member_id=i) for i in stewards],
    )
    session.add(commons)
    session.flush()
    snapshot = data.model_dump(mode="json", exclude_none=True)
    snapshot["visibility"] = commons.visibility  # as decided (the kind's default when none was given)
    _record(session, commons, actor, "created", {k: (None, v) for k, v in snapshot.items()})
    session.flush()
    return commons


PATCHABLE = (
    "name", "description", "state", "rules_of_use", "tenure", "tenure_end", "tenure_notes",
    "visibility", "location_precision", "external_id", "parent_id", "kept_at_id",
)


def update_commons(session: Session, *, actor: Member | None, commons_id: int, patch: CommonsPatch) -> Commons:
    """Change a commons; every change leaves a history row with old and new values."""
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    if not can_edit(actor, commons):
        raise PermissionDenied("register.edit_not_allowed")
    if commons.archived_at is not None:
        raise Conflict("register.archived", field="commons_id")
    coop = session.get(Cooperative, commons.cooperative_id)
    assert coop is not None
    given = patch.model_dump(exclude_unset=True)
    kind = get_kind(session, given.get("kind") or commons.kind_code, cooperative_id=commons.cooperative_id)
    changes: dict[str, tuple[Any, Any]] = {}
    if kind.code != commons.kind_code:
        changes["kind"] = (commons.kind_code, kind.code)
        commons.kind_code = kind.code
    kept_at_id = given.get("kept_at_id", commons.kept_at_id)
    geom: BaseGeometry | None = None
    if "geometry" in given:
        geom = _geometry(session, coop, kind, given["geometry"], kept_at_id)
        old = session.scalar(select(func.ST_AsGeoJSON(Commons.geom)).where(Commons.id == commons.id))
        changes["geometry"] = (json.loads(old) if old else None, given["geometry"])
        commons.geom = to_ewkt(geom) if geom is not None else None
    elif "kind" in given and commons.geom is not None:
        current = session.scalar(select(func.ST_AsGeoJSON(Commons.geom)).where(Commons.id == commons.id))
        geom = parse_geojson_geometry(json.loads(current))
        check_geometry_class(geom, kind.geometry, kind.code)
    if "parent_id" in given or "kind" in given:
        _check_parent(session, coop, kind, given.get("parent_id", commons.parent_id), geom)
    if "kept_at_id" in given:
        _check_kept_at(session, coop, kind, kept_at_id)
    for name in PATCHABLE:
        if name in given and getattr(commons, name) != given[name]:
            if given[name] is None and not Commons.__table__.c[name].nullable:
                raise ValidationFailed("form.empty", field=name)  # `null` for a text always given
            changes[name] = (getattr(commons, name), given[name])
            setattr(commons, name, given[name])
    if "steward_ids" in given and given["steward_ids"] is not None:
        new_ids = _check_stewards(session, coop, given["steward_ids"])
        old_ids = sorted(commons.steward_ids)
        if new_ids != old_ids:
            refuse_direct_role_change(session, coop.id, field="steward_ids")
            changes["steward_ids"] = (old_ids, new_ids)
            commons.steward_rows = [Steward(member_id=i) for i in new_ids]
    if not changes:
        return commons
    session.flush()
    _record(session, commons, actor, "updated", changes)
    session.flush()
    session.refresh(commons)
    return commons


def archive_commons(session: Session, *, actor: Member | None, commons_id: int, reason: str = "") -> Commons:
    """Archive a commons (no hard delete): it leaves the lists, its history stays."""
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    if not can_edit(actor, commons):
        raise PermissionDenied("register.archive_not_allowed")
    if commons.archived_at is not None:
        return commons
    live_children = session.scalar(
        select(func.count()).where(
            or_(Commons.parent_id == commons.id, Commons.kept_at_id == commons.id),
            Commons.archived_at.is_(None),
        )
    )
    if live_children:
        raise Conflict("register.has_children", field="commons_id", count=live_children)
    commons.archived_at = datetime.now(UTC)
    _record(session, commons, actor, "archived", {"archived_at": (None, commons.archived_at), "reason": (None, reason)})
    session.flush()
    return commons


# --- listing as GeoJSON ----------------------------------------------------------------------


@dataclass(frozen=True)
class Near:
    """Within ``distance_m`` metres of a point."""

    lon: float
    lat: float
    distance_m: float


def _shown_geometry(actor: Member | None, member_of_row: ColumnElement[bool]) -> tuple[Any, Any, Any]:
    """The place alias to join, the geometry a viewer gets, and the join condition.

    A tool kept at a place shows the place's location (when the viewer may see the place);
    a commons marked approximate, or kept at a place marked approximate, is shown to outsiders
    as a point snapped to a coarse grid. Filters use the shown geometry too, so that probing
    with small boxes cannot find the exact spot.
    """
    place = aliased(Commons)
    located = func.coalesce(Commons.geom, place.geom)
    snapped = func.ST_SnapToGrid(func.ST_PointOnSurface(located), APPROXIMATE_GRID_DEG)
    approximate = or_(
        Commons.location_precision == "approximate",
        and_(Commons.geom.is_(None), place.location_precision == "approximate"),
    )
    shown = case((and_(approximate, ~member_of_row), snapped), else_=located)
    join_on = and_(place.id == Commons.kept_at_id, visible_clause(actor, place))
    return place, shown, join_on


def list_commons(
    session: Session,
    *,
    actor: Member | None,
    cooperative_id: int | None = None,
    kind: str | None = None,
    category: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    near: Near | None = None,
    q: str | None = None,
    parent_id: int | None = None,
    include_archived: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """The commons the actor may see, filtered, as a GeoJSON FeatureCollection with paging."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed("form.range", field="limit", minimum=1, maximum=MAX_PAGE)
    if offset < 0:
        raise ValidationFailed("form.negative", field="offset")
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValidationFailed("register.bbox_range", field="bbox")
    if near is not None:
        if not (-180 <= near.lon <= 180 and -90 <= near.lat <= 90):
            raise ValidationFailed("register.near_range", field="near")
        if not 0 < near.distance_m <= 500_000:
            raise ValidationFailed("register.distance_range", field="distance", maximum=500_000)

    member_of_row = (
        Commons.cooperative_id == actor.cooperative_id if actor is not None else false()
    )
    place, geom_expr, join_on = _shown_geometry(actor, member_of_row)
    conditions: list[ColumnElement[bool]] = [visible_clause(actor)]
    if cooperative_id is not None:
        conditions.append(Commons.cooperative_id == cooperative_id)
    if not include_archived or actor is None:
        conditions.append(Commons.archived_at.is_(None))
    else:
        conditions.append(or_(Commons.archived_at.is_(None), member_of_row))
    if kind:
        conditions.append(Commons.kind_code == kind)
    if category:
        conditions.append(CommonsKind.category == category)
    if parent_id is not None:
        conditions.append(Commons.parent_id == parent_id)
    located = func.coalesce(Commons.geom, place.geom)
    if bbox is not None:
        envelope = func.ST_MakeEnvelope(*bbox, 4326)
        # The index narrows on the stored geometry (widened by the snapping distance);
        # the test itself is on what this viewer is shown.
        conditions.append(located.op("&&")(func.ST_Expand(envelope, APPROXIMATE_GRID_DEG)))
        conditions.append(func.ST_Intersects(geom_expr, envelope))
    if near is not None:
        conditions.append(
            func.ST_DWithin(
                func.Geography(geom_expr),
                func.Geography(func.ST_SetSRID(func.ST_MakePoint(near.lon, near.lat), 4326)),
                near.distance_m,
            )
        )
    if q:
        conditions.append(
            or_(
                Commons.search.op("@@")(func.websearch_to_tsquery(literal("french").cast(REGCONFIG), q)),
                Commons.name.ilike("%" + _escape_like(q) + "%"),
            )
        )
    stmt = (
        select(
            Commons,
            func.ST_AsGeoJSON(geom_expr, 7).label("geojson"),
            func.count().over().label("matched"),
        )
        .join(CommonsKind, CommonsKind.code == Commons.kind_code)
        .outerjoin(place, join_on)
        .where(*conditions)
        .order_by(Commons.id)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(stmt).all()
    matched = rows[0].matched if rows else _count(session, conditions, place, join_on)
    names = _steward_names(session, actor, [r.Commons for r in rows])
    features = [
        feature(r.Commons, r.geojson, actor=actor, steward_names=names) for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "numberMatched": matched,
        "limit": limit,
        "offset": offset,
    }


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _count(session: Session, conditions: list, place: Any, join_on: Any) -> int:
    stmt = (
        select(func.count())
        .select_from(Commons)
        .join(CommonsKind, CommonsKind.code == Commons.kind_code)
        .outerjoin(place, join_on)
        .where(*conditions)
    )
    return int(session.scalar(stmt) or 0)


def _steward_names(session: Session, actor: Member | None, rows: list[Commons]) -> dict[int, str]:
    ids = {s.member_id for c in rows for s in c.steward_rows if is_member_of(actor, c.cooperative_id)}
    if not ids:
        return {}
    return {mid: name for mid, name in session.execute(
        select(Member.id, Member.display_name).where(Member.id.in_(ids)))}


def feature(
    commons: Commons, geojson: str | None, *, actor: Member | None, steward_names: dict[int, str]
) -> dict[str, Any]:
    """One commons as a GeoJSON Feature, with what this viewer may know of it."""
    insider = is_member_of(actor, commons.cooperative_id)
    props: dict[str, Any] = {
        "kind": commons.kind_code,
        "category": commons.kind.category,
        "name": commons.name,
        "description": commons.description,
        "state": commons.state,
        "rules_of_use": commons.rules_of_use,
        "tenure": commons.tenure,
        "tenure_end": commons.tenure_end.isoformat() if commons.tenure_end else None,
        "visibility": commons.visibility,
        "location_precision": commons.location_precision,
        "parent_id": commons.parent_id,
        "kept_at_id": commons.kept_at_id,
        "area_m2": round(commons.area_m2, 1) if commons.area_m2 is not None else None,
        "cooperative_id": commons.cooperative_id,
    }
    if insider:
        props["stewards"] = [
            {"id": s.member_id, "name": steward_names.get(s.member_id)} for s in commons.steward_rows
        ]
        props["tenure_notes"] = commons.tenure_notes
        props["external_id"] = commons.external_id
        props["archived_at"] = commons.archived_at.isoformat() if commons.archived_at else None
        props["created_at"] = commons.created_at.isoformat() if commons.created_at else None
        props["updated_at"] = commons.updated_at.isoformat() if commons.updated_at else None
    return {
        "type": "Feature",
        "id": commons.id,
        "geometry": json.loads(geojson) if geojson else None,
        "properties": props,
    }


def commons_feature(session: Session, *, actor: Member | None, commons_id: int) -> dict[str, Any]:
    """One commons the actor may see, as a GeoJSON Feature."""
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    place, shown, join_on = _shown_geometry(actor, literal(is_member_of(actor, commons.cooperative_id)))
    geojson = session.scalar(
        select(func.ST_AsGeoJSON(shown, 7)).outerjoin(place, join_on).where(Commons.id == commons.id)
    )
    return feature(commons, geojson, actor=actor, steward_names=_steward_names(session, actor, [commons]))
