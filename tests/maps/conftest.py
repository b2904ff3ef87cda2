"""Fixtures for the map tests: a headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(autouse=True)
def _fresh_figures():
    from commons_map.publish import figures

    figures.clear_cache()
    yield
    figures.clear_cache()


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium; waits a while for the apt install, skips only when it never came."""
    deadline = time.time() + 300
    while not Path(CHROMIUM).exists() and time.time() < deadline:
        time.sleep(5)
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def static_server() -> Iterator:
    """Serve a folder over HTTP on the loopback (as any static web host would)."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mvt": "application/vnd.mapbox-vector-tile",
        ".geojson": "application/geo+json",
    }

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass
