"""The decisions pages as a person uses them: headless Chromium on a 360-px phone, against the live
server over the committed test database, and axe-core (WCAG 2.1 A and AA rules) on every page shown."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from commons_map.db import session_scope
from commons_map.governance import service
from commons_map.governance.models import Position
from commons_map.governance.schemas import EffectIn, PositionIn, ProposalIn
from commons_map.people.models import Member
from tests.api.test_pages_browser import make_member, new_phone, shot, sign_in  # noqa: F401 - fixtures
from tests.conftest import axe_violations


def _proposals(engine, tag: str) -> tuple[int, int]:
    with session_scope(engine) as s:
        camille = s.scalars(select(Member).where(Member.username == "camille")).one()
        mamadou = s.scalars(select(Member).where(Member.username == "mamadou")).one()
        open_ = service.create_proposal(s, actor=camille, data=ProposalIn(
            title=f"Four à pain partagé {tag}", text="Un four à pain dans la cour de la Maison commune.",
            closes_at=datetime.now(UTC) + timedelta(days=5)))
        past = datetime.now(UTC) - timedelta(days=4)
        done = service.create_proposal(s, actor=camille, now=past, data=ProposalIn(
            title=f"Charte du four {tag}", text="On le nettoie après usage.", closes_at=past + timedelta(days=2),
            effect=EffectIn(type="agreement_adopt", value={"title": f"Charte du four {tag}",
                                                           "text": "Nettoyé après usage.", "review_on": "2020-01-01"})))
        service.take_position(s, actor=mamadou, proposal_id=done.id, now=past + timedelta(hours=2),
                              data=PositionIn(choice="concern", reason="Qui gère le bois ?"))
        service.close(s, actor=None, proposal_id=done.id)
        return open_.id, done.id


def test_take_a_position_in_two_taps_with_no_accessibility_violation(new_phone, make_member, engine):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    open_id, done_id = _proposals(engine, tag)
    username = make_member("e2e-gov")
    page = new_phone().new_page()
    sign_in(page, username)
    problems: dict[str, list[str]] = {}
    page.goto("/app/decisions")
    problems["list"] = axe_violations(page)
    assert page.locator("#open-proposals").get_by_text(f"Four à pain partagé {tag}").is_visible()
    page.get_by_role("link", name=f"Four à pain partagé {tag}").click()
    # first tap: "I object" without a reason, sent: refused next to the field, nothing written
    page.get_by_label("Je m'oppose (objection)").check()
    page.get_by_role("button", name="Envoyer ma position").click()
    assert page.locator("#reason-error").is_visible()
    problems["refused"] = axe_violations(page)
    shot(page, "gov-1-refused")
    # two taps: a choice, then send
    page.get_by_label("Je consens", exact=True).check()
    page.get_by_role("button", name="Envoyer ma position").click()
    assert page.get_by_role("status").inner_text().startswith("Votre position est enregistrée")
    assert page.viewport_size["width"] == 360
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways ({width} px)"
    problems["recorded"] = axe_violations(page)
    shot(page, "gov-2-recorded")
    page.goto(f"/app/decisions/{done_id}")
    assert "Qui gère le bois ?" in page.locator("#reasons").inner_text()
    problems["outcome"] = axe_violations(page)
    page.goto("/app/agreements")
    assert re.search(f"Charte du four {tag}", page.locator("#agreements").inner_text())
    problems["agreements"] = axe_violations(page)
    shot(page, "gov-3-agreements")
    assert {k: v for k, v in problems.items() if v} == {}
    with session_scope(engine) as s:
        me = s.scalars(select(Member).where(Member.username == username)).one()
        mine = s.scalars(select(Position).where(Position.proposal_id == open_id, Position.member_id == me.id)).one()
        assert mine.choice == "consent"
