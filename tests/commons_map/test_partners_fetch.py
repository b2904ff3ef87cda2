"""Reading a partner: bounded in time and size, only at the addresses the cooperative listed.

Against a real HTTP server on the loopback (tests/commons_map/partners_helpers.py), no mocks: a
good OGC API, and every misbehaviour we refuse, each with its message code.
"""

from __future__ import annotations

import orjson
import pytest

from commons_map.partners.fetch import FetchFailed, Limits, is_public, read_partner
from tests.commons_map.partners_helpers import TEST_LIMITS


def read(url: str, **kw):  # noqa: ANN003, ANN201
    return read_partner(url, limits=kw.pop("limits", TEST_LIMITS), **kw)


def refused(url: str, code: str, **kw) -> FetchFailed:  # noqa: ANN003
    with pytest.raises(FetchFailed) as info:
        read(url, **kw)
    assert info.value.code == code, (info.value.code, info.value.params)
    return info.value


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("127.8.9.10", False), ("10.1.2.3", False), ("172.16.5.4", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.251", False), ("240.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("::", False),
    ("fe80::1", False), ("fc00::1", False), ("ff02::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("::ffff:93.184.216.34", True),
])
def test_which_addresses_are_public(address, public):
    assert is_public(address) is public


def test_a_good_partner_is_read_whole_with_its_licences_and_only_valid_features(partner_stub):
    snap = read(partner_stub.url("/good/"))
    assert snap.title == "Vergers du Crestois" and snap.licence == "CC-BY-4.0"
    # a coverage whose items answer 404 is left out, and records are not even asked for
    assert [x.collection_id for x in snap.layers] == ["vergers", "haies"]
    assert partner_stub.hits["/good/collections/relief/items"] > 0
    assert partner_stub.hits["/good/collections/notes/items"] == 0
    vergers, haies = snap.layers
    # page 1 (gzip) and page 2 (by its next link); the bow-tie and the point at longitude 500 refused
    assert [f["id"] for f in vergers.features] == [1, 2, 3, 6]
    assert vergers.skipped == 2 and not vergers.truncated and vergers.licence is None
    assert vergers.features[3]["properties"] == {"name": "Verger 6", "note": "<img src=x onerror=alert(1)>"}
    # the collection without an items link is read at {collections}/{id}/items; its own licence
    assert haies.licence == "ODbL-1.0" and haies.features[0]["geometry"]["type"] == "LineString"
    doc = orjson.loads(vergers.geojson())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 4


def test_a_layer_longer_than_the_bound_is_cut_and_says_so(partner_stub):
    snap = read(partner_stub.url("/many/"))
    layer = snap.layers[0]
    assert len(layer.features) == TEST_LIMITS.max_features and layer.truncated
    assert partner_stub.hits["/many/collections/points/items"] == 2 * partner_stub.hits["/many/"]  # 2 pages


def test_a_redirect_on_the_listed_server_is_followed(partner_stub):
    assert read(partner_stub.url("/togood/")).title == "Vergers du Crestois"
    before = partner_stub.hits["/chain/0/"]
    assert read(partner_stub.url("/chain/3/")).title == "Vergers du Crestois"  # through 3 hops
    assert partner_stub.hits["/chain/0/"] == before + 1


def test_too_many_redirects_are_refused(partner_stub):
    limits = Limits(**{**TEST_LIMITS.__dict__, "max_redirects": 2})
    e = refused(partner_stub.url("/chain/5/"), "partners.redirect_loop", limits=limits)
    assert e.params["hops"] == 3


@pytest.mark.parametrize("path", ["/loop/", "/ping/"])
def test_redirect_loops_are_refused(partner_stub, path):
    before = partner_stub.hits[path]
    refused(partner_stub.url(path), "partners.redirect_loop")
    assert partner_stub.hits[path] - before <= 2  # noticed at once, not after the hop bound


@pytest.mark.parametrize(("path", "address"), [
    ("/toprivate/", "10.1.2.3"), ("/tometadata/", "169.254.169.254"),
    ("/toloopback/", "127.0.0.1"), ("/tolocalhost/", None), ("/tomapped/", "::ffff:127.0.0.1"),
])
def test_redirects_to_private_or_loopback_addresses_not_listed_are_refused_before_any_call(partner_stub, path,
                                                                                         address):
    before = sum(partner_stub.bystander_hits.values())
    e = refused(partner_stub.url(path), "partners.address_refused")
    if address:
        assert e.params["address"] == address
    else:  # localhost resolves to the loopback: checked by address, not by name
        assert e.params["host"] == "localhost" and not is_public(e.params["address"])
    assert sum(partner_stub.bystander_hits.values()) == before, "the unlisted server was called"


@pytest.mark.parametrize("path", ["/evilitems/", "/evilnext/"])
def test_links_from_the_partner_to_unlisted_private_addresses_are_refused(partner_stub, path):
    before = sum(partner_stub.bystander_hits.values())
    e = refused(partner_stub.url(path), "partners.address_refused")
    assert e.params["address"] == "127.0.0.1"
    assert sum(partner_stub.bystander_hits.values()) == before


