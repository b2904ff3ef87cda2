"""ORM models of the exchange network: categories, posts, exchanges, their messages and history,
the solidarity fund's stewards and the supports they approve (see migration 0009_exchange)."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import Boolean, Computed, Date, DateTime, ForeignKey, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from commons_map.db import Base

POST_KINDS = ("offer", "need")
VISIBILITIES = ("members", "public")
STATES = ("proposed", "accepted", "done", "cancelled", "disputed")
SEARCH_CONFIG = "exchange_french"


class Category(Base):
    """A kind of service (se nourrir, réparer...): data the coordinators extend."""

    __tablename__ = "exchange_categories"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    label_fr: Mapped[str] = mapped_column(Text)
    label_en: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    position: Mapped[int] = mapped_column(Integer, default=100, server_default="100")


class Post(Base):
    """An offer or a need a member posts, with an optional place and an expiry.

    The point, the shown point and the tsvector are deferred: lists render the place as GeoJSON in SQL.
    """

    __tablename__ = "exchange_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    category_code: Mapped[str] = mapped_column(ForeignKey("exchange_categories.code"))
    minutes: Mapped[int] = mapped_column(Integer)
    when_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True, deferred=True)
    exact_place: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # What others are shown: the point snapped to ~500 m unless exact_place (generated).
    shown = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False),
        Computed("CASE WHEN exact_place THEN geom ELSE ST_SnapToGrid(geom, 0.005) END", persisted=True),
        deferred=True,
    )
    visibility: Mapped[str] = mapped_column(Text, default="members", server_default="members")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    search = mapped_column(
        TSVECTOR,
        Computed(f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, title), 'A')"
                 f" || setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, description), 'B')", persisted=True),
        deferred=True,
    )


class Exchange(Base):
    """A service between a provider and a receiver, opened by a reply to a post."""

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    post_id: Mapped[int] = mapped_column(ForeignKey("exchange_posts.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    receiver_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    minutes: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text, default="proposed", server_default="proposed")
    done_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    done_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"), unique=True)
    # The receiver asked the solidarity fund to pay (they are supported).
    by_fund: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExchangeMessage(Base):
    """A short message in an exchange's thread."""

    __tablename__ = "exchange_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())


class ExchangeHistory(Base):
    """A change to a post, an exchange or a support: who, when, what."""

    __tablename__ = "exchange_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_posts.id"))
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"))
    support_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_supports.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    action: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")


class FundSteward(Base):
    """A member who stewards the cooperative's solidarity fund."""

    __tablename__ = "exchange_fund_stewards"

    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    appointed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Support(Base):
    """The fund's support of a member: proposed by one steward, active once a second approves."""

    __tablename__ = "exchange_supports"

    id: Mapped[int] = mapped_column(primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Visit(Base):
    """When a member last looked at the offers and needs (for "new since my last visit")."""

    __tablename__ = "exchange_visits"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
