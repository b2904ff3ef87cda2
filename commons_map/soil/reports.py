"""Reports: a parcel's timeline and the cooperative's annual report, as JSON-ready dicts and CSV.

Work hours come from the ledger (``commons_map.ledger.service.minutes_by_commons``) when that
module is installed; the reports say so in ``work_hours_source``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.errors import ValidationFailed
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_member_of
from commons_map.register.models import Commons
from commons_map.register.service import get_commons, visible_clause
from commons_map.soil import service
from commons_map.soil.crops import crop_labels
from commons_map.soil.models import Harvest, HarvestShare, Practice, Sample
from commons_map.soil.status import STATUS_LABELS, STATUSES

SEASONS = ("winter", "spring", "summer", "autumn")
SEASON_LABELS = {"winter": "hiver", "spring": "printemps", "summer": "été", "autumn": "automne"}


def season_of(day: date) -> str:
    """Meteorological season: '2025-spring' (Mar-May), summer, autumn; winter is named by its December."""
    m = day.month
    if m in (3, 4, 5):
        return f"{day.year}-spring"
    if m in (6, 7, 8):
        return f"{day.year}-summer"
    if m in (9, 10, 11):
        return f"{day.year}-autumn"
    return f"{day.year if m == 12 else day.year - 1}-winter"


def _minutes_by_commons() -> Callable[..., dict[int, int]] | None:
    """The ledger's per-commons work minutes, when the ledger is installed."""
    try:
        from commons_map.ledger import service as ledger
    except ImportError:
        return None
    return getattr(ledger, "minutes_by_commons", None)


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {cid: name for cid, name in session.execute(select(Commons.id, Commons.name).where(Commons.id.in_(ids)))}


# --- a parcel's timeline ------------------------------------------------------------------------


def timeline(session: Session, *, actor: Member | None, commons_id: int) -> dict[str, Any]:
    """Observations, practices, harvests and work hours on a parcel and what lies inside it, by date."""
    parcel = get_commons(session, actor=actor, commons_id=commons_id)
    ids = set(service.subtree_ids(session, parcel.id))
    visible = set(session.scalars(select(Commons.id).where(Commons.id.in_(ids), visible_clause(actor, Commons))))
    names = _names(session, visible)
    events: list[dict[str, Any]] = []
    for s in session.scalars(select(Sample).where(Sample.commons_id.in_(visible), Sample.withdrawn_at.is_(None))):
        events.append({
            "date": s.sampled_on, "type": "observation", "id": s.id, "commons_id": s.commons_id,
            "commons": names[s.commons_id], "lab": s.lab or None,
            "measurements": [
                {"indicator": m.indicator_code, "value": m.value, "unit": m.unit, "method": m.method,
                 "depth_top_cm": m.depth_top_cm, "depth_bottom_cm": m.depth_bottom_cm,
                 "confirmed_out_of_range": m.confirmed_out_of_range}
                for m in s.measurements
            ],
        })
    for p in session.scalars(select(Practice).where(Practice.commons_id.in_(visible))):
        events.append({
            "date": p.started_on, "type": "practice", "id": p.id, "commons_id": p.commons_id,
            "commons": names[p.commons_id], "practice": p.practice,
            "label_fr": service.PRACTICES.get(p.practice, {}).get("fr", p.practice),
            "label_en": service.PRACTICES.get(p.practice, {}).get("en", p.practice),
            "ended_on": p.ended_on, "quantity": p.quantity, "unit": p.unit, "details": p.details,
        })
    for h in session.scalars(select(Harvest).where(Harvest.commons_id.in_(visible))):
        events.append({
            "date": h.harvested_on, "type": "harvest", "id": h.id, "commons_id": h.commons_id,
            "commons": names[h.commons_id], "crop": h.crop, "weight_kg": h.weight_kg, "count": h.count,
            "destinations": {s.destination: s.amount for s in h.shares},
        })
    minutes_fn = _minutes_by_commons()
    if minutes_fn is not None and is_member_of(actor, parcel.cooperative_id) and events:
        years = range(min(e["date"] for e in events).year, max(e["date"] for e in events).year + 1)
        for y in years:
            per = minutes_fn(session, cooperative_id=parcel.cooperative_id, year=y)
            minutes = sum(per.get(i, 0) for i in visible)
            if minutes:
                events.append({"date": date(y, 12, 31), "type": "work", "year": y, "commons_id": parcel.id,
                               "commons": parcel.name, "hours": round(minutes / 60, 2)})
    order = {"practice": 0, "observation": 1, "harvest": 2, "work": 3}
    events.sort(key=lambda e: (e["date"], order[e["type"]], e.get("id") or 0))
    return {
        "commons_id": parcel.id, "name": parcel.name, "kind": parcel.kind_code,
        "work_hours_source": "ledger" if minutes_fn is not None else None,
        "events": events,
    }


