"""Cooperatives and members: creating them, roles, passwords."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.people.auth import hash_password, sign_out_everywhere, verify_password
from commons_map.people.models import ROLES, Cooperative, Member, MemberRole
from commons_map.people.permissions import require_coordinator

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 8


def get_cooperative(session: Session, slug_or_id: str | int) -> Cooperative:
    """The cooperative with that slug or id."""
    if isinstance(slug_or_id, int) or str(slug_or_id).isdigit():
        coop = session.get(Cooperative, int(slug_or_id))
    else:
        coop = session.scalar(select(Cooperative).where(Cooperative.slug == slug_or_id))
    if coop is None:
        raise NotFound("people.no_cooperative", field="cooperative", cooperative=str(slug_or_id))
    return coop


def default_cooperative(session: Session) -> Cooperative:
    """The only (or first) cooperative: what the CLI uses when none is named."""
    coop = session.scalar(select(Cooperative).order_by(Cooperative.id).limit(1))
    if coop is None:
        raise NotFound("people.no_cooperative_yet")
    return coop


def refuse_direct_role_change(session: Session, cooperative_id: int, field: str = "role") -> None:
    """Refuse a role given or taken by hand when the cooperative grants roles only by decision
    (its setting ``roles_by_decision_only``; see commons_map.governance)."""
    settings = session.scalar(select(Cooperative.settings).where(Cooperative.id == cooperative_id)) or {}
    if settings.get("roles_by_decision_only"):
        raise PermissionDenied("governance.roles_by_decision_only", field=field)


def create_member(
    session: Session,
    *,
    cooperative: Cooperative,
    username: str,
    display_name: str,
    password: str,
    roles: set[str] | frozenset[str] = frozenset(),
    email: str | None = None,
    locale: str = "fr",
    actor: Member | None = None,
    bootstrap: bool = False,
) -> Member:
    """A new member. A coordinator adds members; ``bootstrap`` is for the CLI and set-up."""
    if not bootstrap:
        require_coordinator(actor, cooperative.id)
    username = username.strip().lower()
    problems = collector()
    if not USERNAME_RE.match(username):
        problems.add("username", "people.username_form")
    if len(password) < MIN_PASSWORD:
        problems.add("password", "people.password_short", minimum=MIN_PASSWORD)
    if not display_name.strip():
        problems.add("display_name", "form.empty")
    if locale not in ("fr", "en"):
        problems.add("locale", "form.locale")
    unknown = set(roles) - set(ROLES)
    if unknown:
        problems.add("roles", "people.unknown_roles", roles=sorted(unknown), known=list(ROLES))
    problems.raise_if_any()
    if roles and not bootstrap:
        refuse_direct_role_change(session, cooperative.id, field="roles")
    if session.scalar(select(func.count()).where(Member.username == username)):
        raise Conflict("people.username_taken", field="username", username=username)
    member = Member(
        cooperative_id=cooperative.id,
        username=username,
        display_name=display_name.strip(),
        email=email,
        password_hash=hash_password(password),
        locale=locale,
        role_rows=[MemberRole(role=r) for r in sorted(roles)],
    )
    session.add(member)
    session.flush()
    return member


def grant_role(session: Session, *, actor: Member, member: Member, role: str) -> None:
    """Give a member a role; coordinators decide together."""
    require_coordinator(actor, member.cooperative_id)
    refuse_direct_role_change(session, member.cooperative_id)
    if role not in ROLES:
        raise ValidationFailed("people.unknown_roles", field="role", roles=[role], known=list(ROLES))
    if role not in member.roles:
        member.role_rows.append(MemberRole(role=role))
        session.flush()


def _keep_a_coordinator(session: Session, member: Member, *, field: str) -> None:
    """Refuse to take ``member``'s coordination away when no other active coordinator remains.

    One coordinator change at a time per cooperative (its row is locked): two coordinators revoking
    each other at the same moment would each count the other and leave none. The second waits,
    then counts."""
    session.execute(select(Cooperative.id).where(Cooperative.id == member.cooperative_id).with_for_update())
    others = session.scalar(
        select(func.count()).select_from(MemberRole).join(Member).where(
            Member.cooperative_id == member.cooperative_id, MemberRole.role == "coordinator",
            Member.id != member.id, Member.is_active))
    if not others:
        raise Conflict("people.last_coordinator", field=field)


def revoke_role(session: Session, *, actor: Member, member: Member, role: str) -> None:
    """Take a role back, never leaving the cooperative without a coordinator."""
    require_coordinator(actor, member.cooperative_id)
    refuse_direct_role_change(session, member.cooperative_id)
    if role == "coordinator" and member.is_coordinator:
        _keep_a_coordinator(session, member, field="role")
    member.role_rows = [r for r in member.role_rows if r.role != role]
    session.flush()


def get_member(session: Session, *, cooperative_id: int, username_or_id: str | int) -> Member:
    """A member of the cooperative by username or id."""
    stmt = select(Member).where(Member.cooperative_id == cooperative_id)
    if isinstance(username_or_id, int) or str(username_or_id).isdigit():
        stmt = stmt.where(Member.id == int(username_or_id))
    else:
        stmt = stmt.where(Member.username == str(username_or_id).lower())
    member = session.scalar(stmt)
    if member is None:
        raise NotFound("people.no_member", field="member", member=str(username_or_id))
    return member


def _check_new_password(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed("people.password_short", field=field, minimum=MIN_PASSWORD)


def change_password(session: Session, *, actor: Member, current_password: str, new_password: str,
                    keep_sid: str | None = None) -> None:
    """A member changes their own password, giving the current one. Every token and every other
    browser session ends (the one acting now, ``keep_sid``, stays signed in with a new token
    version)."""
    if not verify_password(actor.password_hash, current_password):
        raise ValidationFailed("people.current_password_wrong", field="current_password")
    _check_new_password(new_password, field="new_password")
    if new_password == current_password:
        raise ValidationFailed("people.password_unchanged", field="new_password")
    actor.password_hash = hash_password(new_password)
    sign_out_everywhere(session, member=actor, keep_sid=keep_sid)
    session.flush()


def retire_member(session: Session, *, actor: Member, member: Member) -> Member:
    """A coordinator retires a member: they can no longer sign in, their tokens and sessions end;
    everything they did stays (their logs, their hours, their name in the history). Never the
    cooperative's last coordinator, nor oneself (another coordinator does it)."""
    require_coordinator(actor, member.cooperative_id)
    if member.id == actor.id:
        raise PermissionDenied("people.retire_self", field="member")
    if not member.is_active:
        raise Conflict("people.already_retired", field="member", member=member.username)
    if member.is_coordinator:
        _keep_a_coordinator(session, member, field="member")
    member.is_active = False
    sign_out_everywhere(session, member=member)
    session.flush()
    return member
