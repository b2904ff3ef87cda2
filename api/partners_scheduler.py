"""The app's own refresher of partner maps: a background task that never holds up a request.

Every ``check`` seconds it asks, in a worker thread, for the partners whose copy is older than
``COMMONS_PARTNERS_REFRESH_SECONDS`` and reads them (commons_map.partners.service.refresh_due).
Several workers or servers may run it at once: each partner is leased to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.engine import Engine

from commons_map.partners import service
from commons_map.settings import Settings

log = logging.getLogger("commons_map.partners")


async def _loop(engine: Engine, settings: Settings) -> None:
    max_age = timedelta(seconds=settings.partners_refresh_seconds)
    check = min(60.0, settings.partners_refresh_seconds)
    limits = service.limits_from(settings)
    while True:
        await asyncio.sleep(check)
        try:
            report = await asyncio.to_thread(service.refresh_due, engine, max_age=max_age, limits=limits)
            if report.ok or report.unavailable:
                log.info("partners refreshed: %d ok, %d unavailable", len(report.ok), len(report.unavailable))
        except Exception:  # the next pass tries again; the map keeps its copy meanwhile
            log.exception("partners refresh failed")


def start(engine: Engine, settings: Settings) -> asyncio.Task | None:
    """Start the refresher (None when ``partners_refresh_seconds`` is 0)."""
    if settings.partners_refresh_seconds <= 0:
        return None
    return asyncio.get_running_loop().create_task(_loop(engine, settings), name="partners-refresh")


async def stop(task: asyncio.Task | None) -> None:
    """Stop the refresher (a read under way ends within its own time bound)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
