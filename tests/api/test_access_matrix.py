"""The access matrix: every route of the app x every role, checked against the intended rule.

One row per route (method and path template, as the app declares it). Each row says how to call
the route with real objects of the demo cooperative (a public, a members-only and a private
commons, a reservable resource, a booking, a work log, a transfer, an account, a field token...),
what each role must get back, and, for reads, which private or members-only text must never
appear in the answer of the roles not allowed to see it (and must appear for those who are).

Roles: anonymous, a plain member, a steward of other commons (``other_steward``), the steward of
the subjects (``steward``), a coordinator, and a coordinator of another cooperative
(``outsider``). API routes use bearer tokens; the members' pages (/app) sign in through the real
form, with its CSRF token; OpenRosa uses the role's field token (or HTTP Basic).

``test_every_route_has_a_row`` enumerates ``app.routes``: a new route without a row fails it, and
so does a row whose route is gone. Each (row, role) cell runs in its own rolled-back transaction.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from commons_map.demo.load import DEMO_PASSWORD

A, M, S, O, C, X = "anonymous", "member", "steward", "other_steward", "coordinator", "outsider"  # noqa: E741
ROLES = [A, M, S, O, C, X]
SIGNED_IN = [M, S, O, C, X]
OURS = [M, S, O, C]  # members of the demo cooperative
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def every(status: int | set[int]) -> dict[str, set[int]]:
    """The same answer for everyone."""
    return {r: _set(status) for r in ROLES}


def _set(v: int | set[int]) -> set[int]:
    return {v} if isinstance(v, int) else set(v)


def rule(default: int | set[int] | None = None, **by_role: int | set[int]) -> dict[str, set[int]]:
    """Statuses by role; roles not named get ``default``."""
    out = {r: _set(default) for r in ROLES if default is not None}
    out.update({r: _set(v) for r, v in by_role.items()})
    assert set(out) == set(ROLES), f"rule leaves roles out: {set(ROLES) - set(out)}"
    return out


def signed_in(ok: int | set[int], anonymous: int = 401, **others: int | set[int]) -> dict[str, set[int]]:
    """Anonymous is refused; every signed-in role gets ``ok`` unless named."""
    return rule(ok, anonymous=anonymous, **others)


# The subjects' visibility, and who may see/manage them (the steward persona stewards the public
# land, the private home and the members-only tool; nobody among the personas stewards the bed).
SEE_PUBLIC = every(200)
# A work log is read by its worker, its commons' stewards and the coordinators: 404 to the others.
NOT_READ = {"other_steward": 404, "outsider": 404}
DECIDE_LOG = signed_in(403, steward=200, coordinator=200, **NOT_READ)
DECIDE_LOG_PAGE = rule(403, anonymous=303, steward=303, coordinator=303, **NOT_READ)
SEE_MEMBERS = rule(200, anonymous=404, outsider=404)
SEE_PRIVATE = rule(404, steward=200, coordinator=200)


def manage(ok: int | set[int], visible_to_outsider: bool) -> dict[str, set[int]]:
    """A change only the subject's stewards and the coordinators make."""
    return rule(403, anonymous=401, steward=ok, coordinator=ok,
                outsider=403 if visible_to_outsider else 404)


def coordinators(ok: int | set[int], outsider: int | set[int]) -> dict[str, set[int]]:
    """Coordinators only (the outsider is a coordinator, of another cooperative)."""
    return rule(403, anonymous=401, coordinator=ok, outsider=outsider)


def page(ok: int | set[int] = 200) -> dict[str, set[int]]:
    """A members' page: anonymous visitors are sent to the sign-in form."""
    return rule(ok, anonymous=303)


# --- the subjects ---------------------------------------------------------------------------------


# The demo books from three weeks back to three weeks ahead (up to two days long), relative to the
# time it was loaded: the subjects' bookings go after that, within the tools' 30 days of horizon.
HORIZON = 24


def _start(days: float, hour: int = 10) -> datetime:
    base = datetime.now(ZoneInfo("Europe/Paris")).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days)


