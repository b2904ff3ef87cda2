"""ORM models of clearing lines between two cooperatives' ledgers and of crossing payments.

A line belongs to both sides: ``cooperative_id`` is the side that proposed it,
``partner_cooperative_id`` the side that accepted it (see migration 0013_clearing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base

LINE_STATES = ("proposed", "accepted")


class ClearingLine(Base):
    """An agreement between two cooperatives: hours may cross, each owing the other at most a limit."""

    __tablename__ = "clearing_lines"
    __table_args__ = (
        CheckConstraint("cooperative_id <> partner_cooperative_id", name="two_sides"),
        CheckConstraint("state IN ('proposed', 'accepted')", name="state"),
        CheckConstraint("limit_minutes > 0", name="limit"),
        CheckConstraint("proposed_limit_minutes IS NULL OR proposed_limit_minutes > limit_minutes", name="raise"),
        CheckConstraint("(state = 'accepted') = (accepted_by_id IS NOT NULL)", name="accepted"),
        CheckConstraint("accepted_by_id IS NULL OR accepted_by_id <> proposed_by_id", name="four_eyes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    partner_cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    state: Mapped[str] = mapped_column(Text, default="proposed", server_default="proposed")
    limit_minutes: Mapped[int] = mapped_column(Integer)
    # A raise of the limit proposed by one side, waiting for the other side's coordinator.
    proposed_limit_minutes: Mapped[int | None] = mapped_column(Integer)
    limit_proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def sides(self) -> tuple[int, int]:
        """The two cooperatives' ids."""
        return self.cooperative_id, self.partner_cooperative_id

    def other_side(self, cooperative_id: int) -> int:
        """The cooperative across the line from ``cooperative_id``."""
        return self.partner_cooperative_id if cooperative_id == self.cooperative_id else self.cooperative_id


class ClearingLineHistory(Base):
    """A change to a clearing line: proposed, accepted, limit lowered or raised; who, when, what."""

    __tablename__ = "clearing_line_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("clearing_lines.id"), index=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))  # the acting side
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")


class ClearingPayment(Base):
    """One crossing payment: the payer's transfer in its ledger and the payee's in the other."""

    __tablename__ = "clearing_payments"
    __table_args__ = (
        CheckConstraint("minutes > 0", name="minutes"),
        CheckConstraint("cooperative_id <> partner_cooperative_id", name="two_sides"),
        UniqueConstraint("payer_transfer_id"),
        UniqueConstraint("payee_transfer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("clearing_lines.id"), index=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))  # the payer's
    partner_cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))  # the payee's
    payer_transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"))
    payee_transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"))
    minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
