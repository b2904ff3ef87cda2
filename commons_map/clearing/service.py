"""Clearing lines between cooperatives and the payments that cross them.

Each cooperative keeps its own double-entry ledger, which still sums to zero. A crossing payment
from ``a@A`` to ``b@B`` is two transfers in one database transaction:

- in A's ledger, ``a`` is debited and A's clearing account for B is credited;
- in B's ledger, B's clearing account for A is debited and ``b`` is credited.

So A's account for B always equals minus B's account for A (:func:`check_network` says so). A's
account for B is what A owes B; it may never pass the line's limit, which both sides agreed to:
a coordinator of one proposes the line, a coordinator of the other accepts it (four eyes across
cooperatives). Lowering a limit is either side's right (never below what is owed); raising it
is proposed by one side and accepted by the other.

Locks, always in this order: the line row, then the payer's side's accounts (id order), then the
payee's side's (id order). Crossing payments on one line are thus in single file. Payments on
three or more lines sharing members could in theory wait on each other in a ring; PostgreSQL
detects it and one of them fails whole (nothing written), to be retried.

Under row-level security the acting cooperative is the payer's: every write into the payee's
ledger is in :func:`_post_in_other_ledger`, every read there in the two readers beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from commons_map.clearing.models import ClearingLine, ClearingLineHistory, ClearingPayment
from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Account, Posting, Transfer
from commons_map.notify.service import notify
from commons_map.people.cooperatives import get_by_slug
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import require_coordinator, require_member
from commons_map.tenancy import acting_cooperative

MAX_LIMIT = 1_000_000  # minutes: beyond anything two cooperatives would agree to


class LineLimitExceeded(ledger.LimitExceeded):
    """A crossing payment would take what one cooperative owes the other past the line's limit."""


# --- cooperatives named in a request -----------------------------------------------------------


def _partner(session: Session, slug: str, *, field: str) -> Cooperative:
    """An active cooperative named by the caller's input: unknown or archived is bad input."""
    try:
        return get_by_slug(session, slug, field=field)
    except (NotFound, Conflict) as exc:
        raise ValidationFailed(exc.code, field=field, **exc.params) from None


def _name(session: Session, cooperative_id: int) -> str:
    return session.scalar(select(Cooperative.name).where(Cooperative.id == cooperative_id)) or str(cooperative_id)


def _check_limit(problems: Any, limit_minutes: Any) -> None:
    if isinstance(limit_minutes, bool) or not isinstance(limit_minutes, int):
        problems.add("limit_minutes", "ledger.minutes_not_whole", given=repr(limit_minutes))
    elif not 0 < limit_minutes <= MAX_LIMIT:
        problems.add("limit_minutes", "clearing.limit_range", given_minutes=limit_minutes, max_minutes=MAX_LIMIT)


# --- clearing accounts -------------------------------------------------------------------------


def clearing_account(session: Session, *, cooperative_id: int, partner_cooperative_id: int) -> Account:
    """``cooperative_id``'s account for the partner in its own ledger, opened on first use."""
    stmt = select(Account).where(Account.cooperative_id == cooperative_id, Account.kind == "clearing",
                                 Account.partner_cooperative_id == partner_cooperative_id)
    account = session.scalar(stmt)
    if account is not None:
        return account
    session.execute(
        pg_insert(Account)
        .values(cooperative_id=cooperative_id, kind="clearing", partner_cooperative_id=partner_cooperative_id,
                name=f"Compensation : {_name(session, partner_cooperative_id)}")
        .on_conflict_do_nothing(index_elements=["cooperative_id", "partner_cooperative_id"],
                                index_where=Account.kind == "clearing")
    )
    return session.scalars(stmt).one()


# --- lines -------------------------------------------------------------------------------------


def _pair(a: int, b: int) -> Any:
    return or_(
        (ClearingLine.cooperative_id == a) & (ClearingLine.partner_cooperative_id == b),
        (ClearingLine.cooperative_id == b) & (ClearingLine.partner_cooperative_id == a),
    )


