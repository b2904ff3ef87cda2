"""Reservation pages: what can be reserved, a resource's availability as a calendar, booking,
the waiting list, my reservations (cancel, check out, check in), maintenance, my calendar feed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from api import pagedata as data
from api.fieldpages import clock, day
from api.web import PREFIX, Form, FormErrors, PageDep, PageRoute, field_values, try_action
from commons_map.errors import ValidationFailed, collector
from commons_map.register import service as register
from commons_map.register.models import Commons

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DAYS_SHOWN = 7


def _res():  # noqa: ANN202 - the reservations service module
    from commons_map.reservations import service

    return service


def _tz(page: Any) -> ZoneInfo:
    return page.fmt.tz


def _moment(
    problems: Any, values: dict[str, str], d: str, t: str, tz: ZoneInfo, *, required: bool = True
) -> datetime | None:
    on = day(problems, values, d, required=required)
    at = clock(problems, values, t)
    if on is None:
        return None
    if at is None:
        if required:
            problems.add(t, "form.empty")
        return None
    return datetime.combine(on, at, tz)


def _interval(
    values: dict[str, str], tz: ZoneInfo, *, end_required: bool = True
) -> tuple[datetime, datetime | None]:
    problems = collector()
    start = _moment(problems, values, "start_date", "start_time", tz)
    if not values.get("end_date") and values.get("end_time"):
        values = {**values, "end_date": values.get("start_date", "")}
    end = _moment(problems, values, "end_date", "end_time", tz, required=end_required)
    problems.raise_if_any()
    assert start is not None
    return start, end


ALIASES = {
    "starts_at": "start_time",
    "ends_at": "end_time",
    "resource_id": "",
    "max_active_per_member": "",
}
FIELDS = {"start_date", "start_time", "end_date", "end_time", "purpose", "reason"}


# --- what can be reserved ------------------------------------------------------------------------


NEAR_DISTANCES = (500, 2000, 10000)
NEAR_HOURS = (1, 2, 4, 8)


@router.get(PREFIX + "/reserve")
def reservable(
    page: PageDep, kind: str = "", near: str = "", distance: str = "", hours: str = ""
) -> Response:
    """The tools and places I may reserve, each free now or until when, by kind; and what is
    free now near me (my position, sent by the page's button), nearest first."""
    me = page.require()
    from api.routers.reservations import _near
    from commons_map.reservations.models import ResourceRules

    res = _res()
    errors = FormErrors()
    rows = list(
        page.session.scalars(
            select(Commons)
            .join(ResourceRules, ResourceRules.commons_id == Commons.id)
            .where(
                ResourceRules.enabled,
                Commons.archived_at.is_(None),
                Commons.cooperative_id == me.cooperative_id,
                register.visible_clause(me),
            )
            .order_by(Commons.kind_code, Commons.name)
        )
    )
    kinds = register.list_kinds(page.session)
    label = data.kind_labeller(page.locale, kinds)
    present = sorted({c.kind_code for c in rows}, key=label)
    if kind and kind not in {k.code for k in kinds}:
        errors.add("kind", page.t("Unknown kind: %(kind)s", kind=kind))
        kind = ""
    shown = [c for c in rows if not kind or c.kind_code == kind]
    now = datetime.now(_tz(page))
    nearby: list[dict[str, Any]] | None = None
    length = 1
    if near or distance or hours:
        try:
            length = int(hours) if hours else 1
        except ValueError:
            length = 0
        if length not in NEAR_HOURS:
            errors.add("hours", page.t("Choose how long: %(choices)s hours.",
                                       choices=", ".join(str(h) for h in NEAR_HOURS)))
        metres: float | None = None
        if distance:
            try:
                metres = float(distance)
            except ValueError:
                errors.add("distance", page.t("Choose a distance from the list."))
        if not near:
            errors.add("near", page.t("Your position is needed: allow the page to read it, then try again."))
        if not errors:
            try:
                nearby = res.find_free(
                    page.session, actor=me, kind=kind or None, starts_at=now,
                    ends_at=now + timedelta(hours=length), near=_near(near, metres), limit=50,
                )
            except ValidationFailed as exc:
                from api.web import errors_from

                errors.update(errors_from(exc, fields={"near", "distance", "kind"}))
    status = res.status_now(page.session, actor=me, resources=shown)
    return page.render(
        "reserve_list.html",
        status_code=422 if errors else 200,
        resources=shown,
        status=status,
        today=now.date(),
        kind=kind,
        kinds_options=[(code, label(code)) for code in present],
        kind_label=label,
        state_label=data.state_label,
        errors=errors,
        nearby=nearby,
        names={c.id: c for c in rows},
        values={"kind": kind, "near": near, "distance": distance or "2000", "hours": str(length or 1)},
        distances=[(str(d), page.fmt.unit(d / 1000, "length-kilometer", 1) if d >= 1000
                    else page.fmt.unit(d, "length-meter", 0)) for d in NEAR_DISTANCES],
        hour_options=[(str(h), page.fmt.hours(h * 60)) for h in NEAR_HOURS],
    )


def _week_start(raw: str | None, tz: ZoneInfo) -> date:
    today = datetime.now(tz).date()
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return today
    return today


def _calendar(page: Any, resource_id: int, first: date) -> list[dict[str, Any]]:
    """Per day of the window: the free and the busy time ranges."""
    tz = _tz(page)
    start = datetime.combine(first, time(), tz)
    end = start + timedelta(days=DAYS_SHOWN)
    av = _res().availability(
        page.session, actor=page.member, resource_id=resource_id, start=start, end=end
    )
    days = []
    for i in range(DAYS_SHOWN):
        d = first + timedelta(days=i)
        d0 = datetime.combine(d, time(), tz)
        d1 = d0 + timedelta(days=1)

        def clip(
            rows: list[dict[str, datetime]], d0: datetime = d0, d1: datetime = d1
        ) -> list[tuple[datetime, datetime]]:
            out = []
            for r in rows:
                a, b = max(r["starts_at"], d0), min(r["ends_at"], d1)
                if a < b:
                    out.append((a, b))
            return out

        days.append({"date": d, "free": clip(av["free"]), "busy": clip(av["busy"])})
    return days


def _resource_page(
    page: Any,
    resource_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
    offer_wait: bool = False,
    week: str | None = None,
) -> Response:
    me = page.require()
    commons = register.get_commons(page.session, actor=me, commons_id=resource_id)
    rules = _res().get_rules(page.session, actor=me, resource_id=resource_id)
    first = _week_start(week or page.request.query_params.get("week"), _tz(page))
    vals = dict(values or {})
    vals.setdefault("start_date", first.isoformat())
    vals.setdefault("end_date", first.isoformat())
    return page.render(
        "reserve_resource.html",
        status_code=status_code,
        c=commons,
        rules=rules,
        values=vals,
        errors=errors or {},
        offer_wait=offer_wait,
        days=_calendar(page, resource_id, first),
        prev_week=(first - timedelta(days=DAYS_SHOWN)).isoformat(),
        next_week=(first + timedelta(days=DAYS_SHOWN)).isoformat(),
        can_manage=register.can_edit(me, commons),
    )


@router.get(PREFIX + "/reserve/{resource_id}")
def resource(page: PageDep, resource_id: int) -> Response:
    """A resource's availability as a calendar, and the booking form."""
    return _resource_page(page, resource_id)


@router.post(PREFIX + "/reserve/{resource_id}")
def book(page: PageDep, resource_id: int, form: Form) -> Response:
    """Book: confirmed at once, or a request when the resource needs approval; 409 when taken."""
    me = page.require()
    values = field_values(form)
    tz = _tz(page)

    def go():  # noqa: ANN202
        start, end = _interval(values, tz)
        return _res().book(
            page.session,
            actor=me,
            resource_id=resource_id,
            starts_at=start,
            ends_at=end,
            purpose=values.get("purpose", ""),
        )

    from commons_map.errors import Conflict

    try:
        from api.web import attempt

        r = attempt(page.session, go)
    except Conflict as exc:
        from api.web import errors_from

        errors = errors_from(exc, fields=FIELDS, aliases=ALIASES)
        taken = (
            exc.detail.get("detected_by") != "waiting_list"
            and exc.code != "reservations.cap_reached"
        )
        return _resource_page(
            page,
            resource_id,
            values=values,
            errors=errors,
            status_code=409,
            offer_wait=taken,
            week=values.get("start_date"),
        )
    except Exception as exc:  # noqa: BLE001 - domain and form errors are shown; the rest is raised
        from pydantic import ValidationError

        from api.web import errors_from
        from commons_map.errors import DomainError, NotFound, PermissionDenied

        if isinstance(exc, (PermissionDenied, NotFound)) or not isinstance(
            exc, (DomainError, ValidationError)
        ):
            raise
        return _resource_page(
            page,
            resource_id,
            values=values,
            status_code=422,
            week=values.get("start_date"),
            errors=errors_from(exc, fields=FIELDS, aliases=ALIASES),
        )
    return page.redirect(
        f"{PREFIX}/reservations#r{r.id}", done="requested" if r.state == "requested" else "booked"
    )


@router.post(PREFIX + "/reserve/{resource_id}/wait")
def wait(page: PageDep, resource_id: int, form: Form) -> Response:
    """Join the waiting list for a taken slot."""
    me = page.require()
    values = field_values(form)
    tz = _tz(page)

    def go():  # noqa: ANN202
        start, end = _interval(values, tz)
        return _res().wait(
            page.session, actor=me, resource_id=resource_id, starts_at=start, ends_at=end
        )

    _, errors = try_action(page.session, go, fields=FIELDS, aliases=ALIASES)
    if errors:
        return _resource_page(page, resource_id, values=values, errors=errors, status_code=422)
    return page.redirect(f"{PREFIX}/reservations", done="waiting")


@router.post(PREFIX + "/reserve/{resource_id}/maintenance")
def maintenance(page: PageDep, resource_id: int, form: Form) -> Response:
    """A steward blocks the resource for maintenance (no end: until cleared)."""
    me = page.require()
    values = field_values(form)
    tz = _tz(page)
    mvalues = {k[2:]: v for k, v in values.items() if k.startswith("m_")}

    def go():  # noqa: ANN202
        start, end = _interval(mvalues, tz, end_required=False)
        return _res().declare_maintenance(
            page.session,
            actor=me,
            resource_id=resource_id,
            starts_at=start,
            ends_at=end,
            reason=mvalues.get("reason", ""),
        )

    _, errors = try_action(page.session, go, fields=FIELDS, aliases=ALIASES)
    if errors:
        errors = FormErrors({("m_" + k if k else k): v for k, v in errors.items()})
        return _resource_page(page, resource_id, values=values, errors=errors, status_code=422)
    return page.redirect(f"{PREFIX}/reserve/{resource_id}", done="maintenance")


# --- my reservations ------------------------------------------------------------------------------


def _mine(
    page: Any,
    *,
    errors: FormErrors | None = None,
    status_code: int = 200,
    feed: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    me = page.require()
    res = _res()
    rows = res.list_my_reservations(page.session, actor=me, limit=200)
    live = ("requested", "confirmed", "checked_out")
    upcoming = [res.reservation_out(page.session, r) for r in rows if r.state in live]
    past = [res.reservation_out(page.session, r) for r in rows if r.state not in live][-10:]
    waits = res.list_my_waits(page.session, actor=me)
    names = {
        c.id: c.name
        for c in page.session.scalars(
            select(Commons).where(Commons.id.in_({w["resource_id"] for w in waits} or {0}))
        )
    }
    return page.render(
        "reservations.html",
        status_code=status_code,
        upcoming=upcoming,
        past=past,
        waits=[w | {"resource_name": names.get(w["resource_id"], "")} for w in waits],
        errors=errors or {},
        feed=feed,
        values=values or {},
    )


@router.get(PREFIX + "/reservations")
def mine(page: PageDep) -> Response:
    """My reservations, my waiting-list places, my calendar feed."""
    return _mine(page)


def _action(page: Any, reservation_id: int, form: Any, what: str) -> Response:
    me = page.require()
    res = _res()
    notes = str(form.get("notes") or "")
    actions = {
        "cancel": lambda: res.cancel(
            page.session, actor=me, reservation_id=reservation_id, reason=notes
        ),
        "checkout": lambda: res.check_out(
            page.session, actor=me, reservation_id=reservation_id, notes=notes
        ),
        "checkin": lambda: res.check_in(
            page.session,
            actor=me,
            reservation_id=reservation_id,
            notes=notes,
            damaged=bool(form.get("damaged")),
        ),
        "approve": lambda: res.approve(
            page.session, actor=me, reservation_id=reservation_id, note=str(form.get("note") or "")
        ),
        "refuse": lambda: res.refuse(
            page.session, actor=me, reservation_id=reservation_id, note=str(form.get("note") or "")
        ),
    }
    _, errors = try_action(page.session, actions[what], fields={"notes"})
    if errors:
        per = FormErrors({f"notes-{reservation_id}": errors.get("notes", []), "": errors.general})
        if what in ("approve", "refuse"):
            return page.render(
                "approvals.html",
                status_code=409,
                waiting=data.awaiting_me(page.session, me),
                errors=per,
            )
        return _mine(page, errors=per, status_code=409, values={f"notes-{reservation_id}": notes})
    if what in ("approve", "refuse"):
        return page.redirect(
            PREFIX + "/approvals",
            done=f"reservation_{'approved' if what == 'approve' else 'refused'}",
        )
    return page.redirect(f"{PREFIX}/reservations#r{reservation_id}", done=what)


@router.post(PREFIX + "/reservations/{reservation_id}/{what}")
def reservation_action(page: PageDep, reservation_id: int, what: str, form: Form) -> Response:
    """Cancel, check out, check in (with a condition note), approve or refuse."""
    if what not in ("cancel", "checkout", "checkin", "approve", "refuse"):
        from commons_map.errors import NotFound

        raise NotFound("form.no_action", action=what)
    return _action(page, reservation_id, form, what)


@router.post(PREFIX + "/waits/{wait_id}/{what}")
def wait_action(page: PageDep, wait_id: int, what: str, form: Form) -> Response:
    """Accept an offered slot, or leave the waiting list."""
    me = page.require()
    res = _res()
    if what == "accept":
        fn = lambda: res.accept_offer(page.session, actor=me, wait_id=wait_id)  # noqa: E731
    elif what == "leave":
        fn = lambda: res.leave_waiting_list(page.session, actor=me, wait_id=wait_id)  # noqa: E731
    else:
        raise ValidationFailed("form.unknown_action", field="what", action=what, known=["accept", "leave"])
    _, errors = try_action(page.session, fn, fields=set())
    if errors:
        return _mine(page, errors=errors, status_code=409)
    return page.redirect(f"{PREFIX}/reservations", done=f"wait_{what}")


@router.post(PREFIX + "/reservations-feed")
def feed(page: PageDep, form: Form) -> Response:
    """A new private URL of my calendar (the previous one stops working)."""
    me = page.require()
    token = _res().rotate_calendar_token(page.session, actor=me)
    url = str(page.request.base_url).rstrip("/") + f"/api/v1/calendars/{token}.ics"
    return _mine(page, feed=url)
