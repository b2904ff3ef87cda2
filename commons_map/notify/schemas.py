"""What the notifications API reads and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class NotificationOut(BaseModel):
    """One notification, its sentence rendered in the reader's language."""

    id: int
    kind: str
    code: str
    params: dict[str, Any]
    text: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class InboxOut(BaseModel):
    """A page of the inbox and the unread count."""

    items: list[NotificationOut]
    unread: int


class PreferencesIn(BaseModel):
    """Channels per kind, timezone, digest hour: each optional."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[str, Literal["inbox", "email", "digest"]] | None = None
    timezone: str | None = Field(default=None, max_length=64)
    digest_hour: int | None = Field(default=None, ge=0, le=23)


class PreferencesOut(BaseModel):
    """A member's choices."""

    channels: dict[str, str]
    timezone: str
    digest_hour: int


class DeliveryOut(BaseModel):
    """An e-mail that did not go out, for coordinators."""

    id: int
    member_id: int
    kind: str
    address: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