def timeline_csv(tl: dict[str, Any]) -> str:
    """The timeline as CSV, one row per measurement, practice, harvest or work total."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["date", "type", "commons_id", "commons", "what", "value", "unit", "method",
                "depth_top_cm", "depth_bottom_cm", "details"])
    for e in tl["events"]:
        base = [e["date"].isoformat(), e["type"], e["commons_id"], e["commons"]]
        if e["type"] == "observation":
            for m in e["measurements"]:
                w.writerow(base + [m["indicator"], m["value"], m["unit"], m["method"] or "",
                                   _n(m["depth_top_cm"]), _n(m["depth_bottom_cm"]), e["lab"] or ""])
        elif e["type"] == "practice":
            w.writerow(base + [e["practice"], _n(e["quantity"]), e["unit"] or "", "", "", "", e["details"]])
        elif e["type"] == "harvest":
            qty, unit = (e["weight_kg"], "kg") if e["weight_kg"] is not None else (e["count"], "items")
            dests = ";".join(f"{k}={v:g}" for k, v in e["destinations"].items())
            w.writerow(base + [e["crop"], qty, unit, "", "", "", dests])
        else:
            w.writerow(base + ["work hours", e["hours"], "h", "", "", "", ""])
    return out.getvalue()


def _n(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


# --- the annual report --------------------------------------------------------------------------


def _effective_areas(summaries: dict[int, service.ParcelSummary], parents: dict[int, int | None]) -> dict[int, float]:
    """A parcel's area less the areas of parcels inside it that carry their own SOC change."""
    own = {pid for pid, s in summaries.items() if s.soc_change_t_ha_per_year is not None}
    area = {pid: s.area_m2 or 0.0 for pid, s in summaries.items()}
    for pid in own:
        anc = parents.get(pid)
        while anc is not None:
            if anc in own:
                area[anc] -= summaries[pid].area_m2 or 0.0
                break
            anc = parents.get(anc)
    return {pid: max(a, 0.0) for pid, a in area.items()}


