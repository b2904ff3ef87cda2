"""ORM models: the cooperative and its members."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

ROLES = ("coordinator",)
"""Roles beyond plain membership. Stewardship is per commons, not a role."""


class Cooperative(Timestamped, Base):
    """A citizens' cooperative and the territory it works on."""

    __tablename__ = "cooperatives"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    territory = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
    )
    timezone: Mapped[str] = mapped_column(Text, default="Europe/Paris", server_default="Europe/Paris")
    settings: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    # Archived: hidden everywhere (no sign-in, no public data, not listed); nothing is deleted.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    members: Mapped[list[Member]] = relationship(back_populates="cooperative")


class Member(Timestamped, Base):
    """A person of a cooperative, who signs in with a username and a password."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("locale IN ('fr', 'en')", name="locale"),
        CheckConstraint("username = lower(username)", name="username_lower"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    username: Mapped[str] = mapped_column(Text, unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(Text, default="fr", server_default="fr")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # Bumped to revoke every token issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    cooperative: Mapped[Cooperative] = relationship(back_populates="members")
    role_rows: Mapped[list[MemberRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def roles(self) -> set[str]:
        return {r.role for r in self.role_rows}

    @property
    def is_coordinator(self) -> bool:
        return "coordinator" in self.roles

    def __repr__(self) -> str:
        return f"<Member {self.username}>"


class MemberRole(Base):
    """A role a member holds in their cooperative."""

    __tablename__ = "member_roles"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}".replace(",)", ")"), name="role"),)

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(Text, primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class RoleChange(Base):
    """A coordinator's request to grant or take back a role, applied only when another coordinator
    approves it (four eyes): pending, then applied, refused (by another coordinator) or withdrawn
    (by who asked). At most one pending request per member and role."""

    __tablename__ = "role_changes"
    __table_args__ = (
        CheckConstraint("action IN ('grant', 'revoke')", name="action"),
        CheckConstraint("state IN ('pending', 'applied', 'refused', 'withdrawn')", name="state"),
        Index("uq_role_changes_pending", "member_id", "role", unique=True,
              postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, default="pending", server_default="pending")
    requested_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class WebSessionRow(Base):
    """A signed-in browser session, by the SHA-256 of its id (the id itself lives in the signed
    cookie). Signing out deletes the row, so a copy of the cookie is worth nothing afterwards."""

    __tablename__ = "member_web_sessions"

    sid_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
