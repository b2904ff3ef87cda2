"""The rules of soil observations, practices and harvests, and the per-parcel figures.

Raw values are stored as given (value, unit, method, depth); every conversion happens on the way
out, in the computations (``stocks.py``), never over the stored value.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, any_, bindparam, func, or_, select, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.geo import parse_geojson_geometry, to_ewkt
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of, is_member_of, require_coordinator, require_member
from commons_map.register.models import Commons, CommonsKind
from commons_map.register.service import get_commons, visible_clause
from commons_map.settings import get_settings
from commons_map.soil import stocks
from commons_map.soil.crops import find_crop, list_crops
from commons_map.soil.models import Harvest, HarvestShare, Indicator, Measurement, Practice, Sample, SampleHistory
from commons_map.soil.schemas import (
    HarvestIn,
    IndicatorIn,
    MeasurementIn,
    PracticeIn,
    SampleCorrectionIn,
    SampleIn,
)
from commons_map.soil.status import STATUSES, Status, Trend, regeneration_status

log = logging.getLogger(__name__)

PARCEL_CATEGORIES = ("land", "garden", "bed")
# One harvest entry implying more than this many kg per m2 of its bed is refused unless confirmed
# (community gardens yield about 3-6 kg/m2 in a whole year: SOIL.md).
MAX_KG_PER_M2_PER_ENTRY = 40.0
# What may be recorded on a parcel, and the code refusing it elsewhere.
ON_PARCELS = {"samples": "soil.samples_on_parcels", "practices": "soil.practices_on_parcels",
              "harvests": "soil.harvests_on_parcels"}
# The depth the stocks and their changes are reported to (IPCC 2006 Vol. 4 Ch. 2).
STOCK_DEPTH_CM = 30.0

PRACTICES: dict[str, dict[str, Any]] = {
    "mulch": {"fr": "Paillage", "en": "Mulch", "units": ["t", "kg", "m3", "cm"]},
    "compost": {"fr": "Apport de compost", "en": "Compost", "units": ["t", "kg", "m3"]},
    "manure": {"fr": "Apport de fumier", "en": "Manure", "units": ["t", "kg", "m3"]},
    "biochar": {"fr": "Biochar", "en": "Biochar", "units": ["t", "kg"]},
    "cover_crop": {"fr": "Engrais vert / couvert", "en": "Cover crop", "units": ["kg seed", "m2"]},
    "hedge": {"fr": "Plantation de haie", "en": "Hedge planted", "units": ["m", "plants"]},
    "trees_planted": {"fr": "Arbres plantés", "en": "Trees planted", "units": ["trees"]},
    "no_dig_conversion": {"fr": "Passage en non-travail du sol", "en": "No-dig conversion", "units": ["m2"]},
    "grazing": {"fr": "Pâturage tournant", "en": "Rotational grazing", "units": ["animal days", "LU days"]},
    "tillage": {"fr": "Travail du sol", "en": "Tillage", "units": ["m2", "cm"]},
    "fallow": {"fr": "Jachère", "en": "Fallow", "units": ["m2"]},
    "other": {"fr": "Autre pratique", "en": "Other practice", "units": []},
}

DESTINATION_LABELS: dict[str, dict[str, str]] = {
    "members": {"fr": "Membres", "en": "Members"},
    "shared_meals": {"fr": "Repas partagés", "en": "Shared meals"},
    "households_in_need": {"fr": "Foyers dans le besoin", "en": "Households in need"},
    "other_cooperatives": {"fr": "Autres coopératives", "en": "Other cooperatives"},
    "seed_saving": {"fr": "Semences", "en": "Seed saving"},
    "compost": {"fr": "Compost", "en": "Compost"},
}


# --- the indicator catalogue ----------------------------------------------------------------------


def list_indicators(session: Session, *, cooperative_id: int | None = None) -> list[Indicator]:
    """The shipped indicators and those the cooperative added, by code."""
    cond = Indicator.cooperative_id.is_(None)
    if cooperative_id is not None:
        cond = or_(cond, Indicator.cooperative_id == cooperative_id)
    return list(session.scalars(select(Indicator).where(cond).order_by(Indicator.code)))


def add_indicator(session: Session, *, actor: Member, data: IndicatorIn) -> Indicator:
    """A new indicator in the catalogue of the actor's cooperative (coordinators)."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    if session.get(Indicator, data.code) is not None:
        problems.add("code", "soil.indicator_exists", code=data.code)
    if data.range_min > data.range_max:
        problems.add("range_min", "soil.range_inverted", range_min=data.range_min, range_max=data.range_max)
    for unit, factor in data.units.items():
        if not unit.strip():
            problems.add("units", "soil.unit_empty")
        if not (factor > 0 and math.isfinite(factor)):
            problems.add("units", "soil.unit_factor", unit=unit)
    first_unit = next(iter(data.units))
    if data.units[first_unit] != 1:
        problems.add("units", "soil.first_unit_factor", unit=first_unit)
    problems.raise_if_any()
    ind = Indicator(
        code=data.code, cooperative_id=actor.cooperative_id, label_fr=data.label_fr, label_en=data.label_en,
        canonical_unit=first_unit, units=dict(data.units), range_min=data.range_min, range_max=data.range_max,
        methods=list(data.methods), measured=data.measured, depth_required=data.depth_required,
        better=data.better, description_en=data.description_en,
    )
    session.add(ind)
    session.flush()
    return ind


def to_canonical(indicator: Indicator, value: float, unit: str) -> float:
    """The value in the indicator's canonical unit (for computations only)."""
    return value * float(indicator.units[unit])


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _range_in(indicator: Indicator, unit: str) -> tuple[float, float]:
    factor = float(indicator.units[unit])
    return indicator.range_min / factor, indicator.range_max / factor


# --- checks on the way in --------------------------------------------------------------------------


def _today(session: Session, cooperative_id: int) -> date:
    tz = session.scalar(select(Cooperative.timezone).where(Cooperative.id == cooperative_id))
    return datetime.now(ZoneInfo(tz or get_settings().default_timezone)).date()


