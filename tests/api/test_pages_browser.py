"""The members' pages as a person uses them: headless Chromium (Debian's) on a 360-px phone,
against the app served on the loopback over the committed test database (real PostGIS).

The data these tests make is committed: every test uses members it creates with unique names,
so other tests' expectations about the demo cooperative hold. Screenshots of the key pages are
kept in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import csv
import re
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import commons_map.soil as soil_data
from commons_map.db import session_scope
from commons_map.demo.load import DEMO_PASSWORD
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import create_member
from commons_map.register.models import Commons
from commons_map.worklog.models import WorkLog
from tests.api.test_i18n import catalog
from tests.conftest import ARTIFACTS

PASSWORD = "e2e-password-123"
PARIS = ZoneInfo("Europe/Paris")
# Proper nouns and codes that read the same in both languages.
ALLOWED = {
    "english",
    "français",
    "odk",
    "collect",
    "kobocollect",
    "icalendar",
    "openstreetmap",
    "leaflet",
    "commons-map",
    "api",
}

@pytest.fixture
def new_phone(browser, live_server):
    """Open phones (browser contexts) of 360 px in French; closed after the test."""
    made = []

    def make(locale: str = "fr-FR"):
        ctx = browser.new_context(
            viewport={"width": 360, "height": 780},
            device_scale_factor=1,
            is_mobile=True,
            has_touch=True,
            locale=locale,
            base_url=live_server.url,
            service_workers="allow",
        )
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def make_member(engine):
    """Members made for one test and committed (unique usernames)."""

    def make(prefix: str, locale: str = "fr") -> str:
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with session_scope(engine) as s:
            coop = s.scalars(select(Cooperative).where(Cooperative.slug == "cic-saillans")).one()
            create_member(
                s,
                cooperative=coop,
                username=username,
                display_name=f"Essai {username}",
                password=PASSWORD,
                locale=locale,
                bootstrap=True,
            )
        return username

    return make


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in with the keyboard only (tab order, labels, Enter)."""
    page.goto("/app/signin")
    page.get_by_label(re.compile("^(Identifiant|Username)$")).focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/app/"), page.locator("main").inner_text()


def steward_land(engine) -> tuple[int, str]:
    with Session(engine) as s:
        mamadou = s.scalars(select(Member).where(Member.username == "mamadou")).one()
        land = next(
            c
            for c in s.scalars(
                select(Commons).where(Commons.external_id.like("demo:land-%")).order_by(Commons.id)
            )
            if mamadou.id in c.steward_ids
        )
        return land.id, land.name


def logs_with(engine, notes: str) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.notes == notes))


def test_log_work_then_a_steward_approves_it_and_the_balance_changes(
    new_phone, make_member, engine
):
    worker = make_member("e2e-work")
    land_id, _land_name = steward_land(engine)
    notes = f"paillage e2e {uuid.uuid4().hex[:6]}"

    phone = new_phone().new_page()
    sign_in(phone, worker)
    assert "0" in phone.locator("#balance").inner_text()
    phone.goto(f"/app/work/new?commons_id={land_id}")
    phone.get_by_label("Durée (heures)").fill("1,5")
    phone.get_by_label("Activité").select_option("mulching")
    phone.get_by_label("Ce que vous avez fait (facultatif)").fill(notes)
    shot(phone, "01-log-work-form")
    phone.get_by_role("button", name="Enregistrer").click()
    message = phone.locator("#saved-message")
    message.wait_for()
    assert "attendent maintenant la validation" in message.inner_text()
    shot(phone, "02-log-work-saved")
    assert logs_with(engine, notes) == 1

    steward = new_phone().new_page()
    sign_in(steward, "mamadou", DEMO_PASSWORD)
    steward.goto("/app/approvals")
    item = steward.locator("#work-to-approve li", has_text=notes)
    shot(steward, "03-approvals")
    item.get_by_role("button", name=re.compile("^Valider")).click()
    steward.locator(".flash").wait_for()
    assert "créditées" in steward.locator(".flash").inner_text()

    phone.goto("/app/")
    assert re.search(r"1 h 30", phone.locator("#balance").inner_text())
    phone.goto("/app/account")
    assert "travail crédité" in phone.locator("#statement").inner_text()
    shot(phone, "04-time-account")


def _free_slot(engine, tool_id: int) -> tuple[datetime, datetime]:
    from commons_map.reservations import service as reservations

    with Session(engine) as s:
        actor = s.scalars(select(Member).where(Member.username == "camille")).one()
        start = datetime.combine(datetime.now(PARIS).date() + timedelta(days=20), time(), PARIS)
        av = reservations.availability(
            s, actor=actor, resource_id=tool_id, start=start, end=start + timedelta(days=7)
        )
        for slot in av["free"]:
            a = slot["starts_at"].replace(minute=0) + timedelta(hours=3)
            if slot["ends_at"] - a >= timedelta(hours=2):
                return a, a + timedelta(hours=2)
    raise AssertionError("no free slot")


