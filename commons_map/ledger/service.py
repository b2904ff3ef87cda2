"""The rules of the time ledger: accounts, transfers that never lose or invent a minute, limits.

Every transfer goes through :func:`post`, which validates the legs, locks the accounts it
touches (``SELECT ... FOR UPDATE`` in id order, so concurrent transfers never deadlock), checks
the balance limits against the locked balances, then writes the transfer, its postings (with
the balance after each) and the cached balances in the caller's transaction. Retries with the
same idempotency key return the original transfer; the same key with other content is a 409.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, extract, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from commons_map.db import MAX_ID
from commons_map.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    collector,
)
from commons_map.ledger.models import TRANSFER_KINDS, Account, AccountHistory, Posting, Transfer
from commons_map.notify.service import notify
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of, require_coordinator, require_member

DEFAULT_MIN_MINUTES = -20 * 60
DEFAULT_MAX_MINUTES = 100 * 60
MAX_REASON = 500
MAX_KEY = 200


class LimitExceeded(Conflict):
    """A transfer would take an account beyond one of its balance limits."""

    kind = "limit_exceeded"


# --- accounts ---------------------------------------------------------------------------------


def ensure_member_account(session: Session, *, member: Member) -> Account:
    """The member's account, opened on first use (safe when two requests race to open it)."""
    account = session.scalar(select(Account).where(Account.member_id == member.id))
    if account is not None:
        return account
    session.execute(
        pg_insert(Account)
        .values(cooperative_id=member.cooperative_id, kind="member", member_id=member.id,
                name=member.display_name)
        .on_conflict_do_nothing(index_elements=["member_id"])
    )
    return session.scalars(select(Account).where(Account.member_id == member.id)).one()


def cooperative_account(session: Session, *, cooperative_id: int) -> Account:
    """The cooperative's own account (it pays for commons work, so it may go negative)."""
    stmt = select(Account).where(Account.cooperative_id == cooperative_id, Account.kind == "cooperative")
    account = session.scalar(stmt)
    if account is not None:
        return account
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise NotFound("people.no_cooperative_id", field="cooperative_id", cooperative_id=cooperative_id)
    session.execute(
        pg_insert(Account)
        .values(cooperative_id=cooperative_id, kind="cooperative", name=coop.name)
        .on_conflict_do_nothing(index_elements=["cooperative_id"], index_where=Account.kind == "cooperative")
    )
    return session.scalars(stmt).one()


def open_commons_fund(session: Session, *, actor: Member, commons_id: int) -> Account:
    """A fund for one commons (members may pay into it); coordinators open it."""
    from commons_map.register.service import get_commons

    commons = get_commons(session, actor=actor, commons_id=commons_id)
    require_coordinator(actor, commons.cooperative_id)
    existing = session.scalar(select(Account).where(Account.commons_id == commons.id))
    if existing is not None:
        return existing
    account = Account(cooperative_id=commons.cooperative_id, kind="commons_fund", commons_id=commons.id,
                      name=f"Fonds : {commons.name}")
    session.add(account)
    session.flush()
    session.add(AccountHistory(account_id=account.id, member_id=actor.id, action="opened", changes={}))
    return account


def _settings(session: Session, cooperative_id: int) -> dict[str, Any]:
    # Only the settings column: the cooperative row also holds its territory's geometry.
    value = session.scalar(select(Cooperative.settings).where(Cooperative.id == cooperative_id))
    return dict(value or {})


def limits_of(account: Account, settings: dict[str, Any]) -> tuple[int | None, int | None]:
    """The (min, max) balance in force for an account; None is no limit."""
    if account.kind == "member":
        lo = settings.get("balance_min_minutes", DEFAULT_MIN_MINUTES)
        hi = settings.get("balance_max_minutes", DEFAULT_MAX_MINUTES)
    elif account.kind == "commons_fund":
        lo, hi = 0, None
    else:  # the cooperative issues the currency; clearing accounts settle between ledgers
        lo, hi = None, None
    if account.min_minutes is not None:
        lo = account.min_minutes
    if account.max_minutes is not None:
        hi = account.max_minutes
    return (int(lo) if lo is not None else None, int(hi) if hi is not None else None)


