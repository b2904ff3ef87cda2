"""Demo soil observations, practices and harvests, 2022-2026, through the soil services.

Most land parcels regenerate (no-dig, mulch, compost, hedges, cover crops), the Champ des Chaux
stays stable, the old orchard of Chabrillan degrades (compacted by machinery under the previous
tenant's mowing regime), the Friche des Blaches has a baseline only. The gardens' beds give
realistic yields of French crops, shared between members, shared meals and households in need.
Deterministic: a seeded random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commons_map.register.models import Commons
from commons_map.soil.schemas import HarvestIn, MeasurementIn, PracticeIn, SampleIn
from commons_map.soil.service import record_harvest, record_practice, record_sample


@dataclass(frozen=True)
class Scenario:
    """How a parcel's soil starts and moves per year (SOC in %, BD in g/cm3)."""

    soc_top: float      # 0-10 cm
    soc_sub: float      # 10-30 cm
    bd_top: float
    bd_sub: float
    d_soc_top: float    # per year
    d_soc_sub: float
    d_bd: float
    infiltration: float  # minutes per 25 mm
    r_infiltration: float  # factor per year
    worms: float         # per pit
    d_worms: float
    vess: float
    d_vess: float
    years: tuple[int, ...] = (2022, 2024, 2026)
    lab: str = "Celesta-lab"
    soc_unit: str = "%"
    som_only: bool = False      # lab reports organic matter (loss on ignition) only
    bd_once: bool = False       # bulk density measured at the baseline only


REGEN = dict(d_soc_top=0.045, d_soc_sub=0.014, d_bd=-0.02, r_infiltration=0.78, d_worms=2.5, d_vess=-0.25)
SCENARIOS: dict[str, Scenario] = {
    "land-0": Scenario(1.10, 0.75, 1.32, 1.45, infiltration=48, worms=5, vess=3.6, **REGEN),
    "land-1": Scenario(1.45, 0.95, 1.25, 1.40, infiltration=30, worms=9, vess=3.0, **REGEN, lab="Galys",
                       soc_unit="g/kg"),
    "land-2": Scenario(1.60, 1.05, 1.28, 1.38, d_soc_top=0.002, d_soc_sub=-0.002, d_bd=0.0, infiltration=18,
                       r_infiltration=1.0, worms=12, d_worms=0.0, vess=2.6, d_vess=0.0),
    "land-3": Scenario(1.20, 0.80, 1.30, 1.42, infiltration=40, worms=6, vess=3.4, **REGEN,
                       years=(2022, 2023, 2024, 2025, 2026)),
    "land-4": Scenario(0.95, 0.60, 1.38, 1.50, infiltration=75, worms=3, vess=3.8, **REGEN,
                       years=(2023, 2025)),
    "land-5": Scenario(1.30, 0.85, 1.35, 1.46, 0, 0, 0, infiltration=35, r_infiltration=1.0, worms=7,
                       d_worms=0, vess=3.2, d_vess=0, years=(2025,)),
    "land-6": Scenario(1.90, 1.20, 1.22, 1.35, d_soc_top=-0.035, d_soc_sub=-0.012, d_bd=0.03, infiltration=14,
                       r_infiltration=1.35, worms=16, d_worms=-2.5, vess=2.4, d_vess=0.3),
    "land-7": Scenario(2.10, 1.40, 1.20, 1.33, infiltration=20, worms=14, vess=2.5, **REGEN, som_only=True,
                       bd_once=True, years=(2022, 2025), lab="Galys"),
    "garden-0": Scenario(2.40, 1.50, 1.12, 1.30, d_soc_top=0.09, d_soc_sub=0.03, d_bd=-0.02, infiltration=12,
                         r_infiltration=0.85, worms=18, d_worms=2.0, vess=2.2, d_vess=-0.15, years=(2022, 2025)),
    "garden-1": Scenario(1.70, 1.10, 1.26, 1.40, d_soc_top=0.08, d_soc_sub=0.025, d_bd=-0.025, infiltration=25,
                         r_infiltration=0.8, worms=8, d_worms=2.2, vess=3.1, d_vess=-0.2, years=(2023, 2026)),
}

SAMPLERS = ["mamadou", "lea", "hugo", "ines", "nour", "jeanne", "pierre", "amina"]

