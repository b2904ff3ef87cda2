"""Members: who I am, and the cooperative's members (for members only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import CurrentMember, SessionDep
from commons_map.db import DbId
from commons_map.people import service
from commons_map.people.models import Member

router = APIRouter(prefix="/api/v1/members", tags=["members"])


class MemberOut(BaseModel):
    """A member as other members see them."""

    id: int
    username: str
    display_name: str
    roles: list[str]
    locale: str


class MemberIn(BaseModel):
    """A new member, added by a coordinator."""

    username: str
    display_name: str
    password: str = Field(min_length=8)
    email: str | None = None
    locale: str = "fr"
    roles: list[str] = Field(default_factory=list)


def _out(m: Member) -> MemberOut:
    return MemberOut(
        id=m.id, username=m.username, display_name=m.display_name, roles=sorted(m.roles), locale=m.locale
    )


@router.get("/me", response_model=MemberOut)
def me(member: CurrentMember) -> MemberOut:
    """The signed-in member."""
    return _out(member)


@router.get("", response_model=list[MemberOut])
def list_members(member: CurrentMember, session: SessionDep) -> list[MemberOut]:
    """The active members of my cooperative."""
    rows = session.scalars(
        select(Member)
        .where(Member.cooperative_id == member.cooperative_id, Member.is_active)
        .order_by(Member.display_name)
    )
    return [_out(m) for m in rows]


@router.post("", response_model=MemberOut, status_code=201)
def add_member(body: MemberIn, member: CurrentMember, session: SessionDep) -> MemberOut:
    """Add a member to my cooperative (coordinators)."""
    created = service.create_member(
        session,
        cooperative=member.cooperative,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        email=body.email,
        locale=body.locale,
        roles=set(body.roles),
        actor=member,
    )
    return _out(created)


class PasswordChange(BaseModel):
    """My current password, and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str


@router.post("/me/password", status_code=204)
def change_password(body: PasswordChange, member: CurrentMember, session: SessionDep) -> Response:
    """Change my password: every token and browser session I had ends (sign in again)."""
    service.change_password(session, actor=session.merge(member), current_password=body.current_password,
                            new_password=body.new_password)
    return Response(status_code=204)


@router.post("/{member_id}/retire", response_model=MemberOut)
def retire(member_id: DbId, member: CurrentMember, session: SessionDep) -> MemberOut:
    """Retire a member of my cooperative (coordinators): they can no longer sign in, their tokens
    and sessions end, and everything they did stays."""
    target = service.get_member(session, cooperative_id=member.cooperative_id, username_or_id=member_id)
    return _out(service.retire_member(session, actor=member, member=target))


# --- roles: four eyes ---------------------------------------------------------------------------


class RoleChangeIn(BaseModel):
    """Grant a role to a member, or take it back."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["coordinator"] = "coordinator"
    action: Literal["grant", "revoke"]


class DecisionIn(BaseModel):
    """An optional note with a decision."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class RoleChangeOut(BaseModel):
    """A role change: pending until another coordinator approves it."""

    id: int
    member: str | None
    member_id: int
    role: str
    action: str
    state: str
    requested_by: str | None
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str


@router.post("/{member_id}/roles", response_model=RoleChangeOut, status_code=201)
def request_role_change(member_id: DbId, body: RoleChangeIn, member: CurrentMember,
                        session: SessionDep) -> dict[str, Any]:
    """Ask to grant or take back a member's role (coordinators): it waits for another
    coordinator's approval (state ``pending``), except when the only coordinator grants it."""
    target = service.get_member(session, cooperative_id=member.cooperative_id, username_or_id=member_id)
    change = service.request_role_change(session, actor=member, member=target, role=body.role,
                                         action=body.action)
    return service.role_change_out(session, change)


@router.get("/role-changes", response_model=list[RoleChangeOut])
def role_changes(member: CurrentMember, session: SessionDep, pending: bool = True) -> list[dict[str, Any]]:
    """My cooperative's role changes, newest first: the pending ones by default (coordinators)."""
    return [service.role_change_out(session, c)
            for c in service.list_role_changes(session, actor=member, pending_only=pending)]


@router.post("/role-changes/{change_id}/approve", response_model=RoleChangeOut)
def approve_role_change(change_id: DbId, member: CurrentMember, session: SessionDep,
                        body: DecisionIn | None = None) -> dict[str, Any]:
    """Another coordinator approves a pending role change: it applies now (never who asked)."""
    change = service.approve_role_change(session, actor=member, change_id=change_id,
                                         note=body.note if body else "")
    return service.role_change_out(session, change)


@router.post("/role-changes/{change_id}/decline", response_model=RoleChangeOut)
def decline_role_change(change_id: DbId, member: CurrentMember, session: SessionDep,
                        body: DecisionIn | None = None) -> dict[str, Any]:
    """Who asked withdraws a pending role change, or another coordinator refuses it."""
    change = service.decline_role_change(session, actor=member, change_id=change_id,
                                         note=body.note if body else "")
    return service.role_change_out(session, change)
