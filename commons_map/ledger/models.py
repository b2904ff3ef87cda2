"""ORM models of the time ledger: accounts, transfers (journal entries) and their postings.

Amounts are integer minutes. A transfer is immutable once written: the database refuses any
UPDATE or DELETE of transfers and postings, and a deferred constraint trigger checks at commit
that every transfer has two or more postings summing to zero (see migration 0002_ledger).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship

from commons_map.db import Base, Timestamped

ACCOUNT_KINDS = ("member", "cooperative", "commons_fund", "clearing", "solidarity_fund")
TRANSFER_KINDS = ("work_credit", "service_payment", "reversal", "adjustment", "booking_contribution")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Account(Timestamped, Base):
    """A time account: a member's, the cooperative's, a commons fund or a clearing account."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(ACCOUNT_KINDS)}", name="kind"),
        CheckConstraint("(kind = 'member') = (member_id IS NOT NULL)", name="member_owner"),
        CheckConstraint("(kind = 'commons_fund') = (commons_id IS NOT NULL)", name="commons_owner"),
        CheckConstraint(
            "min_minutes IS NULL OR max_minutes IS NULL OR min_minutes <= max_minutes", name="limits"
        ),
        # A clearing account is another cooperative's account in this ledger (commons_map.clearing).
        CheckConstraint("(kind = 'clearing') = (partner_cooperative_id IS NOT NULL)", name="clearing_partner"),
        Index(
            "uq_ledger_accounts_clearing",
            "cooperative_id",
            "partner_cooperative_id",
            unique=True,
            postgresql_where=text("kind = 'clearing'"),
        ),
        # One cooperative account per cooperative.
        Index(
            "uq_ledger_accounts_cooperative",
            "cooperative_id",
            unique=True,
            postgresql_where=text("kind = 'cooperative'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), unique=True)
    commons_id: Mapped[int | None] = mapped_column(ForeignKey("commons.id"), unique=True)
    partner_cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"))
    # Own limits; NULL means the cooperative's default (members) or no limit (the cooperative).
    min_minutes: Mapped[int | None] = mapped_column(Integer)
    max_minutes: Mapped[int | None] = mapped_column(Integer)
    # Cached sum of the account's postings, kept in the transaction that writes them.
    balance: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Transfer(Base):
    """One immutable journal entry: two or more postings that sum to zero."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint(f"kind IN {_in(TRANSFER_KINDS)}", name="kind"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason"),
        CheckConstraint("length(idempotency_key) BETWEEN 1 AND 200", name="idempotency_key"),
        CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversal"),
        CheckConstraint("kind <> 'work_credit' OR work_log_id IS NOT NULL", name="work_credit_log"),
        UniqueConstraint("cooperative_id", "idempotency_key", name="uq_ledger_transfers_idempotency"),
        # A work log is credited once, whatever races: the database says so.
        Index(
            "uq_ledger_transfers_work_credit",
            "work_log_id",
            unique=True,
            postgresql_where=text("kind = 'work_credit'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    initiated_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    idempotency_key: Mapped[str] = mapped_column(Text)
    # SHA-256 of what was asked, so a retry with other content under the same key is refused.
    fingerprint: Mapped[str] = mapped_column(Text)
    work_log_id: Mapped[int | None] = mapped_column(ForeignKey("work_logs.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp(), index=True
    )

    postings: Mapped[list[Posting]] = relationship(
        back_populates="transfer", order_by="Posting.id"
    )


class Posting(Base):
    """One movement of minutes on one account within a transfer."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount"),
        Index("ix_ledger_postings_account", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(Integer)
    # The account's balance right after this posting (accounts are locked while posting).
    balance_after: Mapped[int] = mapped_column(Integer)

    transfer: Mapped[Transfer] = relationship(back_populates="postings")


class AccountHistory(Base):
    """A change to an account other than a posting (limits, archiving): who, when, what."""

    __tablename__ = "ledger_account_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict)