def _history(session: Session, line: ClearingLine, actor: Member, action: str, **changes: Any) -> None:
    session.add(ClearingLineHistory(line_id=line.id, cooperative_id=actor.cooperative_id, member_id=actor.id,
                                    action=action, changes=changes))


def propose_line(session: Session, *, actor: Member, partner: str, limit_minutes: int) -> ClearingLine:
    """A coordinator proposes a clearing line to another cooperative (its coordinator accepts it)."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    _check_limit(problems, limit_minutes)
    problems.raise_if_any("clearing.line_invalid")
    other = _partner(session, partner, field="partner")
    if other.id == actor.cooperative_id:
        raise ValidationFailed("clearing.line_to_self", field="partner")
    existing = session.scalar(select(ClearingLine.id).where(_pair(actor.cooperative_id, other.id)))
    if existing is not None:
        raise Conflict("clearing.line_exists", field="partner", line_id=existing, cooperative=other.name)
    line = session.scalars(
        pg_insert(ClearingLine)
        .values(cooperative_id=actor.cooperative_id, partner_cooperative_id=other.id, state="proposed",
                limit_minutes=limit_minutes, proposed_by_id=actor.id)
        .on_conflict_do_nothing().returning(ClearingLine)
    ).one_or_none()
    if line is None:  # the other side proposed at the same moment
        again = session.scalar(select(ClearingLine.id).where(_pair(actor.cooperative_id, other.id)))
        raise Conflict("clearing.line_exists", field="partner", line_id=again, cooperative=other.name)
    clearing_account(session, cooperative_id=actor.cooperative_id, partner_cooperative_id=other.id)
    _history(session, line, actor, "proposed", limit_minutes=limit_minutes)
    session.flush()
    return line


def _line_for(session: Session, actor: Member, line_id: int, *, lock: bool = False) -> ClearingLine:
    stmt = select(ClearingLine).where(ClearingLine.id == line_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    line = session.scalar(stmt)
    if line is None or actor.cooperative_id not in line.sides():
        raise NotFound("clearing.no_line_id", field="line_id", line_id=line_id)
    return line


def accept_line(session: Session, *, actor: Member, line_id: int) -> ClearingLine:
    """A coordinator of the other side accepts a proposed line, or a proposed raise of its limit."""
    require_coordinator(actor, actor.cooperative_id)
    line = _line_for(session, actor, line_id, lock=True)
    for side in line.sides():
        get_by_slug(session, session.scalar(select(Cooperative.slug).where(Cooperative.id == side)) or "",
                    field="line_id")
    if line.state == "proposed":
        if actor.cooperative_id == line.cooperative_id:
            raise PermissionDenied("clearing.accept_own_proposal", field="line_id", line_id=line.id)
        line.state, line.accepted_by_id, line.accepted_at = "accepted", actor.id, func.now()
        clearing_account(session, cooperative_id=actor.cooperative_id, partner_cooperative_id=line.cooperative_id)
        _history(session, line, actor, "accepted", limit_minutes=line.limit_minutes)
    elif line.proposed_limit_minutes is not None:
        proposer = session.get(Member, line.limit_proposed_by_id)
        if proposer is not None and proposer.cooperative_id == actor.cooperative_id:
            raise PermissionDenied("clearing.accept_own_proposal", field="line_id", line_id=line.id)
        old, new = line.limit_minutes, line.proposed_limit_minutes
        line.limit_minutes, line.proposed_limit_minutes, line.limit_proposed_by_id = new, None, None
        _history(session, line, actor, "limit_raised", limit_minutes=[old, new])
    else:
        raise Conflict("clearing.nothing_to_accept", field="line_id", line_id=line.id)
    session.flush()
    session.refresh(line)
    return line


def owed(session: Session, line: ClearingLine) -> int:
    """How far one side owes the other on this line now (minutes, whichever side owes)."""
    a, b = line.sides()
    balances = (clearing_balance(session, cooperative_id=a, partner_cooperative_id=b),
                clearing_balance(session, cooperative_id=b, partner_cooperative_id=a))
    return max((abs(b) for b in balances), default=0)


def change_limit(session: Session, *, actor: Member, line_id: int, limit_minutes: int) -> ClearingLine:
    """Lower the line's limit (either side, never below what is owed), or propose to raise it."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    _check_limit(problems, limit_minutes)
    problems.raise_if_any("clearing.line_invalid")
    line = _line_for(session, actor, line_id, lock=True)
    if line.state != "accepted":
        raise Conflict("clearing.line_not_accepted", field="line_id", line_id=line.id,
                       cooperative=_name(session, line.other_side(actor.cooperative_id)))
    old = line.limit_minutes
    if limit_minutes < old:
        # The line is locked: no crossing payment moves what is owed while we read it.
        now_owed = owed(session, line)
        if now_owed > limit_minutes:
            raise Conflict("clearing.limit_below_owed", field="limit_minutes", line_id=line.id,
                           limit_minutes=limit_minutes, owed_minutes=now_owed)
        line.limit_minutes = limit_minutes
        if line.proposed_limit_minutes is not None and line.proposed_limit_minutes <= limit_minutes:
            line.proposed_limit_minutes, line.limit_proposed_by_id = None, None
        _history(session, line, actor, "limit_lowered", limit_minutes=[old, limit_minutes])
    elif limit_minutes > old:
        line.proposed_limit_minutes, line.limit_proposed_by_id = limit_minutes, actor.id
        _history(session, line, actor, "limit_raise_proposed", limit_minutes=[old, limit_minutes])
    session.flush()
    session.refresh(line)
    return line


