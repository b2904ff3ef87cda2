"""Figures shown on the public layers, from the soil and ledger features when they are there.

The soil feature (``commons_map.soil``) gives each parcel's regeneration status, carbon and
harvests; the ledger (``commons_map.ledger``) gives volunteer minutes per commons. This adapter
uses them when they are installed and otherwise answers "no data", so the public layers work
either way. Results are kept five minutes per cooperative (a public map may lag that much), and
``sync`` writes them to the ``publish_figures`` table, which the public queries join.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from commons_map.publish.models import FIGURE_COLUMNS
from commons_map.replica import DB_KEY, PRIMARY_ENGINE, on_replica
from commons_map.tenancy import acting_cooperative

CACHE_SECONDS = 300.0
log = logging.getLogger("commons_map.publish")

# Colours by regeneration status (colour-blind safe, green = better); unknown codes get grey.
STATUS_COLOURS = {
    "regenerating": "#1a9641",
    "stable": "#a6d96a",
    "baseline_only": "#fdae61",
    "baseline": "#fdae61",
    "degrading": "#d7191c",
    "no_data": "#bdbdbd",
}
FALLBACK_COLOUR = "#8c8c8c"

NO_DATA_LABELS = {
    "fr": "Pas encore de mesure",
    "en": "No measurement yet",
    "explanation_fr": "Aucun prélèvement de sol n'a encore été saisi pour cette parcelle.",
    "explanation_en": "No soil sample has been recorded for this parcel yet.",
}

_cache: dict[tuple[str, int], Computed] = {}
_computing: dict[tuple[str, int], threading.Lock] = {}
# A server (``serve_held_at_start``), until ``clear_cache``, serves the figures table as it finds
# it while it computes them; the CLI and the tests compute them when asked.
_HELD_AT_START = False
_coops: dict[str, tuple[float, list[int]]] = {}
_lock = threading.Lock()


def _optional(module: str, name: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def soil_available() -> bool:
    """True when the soil feature's parcel summaries can be used."""
    return _optional("commons_map.soil.service", "parcel_summaries") is not None


def ledger_available() -> bool:
    """True when the ledger's volunteer minutes can be used."""
    return _optional("commons_map.ledger.service", "minutes_by_commons") is not None


def _label_entry(value: Any) -> dict[str, str]:
    """Normalise one STATUS_LABELS entry (a dict or an object) to fr/en/explanations."""

    def pick(*names: str) -> str:
        for n in names:
            v = value.get(n) if isinstance(value, dict) else getattr(value, n, None)
            if v:
                return str(v)
        return ""

    return {
        "fr": pick("fr", "label_fr"),
        "en": pick("en", "label_en"),
        "explanation_fr": pick("explanation_fr", "explain_fr", "explanation", "description_fr"),
        "explanation_en": pick("explanation_en", "explain_en", "explanation", "description_en"),
    }


@functools.lru_cache(maxsize=1)
def status_labels() -> dict[str, dict[str, str]]:
    """Each regeneration status with its fr/en label and explanation (no_data always there)."""
    labels: dict[str, dict[str, str]] = {}
    raw = _optional("commons_map.soil.status", "STATUS_LABELS")
    if isinstance(raw, dict):
        for code, value in raw.items():
            labels[str(code)] = _label_entry(value)
    labels.setdefault("no_data", dict(NO_DATA_LABELS))
    for entry in labels.values():
        entry.setdefault("fr", "")
        if not entry["fr"]:
            entry["fr"] = entry.get("en", "")
        if not entry["en"]:
            entry["en"] = entry["fr"]
    return labels


def legend() -> list[dict[str, str]]:
    """The legend rows: status code, colour, labels and explanations, no_data last."""
    labels = status_labels()
    order = sorted(
        labels,
        key=lambda c: (
            c == "no_data",
            list(STATUS_COLOURS).index(c) if c in STATUS_COLOURS else 99,
            c,
        ),
    )
    return [
        {"status": c, "colour": STATUS_COLOURS.get(c, FALLBACK_COLOUR), **labels[c]} for c in order
    ]


