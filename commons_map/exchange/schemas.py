"""Pydantic shapes of the exchange network over HTTP (the rules themselves live in the service)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commons_map.db import DbId, Minutes


class PostIn(BaseModel):
    """An offer or a need."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    title: str
    description: str = ""
    category: str
    minutes: Minutes = Field(description="an estimate, 1 to 1440 minutes")
    when: str = Field(default="", description="free text: 'samedi matin', 'en semaine'")
    starts_on: date | None = None
    ends_on: date | None = None
    place: dict[str, Any] | None = Field(default=None, description="a GeoJSON Point (WGS84), or null")
    exact_place: bool = Field(default=False, description="show the place exactly (else snapped to ~500 m)")
    visibility: str = "members"
    expires_in_days: int = Field(default=60, description="1 to 60 days (renewable)")


class PostPatch(BaseModel):
    """Changes to a post; ``renew`` pushes the expiry 60 days ahead, ``archived`` ends it."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    category: str | None = None
    minutes: Minutes | None = None
    when: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    place: dict[str, Any] | None = None
    exact_place: bool | None = None
    visibility: str | None = None
    renew: bool = False
    archived: bool | None = None


class ReplyIn(BaseModel):
    """A reply to a post: the minutes proposed (the post's estimate if left out) and a message."""

    model_config = ConfigDict(extra="forbid")

    minutes: Minutes | None = None
    message: str = ""


class MessageIn(BaseModel):
    """A message in an exchange's thread."""

    model_config = ConfigDict(extra="forbid")

    body: str


class GiftIn(BaseModel):
    """Hours given to the solidarity fund, by a member or (coordinators) from the cooperative account."""

    model_config = ConfigDict(extra="forbid")

    minutes: Minutes
    from_cooperative: bool = False
    idempotency_key: str


class SupportIn(BaseModel):
    """A steward proposes that the fund support a member."""

    model_config = ConfigDict(extra="forbid")

    member_id: DbId
    note: str = ""


class StewardIn(BaseModel):
    """A coordinator appoints a steward of the solidarity fund."""

    model_config = ConfigDict(extra="forbid")

    member_id: DbId
