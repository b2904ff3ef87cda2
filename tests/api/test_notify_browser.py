"""The inbox and the notification preferences as a person uses them: headless Chromium on a 360-px
phone, in French and in English, against the live server over the committed test database; axe-core
(WCAG 2.1 A and AA rules) on every page shown. Each test makes its own member (unique name)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from commons_map.db import session_scope
from commons_map.notify.models import Notification, NotifySettings, Preference
from commons_map.notify.service import notify
from commons_map.people.models import Member
from tests.api.test_pages_browser import make_member, new_phone, shot, sign_in  # noqa: F401 - fixtures
from tests.conftest import axe_violations

WORDS = {
    "fr": {"nav": "Messages", "unread": "{n} non lue(s)", "mark": "Marquer comme lu", "all": "Tout marquer comme lu",
           "prefs": "Préférences de notification", "kind": "propositions qui se terminent dans la journée",
           "digest": "Résumé quotidien", "hour": "Heure du résumé quotidien", "save": "Enregistrer",
           "saved": "Enregistré", "reminder": "Rappel : Bêche {tag} est à rendre le ",
           "closing": "La proposition « Haie {tag} » se termine le ", "bad_hour": "entre 0 et 23"},
    "en": {"nav": "Inbox", "unread": "{n} unread", "mark": "Mark as read", "all": "Mark all as read",
           "prefs": "Notification preferences", "kind": "proposals closing within a day",
           "digest": "Daily digest", "hour": "Hour of the daily digest", "save": "Save",
           "saved": "Saved", "reminder": "Reminder: Bêche {tag} is due back on ",
           "closing": "The proposal « Haie {tag} » closes on ", "bad_hour": "between 0 and 23"},
}


def _two_notifications(engine, username: str, tag: str) -> int:
    """A return reminder, then a proposal closing, for the member; their id."""
    with session_scope(engine) as s:
        me = s.scalars(select(Member).where(Member.username == username)).one()
        soon = datetime.now(UTC) + timedelta(hours=20)
        notify(s, recipients=[me], kind="return_reminder", code="notify.return_reminder",
               params={"resource": f"Bêche {tag}", "ends_at": soon}, link="/app/reservations",
               dedupe=f"e2e:{tag}:reminder")
        notify(s, recipients=[me], kind="proposal_closing", code="notify.proposal_closing",
               params={"title": f"Haie {tag}", "closes_at": soon}, link="/app/decisions", dedupe=f"e2e:{tag}:closing")
        return me.id


def _nav_badge(page) -> str:  # noqa: ANN001
    badge = page.locator("#nav-unread")
    return badge.inner_text() if badge.count() else ""


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_inbox_unread_count_mark_read_and_preferences_at_360px(lang, new_phone, make_member, engine):  # noqa: F811
    w = WORDS[lang]
    tag = uuid.uuid4().hex[:6]
    username = make_member(f"e2e-inbox-{lang}", locale=lang)
    member_id = _two_notifications(engine, username, tag)
    page = new_phone("fr-FR" if lang == "fr" else "en-GB").new_page()
    sign_in(page, username)
    problems: dict[str, list[str]] = {}

    # the navigation tells how many are unread, on every page
    assert _nav_badge(page) == w["unread"].format(n=2)
    page.get_by_role("link", name=re.compile("^" + w["nav"])).click()
    page.wait_for_url("**/app/notifications")
    items = page.locator("ul.inbox > li")
    assert items.count() == 2
    assert w["closing"].format(tag=tag) in items.nth(0).inner_text()  # newest first
    assert w["reminder"].format(tag=tag) in items.nth(1).inner_text()
    assert page.locator("ul.inbox > li.unread").count() == 2
    problems["inbox"] = axe_violations(page)
    _fits(page)
    shot(page, f"inbox-{lang}-1-unread")

    # mark one read: its button names the notification for screen readers
    reminder = items.nth(1)
    reminder.get_by_role("button", name=re.compile("^" + re.escape(w["mark"]))).click()
    page.wait_for_url(re.compile(r"/app/notifications(\?.*)?$"))
    assert _nav_badge(page) == w["unread"].format(n=1)
    assert page.locator("ul.inbox > li.unread").count() == 1
    assert w["closing"].format(tag=tag) in page.locator("ul.inbox > li.unread").inner_text()
    page.get_by_role("button", name=w["all"]).click()
    page.wait_for_url(re.compile(r"/app/notifications(\?.*)?$"))
    assert _nav_badge(page) == "" and page.locator("ul.inbox > li.unread").count() == 0
    problems["read"] = axe_violations(page)

    # preferences: a refused hour is said next to its field, nothing saved; then a choice is saved
    page.get_by_role("link", name=w["prefs"]).click()
    page.wait_for_url("**/app/notifications/preferences")
    problems["preferences"] = axe_violations(page)
    _fits(page)
    page.get_by_label(w["kind"]).select_option(label=w["digest"])
    page.get_by_label(re.compile("^" + re.escape(w["hour"]))).fill("30")
    page.get_by_role("button", name=w["save"]).click()
    assert w["bad_hour"] in page.locator("#digest_hour-error").inner_text()
    problems["refused"] = axe_violations(page)
    with session_scope(engine) as s:
        assert s.scalars(select(Preference).where(Preference.member_id == member_id)).all() == []
    page.get_by_label(w["kind"]).select_option(label=w["digest"])
    page.get_by_label(re.compile("^" + re.escape(w["hour"]))).fill("7")
    page.get_by_role("button", name=w["save"]).click()
    page.wait_for_url(re.compile(r"/app/notifications/preferences\?done=saved"))
    assert page.get_by_role("status").inner_text().startswith(w["saved"])
    assert page.get_by_label(w["kind"]).input_value() == "digest"
    assert page.get_by_label(re.compile("^" + re.escape(w["hour"]))).input_value() == "7"
    problems["saved"] = axe_violations(page)
    shot(page, f"inbox-{lang}-2-preferences")
    assert {k: v for k, v in problems.items() if v} == {}
    with session_scope(engine) as s:
        chosen = dict(s.execute(select(Preference.kind, Preference.channel)
                                .where(Preference.member_id == member_id)).all())
        assert chosen["proposal_closing"] == "digest"
        assert s.get(NotifySettings, member_id).digest_hour == 7
        assert all(n.read_at is not None for n in s.scalars(select(Notification)
                                                             .where(Notification.member_id == member_id)))


def _fits(page) -> None:  # noqa: ANN001
    assert page.viewport_size["width"] == 360
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways ({width} px)"