PRACTICES: dict[str, list[tuple[str, date, float | None, str | None, str]]] = {
    "land-0": [
        ("no_dig_conversion", date(2022, 3, 12), 21000, "m2",
         "Fin du labour ; passage à la grelinette sur les terrasses."),
        ("hedge", date(2022, 11, 26), 180, "m", "Haie champêtre en bas de terrasse (Sainte-Catherine)."),
        ("mulch", date(2023, 4, 8), 14, "t", "Paille de lavandin broyée."),
        ("cover_crop", date(2023, 9, 30), 75, "kg seed", "Seigle, vesce, féverole."),
        ("mulch", date(2024, 4, 13), 16, "t", "Foin de la Prairie du Moulin."),
        ("cover_crop", date(2025, 10, 4), 80, "kg seed", "Seigle, vesce, phacélie."),
    ],
    "land-1": [
        ("compost", date(2022, 10, 15), 25, "t", "Compost de déchets verts de la plateforme de Crest."),
        ("cover_crop", date(2022, 10, 22), 90, "kg seed", "Avoine, pois fourrager, trèfle incarnat."),
        ("compost", date(2023, 10, 14), 22, "t", "Compost de déchets verts."),
        ("compost", date(2024, 10, 19), 20, "t", "Compost de fumier de la ferme voisine."),
        ("cover_crop", date(2025, 9, 27), 85, "kg seed", "Seigle et vesce."),
    ],
    "land-2": [
        ("grazing", date(2022, 5, 2), 240, "animal days", "Brebis du voisin, rotation sur 4 paddocks."),
        ("grazing", date(2024, 5, 6), 220, "animal days", "Brebis, rotation sur 4 paddocks."),
        ("tillage", date(2025, 3, 20), 10, "cm", "Reprise superficielle avant semis de prairie."),
    ],
    "land-3": [
        ("trees_planted", date(2023, 1, 21), 45, "trees", "Agroforesterie : noyers, cormiers, alisiers."),
        ("mulch", date(2023, 4, 15), 10, "t", "Bois raméal fragmenté au pied des arbres."),
        ("cover_crop", date(2024, 10, 5), 60, "kg seed", "Féverole, seigle."),
    ],
    "land-4": [
        ("hedge", date(2023, 2, 4), 200, "m", "Haie antiérosive en courbe de niveau."),
        ("trees_planted", date(2024, 2, 10), 30, "trees", "Amandiers et figuiers sur le coteau."),
        ("mulch", date(2024, 4, 20), 8, "t", "Paille au pied des plants."),
    ],
    "land-5": [("fallow", date(2025, 3, 1), 22000, "m2", "Friche laissée en repos avant diagnostic.")],
    "land-6": [
        ("tillage", date(2022, 4, 25), 15, "cm", "Broyage et disquage entre les rangs (prêteur, tracteur lourd)."),
        ("tillage", date(2023, 4, 28), 15, "cm", "Disquage entre les rangs, sol humide."),
        ("tillage", date(2024, 5, 2), 15, "cm", "Disquage entre les rangs."),
    ],
    "land-7": [
        ("cover_crop", date(2022, 9, 24), 70, "kg seed", "Sursemis de trèfle et de luzerne."),
        ("grazing", date(2023, 5, 8), 180, "animal days", "Pâturage tournant dynamique."),
        ("grazing", date(2024, 5, 13), 200, "animal days", "Pâturage tournant dynamique."),
    ],
    "garden-0": [
        ("no_dig_conversion", date(2022, 2, 19), 1400, "m2", "Planches permanentes, carton et compost."),
        ("compost", date(2022, 11, 5), 4, "t", "Compost de la compostière collective."),
        ("compost", date(2023, 11, 4), 4.5, "t", "Compost de la compostière collective."),
        ("mulch", date(2024, 5, 11), 18, "m3", "Feuilles mortes et tontes séchées."),
        ("compost", date(2025, 11, 8), 5, "t", "Compost de la compostière collective."),
    ],
    "garden-1": [
        ("no_dig_conversion", date(2023, 2, 25), 900, "m2", "Passage en planches permanentes."),
        ("compost", date(2023, 10, 28), 3, "t", "Compost de déchets verts."),
        ("mulch", date(2024, 4, 27), 12, "m3", "Broyat de taille des haies."),
        ("compost", date(2025, 10, 25), 3.5, "t", "Compost de déchets verts."),
    ],
}

