"""Pydantic shapes of clearing lines over HTTP."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LineIn(BaseModel):
    """A clearing line proposed to another cooperative."""

    model_config = ConfigDict(extra="forbid")

    partner: str = Field(description="the other cooperative's slug", max_length=100)
    limit_minutes: int = Field(description="how far each cooperative may owe the other, in minutes")


class LimitIn(BaseModel):
    """A new limit: lower at once, or a raise the other side accepts."""

    model_config = ConfigDict(extra="forbid")

    limit_minutes: int


class LineOut(BaseModel):
    """A line as one side sees it."""

    id: int
    state: str
    partner: str | None
    partner_name: str | None
    proposed_here: bool
    limit_minutes: int
    proposed_limit_minutes: int | None
    we_owe_minutes: int
    they_owe_minutes: int
    created_at: datetime
    accepted_at: datetime | None