class Subjects:
    """Real objects of the demo cooperative, made on first use inside the test's transaction."""

    def __init__(self, db, people) -> None:  # noqa: ANN001
        self.db = db
        self.people = people

    def commons(self, external_id: str):  # noqa: ANN201
        from commons_map.register.models import Commons

        return self.db.scalars(select(Commons).where(Commons.external_id == external_id)).one()

    @cached_property
    def public(self) -> int:
        return self.commons("demo:land-0").id  # the steward's land

    @cached_property
    def members(self) -> int:
        return self.commons("demo:bed-0-1").id  # members only, no persona stewards it

    @cached_property
    def private(self) -> int:
        return self.commons("demo:home-0").id  # the steward's home

    @cached_property
    def resource(self) -> int:
        """Members only, reservable, the steward's; the demo's random loans may have used the
        member's cap on it, so the cap is raised (in this test's transaction)."""
        from commons_map.demo.reservations import TOOL_RULES
        from commons_map.reservations import service

        tool = self.commons("demo:tool-0")
        service.set_rules(self.db, actor=self.people.coordinator, resource_id=tool.id,
                          data=TOOL_RULES.model_copy(update={"max_active_per_member": 50}))
        return tool.id

    @cached_property
    def approval_resource(self) -> int:
        """The steward's other tool, switched to bookings on approval."""
        from commons_map.reservations import service
        from commons_map.reservations.schemas import RulesIn

        tool = self.commons("demo:tool-8")
        service.set_rules(self.db, actor=self.people.coordinator, resource_id=tool.id,
                          data=RulesIn(booking_mode="approval", min_minutes=60, max_minutes=3 * 24 * 60,
                                       max_days_ahead=30, max_active_per_member=50))
        return tool.id

    def _book(self, who, resource_id: int, start: datetime, hours: float, purpose: str, now=None) -> int:  # noqa: ANN001
        from commons_map.reservations import service

        r = service.book(self.db, actor=who, resource_id=resource_id, starts_at=start,
                         ends_at=start + timedelta(hours=hours), purpose=purpose, now=now)
        self.db.flush()
        return r.id

    @cached_property
    def reservation(self) -> int:
        """The member's confirmed booking of the steward's tool, past the demo's bookings."""
        return self._book(self.people.member, self.resource, _start(HORIZON), 2, "MATRIX-BOOKING de Lucas")

    @cached_property
    def requested(self) -> int:
        """The member's request on the steward's approval tool, waiting for a decision."""
        return self._book(self.people.member, self.approval_resource, _start(HORIZON), 2, "MATRIX-REQUEST de Lucas")

    @cached_property
    def starting(self) -> int:
        """The member's booking that starts in half an hour (can be checked out now)."""
        start = datetime.now().astimezone().replace(second=0, microsecond=0) + timedelta(minutes=30)
        return self._book(self.people.member, self.resource, start, 2, "Départ imminent",
                          now=start - timedelta(days=1))

    @cached_property
    def checked_out(self) -> int:
        from commons_map.reservations import service

        service.check_out(self.db, actor=self.people.member, reservation_id=self.starting)
        self.db.flush()
        return self.starting

    @cached_property
    def missed(self) -> int:
        """The member's booking that started three hours ago and was never collected."""
        start = datetime.now().astimezone().replace(second=0, microsecond=0) - timedelta(hours=3)
        return self._book(self.people.member, self.resource, start, 2, "Oubliée", now=start - timedelta(days=1))

    @cached_property
    def maintenance(self) -> int:
        from commons_map.reservations import service

        m = service.declare_maintenance(self.db, actor=self.people.steward, resource_id=self.resource,
                                        starts_at=_start(HORIZON + 4, 8), ends_at=_start(HORIZON + 4, 18),
                                        reason="Affûtage")
        self.db.flush()
        return m.id

    @cached_property
    def wait(self) -> int:
        """The member waits for a slot someone else took, and is offered it when it is freed."""
        from commons_map.people.models import Member
        from commons_map.reservations import service

        chloe = self.db.scalars(select(Member).where(Member.username == "chloe")).one()
        start = _start(HORIZON + 2, 8)
        taken = self._book(chloe, self.resource, start, 2, "Pris avant")
        entry = service.wait(self.db, actor=self.people.member, resource_id=self.resource, starts_at=start,
                             ends_at=start + timedelta(hours=2))
        service.cancel(self.db, actor=chloe, reservation_id=taken)
        self.db.flush()
        return entry.id

    @cached_property
    def taken_slot(self) -> dict[str, str]:
        """A slot of the resource booked by another member (to wait for)."""
        from commons_map.people.models import Member

        chloe = self.db.scalars(select(Member).where(Member.username == "chloe")).one()
        start = _start(HORIZON + 3, 8)
        self._book(chloe, self.resource, start, 2, "Pris")
        return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}

    def _log(self, note: str) -> Any:
        from commons_map.worklog import service
        from commons_map.worklog.schemas import WorkLogIn

        log = service.log_work(self.db, actor=self.people.member, data=WorkLogIn(
            commons_id=self.public, work_date=date.today(), minutes=90, activity="weeding", notes=note))
        self.db.flush()
        return log

    @cached_property
    def work_log(self) -> int:
        """The member's work on the steward's land, waiting for approval."""
        return self._log("MATRIX-WORK de Lucas").id

    @cached_property
    def approved_log(self) -> int:
        from commons_map.worklog import service

        log = self._log("Approuvé")
        service.approve(self.db, actor=self.people.steward, work_log_id=log.id)
        self.db.flush()
        return log.id

    @cached_property
    def transfer(self) -> int:
        """The member paid the steward half an hour."""
        from commons_map.ledger import service

        t = service.pay(self.db, payer=self.people.member, payee=self.people.steward.username, minutes=30,
                        reason="Coup de main", idempotency_key=str(uuid.uuid4()))
        self.db.flush()
        return t.id

    @cached_property
    def account(self) -> int:
        from commons_map.ledger import service

        return service.ensure_member_account(self.db, member=self.people.member).id

    @cached_property
    def sample(self) -> int:
        from commons_map.soil.models import Sample

        return self.db.scalars(select(Sample.id).where(Sample.commons_id == self.public).limit(1)).one()

    @cached_property
    def field_token(self) -> int:
        from commons_map.fieldforms.service import issue_token

        _, row = issue_token(self.db, actor=self.people.member, member=self.people.member, label="matrice")
        self.db.flush()
        return row.id

    @cached_property
    def calendar_token(self) -> str:
        from commons_map.reservations import service

        return service.rotate_calendar_token(self.db, actor=self.people.member)

    @cached_property
    def coop(self) -> int:
        return self.people.coop.id

    @cached_property
    def member_id(self) -> int:
        return self.people.member.id

    def text(self, key: str) -> str:
        """Texts that must not leak to whoever may not see them."""
        if key in EXTRA_TEXTS:
            return EXTRA_TEXTS[key](self)
        return {
            "private": self.commons("demo:home-0").name,
            "members": self.commons("demo:bed-0-1").name,
            "resource": self.commons("demo:tool-0").name,
            "member_name": self.people.member.display_name,
        }.get(key, key)


# Subjects and texts that the rows of other rooms add (tests/api/matrix/rows_*.py), by name.
EXTRA_SUBJECTS: dict[str, Callable[[Subjects], Any]] = {}
EXTRA_TEXTS: dict[str, Callable[[Subjects], str]] = {}


