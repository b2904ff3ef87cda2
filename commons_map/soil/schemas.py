"""Pydantic shapes of soil observations, practices and harvests, in and out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commons_map.db import DbId
from commons_map.fieldforms.schemas import AttachmentOut

Destination = Literal[
    "members", "shared_meals", "households_in_need", "other_cooperatives", "seed_saving", "compost"
]


class MeasurementIn(BaseModel):
    """One value of one indicator at one depth, as measured (never converted on the way in)."""

    model_config = ConfigDict(extra="forbid")

    indicator: str = Field(min_length=1, max_length=60, description="an indicator code of the catalogue")
    value: float = Field(allow_inf_nan=False)
    unit: str = Field(min_length=1, max_length=40, description="one of the indicator's units")
    method: str | None = Field(default=None, max_length=60)
    depth_top_cm: float | None = Field(default=None, allow_inf_nan=False)
    depth_bottom_cm: float | None = Field(default=None, allow_inf_nan=False)
    confirm_out_of_range: bool = Field(
        default=False, description="keep a value outside the plausible range, on purpose"
    )
    note: str = Field(default="", max_length=2000)


class SampleIn(BaseModel):
    """A sampling event: where, when, who, and its measurements (a lab report is one sample)."""

    model_config = ConfigDict(extra="forbid")

    sampled_on: date
    point: dict[str, Any] | None = Field(default=None, description="GeoJSON Point in WGS84")
    commons_id: DbId | None = Field(
        default=None, description="the parcel; found from the point when left out"
    )
    sampled_by_id: DbId | None = None
    sampler_name: str = Field(default="", max_length=200)
    lab: str = Field(default="", max_length=200)
    lab_report_ref: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=5000)
    source_ref: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="an external id (e.g. an ODK instanceID): a resend never makes a duplicate",
    )
    measurements: list[MeasurementIn] = Field(min_length=1, max_length=500)


class SampleCorrectionIn(BaseModel):
    """A sample's corrected values (all of them, as when it was recorded) and why it is corrected.

    The former values stay in the sample's history. The external id (``source_ref``) is kept.
    """

    model_config = ConfigDict(extra="forbid")

    sampled_on: date
    point: dict[str, Any] | None = Field(default=None, description="GeoJSON Point in WGS84")
    commons_id: DbId | None = Field(default=None, description="the parcel; found from the point when left out")
    sampled_by_id: DbId | None = None
    sampler_name: str = Field(default="", max_length=200)
    lab: str = Field(default="", max_length=200)
    lab_report_ref: str = Field(default="", max_length=200)
    notes: str = Field(default="", max_length=5000)
    measurements: list[MeasurementIn] = Field(min_length=1, max_length=500)
    reason: str = Field(default="", max_length=2000, description="why it is corrected (kept in its history)")


class WithdrawalIn(BaseModel):
    """Why a sample is withdrawn (kept in its history; the sample leaves the figures)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class PracticeIn(BaseModel):
    """A practice applied to a parcel or a bed."""

    model_config = ConfigDict(extra="forbid")

    commons_id: DbId
    practice: str = Field(min_length=1, max_length=60)
    started_on: date
    ended_on: date | None = None
    quantity: float | None = Field(default=None, allow_inf_nan=False)
    unit: str | None = Field(default=None, max_length=40)
    details: str = Field(default="", max_length=5000)


class HarvestIn(BaseModel):
    """A harvest: crop, weight in kg (fresh) or a count, where it came from and where it went.

    ``destinations`` maps each destination to its share (kg, or items for a counted harvest); a
    single ``destination`` sends the whole harvest there.
    """

    model_config = ConfigDict(extra="forbid")

    commons_id: DbId
    crop: str = Field(min_length=1, max_length=100,
                      description="a crop of the catalogue: its code, or its French or English name")
    harvested_on: date
    weight_kg: float | None = Field(default=None, allow_inf_nan=False)
    count: int | None = None
    harvested_by_id: DbId | None = None
    destination: Destination | None = None
    destinations: dict[Destination, float] | None = None
    notes: str = Field(default="", max_length=5000)
    confirm_implausible: bool = Field(
        default=False, description="keep a weight beyond any plausible yield for the area, on purpose"
    )
    source_ref: str | None = Field(default=None, min_length=1, max_length=200)


