"""What a coordinator sends to list a partner."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PartnerIn(BaseModel):
    """A partner: the URL of its OGC API - Features landing page; a name and a licence when its own
    documents do not say them (or say them otherwise than the cooperative wants to show)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(default=None, max_length=200)
    licence: str | None = Field(default=None, max_length=200)