def _check_date(problems: Any, session: Session, cooperative_id: int, name: str, value: date) -> None:
    today = _today(session, cooperative_id)
    if value > today:
        problems.add(name, "soil.date_in_future", value=value, today=today)


def _check_member(problems: Any, session: Session, cooperative_id: int, name: str, member_id: int | None) -> None:
    if member_id is None:
        return
    found = session.scalar(
        select(Member.id).where(Member.id == member_id, Member.cooperative_id == cooperative_id)
    )
    if found is None:
        problems.add(name, "soil.no_member", member_id=member_id)


# What no soil can hold, in the indicator's canonical unit: (low, low allowed, high, high allowed).
# Confirming lets an unusual value through (``confirm_out_of_range``), never one of these.
PHYSICAL_LIMITS: dict[str, tuple[float, bool, float, bool]] = {
    "soc": (0, True, 100, True), "som": (0, True, 100, True),
    "bulk_density": (0, False, 2.65, True),  # above mineral particle density (quartz 2.65 g/cm3)
    "coarse_fragments": (0, True, 100, False), "fine_earth_mass": (0, False, math.inf, False),
    "core_volume": (0, False, math.inf, False), "ph": (0, True, 14, True),
    "aggregate_stability_wsa": (0, True, 100, True), "sand": (0, True, 100, True),
    "silt": (0, True, 100, True), "clay": (0, True, 100, True),
    "infiltration": (0, False, math.inf, False),
}
"""Counts, indices and concentrations not listed are at least 0."""


def _physically_possible(code: str, canonical: float) -> tuple[bool, float, float]:
    low, low_in, high, high_in = PHYSICAL_LIMITS.get(code, (0, True, math.inf, False))
    ok = (canonical >= low if low_in else canonical > low) and (canonical <= high if high_in else canonical < high)
    return ok, low, high


def check_measurement(
    problems: Any, indicators: dict[str, Indicator], i: int, m: MeasurementIn
) -> None:
    """Add to ``problems`` what is wrong with one measurement (indicator, unit, method, depth, range)."""
    where = f"measurements.{i}"  # the dotted path the API gives pydantic's own problems
    ind = indicators.get(m.indicator)
    if ind is None:
        known = sorted(indicators)
        problems.add(f"{where}.indicator", "soil.unknown_indicator", indicator=m.indicator, known=known)
        return
    code = ind.code
    if m.unit not in ind.units:
        problems.add(f"{where}.unit", "soil.unit_unfit", indicator=code, value=m.value, unit=m.unit, label=ind.label_en,
                     units=sorted(ind.units, key=lambda u: u != ind.canonical_unit))
    if m.method is not None and ind.methods and m.method not in ind.methods:
        problems.add(f"{where}.method", "soil.method_unknown", indicator=code, method=m.method,
                     methods=list(ind.methods))
    top, bottom = m.depth_top_cm, m.depth_bottom_cm
    if (top is None) != (bottom is None):
        problems.add(f"{where}.depth_bottom_cm", "soil.depth_both", indicator=code)
    elif top is not None and bottom is not None:
        if top < 0:
            problems.add(f"{where}.depth_top_cm", "soil.depth_negative", indicator=code, top=top)
        if bottom <= top:
            problems.add(f"{where}.depth_bottom_cm", "soil.depth_inverted", indicator=code, bottom=bottom, top=top)
        if bottom > 500:
            problems.add(f"{where}.depth_bottom_cm", "soil.depth_too_deep", indicator=code, bottom=bottom)
    elif ind.depth_required:
        problems.add(f"{where}.depth_top_cm", "soil.depth_needed", indicator=code)
    if m.unit in ind.units:
        canonical = to_canonical(ind, m.value, m.unit)
        possible, low, high = _physically_possible(code, canonical)
        if not possible:
            factor = float(ind.units[m.unit])
            if math.isfinite(high):
                problems.add(f"{where}.value", "soil.physically_impossible", indicator=code, value=m.value,
                             unit=m.unit, low=float(_fmt(low / factor)), high=float(_fmt(high / factor)))
            else:
                problems.add(f"{where}.value", "soil.physically_impossible_low", indicator=code, value=m.value,
                             unit=m.unit)
            return
    if m.unit in ind.units and not m.confirm_out_of_range:
        canonical = to_canonical(ind, m.value, m.unit)
        if not ind.range_min <= canonical <= ind.range_max:
            lo, hi = _range_in(ind, m.unit)
            problems.add(f"{where}.value", "soil.out_of_range", indicator=code, value=m.value, unit=m.unit,
                         low=float(_fmt(lo)), high=float(_fmt(hi)))


def _parcel_kinds() -> Any:
    return select(CommonsKind.code).where(CommonsKind.category.in_(PARCEL_CATEGORIES))


def find_parcel(session: Session, *, actor: Member | None, cooperative_id: int, point_ewkt: str) -> Commons | None:
    """The smallest land, garden or bed polygon of the cooperative that the point falls in."""
    pt = func.ST_GeomFromEWKT(point_ewkt)
    return session.scalars(
        select(Commons)
        .where(
            Commons.cooperative_id == cooperative_id,
            Commons.archived_at.is_(None),
            Commons.kind_code.in_(_parcel_kinds()),
            Commons.area_m2.is_not(None),
            func.ST_Intersects(Commons.geom, pt),
            visible_clause(actor, Commons),
        )
        .order_by(Commons.area_m2, Commons.id)
        .limit(1)
    ).first()


def _check_parcel(session: Session, actor: Member | None, commons_id: int, what: str) -> Commons:
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    require_member(actor, commons.cooperative_id)
    if commons.archived_at is not None:
        raise ValidationFailed("soil.parcel_archived", field="commons_id", name=commons.name)
    if commons.kind.category not in PARCEL_CATEGORIES or commons.area_m2 is None:
        raise ValidationFailed(ON_PARCELS[what], field="commons_id", name=commons.name, kind=commons.kind_code)
    return commons


# --- recording ------------------------------------------------------------------------------------


def _existing(session: Session, model: Any, cooperative_id: int, source_ref: str | None) -> Any:
    if source_ref is None:
        return None
    return session.scalars(
        select(model).where(model.cooperative_id == cooperative_id, model.source_ref == source_ref)
    ).first()


