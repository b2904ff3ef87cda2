"""/api/v1/ledger: accounts, payments, reversals, adjustments, statements, figures."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CurrentMember, SessionDep
from commons_map.db import DbId
from commons_map.errors import ValidationFailed
from commons_map.ledger import service
from commons_map.ledger.schemas import (
    AccountOut,
    AdjustmentIn,
    FundIn,
    LimitsIn,
    PaymentIn,
    ReverseIn,
    StatementOut,
    TransferOut,
)
from commons_map.people.permissions import require_coordinator

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])

IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _key(body_key: str | None, header_key: str | None) -> str:
    if body_key and header_key and body_key != header_key:
        raise ValidationFailed("ledger.key_differs", field="idempotency_key")
    key = body_key or header_key
    if not key:
        raise ValidationFailed("ledger.key_required", field="idempotency_key")
    return key


def _answer(session: Any, transfer: Any) -> JSONResponse:
    status = 200 if service.was_replayed(transfer) else 201
    body = TransferOut(**service.transfer_out(session, transfer)).model_dump(mode="json")
    return JSONResponse(body, status_code=status)


@router.get("/me", response_model=AccountOut)
def my_account(session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """My time account: balance and limits in force."""
    return service.account_out(session, service.ensure_member_account(session, member=member))


@router.post("/payments", status_code=201, response_model=TransferOut,
             responses={200: {"description": "a retry: the transfer written the first time"}})
def pay(body: PaymentIn, session: SessionDep, member: CurrentMember,
        idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Pay a member (or an account) for a service; the payee sees it at once."""
    transfer = service.pay(
        session, payer=member, payee=body.payee, to_account_id=body.to_account_id, minutes=body.minutes,
        reason=body.reason, idempotency_key=_key(body.idempotency_key, idempotency_key),
    )
    return _answer(session, transfer)


@router.post("/adjustments", status_code=201, response_model=TransferOut)
def adjust(body: AdjustmentIn, session: SessionDep, member: CurrentMember,
           idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Coordinators credit or debit an account against the cooperative's."""
    transfer = service.adjust(
        session, actor=member, member=body.member, account_id=body.account_id, minutes=body.minutes,
        reason=body.reason, idempotency_key=_key(body.idempotency_key, idempotency_key),
    )
    return _answer(session, transfer)


@router.get("/transfers/{transfer_id}", response_model=TransferOut)
def get_transfer(transfer_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """A transfer touching my account (any, for coordinators)."""
    return service.transfer_out(session, service.get_transfer(session, actor=member, transfer_id=transfer_id))


@router.post("/transfers/{transfer_id}/reverse", status_code=201, response_model=TransferOut)
def reverse(transfer_id: DbId, body: ReverseIn, session: SessionDep, member: CurrentMember,
            idempotency_key: IdempotencyHeader = None) -> JSONResponse:
    """Reverse a transfer (a refund by the payee of a service, or a coordinator's correction)."""
    transfer = service.reverse(session, actor=member, transfer_id=transfer_id, reason=body.reason,
                               idempotency_key=_key(body.idempotency_key, idempotency_key))
    return _answer(session, transfer)


@router.post("/funds", status_code=201, response_model=AccountOut)
def open_fund(body: FundIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Open a fund for a commons (coordinators); members may then pay into it."""
    return service.account_out(session, service.open_commons_fund(session, actor=member, commons_id=body.commons_id))


@router.put("/accounts/{account_id}/limits", response_model=AccountOut)
def set_limits(account_id: DbId, body: LimitsIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Give an account its own limits (coordinators); null falls back to the cooperative's."""
    account = service.set_limits(session, actor=member, account_id=account_id,
                                 min_minutes=body.min_minutes, max_minutes=body.max_minutes)
    return service.account_out(session, account)


@router.get("/statement", response_model=StatementOut,
            responses={200: {"content": {"text/csv": {}}}})
def statement(
    session: SessionDep,
    member: CurrentMember,
    account_member: Annotated[str | None, Query(alias="member", description="username or id (coordinators)")] = None,
    account_id: DbId | None = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """An account's postings with running balance over a period, as JSON or CSV."""
    account = service.account_for_statement(session, actor=member, member=account_member, account_id=account_id)
    data = service.statement(session, account=account, date_from=date_from, date_to=date_to)
    if format == "csv":
        name = f"releve-{account.id}-{date_from or 'debut'}-{date_to or 'fin'}.csv"
        return Response(service.statement_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return data


@router.get("/figures")
def figures(session: SessionDep, member: CurrentMember,
            year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict[str, Any]:
    """Hours of approved work per commons, per activity and per month (commons I may see)."""
    return service.figures(session, cooperative_id=member.cooperative_id, actor=member, year=year)


@router.get("/check")
def check(session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """The ledger invariant for my cooperative (coordinators)."""
    require_coordinator(member, member.cooperative_id)
    report = service.check(session, cooperative_id=member.cooperative_id)
    return {"ok": report.ok, "accounts": report.accounts, "transfers": report.transfers,
            "postings": report.postings, "total_balance": report.total_balance,
            "breaches": report.breaches, "warnings": report.warnings}
