"""The tiles' fast path (api/fast_tiles.py) answers as the route does, header for header, and
hands the route everything else: the app as served (its own request sessions, the app's role),
over the committed demo; with the tile cache on and off; privacy over every non-public commons."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api import fast_tiles
from commons_map.publish import figures, tilecache
from commons_map.publish.collections import COLLECTIONS

IGNORED = {"date", "server"}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)


@pytest.fixture(params=["cache on", "cache off"])
def served(request, settings, engine, monkeypatch):  # noqa: ANN001 - `engine`: the demo is committed
    """The app as served: no overridden session, its own engine as the app's role."""
    from api.main import create_app

    size = 0 if request.param == "cache off" else 8 << 20
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=size))
    monkeypatch.setattr(figures, "SYNC_EVERY_S", 3600.0)  # the figures synced once, by the first request
    figures.clear_cache()
    app = create_app(settings)
    with TestClient(app) as c:
        c.get("/tiles/restored_land/0/0/0.mvt")  # the figures are due: the route syncs them
        assert not figures.sync_due(fast_tiles._db_key(app))
        yield app, c
    figures.clear_cache()


def _answer(c: TestClient, url: str, headers: dict[str, str], method: str = "GET"):  # noqa: ANN202
    r = c.request(method, url, headers=headers)
    return r.status_code, {k: v for k, v in r.headers.items() if k not in IGNORED}, r.content


def _route_and_fast(app, c, url, headers, method="GET"):  # noqa: ANN001, ANN202
    """The same request answered by the fast path, then by the route (the pool set aside)."""
    answered: list[str] = []
    real = fast_tiles.FastTiles._entry

    async def spy(self, app_, plan):  # noqa: ANN001, ANN202
        answered.append(plan.collection.id)
        return await real(self, app_, plan)

    pool = app.state.tile_pool
    try:
        fast_tiles.FastTiles._entry = spy
        fast = _answer(c, url, headers, method)
        app.state.tile_pool = None
        route = _answer(c, url, headers, method)
    finally:
        fast_tiles.FastTiles._entry = real
        app.state.tile_pool = pool
    assert answered, f"the fast path did not answer {url}"
    return fast, route


def _tiles_over(db, where: str) -> list[tuple[int, int, int]]:  # noqa: ANN001
    points = db.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(COALESCE(c.geom, k.geom)) p"
        f" FROM commons c LEFT JOIN commons k ON k.id = c.kept_at_id WHERE {where}) q WHERE p IS NOT NULL"
    )).all()
    assert points
    return sorted({(z, *tile_of(lon, lat, z)) for lon, lat in points for z in (8, 10, 14, 16)})


