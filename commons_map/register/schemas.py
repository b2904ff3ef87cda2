"""Pydantic shapes of what comes into and goes out of the register."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commons_map.db import DbId

Visibility = Literal["public", "members", "private"]
State = Literal["active", "restoring", "fallow", "needs_repair", "out_of_service", "lost"]
Tenure = Literal["owned", "lent", "municipal_agreement", "lease", "commons_trust", "other"]
Precision = Literal["exact", "approximate"]


class CommonsIn(BaseModel):
    """A new commons."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=60, description="A kind code from /api/v1/kinds")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON geometry in WGS84 (longitude, latitude)"
    )
    parent_id: DbId | None = None
    kept_at_id: DbId | None = None
    state: State = "active"
    rules_of_use: str = ""
    tenure: Tenure = "owned"
    tenure_end: date | None = None
    tenure_notes: str = ""
    visibility: Visibility | None = None
    location_precision: Precision = "exact"
    external_id: str | None = Field(default=None, max_length=200)
    steward_ids: list[DbId] = Field(default_factory=list)


class CommonsPatch(BaseModel):
    """Changes to a commons; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, min_length=1, max_length=60)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    geometry: dict[str, Any] | None = None
    parent_id: DbId | None = None
    kept_at_id: DbId | None = None
    state: State | None = None
    rules_of_use: str | None = None
    tenure: Tenure | None = None
    tenure_end: date | None = None
    tenure_notes: str | None = None
    visibility: Visibility | None = None
    location_precision: Precision | None = None
    external_id: str | None = None
    steward_ids: list[DbId] | None = None


class KindIn(BaseModel):
    """A new kind of commons, added by a coordinator for their cooperative."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$",
                      description="2 to 40 characters: lower-case letters, digits, underscore")
    label_fr: str = Field(min_length=1, max_length=80)
    label_en: str = Field(min_length=1, max_length=80)
    category: Literal["land", "garden", "bed", "tool", "housing", "place"]
    geometry: Literal["area", "point", "any"]
    parent_kinds: list[str] = Field(default_factory=list, max_length=20)
    requires_parent: bool = False
    may_be_kept: bool = False
    default_visibility: Literal["public", "members", "private"] = "members"


class KindOut(BaseModel):
    """A kind of commons."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label_fr: str
    label_en: str
    category: str
    geometry: str
    parent_kinds: list[str]
    requires_parent: bool
    may_be_kept: bool
    default_visibility: str
    cooperative_id: int | None = None


class Feature(BaseModel):
    """A GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: int
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection with paging figures."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    numberReturned: int
    numberMatched: int
    limit: int
    offset: int


class HistoryOut(BaseModel):
    """A change to a commons."""

    at: str
    member: str | None
    action: str
    changes: dict[str, Any]
    withheld: list[str] = []  # fields whose values the reader may not see (kept, not shown)
