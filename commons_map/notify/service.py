"""Notifications: what concerns a member reaches them, in their own language.

Any room notifies with one call, inside the transaction of the event that causes it::

    from commons_map.notify.service import notify
    notify(session, recipients=[member_or_id, ...], kind="reservation_approved",
           code="notify.reservation_approved", params={"resource": name, "starts_at": starts},
           link=f"/reservations/{reservation.id}", dedupe=f"reservation:{reservation.id}:approved")

- ``kind`` is one of :data:`KINDS` (members choose per kind: inbox only, e-mail at once, or the
  daily digest); add a kind there, with its default channel, when you wire a new event.
- ``code`` is a message code (``notify.*`` texts live in ``commons_map/messages/*/notify.po``);
  ``params`` are its parameters, stored as JSON and rendered in the recipient's language when the
  inbox is read or the e-mail is built (``minutes`` render as durations, ISO datetimes as moments).
- ``link`` is a path of the members' pages (made absolute with ``COMMONS_PUBLIC_URL`` in e-mails).
- ``dedupe`` names the event: a recipient is notified once per key, whatever retries the caller
  makes (``INSERT ... ON CONFLICT DO NOTHING``).

Nothing is committed here: a rolled-back event notifies nobody. E-mail deliveries are queued in
the same transaction (``deliveries``) and sent later by ``commons-map notify send``.

Events wired today: reservations (to approve, approved, refused, waiting-list offer), work logs
(to approve, approved, refused), hours received (payments), exchanges (proposed, accepted, recorded
done, paid, cancelled, disputed, a message) and proposals (opened, to who may take part; adopted or
not, to who took part). Return reminders and overdue come from ``commons-map notify remind``
(notify.remind, untested). Not yet wired: imports and backups finishing, proposals closing within a
day, agreements due for review.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from commons_map.errors import NotFound, PermissionDenied, ValidationFailed
from commons_map.messages import Message, plain
from commons_map.notify.models import CHANNELS, Delivery, Notification, NotifySettings, Preference
from commons_map.people.models import Cooperative, Member
from commons_map.tenancy import act_for_member

KINDS: dict[str, str] = {
    "reservation_to_approve": "email",
    "reservation_approved": "email",
    "reservation_refused": "email",
    "waiting_offer": "email",
    "return_reminder": "email",
    "reservation_overdue": "email",
    "worklog_to_approve": "digest",
    "worklog_approved": "digest",
    "worklog_refused": "email",
    "hours_received": "digest",
    "job_finished": "email",
    "job_failed": "email",
    "exchange": "email",
    "proposal": "digest",
    "proposal_closing": "email",
    "agreement_review": "digest",
}
"""Every kind of notification and its default channel."""

UNSUBSCRIBE_SALT = "notify-unsubscribe"


def _member_ids(recipients: Iterable[Member | int]) -> list[int]:
    ids = [r.id if isinstance(r, Member) else int(r) for r in recipients]
    return list(dict.fromkeys(ids))


def channels(session: Session, *, member_ids: list[int], kind: str) -> dict[int, str]:
    """The channel each member chose for ``kind`` (the kind's default where they chose nothing)."""
    chosen = dict(
        session.execute(
            select(Preference.member_id, Preference.channel).where(
                Preference.member_id.in_(member_ids), Preference.kind == kind
            )
        ).all()
    )
    return {m: chosen.get(m, KINDS[kind]) for m in member_ids}


def notify(
    session: Session,
    *,
    recipients: Iterable[Member | int],
    kind: str,
    code: str,
    params: dict[str, Any] | None = None,
    link: str | None = None,
    dedupe: str,
) -> list[Notification]:
    """Notify each recipient once per ``dedupe`` key, in the caller's transaction; the new rows."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}: add it to notify.service.KINDS")
    ids = _member_ids(recipients)
    if not ids:
        return []
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}
    safe = {k: v.as_dict() if isinstance(v, Message) else plain(v) for k, v in (params or {}).items()}
    rows = [
        {"cooperative_id": members[i].cooperative_id, "member_id": i, "kind": kind, "code": code,
         "params": safe, "link": link, "dedupe": dedupe}
        for i in ids if i in members and members[i].is_active
    ]
    if not rows:
        return []
    new_ids = session.scalars(
        insert(Notification).values(rows).on_conflict_do_nothing(constraint="uq_notifications_member_dedupe")
        .returning(Notification.id)
    ).all()
    if not new_ids:
        return []
    created = list(session.scalars(select(Notification).where(Notification.id.in_(new_ids))))
    chosen = channels(session, member_ids=[n.member_id for n in created], kind=kind)
    mails = [
        {"notification_id": n.id, "member_id": n.member_id, "cooperative_id": n.cooperative_id,
         "kind": kind, "address": members[n.member_id].email}
        for n in created
        if chosen[n.member_id] == "email" and members[n.member_id].email
    ]
    if mails:
        session.execute(insert(Delivery).values(mails).on_conflict_do_nothing())
    return created


# --- the inbox ----------------------------------------------------------------------------------

def inbox(session: Session, *, actor: Member, unread_only: bool = False, limit: int = 50,
          before_id: int | None = None) -> list[Notification]:
    """The actor's notifications, newest first."""
    q = select(Notification).where(Notification.member_id == actor.id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    if before_id is not None:
        q = q.where(Notification.id < before_id)
    return list(session.scalars(q.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, *, actor: Member) -> int:
    """How many of the actor's notifications are unread."""
    return session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.member_id == actor.id, Notification.read_at.is_(None))
    ) or 0


def mark_read(session: Session, *, actor: Member, notification_id: int | None = None) -> int:
    """Mark one of the actor's notifications read (or all of them when no id); how many changed."""
    q = update(Notification).where(Notification.member_id == actor.id, Notification.read_at.is_(None))
    if notification_id is not None:
        owner = session.scalar(select(Notification.member_id).where(Notification.id == notification_id))
        if owner != actor.id:
            raise NotFound("notify.not_found", field="notification_id", notification_id=notification_id)
        q = q.where(Notification.id == notification_id)
    return session.execute(q.values(read_at=datetime.now(UTC))).rowcount or 0


def text_of(notification: Notification, locale: str) -> str:
    """A notification's sentence in ``locale``."""
    return Message(notification.code, _revive(notification.params, locale)).text(locale)


def _revive(params: dict[str, Any], locale: str) -> dict[str, Any]:
    """JSON parameters back to Python: ISO moments become datetimes (rendered per locale), a nested
    message ``{"code", "params"}`` becomes its text in ``locale``."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, dict) and isinstance(v.get("code"), str):
            v = Message(v["code"], _revive(v.get("params") or {}, locale)).text(locale)
        elif isinstance(v, str) and (k.endswith("_at") or k.endswith("_on")):
            try:
                v = datetime.fromisoformat(v)
                if k.endswith("_on"):
                    v = v.date()
            except ValueError:
                pass
        out[k] = v
    return out


# --- preferences --------------------------------------------------------------------------------

def preferences(session: Session, *, actor: Member) -> dict[str, Any]:
    """The actor's channel per kind, timezone and digest hour."""
    chosen = dict(session.execute(
        select(Preference.kind, Preference.channel).where(Preference.member_id == actor.id)).all())
    s = session.get(NotifySettings, actor.id)
    return {
        "channels": {k: chosen.get(k, default) for k, default in KINDS.items()},
        "timezone": (s.timezone if s and s.timezone else
                     session.scalar(select(Cooperative.timezone).where(Cooperative.id == actor.cooperative_id))),
        "digest_hour": s.digest_hour if s else 18,
    }


def set_preferences(session: Session, *, actor: Member, channels: dict[str, str] | None = None,
                    timezone: str | None = None, digest_hour: int | None = None) -> dict[str, Any]:
    """Change the actor's channels (per kind), timezone or digest hour; the new preferences."""
    from zoneinfo import available_timezones

    for kind, channel in (channels or {}).items():
        if kind not in KINDS:
            raise ValidationFailed("notify.unknown_kind", field="channels", kind=kind)
        if channel not in CHANNELS:
            raise ValidationFailed("notify.unknown_channel", field="channels", channel=channel)
    if timezone is not None and timezone not in available_timezones():
        raise ValidationFailed("notify.unknown_timezone", field="timezone", timezone=timezone)
    if digest_hour is not None and not 0 <= digest_hour <= 23:
        raise ValidationFailed("notify.digest_hour_range", field="digest_hour", minimum=0, maximum=23)
    for kind, channel in (channels or {}).items():
        session.execute(
            insert(Preference).values(member_id=actor.id, kind=kind, channel=channel)
            .on_conflict_do_update(index_elements=["member_id", "kind"], set_={"channel": channel})
        )
    if timezone is not None or digest_hour is not None:
        s = session.get(NotifySettings, actor.id)
        if s is None:
            s = NotifySettings(member_id=actor.id, digest_hour=18)
            session.add(s)
        if timezone is not None:
            s.timezone = timezone
        if digest_hour is not None:
            s.digest_hour = digest_hour
    session.flush()
    return preferences(session, actor=actor)


# --- one-click unsubscribe ---------------------------------------------------------------------

def unsubscribe_token(secret: str, *, delivery_id: int, member_id: int, kind: str) -> str:
    """A signed token that turns e-mail off for one kind, usable once (bound to its delivery)."""
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).dumps({"d": delivery_id, "m": member_id, "k": kind})