def annual_report(session: Session, *, actor: Member | None, cooperative_id: int, year: int) -> dict[str, Any]:
    """The cooperative's year: land under regeneration, parcels by status, SOC change and t CO2e,
    harvests by crop and destination, yields per bed and season, volunteer hours.

    Only the parcels the actor may see are counted. Soil figures use what was known on 31 December.
    """
    coop = session.get(Cooperative, cooperative_id)
    if coop is None:
        raise ValidationFailed("soil.no_cooperative", field="cooperative_id", cooperative_id=cooperative_id)
    if not 1990 <= year <= 2200:
        raise ValidationFailed("soil.implausible_year", field="year", year=year)
    end = date(year, 12, 31)
    summaries = service.parcel_summaries(session, cooperative_id=cooperative_id, until=end, actor=actor,
                                         visible_only=True)
    parcels = {p.id: p for p in service.parcels_of(session, cooperative_id=cooperative_id, actor=actor,
                                                   visible_only=True)}
    parents = {pid: p.parent_id for pid, p in parcels.items()}
    # Soil parcels: lands and gardens, and beds that were sampled.
    soil = {pid: s for pid, s in summaries.items() if s.kind != "bed" or s.status != "no_data"}
    counts = dict.fromkeys(STATUSES, 0)
    for s in soil.values():
        counts[s.status] += 1
    regen_ids = [pid for pid, s in soil.items() if s.status == "regenerating"]
    area_regen = 0.0
    if regen_ids:
        area_regen = float(session.scalar(
            select(func.ST_Area(func.Geography(func.ST_Union(Commons.geom)))).where(Commons.id.in_(regen_ids))
        ) or 0.0)
    eff = _effective_areas(soil, parents)
    soc_rows = []
    total_c = total_co2 = 0.0
    for pid, s in sorted(soil.items()):
        if s.soc_change_t_ha_per_year is None:
            continue
        c_year = s.soc_change_t_ha_per_year * eff[pid] / 10_000
        total_c += c_year
        total_co2 += c_year * 44 / 12
        soc_rows.append({
            "commons_id": pid, "name": s.name, "basis": s.basis, "estimate": s.estimate,
            "soc_stock_t_ha": _r(s.soc_stock_t_ha), "soc_change_t_ha_per_year": _r(s.soc_change_t_ha_per_year, 3),
            "area_counted_m2": round(eff[pid], 1), "t_c_per_year": round(c_year, 3),
            "t_co2e_per_year": round(c_year * 44 / 12, 3),
        })

    food = harvest_figures(session, actor=actor, cooperative_id=cooperative_id, year=year, parcels=parcels)

    minutes_fn = _minutes_by_commons()
    hours: dict[str, Any] = {"source": None, "total": None, "on_parcels": None}
    if minutes_fn is not None and is_member_of(actor, cooperative_id):
        per = minutes_fn(session, cooperative_id=cooperative_id, year=year)
        hours = {"source": "ledger", "total": round(sum(per.values()) / 60, 2),
                 "on_parcels": round(sum(m for cid, m in per.items() if cid in parcels) / 60, 2)}
    return {
        "cooperative": {"id": coop.id, "name": coop.name},
        "year": year,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "area_under_regeneration_m2": round(area_regen, 1),
        "area_under_regeneration_ha": round(area_regen / 10_000, 3),
        "parcels_by_status": counts,
        "status_labels": STATUS_LABELS,
        "soc": {
            "total_t_c_per_year": round(total_c, 3),
            "total_t_co2e_per_year": round(total_co2, 3),
            "note": "Changes between each parcel's first and latest sampling up to 31 December, 0-30 cm,"
                    " on an equivalent soil mass basis where bulk density was measured at both dates"
                    " (else fixed depth, as each row says); a parcel's area excludes parcels inside it"
                    " that carry their own figure.",
            "parcels": soc_rows,
        },
        "parcels": [s.as_dict() for s in sorted(soil.values(), key=lambda s: s.commons_id)],
        "food": food,
        "volunteer_hours": hours,
        "exchange": exchange_figures(session, actor=actor, cooperative_id=cooperative_id, year=year),
    }


def exchange_figures(session: Session, *, actor: Member | None, cooperative_id: int, year: int) -> dict | None:
    """The year's exchanges in time (hours per month and category, members active, pairs, share
    to supported members), for the cooperative's members only; None for anyone else."""
    if not is_member_of(actor, cooperative_id):
        return None
    from commons_map.exchange.figures import figures

    return figures(session, actor=actor, year=year)  # type: ignore[arg-type]


