"""The members' pages doing real work: field forms, offline sync, approvals, payments, bookings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from commons_map.ledger.service import balance
from commons_map.people.models import Member
from commons_map.register.models import Commons
from commons_map.reservations import service as reservations
from commons_map.reservations.models import Reservation, WaitingEntry
from commons_map.soil.models import Harvest, Sample
from commons_map.worklog.models import WorkLog
from tests.api.test_pages import csrf_of, sign_in

PARIS = ZoneInfo("Europe/Paris")


def today() -> str:
    return datetime.now(PARIS).date().isoformat()


def stewarded_land(db, member: Member) -> Commons:
    return next(
        c
        for c in db.scalars(
            select(Commons).where(Commons.external_id.like("demo:land-%")).order_by(Commons.id)
        )
        if member.id in c.steward_ids
    )


def count(db, model, **where) -> int:
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return db.scalar(stmt)


# --- work ---------------------------------------------------------------------------------------


def test_log_work_then_a_steward_approves_and_the_balance_changes(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    form = client.get(f"/app/work/new?commons_id={land.id}")
    assert form.status_code == 200 and 'data-offline-kind="work"' in form.text
    before = balance(db, member=people.member)
    key = str(uuid.uuid4())
    r = client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "1,5",
            "activity": "weeding",
            "notes": "désherbage des planches",
            "source_ref": key,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-1500:]
    page = client.get(r.headers["location"])
    assert 'id="saved-message"' in page.text  # says what happens next
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == key)).one()
    assert log.minutes == 90 and log.state == "submitted"
    # the steward sees it, approves it
    client.cookies.clear()
    token = sign_in(client, "mamadou")
    home = client.get("/app/")
    assert "/app/approvals" in home.text
    approvals = client.get("/app/approvals")
    assert f'id="w{log.id}"' in approvals.text
    r = client.post(
        f"/app/work/{log.id}/approve", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    db.refresh(log)
    assert log.state == "approved"
    assert balance(db, member=people.member) == before + 90


def test_work_form_errors_next_to_fields_keep_input_and_write_nothing(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    future = (datetime.now(PARIS).date() + timedelta(days=3)).isoformat()
    n = count(db, WorkLog)
    r = client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": future,
            "duration": "2",
            "activity": "weeding",
            "notes": "typed notes stay",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    assert 'id="work_date-error"' in r.text
    assert "typed notes stay</textarea>" in r.text
    assert f'value="{future}"' in r.text
    assert count(db, WorkLog) == n
    r = client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "deux",
            "activity": "weeding",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422 and 'id="duration-error"' in r.text
    r = client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "17",
            "activity": "weeding",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422 and 'id="duration-error"' in r.text
    assert count(db, WorkLog) == n


def test_work_on_a_commons_i_may_not_see_is_refused_next_to_the_field(client, db):
    home = db.scalars(select(Commons).where(Commons.external_id == "demo:home-0")).one()
    token = sign_in(client, "lucas")
    r = client.post(
        "/app/work/new",
        data={
            "commons_id": str(home.id),
            "work_date": today(),
            "duration": "1",
            "activity": "weeding",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422 and 'id="commons_id-error"' in r.text


def test_rejecting_needs_a_reason_shown_next_to_the_box(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "1",
            "activity": "weeding",
            "csrf_token": token,
            "source_ref": "rej-" + uuid.uuid4().hex,
        },
    )
    log = db.scalars(
        select(WorkLog).where(WorkLog.member_id == people.member.id).order_by(WorkLog.id.desc())
    ).first()
    client.cookies.clear()
    token = sign_in(client, "mamadou")
    r = client.post(f"/app/work/{log.id}/reject", data={"reason": " ", "csrf_token": token})
    assert r.status_code == 422 and f'id="reason-{log.id}-error"' in r.text
    db.refresh(log)
    assert log.state == "submitted"


def test_the_worker_cannot_approve_their_own_hours(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "mamadou")
    client.post(
        "/app/work/new",
        data={
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "1",
            "activity": "weeding",
            "csrf_token": token,
        },
    )
    log = db.scalars(
        select(WorkLog).where(WorkLog.member_id == people.steward.id).order_by(WorkLog.id.desc())
    ).first()
    r = client.post(f"/app/work/{log.id}/approve", data={"csrf_token": token})
    assert r.status_code in (403, 409)
    db.refresh(log)
    assert log.state == "submitted"


# --- the offline queue's sync endpoint ---------------------------------------------------------------


def test_sync_saves_once_whatever_the_retries(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    key = str(uuid.uuid4())
    entry = {
        "kind": "work",
        "key": key,
        "author": "lucas",
        "fields": {
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "0,75",
            "activity": "mulching",
        },
    }
    r = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "saved"
    r = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert count(db, WorkLog, source_ref=key) == 1
    # the same key with other content: refused, the server's version is kept
    changed = {**entry, "fields": {**entry["fields"], "duration": "3"}}
    r = client.post("/app/sync", json=changed, headers={"X-CSRF-Token": token})
    assert r.status_code == 409
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == key)).one()
    assert log.minutes == 45


def test_sync_never_overwrites_an_approved_entry(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    key = str(uuid.uuid4())
    entry = {
        "kind": "work",
        "key": key,
        "author": "lucas",
        "fields": {
            "commons_id": str(land.id),
            "work_date": today(),
            "duration": "1",
            "activity": "mulching",
        },
    }
    assert client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token}).status_code == 201
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == key)).one()
    from commons_map.worklog import service as worklog

    worklog.approve(db, actor=people.steward, work_log_id=log.id)
    r = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    db.refresh(log)
    assert log.state == "approved" and log.minutes == 60


@pytest.mark.parametrize(
    "kind, fields, model",
    [
        ("harvest", {"crop": "tomate", "weight_kg": "2,5", "destination": "shared_meals"}, Harvest),
        ("soil", {"indicator": "infiltration", "value": "12", "unit": "infiltration:min"}, Sample),
    ],
)
def test_sync_harvests_and_soil_once(client, db, people, kind, fields, model):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    token = sign_in(client, "lucas")
    key = str(uuid.uuid4())
    date_field = {"harvest": "harvested_on", "soil": "sampled_on"}[kind]
    entry = {
        "kind": kind,
        "key": key,
        "author": "lucas",
        "fields": {"commons_id": str(garden.id), date_field: today(), **fields},
    }
    first = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert first.status_code == 201, first.text
    again = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert again.status_code == 200
    assert count(db, model, source_ref=key) == 1


@pytest.mark.parametrize("author", ["chloe", None, ""])
def test_sync_never_sends_an_entry_under_another_members_name(client, db, people, author):
    """A shared phone: what chloe saved offline is not saved as lucas's work when lucas signs in."""
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    key = str(uuid.uuid4())
    entry = {"kind": "work", "key": key, "fields": {"commons_id": str(land.id), "work_date": today(),
                                                     "duration": "1", "activity": "mulching"}}
    if author is not None:
        entry["author"] = author
    r = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and r.json()["status"] == "held"
    assert count(db, WorkLog, source_ref=key) == 0
    # its author sends it, as themself
    client.cookies.clear()
    token = sign_in(client, "chloe")
    r = client.post("/app/sync", json={**entry, "author": "chloe"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == key)).one()
    assert log.member_id == db.scalars(select(Member).where(Member.username == "chloe")).one().id