def _insert_once(session: Session, obj: Any, model: Any, cooperative_id: int, source_ref: str | None) -> Any:
    """Insert ``obj``; when a concurrent resend with the same source_ref won, answer that row."""
    if source_ref is None:
        session.add(obj)
        session.flush()
        return obj
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
    except IntegrityError:
        if obj in session:
            session.expunge(obj)
        found = _existing(session, model, cooperative_id, source_ref)
        if found is None:
            raise
        return found
    return obj


def _checked_sample(
    session: Session, *, actor: Member, cooperative_id: int, data: SampleIn | SampleCorrectionIn
) -> tuple[Commons, bool, str | None, dict[str, Indicator]]:
    """The parcel (named, or found from the point), whether it came from the point, the point as
    EWKT, and the catalogue; ValidationFailed naming each field that is wrong."""
    coop_id = cooperative_id
    point_ewkt = None
    if data.point is not None:
        geom = parse_geojson_geometry(data.point, field="point")
        if geom.geom_type != "Point":
            raise ValidationFailed("soil.point_not_point", field="point", geom_type=geom.geom_type)
        point_ewkt = to_ewkt(geom)
    found = find_parcel(session, actor=actor, cooperative_id=coop_id, point_ewkt=point_ewkt) if point_ewkt else None
    if data.commons_id is not None:
        parcel = _check_parcel(session, actor, data.commons_id, "samples")
        if parcel.cooperative_id != coop_id:
            raise PermissionDenied("soil.members_only")
        if point_ewkt is not None and found is not None:
            inside = session.scalar(
                select(func.ST_Intersects(Commons.geom, func.ST_GeomFromEWKT(point_ewkt))).where(
                    Commons.id == parcel.id
                )
            )
            if not inside:
                raise ValidationFailed("soil.point_elsewhere", field="point", found=found.name, found_id=found.id,
                                       parcel=parcel.name, parcel_id=parcel.id)
        from_point = False
    else:
        if point_ewkt is None:
            raise ValidationFailed("soil.point_or_parcel", field="point")
        if found is None:
            raise ValidationFailed("soil.point_outside", field="commons_id")
        parcel, from_point = found, True
    problems = collector()
    _check_date(problems, session, coop_id, "sampled_on", data.sampled_on)
    _check_member(problems, session, coop_id, "sampled_by_id", data.sampled_by_id)
    indicators = {i.code: i for i in list_indicators(session, cooperative_id=coop_id)}
    for i, m in enumerate(data.measurements):
        check_measurement(problems, indicators, i, m)
    problems.raise_if_any("Some measurements are not valid")
    return parcel, from_point, point_ewkt, indicators


def record_sample(session: Session, *, actor: Member | None, data: SampleIn) -> Sample:
    """A sample and its measurements, checked; the parcel is found from the point when not named.

    A resend with the same ``source_ref`` answers the sample recorded the first time.
    """
    if actor is None:
        raise PermissionDenied("soil.sign_in_samples")
    require_member(actor, actor.cooperative_id)
    coop_id = actor.cooperative_id
    again = _existing(session, Sample, coop_id, data.source_ref)
    if again is not None:
        return again
    parcel, from_point, point_ewkt, indicators = _checked_sample(session, actor=actor, cooperative_id=coop_id,
                                                                 data=data)
    sample = Sample(
        cooperative_id=coop_id, commons_id=parcel.id, point=point_ewkt, parcel_from_point=from_point,
        sampled_on=data.sampled_on, sampled_by_id=data.sampled_by_id, sampler_name=data.sampler_name.strip(),
        lab=data.lab.strip(), lab_report_ref=data.lab_report_ref.strip(), notes=data.notes,
        source_ref=data.source_ref, recorded_by_id=actor.id,
        measurements=_measurements(data.measurements, indicators),
    )
    return _insert_once(session, sample, Sample, coop_id, data.source_ref)


def _measurements(given: list[MeasurementIn], indicators: dict[str, Indicator]) -> list[Measurement]:
    """The rows of checked measurements, as given (an out-of-range value marked as confirmed)."""
    return [
        Measurement(
            indicator_code=m.indicator, value=m.value, unit=m.unit, method=m.method,
            depth_top_cm=m.depth_top_cm, depth_bottom_cm=m.depth_bottom_cm,
            confirmed_out_of_range=bool(m.confirm_out_of_range and _out_of_range(indicators[m.indicator], m)),
            note=m.note,
        )
        for m in given
    ]


def _out_of_range(ind: Indicator, m: MeasurementIn) -> bool:
    canonical = to_canonical(ind, m.value, m.unit)
    return not ind.range_min <= canonical <= ind.range_max


def record_practice(session: Session, *, actor: Member | None, data: PracticeIn) -> Practice:
    """A practice applied to a parcel or a bed, dated, with its quantity and unit."""
    if actor is None:
        raise PermissionDenied("soil.sign_in_practices")
    parcel = _check_parcel(session, actor, data.commons_id, "practices")
    problems = collector()
    kind = PRACTICES.get(data.practice)
    if kind is None:
        problems.add("practice", "soil.unknown_practice", practice=data.practice, known=list(PRACTICES))
    _check_date(problems, session, parcel.cooperative_id, "started_on", data.started_on)
    if data.ended_on is not None and data.ended_on < data.started_on:
        problems.add("ended_on", "soil.ends_before_start", ended_on=data.ended_on, started_on=data.started_on)
    if data.quantity is not None:
        if data.quantity < 0:
            problems.add("quantity", "soil.quantity_negative", practice=data.practice, quantity=data.quantity,
                         unit=data.unit or "")
        if not data.unit:
            problems.add("unit", "soil.quantity_unit", practice=data.practice)
    if kind is not None and data.unit and kind["units"] and data.unit not in kind["units"]:
        problems.add("unit", "soil.practice_unit", practice=data.practice, unit=data.unit, units=list(kind["units"]))
    problems.raise_if_any()
    practice = Practice(
        cooperative_id=parcel.cooperative_id, commons_id=parcel.id, practice=data.practice,
        started_on=data.started_on, ended_on=data.ended_on, quantity=data.quantity, unit=data.unit,
        details=data.details, recorded_by_id=actor.id,
    )
    session.add(practice)
    session.flush()
    return practice


