"""Small named predicates about who may do what, each with a human message."""

from __future__ import annotations

from commons_map.errors import PermissionDenied
from commons_map.people.models import Member


def is_member_of(actor: Member | None, cooperative_id: int) -> bool:
    """True for an active member of that cooperative."""
    return actor is not None and actor.is_active and actor.cooperative_id == cooperative_id


def is_coordinator_of(actor: Member | None, cooperative_id: int) -> bool:
    """True for a coordinator of that cooperative."""
    return is_member_of(actor, cooperative_id) and actor is not None and actor.is_coordinator


def require_member(actor: Member | None, cooperative_id: int) -> Member:
    """The actor, when a member of the cooperative; else PermissionDenied."""
    if actor is None or not is_member_of(actor, cooperative_id):
        raise PermissionDenied("people.members_only")
    return actor


def require_coordinator(actor: Member | None, cooperative_id: int) -> Member:
    """The actor, when a coordinator of the cooperative; else PermissionDenied."""
    if actor is None or not is_coordinator_of(actor, cooperative_id):
        raise PermissionDenied("people.coordinators_only")
    return actor
