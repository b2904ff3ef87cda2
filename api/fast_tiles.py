"""Vector tiles answered on an async connection: no routing, no dependencies, no worker thread.

A tile is the public map's most frequent request, and at zoom 16 its SQL costs about a
millisecond: served through FastAPI's routing and dependencies, a worker thread, an ORM session
and BEGIN/COMMIT, one process answered a quarter of the rate the database makes the tiles at
(``bench/ogc.py``). This ASGI middleware answers ``GET``/``HEAD /tiles/{collection}/{z}/{x}/{y}.mvt``
itself with the very statements of ``service.TilePlan`` on a small async psycopg pool: with the
tile cache off, the tile's one statement in autocommit; with it on, the fingerprint and the
figures' stamp in one statement, then the tile on a miss, in one transaction (the key is read in
the snapshot the tile is made from, as ``service.tile_entry`` does). The response is built by
the route's own ``tile_response``, and the middleware sits inside the security headers and the
body limit, so the answer is the route's, header for header (tests/api/test_fast_tiles.py).

The route (``api/routers/tiles.py``) stays the reference, and answers whatever this path does
not take:

- anything but ``GET``/``HEAD`` of a tile that exists, of a known collection, without a query
  string (the route's 400 and 404 problems);
- an app with a replica configured (the route picks it: ``commons_map.replica``), or whose
  request session is overridden (tests that read inside their own transaction);
- the figures table due to be brought up to date (at most once a second: the route writes it,
  in a transaction, ``figures.sync``);
- the database failing (the route answers 503, or succeeds on its own pool's fresh connection).

The pool's connections log in as the app's engine does (the role row-level security holds), act
for nobody, and read the public rows only, through the same ``commons_public`` source.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import Engine
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routers.tiles import tile_response
from commons_map.errors import NotFound
from commons_map.publish import figures as figs
from commons_map.publish import service, tilecache
from commons_map.publish.collections import COLLECTIONS
from commons_map.publish.sql import psycopg_style

log = logging.getLogger(__name__)

TILE_PATH = re.compile(r"/tiles/(\w{1,64})/(\d{1,2})/(\d{1,9})/(\d{1,9})\.mvt")
POOL_SIZE = 10  # as many as the engine's own pool keeps open (db.make_engine)
WAIT_S = 2.0  # for a connection of the pool; longer, and the route answers
APPLICATION_NAME = "commons-map fast tiles"  # in pg_stat_activity


def make_pool(engine: Engine) -> AsyncConnectionPool:
    """A pool for the fast path, logging in as ``engine`` does; opened by the app's lifespan."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncConnectionPool(
        conninfo, min_size=1, max_size=POOL_SIZE, open=False, name="fast-tiles",
        kwargs={"autocommit": True, "options": "-c jit=off", "application_name": APPLICATION_NAME},
    )


@lru_cache(maxsize=256)
def _statements(collection_id: str, merged: bool) -> tuple[str, str]:
    """(tile, fingerprint with the figures' stamp) of one collection and form, psycopg-style. The
    stamp names the figures the table holds (a digest per cooperative), read in the same snapshot."""
    c = COLLECTIONS[collection_id]
    fp = service.fingerprint_sql(c, merged=merged)
    stamp = (
        "(SELECT coalesce(string_agg(d.cooperative_id || ':' || d.digest, ',' ORDER BY d.cooperative_id), '')"
        " FROM publish_figures_digests d)"
    )
    tile = service.tile_sql(c, merged=merged)
    return psycopg_style(tile), psycopg_style(f"SELECT fp.n, fp.h, {stamp} AS stamp FROM ({fp}) fp")


class FastTiles:
    """ASGI middleware: tiles on the async pool (``app.state.tile_pool``), everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self._plan(scope)
        if plan is not None:
            entry = await self._entry(scope["app"], plan)
            if entry is not None:
                response = tile_response(entry, scope["method"], Headers(scope=scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _plan(scope: Scope) -> service.TilePlan | None:
        """The tile this path answers, or None (the route answers)."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["query_string"]:
            return None
        m = TILE_PATH.fullmatch(scope["path"])
        app = scope.get("app")
        if m is None or app is None or getattr(app.state, "tile_pool", None) is None:
            return None
        if app.dependency_overrides:
            return None
        collection = COLLECTIONS.get(m.group(1))
        if collection is None:
            return None
        z, x, y = (int(v) for v in m.group(2, 3, 4))
        try:
            service.check_tile(z, x, y)
        except NotFound:
            return None
        if collection.figures and figs.sync_due(_db_key(app)):
            return None
        return service.TilePlan(collection, z, x, y)

    async def _entry(self, app, plan: service.TilePlan) -> tilecache.TileEntry | None:  # noqa: ANN001
        """The tile, through the tile cache; None when the database failed (the route answers)."""
        tile_sql, fingerprint_sql = _statements(plan.collection.id, plan.merged)
        cache = tilecache.CACHE
        try:
            async with app.state.tile_pool.connection(timeout=WAIT_S) as conn:
                if not cache.enabled:
                    cur = await conn.execute(tile_sql, plan.values())
                    return tilecache.TileEntry(bytes((await cur.fetchone())[0] or b""))
                async with conn.transaction():
                    cur = await conn.execute(fingerprint_sql, plan.where)
                    n, h, stamp = await cur.fetchone()
                    key = plan.key(_db_key(app), n, h, ("held", stamp))
                    hit = cache.get(key)
                    if hit is not None:
                        return hit
                    cur = await conn.execute(tile_sql, plan.values())
                    entry = tilecache.TileEntry(bytes((await cur.fetchone())[0] or b""))
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("tile %s/%s/%s/%s: the route answers (%s)", plan.collection.id, plan.z, plan.x,
                        plan.y, type(exc).__name__)
            return None
        cache.put(key, entry)
        return entry


def _db_key(app) -> str:  # noqa: ANN001
    """The database's key for the caches, as ``figures.db_key`` names it for the app's sessions."""
    return str(app.state.engine.url)