def record_harvest(session: Session, *, actor: Member | None, data: HarvestIn) -> Harvest:
    """A harvest, checked (weight, plausible yield for the area, date, destinations).

    A resend with the same ``source_ref`` answers the harvest recorded the first time.
    """
    if actor is None:
        raise PermissionDenied("soil.sign_in_harvests")
    require_member(actor, actor.cooperative_id)
    again = _existing(session, Harvest, actor.cooperative_id, data.source_ref)
    if again is not None:
        return again
    parcel = _check_parcel(session, actor, data.commons_id, "harvests")
    problems = collector()
    crop = data.crop.strip()
    crop_row = None
    if not crop:
        problems.add("crop", "soil.name_crop")
    else:
        crop_row = find_crop(session, cooperative_id=parcel.cooperative_id, name=crop)
        if crop_row is None:
            known = sorted(c.code for c in list_crops(session, cooperative_id=parcel.cooperative_id))
            problems.add("crop", "soil.unknown_crop", crop=crop, known=known)
    if data.weight_kg is None and data.count is None:
        problems.add("weight_kg", "soil.weight_or_count", crop=crop)
    if data.weight_kg is not None and data.weight_kg <= 0:
        problems.add("weight_kg", "soil.weight_positive", crop=crop, weight_kg=data.weight_kg)
    if data.count is not None and data.count <= 0:
        problems.add("count", "soil.count_positive", crop=crop, count=data.count)
    if (
        data.weight_kg is not None and data.weight_kg > 0 and parcel.area_m2
        and not data.confirm_implausible
    ):
        per_m2 = data.weight_kg / parcel.area_m2
        if per_m2 > MAX_KG_PER_M2_PER_ENTRY:
            problems.add("weight_kg", "soil.implausible_yield", crop=crop, weight_kg=data.weight_kg, parcel=parcel.name,
                         area_m2=round(parcel.area_m2, 1), per_m2=round(per_m2, 1), max_per_m2=MAX_KG_PER_M2_PER_ENTRY)
    _check_date(problems, session, parcel.cooperative_id, "harvested_on", data.harvested_on)
    _check_member(problems, session, parcel.cooperative_id, "harvested_by_id", data.harvested_by_id)
    shares = _shares(problems, data, crop)
    problems.raise_if_any()
    assert crop_row is not None
    harvest = Harvest(
        cooperative_id=parcel.cooperative_id, commons_id=parcel.id, crop=crop_row.code, crop_id=crop_row.id,
        harvested_on=data.harvested_on,
        weight_kg=data.weight_kg, count=data.count, harvested_by_id=data.harvested_by_id, notes=data.notes,
        confirmed_implausible=bool(
            data.confirm_implausible and data.weight_kg and parcel.area_m2
            and data.weight_kg / parcel.area_m2 > MAX_KG_PER_M2_PER_ENTRY
        ),
        source_ref=data.source_ref, recorded_by_id=actor.id,
        shares=[HarvestShare(destination=d, amount=a) for d, a in shares.items()],
    )
    return _insert_once(session, harvest, Harvest, parcel.cooperative_id, data.source_ref)


# --- edits (an ODK form edited on the phone and sent again) ----------------------------------------


def _editable(session: Session, actor: Member | None, model: Any, record_id: int, what: str) -> Any:
    """The record, locked, when ``actor`` recorded it or coordinates its cooperative."""
    if actor is None:
        raise PermissionDenied("soil.sign_in_correct")
    row = session.get(model, record_id, with_for_update=True)
    if row is None or row.cooperative_id != actor.cooperative_id:
        raise NotFound(what, field="id", **{what.split("_")[1] + "_id": record_id})
    if row.recorded_by_id != actor.id and not is_coordinator_of(actor, row.cooperative_id):
        raise PermissionDenied("soil.only_recorder")
    return row


def replace_sample(session: Session, *, actor: Member | None, sample_id: int, data: SampleIn) -> Sample:
    """A corrected sample takes the place of ``sample_id`` (its measurements go with it).

    The new sample is checked like any new one; when it is refused, the old one stays (the
    caller's transaction or savepoint is rolled back). Only whoever recorded the sample, or a
    coordinator, corrects it.
    """
    old = _editable(session, actor, Sample, sample_id, "soil.no_sample")
    session.delete(old)
    session.flush()
    return record_sample(session, actor=actor, data=data)


def _snapshot(session: Session, s: Sample) -> dict[str, Any]:
    """A sample's values as JSON (for its history): where, when, who, and every measurement."""
    session.flush()
    raw = session.scalar(select(func.ST_AsGeoJSON(Sample.point, 7)).where(Sample.id == s.id))
    return {
        "commons_id": s.commons_id, "sampled_on": s.sampled_on.isoformat(),
        "point": json.loads(raw) if raw else None, "parcel_from_point": s.parcel_from_point,
        "sampled_by_id": s.sampled_by_id, "sampler_name": s.sampler_name, "lab": s.lab,
        "lab_report_ref": s.lab_report_ref, "notes": s.notes,
        "measurements": [
            {"indicator": m.indicator_code, "value": m.value, "unit": m.unit, "method": m.method,
             "depth_top_cm": m.depth_top_cm, "depth_bottom_cm": m.depth_bottom_cm,
             "confirmed_out_of_range": m.confirmed_out_of_range, "note": m.note}
            for m in s.measurements
        ],
    }


def _still_counted(sample: Sample) -> Sample:
    if sample.withdrawn_at is not None:
        raise Conflict("soil.sample_withdrawn", field="sample_id", sample_id=sample.id,
                       withdrawn_on=sample.withdrawn_at.date())
    return sample


