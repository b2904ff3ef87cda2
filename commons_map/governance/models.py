"""ORM models of governance: circles, proposals, positions, amendments, agreements, trust, role history.

A closed proposal never changes again: the database refuses any UPDATE of a proposal whose state
is already ``closed`` and any write to the positions of a closed proposal (triggers of migration
0010_governance), so an outcome is computed once and an effect applied once, whatever races.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base

METHODS = ("consent", "vote", "score")
PARTICIPATION = ("circle", "all")
THRESHOLDS = ("simple", "two_thirds")
STATES = ("open", "closed")
CHOICES = {"consent": ("consent", "concern", "objection"), "vote": ("yes", "no", "abstain"), "score": ()}
ROLE_SOURCES = ("founding", "decision", "trust")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _now() -> DateTime:
    return DateTime(timezone=True)


class Circle(Base):
    """A working group of members (the gardens, the tool library, the housing): data, not code."""

    __tablename__ = "governance_circles"
    __table_args__ = (
        UniqueConstraint("cooperative_id", "name", name="uq_governance_circles_name"),
        CheckConstraint("length(btrim(name)) BETWEEN 1 AND 120", name="name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class CircleRole(Base):
    """A role a member holds in a circle; the role ``member`` is membership of the circle."""

    __tablename__ = "governance_circle_roles"
    __table_args__ = (
        CheckConstraint(f"source IN {_in(ROLE_SOURCES)}", name="source"),
        CheckConstraint("role ~ '^[a-z][a-z0-9_]{0,39}$'", name="role"),
    )

    circle_id: Mapped[int] = mapped_column(ForeignKey("governance_circles.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class RoleThreshold(Base):
    """A circle's rule: this role comes with ``trusts`` trusts of its members, and goes below it."""

    __tablename__ = "governance_role_thresholds"
    __table_args__ = (
        CheckConstraint("trusts BETWEEN 1 AND 1000", name="trusts"),
        CheckConstraint("role ~ '^[a-z][a-z0-9_]{0,39}$'", name="role"),
    )

    circle_id: Mapped[int] = mapped_column(ForeignKey("governance_circles.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(Text, primary_key=True)
    trusts: Mapped[int] = mapped_column(Integer)


class Proposal(Base):
    """A proposal put to the cooperative or to a circle, and, once closed, its outcome."""

    __tablename__ = "governance_proposals"
    __table_args__ = (
        CheckConstraint(f"method IN {_in(METHODS)}", name="method"),
        CheckConstraint(f"participation IN {_in(PARTICIPATION)}", name="participation"),
        CheckConstraint(f"threshold IS NULL OR threshold IN {_in(THRESHOLDS)}", name="threshold"),
        CheckConstraint(f"state IN {_in(STATES)}", name="state"),
        CheckConstraint("participation = 'all' OR circle_id IS NOT NULL", name="circle"),
        CheckConstraint("closes_at > opens_at", name="times"),
        CheckConstraint("quorum IS NULL OR quorum >= 1", name="quorum"),
        CheckConstraint("(method = 'vote') = (threshold IS NOT NULL)", name="vote_threshold"),
        CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL AND outcome IS NOT NULL)", name="closed"),
        CheckConstraint("effect IS NULL OR method <> 'score'", name="score_effect"),
        Index("ix_governance_proposals_due", "closes_at", postgresql_where=text("state = 'open'")),
        Index("ix_governance_proposals_coop", "cooperative_id", "state", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    circle_id: Mapped[int | None] = mapped_column(ForeignKey("governance_circles.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    participation: Mapped[str] = mapped_column(Text)
    opens_at: Mapped[datetime] = mapped_column(_now())
    closes_at: Mapped[datetime] = mapped_column(_now())
    quorum: Mapped[int | None] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    options: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    threshold: Mapped[str | None] = mapped_column(Text)
    effect: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    state: Mapped[str] = mapped_column(Text, default="open", server_default="open")
    outcome: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True))
    closed_at: Mapped[datetime | None] = mapped_column(_now())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Amendment(Base):
    """One change of a proposal's text by its author while it is open: the text before and after."""

    __tablename__ = "governance_amendments"
    __table_args__ = (UniqueConstraint("proposal_id", "version", name="uq_governance_amendments_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # the proposal's version this amendment made
    author_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    old_title: Mapped[str] = mapped_column(Text)
    new_title: Mapped[str] = mapped_column(Text)
    old_text: Mapped[str] = mapped_column(Text)
    new_text: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Position(Base):
    """One member's position on one proposal (changeable until the close), with its reason."""

    __tablename__ = "governance_positions"
    __table_args__ = (
        UniqueConstraint("proposal_id", "member_id", name="uq_governance_positions_member"),
        CheckConstraint(
            "choice IS NULL OR choice IN ('consent', 'concern', 'objection', 'yes', 'no', 'abstain')", name="choice"
        ),
        CheckConstraint("(choice IS NULL) = (scores IS NOT NULL)", name="choice_or_scores"),
        CheckConstraint("choice NOT IN ('objection', 'concern') OR length(btrim(reason)) > 0", name="reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    choice: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[list | None] = mapped_column(JSONB(none_as_null=True))  # one 0-3 score per option, in order
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    version: Mapped[int] = mapped_column(Integer)  # the proposal's version the position was taken on
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Agreement(Base):
    """An agreement in force: "good enough for now, safe enough to try" until its review date."""

    __tablename__ = "governance_agreements"
    __table_args__ = (CheckConstraint("length(btrim(title)) BETWEEN 1 AND 200", name="title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    circle_id: Mapped[int | None] = mapped_column(ForeignKey("governance_circles.id"))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    review_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    adopted_by_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), unique=True)
    revised_by_id: Mapped[int | None] = mapped_column(ForeignKey("governance_proposals.id"))
    created_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class AgreementRevision(Base):
    """One version of an agreement, with the decision that made it."""

    __tablename__ = "governance_agreement_revisions"
    __table_args__ = (UniqueConstraint("agreement_id", "version", name="uq_governance_agreement_revisions_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("governance_agreements.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    review_on: Mapped[date | None] = mapped_column(Date)
    # One decision revises an agreement once.
    proposal_id: Mapped[int] = mapped_column(ForeignKey("governance_proposals.id"), unique=True)
    at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class Trust(Base):
    """A member's trust in another for a role of a circle."""

    __tablename__ = "governance_trust"
    __table_args__ = (
        CheckConstraint("giver_id <> receiver_id", name="not_self"),
        Index("ix_governance_trust_receiver", "circle_id", "receiver_id", "role"),
    )

    giver_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    receiver_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("governance_circles.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(Text, primary_key=True)
    given_at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())


class RoleHistory(Base):
    """Every grant and withdrawal of a role, trust given or withdrawn: who, which role, why, when."""

    __tablename__ = "governance_role_history"
    __table_args__ = (
        CheckConstraint(
            "action IN ('granted', 'withdrawn', 'trust_given', 'trust_withdrawn')", name="action"
        ),
        CheckConstraint("source IN ('founding', 'decision', 'trust', 'direct')", name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    role: Mapped[str] = mapped_column(Text)
    circle_id: Mapped[int | None] = mapped_column(ForeignKey("governance_circles.id"))
    commons_id: Mapped[int | None] = mapped_column(ForeignKey("commons.id"))
    action: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("governance_proposals.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    trusts: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(_now(), server_default=func.now())
