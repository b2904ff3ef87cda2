"""Long jobs tell the coordinator who ran them how they ended: imports of geodata, backups.

A job that finished notifies in its own transaction (the import's: a rolled-back import tells
nothing of success). A job that failed has no transaction left to write in (the import's rolled
back, a backup has none): :func:`tell_apart` writes the notification in a transaction of its own,
committed at once, through the engine of the caller's session.

Each run is its own event: its dedupe key carries a fresh run id, so the same file imported twice
is told twice, and a retry of the same telling (same run id) once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commons_map.db import session_scope
from commons_map.errors import DomainError
from commons_map.messages import Message
from commons_map.notify.service import notify


def run_id() -> str:
    """A fresh id for one run of a job (its notifications' dedupe key)."""
    return uuid.uuid4().hex


def reason(exc: BaseException) -> Message:
    """Why a job failed, as a message: the refusal's own code, else the kind of error (details go to logs)."""
    if isinstance(exc, DomainError) and exc.legacy is None:
        return Message(exc.code, exc.params)
    return Message("notify.job_error", {"error": type(exc).__name__})


def tell(session: Session, *, member_id: int, failed: bool, code: str, params: dict[str, Any], link: str | None,
         run: str) -> None:
    """Notify the member who ran a job, in ``session``'s transaction."""
    notify(session, recipients=[member_id], kind="job_failed" if failed else "job_finished", code=code,
           params=params, link=link, dedupe=f"job:{run}")


def tell_apart(engine: Engine | Session, *, member_id: int, code: str, params: dict[str, Any],
               link: str | None, run: str) -> None:
    """Notify the member that a job failed, in a transaction of its own (committed here)."""
    if isinstance(engine, Session):
        engine = engine.get_bind().engine
    with session_scope(engine) as session:
        tell(session, member_id=member_id, failed=True, code=code, params=params, link=link, run=run)
