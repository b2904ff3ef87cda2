"""The three field forms (work, harvest, soil observation): from form fields to the services.

The same functions serve a form posted by the page and an entry synced from the phone's
offline queue, so both obey the same rules and give the same errors. Each entry carries an
idempotency key that becomes the record's ``source_ref``, unique per cooperative in the
database: a resent entry never makes a second record, and never changes the first one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.i18n import gettext as _
from commons_map.errors import ValidationFailed, collector, input_problem
from commons_map.people.models import Cooperative, Member

KINDS = ("work", "harvest", "soil")
KEY_RE = re.compile(r"^[A-Za-z0-9:._-]{8,120}$")

WORK_FIELDS = {
    "commons_id",
    "work_date",
    "duration",
    "start_time",
    "end_time",
    "activity",
    "notes",
    "lat",
    "with_member_ids",
}
HARVEST_FIELDS = {
    "commons_id",
    "harvested_on",
    "crop",
    "weight_kg",
    "count",
    "destination",
    "notes",
    "confirm_implausible",
    "destinations",
}
SOIL_FIELDS = {
    "commons_id",
    "sampled_on",
    "lat",
    "indicator",
    "value",
    "unit",
    "method",
    "depth_top_cm",
    "depth_bottom_cm",
    "notes",
    "confirm_out_of_range",
}
FIELDS = {"work": WORK_FIELDS, "harvest": HARVEST_FIELDS, "soil": SOIL_FIELDS}
ALIASES = {
    "work": {
        "minutes": "duration",
        "started_at": "start_time",
        "ended_at": "end_time",
        "location": "lat",
    },
    "harvest": {},
    "soil": {"point": "lat"},
}


@dataclass
class Saved:
    """What a field entry became."""

    kind: str
    id: int
    duplicate: bool


def number(
    problems: Any, fields: dict[str, str], name: str, *, integer: bool = False
) -> float | None:
    """A number typed with a decimal comma or point ("1,5" or "1.5"); None when left empty."""
    raw = (fields.get(name) or "").strip().replace("\u00a0", "").replace(" ", "")
    if not raw:
        return None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        problems.add(name, "form.not_a_number", value=raw)
        return None
    if integer:
        if value != int(value):
            problems.add(name, "form.not_whole", value=raw)
            return None
        return int(value)
    return value


def day(problems: Any, fields: dict[str, str], name: str, *, required: bool = True) -> date | None:
    """A date from an <input type=date> (YYYY-MM-DD)."""
    raw = (fields.get(name) or "").strip()
    if not raw:
        if required:
            problems.add(name, "form.empty")
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.add(name, "form.not_a_date", value=raw)
        return None


def clock(problems: Any, fields: dict[str, str], name: str) -> time | None:
    """A time of day from an <input type=time> (HH:MM)."""
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        problems.add(name, "form.not_a_time", value=raw)
        return None


def commons_id(problems: Any, fields: dict[str, str], *, required: bool = True) -> int | None:
    """The chosen commons."""
    raw = (fields.get("commons_id") or "").strip()
    if not raw:
        if required:
            problems.add("commons_id", "form.choose_commons")
        return None
    if not raw.isdigit():
        problems.add("commons_id", "form.not_a_commons", value=raw)
        return None
    return int(raw)


def point(problems: Any, fields: dict[str, str]) -> dict[str, Any] | None:
    """The phone's position as a GeoJSON Point, when it was shared."""
    lat = number(problems, fields, "lat")
    lon = number(problems, fields, "lon")
    if lat is None or lon is None:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        problems.add("lat", "form.position_range")
        return None
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


def _tz(session: Session, actor: Member) -> ZoneInfo:
    coop = session.get(Cooperative, actor.cooperative_id)
    return ZoneInfo(coop.timezone if coop and coop.timezone else "Europe/Paris")


def _true(fields: dict[str, str], name: str) -> bool:
    return (fields.get(name) or "").strip().lower() in ("1", "on", "true", "yes")


# --- work ---------------------------------------------------------------------------------------


