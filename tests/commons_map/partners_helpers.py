"""A stub partner server on the loopback: a small OGC API - Features that behaves, and every way one
can misbehave (slow, silent, garbage, oversize, gzip bomb, redirect loops, redirects and links to
private or loopback addresses). A second listener, the "bystander", counts the requests it gets:
the reader must never call it unless it was listed."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from commons_map.partners.fetch import Limits

# Bounds small enough that the misbehaving answers fail fast in tests.
TEST_LIMITS = Limits(connect_seconds=1.0, read_seconds=0.5, request_seconds=1.5, partner_seconds=10.0,
                     max_bytes=256 * 1024, max_total_bytes=1024 * 1024, max_features=50, max_pages=5)

SQUARE = [[[5.30, 44.75], [5.31, 44.75], [5.31, 44.76], [5.30, 44.76], [5.30, 44.75]]]
BOWTIE = [[[5.0, 44.0], [5.1, 44.1], [5.1, 44.0], [5.0, 44.1], [5.0, 44.0]]]  # self-intersecting


def landing(base: str, licence: str | None = "CC-BY-4.0") -> dict:
    links = [
        {"rel": "self", "type": "application/json", "href": f"{base}/?f=json"},
        {"rel": "conformance", "type": "application/json", "href": f"{base}/conformance"},
        {"rel": "data", "type": "application/json", "href": f"{base}/collections"},
    ]
    if licence:
        links.append({"rel": "license", "type": "text/html", "title": licence, "href": "https://example.org/l"})
    return {"title": "Vergers du Crestois", "links": links}


def feature(i: int, geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "id": i, "geometry": geometry, "properties": {"name": f"Verger {i}", **props}}


@dataclass
class Stub:
    """The stub partner: ``url(path)`` is an address on it; ``hits`` counts requests by path."""

    port: int
    bystander_port: int
    hits: Counter = field(default_factory=Counter)
    bystander_hits: Counter = field(default_factory=Counter)
    broken: set[str] = field(default_factory=set)  # prefixes that answer 503 for now

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(stub: Stub):  # noqa: ANN202
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def send(self, status: int, body: bytes = b"", ctype: str = "application/json", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def js(self, doc: object, **headers: str) -> None:
            self.send(200, json.dumps(doc).encode(), **headers)

        def redirect(self, to: str) -> None:
            self.send(302, b"", Location=to)

        def do_GET(self) -> None:  # noqa: N802, C901
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            stub.hits[path] += 1
            top = "/" + path.strip("/").split("/")[0]
            base = f"http://127.0.0.1:{stub.port}{top}"
            if top in stub.broken:
                return self.send(503, b"down")
            other = f"http://127.0.0.1:{stub.bystander_port}"
            if path == "/many/":
                return self.js(landing(base))
            if path.startswith("/many/"):
                if path.endswith("/collections"):
                    return self.js({"collections": [{"id": "points"}]})
                start = int(query.get("start", ["0"])[0])
                feats = [feature(start + i, {"type": "Point", "coordinates": [5.3, 44.7]}) for i in range(30)]
                nxt = f"{base}/collections/points/items?start={start + 30}"
                return self.js({"type": "FeatureCollection", "features": feats,
                                "links": [{"rel": "next", "href": nxt}]})
            if path == "/nofeatures/collections":
                return self.js({"collections": [{"id": "relief"}]})
            if path.rstrip("/") in ("/good", "/nolicence", "/evilitems", "/evilnext", "/nofeatures"):
                return self.js(landing(base, None if top == "/nolicence" else "CC-BY-4.0"))
            if path.endswith("/conformance"):
                return self.js({"conformsTo": ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"]})
            if path.endswith("/collections"):
                cols = [{"id": "vergers", "title": "Vergers", "itemType": "feature",
                         "links": [{"rel": "items", "type": "application/geo+json",
                                    "href": (f"{other}/items" if top == "/evilitems"
                                             else f"{base}/collections/vergers/items")}]},
                        {"id": "haies", "title": "Haies plantées",
                         "links": [{"rel": "license", "title": "ODbL-1.0", "href": "https://example.org/odbl"}]},
                        {"id": "relief", "title": "Relief (a coverage: its items answer 404)"},
                        {"id": "notes", "title": "Notes", "itemType": "record"}]
                return self.js({"collections": cols, "links": []})
            if path.endswith("/collections/vergers/items"):
                page = int(query.get("page", ["1"])[0])
                if page == 1:
                    feats = [feature(i, {"type": "Polygon", "coordinates": SQUARE}) for i in range(1, 4)]
                    feats.append(feature(4, {"type": "Polygon", "coordinates": BOWTIE}))  # refused
                    feats.append(feature(5, {"type": "Point", "coordinates": [500.0, 44.0]}))  # refused
                    nxt = f"{other}/next" if top == "/evilnext" else f"{base}/collections/vergers/items?page=2"
                    body = gzip.compress(json.dumps({"type": "FeatureCollection", "features": feats,
                                                     "links": [{"rel": "next", "href": nxt}]}).encode())
                    return self.send(200, body, "application/geo+json", Content_Encoding="gzip")
                feats = [feature(6, {"type": "Point", "coordinates": [5.305, 44.755]},
                                 note="<img src=x onerror=alert(1)>", nested={"dropped": True})]
                return self.js({"type": "FeatureCollection", "features": feats, "links": []})
            if path.endswith("/collections/haies/items"):
                line = {"type": "LineString", "coordinates": [[5.30, 44.75], [5.32, 44.77]]}
                return self.js({"type": "FeatureCollection", "features": [feature(10, line)]})
            if "/collections/" in path:  # any other collection: not features (a coverage, say)
                return self.send(404, b"{}")
            if path == "/garbage/":
                return self.send(200, b'{"title": "half a docu', "application/json")
            if path == "/notogc/":
                return self.js({"hello": "world", "links": [{"rel": "self", "href": "/"}]})
            if path == "/html/":
                return self.send(200, b"<html><body>Bienvenue</body></html>", "text/html")
            if path == "/error/":
                return self.send(500, b"oops")
            if path == "/stall/":  # says nothing for longer than the read bound
                time.sleep(2.0)
                return self.js(landing(base))
            if path == "/slow/":  # trickles a byte at a time, forever within the read bound
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return None
            if path == "/oversize/":  # no Content-Length, far more than the bound
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(b'{"title": "' + b"x" * (4 * 1024 * 1024))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return None
            if path == "/declared/":  # says up front it is too big
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(100 * 1024 * 1024))
                self.end_headers()
                return None
            if path == "/bomb/":  # 20 MB of spaces in 20 kB of gzip
                return self.send(200, gzip.compress(b" " * (20 * 1024 * 1024)), Content_Encoding="gzip")
            if path == "/loop/":
                return self.redirect("/loop/")
            if path == "/ping/":
                return self.redirect("/pong/")
            if path == "/pong/":
                return self.redirect("/ping/")
            if path.startswith("/chain/"):  # /chain/N/ redirects N times
                n = int(path.split("/")[2])
                return self.redirect(f"/chain/{n - 1}/") if n > 0 else self.js(landing(base))
            if path == "/toprivate/":
                return self.redirect("http://10.1.2.3/ogc")
            if path == "/tometadata/":
                return self.redirect("http://169.254.169.254/latest/meta-data/")
            if path == "/toloopback/":
                return self.redirect(f"{other}/ogc")
            if path == "/tolocalhost/":
                return self.redirect(f"http://localhost:{stub.bystander_port}/ogc")
            if path == "/tomapped/":
                return self.redirect(f"http://[::ffff:127.0.0.1]:{stub.bystander_port}/ogc")
            if path == "/togood/":
                return self.redirect("/good/")
            return self.send(404, b"{}")

    return Handler


class _Bystander(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.hits[self.path] += 1  # type: ignore[attr-defined]
        body = json.dumps(landing(f"http://127.0.0.1:{self.server.server_port}")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_stub() -> tuple[Stub, list[ThreadingHTTPServer]]:
    """Start the stub and the bystander on free loopback ports (daemon threads)."""
    bystander = ThreadingHTTPServer(("127.0.0.1", 0), _Bystander)
    bystander.daemon_threads = True
    bystander.hits = Counter()  # type: ignore[attr-defined]
    stub = Stub(port=0, bystander_port=bystander.server_port, bystander_hits=bystander.hits)  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.port = server.server_port
    for s in (bystander, server):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    return stub, [server, bystander]
