"""Per-parcel figures, regeneration status on the demo, the annual report, timelines, charts."""

from __future__ import annotations

import csv
import io
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from commons_map.db import make_engine, session_scope
from commons_map.soil import charts, reports, service
from commons_map.soil.models import Harvest
from commons_map.soil.schemas import HarvestIn, MeasurementIn, SampleIn
from tests.commons_map.soil_helpers import parcel


def test_demo_parcels_cover_every_status(db, people):
    sums = service.parcel_summaries(db, cooperative_id=people.coop.id)
    status = {k: sums[parcel(db, k).id].status for k in [f"land-{i}" for i in range(8)]}
    assert status["land-2"] == "stable"
    assert status["land-6"] == "degrading"
    assert status["land-5"] == "baseline_only"
    assert sum(1 for s in status.values() if s == "regenerating") >= 4
    assert sums[parcel(db, "garden-3").id].status == "no_data"


def test_summary_figures_say_their_basis_and_co2e_uses_the_area_on_geography(db, people):
    sums = service.parcel_summaries(db, cooperative_id=people.coop.id)
    land0 = parcel(db, "land-0")
    s = sums[land0.id]
    assert s.basis == "esm" and s.estimate is False
    assert s.last_sampled is not None and s.last_sampled.year == 2026
    assert 25 < s.soc_stock_t_ha < 80
    assert s.co2e_t_per_year == pytest.approx(s.soc_change_t_ha_per_year * 44 / 12 * land0.area_m2 / 10_000)
    # Bulk density measured once, organic matter only: fixed depth, and an estimate.
    s7 = sums[parcel(db, "land-7").id]
    assert (s7.basis, s7.estimate) == ("fixed_depth", True)
    # a garden counts the harvests of its beds
    g0 = parcel(db, "garden-0")
    beds_kg = db.scalar(select(func.sum(Harvest.weight_kg)).where(
        Harvest.commons_id.in_(service.subtree_ids(db, g0.id))))
    assert sums[g0.id].harvest_kg_total == pytest.approx(beds_kg)
    assert sums[g0.id].harvest_kg_total > 1000


@pytest.mark.parametrize("until", [None, date(2024, 6, 1)])
@pytest.mark.parametrize("role", ["all", "member", "coordinator"])
def test_with_data_only_leaves_out_exactly_the_parcels_without_any_figure(db, people, until, role):
    """The public map's figures ask only for the parcels with a sample or a harvest (on them or
    on their beds): every parcel left out is a bare no_data one, every other is the same summary."""
    who = {} if role == "all" else {"actor": getattr(people, role), "visible_only": True}
    every = service.parcel_summaries(db, cooperative_id=people.coop.id, until=until, **who)
    few = service.parcel_summaries(db, cooperative_id=people.coop.id, until=until, with_data_only=True, **who)
    assert few and set(few) < set(every)
    for commons_id, s in every.items():
        if commons_id in few:
            assert few[commons_id] == s
        else:
            assert (s.status, s.harvest_kg_total, s.last_sampled, s.soc_stock_t_ha) == ("no_data", 0.0, None, None)
    # a garden whose harvests are all on its beds is there, with its beds' sum
    g0 = parcel(db, "garden-0")
    if g0.id in every and every[g0.id].harvest_kg_total:
        assert few[g0.id].harvest_kg_total == every[g0.id].harvest_kg_total > 0
    assert any(s.status != "no_data" for s in few.values())


def test_som_is_converted_with_the_settings_factor_and_marked_an_estimate(db, people):
    garden = parcel(db, "garden-3")
    service.record_sample(db, actor=people.coordinator, data=SampleIn(
        sampled_on=date(2025, 4, 2), commons_id=garden.id, measurements=[
            MeasurementIn(indicator="som", value=3.4, unit="%", method="loss_on_ignition",
                          depth_top_cm=0, depth_bottom_cm=30),
            MeasurementIn(indicator="bulk_density", value=1.3, unit="g/cm3", depth_top_cm=0, depth_bottom_cm=30),
        ]))
    s = service.parcel_summaries(db, cooperative_id=people.coop.id)[garden.id]
    # 3.4 % SOM / 2.0 = 1.7 % SOC; x 1.3 x 30 = 66.3 t C/ha
    assert s.soc_stock_t_ha == pytest.approx(66.3)
    assert s.estimate is True and s.status == "baseline_only"


def test_coarse_fragments_and_units_are_normalised_only_in_the_computation(db, people):
    garden = parcel(db, "garden-3")
    service.record_sample(db, actor=people.coordinator, data=SampleIn(
        sampled_on=date(2025, 4, 2), commons_id=garden.id, measurements=[
            MeasurementIn(indicator="soc", value=10, unit="g/kg", depth_top_cm=0, depth_bottom_cm=30),
            MeasurementIn(indicator="bulk_density", value=1300, unit="kg/m3", depth_top_cm=0, depth_bottom_cm=30),
            MeasurementIn(indicator="coarse_fragments", value=20, unit="% vol", depth_top_cm=0, depth_bottom_cm=30),
        ]))
    s = service.parcel_summaries(db, cooperative_id=people.coop.id)[garden.id]
    assert s.soc_stock_t_ha == pytest.approx(31.2)  # 39 x (1 - 0.2)