def _fill_booking(page, a: datetime, b: datetime) -> None:
    form = page.locator("#book-form")
    form.get_by_label("Du (jour)").fill(a.date().isoformat())
    form.get_by_label("À partir de (heure)").fill(a.strftime("%H:%M"))
    form.get_by_label("Au (jour)").fill(b.date().isoformat())
    form.get_by_label("Jusqu'à (heure)").fill(b.strftime("%H:%M"))


def test_reserve_a_tool_then_another_member_hits_the_conflict(new_phone, make_member, engine):
    first, second = make_member("e2e-res-a"), make_member("e2e-res-b")
    with Session(engine) as s:
        tool = s.scalars(select(Commons).where(Commons.external_id == "demo:tool-13")).one()
        tool_id = tool.id
    a, b = _free_slot(engine, tool_id)

    p1 = new_phone().new_page()
    sign_in(p1, first)
    p1.goto(f"/app/reserve/{tool_id}")
    assert p1.locator("#calendar").is_visible()
    shot(p1, "05-reserve-calendar")
    _fill_booking(p1, a, b)
    p1.locator("#book-form").get_by_role("button", name="Réserver").click()
    p1.wait_for_url("**/app/reservations**")
    assert "Réservé et confirmé" in p1.locator(".flash").inner_text()
    shot(p1, "06-my-reservations")

    p2 = new_phone().new_page()
    sign_in(p2, second)
    p2.goto(f"/app/reserve/{tool_id}")
    _fill_booking(p2, a, b)
    p2.locator("#book-form").get_by_role("button", name="Réserver").click()
    alert = p2.locator(".alert")
    alert.wait_for()
    refusal = alert.inner_text()  # says what holds the slot, to the minute, in the member's time
    assert refusal.startswith("Ce créneau est déjà pris : réservé du ")
    assert f"{a.strftime('%H:%M')} au " in refusal and ":00:00" not in refusal
    assert p2.locator("#f-start_time").input_value() == a.strftime("%H:%M")  # what was typed stays
    shot(p2, "07-reserve-conflict")
    p2.get_by_role("button", name="M'inscrire sur la liste d'attente").click()
    p2.wait_for_url("**/app/reservations**")
    assert "liste d'attente" in p2.locator(".flash").inner_text()


def wait_until_queue_empty(page, timeout: float = 20.0) -> None:
    """Until the phone's offline queue is empty. (``wait_for_function`` does not await a Promise:
    a predicate returning ``all().then(...)`` is truthy at once, so it cannot be used here.)"""
    import time as clock

    deadline = clock.monotonic() + timeout
    while True:
        left = page.evaluate("window.commonsField ? window.commonsField.all().then(a => a.length) : -1")
        if left == 0:
            return
        assert clock.monotonic() < deadline, f"the queue still holds {left} entries"
        page.wait_for_timeout(100)


def log_work_offline(ctx, page, *, land_id: int, hours: str, activity: str, notes: str) -> None:
    """With the service worker in control, go offline and save a work log: it waits in the phone's queue."""
    page.goto("/app/work/new")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    ctx.set_offline(True)
    page.get_by_label("Où").select_option(str(land_id))
    page.get_by_label("Durée (heures)").fill(hours)
    page.get_by_label("Activité").select_option(activity)
    page.get_by_label("Ce que vous avez fait (facultatif)").fill(notes)
    page.get_by_role("button", name="Enregistrer").click()
    page.locator("#sync-queue").wait_for(state="visible")


def test_fill_a_field_form_offline_and_see_it_synced_once(new_phone, make_member, engine):
    worker = make_member("e2e-offline")
    land_id, _ = steward_land(engine)
    notes = f"désherbage hors ligne {uuid.uuid4().hex[:6]}"
    ctx = new_phone()
    page = ctx.new_page()
    sign_in(page, worker)
    log_work_offline(ctx, page, land_id=land_id, hours="0,5", activity="weeding", notes=notes)
    queue = page.locator("#sync-queue")
    assert "1 saisie attend" in queue.inner_text()
    assert "Pas de connexion" in page.locator("#saved-message").inner_text()
    assert logs_with(engine, notes) == 0
    # the forms open with no connection (from the service worker's cache)
    page.goto("/app/harvest/new")
    assert page.get_by_role("heading", name="Noter une récolte").is_visible()
    page.goto("/app/field")
    page.locator("#sync-queue").wait_for(state="visible")
    assert "1 saisie attend" in page.locator("#sync-queue").inner_text()
    shot(page, "08-offline-queue")

    ctx.set_offline(False)
    wait_until_queue_empty(page)
    page.wait_for_function(
        "document.querySelector('#sync-queue').innerText.includes('Envoyé')", timeout=20000
    )
    shot(page, "09-synced")
    assert logs_with(engine, notes) == 1
    # more tries (a reload, an explicit sync) do not make a second entry
    page.reload()
    page.evaluate("window.commonsField.sync()")
    assert logs_with(engine, notes) == 1