# --- the rows ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """How to call one route, and what each role must get."""

    method: str
    path: str
    expect: dict[str, set[int]]
    url: str | None = None  # the path with {subject} placeholders; `path` when None
    body: Callable[[Subjects, str], dict[str, Any]] | None = None  # extra request kwargs
    hidden: dict[str, list[str]] = field(default_factory=dict)  # text key -> roles that may see it
    shown: bool = False  # the allowed roles must find the text (the subject is on the page)
    page: bool = False  # signed in by the session cookie (members' pages)

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def js(**data: Any) -> Callable[[Subjects, str], dict[str, Any]]:
    return lambda s, role: {"json": data}


def today() -> str:
    return date.today().isoformat()


def _booking(s: Subjects, role: str) -> dict[str, Any]:
    start = _start(HORIZON + ROLES.index(role), 14)
    return {"json": {"resource_id": s.resource, "starts_at": start.isoformat(),
                     "ends_at": (start + timedelta(hours=2)).isoformat(), "purpose": "Matrice"}}


def _geojson_upload(s: Subjects, role: str) -> dict[str, Any]:
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"NOM": "Puits matrice",
                                                                                       "REF": "puits-1"},
                                                       "geometry": {"type": "Point", "coordinates": [5.18, 44.70]}}]}
    return {"files": {"file": ("puits.geojson", json.dumps(doc).encode(), "application/geo+json")},
            "data": {"kind": "water_point", "map": json.dumps({"name": "NOM", "external_id": "REF"}),
                     "dry_run": "true"}}


def _empty_submission(s: Subjects, role: str) -> dict[str, Any]:
    # Past the sign-in, a submission without its XML part is refused with 422 (nothing written).
    return {"files": {"other": ("note.txt", b"x", "text/plain")}}


def _form(**data: Any) -> Callable[[Subjects, str], dict[str, Any]]:
    def make(s: Subjects, role: str) -> dict[str, Any]:
        return {"data": {k: (v(s) if callable(v) else v) for k, v in data.items()}}

    return make


def _work_form(s: Subjects, role: str) -> dict[str, Any]:
    return {"data": {"commons_id": str(s.public), "work_date": today(), "duration": "1", "activity": "weeding",
                     "notes": "matrice"}}


def _book_form(s: Subjects, role: str) -> dict[str, Any]:
    start = _start(HORIZON + ROLES.index(role), 14)
    return {"data": {"start_date": start.date().isoformat(), "start_time": "14:00",
                     "end_date": start.date().isoformat(), "end_time": "16:00", "purpose": "matrice"}}


def _wait_form(s: Subjects, role: str) -> dict[str, Any]:
    slot = s.taken_slot
    st, en = datetime.fromisoformat(slot["starts_at"]), datetime.fromisoformat(slot["ends_at"])
    return {"data": {"start_date": st.date().isoformat(), "start_time": st.strftime("%H:%M"),
                     "end_date": en.date().isoformat(), "end_time": en.strftime("%H:%M")}}


def _maintenance_form(s: Subjects, role: str) -> dict[str, Any]:
    start = _start(HORIZON + 5, 8)
    return {"data": {"m_start_date": start.date().isoformat(), "m_start_time": "08:00",
                     "m_end_date": start.date().isoformat(), "m_end_time": "12:00", "m_reason": "matrice"}}


def _sample_json(s: Subjects, role: str) -> dict[str, Any]:
    return {"json": {"sampled_on": today(), "commons_id": s.public,
                     "measurements": [{"indicator": "infiltration", "value": 12, "unit": "min"}]}}


PUBLIC_LAYER = {"private": [], "members": [], "resource": [], "member_name": []}
READ_PAGE = page(200)