def test_esm_change_between_two_dates_on_a_compacted_parcel(db, people):
    garden = parcel(db, "garden-4")

    def sample(on: date, soc: float, bd: float) -> None:
        service.record_sample(db, actor=people.coordinator, data=SampleIn(
            sampled_on=on, commons_id=garden.id, measurements=[
                MeasurementIn(indicator="soc", value=soc, unit="%", depth_top_cm=0, depth_bottom_cm=30),
                MeasurementIn(indicator="bulk_density", value=bd, unit="g/cm3", depth_top_cm=0, depth_bottom_cm=30)]))

    sample(date(2021, 4, 1), 1.0, 1.2)
    sample(date(2025, 4, 1), 1.05, 1.4)
    s = service.parcel_summaries(db, cooperative_id=people.coop.id)[garden.id]
    years = (date(2025, 4, 1) - date(2021, 4, 1)).days / 365.25
    assert s.basis == "esm"
    assert s.soc_change_t_ha_per_year == pytest.approx(1.8 / years)  # not (44.1 - 36) / years
    assert s.soc_stock_t_ha == pytest.approx(44.1)                     # the latest stock, fixed depth 0-30
    assert s.trends["soc_stock"].basis == "esm"


def test_stock_series_of_the_compacted_orchard_falls_on_an_esm_basis(db, people):
    s = service.parcel_summaries(db, cooperative_id=people.coop.id)[parcel(db, "land-6").id]
    assert s.series_basis == "esm"
    assert s.stock_series[-1][1] < s.stock_series[0][1] - 1, "the ESM trend shows the loss"
    s7 = service.parcel_summaries(db, cooperative_id=people.coop.id)[parcel(db, "land-7").id]
    assert s7.series_basis == "fixed_depth"


def test_annual_report_has_every_section_and_adds_up(db, people):
    rep = reports.annual_report(db, actor=people.coordinator, cooperative_id=people.coop.id, year=2025)
    assert rep["year"] == 2025
    assert rep["area_under_regeneration_m2"] > 10_000
    assert sum(rep["parcels_by_status"].values()) == len(rep["parcels"])
    assert rep["parcels_by_status"]["degrading"] == 1
    soc = rep["soc"]
    assert soc["total_t_co2e_per_year"] == pytest.approx(soc["total_t_c_per_year"] * 44 / 12, abs=0.01)
    assert {r["basis"] for r in soc["parcels"]} <= {"esm", "fixed_depth"}
    food = rep["food"]
    assert food["total_kg"] == pytest.approx(sum(food["kg_by_crop"].values()), abs=0.1)
    assert food["total_kg"] == pytest.approx(sum(food["kg_by_destination"].values()), abs=0.5)
    assert 0.05 < food["households_in_need_share"] < 0.4
    assert food["count_by_crop"].get("lettuce", 0) > 0 or "lettuce" not in food["kg_by_crop"]
    assert all(0 < y["kg_per_m2"] < 40 for y in food["yields_per_bed_and_season"])
    assert all(y["season"].startswith(("2024-winter", "2025-")) for y in food["yields_per_bed_and_season"])
    hours = rep["volunteer_hours"]
    if reports._minutes_by_commons() is not None:
        assert hours["source"] == "ledger" and hours["total"] is not None
    rows = list(csv.DictReader(io.StringIO(reports.report_csv(rep))))
    assert rows[0]["section"] == "summary"
    assert any(r["section"] == "harvest" and r["destination"] == "households_in_need" for r in rows)


def test_annual_report_for_anonymous_counts_only_public_parcels(db, people):
    public = reports.annual_report(db, actor=None, cooperative_id=people.coop.id, year=2025)
    member = reports.annual_report(db, actor=people.member, cooperative_id=people.coop.id, year=2025)
    assert public["food"]["total_kg"] < member["food"]["total_kg"]
    assert public["volunteer_hours"]["total"] is None


def test_an_earlier_year_only_knows_what_was_measured_by_then(db, people):
    rep = reports.annual_report(db, actor=people.coordinator, cooperative_id=people.coop.id, year=2022)
    land0 = next(p for p in rep["parcels"] if p["name"] == parcel(db, "land-0").name)
    assert land0["status"] == "baseline_only"