def test_a_shared_phone_never_sends_one_members_entry_under_the_next_members_name(new_phone, make_member, engine):
    """Amina saves work offline, her session ends; Omar signs in on the same phone: her entry is held
    (counted, not shown), never sent as his; once she signs in again it is sent, as hers, once."""
    first, second = make_member("e2e-phone-a"), make_member("e2e-phone-b")
    land_id, _ = steward_land(engine)
    notes = f"paillage téléphone partagé {uuid.uuid4().hex[:6]}"
    ctx = new_phone()
    page = ctx.new_page()
    sign_in(page, first)
    log_work_offline(ctx, page, land_id=land_id, hours="1", activity="mulching", notes=notes)
    ctx.clear_cookies()  # her session ends (expired, or signed out elsewhere)
    ctx.set_offline(False)
    sign_in(page, second)
    page.goto("/app/field")
    page.evaluate("window.commonsField.sync()")
    held = page.locator("#sync-queue .queue-held")
    held.wait_for(state="visible")
    assert "1 saisie d'un·e autre membre attend" in held.inner_text()
    assert notes not in page.locator("main").inner_text()
    assert page.evaluate("window.commonsField.all().then(a => a.length)") == 1
    assert logs_with(engine, notes) == 0
    # she signs in again: it is sent, as hers, once
    ctx.clear_cookies()
    sign_in(page, first)
    page.goto("/app/field")
    wait_until_queue_empty(page)
    assert logs_with(engine, notes) == 1
    with Session(engine) as s:
        log = s.scalars(select(WorkLog).where(WorkLog.notes == notes)).one()
        assert s.get(Member, log.member_id).username == first


def english_vocabulary() -> set[str]:
    """Words of the English strings that no French string uses."""

    def words(text: str) -> set[str]:
        return {
            w.lower() for w in re.findall(r"[A-Za-zÀ-ÿ]{3,}", re.sub(r"%\(\w+\)[sd]", "", text))
        }

    en, fr = set(), set()
    for m in catalog("fr"):
        if not m.id:
            continue
        for s in m.id if isinstance(m.id, tuple) else (m.id,):
            en |= words(s)
        for s in m.string if isinstance(m.string, tuple) else (m.string,):
            fr |= words(s)
    # The soil indicators' French names come from their own table ("Masse de terre fine").
    with (Path(soil_data.__file__).parent.parent / "data" / "indicators.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            fr |= words(row["label_fr"])
    return en - fr - ALLOWED


def test_in_french_no_english_is_left_on_the_members_pages(new_phone, make_member, engine):
    member = make_member("e2e-fr", locale="en")
    land_id, _ = steward_land(engine)
    with Session(engine) as s:
        tool_id = s.scalars(select(Commons).where(Commons.external_id == "demo:tool-12")).one().id
    page = new_phone("en-GB").new_page()
    sign_in(page, member)
    assert page.locator("html").get_attribute("lang") == "en"
    # switch to French with the language form at the foot of every page
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "fr"
    with Session(engine) as s:  # people's and places' names are proper nouns ("Pré Long"), whatever they look like
        names = {
            w.lower()
            for n in [*s.scalars(select(Member.display_name)), *s.scalars(select(Commons.name))]
            for w in re.findall(r"[A-Za-zÀ-ÿ]{3,}", n)
        }
    vocabulary = english_vocabulary() - names
    leftovers = {}
    for path in [
        "/app/",
        "/app/field",
        "/app/work/new",
        "/app/harvest/new",
        "/app/soil/new",
        "/app/commons",
        f"/app/commons/{land_id}",
        "/app/reserve",
        f"/app/reserve/{tool_id}",
        "/app/reservations",
        "/app/account",
        "/app/account/pay",
        "/app/approvals",
        "/app/profile",
    ]:
        page.goto(path)
        text = page.evaluate(
            "() => document.body.innerText + ' ' + Array.from("
            "document.querySelectorAll('[aria-label],[placeholder],[title]'))"
            ".map(e => (e.getAttribute('aria-label') || '') + ' ' + (e.getAttribute('placeholder') || '')).join(' ')"
        )
        found = {w for w in re.findall(r"[A-Za-zÀ-ÿ]{3,}", text) if w.lower() in vocabulary}
        if found:
            leftovers[path] = sorted(found)
        if path in ("/app/", f"/app/commons/{land_id}", "/app/soil/new"):
            shot(page, "10-french" + path.replace("/", "-").rstrip("-"))
    assert leftovers == {}, leftovers