def list_lines(session: Session, *, actor: Member) -> list[ClearingLine]:
    """The lines of the actor's cooperative, proposed or accepted (members see them)."""
    require_member(actor, actor.cooperative_id)
    return list(session.scalars(
        select(ClearingLine).where(or_(ClearingLine.cooperative_id == actor.cooperative_id,
                                       ClearingLine.partner_cooperative_id == actor.cooperative_id))
        .order_by(ClearingLine.id)
    ))


def line_out(session: Session, line: ClearingLine, *, for_cooperative_id: int) -> dict[str, Any]:
    """A line as one side sees it: the other side, the limit, and what each owes."""
    mine = clearing_balance(session, cooperative_id=for_cooperative_id,
                            partner_cooperative_id=line.other_side(for_cooperative_id))
    other = session.get(Cooperative, line.other_side(for_cooperative_id))
    return {
        "id": line.id, "state": line.state, "partner": other.slug if other else None,
        "partner_name": other.name if other else None, "proposed_here": line.cooperative_id == for_cooperative_id,
        "limit_minutes": line.limit_minutes, "proposed_limit_minutes": line.proposed_limit_minutes,
        # Our account for them: positive is what we owe them, negative what they owe us.
        "we_owe_minutes": max(mine, 0), "they_owe_minutes": max(-mine, 0),
        "created_at": line.created_at, "accepted_at": line.accepted_at,
    }


def clearing_balance(session: Session, *, cooperative_id: int, partner_cooperative_id: int) -> int:
    """The balance of ``cooperative_id``'s clearing account for the partner (0 if none yet)."""
    return int(session.scalar(select(Account.balance).where(
        Account.cooperative_id == cooperative_id, Account.kind == "clearing",
        Account.partner_cooperative_id == partner_cooperative_id)) or 0)


# --- crossing payments -------------------------------------------------------------------------


def split_payee(payee: str | int) -> tuple[str, str] | None:
    """``("b", "slug")`` for a payee written ``b@slug``; None for a local payee."""
    raw = str(payee).strip().lower()
    if "@" not in raw:
        return None
    username, _, slug = raw.rpartition("@")
    return username, slug


@dataclass
class Crossing:
    """A crossing payment as the payer's side answers it."""

    payment: ClearingPayment
    payer_transfer: Transfer
    payee_transfer: Transfer
    replayed: bool


