"""The exchange pages on a 360-px phone in headless Chromium: browse, post, reply, my exchanges,
with axe-core finding no accessibility violation on any of them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.exchange.models import Exchange, Post
from tests.api.test_pages_browser import make_member, new_phone, shot, sign_in  # noqa: F401 - fixtures
from tests.conftest import axe_violations


def no_violations(page) -> None:
    found = axe_violations(page)
    assert found == [], found


def test_browse_post_reply_at_360px_without_axe_violations(new_phone, make_member, engine):  # noqa: F811
    username = make_member("troc")
    page = new_phone().new_page()
    sign_in(page, username)
    page.goto("/app/exchange")
    assert page.get_by_role("heading", name="Offres et besoins").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    no_violations(page)
    shot(page, "exchange-list")

    page.get_by_role("link", name="Publier une offre ou un besoin").click()
    page.get_by_label("Je publie").select_option("need")
    page.get_by_label("Quoi").fill("Aide pour porter un canapé")
    page.get_by_label("Catégorie").select_option("s_entraider")
    page.get_by_label("Durée (minutes)").fill("45")
    no_violations(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Publier").click()
    assert page.get_by_role("heading", name="Aide pour porter un canapé").is_visible()
    no_violations(page)

    with Session(engine) as s:
        other = s.scalars(select(Post).where(Post.title == "Réparation de vélos")).first()
    page.goto(f"/app/exchange/posts/{other.id}")
    page.get_by_label("Message").fill("Bonjour, samedi ?")
    no_violations(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Répondre").click()
    assert page.url.split("?")[0].endswith("/app/exchange/mine")
    assert page.get_by_text("Réparation de vélos").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    no_violations(page)
    shot(page, "exchange-mine")
    with Session(engine) as s:
        assert s.scalar(select(Exchange.state).where(Exchange.post_id == other.id).order_by(Exchange.id.desc())) \
            == "proposed"
