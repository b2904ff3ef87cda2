"""Secrets, sign-in throttling, headers, and passwords kept out of the logs."""

from __future__ import annotations

import html
import logging
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update

from commons_map.people.throttle import BASE_DELAY, FREE_FAILURES, MAX_DELAY, LoginFailure, delay_after
from commons_map.settings import DEFAULT_SECRET, Settings


@pytest.fixture
def forget_failures(engine):
    """Failures are committed on their own connection: delete them after the test's rollback.

    Request this fixture first so that it is torn down last, after the test transaction ends.
    """
    yield
    with engine.begin() as conn:
        conn.execute(delete(LoginFailure).where(LoginFailure.username.in_(["ines", "jeanne", "pierre", "hugo"])))


def test_production_refuses_the_default_secret():
    with pytest.raises(ValidationError, match="COMMONS_SECRET_KEY must be set"):
        Settings(environment="production", secret_key=DEFAULT_SECRET)
    assert Settings(environment="production", secret_key="x" * 40).environment == "production"


def _token(client, username: str, password: str):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def _age_failures(engine, username: str, seconds: float) -> None:
    """Move a username's failures back in time, as if ``seconds`` had passed."""
    with engine.begin() as conn:
        conn.execute(update(LoginFailure).where(LoginFailure.username == username)
                     .values(at=LoginFailure.at - timedelta(seconds=seconds)))


def test_sign_in_waits_longer_after_each_failure_and_never_locks_out(forget_failures, client, engine):
    for _ in range(FREE_FAILURES):
        assert _token(client, "ines", "not-her-password").status_code == 401
    # Even the right password waits now, from this address, for a moment.
    r = _token(client, "ines", "demo-commons")
    assert r.status_code == 429
    assert 0 < int(r.headers["Retry-After"]) <= BASE_DELAY.total_seconds()
    assert r.json()["code"] == "signin.too_many_attempts"
    assert r.json()["params"]["retry_after_seconds"] == int(r.headers["Retry-After"])
    # The wait is over: one more wrong try, and the next wait is twice as long.
    _age_failures(engine, "ines", BASE_DELAY.total_seconds())
    assert _token(client, "ines", "still-not-it").status_code == 401
    r = _token(client, "ines", "demo-commons")
    assert r.status_code == 429
    assert BASE_DELAY.total_seconds() < int(r.headers["Retry-After"]) <= 2 * BASE_DELAY.total_seconds()
    # Growing, bounded: never a lockout.
    assert delay_after(FREE_FAILURES + 30, FREE_FAILURES) == MAX_DELAY
    _age_failures(engine, "ines", 2 * BASE_DELAY.total_seconds())
    assert _token(client, "ines", "demo-commons").status_code == 200
    # Another member is not affected.
    assert _token(client, "hugo", "demo-commons").status_code == 200


def test_a_guesser_elsewhere_does_not_lock_the_member_out(forget_failures, app, client):
    """Failures from one address make that address wait, not the member at their own address."""
    from fastapi.testclient import TestClient

    with TestClient(app, client=("203.0.113.9", 40000)) as guesser:
        for _ in range(FREE_FAILURES + 2):
            _token(guesser, "ines", "guess")
        assert _token(guesser, "ines", "demo-commons").status_code == 429
    assert _token(client, "ines", "demo-commons").status_code == 200


def test_openrosa_basic_is_throttled_like_the_other_ways_in(forget_failures, client):
    import base64

    def basic(password: str):
        value = base64.b64encode(f"hugo:{password}".encode()).decode()
        return client.get("/openrosa/formList", headers={"Authorization": f"Basic {value}",
                                                         "X-OpenRosa-Version": "1.0"})

    for _ in range(FREE_FAILURES):
        assert basic("wrong").status_code == 401
    r = basic("demo-commons")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Trop d'essais de connexion" in r.text and "Too many failed sign-ins" in r.text


def test_the_pages_sign_in_is_throttled_alike(forget_failures, client):
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/app/signin").text).group(1)
    form = {"username": "pierre", "password": "wrong", "csrf_token": token, "next": "/app/"}
    for _ in range(FREE_FAILURES):
        assert client.post("/app/signin", data=form, follow_redirects=False).status_code == 401
    r = client.post("/app/signin", data={**form, "password": "demo-commons"}, follow_redirects=False)
    assert r.status_code == 429 and "Trop d'essais de connexion" in html.unescape(r.text)


def test_forwarded_for_is_not_believed_without_a_trusted_proxy(forget_failures, live_server, engine):
    """The throttle counts the connection's peer: a client cannot choose its address by a header."""
    import httpx

    httpx.post(live_server.url + "/api/v1/auth/token", data={"username": "hugo", "password": "wrong"},
               headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10)
    with engine.connect() as conn:
        addrs = set(conn.scalars(select(LoginFailure.remote_addr).where(LoginFailure.username == "hugo")))
    assert addrs == {"127.0.0.1"}


def test_success_clears_the_failure_count(forget_failures, client, db):
    for _ in range(FREE_FAILURES - 1):
        _token(client, "jeanne", "wrong-one")
    assert _token(client, "jeanne", "demo-commons").status_code == 200
    left = db.scalar(select(func.count()).select_from(LoginFailure).where(LoginFailure.username == "jeanne"))
    assert left == 0


def test_passwords_never_reach_the_logs(forget_failures, client, caplog):
    secret = "s3cr3t-that-must-not-leak"
    with caplog.at_level(logging.DEBUG):
        client.post("/api/v1/auth/token", data={"username": "pierre", "password": secret})
        client.post("/api/v1/auth/token", data={"username": "pierre", "password": "demo-commons"})
    assert caplog.records, "the failed sign-in is logged"
    assert secret not in caplog.text and "demo-commons" not in caplog.text


def test_security_headers(client):
    r = client.get("/health")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_health_says_when_the_database_is_away(settings):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from commons_map.db import make_engine

    dead = make_engine(url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_size=1, max_overflow=0,
                       connect_args={"connect_timeout": 2})
    with TestClient(create_app(settings, engine=dead)) as c:
        r = c.get("/health")
    dead.dispose()
    assert r.status_code == 503
    assert r.json()["status"] == "degraded" and r.json()["database"] == "unreachable"


def test_a_username_with_a_nul_byte_is_a_failed_sign_in_not_a_500(client):
    """Found by fuzzing: PostgreSQL text cannot hold NUL, so the throttle's lookup crashed."""
    for _ in range(2):  # the failure is recorded, and counted the next time
        r = client.post("/api/v1/auth/token", data={"username": "lu\x00cas", "password": "x"})
        assert r.status_code == 401, r.text
