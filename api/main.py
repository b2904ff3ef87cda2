"""The FastAPI application. Engines are built in the lifespan, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy.engine import Engine

import commons_map
import commons_map.models  # noqa: F401 - complete the mappers
from api import errors, fast_tiles, openapi, partners_scheduler, security
from api.fast_tiles import FastTiles
from api.limits import BodyLimit, refuse_nul_characters
from api.routers import (
    auth,
    commons,
    exchange,
    governance,
    health,
    ledger,
    maps,
    members,
    ogc,
    opendata,
    openrosa,
    pages,
    pages_exchange,
    pages_field,
    pages_governance,
    pages_reserve,
    pages_work,
    reservations,
    soil,
    tiles,
    worklog,
)
from api.routers import ingest as ingest_routes
from commons_map.db import make_engine, make_replica_engine, make_sessionmaker
from commons_map.replica import ReadRouter
from commons_map.settings import Settings, get_settings

# The public reads first: a request is matched against the routes in this order, one by one, and
# the OGC API and the tiles are the most requested (~130 routes were tried before an items page).
# Their paths (/ogc/..., /tiles/...) belong to no other router, so the order changes no answer.
ROUTERS = [ogc.router, tiles.router]
ROUTERS += [health.router, auth.router, members.router, commons.router, reservations.router]
ROUTERS += [ledger.router, worklog.router]
ROUTERS += [soil.router]
ROUTERS += [governance.router, pages_governance.router]
ROUTERS += [exchange.router, pages_exchange.router]
ROUTERS += [opendata.router, maps.router]
ROUTERS += [pages.router, pages_field.router, pages_work.router, pages_reserve.router]
ROUTERS += [openrosa.router, openrosa.tokens_router, openrosa.attachments_router, ingest_routes.router]
ROUTERS += [__import__("api.routers.partners", fromlist=["x"]).router,  # partner maps
            __import__("api.routers.partners", fromlist=["x"]).public_router]
ROUTERS += [__import__("api.routers.notify", fromlist=["x"]).router,  # notifications: API, one-click unsubscribe
            __import__("api.routers.notify", fromlist=["x"]).unsubscribe_router,
            __import__("api.routers.pages_notify", fromlist=["x"]).router]
ROUTERS += [__import__("api.routers.clearing", fromlist=["x"]).router]  # clearing lines between cooperatives


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """A commons-map app for these settings (or the environment's)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine is None
        # The app logs in as the role row-level security holds (commons_map.tenancy), never the owner.
        app.state.engine = engine or make_engine(settings, url=settings.app_url)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        # The public reads: on the replica when one is configured and healthy (commons_map.replica).
        app.state.reads = ReadRouter(
            primary=app.state.engine,
            replica=make_replica_engine(settings.replica_sync_url) if settings.replica_sync_url else None,
            max_lag_seconds=settings.replica_max_lag_seconds,
            check_seconds=settings.replica_check_seconds,
        )
        # Tiles on an async pool (api.fast_tiles), unless a replica is configured (the route picks it).
        app.state.tile_pool = fast_tiles.make_pool(app.state.engine) if app.state.reads.replica is None else None
        if app.state.tile_pool is not None:
            await app.state.tile_pool.open(wait=False)
        refresher = partners_scheduler.start(app.state.engine, settings)  # partner maps, in the background
        try:
            yield
        finally:
            await partners_scheduler.stop(refresher)
            if app.state.tile_pool is not None:
                await app.state.tile_pool.close()
            app.state.reads.dispose()
            if own:
                app.state.engine.dispose()

    app = FastAPI(
        title="commons-map",
        version=commons_map.__version__,
        description="The register, map and time ledger of a citizens' cooperative's commons.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(FastTiles)  # innermost: inside the body limit and the security headers
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # inside the security headers
    security.install(app)
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory`."""
    from commons_map.publish import figures

    figures.serve_held_at_start()  # a fresh server's first visitors need not wait for the soil sums
    return create_app()