def _payee_in_other_cooperative(session: Session, *, cooperative_id: int, username: str) -> Member | None:
    """READS ACROSS COOPERATIVES: the payee, a member of ``cooperative_id`` (not the acting member's),
    read as that cooperative (row-level security, commons_map.tenancy)."""
    with acting_cooperative(session, cooperative_id):
        return session.scalar(select(Member).where(Member.cooperative_id == cooperative_id,
                                                   Member.username == username))


def _payee_of_mirror(session: Session, *, cooperative_id: int, transfer_id: int) -> tuple[Transfer, int | None]:
    """READS ACROSS COOPERATIVES: a mirror transfer in ``cooperative_id``'s ledger and the member it
    credited, read as that cooperative."""
    with acting_cooperative(session, cooperative_id):
        transfer = session.get(Transfer, transfer_id)
        assert transfer is not None  # clearing_payments.payee_transfer_id is a foreign key
        member_id = session.scalar(select(Account.member_id).join(Posting, Posting.account_id == Account.id)
                                   .where(Posting.transfer_id == transfer_id, Posting.amount > 0))
    return transfer, member_id


def _post_in_other_ledger(
    session: Session,
    *,
    cooperative_id: int,
    partner_cooperative_id: int,
    payee: Member,
    minutes: int,
    reason: str,
    payer: Member,
    idempotency_key: str,
) -> Transfer:
    """The mirror posting: THIS CROSSES COOPERATIVES. It writes into ``cooperative_id``'s ledger
    (the payee's cooperative, not the acting member's): the payee's account is opened if needed,
    its clearing account for ``partner_cooperative_id`` (the payer's) is debited, the payee
    credited (both locked by :func:`ledger.service.post`), and the payee is notified. Every write a
    crossing payment makes in the other cooperative is here and nowhere else, so that the
    database's row-level security can let this one function through (the lead wraps it at merge;
    the two small readers above, ``_payee_in_other_cooperative`` and ``_payee_of_mirror``, read there)."""
    payer_name = f"{payer.display_name} ({_name(session, payer.cooperative_id)})"
    # Row-level security lets the app write only the acting cooperative's rows: this one step acts
    # as the payee's cooperative, then the transaction acts as the payer's again.
    with acting_cooperative(session, cooperative_id):
        theirs = clearing_account(session, cooperative_id=cooperative_id,
                                  partner_cooperative_id=partner_cooperative_id)
        target = ledger.ensure_member_account(session, member=payee)
        transfer = ledger.post(
            session, cooperative_id=cooperative_id, kind="service_payment",
            legs=[ledger.Leg(theirs.id, -minutes), ledger.Leg(target.id, minutes)], reason=reason,
            initiated_by=None, idempotency_key=idempotency_key, limit_field="payee",
        )
        notify(session, recipients=[payee.id], kind="hours_received", code="notify.hours_received",
               params={"minutes": minutes, "payer": payer_name}, link="/app/account",
               dedupe=f"transfer:{transfer.id}:received")
        session.flush()
    return transfer


def _existing(session: Session, payer_transfer: Transfer, payee: Member) -> Crossing:
    payment = session.scalars(
        select(ClearingPayment).where(ClearingPayment.payer_transfer_id == payer_transfer.id)).one()
    payee_transfer, to = _payee_of_mirror(session, cooperative_id=payment.partner_cooperative_id,
                                          transfer_id=payment.payee_transfer_id)
    if to != payee.id:  # the same key again, for another payee in the same cooperative
        raise Conflict("ledger.key_reused", field="idempotency_key", key=payer_transfer.idempotency_key,
                       transfer_id=payer_transfer.id)
    return Crossing(payment, payer_transfer, payee_transfer, replayed=True)


