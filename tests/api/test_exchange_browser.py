"""The exchange pages on a 360-px phone in headless Chromium, in French and English: browse, post
(with its place tapped on the map), reply, my exchanges, an exchange's thread and dispute, the
solidarity fund's four eyes; axe-core finds no accessibility violation on any of them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.db import session_scope
from commons_map.exchange import service
from commons_map.exchange.models import Exchange, Post, Support
from commons_map.people.models import Member
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


# --- a post's place, an exchange's page (thread, dispute), the solidarity fund -------------------


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def _member_id(engine, username: str) -> int:
    with Session(engine) as s:
        return s.scalar(select(Member.id).where(Member.username == username))


def test_place_thread_and_dispute_at_360px_in_french_and_english(new_phone, make_member, engine):  # noqa: F811
    poster = make_member("lieu")                    # French
    replier = make_member("reply", locale="en")     # English
    phone = new_phone().new_page()
    sign_in(phone, poster)
    phone.goto("/app/exchange/new")
    assert phone.get_by_text("à 500 m près environ").is_visible()
    phone.get_by_label("Je publie").select_option("offer")
    phone.get_by_label("Quoi").fill("Taille d'arbres fruitiers")
    phone.get_by_label("Catégorie").select_option("jardiner")
    phone.get_by_label("Durée (minutes)").fill("90")
    # A bad coordinate first: the field is named, nothing is written.
    phone.get_by_label("Latitude").fill("95")
    phone.get_by_label("Longitude").fill("5.19")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Publier", exact=True).click()
    assert phone.locator("#lat-error").is_visible() and not phone.locator("#lon-error").count()
    assert "latitude (-90 à 90)" in phone.locator("#lat-error").inner_text()
    _fits(phone)
    no_violations(phone)
    with Session(engine) as s:
        assert s.scalar(select(Post.id).where(Post.title == "Taille d'arbres fruitiers")) is None
    # Then a tap on the map fills both coordinates.
    phone.get_by_label("Latitude").fill("")
    phone.get_by_label("Longitude").fill("")
    box = phone.locator("#place-map").bounding_box()
    phone.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    lat = float(phone.get_by_label("Latitude").input_value())
    lon = float(phone.get_by_label("Longitude").input_value())
    assert 44.6 < lat < 44.8 and 5.1 < lon < 5.3
    assert "Lieu choisi" in phone.locator("#place-status").inner_text()
    assert phone.locator("#place-map path.leaflet-interactive").count() >= 2  # the point and its ~500 m square
    phone.get_by_label("Montrer le lieu exact").check()
    assert phone.locator("#place-map path.leaflet-interactive").count() == 1  # exact: no square
    phone.get_by_label("Montrer le lieu exact").uncheck()
    no_violations(phone)
    shot(phone, "exchange-new-place")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Publier", exact=True).click()
    assert phone.get_by_text("Les autres ne voient ce lieu qu'à 500 m près environ.").is_visible()
    _fits(phone)
    no_violations(phone)
    with Session(engine) as s:
        post = s.scalars(select(Post).where(Post.title == "Taille d'arbres fruitiers")).one()
        assert post.exact_place is False
        assert s.scalar(select(func.ST_Y(Post.geom)).where(Post.id == post.id)) == pytest.approx(lat, abs=1e-6)

    other = new_phone("en-GB").new_page()
    sign_in(other, replier)
    other.goto(f"/app/exchange/posts/{post.id}")
    assert other.get_by_text("The place within about 500 m.").is_visible()
    no_violations(other)
    other.get_by_label("Message").fill("Hello, Saturday?")
    with other.expect_navigation():
        other.get_by_role("button", name="Reply", exact=True).click()
    with Session(engine) as s:
        exchange_id = s.scalar(select(Exchange.id).where(Exchange.post_id == post.id))
    other.goto(f"/app/exchange/exchanges/{exchange_id}")
    assert other.get_by_role("heading", name="Messages").is_visible()
    assert other.get_by_text("Hello, Saturday?").is_visible()
    # An empty message: named next to its field, nothing written.
    with other.expect_navigation():
        other.get_by_role("button", name="Send").click()
    assert other.locator("#body-error").is_visible()
    assert other.get_by_label("Your message").get_attribute("aria-invalid") == "true"
    _fits(other)
    no_violations(other)
    other.get_by_label("Your message").fill("I can bring a ladder.")
    with other.expect_navigation():
        other.get_by_role("button", name="Send").click()
    assert other.get_by_text("I can bring a ladder.").is_visible()
    shot(other, "exchange-thread-en")

    phone.goto(f"/app/exchange/exchanges/{exchange_id}")
    assert phone.get_by_text("I can bring a ladder.").is_visible()
    with phone.expect_navigation():
        phone.get_by_role("button", name="Accepter").click()
    assert phone.locator("#state").get_by_text("Accepté").is_visible()
    no_violations(phone)

    other.reload()
    other.get_by_label("What went wrong").fill("x" * 2001)
    with other.expect_navigation():
        other.get_by_role("button", name="Dispute this exchange").click()
    assert other.locator("#reason-error").is_visible()
    no_violations(other)
    other.get_by_label("What went wrong").fill("Nobody came on Saturday.")
    with other.expect_navigation():
        other.get_by_role("button", name="Dispute this exchange").click()
    assert other.locator("#state").get_by_text("Disputed").is_visible()
    assert other.get_by_text("nobody is paid automatically").is_visible()
    _fits(other)
    no_violations(other)
    shot(other, "exchange-disputed-en")
    phone.reload()
    assert phone.get_by_text("Nobody came on Saturday.").is_visible()
    assert phone.locator("#state").get_by_text("Contesté").is_visible()
    no_violations(phone)
    with Session(engine) as s:
        assert s.scalar(select(Exchange.state).where(Exchange.id == exchange_id)) == "disputed"


def test_solidarity_fund_four_eyes_at_360px_in_french_and_english(new_phone, make_member, engine):  # noqa: F811
    first, second = make_member("gardien"), make_member("keeper", locale="en")
    helped = make_member("aidee", locale="en")
    with session_scope(engine) as s:
        coordinator = s.scalars(select(Member).where(Member.username == "camille")).one()
        for who in (first, second):
            service.appoint_steward(s, actor=coordinator, member_id=_member_id(engine, who))
    a = new_phone().new_page()
    sign_in(a, first)
    a.goto("/app/exchange/solidarity")
    assert a.get_by_role("heading", name="Fonds de solidarité").is_visible()
    assert a.get_by_role("heading", name="Membres soutenu·es").is_visible()
    # No member chosen: named next to the field, nothing written.
    with a.expect_navigation():
        a.get_by_role("button", name="Proposer", exact=True).click()
    assert a.locator("#member_id-error").is_visible()
    _fits(a)
    no_violations(a)
    a.get_by_label("Membre", exact=True).select_option(label=f"Essai {helped}")
    a.get_by_label("Note pour les gardien·nes").fill("Arrivée récente.")
    with a.expect_navigation():
        a.get_by_role("button", name="Proposer", exact=True).click()
    helped_id = _member_id(engine, helped)
    with Session(engine) as s:
        support_id = s.scalar(select(Support.id).where(Support.member_id == helped_id))
    item = a.locator(f"#support-{support_id}")
    assert item.get_by_text("En attente d'un·e deuxième gardien·ne").is_visible()
    assert item.get_by_text("un·e autre gardien·ne l'approuve").is_visible()
    assert not item.get_by_role("button", name="Approuver (deuxième gardien·ne)").count()  # four eyes
    no_violations(a)
    shot(a, "exchange-fund-proposed")

    member = new_phone("en-GB").new_page()
    sign_in(member, helped)
    member.goto("/app/exchange/solidarity")
    assert member.get_by_text("Proposed, waiting for a second steward").is_visible()
    assert not member.get_by_text("Arrivée récente.").count()  # the stewards' note stays with them
    no_violations(member)

    b = new_phone("en-GB").new_page()
    sign_in(b, second)
    b.goto("/app/exchange/solidarity")
    with b.expect_navigation():
        b.locator(f"#support-{support_id}").get_by_role("button", name="Approve (second steward)").click()
    assert b.locator(f"#support-{support_id}").get_by_text("Active").is_visible()
    _fits(b)
    no_violations(b)
    shot(b, "exchange-fund-active-en")

    member.reload()
    assert member.get_by_text("Your needs are covered").is_visible()
    _fits(member)
    no_violations(member)
    shot(member, "exchange-fund-covered-en")

    reason = b.get_by_label(f"Why the support of Essai {helped} ends (optional)")
    reason.fill("x" * 2001)
    with b.expect_navigation():
        b.locator(f"#support-{support_id}").get_by_role("button", name="End this support").click()
    assert b.locator(f"#reason-{support_id}-error").is_visible()
    no_violations(b)
    reason.fill("Back on their feet.")
    with b.expect_navigation():
        b.locator(f"#support-{support_id}").get_by_role("button", name="End this support").click()
    assert not b.locator(f"#support-{support_id}").count()
    with Session(engine) as s:
        assert s.scalar(select(Support.ended_at).where(Support.id == support_id)) is not None
    member.reload()
    assert not member.get_by_text("Your needs are covered").count()
    no_violations(member)


@pytest.mark.parametrize(("locale", "context_locale", "headings"), [
    ("en", "en-GB", ["Offers and needs", "Post an offer or a need", "My exchanges", "Solidarity fund"]),
    ("fr", "fr-FR", ["Offres et besoins", "Publier une offre ou un besoin", "Mes échanges", "Fonds de solidarité"]),
])
def test_every_exchange_page_in_each_language_at_360px(new_phone, make_member, locale, context_locale,  # noqa: F811
                                                       headings):
    username = make_member(f"pages-{locale}", locale=locale)
    page = new_phone(context_locale).new_page()
    sign_in(page, username)
    for path, heading in zip(["/app/exchange", "/app/exchange/new", "/app/exchange/mine",
                              "/app/exchange/solidarity"], headings, strict=True):
        page.goto(path)
        assert page.get_by_role("heading", name=heading, exact=True).is_visible(), path
        assert page.locator("html").get_attribute("lang") == locale
        _fits(page)
        no_violations(page)
    # A plain member sees the fund, not who it supports.
    assert not page.locator("#supports").count()