def test_timeline_lists_everything_in_date_order(db, people):
    land = parcel(db, "land-1")  # holds the Potager du Pré Long and its beds
    tl = reports.timeline(db, actor=people.member, commons_id=land.id)
    types = {e["type"] for e in tl["events"]}
    assert {"observation", "practice", "harvest"} <= types
    dates = [e["date"] for e in tl["events"]]
    assert dates == sorted(dates)
    assert tl["work_hours_source"] == ("ledger" if reports._minutes_by_commons() else None)
    text = reports.timeline_csv(tl)
    assert text.splitlines()[0].startswith("date,type,commons_id")
    assert "soc" in text and "compost" in text


def test_charts_are_png(db, people):
    data = reports.chart_series(db, actor=people.member, cooperative_id=people.coop.id)
    assert len(data["soc"]) >= 8 and data["yields"]
    for png in (charts.soc_trend_png(data["soc"]), charts.yields_png(data["yields"]), charts.soc_trend_png({})):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_season_of():
    assert reports.season_of(date(2025, 12, 10)) == "2025-winter"
    assert reports.season_of(date(2026, 2, 10)) == "2025-winter"
    assert reports.season_of(date(2025, 7, 1)) == "2025-summer"


def test_concurrent_resends_of_one_harvest_make_one_row(fresh_database):
    """Two phones resend the same field form at the same time: one harvest, both get its id."""
    from shapely.geometry import MultiPolygon, Polygon

    from commons_map.demo.load import offset
    from commons_map.geo import to_ewkt
    from commons_map.people.models import Cooperative
    from commons_map.people.service import create_member
    from commons_map.register.schemas import CommonsIn
    from commons_map.register.service import create_commons

    engine = make_engine(url=fresh_database(), pool_size=4)
    try:
        with session_scope(engine) as s:
            coop = Cooperative(slug="c", name="C", territory=to_ewkt(MultiPolygon([Polygon(
                [offset(-500, -500), offset(500, -500), offset(500, 500), offset(-500, 500)])])))
            s.add(coop)
            s.flush()
            boss = create_member(s, cooperative=coop, username="boss", display_name="Boss", password="pw-123456789",
                                 roles={"coordinator"}, bootstrap=True)
            square = [list(offset(x, y)) for x, y in [(0, 0), (20, 0), (20, 10), (0, 10), (0, 0)]]
            garden = create_commons(s, actor=boss, data=CommonsIn(kind="garden", name="G", geometry={
                "type": "Polygon", "coordinates": [[list(offset(-5, -5)), list(offset(30, -5)), list(offset(30, 20)),
                                                    list(offset(-5, 20)), list(offset(-5, -5))]]}))
            bed = create_commons(s, actor=boss, data=CommonsIn(kind="bed", name="B", parent_id=garden.id,
                                                                geometry={"type": "Polygon", "coordinates": [square]}))
            boss_id, bed_id = boss.id, bed.id
        barrier = threading.Barrier(4)
        ids: list[int] = []
        errors: list[BaseException] = []

        def resend() -> None:
            try:
                from commons_map.people.models import Member

                with session_scope(engine) as s:
                    actor = s.get(Member, boss_id)
                    barrier.wait()
                    h = service.record_harvest(s, actor=actor, data=HarvestIn(
                        commons_id=bed_id, crop="tomate", harvested_on=date(2025, 8, 1), weight_kg=12,
                        destination="shared_meals", source_ref="uuid:same-instance"))
                    s.flush()
                    ids.append(h.id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=resend) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        with session_scope(engine) as s:
            assert s.scalar(select(func.count()).select_from(Harvest)) == 1
            only = s.scalar(select(Harvest.id))
        assert ids == [only] * 4
    finally:
        engine.dispose()


def test_a_gardens_yield_counts_its_area_once(db, people):
    """Docs review: with harvests noted on a garden and on its beds, the yield chart divided by the
    garden's area plus its beds' areas (the beds lie inside the garden: counted twice)."""
    parcels = {p.id: p for p in service.parcels_of(db, cooperative_id=people.coop.id, actor=people.coordinator,
                                                   visible_only=True)}
    garden = next(p for p in parcels.values() if p.kind_code == "garden"
                  and any(b.parent_id == p.id for b in parcels.values()))
    bed = next(b for b in parcels.values() if b.parent_id == garden.id)
    on = date.today()
    for where in (garden.id, bed.id):
        service.record_harvest(db, actor=people.coordinator, data=HarvestIn(
            commons_id=where, crop="courge", harvested_on=on, weight_kg=12.5, destination="members"))
    ids = [garden.id] + [b.id for b in parcels.values() if b.parent_id == garden.id]
    total = db.scalar(select(func.sum(Harvest.weight_kg)).where(
        Harvest.commons_id.in_(ids), func.extract("year", Harvest.harvested_on) == on.year))
    series = reports.chart_series(db, actor=people.coordinator, cooperative_id=people.coop.id)["yields"]
    assert series[garden.name][on.year] == pytest.approx(float(total) / garden.area_m2)