def set_limits(
    session: Session, *, actor: Member, account_id: int, min_minutes: int | None, max_minutes: int | None
) -> Account:
    """Give an account its own limits (None: back to the cooperative's defaults); coordinators."""
    account = session.get(Account, account_id)
    if account is None or account.cooperative_id != actor.cooperative_id:
        raise NotFound("ledger.no_account", field="account_id", account_id=account_id)
    require_coordinator(actor, account.cooperative_id)
    if min_minutes is not None and max_minutes is not None and min_minutes > max_minutes:
        raise ValidationFailed("ledger.limits_inverted", field="min_minutes", min_minutes=min_minutes,
                               max_minutes=max_minutes)
    old = {"min_minutes": account.min_minutes, "max_minutes": account.max_minutes}
    account.min_minutes, account.max_minutes = min_minutes, max_minutes
    session.add(AccountHistory(
        account_id=account.id, member_id=actor.id, action="limits",
        changes={k: [old[k], v] for k, v in (("min_minutes", min_minutes), ("max_minutes", max_minutes))},
    ))
    session.flush()
    return account


def archive_account(session: Session, *, actor: Member, account_id: int) -> Account:
    """Close an account with a zero balance; it receives nothing more."""
    account = session.get(Account, account_id)
    if account is None or account.cooperative_id != actor.cooperative_id:
        raise NotFound("ledger.no_account", field="account_id", account_id=account_id)
    require_coordinator(actor, account.cooperative_id)
    if account.kind == "cooperative":
        raise ValidationFailed("ledger.cooperative_account_stays_open", field="account_id")
    if account.balance != 0:
        raise Conflict("ledger.account_not_settled", field="account_id", account=account.name,
                       balance_minutes=account.balance)
    if account.archived_at is None:
        account.archived_at = func.now()
        session.add(AccountHistory(account_id=account.id, member_id=actor.id, action="archived", changes={}))
        session.flush()
    return account


def account_out(session: Session, account: Account) -> dict[str, Any]:
    """An account as the API shows it, with the limits in force."""
    lo, hi = limits_of(account, _settings(session, account.cooperative_id))
    return {
        "id": account.id, "kind": account.kind, "name": account.name, "member_id": account.member_id,
        "commons_id": account.commons_id, "balance": account.balance, "min_minutes": lo,
        "max_minutes": hi, "archived": account.archived_at is not None,
    }


def balance(session: Session, *, member: Member) -> int:
    """The member's balance in minutes (0 before their first transfer)."""
    value = session.scalar(select(Account.balance).where(Account.member_id == member.id))
    return int(value or 0)


# --- posting a transfer -----------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    """One side of a transfer: minutes into (positive) or out of (negative) an account."""

    account_id: int
    amount: int


