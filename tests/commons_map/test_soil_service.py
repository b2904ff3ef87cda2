"""Soil observations, practices and harvests through the services: rules, bad input, access."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from commons_map.errors import NotFound, PermissionDenied, ValidationFailed
from commons_map.soil import service
from commons_map.soil.models import Harvest, Indicator, Measurement, Practice, Sample
from commons_map.soil.schemas import HarvestIn, IndicatorIn, MeasurementIn, PracticeIn, SampleIn
from tests.commons_map.soil_helpers import OUTSIDE, inside, parcel

LAST_YEAR = date.today().replace(month=4, day=10) - timedelta(days=365)


def m(indicator: str, value: float, unit: str, top: float | None = 0, bottom: float | None = 30, **kw) -> MeasurementIn:
    return MeasurementIn(indicator=indicator, value=value, unit=unit, depth_top_cm=top, depth_bottom_cm=bottom, **kw)


def counts(db) -> tuple[int, int, int, int]:
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Sample, Measurement, Harvest, Practice))


def test_a_lab_report_of_many_values_and_depths_is_one_sample_found_by_its_point(db, people):
    land = parcel(db, "land-5")
    data = SampleIn(
        sampled_on=LAST_YEAR, point=inside(db, land), sampled_by_id=people.steward.id, lab="Galys",
        lab_report_ref="GAL-2025-118",
        measurements=[m("soc", 12.4, "g/kg", 0, 10, method="dry_combustion"), m("soc", 8.1, "g/kg", 10, 30),
                      m("bulk_density", 1.28, "g/cm3", 0, 10), m("bulk_density", 1.41, "g/cm3", 10, 30),
                      m("ph", 8.1, "pH", 0, 10, method="water"), m("cec", 11.5, "cmol(+)/kg", 0, 30)],
    )
    sample = service.record_sample(db, actor=people.steward, data=data)
    assert sample.commons_id == land.id and sample.parcel_from_point is True
    assert len(sample.measurements) == 6
    soc = sample.measurements[0]
    # raw value and unit kept as given: never normalised on the way in
    assert ((soc.value, soc.unit, soc.method, soc.depth_top_cm, soc.depth_bottom_cm)
            == (12.4, "g/kg", "dry_combustion", 0, 10))
    assert db.scalar(select(func.count()).select_from(Sample).where(Sample.lab_report_ref == "GAL-2025-118")) == 1


def test_the_smallest_parcel_holding_the_point_wins(db, people):
    bed = parcel(db, "bed-0-1")
    s = service.record_sample(db, actor=people.coordinator, data=SampleIn(
        sampled_on=LAST_YEAR, point=inside(db, bed), measurements=[m("earthworms", 12, "count/pit", 0, 20)]))
    assert s.commons_id == bed.id


def test_a_point_outside_every_parcel_needs_the_parcel_named(db, people):
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        service.record_sample(db, actor=people.steward, data=SampleIn(
            sampled_on=LAST_YEAR, point=OUTSIDE, measurements=[m("vess", 3, "score", None, None)]))
    assert err.value.field == "commons_id" and "outside every" in err.value.message
    assert counts(db) == before
    land = parcel(db, "land-2")
    s = service.record_sample(db, actor=people.steward, data=SampleIn(
        sampled_on=LAST_YEAR, point=OUTSIDE, commons_id=land.id, measurements=[m("vess", 3, "score", None, None)]))
    assert s.commons_id == land.id and s.parcel_from_point is False


def test_a_point_in_another_parcel_than_the_one_named_is_refused(db, people):
    with pytest.raises(ValidationFailed, match="not in the parcel named"):
        service.record_sample(db, actor=people.steward, data=SampleIn(
            sampled_on=LAST_YEAR, point=inside(db, parcel(db, "land-0")), commons_id=parcel(db, "land-2").id,
            measurements=[m("vess", 3, "score", None, None)]))


def test_out_of_range_value_is_refused_naming_indicator_value_range_and_unit(db, people):
    land = parcel(db, "land-4")
    before = counts(db)
    data = SampleIn(sampled_on=LAST_YEAR, commons_id=land.id,
                    measurements=[m("bulk_density", 1.3, "g/cm3"), m("soc", 43, "%")])
    with pytest.raises(ValidationFailed) as err:
        service.record_sample(db, actor=people.steward, data=data)
    assert "soc: 43 % is outside the plausible range 0.1-15 %" in err.value.message
    assert err.value.field == "measurements.1.value"
    assert counts(db) == before, "nothing written"
    # in g/kg, the range is given in g/kg
    with pytest.raises(ValidationFailed, match=r"soc: 430 g/kg is outside the plausible range 1-150 g/kg"):
        service.record_sample(db, actor=people.steward, data=SampleIn(
            sampled_on=LAST_YEAR, commons_id=land.id, measurements=[m("soc", 430, "g/kg")]))
    assert counts(db) == before


def test_out_of_range_value_confirmed_on_purpose_is_kept_and_flagged(db, people):
    land = parcel(db, "land-4")
    s = service.record_sample(db, actor=people.steward, data=SampleIn(
        sampled_on=LAST_YEAR, commons_id=land.id,
        measurements=[m("soc", 17.5, "%", confirm_out_of_range=True, note="horizon tourbeux"),
                      m("soc", 1.2, "%", 30, 60,
                      confirm_out_of_range=True)]))
    assert [x.confirmed_out_of_range for x in s.measurements] == [True, False]
    assert s.measurements[0].value == 17.5


@pytest.mark.parametrize(
    ("meas", "field", "pattern"),
    [
        (dict(indicator="soc", value=4.3, unit="mg"), "measurements.0.unit",
         r"soil.unit_unfit: soc: 4\.3 mg - the unit mg does not fit Soil organic carbon \(SOC\);"
         r" accepted units: .*g/kg"),
        (dict(indicator="soc", value=1.2, unit="%", depth_top_cm=30, depth_bottom_cm=10),
         "measurements.0.depth_bottom_cm",
         r"soil.depth_inverted: soc: depth_bottom_cm 10 cm is above depth_top_cm 30 cm"),
        (dict(indicator="soc", value=1.2, unit="%"), "measurements.0.depth_top_cm",
         r"soil.depth_needed: soc: a depth interval is needed"),
        (dict(indicator="soc", value=1.2, unit="%", depth_top_cm=0, depth_bottom_cm=30, method="guesswork"),
         "measurements.0.method", r"soil.method_unknown: soc: method guesswork is not one of dry_combustion"),
        (dict(indicator="phh", value=7, unit="pH"), "measurements.0.indicator",
         r"soil.unknown_indicator: Unknown indicator phh"),
        (dict(indicator="infiltration", value=0.1, unit="min/25mm"), "measurements.0.value",
         r"soil.out_of_range: infiltration: 0\.1 min/25mm is outside the plausible range 0\.5-300 min/25mm"),
        (dict(indicator="earthworms", value=3000, unit="count/m2"), "measurements.0.value",
         r"soil.out_of_range: earthworms: 3,000 count/m2 is outside the plausible range 0-2,500 count/m2"),
    ],
)
def test_bad_measurements_are_refused_and_nothing_is_written(db, people, meas, field, pattern):
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        service.record_sample(db, actor=people.steward, data=SampleIn(
            sampled_on=LAST_YEAR, commons_id=parcel(db, "land-3").id, measurements=[MeasurementIn(**meas)]))
    assert err.value.field == field
    assert any(__import__("re").search(pattern, f"{p.code}: {p.message}") for p in err.value.problems), \
        err.value.problems
    assert all(p.text("fr") != p.text("en") for p in err.value.problems)
    assert counts(db) == before


def test_a_sampling_date_in_the_future_is_refused(db, people):
    future = date.today() + timedelta(days=3)
    with pytest.raises(ValidationFailed, match="is in the future") as err:
        service.record_sample(db, actor=people.steward, data=SampleIn(
            sampled_on=future, commons_id=parcel(db, "land-3").id, measurements=[m("vess", 2, "score", None, None)]))
    assert (err.value.field, err.value.code, err.value.params["value"]) == ("sampled_on", "soil.date_in_future", future)
    assert "est dans le futur" in err.value.text("fr")


def test_only_members_record_and_outsiders_cannot_record_on_our_parcels(db, people):
    data = SampleIn(sampled_on=LAST_YEAR, commons_id=parcel(db, "land-3").id,
                    measurements=[m("vess", 2, "score", None, None)])
    with pytest.raises(PermissionDenied):
        service.record_sample(db, actor=None, data=data)
    with pytest.raises(PermissionDenied):
        service.record_sample(db, actor=people.outsider, data=data)
    with pytest.raises(PermissionDenied):
        service.record_harvest(db, actor=people.outsider, data=HarvestIn(
            commons_id=parcel(db, "bed-0-0").id, crop="tomate", harvested_on=LAST_YEAR, weight_kg=3))


def test_observations_follow_the_visibility_of_their_parcel(db, people):
    bed = parcel(db, "bed-0-1")  # members only
    assert bed.visibility == "members"
    h = service.record_harvest(db, actor=people.member, data=HarvestIn(
        commons_id=bed.id, crop="radis", harvested_on=LAST_YEAR, weight_kg=2.5, destination="members"))
    assert h.id in {x.id for x in service.list_harvests(db, actor=people.member, commons_id=bed.id)}
    assert h.id not in {x.id for x in service.list_harvests(db, actor=None)}
    assert h.id not in {x.id for x in service.list_harvests(db, actor=people.outsider)}
    with pytest.raises(NotFound):
        service.list_harvests(db, actor=None, commons_id=bed.id)


def test_harvest_with_destinations_and_share_to_households_in_need(db, people):
    bed = parcel(db, "bed-1-0")
    h = service.record_harvest(db, actor=people.member, data=HarvestIn(
        commons_id=bed.id, crop=" Tomate ", harvested_on=LAST_YEAR, weight_kg=20,
        destinations={"members": 12, "households_in_need": 6, "shared_meals": 2}, harvested_by_id=people.member.id))
    assert h.crop == "tomato"
    assert {s.destination: s.amount for s in h.shares} == {"members": 12, "households_in_need": 6, "shared_meals": 2}


@pytest.mark.parametrize(
    ("kw", "field", "pattern"),
    [
        (dict(weight_kg=-3), "weight_kg", r"tomate: -3 kg is not a harvest; the weight must be more than 0 kg"),
        (dict(weight_kg=None), "weight_kg", r"give the weight in kg, or a count"),
        (dict(weight_kg=5, destinations={"members": 3, "compost": 1}), "destinations",
         r"add up to 4 kg, not the 5 kg harvested"),
        (dict(weight_kg=5, harvested_on=date.today() + timedelta(days=2)), "harvested_on", r"is in the future"),
        (dict(weight_kg=5, harvested_by_id=999_999), "harvested_by_id", r"No member 999999"),
    ],
)
def test_bad_harvests_are_refused_and_nothing_is_written(db, people, kw, field, pattern):
    before = counts(db)
    data = dict(commons_id=parcel(db, "bed-1-0").id, crop="tomate", harvested_on=LAST_YEAR) | kw
    with pytest.raises(ValidationFailed) as err:
        service.record_harvest(db, actor=people.member, data=HarvestIn(**data))
    assert err.value.field == field
    assert __import__("re").search(pattern, err.value.problems[0].message), err.value.problems
    assert counts(db) == before


def test_a_yield_beyond_any_plausible_figure_for_the_bed_is_refused_unless_confirmed(db, people):
    bed = parcel(db, "bed-3-0")
    area = bed.area_m2
    too_much = round(area * 45)
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        service.record_harvest(db, actor=people.member, data=HarvestIn(
            commons_id=bed.id, crop="courgette", harvested_on=LAST_YEAR, weight_kg=too_much))
    msg = err.value.message
    assert f"courgette: {too_much:,} kg" in msg and "kg/m2" in msg and "0-40 kg/m2" in msg
    assert err.value.code == "soil.implausible_yield" and err.value.params["weight_kg"] == too_much
    assert err.value.text("fr").startswith("courgette : ") and "0-40 kg/m2 plausibles" in err.value.text("fr")
    assert counts(db) == before
    h = service.record_harvest(db, actor=people.member, data=HarvestIn(
        commons_id=bed.id, crop="courgette", harvested_on=LAST_YEAR, weight_kg=too_much, confirm_implausible=True))
    assert h.confirmed_implausible is True
    ok = service.record_harvest(db, actor=people.member, data=HarvestIn(
        commons_id=bed.id, crop="courgette", harvested_on=LAST_YEAR, weight_kg=round(area * 2),
        confirm_implausible=True))
    assert ok.confirmed_implausible is False, "only a figure that needed confirming is flagged"


def test_harvest_on_something_that_is_not_a_parcel_is_refused(db, people):
    with pytest.raises(ValidationFailed, match="belong to a land parcel, a garden or a bed"):
        service.record_harvest(db, actor=people.coordinator, data=HarvestIn(
            commons_id=parcel(db, "kitchen").id, crop="tomate", harvested_on=LAST_YEAR, weight_kg=3))


def test_a_resent_form_with_the_same_source_ref_makes_no_duplicate(db, people):
    bed = parcel(db, "bed-2-0")
    data = HarvestIn(commons_id=bed.id, crop="poireau", harvested_on=LAST_YEAR, weight_kg=7.5,
                     source_ref="uuid:5b1c-odk-instance")
    first = service.record_harvest(db, actor=people.member, data=data)
    again = service.record_harvest(db, actor=people.member, data=data)
    assert again.id == first.id
    assert db.scalar(select(func.count()).select_from(Harvest).where(Harvest.source_ref == data.source_ref)) == 1
    sdata = SampleIn(sampled_on=LAST_YEAR, commons_id=bed.id, source_ref="uuid:77-odk",
                     measurements=[m("earthworms", 9, "count/pit", 0, 20)])
    s1 = service.record_sample(db, actor=people.member, data=sdata)
    s2 = service.record_sample(db, actor=people.member, data=sdata)
    assert s1.id == s2.id


def test_practices_are_checked(db, people):
    land = parcel(db, "land-4")
    p = service.record_practice(db, actor=people.steward, data=PracticeIn(
        commons_id=land.id, practice="compost", started_on=LAST_YEAR, quantity=12, unit="t",
        details="Compost de Crest"))
    assert (p.practice, p.quantity, p.unit) == ("compost", 12, "t")
    before = counts(db)
    bad = [
        (dict(practice="ploughing"), "practice", "Unknown practice ploughing"),
        (dict(practice="compost", quantity=-2, unit="t"), "quantity", "must not be negative"),
        (dict(practice="compost", quantity=2, unit="trees"), "unit", "the unit trees does not fit"),
        (dict(practice="mulch", ended_on=LAST_YEAR - timedelta(days=5)), "ended_on", "is before started_on"),
    ]
    for kw, field, text in bad:
        with pytest.raises(ValidationFailed) as err:
            service.record_practice(db, actor=people.steward, data=PracticeIn(
                commons_id=land.id, started_on=LAST_YEAR, **kw))
        assert err.value.field == field and text in err.value.problems[0].message
    assert counts(db) == before


def test_coordinators_extend_the_catalogue(db, people):
    data = IndicatorIn(code="glomalin", label_fr="Glomaline", label_en="Glomalin", units={"mg/g": 1, "g/kg": 1},
                       range_min=0, range_max=20, methods=["bradford"], better="higher")
    with pytest.raises(PermissionDenied):
        service.add_indicator(db, actor=people.member, data=data)
    ind = service.add_indicator(db, actor=people.coordinator, data=data)
    assert ind.cooperative_id == people.coop.id and ind.canonical_unit == "mg/g"
    s = service.record_sample(db, actor=people.member, data=SampleIn(
        sampled_on=LAST_YEAR, commons_id=parcel(db, "land-3").id,
        measurements=[MeasurementIn(indicator="glomalin", value=3.2, unit="mg/g", method="bradford")]))
    assert s.measurements[0].indicator_code == "glomalin"
    codes = {i.code for i in service.list_indicators(db, cooperative_id=people.other_coop.id)}
    assert "glomalin" not in codes and "soc" in codes
    with pytest.raises(ValidationFailed, match="exists already"):
        service.add_indicator(db, actor=people.coordinator, data=data)


def test_shipped_catalogue_matches_the_domain_table(db):
    soc = db.get(Indicator, "soc")
    assert (soc.range_min, soc.range_max, soc.canonical_unit) == (0.1, 15, "%")
    assert soc.units == {"%": 1.0, "g/kg": 0.1}
    assert set(soc.methods) == {"dry_combustion", "walkley_black", "loss_on_ignition"}
    assert db.get(Indicator, "bulk_density").range_max == 1.9
    assert db.get(Indicator, "infiltration").better == "lower"