ROWS: list[Row] = [
    # --- the documents of the API itself
    Row("GET", "/openapi.json", every(200)),
    Row("GET", "/docs", every(200)),
    Row("GET", "/docs/oauth2-redirect", every(200)),
    Row("GET", "/redoc", every(200)),
    Row("GET", "/health", every(200)),
    # --- auth and members
    Row("POST", "/api/v1/auth/token", every(200),
        body=lambda s, role: {"data": {"username": (s.people.by_role(role) or s.people.member).username,
                                       "password": DEMO_PASSWORD}}),
    Row("POST", "/api/v1/auth/revoke", signed_in(204)),
    Row("GET", "/api/v1/members/me", signed_in(200)),
    Row("GET", "/api/v1/members", signed_in(200), hidden={"member_name": OURS}, shown=True),
    Row("POST", "/api/v1/members", coordinators(201, outsider=201),  # the outsider adds to *their* cooperative
        body=lambda s, role: {"json": {"username": f"matrice_{role}", "display_name": "Nouvelle Membre",
                                       "password": "assez-long-123"}}),
    Row("POST", "/api/v1/members/me/password", signed_in(204),  # each changes their own
        body=js(current_password=DEMO_PASSWORD, new_password="matrice-nouveau-secret")),
    Row("POST", "/api/v1/members/{member_id}/retire", signed_in(403, coordinator=200, outsider=404),
        url="/api/v1/members/{member_id}/retire"),
    # --- the register
    Row("GET", "/api/v1/kinds", every(200)),
    Row("GET", "/api/v1/commons", every(200), url="/api/v1/commons?limit=1000",
        hidden={"private": [S, C], "members": OURS}, shown=True),
    Row("POST", "/api/v1/commons", coordinators(201, outsider=201),
        body=js(kind="water_point", name="Point d'eau matrice",
                geometry={"type": "Point", "coordinates": [5.18, 44.70]})),
    Row("GET", "/api/v1/commons/{commons_id}", SEE_PRIVATE, url="/api/v1/commons/{private}",
        hidden={"private": [S, C]}, shown=True),
    Row("PATCH", "/api/v1/commons/{commons_id}", rule(404, anonymous=401, steward=200, coordinator=200),
        url="/api/v1/commons/{private}", body=js(description="changé par la matrice")),
    Row("POST", "/api/v1/commons/{commons_id}/archive", manage(200, visible_to_outsider=True),
        url="/api/v1/commons/{public}/archive", body=js(reason="matrice")),
    Row("GET", "/api/v1/commons/{commons_id}/history", SEE_MEMBERS, url="/api/v1/commons/{members}/history"),
    # --- reservations
    Row("PUT", "/api/v1/resources/{resource_id}/rules", manage(200, visible_to_outsider=False),
        url="/api/v1/resources/{resource}/rules",
        body=js(booking_mode="members", min_minutes=60, max_minutes=2880, max_days_ahead=30)),
    Row("GET", "/api/v1/resources/{resource_id}/rules", SEE_MEMBERS, url="/api/v1/resources/{resource}/rules"),
    Row("DELETE", "/api/v1/resources/{resource_id}/rules", manage(200, visible_to_outsider=False),
        url="/api/v1/resources/{resource}/rules"),
    Row("GET", "/api/v1/resources/free", every(200),
        url="/api/v1/resources/free?kind=tool&starts_at={free_from}&ends_at={free_until}&limit=1000",
        hidden={"resource": OURS}, shown=True),
    Row("GET", "/api/v1/resources/{resource_id}/availability", SEE_MEMBERS,
        url="/api/v1/resources/{resource}/availability"),
    Row("GET", "/api/v1/resources/{resource_id}/calendar.ics", SEE_MEMBERS,
        url="/api/v1/resources/{resource}/calendar.ics", hidden={"MATRIX-BOOKING": []}),
    Row("GET", "/api/v1/resources/{resource_id}/reservations", manage(200, visible_to_outsider=False),
        url="/api/v1/resources/{resource}/reservations?from={now}&_={reservation}",
        hidden={"MATRIX-BOOKING": [S, C]}, shown=True),
    Row("POST", "/api/v1/reservations", signed_in(201, outsider=404), body=_booking),
    Row("GET", "/api/v1/reservations", signed_in(200), url="/api/v1/reservations?_={reservation}",
        hidden={"MATRIX-BOOKING": [M]}, shown=True),
    Row("GET", "/api/v1/reservations/to-decide", signed_in(200), url="/api/v1/reservations/to-decide?_={requested}",
        hidden={"MATRIX-REQUEST": [S, C]}, shown=True),
    Row("GET", "/api/v1/reservations/{reservation_id}", signed_in(404, member=200, steward=200, coordinator=200),
        url="/api/v1/reservations/{reservation}", hidden={"MATRIX-BOOKING": [M, S, C]}, shown=True),
    Row("POST", "/api/v1/reservations/{reservation_id}/cancel",
        signed_in(404, member=200, steward=200, coordinator=200), url="/api/v1/reservations/{reservation}/cancel"),
    Row("POST", "/api/v1/reservations/{reservation_id}/approve",
        signed_in(404, member=403, steward=200, coordinator=200),
        url="/api/v1/reservations/{requested}/approve"),
    Row("POST", "/api/v1/reservations/{reservation_id}/refuse",
        signed_in(404, member=403, steward=200, coordinator=200),
        url="/api/v1/reservations/{requested}/refuse"),
    Row("POST", "/api/v1/reservations/{reservation_id}/check-out",
        signed_in(404, member=200, steward=200, coordinator=200), url="/api/v1/reservations/{starting}/check-out"),
    Row("POST", "/api/v1/reservations/{reservation_id}/check-in",
        signed_in(404, member=200, steward=200, coordinator=200), url="/api/v1/reservations/{checked_out}/check-in"),
    Row("POST", "/api/v1/reservations/{reservation_id}/no-show",
        signed_in(404, member=403, steward=200, coordinator=200),
        url="/api/v1/reservations/{missed}/no-show"),
    Row("POST", "/api/v1/resources/{resource_id}/maintenance", manage(201, visible_to_outsider=False),
        url="/api/v1/resources/{resource}/maintenance",
        body=lambda s, role: {"json": {"starts_at": _start(HORIZON + 5, 8).isoformat(),
                                       "ends_at": _start(HORIZON + 5, 12).isoformat(),
                                       "reason": "matrice"}}),
    Row("GET", "/api/v1/resources/{resource_id}/maintenance", signed_in(200, outsider=404),
        url="/api/v1/resources/{resource}/maintenance"),
    Row("PATCH", "/api/v1/maintenance/{maintenance_id}", manage(200, visible_to_outsider=False),
        url="/api/v1/maintenance/{maintenance}",
        body=lambda s, role: {"json": {"ends_at": _start(HORIZON + 4, 20).isoformat()}}),
    Row("POST", "/api/v1/maintenance/{maintenance_id}/clear", manage(200, visible_to_outsider=False),
        url="/api/v1/maintenance/{maintenance}/clear"),
    Row("POST", "/api/v1/waitlist", signed_in(201, outsider=404),
        body=lambda s, role: {"json": {"resource_id": s.resource, **s.taken_slot}}),
    Row("GET", "/api/v1/waitlist", signed_in(200)),
    Row("POST", "/api/v1/waitlist/{wait_id}/accept", signed_in(404, member=201), url="/api/v1/waitlist/{wait}/accept"),
    Row("DELETE", "/api/v1/waitlist/{wait_id}", signed_in(404, member=200), url="/api/v1/waitlist/{wait}"),
    Row("POST", "/api/v1/calendars/me", signed_in(200)),
    # Whoever holds the private URL reads the member's calendar (a capability, like a shared link).
    Row("GET", "/api/v1/calendars/{token}.ics", every(200), url="/api/v1/calendars/{calendar_token}.ics"),
    # --- the ledger
    Row("GET", "/api/v1/ledger/me", signed_in(200)),
    # Across cooperatives the payee is unknown: refused naming the field, nothing paid.
    Row("POST", "/api/v1/ledger/payments", signed_in(201, outsider=422),
        body=lambda s, role: {"json": {"payee": "chloe", "minutes": 15, "reason": "matrice",
                                       "idempotency_key": str(uuid.uuid4())}}),
    Row("POST", "/api/v1/ledger/adjustments", coordinators(201, outsider=422),
        body=lambda s, role: {"json": {"member": "chloe", "minutes": 15, "reason": "matrice",
                                       "idempotency_key": str(uuid.uuid4())}}),
    Row("GET", "/api/v1/ledger/transfers/{transfer_id}", signed_in(404, member=200, steward=200, coordinator=200),
        url="/api/v1/ledger/transfers/{transfer}"),
    Row("POST", "/api/v1/ledger/transfers/{transfer_id}/reverse",
        signed_in(404, member=403, steward=201, coordinator=201), url="/api/v1/ledger/transfers/{transfer}/reverse",
        body=lambda s, role: {"json": {"reason": "matrice", "idempotency_key": str(uuid.uuid4())}}),
    Row("POST", "/api/v1/ledger/funds", coordinators(201, outsider=403),
        body=lambda s, role: {"json": {"commons_id": s.public}}),
    Row("PUT", "/api/v1/ledger/accounts/{account_id}/limits", coordinators(200, outsider=404),
        url="/api/v1/ledger/accounts/{account}/limits", body=js(min_minutes=-600, max_minutes=6000)),
    Row("GET", "/api/v1/ledger/statement", signed_in(200)),
    Row("GET", "/api/v1/ledger/figures", signed_in(200)),
    Row("GET", "/api/v1/ledger/check", coordinators(200, outsider=200)),  # each coordinator checks their own
    # --- work logs
    Row("GET", "/api/v1/activities", every(200)),
    Row("POST", "/api/v1/activities", coordinators(201, outsider=201),
        body=lambda s, role: {"json": {"code": f"matrice_{role}", "label_fr": "Matrice", "label_en": "Matrix"}}),
    # a shipped activity: each cooperative's coordinators retire or bring it back for their own
    Row("PATCH", "/api/v1/activities/{code}", coordinators(200, outsider=200), url="/api/v1/activities/weeding",
        body=js(active=True)),
    Row("POST", "/api/v1/work-logs", signed_in(201, outsider=404),
        body=lambda s, role: {"json": {"commons_id": s.public, "work_date": today(), "minutes": 60,
                                       "activity": "weeding"}}),
    # a member reads their own logs and those they may approve: not the other stewards
    Row("GET", "/api/v1/work-logs", signed_in(200), url="/api/v1/work-logs?_={work_log}",
        hidden={"MATRIX-WORK": [M, S, C]}, shown=True),
    Row("GET", "/api/v1/work-logs/pending", signed_in(200), url="/api/v1/work-logs/pending?_={work_log}",
        hidden={"MATRIX-WORK": [S, C]}, shown=True),
    Row("GET", "/api/v1/work-logs/{work_log_id}", signed_in(200, other_steward=404, outsider=404),
        url="/api/v1/work-logs/{work_log}", hidden={"MATRIX-WORK": [M, S, C]}, shown=True),
    Row("PATCH", "/api/v1/work-logs/{work_log_id}", signed_in(403, member=200, other_steward=404, outsider=404),
        url="/api/v1/work-logs/{work_log}", body=js(notes="MATRIX-WORK corrigé")),
    Row("POST", "/api/v1/work-logs/{work_log_id}/approve", DECIDE_LOG,
        url="/api/v1/work-logs/{work_log}/approve"),
    Row("POST", "/api/v1/work-logs/{work_log_id}/reject", DECIDE_LOG,
        url="/api/v1/work-logs/{work_log}/reject", body=js(reason="matrice")),
    Row("POST", "/api/v1/work-logs/{work_log_id}/correct", signed_in(403, steward=201, coordinator=201, **NOT_READ),
        url="/api/v1/work-logs/{approved_log}/correct",
        body=lambda s, role: {"json": {"reason": "matrice", "log": {
            "commons_id": s.public, "work_date": today(), "minutes": 60, "activity": "weeding"}}}),
    # --- soil and harvests
    Row("GET", "/api/v1/soil/statuses", every(200)),
    Row("GET", "/api/v1/soil/indicators", every(200)),
    Row("POST", "/api/v1/soil/indicators", coordinators(201, outsider=201),
        body=lambda s, role: {"json": {"code": f"matrice_{role}", "label_fr": "Matrice", "label_en": "Matrix",
                                       "units": {"%": 1.0}, "range_min": 0, "range_max": 100}}),
    Row("GET", "/api/v1/soil/practices/kinds", every(200)),
    # Soil and harvest records: the outsider sees the public land but is not of its cooperative.
    Row("POST", "/api/v1/soil/samples", signed_in(201, outsider=403), body=_sample_json),
    Row("GET", "/api/v1/soil/samples", every(200), hidden={"members": OURS, "private": [S, C]}),
    Row("GET", "/api/v1/soil/samples/{sample_id}", every(200), url="/api/v1/soil/samples/{sample}"),
    # The demo's samples were recorded by the coordinator: only they (or the recorder) correct and withdraw.
    Row("PUT", "/api/v1/soil/samples/{sample_id}", rule(403, anonymous=401, coordinator=200, outsider=404),
        url="/api/v1/soil/samples/{sample}",
        body=lambda s, role: {"json": _sample_json(s, role)["json"] | {"reason": "matrice"}}),
    Row("POST", "/api/v1/soil/samples/{sample_id}/withdraw", rule(403, anonymous=401, coordinator=200, outsider=404),
        url="/api/v1/soil/samples/{sample}/withdraw", body=lambda s, role: {"json": {"reason": "matrice"}}),
    Row("GET", "/api/v1/soil/samples/{sample_id}/history", rule(200, anonymous=401, outsider=403),
        url="/api/v1/soil/samples/{sample}/history"),
    Row("POST", "/api/v1/soil/practices", signed_in(201, outsider=403),
        body=lambda s, role: {"json": {"commons_id": s.public, "practice": "mulch", "started_on": today()}}),
    Row("GET", "/api/v1/soil/practices", every(200), hidden={"members": OURS, "private": [S, C]}),
    Row("POST", "/api/v1/soil/harvests", signed_in(201, outsider=403),
        body=lambda s, role: {"json": {"commons_id": s.commons("demo:garden-0").id, "crop": "courgette",
                                       "harvested_on": today(), "weight_kg": 2.5}}),
    Row("GET", "/api/v1/soil/harvests", every(200), url="/api/v1/soil/harvests?cooperative_id={coop}",
        hidden={"members": OURS, "private": [S, C]}),
    Row("GET", "/api/v1/soil/parcels", every(200), url="/api/v1/soil/parcels?cooperative_id={coop}",
        hidden={"members": OURS, "private": [S, C]}),
    Row("GET", "/api/v1/soil/parcels/{commons_id}", every(200), url="/api/v1/soil/parcels/{public}"),
    Row("GET", "/api/v1/soil/parcels/{commons_id}/timeline", every(200), url="/api/v1/soil/parcels/{public}/timeline"),
    Row("GET", "/api/v1/soil/report", every(200), url="/api/v1/soil/report?cooperative_id={coop}",
        hidden={"members": OURS, "private": [S, C]}),
    Row("GET", "/api/v1/soil/report.html", every(200), url="/api/v1/soil/report.html?cooperative_id={coop}",
        hidden={"members": OURS, "private": [S, C]}),
    Row("GET", "/api/v1/soil/charts/{name}.png", every(200), url="/api/v1/soil/charts/soc.png?cooperative_id={coop}"),
    # --- the public layers: the same for everyone, and never a members-only or private thing
    Row("GET", "/ogc/", every(200), hidden=PUBLIC_LAYER),
    Row("GET", "/ogc", every(200), url="/ogc?f=json"),
    Row("GET", "/ogc/conformance", every(200)),
    Row("GET", "/ogc/collections", every(200), hidden=PUBLIC_LAYER),
    Row("GET", "/ogc/collections/{collection_id}", every(200), url="/ogc/collections/gardens"),
    Row("GET", "/ogc/collections/{collection_id}/queryables", every(200), url="/ogc/collections/gardens/queryables"),
    Row("GET", "/ogc/collections/{collection_id}/items", every(200), url="/ogc/collections/{layer}/items?limit=1000",
        hidden=PUBLIC_LAYER),
    Row("GET", "/ogc/collections/{collection_id}/items/{feature_id}", every(404),
        url="/ogc/collections/{layer}/items/{members}"),  # a members-only commons is not in any public layer
    Row("GET", "/ogc/api", every(200)),
    Row("OPTIONS", "/ogc/{path:path}", every(204), url="/ogc/collections"),
    Row("GET", "/tiles/{collection_id}/{z}/{x}/{y}.mvt", every({200, 204}), url="/tiles/gardens/0/0/0.mvt"),
    Row("GET", "/tiles/{collection_id}/tilejson.json", every(200), url="/tiles/gardens/tilejson.json"),
    Row("OPTIONS", "/tiles/{path:path}", every(204), url="/tiles/gardens/tilejson.json"),
    Row("GET", "/opendata", every(200)),
    Row("GET", "/opendata/{name}", every(200), url="/opendata/{layer}.geojson", hidden=PUBLIC_LAYER),
    Row("OPTIONS", "/opendata/{path:path}", every(204), url="/opendata/gardens.geojson"),
    Row("GET", "/maps/public", every(200), hidden=PUBLIC_LAYER),
    Row("GET", "/maps/static/{path:path}", every(200), url="/maps/static/{map_static}"),
    # --- OpenRosa (field token in the path, or HTTP Basic) and field tokens
    Row("GET", "/openrosa/formList", signed_in(200), url="/openrosa/formList"),
    Row("GET", "/openrosa/key/{token}/formList", signed_in(200), url="/openrosa/key/{role_field_token}/formList"),
    Row("GET", "/openrosa/forms/{filename}", signed_in(200), url="/openrosa/forms/{form_file}"),
    Row("GET", "/openrosa/key/{token}/forms/{filename}", signed_in(200),
        url="/openrosa/key/{role_field_token}/forms/{form_file}"),
    Row("HEAD", "/openrosa/submission", signed_in(204)),
    Row("HEAD", "/openrosa/key/{token}/submission", signed_in(204), url="/openrosa/key/{role_field_token}/submission"),
    Row("POST", "/openrosa/submission", signed_in(422), body=_empty_submission),
    Row("POST", "/openrosa/key/{token}/submission", signed_in(422), url="/openrosa/key/{role_field_token}/submission",
        body=_empty_submission),
    Row("POST", "/api/v1/field-tokens", signed_in(201), body=js(label="matrice")),
    Row("GET", "/api/v1/field-tokens", signed_in(200)),
    Row("DELETE", "/api/v1/field-tokens/{token_id}", signed_in(404, member=200, coordinator=200),
        url="/api/v1/field-tokens/{field_token}"),
    Row("POST", "/api/v1/ingest/commons", coordinators(200, outsider=200), body=_geojson_upload),
    # --- the members' pages (session cookie + CSRF)
    Row("GET", "/", every(307), page=True),
    Row("GET", "/app/static/{path:path}", every(200), url="/app/static/{app_static}", page=True),
    Row("GET", "/app/signin", rule(303, anonymous=200), page=True),  # signed in: sent on
    Row("POST", "/app/signin", every(303), page=True,
        body=lambda s, role: {"data": {"username": (s.people.by_role(role) or s.people.member).username,
                                       "password": DEMO_PASSWORD}}),
    Row("POST", "/app/signout", every(303), page=True),
    Row("POST", "/app/language", every(303), page=True, body=_form(locale="en")),
    Row("GET", "/app/profile", READ_PAGE, page=True),
    Row("POST", "/app/profile", page(303), page=True, body=_form(display_name="Nom matrice", locale="fr")),
    Row("GET", "/app/", every(200), page=True),
    Row("GET", "/app/commons", every(200), page=True, hidden={"private": [S, C], "members": OURS}, shown=True),
    Row("GET", "/app/commons/{commons_id}", SEE_PRIVATE, url="/app/commons/{private}", page=True,
        hidden={"private": [S, C]}, shown=True),
    Row("GET", "/app/commons/{commons_id}/edit", rule(404, anonymous=303, steward=200, coordinator=200),
        url="/app/commons/{private}/edit", page=True),
    Row("POST", "/app/commons/{commons_id}/edit", rule(403, anonymous=303, steward=303, coordinator=303),
        url="/app/commons/{public}/edit", page=True, body=_form(name="Terrasses du Rocher", state="active")),
    Row("GET", "/app/members", READ_PAGE, page=True, hidden={"member_name": OURS}, shown=True),
    Row("POST", "/app/members", rule(403, anonymous=303, coordinator=303, outsider=303), page=True,
        body=lambda s, role: {"data": {"username": f"page_{role}", "display_name": "Membre matrice",
                                       "password": "assez-long-123", "locale": "fr"}}),
    Row("POST", "/app/members/{member_id}/roles", rule(403, anonymous=303, coordinator=303, outsider=404),
        url="/app/members/{member_id}/roles", page=True, body=_form(action="grant")),
    Row("POST", "/app/members/{member_id}/retire", rule(403, anonymous=303, coordinator=303, outsider=404),
        url="/app/members/{member_id}/retire", page=True),
    Row("POST", "/app/profile/password", page(303), page=True,
        body=_form(current_password=DEMO_PASSWORD, new_password="matrice-nouveau", confirm_password="matrice-nouveau")),
    Row("GET", "/app/work/new", READ_PAGE, page=True),
    Row("POST", "/app/work/new", rule(303, anonymous=303, outsider=422), page=True, body=_work_form),
    Row("GET", "/app/harvest/new", READ_PAGE, page=True),
    Row("POST", "/app/harvest/new", rule(303, anonymous=303, outsider=403), page=True,
        body=_form(commons_id=lambda s: str(s.commons("demo:garden-0").id), harvested_on=today(), crop="courgette",
                   weight_kg="2,5", destination="households_in_need")),
    Row("GET", "/app/soil/new", READ_PAGE, page=True),
    Row("POST", "/app/soil/new", rule(303, anonymous=303, outsider=403), page=True,
        body=_form(commons_id=lambda s: str(s.public), sampled_on=today(), indicator="infiltration", value="12",
                   unit="infiltration:min")),
    # Work on another cooperative's commons: "no such commons for you" (404), the form shows it
    # next to the field (422).
    Row("POST", "/app/sync", rule(201, anonymous=401, outsider=404), page=True,
        body=lambda s, role: {"json": {"kind": "work", "key": str(uuid.uuid4()), "author": _username(s, role),
                                       "fields": {"commons_id": str(s.public), "work_date": today(),
                                                  "duration": "1", "activity": "weeding"}}}),
    Row("GET", "/app/field", READ_PAGE, page=True),
    Row("POST", "/app/field/odk", page(200), page=True),
    Row("GET", "/app/manifest.webmanifest", every(200), page=True),
    Row("GET", "/app/sw.js", every(200), page=True),
    Row("GET", "/app/account", READ_PAGE, page=True),
    Row("GET", "/app/account/pay", READ_PAGE, page=True),
    Row("POST", "/app/account/pay", rule(303, anonymous=303, outsider=422), page=True,
        body=_form(payee="chloe", hours="0,5", reason="matrice")),
    Row("GET", "/app/approvals", READ_PAGE, page=True, url="/app/approvals?_={work_log}",
        hidden={"MATRIX-WORK": [S, C]}, shown=True),
    Row("POST", "/app/work/{work_log_id}/approve", DECIDE_LOG_PAGE,
        url="/app/work/{work_log}/approve", page=True),
    Row("POST", "/app/work/{work_log_id}/reject", DECIDE_LOG_PAGE,
        url="/app/work/{work_log}/reject", page=True, body=_form(reason="matrice")),
    Row("GET", "/app/work", READ_PAGE, page=True),
    Row("GET", "/app/reserve", READ_PAGE, page=True, hidden={"resource": OURS}, shown=True),
    Row("GET", "/app/reserve/{resource_id}", rule(200, anonymous=303, outsider=404),
        url="/app/reserve/{resource}", page=True, hidden={"resource": OURS}, shown=True),
    Row("POST", "/app/reserve/{resource_id}", rule(303, anonymous=303, outsider=404),
        url="/app/reserve/{resource}", page=True, body=_book_form),
    Row("POST", "/app/reserve/{resource_id}/wait", rule(303, anonymous=303, outsider=404),
        url="/app/reserve/{resource}/wait", page=True, body=_wait_form),
    Row("POST", "/app/reserve/{resource_id}/maintenance",
        rule(403, anonymous=303, steward=303, coordinator=303, outsider=404),
        url="/app/reserve/{resource}/maintenance", page=True, body=_maintenance_form),
    Row("GET", "/app/reservations", READ_PAGE, page=True),
    Row("POST", "/app/reservations/{reservation_id}/{what}",
        rule(404, anonymous=303, member=303, steward=303, coordinator=303),
        url="/app/reservations/{reservation}/cancel", page=True),
    Row("POST", "/app/waits/{wait_id}/{what}", rule(404, anonymous=303, member=303),
        url="/app/waits/{wait}/leave", page=True),
    Row("POST", "/app/reservations-feed", READ_PAGE, page=True),
]



