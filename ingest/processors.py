"""Turning a filled form into records, through the services of the features that own them.

Each processor takes the form's values (leaf names; repeats as lists of dicts) and answers what
it recorded: ``{"kind": …, "ids": […]}``. Work logs enter as submitted and wait for a steward's
approval (nothing is credited before); harvests and soil samples go through the soil service;
an inventory check changes the commons' state through the register. ``source_ref`` is always
the instanceID (with the repeat index for repeated items), so a resend never records twice.
An edit (``previous``: the records of the version named by deprecatedID) replaces them: a work
log while it is not approved, harvests and soil samples through the soil service's
``replace_*``, the commons' state by a new update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from commons_map.errors import ValidationFailed
from commons_map.people.models import Member

Values = dict[str, Any]
Processor = Callable[..., dict[str, Any]]


def parse_geopoint(raw: str | None, *, field: str) -> dict[str, Any] | None:
    """'lat lon alt accuracy' (ODK order) as a GeoJSON Point [lon, lat]; None when empty."""
    if raw is None or not raw.strip():
        return None
    parts = raw.split()
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise ValidationFailed("openrosa.geopoint_format", field=field, raw=raw) from exc
    if len(nums) < 2 or not all(math.isfinite(n) for n in nums):
        raise ValidationFailed("openrosa.geopoint_format", field=field, raw=raw)
    lat, lon = nums[0], nums[1]
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationFailed("openrosa.geopoint_range", field=field, lat=lat, lon=lon)
    return {"type": "Point", "coordinates": [lon, lat]}


def geopoint_accuracy(raw: str | None) -> float | None:
    """The accuracy (metres) of an ODK geopoint, when given."""
    parts = (raw or "").split()
    try:
        return float(parts[3]) if len(parts) >= 4 else None
    except ValueError:
        return None


def parse_geoshape(raw: str | None, *, field: str) -> dict[str, Any] | None:
    """An ODK geoshape ('lat lon alt acc;…', closed) as a GeoJSON Polygon; None when empty."""
    if raw is None or not raw.strip():
        return None
    points = [p.strip() for p in raw.strip().strip(";").split(";") if p.strip()]
    coords = []
    for p in points:
        pt = parse_geopoint(p, field=field)
        assert pt is not None
        coords.append(pt["coordinates"])
    if len(coords) >= 3 and coords[0] != coords[-1]:
        coords.append(coords[0])
    if len(coords) < 4:
        raise ValidationFailed("openrosa.shape_points", field=field)
    return {"type": "Polygon", "coordinates": [coords]}


def _commons_id(values: Values) -> int:
    raw = (values.get("commons") or "").strip()
    if not raw.startswith("c") or not raw[1:].isdigit():
        raise ValidationFailed("openrosa.not_a_commons", field="commons", raw=raw)
    return int(raw[1:])


def _date(values: Values, name: str) -> date:
    raw = (values.get(name) or "").strip()
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise ValidationFailed("openrosa.not_a_date", field=name, raw=raw) from exc


def _number(values: Values, name: str) -> float | None:
    raw = (values.get(name) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValidationFailed("openrosa.not_a_number", field=name, raw=raw) from exc
    if not math.isfinite(value):
        raise ValidationFailed("openrosa.not_finite", field=name, raw=raw)
    return value


def _replaced(previous: dict[str, Any] | None, kind: str) -> list[int]:
    """The ids of the records an edit replaces (none when the old version made no such record)."""
    if previous and previous.get("kind") == kind:
        return [int(i) for i in previous.get("ids") or []]
    return []


def worklog(session: Session, *, member: Member, values: Values, instance_id: str,
            previous: dict[str, Any] | None) -> dict[str, Any]:
    """A work log, submitted for approval (an edit changes the log while it is not approved)."""
    from commons_map.worklog.schemas import WorkLogIn, WorkLogPatch
    from commons_map.worklog.service import log_work, update_work_log

    hours = _number(values, "hours")
    if hours is None:
        raise ValidationFailed("openrosa.hours_missing", field="hours")
    fields = dict(commons_id=_commons_id(values), work_date=_date(values, "work_date"),
                  minutes=int(round(hours * 60)), activity=(values.get("activity") or "").strip(),
                  notes=(values.get("notes") or "").strip(),
                  location=parse_geopoint(values.get("location"), field="location"))
    old = _replaced(previous, "work_log")
    if old:
        log = update_work_log(session, actor=member, work_log_id=old[0], patch=WorkLogPatch(**fields))
    else:
        log = log_work(session, actor=member, data=WorkLogIn(**fields, source_ref=instance_id))
    return {"kind": "work_log", "ids": [log.id], "state": log.state}


def harvest(session: Session, *, member: Member, values: Values, instance_id: str,
            previous: dict[str, Any] | None) -> dict[str, Any]:
    """One harvest per crop of the repeat; an edit replaces the harvests of the version it names."""
    from commons_map.soil.schemas import HarvestIn
    from commons_map.soil.service import record_harvest, replace_harvests

    items = values.get("crops") or []
    if not items:
        raise ValidationFailed("openrosa.no_crop", field="crops")
    commons_id, day = _commons_id(values), _date(values, "harvested_on")
    data = []
    for i, item in enumerate(items, 1):
        crop = (item.get("crop") or "").strip()
        if crop == "autre":  # forms served before the crop catalogue offered "other…" and a name
            crop = (item.get("crop_other") or "").strip()
        count = _number(item, "count")
        data.append(HarvestIn(
            commons_id=commons_id, crop=crop, harvested_on=day,
            weight_kg=_number(item, "weight_kg"), count=int(count) if count is not None else None,
            destination=(item.get("destination") or None), harvested_by_id=member.id,
            notes=(values.get("notes") or "").strip(), source_ref=f"{instance_id}/crops[{i}]"))
    old = _replaced(previous, "harvest")
    if old:
        harvests = replace_harvests(session, actor=member, harvest_ids=old, data=data)
    else:
        harvests = [record_harvest(session, actor=member, data=d) for d in data]
    return {"kind": "harvest", "ids": [h.id for h in harvests]}


def soil(session: Session, *, member: Member, values: Values, instance_id: str,
         previous: dict[str, Any] | None) -> dict[str, Any]:
    """A soil sample and its measurements; an edit replaces the sample of the version it names."""
    from commons_map.soil.models import Indicator
    from commons_map.soil.schemas import MeasurementIn, SampleIn
    from commons_map.soil.service import record_sample, replace_sample

    measures = []
    for i, item in enumerate(values.get("measures") or [], 1):
        code = (item.get("indicator") or "").strip()
        unit_choice = (item.get("unit") or "").strip()
        ind = session.get(Indicator, code)
        unit = unit_choice
        if ind is not None:
            from ingest.xforms import unit_choice as choice_of

            unit = next((u for u in ind.units if choice_of(code, u) == unit_choice), unit_choice)
        value = _number(item, "value")
        if value is None:
            raise ValidationFailed("openrosa.value_missing", field=f"measures.{i}.value")
        measures.append(MeasurementIn(indicator=code, value=value, unit=unit,
                                      depth_top_cm=_number(item, "depth_top_cm"),
                                      depth_bottom_cm=_number(item, "depth_bottom_cm")))
    if not measures:
        raise ValidationFailed("openrosa.no_measure", field="measures")
    data = SampleIn(
        sampled_on=_date(values, "sampled_on"), point=parse_geopoint(values.get("point"), field="point"),
        commons_id=_commons_id(values), sampled_by_id=member.id, notes=(values.get("notes") or "").strip(),
        source_ref=instance_id, measurements=measures)
    old = _replaced(previous, "soil_sample")
    if old:
        sample = replace_sample(session, actor=member, sample_id=old[0], data=data)
    else:
        sample = record_sample(session, actor=member, data=data)
    return {"kind": "soil_sample", "ids": [sample.id]}


def inventory(session: Session, *, member: Member, values: Values, instance_id: str,
              previous: dict[str, Any] | None) -> dict[str, Any]:
    """The state found for a tool, a place or a piece of land becomes the commons' state."""
    from commons_map.register.schemas import CommonsPatch
    from commons_map.register.service import update_commons

    state = (values.get("state") or "").strip()
    commons = update_commons(session, actor=member, commons_id=_commons_id(values),
                             patch=CommonsPatch(state=state or None))  # type: ignore[arg-type]
    return {"kind": "commons_state", "ids": [commons.id], "state": commons.state}


PROCESSORS: dict[str, Processor] = {
    "commons_worklog": worklog,
    "commons_harvest": harvest,
    "commons_soil": soil,
    "commons_inventory": inventory,
}
