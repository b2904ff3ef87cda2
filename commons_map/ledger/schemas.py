"""Pydantic shapes of the ledger over HTTP."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from commons_map.db import DbId, Minutes


class PaymentIn(BaseModel):
    """A payment for a service, to a member (username or id) or to an account."""

    model_config = ConfigDict(extra="forbid")

    payee: str | int | None = Field(default=None, description="the payee's username or member id")
    to_account_id: DbId | None = Field(default=None, description="or an account id (a commons fund)")
    minutes: Minutes
    reason: str = ""
    idempotency_key: str | None = Field(
        default=None, description="a unique key per payment (or the Idempotency-Key header)"
    )


class ReverseIn(BaseModel):
    """Why a transfer is reversed."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""
    idempotency_key: str | None = None


class AdjustmentIn(BaseModel):
    """A coordinators' adjustment of an account against the cooperative account."""

    model_config = ConfigDict(extra="forbid")

    member: str | None = None
    account_id: DbId | None = None
    minutes: Minutes
    reason: str = ""
    idempotency_key: str | None = None


class FundIn(BaseModel):
    """A fund for one commons."""

    model_config = ConfigDict(extra="forbid")

    commons_id: DbId


class LimitsIn(BaseModel):
    """An account's own limits (null: the cooperative's defaults)."""

    model_config = ConfigDict(extra="forbid")

    min_minutes: Minutes | None = None
    max_minutes: Minutes | None = None


class PostingOut(BaseModel):
    """One posting of a transfer."""

    account_id: DbId
    account: str
    amount: int


class TransferOut(BaseModel):
    """A transfer (journal entry) with its postings."""

    id: int
    kind: str
    reason: str
    initiated_by_id: DbId | None
    idempotency_key: str
    work_log_id: DbId | None
    reverses_id: DbId | None
    reversed_by_id: DbId | None
    created_at: datetime
    postings: list[PostingOut]


class AccountOut(BaseModel):
    """An account, its balance and its limits in force."""

    id: int
    kind: str
    name: str
    member_id: DbId | None
    commons_id: DbId | None
    balance: int
    min_minutes: int | None
    max_minutes: int | None
    archived: bool


class StatementLine(BaseModel):
    """One posting of a statement, with the running balance."""

    posting_id: DbId
    transfer_id: DbId
    at: datetime
    kind: str
    reason: str
    counterparty: str
    amount: int
    balance: int


class StatementOut(BaseModel):
    """An account's postings over a period, with opening and closing balances."""

    account: AccountOut
    date_from: date | None
    date_to: date | None
    opening_balance: int
    closing_balance: int
    credits: int
    debits: int
    lines: list[StatementLine]
