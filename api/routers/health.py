"""GET /health: is the database there, with PostGIS; where the public reads go when a replica is set."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

import commons_map

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """The app's status with the database and PostGIS versions; 503 while the database is away."""
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            db = conn.execute(text("SHOW server_version")).scalar()
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
    except SQLAlchemyError as exc:
        return JSONResponse(
            {"status": "degraded", "version": commons_map.__version__, "database": "unreachable",
             "error": type(exc).__name__},
            status_code=503,
        )
    body = {"status": "ok", "version": commons_map.__version__, "database": db, "postgis": postgis}
    reads = getattr(request.app.state, "reads", None)
    if reads is not None and reads.replica is not None:
        # Where the public reads go; a replica away or behind is not a failure (the primary serves).
        body["replica"] = reads.status().as_dict()
    return JSONResponse(body)