# crop, kg per m2 per year on the share of a bed it occupies, season months, counted instead of weighed
CROPS: list[tuple[str, float, tuple[int, int], bool]] = [
    ("tomate", 6.0, (7, 10), False),
    ("courgette", 5.0, (6, 9), False),
    ("pomme de terre", 2.6, (7, 9), False),
    ("haricot vert", 1.4, (7, 9), False),
    ("poireau", 3.0, (10, 12), False),
    ("carotte", 3.0, (6, 10), False),
    ("courge butternut", 2.4, (9, 10), False),
    ("blette", 3.2, (5, 11), False),
    ("oignon", 2.6, (7, 8), False),
    ("ail", 1.0, (6, 7), False),
    ("aubergine", 2.8, (8, 10), False),
    ("poivron", 2.0, (8, 10), False),
    ("chou", 2.5, (10, 12), False),
    ("fraise", 1.1, (5, 6), False),
    ("laitue", 0.0, (4, 10), True),
]
GARDEN_START = {0: 2022, 1: 2022, 2: 2023, 3: 2024, 4: 2024}
LAST_DAY = date(2026, 10, 31)


def _point_in(session: Session, commons: Commons) -> dict[str, Any]:
    lon, lat = session.execute(
        select(func.ST_X(func.ST_PointOnSurface(Commons.geom)), func.ST_Y(func.ST_PointOnSurface(Commons.geom)))
        .where(Commons.id == commons.id)
    ).one()
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


def _m(indicator: str, value: float, unit: str, method: str, depth: tuple[int, int] | None = None) -> MeasurementIn:
    top, bottom = depth if depth is not None else (None, None)
    return MeasurementIn(indicator=indicator, value=value, unit=unit, method=method, depth_top_cm=top,
                         depth_bottom_cm=bottom)


def _carbon(sc: Scenario, soc: float, depth: tuple[int, int]) -> MeasurementIn:
    """Organic carbon as the parcel's lab reports it: organic matter only, g/kg, or %."""
    if sc.som_only:
        return _m("som", round(soc * 2.0, 2), "%", "loss_on_ignition", depth)
    if sc.soc_unit == "g/kg":
        return _m("soc", round(soc * 10, 1), "g/kg", "dry_combustion", depth)
    return _m("soc", round(soc, 2), "%", "dry_combustion", depth)


def _lab(sc: Scenario, i: int, dt: int, rng: random.Random) -> tuple[list[MeasurementIn], float, float]:
    """The lab's measurements of one sampling (carbon, pH, clay the first time); and the year's
    bulk densities (top, sub), drawn in the same order as ever so the demo stays the same."""
    soc_top = sc.soc_top + sc.d_soc_top * dt + rng.uniform(-0.02, 0.02)
    soc_sub = sc.soc_sub + sc.d_soc_sub * dt + rng.uniform(-0.015, 0.015)
    bd_top = sc.bd_top + sc.d_bd * dt + rng.uniform(-0.01, 0.01)
    bd_sub = sc.bd_sub + sc.d_bd * dt * 0.6 + rng.uniform(-0.01, 0.01)
    out: list[MeasurementIn] = []
    for depth, soc in (((0, 10), soc_top), ((10, 30), soc_sub)):
        out.append(_carbon(sc, soc, depth))
        out.append(_m("ph", round(7.9 + rng.uniform(-0.3, 0.2), 1), "pH", "water", depth))
        if i == 0:  # texture is measured once
            out.append(_m("clay", round(22 + rng.uniform(-3, 3)), "%", "pipette", depth))
    return out, bd_top, bd_sub


def _field(sc: Scenario, i: int, dt: int, bd: tuple[float, float], rng: random.Random) -> list[MeasurementIn]:
    """The field team's measurements: bulk density (rings), worms (three pits), infiltration, VESS."""
    out: list[MeasurementIn] = []
    if not (sc.bd_once and i > 0):
        for depth, v in zip(((0, 10), (10, 30)), bd, strict=True):
            out.append(_m("bulk_density", round(v, 2), "g/cm3", "ring", depth))
    for _pit in range(3):
        worms = max(0, round(sc.worms + sc.d_worms * dt + rng.uniform(-2, 2)))
        out.append(_m("earthworms", worms, "count/pit", "hand_sorting", (0, 20)))
    infil = sc.infiltration * sc.r_infiltration ** dt * rng.uniform(0.92, 1.08)
    out.append(_m("infiltration", round(infil, 1), "min/25mm", "single_ring_15cm"))
    vess = min(5.0, max(1.0, sc.vess + sc.d_vess * dt + rng.uniform(-0.1, 0.1)))
    out.append(_m("vess", round(vess, 1), "score", "spade_test"))
    return out