class IndicatorIn(BaseModel):
    """A new indicator for the cooperative's catalogue."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,59}$")
    label_fr: str = Field(min_length=1, max_length=200)
    label_en: str = Field(min_length=1, max_length=200)
    units: dict[str, float] = Field(
        min_length=1, description="unit -> factor to the canonical unit; the first unit is canonical"
    )
    range_min: float = Field(allow_inf_nan=False)
    range_max: float = Field(allow_inf_nan=False)
    methods: list[str] = Field(default_factory=list)
    measured: Literal["field", "lab", "both"] = "both"
    depth_required: bool = False
    better: Literal["higher", "lower"] | None = None
    description_en: str = ""


class IndicatorOut(BaseModel):
    """An indicator of the catalogue."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label_fr: str
    label_en: str
    canonical_unit: str
    units: dict[str, float]
    range_min: float
    range_max: float
    methods: list[str]
    measured: str
    depth_required: bool
    better: str | None
    description_en: str
    cooperative_id: DbId | None


class MeasurementOut(BaseModel):
    """A raw measurement as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    indicator_code: str
    value: float
    unit: str
    method: str | None
    depth_top_cm: float | None
    depth_bottom_cm: float | None
    confirmed_out_of_range: bool
    note: str


class SampleOut(BaseModel):
    """A sample and its measurements."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    commons_id: DbId
    sampled_on: date
    parcel_from_point: bool
    point: dict[str, Any] | None = None
    sampled_by_id: DbId | None
    sampler_name: str
    lab: str
    lab_report_ref: str
    notes: str
    source_ref: str | None
    measurements: list[MeasurementOut]
    withdrawn_at: datetime | None = None
    withdrawn_reason: str = ""


class SampleHistoryOut(BaseModel):
    """One correction or withdrawal of a sample, with the values before (and after)."""

    id: int
    sample_id: DbId
    action: Literal["corrected", "withdrawn"]
    member_id: DbId | None
    at: datetime
    reason: str
    before: dict[str, Any]
    after: dict[str, Any] | None
    attachments: list[AttachmentOut] | None = Field(
        default=None, description="photos sent with its field form (on the item; not listed in lists)")


class PracticeOut(BaseModel):
    """A practice as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    commons_id: DbId
    practice: str
    started_on: date
    ended_on: date | None
    quantity: float | None
    unit: str | None
    details: str


class HarvestOut(BaseModel):
    """A harvest as stored, with its destinations."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    commons_id: DbId
    crop: str = Field(description="the crop's code in the catalogue (/api/v1/soil/crops)")
    crop_label: dict[str, str] = Field(description="the crop's names: {'fr': …, 'en': …}")
    harvested_on: date
    weight_kg: float | None
    count: int | None
    harvested_by_id: DbId | None
    notes: str
    confirmed_implausible: bool
    source_ref: str | None
    destinations: dict[str, float]
    attachments: list[AttachmentOut] | None = Field(
        default=None, description="photos sent with its field form (on the item; not listed in lists)")


class CropIn(BaseModel):
    """A new crop for the cooperative's catalogue."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=60, description="lower case letters, digits and _, e.g. kiwano")
    label_fr: str = Field(min_length=1, max_length=200)
    label_en: str = Field(min_length=1, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=20,
                               description="other names the crop goes by (e.g. regional names)")


class CropPatch(BaseModel):
    """Retire, bring back or rename one of the cooperative's own crops."""

    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    label_fr: str | None = Field(default=None, min_length=1, max_length=200)
    label_en: str | None = Field(default=None, min_length=1, max_length=200)


class CropOut(BaseModel):
    """A crop of the catalogue (shared: no cooperative; or the caller's cooperative's own)."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label_fr: str
    label_en: str
    aliases: list[str]
    active: bool
    shared: bool