def _number(value: Any, digits: int = 2) -> float | None:
    if value is None:
        return None
    try:
        return round(float(value), digits)
    except (TypeError, ValueError):
        return None


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _soil(session: Session, cooperative_id: int, out: dict[str, dict[str, Any]]) -> None:
    summaries = _optional("commons_map.soil.service", "parcel_summaries")
    if summaries is None:
        return
    labels = status_labels()
    for commons_id, s in summaries(session, cooperative_id=cooperative_id, with_data_only=True).items():
        status = str(_get(s, "status") or "no_data")
        last = _get(s, "last_sampled")
        if isinstance(last, datetime):
            last = last.date()
        entry = {
            "status": status,
            "status_label_fr": labels.get(status, {}).get("fr") or status,
            "status_label_en": labels.get(status, {}).get("en") or status,
            "soc_stock_t_ha": _number(_get(s, "soc_stock_t_ha")),
            "soc_change_t_ha_per_year": _number(_get(s, "soc_change_t_ha_per_year"), 3),
            "co2e_t_per_year": _number(_get(s, "co2e_t_per_year"), 3),
            "basis": _get(s, "basis"),
            "harvest_kg_total": _number(_get(s, "harvest_kg_total"), 1),
            "last_sampled": last.isoformat() if isinstance(last, date) else last,
        }
        figures = [
            v for k, v in entry.items() if k not in ("status", "status_label_fr", "status_label_en")
        ]
        if status == "no_data" and not any(figures):
            continue  # the SQL defaults say the same; keep the table small
        out.setdefault(str(commons_id), {}).update(entry)


def _hours(session: Session, cooperative_id: int, out: dict[str, dict[str, Any]]) -> None:
    minutes = _optional("commons_map.ledger.service", "minutes_by_commons")
    if minutes is None:
        return
    for commons_id, mins in minutes(session, cooperative_id=cooperative_id).items():
        if mins:
            out.setdefault(str(commons_id), {})["volunteer_hours"] = round(int(mins) / 60.0, 2)


def compute(session: Session, *, cooperative_id: int) -> dict[str, dict[str, Any]]:
    """Figures per commons id (as text keys) for one cooperative, only where there is data.

    Each source runs in its own savepoint: if one fails (a bug, a missing table), the other's
    figures still show and the request's transaction stays usable.
    """
    out: dict[str, dict[str, Any]] = {}
    for source in (_soil, _hours):
        try:
            with session.begin_nested():
                source(session, cooperative_id, out)
        except Exception as exc:  # noqa: BLE001 - a figure source failing must not take the public map down
            log.warning(
                "%s figures for cooperative %s failed, showing no data: %s: %.300s",
                source.__name__[1:],
                cooperative_id,
                type(exc).__name__,
                exc,
            )
    return out


def db_key(session: Session) -> str:
    """Which database a session reads (caches are kept per database: tests run several).

    A streaming replica's sessions name their primary (``commons_map.replica``): a physical replica
    holds the very same rows, down to their ``xmin`` and ``ctid``, so the caches keyed by the rows
    (the tile cache's fingerprints, the figures' digests) are shared by both, and a key read on a
    lagging replica names the older rows it was made from, never the newer ones."""
    if DB_KEY in session.info:
        return str(session.info[DB_KEY])
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    return str(engine.url)


def _coop_ids(session: Session, key_db: str, use_cache: bool) -> list[int]:
    now = time.monotonic()
    with _lock:
        hit = _coops.get(key_db) if use_cache else None
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    ids = [
        int(i) for i in session.execute(text("SELECT id FROM cooperatives ORDER BY id")).scalars()
    ]
    with _lock:
        _coops[key_db] = (now, ids)
    return ids


@dataclass(frozen=True)
class Computed:
    """One cooperative's figures as computed once: when (monotonic and wall clock), and a digest."""

    at: float
    wall: datetime
    figures: dict[str, dict[str, Any]]
    digest: str

    @classmethod
    def of(cls, figures: dict[str, dict[str, Any]]) -> Computed:
        body = json.dumps(figures, sort_keys=True, separators=(",", ":"), default=str)
        return cls(time.monotonic(), datetime.now(UTC), figures, hashlib.sha1(body.encode()).hexdigest())