def _samples(session: Session, result: Any, rng: random.Random) -> int:
    n = 0
    actor = result.members["camille"]
    for key, sc in SCENARIOS.items():
        parcel = result.commons[key]
        point = _point_in(session, parcel)
        for i, year in enumerate(sc.years):
            dt = year - sc.years[0]
            on = date(year, 4, 3 + rng.randint(0, 20))
            sampler = result.members[SAMPLERS[(i + len(key)) % len(SAMPLERS)]]
            lab, bd_top, bd_sub = _lab(sc, i, dt, rng)
            record_sample(session, actor=actor, data=SampleIn(
                sampled_on=on, point=point, commons_id=parcel.id, sampled_by_id=sampler.id, lab=sc.lab,
                lab_report_ref=f"{sc.lab[:3].upper()}-{year}-{1000 + n}",
                notes="Échantillon composite de 12 carottes, tarière manuelle.", measurements=lab,
            ))
            record_sample(session, actor=actor, data=SampleIn(
                sampled_on=on, point=point, commons_id=parcel.id, sampled_by_id=sampler.id,
                notes="Observations de terrain : test bêche, anneau d'infiltration, fosses à vers.",
                measurements=_field(sc, i, dt, (bd_top, bd_sub), rng),
            ))
            n += 2
    return n


def _practices(session: Session, result: Any) -> int:
    n = 0
    actor = result.members["camille"]
    for key, rows in PRACTICES.items():
        for practice, on, qty, unit, details in rows:
            record_practice(session, actor=actor, data=PracticeIn(
                commons_id=result.commons[key].id, practice=practice, started_on=on, quantity=qty, unit=unit,
                details=details,
            ))
            n += 1
    return n


def _shares(rng: random.Random, total: float, year: int) -> dict[str, float]:
    need = 0.12 + 0.025 * (year - 2022) + rng.uniform(-0.03, 0.03)
    parts = {"members": 0.58 - need / 2, "shared_meals": 0.18, "households_in_need": need,
             "other_cooperatives": 0.05, "compost": 0.02}
    if rng.random() < 0.3:
        parts["shared_meals"] += parts.pop("other_cooperatives")
    scale = sum(parts.values())
    out: dict[str, float] = {}
    for dest, share in parts.items():
        out[dest] = round(total * share / scale, 1)
    out = {d: a for d, a in out.items() if a > 0}
    first = next(iter(out))
    out[first] = round(out[first] + total - sum(out.values()), 2)
    return out


def _harvests(session: Session, result: Any, rng: random.Random) -> int:
    n = 0
    actor = result.members["camille"]
    gardeners = ["lea", "hugo", "ines", "nour", "jeanne", "lucas", "chloe", "samir", "fatou", "elise", "karim"]
    beds = sorted((k for k in result.commons if k.startswith("bed-")), key=lambda k: tuple(map(int, k.split("-")[1:])))
    for key in beds:
        bed = result.commons[key]
        gi = int(key.split("-")[1])
        area = bed.area_m2 or 0.0
        for year in range(GARDEN_START[gi], 2027):
            crops = rng.sample(CROPS, 3)
            vigour = (1 + 0.06 * (year - GARDEN_START[gi])) * rng.uniform(0.8, 1.15)
            for crop, kg_m2, (m0, m1), counted in crops:
                entries = rng.randint(2, 3)
                for _e in range(entries):
                    month = rng.randint(m0, m1)
                    on = date(year, month, rng.randint(1, 28))
                    if on > LAST_DAY:
                        on = LAST_DAY - timedelta(days=rng.randint(0, 20))
                    who = result.members[rng.choice(gardeners)].id
                    if counted:
                        heads = rng.randint(20, 80)
                        record_harvest(session, actor=actor, data=HarvestIn(
                            commons_id=bed.id, crop=crop, harvested_on=on, count=heads, harvested_by_id=who,
                            destinations={"members": heads - heads // 3, "shared_meals": heads // 3},
                            notes="Têtes de laitue comptées (pas de balance au jardin).",
                        ))
                    else:
                        kg = round(kg_m2 * area / 3 / entries * vigour * rng.uniform(0.85, 1.15), 1)
                        record_harvest(session, actor=actor, data=HarvestIn(
                            commons_id=bed.id, crop=crop, harvested_on=on, weight_kg=kg, harvested_by_id=who,
                            destinations=_shares(rng, kg, year),
                        ))
                    n += 1
    return n


def load(session: Session, result: Any) -> dict[str, int]:
    """Soil samples, practices and harvests for the demo cooperative (2022-2026)."""
    rng = random.Random(20220403)
    counts = {"samples": _samples(session, result, rng), "practices": _practices(session, result),
              "harvests": _harvests(session, result, rng)}
    # A crop of the cooperative's own, beside the shipped catalogue (coordinators add them).
    from commons_map.soil.crops import add_crop

    add_crop(session, actor=result.members["camille"], code="jerusalem_artichoke", label_fr="Topinambour",
             label_en="Jerusalem artichoke", aliases=["poire de terre"])
    session.flush()
    return counts
