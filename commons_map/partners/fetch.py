"""Reading a partner's OGC API - Features: bounded in time and size, and only where it was listed.

The one network client of the partners. Every request is checked before it is made:

* its host is resolved, and every address it resolves to must be a public (global) address, or be
  one of the addresses (with the port) that the listed URL itself resolved to: a cooperative may
  list a partner on its own network, but a partner may not send us there (no redirect, ``next``
  or ``items`` link to the loopback, a private range, link-local, multicast or reserved space);
* the connection goes to the address that was checked (the host name is kept in ``Host`` and in
  TLS's SNI), so a second DNS answer cannot swap it (DNS rebinding);
* redirects are followed by hand, each hop checked again, at most ``max_redirects``, loops refused;
* no proxy from the environment, no cookies, no credentials: what we read is what anyone may read;
* each answer is read in chunks up to ``max_bytes`` (after gzip), within ``request_seconds``.

A failure is a :class:`FetchFailed` with a ``partners.*`` message code and its parameters.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import orjson
from shapely.geometry import mapping, shape

REL_DATA = ("data", "http://www.opengis.net/def/rel/ogc/1.0/data")
REL_CONFORMANCE = ("conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance")
GEOJSON_TYPES = ("application/geo+json", "application/json", "application/vnd.geo+json")
GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection"}
LAYER_ERRORS = ("partners.http_status", "partners.bad_json", "partners.bad_geojson")
USER_AGENT = "commons-map partner reader (+https://github.com/commons-map)"


@dataclass(frozen=True)
class Limits:
    """How long, how much and how far a partner is read."""

    connect_seconds: float = 3.0
    read_seconds: float = 5.0  # the longest silence within an answer
    request_seconds: float = 10.0  # one whole answer
    partner_seconds: float = 60.0  # everything read from one partner in one refresh
    max_bytes: int = 8 * 2**20  # one answer, decoded
    max_total_bytes: int = 32 * 2**20  # everything read from one partner in one refresh
    max_features: int = 5000  # per layer; past it the layer is cut and says so
    max_layers: int = 20
    max_pages: int = 20  # ``next`` links followed per layer
    max_redirects: int = 5
    max_properties: int = 40  # per feature, scalars only
    max_text: int = 500  # characters of a text property


class FetchFailed(Exception):
    """Reading the partner failed: a ``partners.*`` code and its parameters."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code, params)
        self.code = code
        self.params = params


@dataclass
class Layer:
    """One public collection of a partner, validated."""

    collection_id: str
    title: str
    licence: str | None
    features: list[dict[str, Any]]
    skipped: int = 0
    truncated: bool = False

    def geojson(self) -> bytes:
        """The layer as a GeoJSON FeatureCollection."""
        return orjson.dumps({"type": "FeatureCollection", "features": self.features})