def test_the_fast_path_answers_as_the_route_header_for_header(served, db):
    app, c = served
    tiles = _tiles_over(db, "c.external_id IN ('demo:land-0', 'demo:garden-0', 'demo:water-3')") + [(10, 0, 0)]
    seen = set()
    for cid in COLLECTIONS:
        for z, x, y in tiles:
            url = f"/tiles/{cid}/{z}/{x}/{y}.mvt"
            for headers in ({"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}):
                fast, route = _route_and_fast(app, c, url, headers)
                assert fast == route, url
                seen.add(fast[0])
                again, _ = _route_and_fast(app, c, url, {**headers, "If-None-Match": fast[1]["etag"]})
                assert again[0] == 304 and again[1]["etag"] == fast[1]["etag"], url
            head, route_head = _route_and_fast(app, c, url, {"Accept-Encoding": "gzip"}, "HEAD")
            assert head == route_head and head[2] == b"", url
    assert seen == {200, 204}
    # inside the security headers, as the route's answer
    fast, _ = _route_and_fast(app, c, "/tiles/restored_land/10/0/0.mvt", {})
    assert fast[1]["x-content-type-options"] == "nosniff"


def test_no_commons_that_is_not_public_through_the_fast_path(served, db):
    app, c = served
    hidden = dict(db.execute(text(
        "SELECT id, name FROM commons WHERE visibility <> 'public' OR archived_at IS NOT NULL")).all())
    assert len(hidden) >= 5
    spring = db.execute(text(
        "SELECT ST_X(geom), ST_Y(geom) FROM commons WHERE external_id = 'demo:water-3'")).one()
    for cid in COLLECTIONS:
        for z, x, y in _tiles_over(db, "c.visibility <> 'public' OR c.archived_at IS NOT NULL"):
            (status, _, body), _ = _route_and_fast(app, c, f"/tiles/{cid}/{z}/{x}/{y}.mvt",
                                                   {"Accept-Encoding": "identity"})
            if status == 204:
                continue
            for layer in mapbox_vector_tile.decode(body).values():
                for f in layer["features"]:
                    assert f.get("id") not in hidden and f["properties"].get("name") not in hidden.values()
    assert spring  # its exact place: the route's own tests; the same answer here (test above)


@pytest.mark.parametrize("url, status", [
    ("/tiles/restored_land/10/0/0.mvt?f=mvt", 400),      # a query string: the route refuses it
    ("/tiles/housing/10/0/0.mvt", 404),                  # no such collection
    ("/tiles/restored_land/3/8/1.mvt", 404),             # no such tile
    ("/tiles/restored_land/25/0/0.mvt", 404),
])
def test_what_the_fast_path_does_not_take_the_route_answers(served, url, status):
    app, c = served
    taken: list[object] = []
    real = fast_tiles.FastTiles._entry

    async def spy(self, app_, plan):  # noqa: ANN001, ANN202
        taken.append(plan)
        return await real(self, app_, plan)

    fast_tiles.FastTiles._entry = spy
    try:
        r = c.get(url)
        posted = c.post("/tiles/restored_land/10/0/0.mvt")
    finally:
        fast_tiles.FastTiles._entry = real
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
    assert posted.status_code == 405
    assert taken == []


def test_a_dropped_connection_costs_no_request(served, db):
    """The database drops the fast path's connections: the next request is answered all the same
    (by the route, or on a fresh connection), and the pool recovers."""
    app, c = served
    (z, x, y), = [t for t in _tiles_over(db, "c.external_id = 'demo:land-0'") if t[0] == 14]
    url = f"/tiles/restored_land/{z}/{x}/{y}.mvt"
    before = c.get(url, headers={"Accept-Encoding": "identity"})
    assert before.status_code == 200
    killed = db.execute(text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :a"),
        {"a": fast_tiles.APPLICATION_NAME}).scalar()
    assert killed >= 1
    for _ in range(3):
        r = c.get(url, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and r.content == before.content


def test_a_replica_keeps_the_route(settings, engine):
    """With a replica configured the route picks where to read (commons_map.replica): no pool."""
    from api.main import create_app

    app = create_app(settings.model_copy(update={"database_replica_url": settings.database_url}))
    with TestClient(app) as c:
        assert app.state.tile_pool is None
        assert c.get("/tiles/restored_land/10/0/0.mvt").status_code == 204


def test_gzip_etags_do_not_change_with_the_clock(client, monkeypatch):
    """A gzip form made again (the tile cache off, an OGC page) has the same bytes and ETag at
    another second: gzip's header holds no time (it held the current one, and a client's
    If-None-Match never matched once a second had passed)."""
    import gzip

    clock = iter([1_700_000_000.0 + i for i in range(100)])
    monkeypatch.setattr(gzip.time, "time", lambda: next(clock))
    data = bytes(range(256)) * 100
    assert tilecache.TileEntry(data).etag(gz=True) == tilecache.TileEntry(data).etag(gz=True)
    url = "/ogc/collections/commons/items?limit=1000"
    first = client.get(url, headers={"Accept-Encoding": "gzip", "Accept": "application/geo+json"})
    assert first.headers["content-encoding"] == "gzip"
    again = client.get(url, headers={"Accept-Encoding": "gzip", "Accept": "application/geo+json",
                                     "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_with_the_cache_on_a_change_is_in_the_next_tile_at_once(settings, fresh_database, monkeypatch):
    """The key is read in the snapshot the tile is made from: a committed change to a parcel is in
    its tile at the next request, and the other tiles stay cached (a database of its own: the
    change is committed)."""
    from api.main import create_app
    from commons_map.db import make_engine

    url = fresh_database()
    owner = make_engine(url=url)
    with owner.begin() as conn:
        coop = conn.execute(text(
            "INSERT INTO cooperatives (slug, name, territory) VALUES ('essai', 'Essai',"
            " ST_Multi(ST_MakeEnvelope(4.9, 44.4, 5.2, 44.7, 4326))) RETURNING id")).scalar()
        ids = conn.execute(text(
            "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility)"
            " SELECT :c, 'land', 'Parcelle ' || i, ST_MakeEnvelope(5.0 + i * 0.01, 44.5, 5.0 + i * 0.01 + 0.0004,"
            " 44.5003, 4326), 'public' FROM generate_series(0, 1) i RETURNING id"), {"c": coop}).scalars().all()
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=8 << 20))
    monkeypatch.setattr(figures, "SYNC_EVERY_S", 3600.0)
    figures.clear_cache()
    here, there = (f"/tiles/restored_land/16/{x}/{y}.mvt" for x, y in (tile_of(5.0002, 44.50015, 16),
                                                                        tile_of(5.0102, 44.50015, 16)))

    def names(r) -> dict:  # noqa: ANN001
        layer = mapbox_vector_tile.decode(r.content)["restored_land"]
        return {f["id"]: f["properties"]["name"] for f in layer["features"]}

    answered: list[str] = []
    real = fast_tiles.FastTiles._entry

    async def spy(self, app_, plan):  # noqa: ANN001, ANN202
        entry = await real(self, app_, plan)
        answered.append(plan.collection.id if entry is not None else "route")
        return entry

    monkeypatch.setattr(fast_tiles.FastTiles, "_entry", spy)
    app = create_app(settings.model_copy(update={"database_url": url}))
    try:
        with TestClient(app) as c:
            c.get("/tiles/restored_land/0/0/0.mvt")  # the route syncs the figures
            assert not figures.sync_due(fast_tiles._db_key(app))
            assert names(c.get(here)) == {ids[0]: "Parcelle 0"} and names(c.get(there)) == {ids[1]: "Parcelle 1"}
            misses = tilecache.CACHE.misses
            assert names(c.get(here)) == {ids[0]: "Parcelle 0"} and tilecache.CACHE.misses == misses  # a hit
            with owner.begin() as conn:
                conn.execute(text("UPDATE commons SET name = 'Parcelle renommée' WHERE id = :i"), {"i": ids[0]})
            assert names(c.get(here)) == {ids[0]: "Parcelle renommée"}
            assert tilecache.CACHE.misses == misses + 1
            assert names(c.get(there)) == {ids[1]: "Parcelle 1"} and tilecache.CACHE.misses == misses + 1
            with owner.begin() as conn:
                conn.execute(text("UPDATE commons SET visibility = 'private' WHERE id = :i"), {"i": ids[0]})
            assert c.get(here).status_code == 204  # gone at once
        assert answered == ["restored_land"] * 6  # every tile but the first: the fast path
    finally:
        owner.dispose()
        figures.clear_cache()