def correct_sample(session: Session, *, actor: Member | None, sample_id: int, data: SampleCorrectionIn) -> Sample:
    """Correct a sample in place: checked as a new one; its former values stay in its history.

    Only whoever recorded it, or a coordinator of its cooperative, corrects it; a withdrawn
    sample is not corrected (record a new one).
    """
    sample = _still_counted(_editable(session, actor, Sample, sample_id, "soil.no_sample"))
    assert actor is not None
    before = _snapshot(session, sample)
    parcel, from_point, point_ewkt, indicators = _checked_sample(
        session, actor=actor, cooperative_id=sample.cooperative_id, data=data)
    sample.commons_id, sample.point, sample.parcel_from_point = parcel.id, point_ewkt, from_point
    sample.sampled_on, sample.sampled_by_id = data.sampled_on, data.sampled_by_id
    sample.sampler_name, sample.lab = data.sampler_name.strip(), data.lab.strip()
    sample.lab_report_ref, sample.notes = data.lab_report_ref.strip(), data.notes
    sample.measurements = _measurements(data.measurements, indicators)
    session.flush()
    session.refresh(sample)
    after = _snapshot(session, sample)
    session.add(SampleHistory(cooperative_id=sample.cooperative_id, sample_id=sample.id, member_id=actor.id,
                              action="corrected", reason=data.reason.strip(), before=before, after=after))
    session.flush()
    return sample


def withdraw_sample(session: Session, *, actor: Member | None, sample_id: int, reason: str) -> Sample:
    """Withdraw a sample: it stays, with who, when and why, in its history, and leaves every figure.

    Only whoever recorded it, or a coordinator of its cooperative; the reason is required.
    """
    sample = _still_counted(_editable(session, actor, Sample, sample_id, "soil.no_sample"))
    assert actor is not None
    if not reason.strip():
        raise ValidationFailed("soil.withdraw_reason", field="reason")
    sample.withdrawn_at = session.scalar(select(func.now()))
    sample.withdrawn_by_id, sample.withdrawn_reason = actor.id, reason.strip()
    session.add(SampleHistory(cooperative_id=sample.cooperative_id, sample_id=sample.id, member_id=actor.id,
                              action="withdrawn", reason=reason.strip(), before=_snapshot(session, sample),
                              after=None))
    session.flush()
    return sample


def sample_history(session: Session, *, actor: Member | None, sample_id: int) -> list[SampleHistory]:
    """A sample's corrections and withdrawal, oldest first (the cooperative's members)."""
    sample = get_sample(session, actor=actor, sample_id=sample_id)
    if actor is None:
        raise PermissionDenied("soil.sign_in_history")
    require_member(actor, sample.cooperative_id)
    return list(session.scalars(select(SampleHistory).where(SampleHistory.sample_id == sample.id)
                                .order_by(SampleHistory.at, SampleHistory.id)))


def replace_harvests(
    session: Session, *, actor: Member | None, harvest_ids: list[int], data: list[HarvestIn]
) -> list[Harvest]:
    """Corrected harvests take the place of ``harvest_ids`` (one form may record several crops).

    Every new harvest is checked like any new one; when one is refused, nothing changes (the
    caller's transaction or savepoint is rolled back).
    """
    for harvest_id in sorted(set(harvest_ids)):
        session.delete(_editable(session, actor, Harvest, harvest_id, "soil.no_harvest"))
    session.flush()
    return [record_harvest(session, actor=actor, data=d) for d in data]


def _shares(problems: Any, data: HarvestIn, crop: str) -> dict[str, float]:
    total = data.weight_kg if data.weight_kg is not None else data.count
    unit = "kg" if data.weight_kg is not None else "items"
    if data.destination is not None and data.destinations:
        problems.add("destinations", "soil.destination_or_destinations")
        return {}
    if data.destination is not None:
        return {data.destination: float(total)} if total and total > 0 else {}
    if not data.destinations:
        return {}
    out: dict[str, float] = {}
    for dest, amount in data.destinations.items():
        if not (amount > 0 and math.isfinite(amount)):
            problems.add(f"destinations.{dest}", "soil.share_positive", crop=crop, amount=amount, unit=unit,
                         destination=dest)
        else:
            out[dest] = float(amount)
    if total and out and abs(sum(out.values()) - total) > max(0.01 * total, 0.01):
        problems.add("destinations", "soil.shares_total", crop=crop, shared=float(_fmt(sum(out.values()))), unit=unit,
                     total=total)
    return out


# --- reading, scoped to what the actor may see ----------------------------------------------------


def _visible_ids(actor: Member | None) -> Any:
    return select(Commons.id).where(visible_clause(actor, Commons))


def subtree_ids(session: Session, commons_id: int) -> list[int]:
    """The commons and every commons inside it (gardens in a land, beds in a garden)."""
    tree = select(Commons.id).where(Commons.id == commons_id).cte("tree", recursive=True)
    tree = tree.union_all(select(Commons.id).where(Commons.parent_id == tree.c.id))
    return list(session.scalars(select(tree.c.id)))


def _on_a_visible_parcel(session: Session, actor: Member | None, model: type, row_id: int, field: str, code: str):
    """The row of ``model`` (a sample or a harvest) when the actor may see its parcel; else the
    same NotFound as for no row at all (a parcel one may not see is not confirmed to exist)."""
    row = session.get(model, row_id)
    try:
        if row is not None:
            get_commons(session, actor=actor, commons_id=row.commons_id)
    except NotFound:
        row = None
    if row is None:
        raise NotFound(code, field=field, **{field: row_id})
    return row


def get_harvest(session: Session, *, actor: Member | None, harvest_id: int) -> Harvest:
    """One harvest, when the actor may see its parcel."""
    return _on_a_visible_parcel(session, actor, Harvest, harvest_id, "harvest_id", "soil.no_harvest")


def get_sample(session: Session, *, actor: Member | None, sample_id: int) -> Sample:
    """One sample, when the actor may see its parcel."""
    return _on_a_visible_parcel(session, actor, Sample, sample_id, "sample_id", "soil.no_sample")


def list_samples(
    session: Session, *, actor: Member | None, cooperative_id: int | None = None, commons_id: int | None = None,
    limit: int = 500, include_withdrawn: bool = False,
) -> list[Sample]:
    """Samples on parcels the actor may see, newest first; withdrawn ones only when asked."""
    q = select(Sample).where(Sample.commons_id.in_(_visible_ids(actor)))
    if not include_withdrawn:
        q = q.where(Sample.withdrawn_at.is_(None))
    if commons_id is not None:
        get_commons(session, actor=actor, commons_id=commons_id)
        q = q.where(Sample.commons_id.in_(subtree_ids(session, commons_id)))
    if cooperative_id is not None:
        q = q.where(Sample.cooperative_id == cooperative_id)
    return list(session.scalars(q.order_by(Sample.sampled_on.desc(), Sample.id.desc()).limit(limit)))