def _fingerprint(kind: str, legs: list[Leg], reason: str, initiated_by_id: int | None,
                 work_log_id: int | None, reverses_id: int | None) -> str:
    body = json.dumps({
        "kind": kind, "legs": sorted((leg.account_id, leg.amount) for leg in legs), "reason": reason,
        "by": initiated_by_id, "work_log": work_log_id, "reverses": reverses_id,
    }, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _by_key(session: Session, cooperative_id: int, key: str) -> Transfer | None:
    return session.scalar(
        select(Transfer)
        .where(Transfer.cooperative_id == cooperative_id, Transfer.idempotency_key == key)
        .execution_options(populate_existing=True)
    )


def _replay(existing: Transfer, fingerprint: str) -> Transfer:
    if existing.fingerprint != fingerprint:
        raise Conflict("ledger.key_reused", field="idempotency_key", key=existing.idempotency_key,
                       transfer_id=existing.id)
    existing._replayed = True  # type: ignore[attr-defined]
    return existing


def was_replayed(transfer: Transfer) -> bool:
    """True when :func:`post` answered a retry with the transfer written earlier."""
    return bool(getattr(transfer, "_replayed", False))


def _check_limits(accounts: dict[int, Account], deltas: dict[int, int], settings: dict[str, Any],
                  limit_field: str) -> dict[int, int]:
    after: dict[int, int] = {}
    for account_id, delta in deltas.items():
        account = accounts[account_id]
        new = account.balance + delta
        lo, hi = limits_of(account, settings)
        # A limit only refuses movement towards it: an account already beyond a limit (limits
        # changed since) may always move back.
        if delta < 0 and lo is not None and new < lo:
            by = lo - new
            raise LimitExceeded(
                "ledger.limit_below", field=limit_field, account=account.name, balance_after_minutes=new,
                short_minutes=by, limit_minutes=lo,
                detail={"account_id": account.id, "limit": "min", "limit_minutes": lo,
                        "balance_after": new, "exceeds_by_minutes": by},
            )
        if delta > 0 and hi is not None and new > hi:
            by = new - hi
            raise LimitExceeded(
                "ledger.limit_above", field=limit_field, account=account.name, balance_after_minutes=new,
                over_minutes=by, limit_minutes=hi,
                detail={"account_id": account.id, "limit": "max", "limit_minutes": hi,
                        "balance_after": new, "exceeds_by_minutes": by},
            )
        after[account_id] = new
    return after


def post(
    session: Session,
    *,
    cooperative_id: int,
    kind: str,
    legs: list[Leg],
    reason: str,
    initiated_by: Member | None,
    idempotency_key: str,
    work_log_id: int | None = None,
    reverses_id: int | None = None,
    limit_field: str = "minutes",
) -> Transfer:
    """Write one balanced transfer, limits enforced under account locks; idempotent by key.

    Permissions are the caller's business: this is the one door every transfer goes through.
    """
    reason = (reason or "").strip()
    key = (idempotency_key or "").strip()
    problems = collector()
    if kind not in TRANSFER_KINDS:
        problems.add("kind", "ledger.unknown_kind", kind=kind, known=list(TRANSFER_KINDS))
    if not reason:
        problems.add("reason", "ledger.reason_missing")
    elif len(reason) > MAX_REASON:
        problems.add("reason", "form.too_long", maximum=MAX_REASON, length=len(reason))
    if not key:
        problems.add("idempotency_key", "ledger.key_missing")
    elif len(key) > MAX_KEY:
        problems.add("idempotency_key", "form.too_long", maximum=MAX_KEY, length=len(key))
    if len(legs) < 2:
        problems.add("postings", "ledger.postings_too_few", count=len(legs))
    if any(not isinstance(leg.amount, int) or leg.amount == 0 for leg in legs):
        problems.add("postings", "ledger.posting_zero")
    if sum(leg.amount for leg in legs) != 0:
        problems.add("postings", "ledger.postings_unbalanced", sum_minutes=sum(leg.amount for leg in legs))
    if len({leg.account_id for leg in legs}) != len(legs):
        problems.add("postings", "ledger.posting_account_twice")
    problems.raise_if_any("ledger.transfer_invalid")

    fingerprint = _fingerprint(kind, legs, reason, initiated_by.id if initiated_by else None,
                               work_log_id, reverses_id)
    existing = _by_key(session, cooperative_id, key)
    if existing is not None:
        return _replay(existing, fingerprint)

    ids = sorted(leg.account_id for leg in legs)
    locked = session.scalars(
        select(Account).where(Account.id.in_(ids)).order_by(Account.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    accounts = {a.id: a for a in locked}
    for leg in legs:
        account = accounts.get(leg.account_id)
        if account is None or account.cooperative_id != cooperative_id:
            raise ValidationFailed("ledger.no_account_here", field="account", account_id=leg.account_id)
        if account.archived_at is not None and leg.amount > 0:
            raise ValidationFailed("ledger.account_closed", field="account", account=account.name)
    # A retry that waited on our locks finds the transfer its twin just committed.
    existing = _by_key(session, cooperative_id, key)
    if existing is not None:
        return _replay(existing, fingerprint)

    deltas = {leg.account_id: leg.amount for leg in legs}
    after = _check_limits(accounts, deltas, _settings(session, cooperative_id), limit_field)

    # ON CONFLICT DO NOTHING covers every unique rule at once (idempotency key, one credit per
    # work log, one reversal per transfer) without a savepoint round trip.
    transfer = session.scalars(
        pg_insert(Transfer)
        .values(cooperative_id=cooperative_id, kind=kind, reason=reason,
                initiated_by_id=initiated_by.id if initiated_by else None, idempotency_key=key,
                fingerprint=fingerprint, work_log_id=work_log_id, reverses_id=reverses_id)
        .on_conflict_do_nothing()
        .returning(Transfer)
    ).one_or_none()
    if transfer is None:
        again = _by_key(session, cooperative_id, key)
        if again is not None:
            return _replay(again, fingerprint)
        if work_log_id is not None and kind == "work_credit":
            raise Conflict("ledger.work_log_credited", field="work_log_id", work_log_id=work_log_id)
        if reverses_id is not None:
            raise Conflict("ledger.already_reversed", field="transfer_id", transfer_id=reverses_id)
        raise Conflict("ledger.transfer_collides", field="idempotency_key")
    postings = list(session.scalars(
        insert(Posting).returning(Posting, sort_by_parameter_order=True),
        [{"transfer_id": transfer.id, "account_id": leg.account_id, "amount": leg.amount,
          "balance_after": after[leg.account_id]} for leg in sorted(legs, key=lambda leg: leg.account_id)],
    ))
    set_committed_value(transfer, "postings", postings)
    for account_id, value in after.items():
        accounts[account_id].balance = value
    session.flush()
    return transfer


# --- what members and coordinators do --------------------------------------------------------


def _clean_minutes(problems: Any, minutes: Any) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        problems.add("minutes", "ledger.minutes_not_whole", given=repr(minutes))
    elif minutes <= 0:
        problems.add("minutes", "ledger.minutes_not_positive", given_minutes=minutes)


def _member_payee(session: Session, payer: Member, payee: str | int) -> Member:
    return _payee_and_account(session, payer, payee)[0]


def _payee_and_account(session: Session, payer: Member, payee: str | int) -> tuple[Member, Account | None]:
    """The payee (a member of the payer's cooperative, by username or id) and their account."""
    stmt = (select(Member, Account).outerjoin(Account, Account.member_id == Member.id)
            .where(Member.cooperative_id == payer.cooperative_id).options(lazyload(Member.role_rows)))
    raw = str(payee).strip().lower()
    by_id = raw.isdigit() and int(raw) <= MAX_ID
    stmt = stmt.where(Member.id == int(raw)) if by_id else stmt.where(Member.username == raw)
    row = session.execute(stmt).first()
    if row is None:
        raise ValidationFailed("ledger.no_payee", field="payee", payee=str(payee))
    return row[0], row[1]


def pay(
    session: Session,
    *,
    payer: Member,
    minutes: int,
    reason: str,
    idempotency_key: str,
    payee: str | int | None = None,
    to_account_id: int | None = None,
) -> Transfer:
    """A member pays another member (username or id) or an account for a service.

    A payee written ``username@cooperative-slug`` in another cooperative is paid across the
    clearing line between the two (``commons_map.clearing``); the payer's transfer is returned.
    """
    require_member(payer, payer.cooperative_id)
    if isinstance(payee, str) and "@" in payee:
        from commons_map.clearing import service as clearing

        username, slug = clearing.split_payee(payee) or ("", "")
        own = session.scalar(select(Cooperative.slug).where(Cooperative.id == payer.cooperative_id))
        if slug != own or to_account_id is not None:
            if to_account_id is not None:
                raise ValidationFailed("ledger.payee_or_account", field="payee")
            crossing = clearing.pay_across(session, payer=payer, payee=payee, minutes=minutes, reason=reason,
                                           idempotency_key=idempotency_key)
            if crossing.replayed:
                crossing.payer_transfer._replayed = True  # type: ignore[attr-defined]
            return crossing.payer_transfer
        payee = username  # our own cooperative, named in full
    problems = collector()
    _clean_minutes(problems, minutes)
    if (payee is None) == (to_account_id is None):
        problems.add("payee", "ledger.payee_or_account")
    problems.raise_if_any("ledger.payment_invalid")
    if payee is not None:
        member, account = _payee_and_account(session, payer, payee)
        if member.id == payer.id:
            raise ValidationFailed("ledger.self_payment", field="payee")
        if not member.is_active:
            raise ValidationFailed("ledger.account_closed", field="payee", account=member.display_name)
        target = account or ensure_member_account(session, member=member)
        field_name = "payee"
    else:
        target = session.get(Account, to_account_id)
        if target is None or target.cooperative_id != payer.cooperative_id:
            raise ValidationFailed("ledger.no_account_here", field="to_account_id", account_id=to_account_id)
        if target.member_id == payer.id:
            raise ValidationFailed("ledger.self_payment", field="to_account_id")
        field_name = "to_account_id"
    if target.archived_at is not None:
        raise ValidationFailed("ledger.account_closed", field=field_name, account=target.name)
    source = ensure_member_account(session, member=payer)
    transfer = post(
        session, cooperative_id=payer.cooperative_id, kind="service_payment",
        legs=[Leg(source.id, -minutes), Leg(target.id, minutes)], reason=reason,
        initiated_by=payer, idempotency_key=idempotency_key,
    )
    if target.member_id is not None:  # the payee hears of it (once, whatever the retries)
        notify(session, recipients=[target.member_id], kind="hours_received", code="notify.hours_received",
               params={"minutes": minutes, "payer": payer.display_name}, link="/app/account",
               dedupe=f"transfer:{transfer.id}:received")
    return transfer


def pay_cooperative(
    session: Session,
    *,
    member: Member,
    minutes: int,
    reason: str,
    idempotency_key: str,
    kind: str = "booking_contribution",
) -> Transfer:
    """A member pays the cooperative account (a booking contribution...), limits enforced."""
    require_member(member, member.cooperative_id)
    problems = collector()
    _clean_minutes(problems, minutes)
    if kind not in ("booking_contribution", "service_payment"):
        problems.add("kind", "ledger.member_payment_kind", kind=kind)
    problems.raise_if_any("ledger.payment_invalid")
    source = ensure_member_account(session, member=member)
    coop = cooperative_account(session, cooperative_id=member.cooperative_id)
    return post(
        session, cooperative_id=member.cooperative_id, kind=kind,
        legs=[Leg(source.id, -minutes), Leg(coop.id, minutes)], reason=reason,
        initiated_by=member, idempotency_key=idempotency_key,
    )


def adjust(
    session: Session,
    *,
    actor: Member,
    minutes: int,
    reason: str,
    idempotency_key: str,
    member: str | int | None = None,
    account_id: int | None = None,
) -> Transfer:
    """Coordinators credit (minutes > 0) or debit (< 0) an account against the cooperative's."""
    require_coordinator(actor, actor.cooperative_id)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes == 0:
        raise ValidationFailed("ledger.adjust_minutes", field="minutes", given=repr(minutes))
    if (member is None) == (account_id is None):
        raise ValidationFailed("ledger.member_or_account", field="member")
    if member is not None:
        target = ensure_member_account(session, member=_member_payee(session, actor, member))
    else:
        found = session.get(Account, account_id)
        if found is None or found.cooperative_id != actor.cooperative_id:
            raise ValidationFailed("ledger.no_account_here", field="account_id", account_id=account_id)
        target = found
    if target.member_id == actor.id:  # four eyes: another coordinator adjusts a coordinator's own hours
        raise PermissionDenied("ledger.adjust_own_account", field="member" if member is not None else "account_id")
    coop = cooperative_account(session, cooperative_id=actor.cooperative_id)
    if target.id == coop.id:
        raise ValidationFailed("ledger.adjust_cooperative", field="account_id")
    return post(
        session, cooperative_id=actor.cooperative_id, kind="adjustment",
        legs=[Leg(coop.id, -minutes), Leg(target.id, minutes)], reason=reason,
        initiated_by=actor, idempotency_key=idempotency_key,
    )


def get_transfer(session: Session, *, actor: Member | None, transfer_id: int) -> Transfer:
    """A transfer the actor may see: one touching their account, or any for coordinators."""
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or (actor is not None and not _may_see_transfer(session, actor, transfer)):
        raise NotFound("ledger.no_transfer", field="transfer_id", transfer_id=transfer_id)
    return transfer


def _may_see_transfer(session: Session, actor: Member, transfer: Transfer) -> bool:
    if transfer.cooperative_id != actor.cooperative_id or not actor.is_active:
        return False
    if actor.is_coordinator:
        return True
    mine = session.scalar(select(Account.id).where(Account.member_id == actor.id))
    return any(p.account_id == mine for p in transfer.postings)


def post_reversal(
    session: Session, *, actor: Member | None, transfer: Transfer, reason: str, idempotency_key: str
) -> Transfer:
    """The reversal of a transfer (permissions checked by the caller): every posting negated."""
    from commons_map.clearing.service import is_crossing

    if is_crossing(session, transfer.id):  # one side alone would break the mirror of the two ledgers
        raise Conflict("clearing.reverse_crossing", field="transfer_id", transfer_id=transfer.id)
    existing = _by_key(session, transfer.cooperative_id, (idempotency_key or "").strip())
    if transfer.kind == "reversal":
        raise ValidationFailed("ledger.reverse_reversal", field="transfer_id", transfer_id=transfer.id)
    if existing is None:
        already = session.scalar(select(Transfer.id).where(Transfer.reverses_id == transfer.id))
        if already is not None:
            raise Conflict("ledger.reversed_by", field="transfer_id", transfer_id=transfer.id,
                           reversal_id=already)
    legs = [Leg(p.account_id, -p.amount) for p in transfer.postings]
    return post(
        session, cooperative_id=transfer.cooperative_id, kind="reversal", legs=legs,
        reason=reason, initiated_by=actor, idempotency_key=idempotency_key,
        work_log_id=transfer.work_log_id, reverses_id=transfer.id, limit_field="transfer_id",
    )


def reverse(
    session: Session, *, actor: Member | None, transfer_id: int, reason: str, idempotency_key: str
) -> Transfer:
    """Reverse a transfer with a new one. ``actor=None`` is the system (a cancelled booking).

    Coordinators reverse any transfer; the payee of a service payment may refund it. Work
    credits are corrected through the work log (``worklog.service.correct``).
    """
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or (actor is not None and transfer.cooperative_id != actor.cooperative_id):
        raise NotFound("ledger.no_transfer", field="transfer_id", transfer_id=transfer_id)
    if actor is not None and not is_coordinator_of(actor, transfer.cooperative_id):
        require_member(actor, transfer.cooperative_id)
        mine = session.scalar(select(Account.id).where(Account.member_id == actor.id))
        payee = any(p.account_id == mine and p.amount > 0 for p in transfer.postings)
        if not (transfer.kind == "service_payment" and payee):
            if not _may_see_transfer(session, actor, transfer):
                raise NotFound("ledger.no_transfer", field="transfer_id", transfer_id=transfer_id)
            raise PermissionDenied("ledger.reverse_not_allowed", field="transfer_id")
    return post_reversal(session, actor=actor, transfer=transfer, reason=reason,
                         idempotency_key=idempotency_key)


def transfer_out(session: Session, transfer: Transfer) -> dict[str, Any]:
    """A transfer as the API shows it."""
    names = dict(session.execute(
        select(Account.id, Account.name).where(Account.id.in_([p.account_id for p in transfer.postings]))
    ).all())
    reversed_by = session.scalar(select(Transfer.id).where(Transfer.reverses_id == transfer.id))
    return {
        "id": transfer.id, "kind": transfer.kind, "reason": transfer.reason,
        "initiated_by_id": transfer.initiated_by_id, "idempotency_key": transfer.idempotency_key,
        "work_log_id": transfer.work_log_id, "reverses_id": transfer.reverses_id,
        "reversed_by_id": reversed_by, "created_at": transfer.created_at,
        "postings": [{"account_id": p.account_id, "account": names.get(p.account_id, ""), "amount": p.amount}
                     for p in transfer.postings],
    }


# --- statements and figures -------------------------------------------------------------------


def account_for_statement(session: Session, *, actor: Member, member: str | int | None = None,
                          account_id: int | None = None) -> Account:
    """The account whose statement the actor asks for: their own, or any for coordinators."""
    require_member(actor, actor.cooperative_id)
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is None or account.cooperative_id != actor.cooperative_id:
            raise NotFound("ledger.no_account", field="account_id", account_id=account_id)
    elif member is not None:
        from commons_map.people.service import get_member

        account = ensure_member_account(
            session, member=get_member(session, cooperative_id=actor.cooperative_id, username_or_id=member))
    else:
        account = ensure_member_account(session, member=actor)
    if account.member_id != actor.id and not actor.is_coordinator:
        raise PermissionDenied("ledger.statement_not_yours", field="account")
    return account


def _period_bounds(session: Session, cooperative_id: int, date_from: date | None,
                   date_to: date | None) -> tuple[datetime | None, datetime | None]:
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed("ledger.period_inverted", field="from", date_from=date_from, date_to=date_to)
    coop = session.get(Cooperative, cooperative_id)
    tz = ZoneInfo(coop.timezone if coop else "Europe/Paris")
    start = datetime.combine(date_from, time(), tz) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time(), tz) if date_to else None
    return start, end


def statement(session: Session, *, account: Account, date_from: date | None = None,
              date_to: date | None = None) -> dict[str, Any]:
    """The account's postings over a period with running balance (the caller checked access)."""
    start, end = _period_bounds(session, account.cooperative_id, date_from, date_to)
    opening = 0
    if start is not None:
        opening = session.scalar(
            select(Posting.balance_after).join(Transfer)
            .where(Posting.account_id == account.id, Transfer.created_at < start)
            .order_by(Posting.id.desc()).limit(1)
        ) or 0
    stmt = (select(Posting, Transfer).join(Transfer).where(Posting.account_id == account.id)
            .order_by(Posting.id))
    if start is not None:
        stmt = stmt.where(Transfer.created_at >= start)
    if end is not None:
        stmt = stmt.where(Transfer.created_at < end)
    rows = session.execute(stmt).all()
    others: dict[int, list[str]] = defaultdict(list)
    if rows:
        for tid, name in session.execute(
            select(Posting.transfer_id, Account.name).join(Account, Account.id == Posting.account_id)
            .where(Posting.transfer_id.in_([t.id for _, t in rows]), Posting.account_id != account.id)
            .order_by(Posting.id)
        ):
            others[tid].append(name)
    lines = []
    running = opening
    for posting, transfer in rows:
        running += posting.amount
        lines.append({
            "posting_id": posting.id, "transfer_id": transfer.id, "at": transfer.created_at,
            "kind": transfer.kind, "reason": transfer.reason, "counterparty": ", ".join(others[transfer.id]),
            "amount": posting.amount, "balance": running,
        })
    return {
        "account": account_out(session, account), "date_from": date_from, "date_to": date_to,
        "opening_balance": opening, "closing_balance": running,
        "credits": sum(line["amount"] for line in lines if line["amount"] > 0),
        "debits": -sum(line["amount"] for line in lines if line["amount"] < 0),
        "lines": lines,
    }


STATEMENT_COLUMNS = ["date", "transfer_id", "kind", "reason", "counterparty", "amount_minutes", "balance_minutes"]


def statement_csv(data: dict[str, Any]) -> str:
    """A statement as CSV: opening line, one line per posting, closing line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(STATEMENT_COLUMNS)
    w.writerow([data["date_from"] or "", "", "opening", "Solde d'ouverture / opening balance", "", "",
                data["opening_balance"]])
    for line in data["lines"]:
        at = line["at"]
        w.writerow([at.isoformat() if hasattr(at, "isoformat") else at, line["transfer_id"], line["kind"],
                    line["reason"], line["counterparty"], line["amount"], line["balance"]])
    w.writerow([data["date_to"] or "", "", "closing", "Solde de clôture / closing balance", "", "",
                data["closing_balance"]])
    return buf.getvalue()


def minutes_by_commons(session: Session, *, cooperative_id: int, year: int | None = None) -> dict[int, int]:
    """Approved work minutes per commons id (for the maps and the reports)."""
    from commons_map.worklog.models import WorkLog

    stmt = (select(WorkLog.commons_id, func.sum(WorkLog.minutes))
            .where(WorkLog.cooperative_id == cooperative_id, WorkLog.state == "approved")
            .group_by(WorkLog.commons_id))
    if year is not None:
        stmt = stmt.where(extract("year", WorkLog.work_date) == year)
    return {int(cid): int(total) for cid, total in session.execute(stmt)}


def figures(session: Session, *, cooperative_id: int, actor: Member | None, year: int | None = None,
            all_commons: bool = False) -> dict[str, Any]:
    """Approved work per commons, per activity and per month, over what the actor may see.

    ``all_commons`` is for the operator's CLI; anonymous callers see public commons only.
    """
    from commons_map.register.models import Commons
    from commons_map.register.service import visible_clause
    from commons_map.worklog.models import Activity, WorkLog

    conds = [WorkLog.cooperative_id == cooperative_id, WorkLog.state == "approved"]
    if year is not None:
        conds.append(extract("year", WorkLog.work_date) == year)
    if not all_commons:
        conds.append(visible_clause(actor, Commons))
    base = select(WorkLog).join(Commons, Commons.id == WorkLog.commons_id).where(and_(*conds)).subquery()
    per_commons = session.execute(
        select(Commons.id, Commons.name, func.sum(base.c.minutes), func.count())
        .join(base, base.c.commons_id == Commons.id).group_by(Commons.id, Commons.name)
        .order_by(func.sum(base.c.minutes).desc(), Commons.id)
    ).all()
    per_activity = session.execute(
        select(Activity.code, Activity.label_fr, Activity.label_en, func.sum(base.c.minutes), func.count())
        .join(base, base.c.activity_code == Activity.code)
        .group_by(Activity.code, Activity.label_fr, Activity.label_en)
        .order_by(func.sum(base.c.minutes).desc(), Activity.code)
    ).all()
    month = func.to_char(base.c.work_date, "YYYY-MM")
    per_month = session.execute(
        select(month, func.sum(base.c.minutes), func.count()).group_by(month).order_by(month)
    ).all()

    def h(m: int) -> float:
        return round(int(m) / 60, 2)

    total = sum(int(r[2]) for r in per_commons)
    return {
        "cooperative_id": cooperative_id, "year": year, "total_minutes": total, "total_hours": h(total),
        "per_commons": [{"commons_id": i, "name": n, "minutes": int(m), "hours": h(m), "logs": c}
                        for i, n, m, c in per_commons],
        "per_activity": [{"activity": code, "label_fr": fr, "label_en": en, "minutes": int(m), "hours": h(m),
                          "logs": c} for code, fr, en, m, c in per_activity],
        "per_month": [{"month": mo, "minutes": int(m), "hours": h(m), "logs": c} for mo, m, c in per_month],
    }


# --- the invariant ----------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What `commons-map ledger check` found."""

    accounts: int = 0
    transfers: int = 0
    postings: int = 0
    total_balance: int = 0
    breaches: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaches


def check(session: Session, *, cooperative_id: int | None = None) -> CheckReport:
    """Verify the ledger: balances sum to zero, each equals its postings, transfers balance."""
    from commons_map.worklog.models import WorkLog

    report = CheckReport()
    acc_where = [Account.cooperative_id == cooperative_id] if cooperative_id is not None else []
    tr_where = [Transfer.cooperative_id == cooperative_id] if cooperative_id is not None else []
    report.accounts = session.scalar(select(func.count()).select_from(Account).where(*acc_where)) or 0
    report.transfers = session.scalar(select(func.count()).select_from(Transfer).where(*tr_where)) or 0
    report.postings = session.scalar(
        select(func.count()).select_from(Posting).join(Transfer).where(*tr_where)) or 0
    for coop_id, total in session.execute(
        select(Account.cooperative_id, func.coalesce(func.sum(Account.balance), 0))
        .where(*acc_where).group_by(Account.cooperative_id).order_by(Account.cooperative_id)
    ):
        report.total_balance += int(total)
        if total != 0:
            report.breaches.append(f"cooperative {coop_id}: balances sum to {total} minutes, not 0")
    sums = (select(Posting.account_id, func.sum(Posting.amount).label("total"),
                   func.max(Posting.id).label("last_id"))
            .group_by(Posting.account_id).subquery())
    last = Posting.__table__.alias("last")
    for acc_id, name, bal, total, last_after in session.execute(
        select(Account.id, Account.name, Account.balance, func.coalesce(sums.c.total, 0), last.c.balance_after)
        .outerjoin(sums, sums.c.account_id == Account.id)
        .outerjoin(last, last.c.id == sums.c.last_id)
        .where(*acc_where,
               or_(Account.balance != func.coalesce(sums.c.total, 0),
                   and_(last.c.id.is_not(None), last.c.balance_after != Account.balance)))
        .order_by(Account.id)
    ):
        report.breaches.append(
            f"account {acc_id} ({name}): cached balance {bal} but its postings sum to {total}"
            f" (last running balance {last_after})"
        )
    counts = (select(Transfer.id, func.count(Posting.id).label("n"),
                     func.coalesce(func.sum(Posting.amount), 0).label("total"))
              .outerjoin(Posting, Posting.transfer_id == Transfer.id).where(*tr_where)
              .group_by(Transfer.id).subquery())
    for tid, n, total in session.execute(
        select(counts.c.id, counts.c.n, counts.c.total)
        .where(or_(counts.c.n < 2, counts.c.total != 0)).order_by(counts.c.id)
    ):
        report.breaches.append(f"transfer {tid}: {n} posting(s) summing to {total}")
    wl_where = [WorkLog.cooperative_id == cooperative_id] if cooperative_id is not None else []
    credits = (select(Transfer.work_log_id, func.count().label("n")).where(Transfer.kind == "work_credit")
               .group_by(Transfer.work_log_id).subquery())
    for log_id, state, n in session.execute(
        select(WorkLog.id, WorkLog.state, func.coalesce(credits.c.n, 0))
        .outerjoin(credits, credits.c.work_log_id == WorkLog.id)
        .where(*wl_where, or_(
            and_(WorkLog.state.in_(("approved", "corrected")), func.coalesce(credits.c.n, 0) != 1),
            and_(WorkLog.state.in_(("submitted", "rejected")), func.coalesce(credits.c.n, 0) != 0),
        )).order_by(WorkLog.id)
    ):
        report.breaches.append(f"work log {log_id} ({state}) has {n} work credit(s)")
    settings_by_coop: dict[int, dict[str, Any]] = {}
    for account in session.scalars(select(Account).where(*acc_where).order_by(Account.id)):
        if account.cooperative_id not in settings_by_coop:
            settings_by_coop[account.cooperative_id] = _settings(session, account.cooperative_id)
        lo, hi = limits_of(account, settings_by_coop[account.cooperative_id])
        if (lo is not None and account.balance < lo) or (hi is not None and account.balance > hi):
            report.warnings.append(
                f"account {account.id} ({account.name}): balance {account.balance} outside its limits"
                f" [{lo}, {hi}] (limits changed since?)"
            )
    return report
