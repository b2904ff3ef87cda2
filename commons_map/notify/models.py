"""ORM models of the outbox: notifications, their e-mail deliveries, members' choices."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base

CHANNELS = ("inbox", "email", "digest")
"""Per kind, a member hears in the inbox only, by e-mail at once, or in a daily digest."""

STATES = ("pending", "sending", "sent", "failed", "bounced", "held")
"""A delivery's state. pending: waits for ``next_attempt_at``; sending: claimed by a sender;
sent: accepted by the SMTP server; failed: gave up after every retry (kept, can be retried);
bounced: the server rejected the recipient for good; held: our server refused the login (a
configuration problem: retried with backoff, shown to coordinators)."""


class Notification(Base):
    """Something that concerns one member, written in the same transaction as its event."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("member_id", "dedupe", name="uq_notifications_member_dedupe"),
        Index("ix_notifications_member_unread", "member_id", postgresql_where=text("read_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    link: Mapped[str | None] = mapped_column(Text)
    dedupe: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a daily digest took it (so each notification is in one digest at most).
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))


class Delivery(Base):
    """One e-mail to one address: of one notification, or of one member's daily digest."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "address", name="uq_deliveries_notification_address"),
        UniqueConstraint("member_id", "digest_day", "address", name="uq_deliveries_digest_address"),
        CheckConstraint(f"state IN {STATES!r}", name="state"),
        CheckConstraint("(notification_id IS NULL) <> (digest_day IS NULL)", name="one_subject"),
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("state IN ('pending', 'held')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    digest_day: Mapped[date | None] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str | None] = mapped_column(Text)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Preference(Base):
    """How a member hears one kind of notification (absent: the kind's default)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    channel: Mapped[str] = mapped_column(Text)


class NotifySettings(Base):
    """A member's timezone (absent: the cooperative's) and the local hour of their daily digest."""

    __tablename__ = "notify_settings"
    __table_args__ = (CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    timezone: Mapped[str | None] = mapped_column(Text)
    digest_hour: Mapped[int] = mapped_column(SmallInteger, default=18, server_default="18")
