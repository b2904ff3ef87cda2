"""The reservation page on a phone (issue 18 item 10): each thing free now or until when, a filter
by kind, and "free now near me" from the phone's position. Headless Chromium at 360 px, French and
English, axe-core clean, against the served app over a database of its own (the demo, loaded
fresh), since the test books things now and commits."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from api.i18n import Formats
from commons_map.db import make_engine, session_scope
from commons_map.demo.load import offset
from commons_map.people.models import Cooperative, Member
from commons_map.people.service import create_member
from commons_map.register.models import Commons
from commons_map.register.schemas import CommonsIn
from commons_map.register.service import create_commons
from commons_map.reservations import service
from commons_map.reservations.schemas import RulesIn
from tests.conftest import axe_violations
from tests.faults.conftest import SERVER_SECRET, Server, free_port

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "e2e-password-123"
SHED = (-215, 130)  # the demo's tool shed, metres east and north of the village's origin


@pytest.fixture(scope="module")
def world(demo_database):  # noqa: ANN001, ANN201
    """The served demo with three tools in known states, and a French and an English member."""
    engine = make_engine(url=demo_database)
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(PARIS).replace(second=0, microsecond=0)
    rules = RulesIn(min_minutes=60, max_minutes=24 * 60, max_days_ahead=30, buffer_minutes=0,
                    max_active_per_member=5)
    with session_scope(engine) as s:
        coop = s.scalars(select(Cooperative).where(Cooperative.slug == "cic-saillans")).one()
        camille = s.scalars(select(Member).where(Member.username == "camille")).one()
        shed = s.scalars(select(Commons).where(Commons.external_id == "demo:shed")).one()
        made = {}
        for key, name in (("taken", "Scie taken"), ("later", "Scie later"), ("idle", "Scie idle")):
            tool = create_commons(s, actor=camille, data=CommonsIn(
                kind="tool", name=f"{name} {tag}", kept_at_id=shed.id, steward_ids=[camille.id]))
            service.set_rules(s, actor=camille, resource_id=tool.id, data=rules)
            made[key] = tool
        taken_until = now + timedelta(hours=2)
        later_from = now + timedelta(hours=3)
        service.book(s, actor=camille, resource_id=made["taken"].id, starts_at=now, ends_at=taken_until)
        service.book(s, actor=camille, resource_id=made["later"].id, starts_at=later_from,
                     ends_at=later_from + timedelta(hours=2))
        broken = s.scalars(select(Commons).where(Commons.external_id == "demo:tool-3")).one()
        users = {}
        for locale in ("fr", "en"):
            users[locale] = f"e2e-reserve-{locale}-{tag}"
            create_member(s, cooperative=coop, username=users[locale], display_name=f"Essai {locale}",
                          password=PASSWORD, locale=locale, bootstrap=True)
        kitchen = s.scalars(select(Commons).where(Commons.external_id == "demo:kitchen")).one()
        ids = {k: t.id for k, t in made.items()} | {"broken": broken.id, "kitchen": kitchen.id}
    port = free_port()
    server = Server(url=f"http://127.0.0.1:{port}", port=port,
                    env=dict(os.environ, COMMONS_DATABASE_URL=demo_database, COMMONS_SECRET_KEY=SERVER_SECRET))
    server.start()
    yield {"url": server.url, "url_db": demo_database, "ids": ids, "users": users, "tag": tag,
           "taken_until": taken_until, "later_from": later_from}
    server.stop()
    engine.dispose()


def _phone(browser, world, locale: str):  # noqa: ANN001, ANN202
    lon, lat = offset(*SHED)
    ctx = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True,
                              locale={"fr": "fr-FR", "en": "en-GB"}[locale], base_url=world["url"],
                              geolocation={"longitude": lon, "latitude": lat}, permissions=["geolocation"])
    page = ctx.new_page()
    page.goto("/app/signin")
    page.get_by_label(re.compile("^(Identifiant|Username)$")).fill(world["users"][locale])
    page.get_by_label(re.compile("^(Mot de passe|Password)$")).fill(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/app/"), page.locator("main").inner_text()
    return ctx, page


WORDS = {
    "fr": {"taken": "Pris jusqu'à {t}", "later": "Libre maintenant, jusqu'à {t}", "idle": "Libre maintenant",
           "broken": "En maintenance jusqu'à ce qu'un·e référent·e la lève", "filter": "Filtrer",
           "near": "Trouver ce qui est libre près de moi", "kind": "Type", "nearby": "Libre maintenant près de vous"},
    "en": {"taken": "Taken until {t}", "later": "Free now, until {t}", "idle": "Free now",
           "broken": "In maintenance until a steward clears it", "filter": "Filter",
           "near": "Find what is free near me", "kind": "Kind", "nearby": "Free now near you"},
}


def _when(moment: datetime, locale: str) -> str:
    """A time as the page says it: the time of day in the member's locale ("13:27", "1:27 PM"),
    after the weekday when it is not today (a booking three hours ahead may fall after midnight)."""
    fmt = Formats(locale, "Europe/Paris")
    local = moment.astimezone(fmt.tz)
    if local.date() == datetime.now(fmt.tz).date():
        return fmt.time(moment)
    return f"{fmt.weekday(local.date())} {fmt.time(moment)}"


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_the_reserve_page_says_what_is_free_now_and_until_when(browser, world, locale):
    ctx, page = _phone(browser, world, locale)
    try:
        w, ids = WORDS[locale], world["ids"]
        page.goto("/app/reserve")
        hhmm = {"taken": _when(world["taken_until"], locale), "later": _when(world["later_from"], locale)}
        assert page.locator(f"#res-{ids['kitchen']}").count() == 1
        for key in ("taken", "later", "idle", "broken"):
            text = page.locator(f"#res-{ids[key]}").inner_text()
            expected = w[key].format(t=hhmm.get(key, ""))
            assert expected in text, text
        assert w["later"].format(t="") not in page.locator(f"#res-{ids['idle']}").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert axe_violations(page) == []

        # Filter by kind: only tools stay.
        page.get_by_label(w["kind"], exact=True).select_option("tool")
        with page.expect_navigation():
            page.get_by_role("button", name=w["filter"]).click()
        assert "kind=tool" in page.url
        assert page.locator(f"#res-{ids['taken']}").count() == 1
        assert page.locator(f"#res-{ids['kitchen']}").count() == 0

        # Free now near me, for one hour: the phone's position is the shed, nearest first with a distance.
        with page.expect_navigation():
            page.get_by_role("button", name=w["near"]).click()
        assert "near=" in page.url
        page.get_by_role("heading", name=w["nearby"]).wait_for()
        nearby = page.locator("#nearby-list").inner_text()
        assert f"Scie idle {world['tag']}" in nearby and f"Scie later {world['tag']}" in nearby
        assert f"Scie taken {world['tag']}" not in nearby  # taken now
        assert re.search(r"\d+\s*m\b", nearby), nearby
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert axe_violations(page) == []
    finally:
        ctx.close()


def test_bad_filters_are_a_422_naming_the_field(browser, world):
    ctx, page = _phone(browser, world, "en")
    try:
        r = page.goto("/app/reserve?kind=nonexistent")
        assert r.status == 422
        assert "Unknown kind: nonexistent" in page.locator("#kind-error").inner_text()
        assert page.locator(f"#res-{world['ids']['idle']}").count() == 1  # the list stays, unfiltered
        r = page.goto("/app/reserve?near=5.19,44.69&distance=2000&hours=99")
        assert r.status == 422 and "Choose how long" in page.locator("#hours-error").inner_text()
        r = page.goto("/app/reserve?near=east&distance=2000&hours=1")
        assert r.status == 422 and page.locator("#near-error").inner_text()
        r = page.goto("/app/reserve?distance=2000&hours=1")
        assert r.status == 422 and "position" in page.locator("#near-error").inner_text()
        assert axe_violations(page) == []
    finally:
        ctx.close()


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_the_members_page_asks_a_second_coordinator(browser, world, locale):
    """Four eyes on the members page (issue 18 item 22), on the same served demo: yasmine asked to
    make a member coordinator; camille sees it waiting and approves it. 360 px, axe-core clean."""
    from commons_map.demo.load import DEMO_PASSWORD
    from commons_map.people.service import request_role_change

    engine = make_engine(url=world["url_db"])
    try:
        with session_scope(engine) as s:
            yasmine = s.scalars(select(Member).where(Member.username == "yasmine")).one()
            target = s.scalars(select(Member).where(Member.username == world["users"][locale])).one()
            request_role_change(s, actor=yasmine, member=target, role="coordinator", action="grant")
    finally:
        engine.dispose()
    ctx = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True,
                              locale={"fr": "fr-FR", "en": "en-GB"}[locale], base_url=world["url"])
    try:
        page = ctx.new_page()
        page.goto("/app/signin")
        page.get_by_label(re.compile("^(Identifiant|Username)$")).fill("thomas" if locale == "en" else "camille")
        page.get_by_label(re.compile("^(Mot de passe|Password)$")).fill(DEMO_PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.goto("/app/members")
        waiting = page.locator("#role-change-list").inner_text()
        assert ("Essai " + locale) in waiting
        assert ("Nommer" in waiting) if locale == "fr" else ("Make" in waiting)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert axe_violations(page) == []
        with page.expect_navigation():
            page.locator("#role-change-list").get_by_role(
                "button", name=re.compile("^(Valider|Approve)")).first.click()
        assert page.locator(".flash").inner_text().startswith("Validé" if locale == "fr" else "Approved")
        assert axe_violations(page) == []
    finally:
        ctx.close()