def _computed(
    session: Session, key: tuple[str, int], use_cache: bool, *, held_at: datetime | None = None
) -> Computed | None:
    """A cooperative's figures from the cache (refreshed in the background when stale) or now.

    ``held_at``: when the figures the table holds for this cooperative were computed (by any
    process). In a process that has not computed them yet (a server just started, or another
    worker), while ``_HELD_AT_START``, answer None: the caller serves what the table holds, which
    is the cache of every process; when it is older than ``CACHE_SECONDS`` it is computed again in
    the background. The soil summaries grow with the samples (on 100,000 parcels, when they read
    every parcel, they took tens of seconds; now the parcels with data only, 0.2 s on the benchmark's
    few samples): the first visitor of a fresh server need not wait for them either way.
    """
    with _lock:
        hit = _cache.get(key) if use_cache else None
        lazy = hit is None and held_at is not None and use_cache and _HELD_AT_START
    if lazy:
        if (datetime.now(UTC) - held_at).total_seconds() >= CACHE_SECONDS:
            _refresh_later(session, key)
        return None
    if hit is None and not use_cache:
        hit = _compute_as(session, key[1])
        with _lock:
            _cache[key] = hit
    elif hit is None:
        with _lock:
            gate = _computing.setdefault(key, threading.Lock())
        # One computation per cooperative at a time: the map's first tiles, asked together, used
        # to compute the same figures each (24 times over, on 100,000 parcels: minutes).
        with gate:
            with _lock:
                hit = _cache.get(key)
            if hit is None:
                hit = _compute_as(session, key[1])
                with _lock:
                    _cache[key] = hit
    elif time.monotonic() - hit.at >= CACHE_SECONDS:
        _refresh_later(session, key)
    return hit


def _compute_as(session: Session, cooperative_id: int) -> Computed:
    """A cooperative's public figures, computed from its members' data (soil, hours): read as that
    cooperative for this step only (row-level security, ``commons_map.tenancy``), whoever asks."""
    with acting_cooperative(session, cooperative_id):
        return Computed.of(compute(session, cooperative_id=cooperative_id))


def figures_for(session: Session, *, use_cache: bool = True) -> dict[str, dict[str, Any]]:
    """Figures of every cooperative's commons, keyed by commons id as text.

    Kept ``CACHE_SECONDS``; a stale entry is still served while a background thread (with its
    own session) refreshes it, so no public request waits for the soil and ledger sums.
    """
    key_db = db_key(session)
    merged: dict[str, dict[str, Any]] = {}
    for coop_id in _coop_ids(session, key_db, use_cache):
        computed = _computed(session, (key_db, coop_id), use_cache)
        assert computed is not None
        merged.update(computed.figures)
    return merged


def sync(session: Session, *, jit_off: bool = False) -> tuple:
    """Bring the ``publish_figures`` table up to the current figures; the stamp of what it holds.

    Per cooperative, the table is rewritten (in the caller's transaction) when the digest it
    holds differs from the figures computed here and is older than them; a writer already at
    it (another worker) is not waited for: the table may lag, as the figures may. The stamp,
    (database, (cooperative, digest held)...), changes whenever the table's content does, so
    caches keyed by it (the tile cache) never mix figures.

    On a streaming replica (read-only) the stamp is what the replica's table holds, which is what
    its queries join; a table behind the figures is brought up to date by a thread on the primary,
    and reaches the replica by replication.
    """
    key_db = db_key(session)
    replica = on_replica(session)
    # ``jit_off``: the same round trip also turns JIT off for the transaction (``service.no_jit``).
    digests = (
        "SELECT d.cooperative_id, d.digest, d.computed_at FROM (SELECT set_config('jit', 'off', true)) j"
        " LEFT JOIN publish_figures_digests d ON true"
        if jit_off
        else "SELECT cooperative_id, digest, computed_at FROM publish_figures_digests"
    )
    held = {row.cooperative_id: row for row in session.execute(text(digests)) if row.cooperative_id is not None}
    stamp: list = [key_db]
    for coop_id in _coop_ids(session, key_db, True):
        have = held.get(coop_id)
        digest = have.digest if have is not None else None
        fresh = _computed(session, (key_db, coop_id), True,
                          held_at=have.computed_at if have is not None else None)
        if fresh is not None and digest != fresh.digest and (have is None or have.computed_at < fresh.wall):
            if replica:
                _sync_on_primary_later(session.info[PRIMARY_ENGINE], key_db)
            else:
                with acting_cooperative(session, coop_id):  # the figures rows are that cooperative's
                    written = _write(session, coop_id, fresh)
                if written:
                    digest = fresh.digest
        stamp.append((coop_id, digest))
    with _lock:
        _synced_at[key_db] = time.monotonic()
    return tuple(stamp)