def harvest_figures(
    session: Session, *, actor: Member | None, cooperative_id: int, year: int,
    parcels: dict[int, Commons] | None = None,
) -> dict[str, Any]:
    """A year's harvests: kg by crop and destination, yields per bed and season, share to households in need."""
    if parcels is None:
        parcels = {p.id: p for p in service.parcels_of(session, cooperative_id=cooperative_id, actor=actor,
                                                       visible_only=True)}
    rows = session.execute(
        select(Harvest.id, Harvest.commons_id, Harvest.crop, Harvest.harvested_on, Harvest.weight_kg, Harvest.count)
        .where(Harvest.cooperative_id == cooperative_id, Harvest.commons_id.in_(list(parcels) or [-1]),
               Harvest.harvested_on >= date(year, 1, 1), Harvest.harvested_on <= date(year, 12, 31))
    ).all()
    shares = defaultdict(dict)
    if rows:
        for hid, dest, amount in session.execute(
            select(HarvestShare.harvest_id, HarvestShare.destination, HarvestShare.amount)
            .where(HarvestShare.harvest_id.in_([r.id for r in rows]))
        ):
            shares[hid][dest] = amount
    kg_by_crop: dict[str, float] = defaultdict(float)
    count_by_crop: dict[str, int] = defaultdict(int)
    kg_by_dest: dict[str, float] = defaultdict(float)
    kg_by_crop_dest: dict[tuple[str, str], float] = defaultdict(float)
    bed_season: dict[tuple[int, str], float] = defaultdict(float)
    crop_season_kg: dict[tuple[str, str], float] = defaultdict(float)
    crop_season_beds: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in rows:
        if r.weight_kg is None:
            count_by_crop[r.crop] += r.count or 0
            continue
        kg_by_crop[r.crop] += r.weight_kg
        given = shares.get(r.id, {})
        for dest, amount in given.items():
            kg_by_dest[dest] += amount
            kg_by_crop_dest[(r.crop, dest)] += amount
        rest = r.weight_kg - sum(given.values())
        if rest > 1e-6:
            kg_by_dest["not_recorded"] += rest
            kg_by_crop_dest[(r.crop, "not_recorded")] += rest
        season = season_of(r.harvested_on)
        bed_season[(r.commons_id, season)] += r.weight_kg
        crop_season_kg[(r.crop, season)] += r.weight_kg
        crop_season_beds[(r.crop, season)].add(r.commons_id)
    total = sum(kg_by_crop.values())
    yields_bed = []
    for (cid, season), kg in sorted(bed_season.items()):
        area = parcels[cid].area_m2 or 0.0
        yields_bed.append({"commons_id": cid, "name": parcels[cid].name, "season": season,
                           "kg": round(kg, 2), "area_m2": round(area, 1),
                           "kg_per_m2": round(kg / area, 3) if area else None})
    yields_crop = []
    for (crop, season), kg in sorted(crop_season_kg.items()):
        area = sum(parcels[c].area_m2 or 0.0 for c in crop_season_beds[(crop, season)])
        yields_crop.append({"crop": crop, "season": season, "kg": round(kg, 2), "area_m2": round(area, 1),
                            "kg_per_m2": round(kg / area, 3) if area else None})
    need = kg_by_dest.get("households_in_need", 0.0)
    return {
        "total_kg": round(total, 2),
        "kg_by_crop": {k: round(v, 2) for k, v in sorted(kg_by_crop.items(), key=lambda kv: -kv[1])},
        "count_by_crop": dict(sorted(count_by_crop.items())),
        "kg_by_destination": {k: round(v, 2) for k, v in sorted(kg_by_dest.items())},
        "kg_by_crop_and_destination": [
            {"crop": c, "destination": d, "kg": round(v, 2)} for (c, d), v in sorted(kg_by_crop_dest.items())
        ],
        "households_in_need_kg": round(need, 2),
        "households_in_need_share": round(need / total, 4) if total else None,
        "yields_per_bed_and_season": yields_bed,
        "yields_per_crop_and_season": yields_crop,
        "destination_labels": service.DESTINATION_LABELS,
        # The crops are the catalogue's codes (one crop whatever its spelling): their names to show.
        "crop_labels": {c: v for c, v in crop_labels(session, cooperative_id=cooperative_id).items()
                        if c in kg_by_crop or c in count_by_crop},
    }


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


CSV_COLUMNS = ["section", "commons_id", "name", "crop", "destination", "season", "status", "measure", "value", "unit"]