def read_unsubscribe_token(secret: str, token: str) -> dict[str, Any]:
    """The content of a token, or PermissionDenied when it is forged or damaged."""
    try:
        data = URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        raise PermissionDenied("notify.unsubscribe_invalid", field="token") from None
    if not isinstance(data, dict) or not {"d", "m", "k"} <= data.keys():
        raise PermissionDenied("notify.unsubscribe_invalid", field="token")
    return data


def unsubscribe(session: Session, *, secret: str, token: str) -> dict[str, Any]:
    """Turn e-mail off for the token's kind (digest deliveries: every digest kind); once per token."""
    data = read_unsubscribe_token(secret, token)
    act_for_member(session, int(data["m"]))  # the token is signed: its member acts (tenancy)
    delivery = session.get(Delivery, int(data["d"]), with_for_update=True)
    if delivery is None or delivery.member_id != data["m"]:
        raise PermissionDenied("notify.unsubscribe_invalid", field="token")
    if delivery.unsubscribed_at is not None:
        raise PermissionDenied("notify.unsubscribe_used", field="token")
    delivery.unsubscribed_at = datetime.now(UTC)
    member = session.get(Member, delivery.member_id)
    assert member is not None
    if data["k"] == "digest":
        kinds = [k for k, c in preferences(session, actor=member)["channels"].items() if c == "digest"]
    else:
        kinds = [data["k"]]
    set_preferences(session, actor=member, channels={k: "inbox" for k in kinds})
    return {"member_id": member.id, "kinds": kinds, "locale": member.locale}


def failed_deliveries(session: Session, *, actor: Member, limit: int = 200) -> list[Delivery]:
    """Deliveries of the actor's cooperative that did not go out (failed, bounced, held): coordinators."""
    if not actor.is_coordinator:
        raise PermissionDenied("notify.coordinators_only")
    return list(session.scalars(
        select(Delivery).where(Delivery.cooperative_id == actor.cooperative_id,
                               Delivery.state.in_(("failed", "bounced", "held")))
        .order_by(Delivery.id.desc()).limit(limit)
    ))
