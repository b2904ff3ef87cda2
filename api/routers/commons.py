"""/api/v1/commons and /api/v1/kinds: the register over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import CurrentMember, OptionalMember, SessionDep
from commons_map.db import DbId
from commons_map.errors import ValidationFailed
from commons_map.register import service
from commons_map.register.schemas import CommonsIn, CommonsPatch, FeatureCollection, HistoryOut, KindIn, KindOut

router = APIRouter(prefix="/api/v1", tags=["commons"])


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    """'minLon,minLat,maxLon,maxLat' as four floats, or a ValidationFailed."""
    if raw is None:
        return None
    try:
        parts = tuple(float(p) for p in raw.split(","))
    except ValueError as exc:
        raise ValidationFailed("register.bbox_form", field="bbox") from exc
    if len(parts) != 4:
        raise ValidationFailed("register.bbox_form", field="bbox")
    return parts  # type: ignore[return-value]


def parse_near(raw: str | None, distance: float | None) -> service.Near | None:
    """'lon,lat' and a distance in metres."""
    if raw is None:
        if distance is not None:
            raise ValidationFailed("register.distance_needs_near", field="distance")
        return None
    try:
        lon, lat = (float(p) for p in raw.split(","))
    except ValueError as exc:
        raise ValidationFailed("register.near_form", field="near") from exc
    return service.Near(lon=lon, lat=lat, distance_m=distance if distance is not None else 1000.0)


@router.get("/kinds", response_model=list[KindOut], tags=["kinds"])
def kinds(session: SessionDep, member: OptionalMember) -> list[Any]:
    """The kinds of commons: the shipped ones, and those my cooperative added (signed in)."""
    return service.list_kinds(session, cooperative_id=member.cooperative_id if member is not None else None)


@router.post("/kinds", response_model=KindOut, status_code=201, tags=["kinds"])
def add_kind(body: KindIn, session: SessionDep, member: CurrentMember) -> Any:
    """Add a kind of commons for my cooperative (coordinators): code, French and English labels."""
    return service.add_kind(session, actor=member, data=body)


class ArchiveIn(BaseModel):
    """Why a commons is archived."""

    reason: str = ""


@router.get("/commons", response_model=FeatureCollection)
def list_commons(
    session: SessionDep,
    member: OptionalMember,
    kind: str | None = None,
    category: str | None = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    near: Annotated[str | None, Query(description="lon,lat")] = None,
    distance: Annotated[float | None, Query(description="metres from `near` (default 1000)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="text search in name and description")] = None,
    parent_id: DbId | None = None,
    cooperative_id: DbId | None = None,
    include_archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """The commons I may see, as a GeoJSON FeatureCollection."""
    return service.list_commons(
        session,
        actor=member,
        cooperative_id=cooperative_id,
        kind=kind,
        category=category,
        bbox=parse_bbox(bbox),
        near=parse_near(near, distance),
        q=q,
        parent_id=parent_id,
        include_archived=include_archived,
        limit=limit,
        offset=offset,
    )


@router.post("/commons", status_code=201)
def create_commons(body: CommonsIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Register a new commons; answers its GeoJSON Feature."""
    commons = service.create_commons(session, actor=member, data=body)
    return service.commons_feature(session, actor=member, commons_id=commons.id)


@router.get("/commons/{commons_id}")
def get_commons(commons_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """One commons as a GeoJSON Feature."""
    return service.commons_feature(session, actor=member, commons_id=commons_id)


@router.patch("/commons/{commons_id}")
def update_commons(
    commons_id: DbId, body: CommonsPatch, session: SessionDep, member: CurrentMember
) -> dict[str, Any]:
    """Change a commons (its stewards and the coordinators)."""
    service.update_commons(session, actor=member, commons_id=commons_id, patch=body)
    return service.commons_feature(session, actor=member, commons_id=commons_id)


@router.post("/commons/{commons_id}/archive")
def archive_commons(
    commons_id: DbId, session: SessionDep, member: CurrentMember, body: ArchiveIn | None = None
) -> dict[str, Any]:
    """Archive a commons (there is no hard delete)."""
    service.archive_commons(session, actor=member, commons_id=commons_id, reason=body.reason if body else "")
    return service.commons_feature(session, actor=member, commons_id=commons_id)


@router.get("/commons/{commons_id}/history", response_model=list[HistoryOut])
def commons_history(commons_id: DbId, session: SessionDep, member: OptionalMember) -> list[dict[str, Any]]:
    """Every change to a commons, oldest first."""
    return service.history(session, actor=member, commons_id=commons_id)
