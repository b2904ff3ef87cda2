"""Oversized request bodies are refused (413) before anything parses them, on every route."""

from __future__ import annotations

import httpx
import pytest

MB = 1024 * 1024


def _chunks(total: int, size: int = 256 * 1024):
    sent = 0
    yield b'{"name": "'
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


@pytest.mark.parametrize("path", ["/api/v1/commons", "/api/v1/auth/token", "/app/signin", "/api/v1/ledger/payments"])
def test_a_declared_oversized_body_is_refused_before_it_is_read(live_server, path):
    body = b"{" + b" " * (3 * MB) + b"}"
    r = httpx.post(live_server.url + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "request.too_large" and problem["params"]["limit_bytes"] == 2 * MB
    assert problem["errors"][0]["field"] == "body"
    assert "at most 2 MB" in problem["detail"]


def test_a_chunked_body_is_cut_as_soon_as_it_passes_the_bound(live_server):
    """No Content-Length: the body is counted as it streams; 48 MB never reach the JSON parser."""
    r = httpx.post(live_server.url + "/api/v1/commons", content=_chunks(48 * MB),
                   headers={"Content-Type": "application/json", "Accept-Language": "fr"}, timeout=60)
    assert r.status_code == 413
    assert r.json()["detail"] == "La requête est trop volumineuse : 2 Mo au plus sont acceptés ici."
    # the server is still there, and answers at once
    assert httpx.get(live_server.url + "/health", timeout=10).status_code == 200


def test_a_small_body_still_goes_through(live_server):
    r = httpx.post(live_server.url + "/api/v1/commons", json={"name": "x"}, timeout=30)
    assert r.status_code == 401  # reached the route: it asks who is there


def test_uploads_keep_their_own_larger_bound(live_server):
    """A 3 MB OpenRosa submission passes the general bound and meets the route's own checks."""
    files = {"xml_submission_file": ("s.xml", b"<data/>" + b" " * (3 * MB), "text/xml")}
    r = httpx.post(live_server.url + "/openrosa/submission", files=files,
                   headers={"X-OpenRosa-Version": "1.0"}, timeout=30)
    assert r.status_code == 401  # not 413: the route asks for credentials
