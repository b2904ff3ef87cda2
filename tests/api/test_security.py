"""Secrets, sign-in throttling, headers, and passwords kept out of the logs."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select

from commons_map.people.throttle import MAX_PER_USERNAME, LoginFailure
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


def test_sign_in_is_throttled_after_repeated_failures(forget_failures, client):
    for _ in range(MAX_PER_USERNAME):
        r = client.post("/api/v1/auth/token", data={"username": "ines", "password": "not-her-password"})
        assert r.status_code == 401
    # Even the right password waits now.
    r = client.post("/api/v1/auth/token", data={"username": "ines", "password": "demo-commons"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["code"] == "people.too_many_attempts"
    assert "Too many failed sign-ins" in r.json()["detail"]
    # Another member is not affected.
    r = client.post("/api/v1/auth/token", data={"username": "hugo", "password": "demo-commons"})
    assert r.status_code == 200


def test_success_clears_the_failure_count(forget_failures, client, db):
    for _ in range(MAX_PER_USERNAME - 1):
        client.post("/api/v1/auth/token", data={"username": "jeanne", "password": "wrong-one"})
    assert client.post("/api/v1/auth/token", data={"username": "jeanne", "password": "demo-commons"}).status_code == 200
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