def report_rows(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The annual report flattened into long rows (one figure per row), for CSV and spreadsheets."""
    rows: list[dict[str, Any]] = []

    def add(section: str, measure: str, value: Any, unit: str = "", **kw: Any) -> None:
        rows.append({"section": section, "measure": measure, "value": value, "unit": unit, **kw})

    add("summary", "area_under_regeneration", rep["area_under_regeneration_m2"], "m2")
    for status, n in rep["parcels_by_status"].items():
        add("summary", "parcels", n, "parcels", status=status)
    add("summary", "soc_change", rep["soc"]["total_t_c_per_year"], "t C/yr")
    add("summary", "co2e", rep["soc"]["total_t_co2e_per_year"], "t CO2e/yr")
    add("summary", "harvest_total", rep["food"]["total_kg"], "kg")
    add("summary", "households_in_need_share", rep["food"]["households_in_need_share"], "share")
    add("summary", "volunteer_hours", rep["volunteer_hours"]["total"], "h")
    ex = rep.get("exchange")
    if ex is not None:
        add("exchange", "hours_exchanged", round(ex["minutes_exchanged"] / 60, 2), "h")
        add("exchange", "members_active", ex["members_active"], "members")
        add("exchange", "distinct_pairs", ex["distinct_pairs"], "pairs")
        add("exchange", "supported_share", ex["supported_share"], "share")
        for m in ex["per_month"]:
            add("exchange", "hours_by_month", round(m["minutes"] / 60, 2), "h", name=m["month"])
        for c in ex["per_category"]:
            add("exchange", "hours_by_category", round(c["minutes"] / 60, 2), "h", name=c["category"])
    for p in rep["parcels"]:
        base = {"commons_id": p["commons_id"], "name": p["name"], "status": p["status"]}
        add("parcel", "soc_stock", p["soc_stock_t_ha"], "t C/ha", **base)
        add("parcel", f"soc_change_{p['basis'] or 'none'}", p["soc_change_t_ha_per_year"], "t C/ha/yr", **base)
        add("parcel", "co2e", p["co2e_t_per_year"], "t CO2e/yr", **base)
    for crop, kg in rep["food"]["kg_by_crop"].items():
        add("harvest", "kg_by_crop", kg, "kg", crop=crop)
    for item in rep["food"]["kg_by_crop_and_destination"]:
        add("harvest", "kg_by_crop_and_destination", item["kg"], "kg", crop=item["crop"],
            destination=item["destination"])
    for dest, kg in rep["food"]["kg_by_destination"].items():
        add("harvest", "kg_by_destination", kg, "kg", destination=dest)
    for y in rep["food"]["yields_per_bed_and_season"]:
        add("yield", "kg_per_m2", y["kg_per_m2"], "kg/m2", commons_id=y["commons_id"], name=y["name"],
            season=y["season"])
    for y in rep["food"]["yields_per_crop_and_season"]:
        add("yield", "kg_per_m2", y["kg_per_m2"], "kg/m2", crop=y["crop"], season=y["season"])
    return [{c: ("" if r.get(c) is None else r.get(c)) for c in CSV_COLUMNS} for r in rows]


def report_csv(rep: dict[str, Any]) -> str:
    """The annual report as CSV (long format: section, ..., measure, value, unit)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(report_rows(rep))
    return out.getvalue()


# --- series for the charts ------------------------------------------------------------------------


def chart_series(session: Session, *, actor: Member | None, cooperative_id: int) -> dict[str, Any]:
    """SOC stock per sampling date and kg/m2 per year, per parcel the actor may see."""
    summaries = service.parcel_summaries(session, cooperative_id=cooperative_id, actor=actor, visible_only=True)
    soc = {
        (s.name if s.series_basis == "esm" else f"{s.name} (profondeur fixe / fixed depth)"): s.stock_series
        for s in summaries.values() if s.stock_series
    }
    parcels = {p.id: p for p in service.parcels_of(session, cooperative_id=cooperative_id, actor=actor,
                                                   visible_only=True)}
    # Yields per top-level parcel (a garden sums its beds), per year, over the area of its beds.
    parents = {pid: p.parent_id for pid, p in parcels.items()}

    def garden_of(cid: int) -> int:
        while parcels[cid].kind_code == "bed" and parents.get(cid) in parcels:
            cid = parents[cid]  # type: ignore[assignment]
        return cid

    rows = session.execute(
        select(Harvest.commons_id, func.extract("year", Harvest.harvested_on), func.sum(Harvest.weight_kg))
        .where(Harvest.cooperative_id == cooperative_id, Harvest.commons_id.in_(list(parcels) or [-1]),
               Harvest.weight_kg.is_not(None))
        .group_by(Harvest.commons_id, func.extract("year", Harvest.harvested_on))
    ).all()
    kg: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    beds: dict[int, set[int]] = defaultdict(set)
    for cid, y, total in rows:
        g = garden_of(cid)
        kg[g][int(y)] += float(total)
        beds[g].add(cid)
    yields = {}
    for g, by_year in kg.items():
        # Harvests noted on the garden itself come from anywhere in it: its whole area (its beds lie
        # inside it, so adding theirs would count them twice); else the beds harvested.
        area = (parcels[g].area_m2 or 0.0) if g in beds[g] else sum(parcels[b].area_m2 or 0.0 for b in beds[g])
        if area:
            yields[parcels[g].name] = {y: v / area for y, v in sorted(by_year.items())}
    return {"soc": soc, "yields": yields}
