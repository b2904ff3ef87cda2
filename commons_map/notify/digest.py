"""The daily digest: one e-mail at the member's local hour gathering the day's digest-kind notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from commons_map.notify.models import Delivery, Notification
from commons_map.notify.service import KINDS

WINDOW = timedelta(hours=24)
"""A digest gathers what came in the last day (what is older stays in the inbox)."""

_CANDIDATES = text("""
    SELECT n.id, n.member_id, m.email, m.cooperative_id, coalesce(s.timezone, c.timezone) AS tz,
           coalesce(s.digest_hour, 18) AS hour
      FROM notifications n
      JOIN members m ON m.id = n.member_id
      JOIN cooperatives c ON c.id = m.cooperative_id
      LEFT JOIN notify_settings s ON s.member_id = n.member_id
      LEFT JOIN notification_preferences p ON p.member_id = n.member_id AND p.kind = n.kind
      JOIN (SELECT unnest(CAST(:kinds AS text[])) AS kind, unnest(CAST(:defaults AS text[])) AS channel) d
        ON d.kind = n.kind
     WHERE n.digest_id IS NULL AND n.created_at > :since AND n.created_at <= :now
       AND coalesce(p.channel, d.channel) = 'digest' AND m.email IS NOT NULL AND m.is_active
     ORDER BY n.member_id, n.id
       FOR UPDATE OF n SKIP LOCKED
""")


def prepare_digests(session: Session, *, now: datetime | None = None) -> int:
    """Queue today's digest of every member whose local digest hour has come; how many were queued."""
    now = now or datetime.now(UTC)
    rows = session.execute(_CANDIDATES, {
        "kinds": list(KINDS), "defaults": list(KINDS.values()), "since": now - WINDOW, "now": now,
    }).all()
    by_member: dict[int, list] = {}
    for r in rows:
        by_member.setdefault(r.member_id, []).append(r)
    queued = 0
    for member_id, items in by_member.items():
        first = items[0]
        local = now.astimezone(ZoneInfo(first.tz))
        if local.hour < first.hour:
            continue
        digest_id = session.scalar(
            insert(Delivery).values(member_id=member_id, cooperative_id=first.cooperative_id, kind="digest",
                                    digest_day=local.date(), address=first.email)
            .on_conflict_do_nothing().returning(Delivery.id)
        )
        if digest_id is None:  # today's digest went already: these wait for tomorrow's
            continue
        session.execute(
            update(Notification).where(Notification.id.in_(bindparam("ids", expanding=True)))
            .values(digest_id=digest_id), {"ids": [r.id for r in items]},
        )
        queued += 1
    return queued