def list_harvests(
    session: Session, *, actor: Member | None, cooperative_id: int | None = None, commons_id: int | None = None,
    year: int | None = None, limit: int = 1000,
) -> list[Harvest]:
    """Harvests from parcels the actor may see, newest first."""
    q = select(Harvest).where(Harvest.commons_id.in_(_visible_ids(actor)))
    if commons_id is not None:
        get_commons(session, actor=actor, commons_id=commons_id)
        q = q.where(Harvest.commons_id.in_(subtree_ids(session, commons_id)))
    if cooperative_id is not None:
        q = q.where(Harvest.cooperative_id == cooperative_id)
    if year is not None:
        if not date.min.year <= year <= date.max.year:
            raise ValidationFailed("soil.not_calendar_year", field="year", year=year)
        q = q.where(Harvest.harvested_on >= date(year, 1, 1), Harvest.harvested_on <= date(year, 12, 31))
    return list(session.scalars(q.order_by(Harvest.harvested_on.desc(), Harvest.id.desc()).limit(limit)))


def list_practices(
    session: Session, *, actor: Member | None, cooperative_id: int | None = None, commons_id: int | None = None,
    limit: int = 1000,
) -> list[Practice]:
    """Practices on parcels the actor may see, newest first."""
    q = select(Practice).where(Practice.commons_id.in_(_visible_ids(actor)))
    if commons_id is not None:
        get_commons(session, actor=actor, commons_id=commons_id)
        q = q.where(Practice.commons_id.in_(subtree_ids(session, commons_id)))
    if cooperative_id is not None:
        q = q.where(Practice.cooperative_id == cooperative_id)
    return list(session.scalars(q.order_by(Practice.started_on.desc(), Practice.id.desc()).limit(limit)))


def harvest_out(h: Harvest, *, reader: Member | None = None) -> dict[str, Any]:
    """A harvest as a plain dict (with its destinations); who harvested only for the cooperative's members."""
    by = h.harvested_by_id if is_member_of(reader, h.cooperative_id) else None
    return {
        "id": h.id, "commons_id": h.commons_id, "crop": h.crop,
        "crop_label": {"fr": h.crop_ref.label_fr, "en": h.crop_ref.label_en}, "harvested_on": h.harvested_on,
        "weight_kg": h.weight_kg, "count": h.count, "harvested_by_id": by, "notes": h.notes,
        "confirmed_implausible": h.confirmed_implausible, "source_ref": h.source_ref,
        "destinations": {s.destination: s.amount for s in h.shares},
    }


def sample_out(session: Session, s: Sample, *, reader: Member | None = None) -> dict[str, Any]:
    """A sample as a plain dict, its point as GeoJSON; who sampled only for the cooperative's members."""
    member = is_member_of(reader, s.cooperative_id)

    point = None
    if s.point is not None:
        raw = session.scalar(select(func.ST_AsGeoJSON(Sample.point, 7)).where(Sample.id == s.id))
        point = json.loads(raw) if raw else None
    return {
        "id": s.id, "commons_id": s.commons_id, "sampled_on": s.sampled_on, "parcel_from_point": s.parcel_from_point,
        "point": point, "sampled_by_id": s.sampled_by_id if member else None,
        "sampler_name": s.sampler_name if member else "", "lab": s.lab,
        "lab_report_ref": s.lab_report_ref, "notes": s.notes, "source_ref": s.source_ref,
        "measurements": s.measurements, "withdrawn_at": s.withdrawn_at,
        "withdrawn_reason": s.withdrawn_reason if member else "",
    }


# --- per-parcel figures ---------------------------------------------------------------------------


@dataclass
class DateValues:
    """What was measured on a parcel on one date, in canonical units, averaged over points.

    ``layers`` maps (top, bottom) to {indicator: mean canonical value}; ``surface`` holds the
    indicators given without depth.
    """

    on: date
    layers: dict[tuple[float, float], dict[str, float]] = field(default_factory=dict)
    surface: dict[str, float] = field(default_factory=dict)

    def mean(self, indicator: str) -> float | None:
        """The indicator's mean over every depth and point of the date."""
        vals = [v[indicator] for v in self.layers.values() if indicator in v]
        if indicator in self.surface:
            vals.append(self.surface[indicator])
        return sum(vals) / len(vals) if vals else None


def _soc_of(vals: dict[str, float], som_factor: float) -> tuple[float, bool] | None:
    if "soc" in vals:
        return vals["soc"], False
    if "som" in vals:
        return stocks.soc_from_som(vals["som"], som_factor), True
    return None


def build_profile(
    day: DateValues, others: list[DateValues], som_factor: float
) -> list[stocks.Layer] | None:
    """The layers of one date from the surface down, with bulk density carried from the nearest date.

    A layer needs SOC (or SOM), and bulk density (or fine-earth mass and core volume): measured that
    day, else the nearest other date's for the same interval (then ``bd_measured`` is False).
    Stops at the first gap; None when no layer starts at the surface.
    """
    usable: dict[tuple[float, float], stocks.Layer] = {}
    for (top, bottom), vals in day.layers.items():
        soc = _soc_of(vals, som_factor)
        if soc is None:
            continue
        fe = None
        if "fine_earth_mass" in vals and "core_volume" in vals and vals["core_volume"] > 0:
            fe = stocks.fine_earth_density(vals["fine_earth_mass"], vals["core_volume"])
        bd = vals.get("bulk_density")
        measured = fe is not None or bd is not None
        cf = vals.get("coarse_fragments")
        if not measured:
            nearest = sorted(
                (o for o in others if o.on != day.on and "bulk_density" in o.layers.get((top, bottom), {})),
                key=lambda o: abs((o.on - day.on).days),
            )
            if not nearest:
                continue
            bd = nearest[0].layers[(top, bottom)]["bulk_density"]
            if cf is None:
                cf = nearest[0].layers[(top, bottom)].get("coarse_fragments")
        usable[(top, bottom)] = stocks.Layer(
            top, bottom, soc[0], bd=bd, cf_vol=(cf or 0.0) / 100.0, fe_density=fe,
            bd_measured=measured, soc_estimated=soc[1],
        )
    chain: list[stocks.Layer] = []
    depth = 0.0
    while True:
        nxt = sorted((la for (t, _b), la in usable.items() if t == depth), key=lambda la: la.bottom_cm)
        if not nxt:
            break
        chain.append(nxt[0])
        depth = nxt[0].bottom_cm
    return chain or None


