"""The members' pages over the in-process client: sessions, CSRF, languages, the commons."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from api.cookies import COOKIE
from commons_map.demo.load import DEMO_PASSWORD
from commons_map.people.models import Member, RoleChange, WebSessionRow
from commons_map.register.models import Commons, CommonsHistory

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "the page has no CSRF field"
    return m.group(1)


def sign_in(client, username: str, password: str = DEMO_PASSWORD) -> str:
    """Sign in through the form; the CSRF token of the new session."""
    token = csrf_of(client.get("/app/signin").text)
    r = client.post(
        "/app/signin",
        data={"username": username, "password": password, "csrf_token": token, "next": "/app/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    home = client.get("/app/")
    assert home.status_code == 200
    return csrf_of(home.text)


def test_anonymous_gets_welcome_and_members_pages_redirect_to_sign_in(client):
    r = client.get("/app/", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert "Sign in" in r.text
    r = client.get("/app/profile", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/app/signin?next=/app/profile")


def test_sign_in_sets_a_hardened_cookie_and_shows_balance(client, people):
    token = csrf_of(client.get("/app/signin").text)
    r = client.post(
        "/app/signin",
        data={"username": "lucas", "password": DEMO_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http on the loopback
    home = client.get("/app/")
    assert "Lucas Bernard" in home.text
    assert 'id="balance"' in home.text
    # the balance reads in hours and minutes ("19 h 03", "45 min"), never as decimal hours
    shown = re.search(r'id="balance">([^<]*)<', home.text).group(1)
    assert re.fullmatch(r"\u2212?(\d+ h \d\d|\d+ min)", shown), shown


def test_secure_cookie_over_https(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        r = c.get("/app/signin")
        assert "Secure" in r.headers["set-cookie"]


def test_sign_in_without_csrf_is_refused_and_nothing_happens(client):
    client.get("/app/signin")
    r = client.post(
        "/app/signin", data={"username": "lucas", "password": DEMO_PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert client.get("/app/profile", follow_redirects=False).status_code == 303


def test_wrong_password_shows_the_error_next_to_the_field_and_keeps_the_username(client):
    token = csrf_of(client.get("/app/signin", headers={"Accept-Language": "fr"}).text)
    r = client.post(
        "/app/signin",
        data={"username": "lucas", "password": "nope-nope", "csrf_token": token},
        headers={"Accept-Language": "fr"},
    )
    assert r.status_code == 401
    assert 'id="password-error"' in r.text
    assert "Identifiant inconnu ou mot de passe incorrect" in r.text
    assert 'value="lucas"' in r.text
    assert "nope-nope" not in r.text


def test_sign_out_ends_the_session(client):
    token = sign_in(client, "lucas")
    r = client.post("/app/signout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/app/profile", follow_redirects=False).status_code == 303


def test_forged_cookie_is_ignored(client):
    client.cookies.set(COOKIE, "eyJzIjoieCIsImMiOiJ5IiwibSI6MX0.forged.sig")
    r = client.get("/app/profile", follow_redirects=False)
    assert r.status_code == 303


def test_cookie_signs_in_to_the_api_and_writes_need_the_csrf_header(client, db):
    token = sign_in(client, "lucas")
    lucas = db.scalar(select(Member).where(Member.username == "lucas"))
    sessions_of_lucas = select(func.count()).select_from(WebSessionRow).where(WebSessionRow.member_id == lucas.id)
    assert db.scalar(sessions_of_lucas) >= 1
    me = client.get("/api/v1/members/me")
    assert me.status_code == 200 and me.json()["username"] == "lucas"
    # A write with the cookie alone is refused (CSRF); with the header it goes through.
    r = client.post("/api/v1/auth/revoke")
    assert r.status_code == 403
    assert client.get("/api/v1/members/me").status_code == 200
    r = client.post("/api/v1/auth/revoke", headers={"X-CSRF-Token": token})
    assert r.status_code == 204
    # Signing out everywhere ends the browser session too, and its row on the server.
    assert db.scalar(sessions_of_lucas) == 0
    assert client.get("/api/v1/members/me").status_code == 401
    assert client.get("/app/profile", follow_redirects=False).status_code == 303


def test_bearer_tokens_work_as_before(client, people, auth):
    r = client.get("/api/v1/members/me", headers=auth(people.member))
    assert r.status_code == 200
    r = client.post("/api/v1/auth/revoke", headers=auth(people.member))
    assert r.status_code == 204


def test_language_follows_accept_language_then_the_member_setting(client, db):
    r = client.get("/app/signin", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in r.text and "Password" in r.text
    r = client.get("/app/signin", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in r.text and "Mot de passe" in r.text
    # thomas chose English: his pages are in English whatever the browser says
    sign_in(client, "thomas")
    r = client.get("/app/", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in r.text


def test_language_choice_is_saved_on_the_profile(client, db):
    token = sign_in(client, "lucas")
    r = client.post(
        "/app/language",
        data={"locale": "en", "csrf_token": token, "next": "/app/profile"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/profile"
    assert db.scalar(select(Member.locale).where(Member.username == "lucas")) == "en"
    assert '<html lang="en">' in client.get("/app/profile").text


def test_profile_error_is_shown_next_to_the_field_and_nothing_is_written(client, db):
    token = sign_in(client, "lucas")
    r = client.post(
        "/app/profile",
        data={"display_name": "  ", "email": "not-an-email", "locale": "fr", "csrf_token": token},
    )
    assert r.status_code == 422
    assert 'id="display_name-error"' in r.text and 'id="email-error"' in r.text
    assert 'value="not-an-email"' in r.text
    lucas = db.scalars(select(Member).where(Member.username == "lucas")).one()
    db.refresh(lucas)
    assert lucas.display_name == "Lucas Bernard" and lucas.email != "not-an-email"


def test_commons_list_filters_by_kind_and_has_a_local_map(client):
    sign_in(client, "lucas")
    r = client.get("/app/commons?kind=tool")
    assert r.status_code == 200
    assert "/app/static/vendor/leaflet/leaflet.js" in r.text
    assert "unpkg" not in r.text and "cdn" not in r.text.lower()
    all_ = client.get("/app/commons")
    assert all_.text.count('<li><a href="/app/commons/') > r.text.count(
        '<li><a href="/app/commons/'
    )
    assert client.get("/app/static/vendor/leaflet/leaflet.js").status_code == 200


def test_static_files_do_not_escape_their_folder(client):
    assert client.get("/app/static/../web.py").status_code == 404
    assert client.get("/app/static/%2e%2e/web.py").status_code == 404


def test_commons_page_shows_rules_stewards_history(client, db):
    sign_in(client, "lucas")
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    r = client.get(f"/app/commons/{land.id}")
    assert r.status_code == 200
    assert land.name in r.text
    assert 'id="history"' in r.text


def test_private_commons_is_not_found_for_a_plain_member(client, db):
    sign_in(client, "lucas")
    home = db.scalars(select(Commons).where(Commons.external_id == "demo:home-0")).one()
    r = client.get(f"/app/commons/{home.id}")
    assert r.status_code == 404


def test_steward_edits_rules_with_a_history_row(client, db, people):
    land = next(
        c
        for c in db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%")))
        if people.steward.id in c.steward_ids
    )
    token = sign_in(client, "mamadou")
    form = client.get(f"/app/commons/{land.id}/edit")
    assert form.status_code == 200
    r = client.post(
        f"/app/commons/{land.id}/edit",
        data={
            "name": land.name,
            "state": "restoring",
            "description": land.description,
            "rules_of_use": "Pas de labour. No ploughing.",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    db.refresh(land)
    assert land.rules_of_use == "Pas de labour. No ploughing." and land.state == "restoring"
    assert (
        db.scalar(
            select(CommonsHistory).where(
                CommonsHistory.commons_id == land.id, CommonsHistory.action == "updated"
            )
        )
        is not None
    )


def test_edit_refused_shows_error_and_writes_nothing(client, db, people):
    land = next(
        c
        for c in db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%")))
        if people.steward.id in c.steward_ids
    )
    token = sign_in(client, "mamadou")
    before = land.rules_of_use
    r = client.post(
        f"/app/commons/{land.id}/edit",
        data={
            "name": "",
            "state": "active",
            "rules_of_use": "changed",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    assert 'id="name-error"' in r.text
    assert "changed</textarea>" in r.text
    db.refresh(land)
    assert land.rules_of_use == before


def test_plain_member_may_not_edit(client, db):
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
    sign_in(client, "lucas")
    assert client.get(f"/app/commons/{land.id}/edit").status_code == 403


@pytest.mark.parametrize("who, status", [("camille", 303), ("lucas", 403)])
def test_coordinators_add_members(client, db, who, status):
    token = sign_in(client, who)
    r = client.post(
        "/app/members",
        data={
            "username": f"newbie-{who}",
            "display_name": "Nouvelle",
            "password": "longenough",
            "locale": "fr",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == status
    created = db.scalar(select(Member).where(Member.username == f"newbie-{who}"))
    assert (created is not None) == (status == 303)


def test_add_member_error_next_to_field(client, db):
    token = sign_in(client, "camille")
    r = client.post(
        "/app/members",
        data={
            "username": "lucas",
            "display_name": "Double",
            "password": "longenough",
            "locale": "fr",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    assert 'id="username-error"' in r.text
    assert db.scalar(select(Member).where(Member.display_name == "Double")) is None


def test_coordinator_role_changes_need_a_second_coordinator(client, db):
    """Four eyes (issue 18 item 22): camille asks, she cannot approve it herself, yasmine does."""
    token = sign_in(client, "camille")
    lucas = db.scalars(select(Member).where(Member.username == "lucas")).one()
    r = client.post(f"/app/members/{lucas.id}/roles", data={"action": "grant", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "done=role_asked" in r.headers["location"]
    db.refresh(lucas)
    assert not lucas.is_coordinator
    page = client.get("/app/members").text
    change = db.scalars(select(RoleChange).where(RoleChange.member_id == lucas.id,
                                                 RoleChange.state == "pending")).one()
    assert f'id="change-{change.id}"' in page and f"/role-changes/{change.id}/approve" not in page  # not hers
    r = client.post(f"/app/role-changes/{change.id}/approve", data={"csrf_token": token})
    assert r.status_code == 403
    db.refresh(lucas)
    assert not lucas.is_coordinator
    token = sign_in(client, "yasmine")
    assert f"/role-changes/{change.id}/approve" in client.get("/app/members").text
    r = client.post(f"/app/role-changes/{change.id}/approve", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(lucas)
    assert lucas.is_coordinator
    again = client.post(f"/app/role-changes/{change.id}/approve", data={"csrf_token": token})
    assert again.status_code == 409 and "déjà été décidé" in again.text
    # Taking it back: yasmine asks, then withdraws; asked again, camille approves.
    r = client.post(f"/app/members/{lucas.id}/roles", data={"action": "revoke", "csrf_token": token},
                    follow_redirects=False)
    back = db.scalars(select(RoleChange).where(RoleChange.member_id == lucas.id,
                                               RoleChange.state == "pending")).one()
    r = client.post(f"/app/role-changes/{back.id}/decline", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(back)
    assert back.state == "withdrawn"
    client.post(f"/app/members/{lucas.id}/roles", data={"action": "revoke", "csrf_token": token})
    back = db.scalars(select(RoleChange).where(RoleChange.member_id == lucas.id,
                                               RoleChange.state == "pending")).one()
    token = sign_in(client, "camille")
    r = client.post(f"/app/role-changes/{back.id}/approve", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    db.refresh(lucas)
    assert not lucas.is_coordinator


def test_the_field_forms_install_as_an_app(client):
    sign_in(client, "lucas")
    m = client.get("/app/manifest.webmanifest")
    assert m.status_code == 200 and m.headers["content-type"].startswith("application/manifest+json")
    body = m.json()
    assert body["start_url"] == "/app/field" and body["display"] == "standalone"
    assert {i["sizes"] for i in body["icons"]} >= {"192x192", "512x512"}
    assert body["name"] == "Communs — saisies de terrain"
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200
    sw = client.get("/app/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/app/"
    for path in ("/app/work/new", "/app/harvest/new", "/app/soil/new", "/app/static/field.js"):
        assert f'"{path}"' in sw.text
        assert client.get(path).status_code == 200


ISO_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _visible(page_html: str) -> str:
    import html as html_lib

    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page_html, flags=re.S)
    text = re.sub(r"<input[^>]*>", " ", text)  # a date field's value is ISO by HTML's rule
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", text))


def test_members_pages_show_dates_as_people_read_them(client, people, db):
    """Issue 18 item 23: French pages showed ISO dates ("le 2026-10-20"): the statement's lines
    for approved work among them."""
    sign_in(client, people.coordinator.username)
    land = db.scalars(select(Commons).where(Commons.external_id == "demo:land-1")).one()
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-12")).one()
    paths = ["/app/", "/app/account", "/app/agreements", "/app/approvals", "/app/commons", f"/app/commons/{land.id}",
             "/app/decisions", "/app/field", "/app/members", "/app/notifications", "/app/profile",
             "/app/reservations", "/app/reserve", f"/app/reserve/{tool.id}", "/app/work", "/app/exchange",
             "/app/exchange/mine"]
    found = {}
    for path in paths:
        r = client.get(path)
        assert r.status_code == 200, path
        hits = ISO_DATE.findall(_visible(r.text))
        if hits:
            found[path] = hits[:3]
    assert found == {}
