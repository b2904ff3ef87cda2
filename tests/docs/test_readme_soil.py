"""The README's soil figures are the code's: the worked example, the checks and the rule's table.

Recomputed here with commons_map/soil (no database), then looked for in README.md, so that a change
to the formulas or to the thresholds fails until the README says the same.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from commons_map.soil import stocks
from commons_map.soil.service import STOCK_DEPTH_CM, DateValues, summarise
from commons_map.soil.status import TOLERANCES, WEIGHT, Trend, regeneration_status
from commons_map.soil.stocks import Layer

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
FIRST, LATEST = date(2021, 4, 12), date(2025, 4, 14)
BEFORE = [Layer(0, 10, 1.2, bd=1.30, cf_vol=0.10), Layer(10, 30, 0.8, bd=1.40, cf_vol=0.10)]
AFTER = [Layer(0, 10, 1.5, bd=1.20, cf_vol=0.10), Layer(10, 30, 0.9, bd=1.35, cf_vol=0.10)]


def _soil_section() -> str:
    start = README.index("## Soil and food")
    return README[start:README.index("\n## ", start + 1)]


def la_sum(layers: list[Layer]) -> float:
    return sum(la.mass_t_ha for la in layers)


def test_the_single_layer_checks():
    assert stocks.layer_stock_t_ha(1.0, 1.3, 30) == pytest.approx(39.0)
    assert stocks.layer_stock_t_ha(0.65, 1.45, 30) == pytest.approx(28.275)
    assert "gives 39.0 t C/ha" in _soil_section() and "gives 28.275 t C/ha" in _soil_section()


def test_the_worked_example_is_what_the_code_computes():
    text = _soil_section()
    years = (LATEST - FIRST).days / 365.25
    assert f"{(LATEST - FIRST).days:,} days = {years:.4f} years" in text
    for la, mass, stock in zip(BEFORE + AFTER, ("1,170", "2,520", "1,080", "2,430"),
                               ("14.04", "20.16", "16.20", "21.87"), strict=True):
        assert f"{la.mass_t_ha:,.0f}" == mass and f"{la.stock_t_ha:.2f}" == stock
        assert f"| {mass} t/ha | {stock} t C/ha |" in text
    fixed = (stocks.profile_stock_t_ha(BEFORE), stocks.profile_stock_t_ha(AFTER))
    assert f"{fixed[0]:.2f} → {fixed[1]:.2f} t C/ha (+{fixed[1] - fixed[0]:.2f})" in text
    change = stocks.compare_stocks(BEFORE, AFTER, years=years, depth_cm=STOCK_DEPTH_CM)
    assert change.basis == "esm"
    assert change.ref_mass_t_ha == pytest.approx(min(la_sum(BEFORE), la_sum(AFTER)))
    assert f"M_ref = {change.ref_mass_t_ha:,.0f} t/ha" in text
    assert f"= {change.stock_before_t_ha:.2f} t C/ha" in text
    assert f"C_2025(3,510) = {change.stock_after_t_ha:.2f} t C/ha" in text
    assert f"= {change.change_t_ha_per_year:.3f} t C/ha/yr" in text
    assert f"fixed depth would say {(fixed[1] - fixed[0]) / years:.3f}" in text
    assert f"= {change.co2e_t_per_year(5000):.2f} t CO2/yr" in text


def test_the_worked_parcel_is_regenerating_with_score_5():
    days = []
    for on, (top, sub), worms, infil, vess in (
        (FIRST, BEFORE, 6, 40, 3.4), (LATEST, AFTER, 11, 22, 2.8),
    ):
        d = DateValues(on)
        for la in (top, sub):
            d.layers[(la.top_cm, la.bottom_cm)] = {"soc": la.soc_pct, "bulk_density": la.bd, "coarse_fragments": 10.0}
        d.surface = {"earthworms": worms, "infiltration": infil, "vess": vess}
        days.append(d)
    s = summarise(1, "parcel", "land", 5000.0, days, som_factor=2.0)
    assert s.status == "regenerating" and s.basis == "esm"
    assert round(s.co2e_t_per_year, 2) == 2.43
    assert "the parcel is `regenerating` (score 2 + 1 + 1 + 1 = 5" in _soil_section()


def test_the_rule_table_and_examples_match_status_py():
    text = _soil_section()
    rows = {
        "soc_stock": "| SOC stock | 3 % | 0.5 t C/ha | 2 |",
        "infiltration": "| infiltration | 15 % | 1 min/25 mm | 1 |",
        "earthworms": "| earthworms | 20 % | 2 per pit | 1 |",
        "vess": "| VESS | 0 | 0.5 score | 1 |",
    }
    for code, row in rows.items():
        rel, floor = TOLERANCES[code]
        assert row in text
        assert f"| {rel * 100:g} %" in row or (rel == 0 and "| 0 |" in row)
        assert f"{floor:g}" in row and row.endswith(f"| {WEIGHT[code]} |")
    a, b = date(2021, 1, 1), date(2025, 1, 1)

    def status(**moves: tuple[float, float]) -> str:
        return regeneration_status({k: Trend(k, f, la, a, b) for k, (f, la) in moves.items()})

    assert status(soc_stock=(40, 42)) == "regenerating"
    assert status(soc_stock=(40, 38), earthworms=(6, 11), infiltration=(40, 22)) == "stable"
    assert status(soc_stock=(40, 40.5), earthworms=(6, 11)) == "regenerating"
    assert status(soc_stock=(40, 38), earthworms=(6, 11)) == "degrading"
    assert regeneration_status({}, sampled=True) == "baseline_only"
