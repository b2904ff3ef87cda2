"""Members' accounts (issue 18 item 23): signing out ends the session on the server, members
change their password, coordinators retire members; tokens and sessions end with them."""

from __future__ import annotations

import pytest

from api.cookies import COOKIE
from commons_map.errors import AuthenticationFailed
from commons_map.people.auth import authenticate
from commons_map.people.service import create_member
from tests.api.test_pages import csrf_of, sign_in

PASSWORD = "un mot de passe de départ"


def new_member(db, people, username: str, *, coordinator: bool = False):
    return create_member(db, cooperative=people.coop, username=username, display_name=username.title(),
                         password=PASSWORD, roles={"coordinator"} if coordinator else set(), bootstrap=True)


def test_a_copy_of_the_cookie_signs_nobody_in_after_signing_out(client, people, db):
    member = new_member(db, people, "depart-cookie")
    csrf = sign_in(client, member.username, PASSWORD)
    copy = client.cookies.get(COOKIE)
    assert client.get("/app/profile").status_code == 200
    r = client.post("/app/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE, copy)  # someone kept the cookie of the session that signed out
    r = client.get("/app/profile", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/app/signin")
    assert client.get("/api/v1/members/me").status_code == 401


def test_a_member_changes_their_password_and_the_old_ways_in_end(client, auth, people, db):
    member = new_member(db, people, "nouveau-secret")
    old_token = auth(member)
    bad = client.post("/api/v1/members/me/password", headers=old_token,
                      json={"current_password": "pas le bon", "new_password": "un tout autre secret"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "current_password"
    short = client.post("/api/v1/members/me/password", headers=old_token,
                        json={"current_password": PASSWORD, "new_password": "court"})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "new_password"
    same = client.post("/api/v1/members/me/password", headers={**old_token, "Accept-Language": "fr"},
                       json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status_code == 422 and "même" in same.json()["detail"]
    assert client.get("/api/v1/members/me", headers=old_token).status_code == 200  # nothing changed yet
    ok = client.post("/api/v1/members/me/password", headers=old_token,
                     json={"current_password": PASSWORD, "new_password": "un tout autre secret"})
    assert ok.status_code == 204, ok.text
    assert client.get("/api/v1/members/me", headers=old_token).status_code == 401
    # (checked on the service: the token endpoint's throttle writes on its own connection, which
    # cannot see this test's uncommitted member)
    with pytest.raises(AuthenticationFailed):
        authenticate(db, username=member.username, password=PASSWORD)
    assert authenticate(db, username=member.username, password="un tout autre secret").id == member.id


def test_changing_the_password_in_the_pages_keeps_this_browser_and_ends_the_others(app, people, db):
    from fastapi.testclient import TestClient

    member = new_member(db, people, "deux-navigateurs")
    with TestClient(app) as here, TestClient(app) as elsewhere:
        csrf = sign_in(here, member.username, PASSWORD)
        sign_in(elsewhere, member.username, PASSWORD)
        wrong = here.post("/app/profile/password", data={"csrf_token": csrf, "current_password": PASSWORD,
                                                         "new_password": "secret tout neuf",
                                                         "confirm_password": "secret tout nouveau"})
        assert wrong.status_code == 422 and "diffèrent" in wrong.text
        r = here.post("/app/profile/password", data={"csrf_token": csrf, "current_password": PASSWORD,
                                                     "new_password": "secret tout neuf",
                                                     "confirm_password": "secret tout neuf"},
                      follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        assert "mot de passe est changé" in here.get(r.headers["location"]).text
        assert here.get("/app/profile").status_code == 200  # this browser stays signed in
        gone = elsewhere.get("/app/profile", follow_redirects=False)  # the other one is signed out
        assert gone.status_code == 303 and gone.headers["location"].startswith("/app/signin")
        assert csrf_of(here.get("/app/profile").text)


def test_a_coordinator_retires_a_member_and_keeps_what_they_did(client, auth, people, db):
    member = new_member(db, people, "depart-retraite")
    token = auth(member)
    assert client.post(f"/api/v1/members/{member.id}/retire", headers=auth(people.member)).status_code == 403
    assert client.post(f"/api/v1/members/{member.id}/retire", headers=auth(people.outsider)).status_code == 404
    assert client.post(f"/api/v1/members/{people.coordinator.id}/retire",
                       headers=auth(people.coordinator)).status_code == 403  # not oneself
    r = client.post(f"/api/v1/members/{member.id}/retire", headers=auth(people.coordinator))
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/members/me", headers=token).status_code == 401
    again = client.post(f"/api/v1/members/{member.id}/retire", headers=auth(people.coordinator))
    assert again.status_code == 409
    listed = [m["username"] for m in client.get("/api/v1/members", headers=auth(people.coordinator)).json()]
    assert member.username not in listed
    db.refresh(member)
    assert member.is_active is False and member.password_hash  # retired, not deleted


def test_retire_from_the_members_page(client, people, db):
    member = new_member(db, people, "depart-page")
    csrf = sign_in(client, people.coordinator.username)
    page = client.get("/app/members")
    assert f"/app/members/{member.id}/retire" in page.text
    r = client.post(f"/app/members/{member.id}/retire", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "ne peut plus se connecter" in client.get(r.headers["location"]).text
    db.refresh(member)
    assert member.is_active is False
