"""Public reads on a PostgreSQL streaming replica, with the primary as the fallback.

The public routes (OGC API, tiles, the public map, open data) only read, and read what anyone may
see: they can be served by a hot standby made with ``pg_basebackup -R``
(``COMMONS_DATABASE_REPLICA_URL``). Everything else (members' pages, the API of members, every
write) keeps the primary: ``ReadRouter`` is only asked by the public routes, and a standby refuses
writes anyway (its transactions are read-only).

``ReadRouter.sessionmaker()`` answers the replica's sessions while the last check found the
replica reachable and no more than ``max_lag_seconds`` behind, else the primary's. The check runs
at most once per ``check_seconds``, in the request that finds the last one too old (the others
meanwhile keep the last answer: a replica that is down costs one request one connection attempt
per period, bounded by the engine's connect timeout).

How far behind: the replica has replayed all WAL up to ``pg_last_wal_replay_lsn()``; the primary
has written up to ``pg_current_wal_lsn()``. Caught up is lag 0, however long the primary has been
idle (``now() - pg_last_xact_replay_timestamp()`` grows on an idle primary, so it is not used alone).
Behind, the lag is the time since the router first saw the primary past the LSN the replica has
now replayed: each check keeps the primary's LSN and the time it was seen, so the estimate is
a lower bound, short of the truth by at most one check period. On the first check, with nothing
seen yet, the lag is the time since the last transaction the replica replayed (an upper bound:
the doubt goes to the primary).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("commons_map.replica")

# A session's ``info`` on the replica: the figures (``publish.figures``) read its table there and
# leave the writing of it to the primary.
REPLICA = "replica"
PRIMARY_ENGINE = "primary_engine"
DB_KEY = "db_key"

_REPLICA_SQL = text(
    "SELECT pg_is_in_recovery() AS recovering, pg_last_wal_replay_lsn()::text AS replayed,"
    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_last_replayed"
)
_PRIMARY_SQL = text("SELECT pg_current_wal_lsn()::text")


def lsn(value: str | None) -> int:
    """A ``pg_lsn`` as text ('16/B374D848') as a number of bytes; None (no WAL replayed) is 0."""
    if not value:
        return 0
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True)
class Status:
    """The last check: where public reads go, and why."""

    use_replica: bool
    state: str  # "replica" (in use), "lagging", "unreachable", "not_standby", "none" (no replica)
    lag_seconds: float | None = None
    behind_bytes: int | None = None
    checked_at: float = 0.0  # time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        """For /health."""
        out: dict[str, Any] = {"state": self.state, "public_reads": "replica" if self.use_replica else "primary"}
        if self.lag_seconds is not None:
            out["lag_seconds"] = round(self.lag_seconds, 3)
        if self.behind_bytes is not None:
            out["behind_bytes"] = self.behind_bytes
        return out


class ReadRouter:
    """Chooses the database of the public reads: the replica when healthy, else the primary."""

    def __init__(
        self,
        *,
        primary: Engine,
        replica: Engine | None = None,
        max_lag_seconds: float = 30.0,
        check_seconds: float = 2.0,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self._primary_sessions = sessionmaker(bind=primary, expire_on_commit=False)
        self._replica_sessions = (
            sessionmaker(
                bind=replica,
                expire_on_commit=False,
                info={REPLICA: True, PRIMARY_ENGINE: primary, DB_KEY: str(primary.url)},
            )
            if replica is not None
            else None
        )
        self._lock = threading.Lock()
        self._seen: deque[tuple[float, int]] = deque(maxlen=100_000)  # (monotonic, primary LSN) not yet replayed
        self._status = Status(use_replica=False, state="none" if replica is None else "unchecked")
        self.checks = 0
        self._sampled = False  # a primary LSN has been seen

    # --- the decision -------------------------------------------------------------------------
    def status(self) -> Status:
        """The last check, refreshed when older than ``check_seconds`` (by one caller at a time)."""
        if self.replica is None:
            return self._status
        current = self._status
        if current.checked_at and time.monotonic() - current.checked_at < self.check_seconds:
            return current
        if not self._lock.acquire(blocking=current.state == "unchecked"):
            return current  # another request is checking: keep the last answer meanwhile
        try:
            current = self._status
            if current.checked_at and time.monotonic() - current.checked_at < self.check_seconds:
                return current
            self._status = self.check()
            return self._status
        finally:
            self._lock.release()

    def check(self) -> Status:
        """Ask both servers now: is the replica a standby, reachable, and how far behind."""
        assert self.replica is not None
        self.checks += 1
        now = time.monotonic()
        # The primary first, and whatever the replica's state: the LSNs seen while the replica was
        # away tell how far behind it is when it comes back.
        try:
            with self.primary.connect() as conn:
                head: int | None = lsn(conn.execute(_PRIMARY_SQL).scalar())
        except SQLAlchemyError:
            head = None
        first_sample = head is not None and not self._sampled
        if head is not None:
            self._seen.append((now, head))
            self._sampled = True
        try:
            with self.replica.connect() as conn:
                row = conn.execute(_REPLICA_SQL).one()
        except SQLAlchemyError as exc:
            if self._status.state != "unreachable":
                log.warning("replica unreachable, public reads go to the primary: %s", type(exc).__name__)
            return Status(use_replica=False, state="unreachable", checked_at=now)
        if not row.recovering:
            # Promoted, or a URL that names a primary: it may diverge from ours; never read from it.
            if self._status.state != "not_standby":
                log.warning("the replica URL names a server that is not a standby; public reads stay on the primary")
            return Status(use_replica=False, state="not_standby", checked_at=now)
        if head is None:
            # The primary away: the replica is all there is (its reads stay as old as the outage).
            return Status(use_replica=True, state="replica", checked_at=now)
        replayed = lsn(row.replayed)
        # What the replica has replayed is never needed again (replay only moves forward).
        while self._seen and self._seen[0][1] <= replayed:
            self._seen.popleft()
        behind = max(0, head - replayed)
        if behind == 0:
            lag = 0.0
        elif first_sample:
            lag = float(row.since_last_replayed) if row.since_last_replayed is not None else float("inf")
        else:
            lag = now - self._seen[0][0]  # the first time the primary was seen past the replayed LSN
        ok = lag <= self.max_lag_seconds
        if not ok and self._status.state != "lagging":
            log.warning("replica %.1f s behind (limit %g s): public reads go to the primary", lag, self.max_lag_seconds)
        return Status(
            use_replica=ok, state="replica" if ok else "lagging", lag_seconds=lag, behind_bytes=behind, checked_at=now
        )

    def mark_unreachable(self) -> None:
        """A replica connection just failed: the primary until the next check."""
        with self._lock:
            self._status = Status(use_replica=False, state="unreachable", checked_at=time.monotonic())

    # --- sessions -----------------------------------------------------------------------------
    def replica_session(self) -> Session | None:
        """A session on the replica for one public read while it is healthy, else None (the caller
        reads the primary).

        The replica's connection is taken at once, so a replica that went away since the last
        check costs this request one failed attempt and it is served by the primary.
        """
        if self._replica_sessions is None or not self.status().use_replica:
            return None
        session = self._replica_sessions()
        try:
            session.connection()
            return session
        except SQLAlchemyError as exc:
            session.close()
            log.warning("replica connection failed, this read goes to the primary: %s", type(exc).__name__)
            self.mark_unreachable()
            return None

    def session(self) -> Session:
        """A session for one public read: the replica's when healthy, else the primary's."""
        return self.replica_session() or self._primary_sessions()

    def dispose(self) -> None:
        """Close the replica's pool (the primary's belongs to the app)."""
        if self.replica is not None:
            self.replica.dispose()


def on_replica(session: Session) -> bool:
    """True when ``session`` reads the replica (it may not write)."""
    return bool(session.info.get(REPLICA))