def pay_across(
    session: Session, *, payer: Member, payee: str, minutes: int, reason: str, idempotency_key: str
) -> Crossing:
    """A member pays a member of another cooperative (``username@cooperative-slug``) through the
    clearing line between them: both ledgers in the caller's transaction, once per key."""
    require_member(payer, payer.cooperative_id)
    problems = collector()
    ledger._clean_minutes(problems, minutes)
    problems.raise_if_any("ledger.payment_invalid")
    parts = split_payee(payee)
    if parts is None or not parts[0] or not parts[1]:
        raise ValidationFailed("ledger.no_payee", field="payee", payee=str(payee))
    username, slug = parts
    other = _partner(session, slug, field="payee")
    if other.id == payer.cooperative_id:
        raise ValidationFailed("clearing.payee_here", field="payee", payee=str(payee))
    to = _payee_in_other_cooperative(session, cooperative_id=other.id, username=username)
    if to is None:
        raise ValidationFailed("ledger.no_payee", field="payee", payee=str(payee))
    if not to.is_active:
        raise ValidationFailed("ledger.account_closed", field="payee", account=to.display_name)
    key = (idempotency_key or "").strip()
    if key:  # a retry is answered before any lock or limit: it was accepted the first time
        first = ledger._by_key(session, payer.cooperative_id, key)
        if first is not None:
            return _replay(session, payer, to, first, minutes, reason, key)

    line = session.scalar(select(ClearingLine).where(_pair(payer.cooperative_id, other.id))
                          .with_for_update().execution_options(populate_existing=True))
    if line is None:
        raise ValidationFailed("clearing.no_line", field="payee", cooperative=other.name)
    if line.state != "accepted":
        raise Conflict("clearing.line_not_accepted", field="payee", line_id=line.id, cooperative=other.name)
    source = ledger.ensure_member_account(session, member=payer)
    ours = clearing_account(session, cooperative_id=payer.cooperative_id, partner_cooperative_id=other.id)
    # Our side's accounts, in id order; the other side's are locked by the mirror posting. Crossing
    # payments on one line are already in single file behind the line's lock.
    ids = sorted({source.id, ours.id})
    locked = {a.id: a for a in session.scalars(
        select(Account).where(Account.id.in_(ids)).order_by(Account.id).with_for_update()
        .execution_options(populate_existing=True))}
    if key:  # a twin that held the line before us may have committed this very key
        first = ledger._by_key(session, payer.cooperative_id, key)
        if first is not None:
            return _replay(session, payer, to, first, minutes, reason, key)
    now_owed = locked[ours.id].balance
    if now_owed + minutes > line.limit_minutes:
        short = now_owed + minutes - line.limit_minutes
        raise LineLimitExceeded(
            "clearing.limit_exceeded", field="minutes", line_id=line.id, cooperative=other.name,
            limit_minutes=line.limit_minutes, owed_minutes=now_owed, short_minutes=short,
            detail={"line_id": line.id, "limit_minutes": line.limit_minutes, "owed_minutes": now_owed,
                    "exceeds_by_minutes": short},
        )
    with session.begin_nested():  # both ledgers or neither, even if the caller goes on after a refusal
        out = ledger.post(
            session, cooperative_id=payer.cooperative_id, kind="service_payment",
            legs=[ledger.Leg(source.id, -minutes), ledger.Leg(ours.id, minutes)], reason=reason,
            initiated_by=payer, idempotency_key=key,
        )
        back = _post_in_other_ledger(
            session, cooperative_id=other.id, partner_cooperative_id=payer.cooperative_id, payee=to, minutes=minutes,
            reason=(reason or "").strip(), payer=payer, idempotency_key=f"crossing:{out.id}",
        )
        payment = ClearingPayment(line_id=line.id, cooperative_id=payer.cooperative_id,
                                  partner_cooperative_id=other.id, payer_transfer_id=out.id,
                                  payee_transfer_id=back.id, minutes=minutes)
        session.add(payment)
        session.flush()
    return Crossing(payment, out, back, replayed=False)


def _replay(session: Session, payer: Member, to: Member, first: Transfer, minutes: int, reason: str,
            key: str) -> Crossing:
    ours = session.scalar(select(Account).where(Account.cooperative_id == payer.cooperative_id,
                                                Account.kind == "clearing",
                                                Account.partner_cooperative_id == to.cooperative_id))
    source = ledger.ensure_member_account(session, member=payer)
    if ours is None:
        raise Conflict("ledger.key_reused", field="idempotency_key", key=key, transfer_id=first.id)
    again = ledger.post(  # answers the first transfer, or key_reused when the content differs
        session, cooperative_id=payer.cooperative_id, kind="service_payment",
        legs=[ledger.Leg(source.id, -minutes), ledger.Leg(ours.id, minutes)], reason=reason,
        initiated_by=payer, idempotency_key=key,
    )
    return _existing(session, again, to)