def test_a_loopback_address_the_cooperative_listed_itself_is_read(partner_stub):
    # the bystander is on the loopback too: listed directly, it is allowed
    url = f"http://127.0.0.1:{partner_stub.bystander_port}/"
    before = partner_stub.bystander_hits["/?f=json"]
    refused(url, "partners.not_ogc_api")  # it serves no collections, but it was called
    assert partner_stub.bystander_hits["/?f=json"] == before + 1


def test_every_address_a_name_resolves_to_must_pass(partner_stub):
    """A name that resolves to a public address and to the loopback (a rebinding trick) is refused."""
    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "listed.test" else ["93.184.216.34", "127.0.0.1"]

    # the partner links to evil.test, which also resolves to the loopback
    limits = TEST_LIMITS
    from commons_map.partners.fetch import Reader

    reader = Reader(f"http://listed.test:{partner_stub.port}/", limits, resolver=resolver)
    try:
        with pytest.raises(FetchFailed) as info:
            reader.get_json(f"http://evil.test:{partner_stub.bystander_port}/")
        assert info.value.code == "partners.address_refused" and info.value.params["address"] == "127.0.0.1"
        # the listed name is connected to at the address checked, with its name in Host
        doc, _ = reader.get_json(f"http://listed.test:{partner_stub.port}/good/")
        assert doc["title"] == "Vergers du Crestois"
    finally:
        reader.close()


@pytest.mark.parametrize(("path", "code"), [
    ("/garbage/", "partners.bad_json"),
    ("/html/", "partners.bad_json"),
    ("/notogc/", "partners.not_ogc_api"),
    ("/error/", "partners.http_status"),
    ("/nothing-here/", "partners.http_status"),
    ("/stall/", "partners.timeout"),
    ("/slow/", "partners.timeout"),
    ("/oversize/", "partners.too_large"),
    ("/declared/", "partners.too_large"),
    ("/bomb/", "partners.too_large"),
])
def test_misbehaving_partners_are_refused_with_the_reason(partner_stub, path, code):
    refused(partner_stub.url(path), code)


@pytest.mark.parametrize("url", ["ftp://example.org/ogc", "file:///etc/passwd", "http://user:pw@example.org/",
                                 "not a url", "http://", "http://example.org:99999/"])
def test_urls_that_are_not_http_are_refused(url):
    refused(url, "partners.url_invalid")


def test_a_server_that_is_down_is_unreachable():
    from tests.conftest import free_port

    refused(f"http://127.0.0.1:{free_port()}/ogc", "partners.unreachable")


def test_a_partner_whose_every_collection_fails_is_refused_with_the_first_reason(partner_stub):
    e = refused(partner_stub.url("/nofeatures/"), "partners.http_status")
    assert e.params["status"] == 404 and "/nofeatures/collections/relief/items" in e.params["url"]


def test_over_tls_the_connection_goes_to_the_checked_address_and_the_certificate_is_still_checked(tmp_path):
    """The reader connects to the address it checked, but TLS still names (SNI) and verifies the host."""
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from commons_map.partners.fetch import Reader

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", "/CN=partner.test")
    (tmp_path / "ext").write_text("subjectAltName=DNS:partner.test\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "ext")
    seen_hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen_hosts.append(self.headers["Host"])
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

    def resolver(host: str, p: int) -> list[str]:
        return ["127.0.0.1"] if host in ("partner.test", "other.test") else []

    reader = Reader(f"https://partner.test:{port}/", TEST_LIMITS, resolver=resolver, verify=trust)
    try:
        doc, _ = reader.get_json(f"https://partner.test:{port}/ogc")
        assert doc == {"ok": True} and seen_hosts == [f"partner.test:{port}"]
    finally:
        reader.close()
    # the same address under a name the certificate does not hold: refused by TLS, not trusted by address
    reader = Reader(f"https://other.test:{port}/", TEST_LIMITS, resolver=resolver, verify=trust)
    try:
        with pytest.raises(FetchFailed) as info:
            reader.get_json(f"https://other.test:{port}/ogc")
        assert info.value.code == "partners.unreachable" and len(seen_hosts) == 1
    finally:
        reader.close()
        server.shutdown()
        server.server_close()


def test_a_partner_listed_by_an_ipv6_literal_is_read_there():
    """Listed as http://[::1]:PORT/ (the cooperative's own choice), the reader connects there with a valid Host."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    hosts: list[str] = []

    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def do_GET(self) -> None:  # noqa: N802
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    try:
        server = V6(("::1", 0), Handler)
    except OSError:
        pytest.skip("the loopback has no IPv6 address here")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        refused(f"http://[::1]:{port}/", "partners.not_ogc_api")  # called, and its answer judged
        assert hosts and hosts[0] == f"[::1]:{port}"
    finally:
        server.shutdown()
        server.server_close()
