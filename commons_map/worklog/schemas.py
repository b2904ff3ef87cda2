"""Pydantic shapes of work logs and activities.

The input shapes check types only: the rules (positive duration, at most 16 hours, no future
date, a commons the member may see...) live in the service, so that the API, the CLI and the
field-form importers get the same domain errors naming the field and the rule.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commons_map.db import DbId, Minutes
from commons_map.fieldforms.schemas import AttachmentOut


class WorkLogIn(BaseModel):
    """Work done on a commons: a date and either start and end times or a duration."""

    model_config = ConfigDict(extra="forbid")

    commons_id: DbId
    work_date: date
    started_at: datetime | None = Field(default=None, description="timezone-aware start")
    ended_at: datetime | None = Field(default=None, description="timezone-aware end")
    minutes: Minutes | None = Field(default=None, description="duration, when no start and end are given")
    activity: str = Field(description="an activity code from /api/v1/activities")
    notes: str = ""
    location: dict[str, Any] | None = Field(default=None, description="GeoJSON Point (lon, lat)")
    with_member_ids: list[DbId] = Field(default_factory=list)
    source_ref: str | None = Field(default=None, description="an external id, e.g. an ODK instanceID")


class WorkLogPatch(BaseModel):
    """Changes to a work log that is not approved yet; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    commons_id: DbId | None = None
    work_date: date | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    minutes: Minutes | None = None
    activity: str | None = None
    notes: str | None = None
    location: dict[str, Any] | None = None
    with_member_ids: list[DbId] | None = None


class RejectIn(BaseModel):
    """Why a work log is rejected."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""


class CorrectionIn(BaseModel):
    """A corrected version of an approved log, and why."""

    model_config = ConfigDict(extra="forbid")

    reason: str = ""
    log: WorkLogIn


class ActivityIn(BaseModel):
    """A new activity in the catalogue."""

    model_config = ConfigDict(extra="forbid")

    code: str
    label_fr: str
    label_en: str


class ActivityPatch(BaseModel):
    """Changes to an activity; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    label_fr: str | None = None
    label_en: str | None = None


class ActivityOut(BaseModel):
    """An activity of the catalogue."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label_fr: str
    label_en: str
    active: bool


class WorkLogOut(BaseModel):
    """A work log as members see it."""

    id: int
    member_id: DbId
    member: str
    commons_id: DbId
    commons: str
    work_date: date
    started_at: datetime | None
    ended_at: datetime | None
    minutes: int
    activity: str
    activity_label_fr: str
    activity_label_en: str
    notes: str
    location: dict[str, Any] | None
    with_member_ids: list[DbId]
    state: str
    decided_by_id: DbId | None
    decided_at: datetime | None
    rejection_reason: str | None
    source_ref: str | None
    corrects_id: DbId | None
    credit_transfer_id: DbId | None
    created_at: datetime
    attachments: list[AttachmentOut] | None = Field(
        default=None, description="photos sent with its field form (on the item; not listed in lists)")