def _rooms_rows() -> list[Row]:
    """The rows, subjects and texts of each room in its own module (tests/api/matrix/rows_<room>.py:
    ``ROWS``, and optionally ``SUBJECTS`` and ``TEXTS``), so that rooms add routes without touching this file."""
    import importlib
    from pathlib import Path

    rows: list[Row] = []
    for path in sorted((Path(__file__).parent / "matrix").glob("rows_*.py")):
        module = importlib.import_module(f"tests.api.matrix.{path.stem}")
        rows += module.ROWS
        EXTRA_SUBJECTS.update(getattr(module, "SUBJECTS", {}))
        EXTRA_TEXTS.update(getattr(module, "TEXTS", {}))
    return rows


ROWS += _rooms_rows()


# --- the test ---------------------------------------------------------------------------------------


def _route_keys(app) -> set[tuple[str, str]]:  # noqa: ANN001
    keys = set()
    for ctx in iter_route_contexts(app.routes):
        methods = set(ctx.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette answers HEAD for every GET
        for method in methods:
            keys.add((method, ctx.path))
    return keys


def test_every_route_has_a_row(app):
    routes = _route_keys(app)
    rows = [r.key for r in ROWS]
    assert len(rows) == len(set(rows)), "a route has two rows"
    missing = sorted(routes - set(rows))
    stale = sorted(set(rows) - routes)
    assert not missing, f"routes without a row in the access matrix (add one): {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def _username(s: Subjects, role: str) -> str:
    member = s.people.by_role(role)
    return member.username if member is not None else ""


def _fill(template: str, s: Subjects, role: str, cache: dict[str, str]) -> str:
    def value(name: str) -> str:
        if name in cache:
            return cache[name]
        if name == "now":
            v = datetime.now().astimezone().isoformat()
        elif name == "free_from":
            v = _start(HORIZON + 5, 14).isoformat()
        elif name == "free_until":
            v = _start(HORIZON + 5, 16).isoformat()
        elif name == "layer":
            v = "gardens"
        elif name == "map_static":
            from maps.public import STATIC_DIR

            v = next(p for p in sorted(STATIC_DIR.rglob("*")) if p.is_file()).relative_to(STATIC_DIR).as_posix()
        elif name == "app_static":
            from api.web import STATIC

            v = next(p for p in sorted(STATIC.glob("*.css"))).name
        elif name == "form_file":
            from ingest.xforms import FORMS

            v = f"{next(iter(FORMS))}.xml"
        elif name == "role_field_token":
            member = s.people.by_role(role)
            if member is None:
                v = "not-a-token"
            else:
                from commons_map.fieldforms.service import issue_token

                v, _ = issue_token(s.db, actor=member, member=member, label="matrice")
                s.db.flush()
        elif name in EXTRA_SUBJECTS:
            v = EXTRA_SUBJECTS[name](s)
        else:
            v = getattr(s, name)
        cache[name] = str(v)
        return cache[name]

    return re.sub(r"\{(\w+)\}", lambda m: quote(value(m.group(1)), safe="/"), template)


def _page_client(app, role: str, s: Subjects):  # noqa: ANN001
    """A browser: signed in through the form as the role (anonymous: just the session's CSRF)."""
    from fastapi.testclient import TestClient

    c = TestClient(app, follow_redirects=False)
    html = c.get("/app/signin").text
    token = CSRF_RE.search(html).group(1)  # type: ignore[union-attr]
    member = s.people.by_role(role)
    if member is not None:
        r = c.post("/app/signin", data={"username": member.username, "password": DEMO_PASSWORD,
                                        "csrf_token": token, "next": "/app/"})
        assert r.status_code == 303, r.text[:300]
        token = CSRF_RE.search(c.get("/app/").text).group(1)  # type: ignore[union-attr]
    return c, token


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method} {r.path}")
def test_access(row: Row, role: str, app, client, db, people, auth):
    s = Subjects(db, people)
    cache: dict[str, str] = {}
    url = _fill(row.url or row.path, s, role, cache)
    kwargs = row.body(s, role) if row.body else {}
    member = people.by_role(role)
    if row.page:
        c, token = _page_client(app, role, s)
        if row.method == "POST":
            if "json" in kwargs:
                kwargs["headers"] = {"X-CSRF-Token": token}
            else:
                kwargs["data"] = {**kwargs.get("data", {}), "csrf_token": token}
        r = c.request(row.method, url, **kwargs)
    else:
        headers = dict(auth(member))
        if url.startswith("/openrosa/") and "/key/" not in url:
            headers = {}
            if member is not None:
                basic = base64.b64encode(f"{member.username}:{DEMO_PASSWORD}".encode()).decode()
                headers = {"Authorization": f"Basic {basic}"}
        r = client.request(row.method, url, headers=headers, follow_redirects=False, **kwargs)
    allowed = row.expect[role]
    assert r.status_code in allowed, (
        f"{role} {row.method} {url}: {r.status_code}, the rule says {sorted(allowed)}\n{r.text[:600]}")
    if row.page and r.status_code == 303 and role == A and row.expect[A] == {303} and row.path.startswith("/app/") \
            and row.path not in ("/app/signin", "/app/signout", "/app/language"):
        assert r.headers["location"].startswith("/app/signin"), r.headers["location"]
    body = r.content.decode("utf-8", errors="replace")
    if r.headers.get("content-encoding") == "gzip" or url.endswith(".gpkg"):
        return
    for key, may_see in row.hidden.items():
        text = s.text(key)
        if role in may_see:
            if row.shown and r.status_code < 300:
                assert text in body, f"{role} should find {text!r} in {row.method} {url}"
        else:
            assert text not in body, f"{role} must not see {text!r} in {row.method} {url}"

