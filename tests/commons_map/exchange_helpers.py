"""A small committed cooperative with a provider and a receiver, for the exchange tests that run on
their own database (concurrency, the command line)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from shapely.geometry import MultiPolygon, Polygon

from commons_map.errors import Conflict
from commons_map.exchange import service
from commons_map.geo import to_ewkt
from commons_map.people.models import Cooperative, Member


def small_coop(session, slug: str) -> tuple[Cooperative, Member, Member]:  # noqa: ANN001
    """(the cooperative, a provider, a receiver), flushed."""
    coop = Cooperative(slug=slug, name=slug.title(), territory=to_ewkt(MultiPolygon([Polygon(
        [(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.6)])])))
    session.add(coop)
    session.flush()
    provider = Member(cooperative_id=coop.id, username=f"{slug}-p", display_name="P", password_hash="-")
    receiver = Member(cooperative_id=coop.id, username=f"{slug}-r", display_name="R", password_hash="-")
    session.add_all([provider, receiver])
    session.flush()
    return coop, provider, receiver


def race_confirmations(sessions, actor_of, ids: list[int], *, threads: int) -> list[tuple[int, str]]:  # noqa: ANN001
    """``threads`` connections confirm each exchange of ``ids`` as done at the same moment (a
    barrier per exchange), each in a session from ``sessions`` acting as ``actor_of(session)``;
    (exchange id, "paid" or the refusal's code) for every attempt."""
    barrier = threading.Barrier(threads)
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def confirm(exchange_id: int) -> None:
        with sessions() as s:
            actor = actor_of(s)
            barrier.wait()
            try:
                service.done(s, actor=actor, exchange_id=exchange_id)
                s.commit()
                result = "paid"
            except Conflict as exc:
                s.rollback()
                result = exc.code
        with lock:
            outcomes.append((exchange_id, result))

    for exchange_id in ids:
        barrier.reset()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(confirm, [exchange_id] * threads))
    return outcomes