_syncing: set[str] = set()


def _sync_on_primary_later(primary: Engine, key_db: str) -> None:
    """Bring the primary's figures table up to date in a thread (one at a time per database)."""
    with _lock:
        if key_db in _syncing:
            return
        _syncing.add(key_db)

    def run() -> None:
        try:
            with Session(bind=primary) as own:
                sync(own)
                own.commit()
        except Exception as exc:  # noqa: BLE001 - the next public read tries again
            log.warning("figures table not updated on the primary: %s: %.300s", type(exc).__name__, exc)
        finally:
            with _lock:
                _syncing.discard(key_db)

    threading.Thread(target=run, name="publish-figures-primary", daemon=True).start()


def _write(session: Session, cooperative_id: int, fresh: Computed) -> bool:
    """Replace one cooperative's rows of the figures table; False when another writer holds it."""
    conn = session.connection()
    locked = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('commons-map:figures'), :c)"),
        {"c": cooperative_id},
    ).scalar()
    if not locked:
        return False
    conn.execute(text("DELETE FROM publish_figures WHERE cooperative_id = :c"), {"c": cooperative_id})
    # One INSERT of every row (COPY FROM is refused under row-level security: the app's role writes).
    columns = ", ".join(FIGURE_COLUMNS)
    rows = [{"commons_id": int(commons_id), "cooperative_id": cooperative_id,
             **{c: entry.get(c) for c in FIGURE_COLUMNS}} for commons_id, entry in fresh.figures.items()]
    if rows:
        conn.execute(
            text(f"INSERT INTO publish_figures (commons_id, cooperative_id, {columns})"
                 f" SELECT commons_id, cooperative_id, {columns}"
                 " FROM json_populate_recordset(NULL::publish_figures, CAST(:rows AS json))"),
            {"rows": json.dumps(rows, default=str)},
        )
    conn.execute(
        text(
            "INSERT INTO publish_figures_digests (cooperative_id, digest, computed_at)"
            " VALUES (:c, :d, :t) ON CONFLICT (cooperative_id)"
            " DO UPDATE SET digest = EXCLUDED.digest, computed_at = EXCLUDED.computed_at"
        ),
        {"c": cooperative_id, "d": fresh.digest, "t": fresh.wall},
    )
    return True


_refreshing: set[tuple[str, int]] = set()


def _refresh_later(session: Session, key: tuple[str, int]) -> None:
    """Recompute one cooperative's figures in a thread with its own session."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    with _lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run() -> None:
        try:
            with Session(bind=engine) as own:
                fresh = _compute_as(own, key[1])
            with _lock:
                _cache[key] = fresh
        finally:
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="publish-figures", daemon=True).start()


# When this process last brought the figures table up to date (``sync``), per database.
_synced_at: dict[str, float] = {}
SYNC_EVERY_S = 1.0


def sync_due(key_db: str) -> bool:
    """Whether the figures table of this database (``db_key``) was brought up to date by this
    process more than ``SYNC_EVERY_S`` ago, or never: ``sync_recently`` would do it now (and may
    write it), and a read that keys nothing on its stamp may skip it otherwise."""
    with _lock:
        last = _synced_at.get(key_db)
    return last is None or time.monotonic() - last >= SYNC_EVERY_S


def sync_recently(session: Session) -> None:
    """``sync``, at most once a second per database and process: for reads that join the figures
    table but key no cache on its stamp (items pages, one feature, exports, tiles with the cache
    off). The figures are kept ``CACHE_SECONDS`` anyway; this spares a busy server one round trip
    on nearly every request."""
    if sync_due(db_key(session)):
        sync(session)


def serve_held_at_start() -> None:
    """For a server process: serve the figures table's content while computing them (``_computed``)."""
    global _HELD_AT_START
    _HELD_AT_START = True


def clear_cache() -> None:
    """Forget the cached figures (tests, or after an import): from now on they are computed when asked."""
    global _HELD_AT_START
    with _lock:
        _HELD_AT_START = False
        _cache.clear()
        _coops.clear()
        _synced_at.clear()