def test_sync_needs_the_csrf_header_and_a_session(client, db):
    token = sign_in(client, "lucas")
    entry = {"kind": "work", "key": str(uuid.uuid4()), "author": "lucas", "fields": {}}
    assert client.post("/app/sync", json=entry).status_code == 403
    client.cookies.clear()
    client.get("/app/signin")
    r = client.post("/app/sync", json=entry, headers={"X-CSRF-Token": token})
    assert r.status_code == 403  # another session's token


def test_sync_refusal_names_the_field(client, db, people):
    land = stewarded_land(db, people.steward)
    token = sign_in(client, "lucas")
    key = str(uuid.uuid4())
    r = client.post(
        "/app/sync",
        json={
            "kind": "work",
            "key": key,
            "author": "lucas",
            "fields": {
                "commons_id": str(land.id),
                "work_date": today(),
                "duration": "-1",
                "activity": "mulching",
            },
        },
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 422
    assert "duration" in r.json()["errors"]
    assert count(db, WorkLog, source_ref=key) == 0
    r = client.post(
        "/app/sync",
        json={"kind": "work", "key": "x", "author": "lucas", "fields": {}},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 422 and r.json()["status"] == "refused"


# --- harvest and soil forms -----------------------------------------------------------------------------


def test_harvest_form_refuses_a_negative_weight(client, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    token = sign_in(client, "lucas")
    n = count(db, Harvest)
    r = client.post(
        "/app/harvest/new",
        data={
            "commons_id": str(garden.id),
            "harvested_on": today(),
            "crop": "courgette",
            "weight_kg": "-3",
            "csrf_token": token,
        },
    )
    assert (
        r.status_code == 422 and 'id="weight_kg-error"' in r.text and 'value="courgette"' in r.text
    )
    assert count(db, Harvest) == n
    r = client.post(
        "/app/harvest/new",
        data={
            "commons_id": str(garden.id),
            "harvested_on": today(),
            "crop": "courgette",
            "weight_kg": "4,2",
            "csrf_token": token,
            "destination": "households_in_need",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert count(db, Harvest) == n + 1


def test_soil_form_refuses_a_value_out_of_range(client, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    token = sign_in(client, "lucas")
    form = client.get("/app/soil/new")
    assert 'data-indicator="infiltration"' in form.text
    n = count(db, Sample)
    r = client.post(
        "/app/soil/new",
        data={
            "commons_id": str(garden.id),
            "sampled_on": today(),
            "indicator": "infiltration",
            "value": "99999",
            "unit": "infiltration:min",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422 and 'id="value-error"' in r.text
    assert count(db, Sample) == n


# --- paying a member ----------------------------------------------------------------------------------


def test_pay_a_member_and_see_it_in_both_accounts(client, db, people):
    token = sign_in(client, "camille")
    form = client.get("/app/account/pay")
    key = csrf_of(form.text) and form.text.split('name="idempotency_key" value="')[1].split('"')[0]
    lucas_before = balance(db, member=people.member)
    r = client.post(
        "/app/account/pay",
        data={
            "payee": str(people.member.id),
            "hours": "0,5",
            "reason": "réparer un vélo",
            "idempotency_key": key,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    # a double submit of the same form pays once
    client.post(
        "/app/account/pay",
        data={
            "payee": str(people.member.id),
            "hours": "0,5",
            "reason": "réparer un vélo",
            "idempotency_key": key,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert balance(db, member=people.member) == lucas_before + 30
    statement = client.get("/app/account")
    assert "réparer un vélo" in statement.text


def test_pay_beyond_the_limit_is_shown_next_to_the_hours(client, db, people):
    token = sign_in(client, "lucas")
    before = balance(db, member=people.member)
    r = client.post(
        "/app/account/pay",
        data={
            "payee": str(people.coordinator.id),
            "hours": "500",
            "reason": "trop",
            "idempotency_key": str(uuid.uuid4()),
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    assert 'id="hours-error"' in r.text or 'class="alert"' in r.text
    assert 'value="500"' in r.text
    assert balance(db, member=people.member) == before


# --- reservations ---------------------------------------------------------------------------------------


def free_slot(db, member: Member, resource_id: int, hours: int = 2) -> tuple[datetime, datetime]:
    start = datetime.combine(
        datetime.now(PARIS).date() + timedelta(days=12), datetime.min.time(), PARIS
    )
    av = reservations.availability(
        db, actor=member, resource_id=resource_id, start=start, end=start + timedelta(days=7)
    )
    for slot in av["free"]:
        a = slot["starts_at"].replace(minute=0) + timedelta(hours=1)
        if slot["ends_at"] - a >= timedelta(hours=hours):
            return a, a + timedelta(hours=hours)
    raise AssertionError("no free slot in the demo data")


def booking_form(a: datetime, b: datetime, token: str) -> dict[str, str]:
    return {
        "start_date": a.date().isoformat(),
        "start_time": a.strftime("%H:%M"),
        "end_date": b.date().isoformat(),
        "end_time": b.strftime("%H:%M"),
        "csrf_token": token,
    }


def test_book_a_tool_then_someone_else_hits_the_conflict_and_joins_the_waiting_list(
    client, db, people
):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-1")).one()
    a, b = free_slot(db, people.member, tool.id)
    jeanne = db.scalars(select(Member).where(Member.username == "jeanne")).one()
    token = sign_in(client, "jeanne")
    page = client.get(f"/app/reserve/{tool.id}")
    assert page.status_code == 200 and 'id="calendar"' in page.text
    r = client.post(
        f"/app/reserve/{tool.id}", data=booking_form(a, b, token), follow_redirects=False
    )
    assert r.status_code == 303, r.text[-2000:]
    mine = db.scalars(
        select(Reservation).where(
            Reservation.resource_id == tool.id,
            Reservation.member_id == jeanne.id,
            Reservation.starts_at == a,
        )
    ).one()
    assert mine.state == "confirmed"
    client.cookies.clear()
    token = sign_in(client, "camille")
    r = client.post(f"/app/reserve/{tool.id}", data=booking_form(a, b, token))
    assert r.status_code == 409
    assert 'id="wait-form"' in r.text
    assert f'value="{a.strftime("%H:%M")}"' in r.text
    assert count(db, Reservation, resource_id=tool.id, starts_at=a) == 1
    r = client.post(
        f"/app/reserve/{tool.id}/wait", data=booking_form(a, b, token), follow_redirects=False
    )
    assert r.status_code == 303
    assert (
        db.scalar(
            select(WaitingEntry).where(
                WaitingEntry.resource_id == tool.id, WaitingEntry.member_id == people.coordinator.id
            )
        )
        is not None
    )


def test_booking_errors_are_next_to_the_fields(client, db, people):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-2")).one()
    token = sign_in(client, "lucas")
    a = datetime.combine(datetime.now(PARIS).date() + timedelta(days=5), datetime.min.time(), PARIS)
    form = booking_form(a.replace(hour=10), a.replace(hour=9), token)
    n = count(db, Reservation, resource_id=tool.id)
    r = client.post(f"/app/reserve/{tool.id}", data=form)
    assert r.status_code == 422 and 'id="end_time-error"' in r.text
    form = booking_form(a.replace(hour=10), a.replace(hour=10), token)
    form["start_time"] = ""
    r = client.post(f"/app/reserve/{tool.id}", data=form)
    assert r.status_code == 422 and 'id="start_time-error"' in r.text
    assert count(db, Reservation, resource_id=tool.id) == n


def test_cancel_and_calendar_feed(client, db, people):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-8")).one()
    a, b = free_slot(db, people.member, tool.id)
    token = sign_in(client, "jeanne")
    client.post(f"/app/reserve/{tool.id}", data=booking_form(a, b, token))
    r_ = db.scalars(
        select(Reservation).where(Reservation.resource_id == tool.id, Reservation.starts_at == a)
    ).one()
    r = client.post(
        f"/app/reservations/{r_.id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    db.refresh(r_)
    assert r_.state == "cancelled"
    page = client.post("/app/reservations-feed", data={"csrf_token": token})
    assert "/api/v1/calendars/" in page.text and ".ics" in page.text


def test_check_out_and_in_with_a_condition_note(client, db, people):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-4")).one()
    jeanne = db.scalars(select(Member).where(Member.username == "jeanne")).one()
    now = datetime.now(PARIS).replace(second=0, microsecond=0)
    r_ = None
    for hours in range(0, 48):
        try:
            with db.begin_nested():
                r_ = reservations.book(
                    db,
                    actor=jeanne,
                    resource_id=tool.id,
                    starts_at=now + timedelta(minutes=10 + 60 * hours),
                    ends_at=now + timedelta(minutes=130 + 60 * hours),
                )
            if hours == 0:
                break
        except Exception:  # noqa: BLE001 - demo bookings in the way: try later
            continue
        break
    assert r_ is not None
    if r_.starts_at - now > timedelta(hours=1):
        pytest.skip("no free slot near enough to check out")
    token = sign_in(client, "jeanne")
    r = client.post(
        f"/app/reservations/{r_.id}/checkout",
        data={"notes": "bon état", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = client.post(
        f"/app/reservations/{r_.id}/checkin",
        data={"notes": "", "damaged": "1", "csrf_token": token},
    )
    assert r.status_code == 409 and f'id="notes-{r_.id}-error"' in r.text
    r = client.post(
        f"/app/reservations/{r_.id}/checkin",
        data={"notes": "manche fêlé", "damaged": "1", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    db.refresh(r_)
    assert r_.state == "returned" and r_.damaged and r_.return_notes == "manche fêlé"


def test_steward_declares_maintenance_from_the_page(client, db, people):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-6")).one()
    token = sign_in(client, "camille")
    a, b = free_slot(db, people.coordinator, tool.id)
    r = client.post(
        f"/app/reserve/{tool.id}/maintenance",
        data={
            "m_start_date": a.date().isoformat(),
            "m_start_time": a.strftime("%H:%M"),
            "m_end_date": b.date().isoformat(),
            "m_end_time": b.strftime("%H:%M"),
            "m_reason": "affûtage",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert db.scalar(
        select(Reservation).where(
            Reservation.resource_id == tool.id,
            Reservation.kind == "maintenance",
            Reservation.starts_at == a,
        )
    )


def test_plain_member_cannot_declare_maintenance(client, db, people):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-6")).one()
    token = sign_in(client, "lucas")
    a = datetime.now(PARIS) + timedelta(days=3)
    r = client.post(
        f"/app/reserve/{tool.id}/maintenance",
        data={"m_start_date": a.date().isoformat(), "m_start_time": "10:00", "csrf_token": token},
    )
    assert r.status_code == 403


# --- ODK Collect link -------------------------------------------------------------------------------


def test_my_odk_collect_link_as_a_qr_code(client, db, people):
    import base64
    import json
    import re as _re
    import zlib

    from commons_map.fieldforms.service import member_from_token

    token = sign_in(client, "lucas")
    assert "/app/field/odk" in client.get("/app/field").text
    r = client.post("/app/field/odk", data={"csrf_token": token})
    assert r.status_code == 200
    assert "<svg" in r.text and 'role="img"' in r.text
    url = _re.search(r'id="odk-url" type="text" readonly value="([^"]+)"', r.text).group(1)
    assert "/openrosa/key/" in url
    secret = url.rsplit("/", 1)[1]
    assert member_from_token(db, secret).id == people.member.id
    from api.pagedata import odk_settings

    payload = json.loads(zlib.decompress(base64.b64decode(odk_settings(url, "Coop"))))
    assert payload["general"]["server_url"] == url
    assert client.post("/app/field/odk", data={}).status_code == 403


def test_a_request_waits_for_a_steward_who_confirms_it_from_the_approvals_page(client, db, people):
    shredder = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-5")).one()
    asker = people.member  # a plain member: the shredder needs a steward's approval
    assert asker.id not in shredder.steward_ids
    a, b = free_slot(db, asker, shredder.id)
    token = sign_in(client, asker.username)
    r = client.post(
        f"/app/reserve/{shredder.id}", data=booking_form(a, b, token), follow_redirects=False
    )
    assert r.status_code == 303 and "done=requested" in r.headers["location"]
    req = db.scalars(
        select(Reservation).where(
            Reservation.resource_id == shredder.id,
            Reservation.member_id == asker.id,
            Reservation.starts_at == a,
        )
    ).one()
    assert req.state == "requested"
    client.cookies.clear()
    token = sign_in(client, "camille")
    assert "Lucas Bernard" in client.get("/app/approvals").text
    r = client.post(
        f"/app/reservations/{req.id}/approve", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    db.refresh(req)
    assert req.state == "confirmed"


def test_anonymous_visitors_see_only_public_commons(client, db):
    r = client.get("/app/commons", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    home = db.scalars(select(Commons).where(Commons.external_id == "demo:home-0")).one()
    assert f'href="/app/commons/{home.id}"' not in r.text
    assert client.get(f"/app/commons/{home.id}").status_code == 404
