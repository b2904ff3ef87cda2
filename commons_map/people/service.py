"""Cooperatives and members: creating them, roles, passwords."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.people.auth import hash_password, sign_out_everywhere, verify_password
from commons_map.people.models import ROLES, Cooperative, Member, MemberRole, RoleChange
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
        role_rows=[MemberRole(role=r) for r in sorted(roles)] if bootstrap else [],
    )
    session.add(member)
    session.flush()
    for role in sorted(roles) if not bootstrap else []:  # four eyes: asked, another coordinator approves
        assert actor is not None
        request_role_change(session, actor=actor, member=member, role=role, action="grant")
    return member


def _other_coordinators(session: Session, cooperative_id: int, but: int) -> int:
    return session.scalar(
        select(func.count()).select_from(MemberRole).join(Member).where(
            Member.cooperative_id == cooperative_id, MemberRole.role == "coordinator",
            Member.id != but, Member.is_active)) or 0


def _keep_a_coordinator(session: Session, member: Member, *, field: str) -> None:
    """Refuse to take ``member``'s coordination away when no other active coordinator remains.

    One coordinator change at a time per cooperative (its row is locked): two coordinators revoking
    each other at the same moment would each count the other and leave none. The second waits,
    then counts."""
    session.execute(select(Cooperative.id).where(Cooperative.id == member.cooperative_id).with_for_update())
    if not _other_coordinators(session, member.cooperative_id, member.id):
        raise Conflict("people.last_coordinator", field=field)


def _apply_role_change(session: Session, change: RoleChange, member: Member) -> None:
    if change.action == "grant":
        if not member.is_active:
            raise Conflict("people.already_retired", field="member", member=member.username)
        if change.role not in member.roles:
            member.role_rows.append(MemberRole(role=change.role))
    else:
        if change.role == "coordinator" and member.is_coordinator:
            _keep_a_coordinator(session, member, field="role")
        member.role_rows = [r for r in member.role_rows if r.role != change.role]


def request_role_change(session: Session, *, actor: Member, member: Member, role: str, action: str) -> RoleChange:
    """Ask to grant a member a role or take it back (coordinators). Four eyes: it applies only when
    another coordinator approves it (``approve_role_change``). The only active coordinator of a
    cooperative grants the role at once: nobody could approve, and it makes the second pair of eyes.
    Nothing is taken from the cooperative's last coordinator."""
    require_coordinator(actor, member.cooperative_id)
    refuse_direct_role_change(session, member.cooperative_id)
    if action not in ("grant", "revoke"):
        raise ValidationFailed("form.unknown_action", field="action", action=action, known=["grant", "revoke"])
    if role not in ROLES:
        raise ValidationFailed("people.unknown_roles", field="role", roles=[role], known=list(ROLES))
    if action == "grant" and role in member.roles:
        raise Conflict("people.role_held", field="role", member=member.username, role=role)
    if action == "grant" and not member.is_active:
        raise Conflict("people.already_retired", field="member", member=member.username)
    if action == "revoke" and role not in member.roles:
        raise Conflict("people.role_not_held", field="role", member=member.username, role=role)
    if action == "revoke" and role == "coordinator":
        _keep_a_coordinator(session, member, field="role")
    change = RoleChange(cooperative_id=member.cooperative_id, member_id=member.id, role=role, action=action,
                        requested_by=actor.id)
    try:
        with session.begin_nested():
            session.add(change)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("people.role_change_pending", field="member", member=member.username, role=role) from exc
    if action == "grant":
        # Alone: the lock on the cooperative makes "no other coordinator" hold until commit.
        session.execute(select(Cooperative.id).where(Cooperative.id == member.cooperative_id).with_for_update())
        if not _other_coordinators(session, member.cooperative_id, actor.id):
            _apply_role_change(session, change, member)
            change.state, change.decided_by, change.decided_at = "applied", actor.id, func.now()
            change.note = "sole_coordinator"
            session.flush()
    return change


def _pending_change(session: Session, actor: Member, change_id: int) -> RoleChange:
    change = session.scalar(select(RoleChange).where(RoleChange.id == change_id).with_for_update())
    if change is None:
        raise NotFound("people.no_role_change", field="change_id", change_id=change_id)
    require_coordinator(actor, change.cooperative_id)
    if change.state != "pending":
        raise Conflict("people.role_change_decided", field="change_id", change_id=change_id, state=change.state)
    return change


def approve_role_change(session: Session, *, actor: Member, change_id: int, note: str = "") -> RoleChange:
    """Another coordinator approves a pending role change: it applies now. Who asked cannot approve
    it; two approvals at the same moment apply it once (the row is locked: the second finds it
    decided); the last-coordinator rule still holds."""
    change = _pending_change(session, actor, change_id)
    if change.requested_by == actor.id:
        raise PermissionDenied("people.role_change_own", field="change_id", change_id=change_id)
    refuse_direct_role_change(session, change.cooperative_id)
    member = session.get(Member, change.member_id)
    assert member is not None
    _apply_role_change(session, change, member)
    change.state, change.decided_by, change.decided_at, change.note = "applied", actor.id, func.now(), note
    session.flush()
    return change


def decline_role_change(session: Session, *, actor: Member, change_id: int, note: str = "") -> RoleChange:
    """Who asked withdraws a pending role change, or another coordinator refuses it."""
    change = _pending_change(session, actor, change_id)
    change.state = "withdrawn" if change.requested_by == actor.id else "refused"
    change.decided_by, change.decided_at, change.note = actor.id, func.now(), note
    session.flush()
    return change


def list_role_changes(session: Session, *, actor: Member, pending_only: bool = True) -> list[RoleChange]:
    """My cooperative's role changes, newest first (coordinators)."""
    require_coordinator(actor, actor.cooperative_id)
    stmt = select(RoleChange).where(RoleChange.cooperative_id == actor.cooperative_id)
    if pending_only:
        stmt = stmt.where(RoleChange.state == "pending")
    return list(session.scalars(stmt.order_by(RoleChange.id.desc()).limit(500)))


def role_change_out(session: Session, change: RoleChange) -> dict:
    """A role change as the API shows it (usernames, not only ids)."""
    names = dict(session.execute(select(Member.id, Member.username).where(
        Member.id.in_({change.member_id, change.requested_by, change.decided_by or 0}))).all())
    return {
        "id": change.id, "member": names.get(change.member_id), "member_id": change.member_id,
        "role": change.role, "action": change.action, "state": change.state,
        "requested_by": names.get(change.requested_by), "requested_at": change.requested_at,
        "decided_by": names.get(change.decided_by) if change.decided_by else None,
        "decided_at": change.decided_at, "note": change.note,
    }


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
