"""A small committed cooperative with a provider and a receiver, for the exchange tests that run on
their own database (concurrency, the command line)."""

from __future__ import annotations

from shapely.geometry import MultiPolygon, Polygon

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