def stock_series(profiles: list[tuple[date, list[stocks.Layer]]]) -> tuple[list[tuple[date, float]], str]:
    """SOC stock per date, comparable across dates: at the least fine-earth mass of every date (ESM)
    when bulk density was measured each time, else at fixed depth (to 30 cm or the shallowest profile)."""
    depth = min([STOCK_DEPTH_CM] + [p[-1].bottom_cm for _on, p in profiles])
    cut = [(on, stocks.truncate(p, depth)) for on, p in profiles]
    if all(la.bd_measured for _on, p in cut for la in p):
        ref = min(sum(la.mass_t_ha for la in p) for _on, p in cut)
        return [(on, stocks.carbon_at_mass(p, ref)) for on, p in cut], "esm"
    return [(on, sum(la.stock_t_ha for la in p)) for on, p in cut], "fixed_depth"


@dataclass
class ParcelSummary:
    """The soil and food figures of one parcel, for maps, popups and reports."""

    commons_id: int
    name: str
    kind: str
    area_m2: float | None
    status: Status
    soc_stock_t_ha: float | None = None
    soc_stock_depth_cm: float | None = None
    soc_change_t_ha_per_year: float | None = None
    co2e_t_per_year: float | None = None
    basis: str | None = None
    estimate: bool = False
    harvest_kg_total: float = 0.0
    last_sampled: date | None = None
    sampling_dates: int = 0
    trends: dict[str, Trend] = field(default_factory=dict)
    stock_series: list[tuple[date, float]] = field(default_factory=list)
    series_basis: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return {
            "commons_id": self.commons_id, "name": self.name, "kind": self.kind, "area_m2": self.area_m2,
            "status": self.status, "soc_stock_t_ha": _r(self.soc_stock_t_ha),
            "soc_stock_depth_cm": self.soc_stock_depth_cm,
            "soc_change_t_ha_per_year": _r(self.soc_change_t_ha_per_year, 3),
            "co2e_t_per_year": _r(self.co2e_t_per_year, 3), "basis": self.basis, "estimate": self.estimate,
            "harvest_kg_total": round(self.harvest_kg_total, 2),
            "last_sampled": self.last_sampled.isoformat() if self.last_sampled else None,
            "sampling_dates": self.sampling_dates,
            "trends": {
                k: {"first": _r(t.first, 3), "last": _r(t.last, 3), "first_date": t.first_date.isoformat(),
                    "last_date": t.last_date.isoformat(), "basis": t.basis}
                for k, t in self.trends.items()
            },
        }


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def date_values(rows: Iterable[tuple[int, date, str, float, str, float | None, float | None]],
                units: dict[str, dict]) -> dict[int, list[DateValues]]:
    """Group raw measurement rows (commons, date, indicator, value, unit, top, bottom) by parcel and date."""
    acc: dict[int, dict[date, dict[Any, dict[str, list[float]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    for commons_id, on, code, value, unit, top, bottom in rows:
        factor = units.get(code, {}).get(unit)
        if factor is None:
            continue
        key = (top, bottom) if top is not None else None
        acc[commons_id][on][key][code].append(value * float(factor))
    out: dict[int, list[DateValues]] = {}
    for commons_id, by_date in acc.items():
        days = []
        for on in sorted(by_date):
            dv = DateValues(on)
            for key, vals in by_date[on].items():
                means = {k: sum(v) / len(v) for k, v in vals.items()}
                if key is None:
                    dv.surface.update(means)
                else:
                    dv.layers[key] = means
            days.append(dv)
        out[commons_id] = days
    return out


def summarise(
    commons_id: int, name: str, kind: str, area_m2: float | None, days: list[DateValues],
    *, som_factor: float, harvest_kg: float = 0.0,
) -> ParcelSummary:
    """The figures and the status of one parcel from its measurements by date."""
    summary = ParcelSummary(commons_id, name, kind, area_m2, status="no_data", harvest_kg_total=harvest_kg)
    if not days:
        return summary
    summary.last_sampled = days[-1].on
    summary.sampling_dates = len(days)
    trends: dict[str, Trend] = {}
    profiles = [(d.on, p) for d in days if (p := build_profile(d, days, som_factor))]
    if profiles:
        d_last, p_last = profiles[-1]
        depth = min(STOCK_DEPTH_CM, p_last[-1].bottom_cm)
        summary.soc_stock_t_ha = stocks.profile_stock_t_ha(p_last, depth)
        summary.soc_stock_depth_cm = depth
        summary.estimate = any(la.soc_estimated for la in p_last)
        summary.basis = "fixed_depth"
        summary.stock_series, summary.series_basis = stock_series(profiles)
        if len(profiles) >= 2:
            d_first, p_first = profiles[0]
            change = stocks.compare_stocks(
                p_first, p_last, years=(d_last - d_first).days / 365.25, depth_cm=STOCK_DEPTH_CM
            )
            summary.basis = change.basis
            summary.estimate = change.estimate
            summary.soc_change_t_ha_per_year = change.change_t_ha_per_year
            if area_m2:
                summary.co2e_t_per_year = change.co2e_t_per_year(area_m2)
            trends["soc_stock"] = Trend("soc_stock", change.stock_before_t_ha, change.stock_after_t_ha,
                                        d_first, d_last, change.basis)
        else:
            trends["soc_stock"] = Trend("soc_stock", summary.soc_stock_t_ha, summary.soc_stock_t_ha,
                                        d_last, d_last, "fixed_depth")
    for code in ("infiltration", "earthworms", "vess"):
        series = [(d.on, v) for d in days if (v := d.mean(code)) is not None]
        if series:
            trends[code] = Trend(code, series[0][1], series[-1][1], series[0][0], series[-1][0])
    summary.trends = trends
    summary.status = regeneration_status(trends, sampled=True)
    return summary


def _parcels_query(*, cooperative_id: int, actor: Member | None, visible_only: bool) -> Any:
    q = select(Commons).where(
        Commons.cooperative_id == cooperative_id,
        Commons.archived_at.is_(None),
        Commons.kind_code.in_(_parcel_kinds()),
        Commons.area_m2.is_not(None),
    )
    if visible_only:
        q = q.where(visible_clause(actor, Commons))
    return q


def parcels_of(session: Session, *, cooperative_id: int, actor: Member | None = None,
               visible_only: bool = False) -> list[Commons]:
    """The cooperative's land parcels, gardens and beds (polygons, not archived)."""
    q = _parcels_query(cooperative_id=cooperative_id, actor=actor, visible_only=visible_only)
    return list(session.scalars(q.order_by(Commons.id)))


def _with_data(q: Any, until: date | None) -> Any:
    """``q`` (parcels) kept to those with a sample, or with a harvest on them or on a parcel under
    them (their harvest sums add up the parcels below, ``parcel_summaries``), chosen by the database
    from the few sampled and harvested parcels up (by index), never by reading every parcel."""
    sampled = select(Sample.commons_id).where(Sample.withdrawn_at.is_(None))
    harvested = select(Harvest.commons_id)
    if until is not None:
        sampled = sampled.where(Sample.sampled_on <= until)
        harvested = harvested.where(Harvest.harvested_on <= until)
    pairs = q.with_only_columns(Commons.id, Commons.parent_id).order_by(None)
    # the harvested parcels and every parcel above them, up the chain of parcels
    up = pairs.where(Commons.id.in_(harvested.distinct())).cte("harvest_up", recursive=True)
    up = up.union(pairs.join(up, Commons.id == up.c.parent_id))
    return q.where(Commons.id.in_(union(sampled, select(up.c.id))))


def _id_array(ids: list[int]) -> Any:
    """One array parameter instead of one parameter per id (PostgreSQL takes at most 65,535)."""
    return bindparam(None, ids, type_=ARRAY(Integer))


def parcel_summaries(
    session: Session, *, cooperative_id: int, until: date | None = None,
    actor: Member | None = None, visible_only: bool = False, with_data_only: bool = False,
) -> dict[int, ParcelSummary]:
    """Per parcel of the cooperative: regeneration status, SOC stock and change, CO2e, harvests.

    Every land parcel, garden and bed is there (``no_data`` when never sampled). ``until`` limits
    the figures to what was known on that date. Callers that show the result decide what their
    viewer may see (``visible_only`` with ``actor`` keeps only the parcels the actor may see).
    ``with_data_only``: only the parcels with a sample or a harvest (on them or on a parcel under
    them); every other parcel would be ``no_data`` with no figure. The public map's figures ask
    for these: a cooperative of 100,000 parcels with a few samples loads a few parcels, not all.
    """
    q = _parcels_query(cooperative_id=cooperative_id, actor=actor, visible_only=visible_only)
    if with_data_only:
        q = _with_data(q, until)
    parcels = list(session.scalars(q.order_by(Commons.id)))
    ids = [p.id for p in parcels]
    if not ids:
        return {}
    units = {i.code: i.units for i in list_indicators(session, cooperative_id=cooperative_id)}
    q = (
        select(Sample.commons_id, Sample.sampled_on, Measurement.indicator_code, Measurement.value,
               Measurement.unit, Measurement.depth_top_cm, Measurement.depth_bottom_cm)
        .join(Measurement, Measurement.sample_id == Sample.id)
        .where(Sample.commons_id == any_(_id_array(ids)), Sample.withdrawn_at.is_(None))
    )
    hq = select(Harvest.commons_id, func.coalesce(func.sum(Harvest.weight_kg), 0.0)).where(
        Harvest.commons_id == any_(_id_array(ids))
    ).group_by(Harvest.commons_id)
    if until is not None:
        q = q.where(Sample.sampled_on <= until)
        hq = hq.where(Harvest.harvested_on <= until)
    by_parcel = date_values(session.execute(q), units)
    own_kg = {cid: float(kg) for cid, kg in session.execute(hq)}
    children: dict[int, list[int]] = defaultdict(list)
    for p in parcels:
        if p.parent_id is not None:
            children[p.parent_id].append(p.id)

    def kg(cid: int) -> float:
        return own_kg.get(cid, 0.0) + sum(kg(c) for c in children.get(cid, []))

    factor = get_settings().som_to_soc_factor

    def one(p: Any) -> ParcelSummary:
        try:
            return summarise(p.id, p.name, p.kind_code, p.area_m2, by_parcel.get(p.id, []),
                             som_factor=factor, harvest_kg=kg(p.id))
        except (ValueError, ArithmeticError):
            # Data no soil can hold (stored before it was refused at the door): this parcel shows
            # no soil figures, and every other parcel keeps its own.
            log.warning("soil figures of commons %s cannot be computed from its samples", p.id, exc_info=True)
            return summarise(p.id, p.name, p.kind_code, p.area_m2, [], som_factor=factor, harvest_kg=kg(p.id))

    return {p.id: one(p) for p in parcels}


def parcel_summary(session: Session, *, actor: Member | None, commons_id: int) -> ParcelSummary:
    """The summary of one parcel the actor may see."""
    commons = get_commons(session, actor=actor, commons_id=commons_id)
    summaries = parcel_summaries(session, cooperative_id=commons.cooperative_id)
    if commons.id not in summaries:
        raise ValidationFailed("soil.not_a_parcel", field="commons_id", name=commons.name)
    return summaries[commons.id]


def status_counts(summaries: dict[int, ParcelSummary]) -> dict[str, int]:
    """How many parcels have each status."""
    counts = dict.fromkeys(STATUSES, 0)
    for s in summaries.values():
        counts[s.status] += 1
    return counts