def work_in(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Any:
    """A WorkLogIn from the work form's fields."""
    from commons_map.worklog.schemas import WorkLogIn

    problems = collector()
    cid = commons_id(problems, fields)
    on = day(problems, fields, "work_date")
    hours = number(problems, fields, "duration")
    start, end = clock(problems, fields, "start_time"), clock(problems, fields, "end_time")
    activity = (fields.get("activity") or "").strip()
    if not activity:
        problems.add("activity", "form.choose_activity")
    where = point(problems, fields)
    companions = [
        int(v) for v in str(fields.get("with_member_ids") or "").split(",") if v.strip().isdigit()
    ]
    problems.raise_if_any()
    tz = _tz(session, actor)
    started = datetime.combine(on, start, tz) if on and start else None
    ended = datetime.combine(on, end, tz) if on and end else None
    minutes = round(hours * 60) if hours is not None else None
    if started is not None and ended is not None and minutes is not None:
        minutes = None  # start and end say it all; the duration box is a convenience
    if started is None and ended is None and minutes is None:
        raise ValidationFailed("worklog.duration_missing", field="duration")
    return WorkLogIn(
        commons_id=cid,
        work_date=on,
        started_at=started,
        ended_at=ended,
        minutes=minutes,
        activity=activity,
        notes=(fields.get("notes") or "").strip(),
        location=where,
        with_member_ids=companions,
        source_ref=key,
    )


def save_work(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Saved:
    """Log the work (it waits for a steward's approval)."""
    from commons_map.worklog import service
    from commons_map.worklog.models import WorkLog

    data = work_in(session, actor, fields, key)
    before = _exists(session, WorkLog, actor, key)
    log = service.log_work(session, actor=actor, data=data)
    return Saved("work", log.id, before)


# --- harvest ------------------------------------------------------------------------------------


def harvest_in(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Any:
    """A HarvestIn from the harvest form's fields."""
    from commons_map.soil.schemas import HarvestIn

    problems = collector()
    cid = commons_id(problems, fields)
    on = day(problems, fields, "harvested_on")
    crop = (fields.get("crop") or "").strip()
    if not crop:
        problems.add("crop", "form.name_crop")
    weight = number(problems, fields, "weight_kg")
    count = number(problems, fields, "count", integer=True)
    problems.raise_if_any()
    destination = (fields.get("destination") or "").strip() or None
    try:
        return HarvestIn(
            commons_id=cid,
            crop=crop,
            harvested_on=on,
            weight_kg=weight,
            count=count,
            destination=destination,
            notes=(fields.get("notes") or "").strip(),
            confirm_implausible=_true(fields, "confirm_implausible"),
            source_ref=key,
        )
    except ValidationError as exc:
        raise _as_domain(exc) from exc


def save_harvest(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Saved:
    """Record the harvest."""
    from commons_map.soil import service
    from commons_map.soil.models import Harvest

    data = harvest_in(session, actor, fields, key)
    before = _exists(session, Harvest, actor, key)
    h = service.record_harvest(session, actor=actor, data=data)
    return Saved("harvest", h.id, before)


# --- soil ---------------------------------------------------------------------------------------


def soil_in(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Any:
    """A SampleIn with one measurement from the soil form's fields."""
    from commons_map.soil.schemas import MeasurementIn, SampleIn

    problems = collector()
    cid = commons_id(problems, fields, required=False)
    on = day(problems, fields, "sampled_on")
    where = point(problems, fields)
    indicator = (fields.get("indicator") or "").strip()
    if not indicator:
        problems.add("indicator", "form.choose_indicator")
    value = number(problems, fields, "value")
    if value is None and "value" not in {p.field for p in problems.problems}:
        problems.add("value", "form.empty")
    unit = (fields.get("unit") or "").strip()
    if ":" in unit:  # the unit select's values read "indicator:unit"
        unit = unit.split(":", 1)[1]
    if not unit:
        problems.add("unit", "form.choose_unit")
    top = number(problems, fields, "depth_top_cm")
    bottom = number(problems, fields, "depth_bottom_cm")
    if cid is None and where is None:
        problems.add("commons_id", "form.parcel_or_position")
    problems.raise_if_any()
    try:
        return SampleIn(
            sampled_on=on,
            point=where,
            commons_id=cid,
            sampled_by_id=actor.id,
            notes=(fields.get("notes") or "").strip(),
            source_ref=key,
            measurements=[
                MeasurementIn(
                    indicator=indicator,
                    value=value,
                    unit=unit,
                    method=(fields.get("method") or "").strip() or None,
                    depth_top_cm=top,
                    depth_bottom_cm=bottom,
                    confirm_out_of_range=_true(fields, "confirm_out_of_range"),
                )
            ],
        )
    except ValidationError as exc:
        raise _as_domain(exc) from exc


def save_soil(session: Session, actor: Member, fields: dict[str, str], key: str | None) -> Saved:
    """Record the soil observation."""
    from commons_map.soil import service
    from commons_map.soil.models import Sample

    data = soil_in(session, actor, fields, key)
    before = _exists(session, Sample, actor, key)
    s = service.record_sample(session, actor=actor, data=data)
    return Saved("soil", s.id, before)


SAVERS = {"work": save_work, "harvest": save_harvest, "soil": save_soil}


def _exists(session: Session, model: Any, actor: Member, key: str | None) -> bool:
    if not key:
        return False
    return (
        session.scalar(
            select(model.id).where(
                model.cooperative_id == actor.cooperative_id, model.source_ref == key
            )
        )
        is not None
    )


def _as_domain(exc: ValidationError) -> ValidationFailed:
    problems = collector()
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        problems.problems.append(input_problem(err, loc[-1] if loc else ""))
    try:
        problems.raise_if_any()
    except ValidationFailed as vf:
        return vf
    return ValidationFailed("input.invalid")


def check_key(key: Any) -> str:
    """An idempotency key made by the phone (a UUID or similar)."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise ValidationFailed("form.key_form", field="key")
    return key


def next_step(kind: str) -> str:
    """What happens next, said to the member after saving."""
    if kind == "work":
        return _(
            "Saved. Your hours now wait for a steward of this commons to approve them; "
            "once approved they are credited to your time account."
        )
    if kind == "harvest":
        return _(
            "Saved. The harvest counts in this garden's figures and in the cooperative's yearly report."
        )
    return _("Saved. The observation is now part of this parcel's soil figures.")
