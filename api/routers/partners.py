"""/api/v1/partners: the partner initiatives a cooperative shows on its public map; and their cached
layers at /maps/partners/{id}/{collection}.geojson, served from our database (never from the partner)."""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import CurrentMember, SessionDep, SettingsDep
from api.errors import request_locale
from api.routers.ogc import respond
from commons_map.db import DbId
from commons_map.partners import service
from commons_map.partners.schemas import PartnerIn

router = APIRouter(prefix="/api/v1/partners", tags=["partners"])
public_router = APIRouter(prefix="/maps/partners", tags=["maps"])


@router.get("")
def list_partners(request: Request, session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """My cooperative's partners, with how their last reading went (members)."""
    rows = service.list_partners(session, actor=member, cooperative=member.cooperative)
    return [service.as_dict(p, request_locale(request)) for p in rows]


@router.post("", status_code=201)
def add_partner(body: PartnerIn, request: Request, session: SessionDep, member: CurrentMember,
                settings: SettingsDep) -> dict[str, Any]:
    """List a partner by its OGC API - Features landing page (coordinators); it is read at once."""
    partner = service.add_partner(session, actor=member, cooperative=member.cooperative, url=body.url,
                                  name=body.name, licence=body.licence, limits=service.limits_from(settings))
    return service.as_dict(partner, request_locale(request))


@router.delete("/{partner_id}", status_code=204)
def remove_partner(partner_id: DbId, session: SessionDep, member: CurrentMember) -> Response:
    """Stop showing a partner; its cached layers are deleted (coordinators)."""
    service.remove_partner(session, actor=member, cooperative=member.cooperative, partner_id=partner_id)
    return Response(status_code=204)


@router.post("/{partner_id}/refresh")
def refresh_partner(partner_id: DbId, request: Request, session: SessionDep, member: CurrentMember,
                    settings: SettingsDep) -> dict[str, Any]:
    """Read a partner again now (coordinators); a failure is recorded and shown, not raised."""
    partner = service.refresh(session, actor=member, cooperative=member.cooperative, partner_id=partner_id,
                              limits=service.limits_from(settings))
    return service.as_dict(partner, request_locale(request))


@public_router.api_route("/{partner_id}/{collection}.geojson", methods=["GET", "HEAD"],
                         summary="A partner's layer (our cached copy)")
def partner_layer(partner_id: DbId, collection: str, request: Request, session: SessionDep) -> Response:
    """A partner's public layer as our server last read it (GeoJSON), for the public map."""
    body, fetched_at = service.layer_geojson(session, partner_id=partner_id, collection_id=collection)
    return respond(request, body, "application/geo+json", cache_control="public, max-age=300",
                   headers={"Last-Modified": format_datetime(fetched_at.astimezone(UTC), usegmt=True)})
