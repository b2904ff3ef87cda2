"""Time pages: my time account (statement, pay a member), stewards' approvals of hours and
reservation requests."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from api import pagedata as data
from api.fieldpages import number
from api.web import PREFIX, Form, PageDep, PageRoute, field_values, try_action
from commons_map.errors import collector

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _ledger():  # noqa: ANN202 - a module
    from commons_map.ledger import service

    return service


# --- my time account --------------------------------------------------------------------------


@router.get(PREFIX + "/account")
def account(page: PageDep) -> Response:
    """My balance and statement (the last 100 movements)."""
    me = page.require()
    ledger = _ledger()
    acc = ledger.account_for_statement(page.session, actor=me)
    st = ledger.statement(page.session, account=acc)
    lines = list(reversed(st["lines"]))[:100]
    return page.render("account.html", statement=st, lines=lines, kind_label=transfer_kind)


def transfer_kind(kind: str) -> str:
    """A transfer's kind in the current language."""
    from api.i18n import gettext as _

    return {
        "work_credit": _("work credited"),
        "service_payment": _("payment for a service"),
        "reversal": _("reversal"),
        "adjustment": _("adjustment by the coordinators"),
        "booking_contribution": _("reservation contribution"),
        "refund": _("refund"),
    }.get(kind, kind)


def _pay_form(page, values=None, errors=None, status_code=200):  # noqa: ANN001, ANN202
    me = page.require()
    vals = dict(values or {})
    vals.setdefault("idempotency_key", str(uuid.uuid4()))
    return page.render(
        "pay.html",
        status_code=status_code,
        values=vals,
        errors=errors or {},
        members=[(m_id, n) for m_id, n in data.member_options(page.session, me) if m_id != me.id],
        balance=data.balance_minutes(page.session, me),
    )


@router.get(PREFIX + "/account/pay")
def pay_form(page: PageDep, to: str = "") -> Response:
    """Pay another member hours for a service: two taps."""
    return _pay_form(page, values={"payee": to} if to else None)


@router.post(PREFIX + "/account/pay")
def pay(page: PageDep, form: Form) -> Response:
    """Send the payment; refused (limit, yourself...) is shown next to the field, nothing paid."""
    me = page.require()
    values = field_values(form)
    ledger = _ledger()

    def send():  # noqa: ANN202
        problems = collector()
        hours = number(problems, values, "hours")
        if hours is None and not problems.problems:
            problems.add("hours", "form.empty")
        if not values.get("payee"):
            problems.add("payee", "form.choose_payee")
        if not (values.get("reason") or "").strip():
            problems.add("reason", "ledger.reason_missing")
        problems.raise_if_any()
        return ledger.pay(
            page.session,
            payer=me,
            minutes=round(hours * 60),
            reason=values["reason"].strip(),
            idempotency_key=values.get("idempotency_key") or str(uuid.uuid4()),
            payee=int(values["payee"]) if values["payee"].isdigit() else values["payee"],
        )

    _, errors = try_action(
        page.session,
        send,
        fields={"payee", "hours", "reason"},
        aliases={
            "minutes": "hours",
            "amount": "hours",
            "to_account_id": "payee",
            "idempotency_key": "",
        },
    )
    if errors:
        return _pay_form(page, values=values, errors=errors, status_code=422)
    return page.redirect(PREFIX + "/account", done="paid")


# --- stewards' approvals ------------------------------------------------------------------------


@router.get(PREFIX + "/approvals")
def approvals(page: PageDep) -> Response:
    """Hours and reservation requests that wait for my decision."""
    me = page.require()
    return page.render("approvals.html", waiting=_with_photos(page, data.awaiting_me(page.session, me)))


@router.post(PREFIX + "/work/{work_log_id}/approve")
def approve_work(page: PageDep, work_log_id: int, form: Form) -> Response:
    """Approve hours: they are credited to the worker at once."""
    me = page.require()
    from commons_map.worklog import service

    _, errors = try_action(
        page.session,
        lambda: service.approve(page.session, actor=me, work_log_id=work_log_id),
        fields=set(),
    )
    if errors:
        return page.render(
            "approvals.html",
            status_code=409,
            waiting=_with_photos(page, data.awaiting_me(page.session, me)),
            errors=errors,
        )
    return page.redirect(PREFIX + "/approvals", done="approved")


@router.post(PREFIX + "/work/{work_log_id}/reject")
def reject_work(page: PageDep, work_log_id: int, form: Form) -> Response:
    """Reject hours with a reason."""
    me = page.require()
    from commons_map.worklog import service

    reason = str(form.get("reason") or "")
    _, errors = try_action(
        page.session,
        lambda: service.reject(page.session, actor=me, work_log_id=work_log_id, reason=reason),
        fields={"reason"},
    )
    if errors:
        errors = type(errors)(
            {f"reason-{work_log_id}": errors.get("reason", []), "": errors.general}
        )
        return page.render(
            "approvals.html",
            status_code=422,
            waiting=_with_photos(page, data.awaiting_me(page.session, me)),
            errors=errors,
            values={f"reason-{work_log_id}": reason},
        )
    return page.redirect(PREFIX + "/approvals", done="rejected")


@router.get(PREFIX + "/work")
def my_work(page: PageDep) -> Response:
    """My work logs and their state."""
    me = page.require()
    logs = data.my_recent_logs(page.session, me, limit=100)
    return page.render("work_list.html", logs=data.with_photos(page.session, me, logs))


def _with_photos(page: Any, waiting: dict[str, Any]) -> dict[str, Any]:
    waiting["work"] = data.with_photos(page.session, page.member, waiting["work"])
    return waiting