def is_crossing(session: Session, transfer_id: int) -> bool:
    """True when the transfer is one side of a crossing payment (it cannot be reversed alone)."""
    return session.scalar(select(func.count()).select_from(ClearingPayment).where(or_(
        ClearingPayment.payer_transfer_id == transfer_id, ClearingPayment.payee_transfer_id == transfer_id))) > 0


# --- the network invariant ---------------------------------------------------------------------


def check_network(session: Session) -> ledger.CheckReport:
    """Every ledger checked (:func:`ledger.service.check`), then the network: each pair of
    clearing accounts mirror each other, every crossing payment has both sides, no line owes
    past its limit, and no clearing account moves without a line."""
    report = ledger.check(session)
    sums = (select(Posting.account_id, func.sum(Posting.amount).label("total"))
            .group_by(Posting.account_id).subquery())
    clearing = {
        (coop, partner): (acc_id, int(total))
        for acc_id, coop, partner, total in session.execute(
            select(Account.id, Account.cooperative_id, Account.partner_cooperative_id,
                   func.coalesce(sums.c.total, 0))
            .outerjoin(sums, sums.c.account_id == Account.id).where(Account.kind == "clearing"))
    }
    lines = {frozenset(line.sides()): line for line in session.scalars(select(ClearingLine))}
    for (coop, partner), (acc_id, total) in sorted(clearing.items()):
        line = lines.get(frozenset((coop, partner)))
        if line is None and total != 0:
            report.breaches.append(f"clearing account {acc_id} of cooperative {coop} for {partner}: "
                                   f"{total} minutes without a clearing line")
        if coop > partner:
            continue
        mirror = clearing.get((partner, coop), (None, 0))
        if total + mirror[1] != 0:
            report.breaches.append(
                f"clearing between cooperatives {coop} and {partner}: {coop}'s account for {partner} is {total}"
                f" but {partner}'s account for {coop} is {mirror[1]} (they must mirror: sum 0)")
        if line is not None and abs(total) > line.limit_minutes:
            report.breaches.append(f"clearing line {line.id}: {abs(total)} minutes owed, past its limit of "
                                   f"{line.limit_minutes}")
    payer_p = Posting.__table__.alias("pp")
    payee_p = Posting.__table__.alias("qp")
    acc_p = Account.__table__.alias("pa")
    acc_q = Account.__table__.alias("qa")
    for pid, minutes in session.execute(
        select(ClearingPayment.id, ClearingPayment.minutes)
        .where(~select(payer_p.c.id).join(acc_p, acc_p.c.id == payer_p.c.account_id)
               .where(payer_p.c.transfer_id == ClearingPayment.payer_transfer_id, acc_p.c.kind == "clearing",
                      acc_p.c.cooperative_id == ClearingPayment.cooperative_id,
                      acc_p.c.partner_cooperative_id == ClearingPayment.partner_cooperative_id,
                      payer_p.c.amount == ClearingPayment.minutes).exists()
               | ~select(payee_p.c.id).join(acc_q, acc_q.c.id == payee_p.c.account_id)
               .where(payee_p.c.transfer_id == ClearingPayment.payee_transfer_id, acc_q.c.kind == "clearing",
                      acc_q.c.cooperative_id == ClearingPayment.partner_cooperative_id,
                      acc_q.c.partner_cooperative_id == ClearingPayment.cooperative_id,
                      payee_p.c.amount == -ClearingPayment.minutes).exists())
        .order_by(ClearingPayment.id)
    ):
        report.breaches.append(f"crossing payment {pid} ({minutes} minutes) lacks one of its two sides")
    return report
