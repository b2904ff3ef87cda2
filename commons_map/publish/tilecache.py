"""A small in-process cache of vector tiles, keyed by what the tile is made of.

A tile is kept under (database, collection, z, x, y, fingerprint, figures stamp), where the
fingerprint is the count and the sum of the ``row_version`` hashes of the public rows the tile
query reads (``sql.public_source(row_version=True)`` under the same envelope filter). Any insert,
update or delete of such a row (or of its kind, cooperative or the place it is kept at) changes
the fingerprint, in the writer's own transaction at once and for everyone at commit, so a tile
is never served from the cache after a change: a commons made private or archived, or moved, is
gone from the next response. The figures stamp changes when the figures (``publish.figures``)
are recomputed. The fingerprint query reads the same rows as the tile query but does none of the
clipping, encoding or figures work, so it costs a small part of a low-zoom tile.

Bounded by bytes (each tile counts twice, for its gzip form; least recently used first out); tiles
above ``MAX_ENTRY_BYTES`` are not kept.
``COMMONS_TILE_CACHE_MB`` sets the bound (0 turns the cache off, e.g. to measure cold tiles).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field


def _env_bytes() -> int:
    raw = os.environ.get("COMMONS_TILE_CACHE_MB", "64")
    try:
        return max(0, int(float(raw) * 1024 * 1024))
    except ValueError:
        return 64 * 1024 * 1024


@dataclass
class TileEntry:
    """One tile's bytes, with its gzip form and ETags made once, on first use."""

    data: bytes
    _gz: bytes | None = field(default=None, repr=False)
    _etag: str | None = field(default=None, repr=False)
    _etag_gz: str | None = field(default=None, repr=False)

    def gzipped(self) -> bytes:
        if self._gz is None:
            # mtime=0: the same bytes every time, so the gzip ETag holds with the cache off too
            self._gz = gzip.compress(self.data, compresslevel=1, mtime=0)
        return self._gz

    def etag(self, gz: bool) -> str:
        if gz:
            if self._etag_gz is None:
                self._etag_gz = etag_of(self.gzipped(), "-gz")
            return self._etag_gz
        if self._etag is None:
            self._etag = etag_of(self.data)
        return self._etag

    @property
    def size(self) -> int:
        """Bytes counted against the bound: the tile and room for its gzip form."""
        return 2 * len(self.data)


def etag_of(body: bytes, suffix: str = "") -> str:
    """A strong ETag from a representation's bytes (the OGC API's and the tiles')."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + suffix + '"'


class TileCache:
    """LRU of TileEntry by key, bounded by the bytes it holds."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = _env_bytes() if max_bytes is None else max_bytes
        self.max_entry = max(self.max_bytes // 4, 0)
        self._items: OrderedDict[tuple, TileEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: tuple) -> TileEntry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple, entry: TileEntry) -> None:
        if not self.enabled or len(entry.data) > self.max_entry:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._items[key] = entry
            self._bytes += entry.size
            self._trim()

    def _trim(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, e = self._items.popitem(last=False)
            self._bytes -= e.size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes


CACHE = TileCache()
