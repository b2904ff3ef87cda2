"""Fixtures for the map tests: fresh figures and a static web server (the browser: tests/conftest.py)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _fresh_figures():
    from commons_map.publish import figures

    figures.clear_cache()
    yield
    figures.clear_cache()


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