@dataclass
class Snapshot:
    """What a partner publishes, as read now."""

    title: str | None
    licence: str | None
    link: str
    layers: list[Layer] = field(default_factory=list)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed("partners.unreachable", host=host, reason="dns") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """True for an address on the public internet (not loopback, private, link-local, multicast...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified
                                 or ip.is_loopback or ip.is_link_local or ip.is_private)


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials; else ``partners.url_invalid``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchFailed("partners.url_invalid", url=url[:200]) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise FetchFailed("partners.url_invalid", url=url[:200])
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


class Reader:
    """Requests to one partner, allowed where its listed URL resolved and on the public internet."""

    def __init__(self, listed_url: str, limits: Limits, *, resolver: Resolver = resolve,
                 verify: ssl.SSLContext | bool = True) -> None:
        _, host, port = check_url(listed_url)
        self.limits = limits
        self.resolver = resolver
        self.allowed = {(a, port) for a in resolver(host, port)}
        self.read_bytes = 0
        self.started = time.monotonic()
        self.client = httpx.Client(
            trust_env=False, follow_redirects=False, verify=verify,
            timeout=httpx.Timeout(limits.read_seconds, connect=limits.connect_seconds),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
        )

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def address_for(self, url: str) -> tuple[str, str, int, str]:
        """(scheme, host, port, address to connect to) after the address check of this hop."""
        scheme, host, port = check_url(url)
        addresses = self.resolver(host, port)
        if not addresses:
            raise FetchFailed("partners.unreachable", host=host, reason="dns")
        for a in addresses:  # every answer must pass, not just the first
            if (a, port) not in self.allowed and not is_public(a):
                raise FetchFailed("partners.address_refused", url=url[:200], host=host, address=a)
        return scheme, host, port, addresses[0]

    def get_json(self, url: str, accept: str = "application/json") -> tuple[Any, str]:
        """The JSON answer at ``url`` (redirects followed hop by hop) and the URL that answered."""
        seen = [url]
        for _ in range(self.limits.max_redirects + 1):
            status, location, body, content_type = self._get(url, accept)
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                if url in seen:
                    raise FetchFailed("partners.redirect_loop", url=seen[0][:200], hops=len(seen))
                seen.append(url)
                continue
            if status != 200:
                raise FetchFailed("partners.http_status", url=url[:200], status=status)
            try:
                return orjson.loads(body), url
            except orjson.JSONDecodeError as exc:
                raise FetchFailed("partners.bad_json", url=url[:200], content_type=content_type[:80]) from exc
        raise FetchFailed("partners.redirect_loop", url=seen[0][:200], hops=len(seen) - 1)

    def _get(self, url: str, accept: str) -> tuple[int, str | None, bytes, str]:
        if time.monotonic() - self.started > self.limits.partner_seconds:
            raise FetchFailed("partners.timeout", url=url[:200], seconds=self.limits.partner_seconds)
        scheme, host, port, address = self.address_for(url)
        parts = urlsplit(url)
        literal = f"[{address}]" if ":" in address else address
        target = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets in Host
        headers = {"Host": name if default else f"{name}:{port}", "Accept": accept}
        started = time.monotonic()
        try:
            with self.client.stream("GET", target, headers=headers,
                                    extensions={"sni_hostname": host}) as r:
                if r.is_redirect:
                    return r.status_code, r.headers.get("location"), b"", ""
                if r.status_code != 200:
                    return r.status_code, None, b"", ""
                declared = r.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.limits.max_bytes:
                    raise FetchFailed("partners.too_large", url=url[:200], limit_bytes=self.limits.max_bytes)
                body = b"".join(self._bounded(r, url, started))
                return r.status_code, None, body, r.headers.get("content-type", "")
        except httpx.TimeoutException as exc:
            raise FetchFailed("partners.timeout", url=url[:200], seconds=self.limits.request_seconds) from exc
        except httpx.HTTPError as exc:
            raise FetchFailed("partners.unreachable", host=host, reason=type(exc).__name__) from exc

    def _bounded(self, r: httpx.Response, url: str, started: float) -> Iterator[bytes]:
        """The decoded body in chunks, refused past the byte bounds or the time bound."""
        encoding = r.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            raise FetchFailed("partners.bad_json", url=url[:200], content_type=encoding[:80])
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
        size = 0
        for raw in r.iter_raw(65536):
            if time.monotonic() - started > self.limits.request_seconds:
                raise FetchFailed("partners.timeout", url=url[:200], seconds=self.limits.request_seconds)
            pending = raw
            while pending:
                if inflate is None:
                    chunk, pending = pending, b""
                else:  # never inflate past the bound: a small gzip bomb stays small
                    chunk = inflate.decompress(pending, self.limits.max_bytes - size + 1)
                    pending = inflate.unconsumed_tail
                size += len(chunk)
                self.read_bytes += len(chunk)
                if size > self.limits.max_bytes or self.read_bytes > self.limits.max_total_bytes:
                    raise FetchFailed("partners.too_large", url=url[:200], limit_bytes=self.limits.max_bytes)
                yield chunk
                if inflate is not None and not chunk:
                    break


def with_params(url: str, **params: str) -> str:
    """``url`` with these query parameters set (others kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _links(doc: dict) -> list[dict]:
    links = doc.get("links")
    if not isinstance(links, list):
        return []
    return [x for x in links if isinstance(x, dict) and isinstance(x.get("href"), str)]


def _link(doc: dict, rels: tuple[str, ...], types: tuple[str, ...] = ()) -> str | None:
    found = [x for x in _links(doc) if x.get("rel") in rels]
    if types:
        found.sort(key=lambda x: 0 if str(x.get("type", "")).split(";")[0] in types else 1)
    return found[0]["href"] if found else None


def _text(value: Any, limit: int = 200) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def licence_of(doc: dict) -> str | None:
    """The licence a landing page or a collection declares: a ``license`` link's title or address,
    or a ``license`` member (STAC, pygeoapi's metadata)."""
    for x in _links(doc):
        if x.get("rel") == "license":
            return _text(x.get("title")) or _text(x.get("href"))
    value = doc.get("license")
    if isinstance(value, dict):
        return _text(value.get("name")) or _text(value.get("url"))
    return _text(value)


def landing(reader: Reader, url: str) -> tuple[dict, str]:
    """The landing page and its collections URL; ``partners.not_ogc_api`` when it is not one."""
    doc, answered = reader.get_json(with_params(url, f="json"))
    data = _link(doc, REL_DATA, ("application/json",)) if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or data is None or _link(doc, REL_CONFORMANCE) is None:
        raise FetchFailed("partners.not_ogc_api", url=url[:200])
    return doc, urljoin(answered, data)


def read_partner(url: str, *, limits: Limits | None = None, resolver: Resolver = resolve) -> Snapshot:
    """What the partner at ``url`` (its landing page) publishes: title, licence, public layers."""
    limits = limits or Limits()
    reader = Reader(url, limits, resolver=resolver)
    try:
        doc, collections_url = landing(reader, url)
        cols, answered = reader.get_json(with_params(collections_url, f="json"))
        if not isinstance(cols, dict) or not isinstance(cols.get("collections"), list):
            raise FetchFailed("partners.not_ogc_api", url=url[:200])
        snap = Snapshot(title=_text(doc.get("title")), licence=licence_of(doc), link=url)
        first_error: FetchFailed | None = None
        for c in cols["collections"][: limits.max_layers]:
            if not isinstance(c, dict) or not _text(c.get("id")) or c.get("itemType", "feature") != "feature":
                continue
            cid = str(c["id"]).strip()[:200]
            items = _link(c, ("items",), GEOJSON_TYPES)
            items_url = urljoin(answered, items) if items else urljoin(
                answered.split("?")[0].rstrip("/") + "/", f"{cid}/items")
            layer = Layer(cid, _text(c.get("title")) or cid, licence_of(c), [])
            try:
                _read_items(reader, items_url, layer)
            except FetchFailed as exc:
                # A collection that is not features after all (pygeoapi lists coverages and records
                # beside them) is left out; a bound, an address or a loop fails the whole partner.
                if exc.code not in LAYER_ERRORS:
                    raise
                first_error = first_error or exc
                continue
            snap.layers.append(layer)
        if not snap.layers:
            raise first_error or FetchFailed("partners.no_layers", url=url[:200])
        return snap
    finally:
        reader.close()


def _read_items(reader: Reader, url: str, layer: Layer) -> None:
    limits = reader.limits
    next_url: str | None = with_params(url, f="json", limit=str(min(limits.max_features, 1000)))
    pages = 0
    while next_url and pages < limits.max_pages:
        doc, answered = reader.get_json(next_url, accept="application/geo+json")
        pages += 1
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
                doc.get("features"), list):
            raise FetchFailed("partners.bad_geojson", url=next_url[:200], collection=layer.collection_id)
        for f in doc["features"]:
            if len(layer.features) >= limits.max_features:
                layer.truncated = True
                return
            clean = clean_feature(f, limits)
            if clean is None:
                layer.skipped += 1
            else:
                layer.features.append(clean)
        more = _link(doc, ("next",))
        next_url = urljoin(answered, more) if more else None
    layer.truncated = layer.truncated or next_url is not None


def clean_feature(f: Any, limits: Limits) -> dict[str, Any] | None:
    """A GeoJSON feature kept for the map (valid geometry in CRS84 bounds, scalar properties), or None."""
    if not isinstance(f, dict) or f.get("type") != "Feature":
        return None
    geometry = f.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        return None
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    if geom.is_empty or not geom.is_valid:
        return None
    minx, miny, maxx, maxy = geom.bounds
    if not all(math.isfinite(v) for v in geom.bounds) or minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return None
    props: dict[str, Any] = {}
    raw = f.get("properties") if isinstance(f.get("properties"), dict) else {}
    for k, v in list(raw.items())[: limits.max_properties]:
        if isinstance(v, str):
            props[str(k)[:80]] = v[: limits.max_text]
        elif isinstance(v, bool | int | float) and (not isinstance(v, float) or math.isfinite(v)):
            props[str(k)[:80]] = v
    out: dict[str, Any] = {"type": "Feature", "geometry": mapping(geom), "properties": props}
    if isinstance(f.get("id"), str | int):
        out["id"] = f["id"]
    return out
