"""SOC stocks, SOM conversion, coarse fragments and equivalent soil mass: hand-computed cases."""

from __future__ import annotations

import pytest

from commons_map.settings import Settings
from commons_map.soil import stocks
from commons_map.soil.stocks import Layer, compare_stocks


def test_one_percent_soc_bd_1_3_over_30_cm_is_39_t_c_per_ha():
    # 1 % x 1.3 g/cm3 x 30 cm = 39 t C/ha
    assert stocks.layer_stock_t_ha(1.0, 1.3, 30) == pytest.approx(39.0)
    # the same from g/kg (10 g/kg x 1.3 x 30 x 0.1)
    assert stocks.layer_stock_g_kg(10.0, 1.3, 30) == pytest.approx(39.0)


def test_0_65_percent_bd_1_45_over_30_cm_is_28_3_not_283_nor_2_83():
    value = stocks.layer_stock_t_ha(0.65, 1.45, 30)
    assert value == pytest.approx(28.275)
    assert round(value, 1) == 28.3


def test_profile_sums_layers_and_truncates_at_depth():
    layers = [Layer(0, 10, 2.0, bd=1.1), Layer(10, 30, 1.0, bd=1.3), Layer(30, 60, 0.5, bd=1.5)]
    # 2 x 1.1 x 10 = 22 ; 1 x 1.3 x 20 = 26 ; 0.5 x 1.5 x 30 = 22.5
    assert stocks.profile_stock_t_ha(layers) == pytest.approx(70.5)
    assert stocks.profile_stock_t_ha(layers, 30) == pytest.approx(48.0)
    # to 20 cm: 22 + 1 x 1.3 x 10 = 35
    assert stocks.profile_stock_t_ha(layers, 20) == pytest.approx(35.0)


def test_coarse_fragments_by_volume_and_by_fine_earth_mass_agree():
    # 20 % stones by volume: 39 x 0.8 = 31.2
    assert stocks.layer_stock_t_ha(1.0, 1.3, 30, cf_vol=0.2) == pytest.approx(31.2)
    # Poeplau et al. 2017: 1040 g of fine earth in a 1000 cm3 core -> 1.04 g/cm3 -> 1 x 1.04 x 30
    fe = stocks.fine_earth_density(1040, 1000)
    assert Layer(0, 30, 1.0, fe_density=fe).stock_t_ha == pytest.approx(31.2)
    # fine-earth density wins over bd when both are given
    assert Layer(0, 30, 1.0, bd=1.3, fe_density=fe).stock_t_ha == pytest.approx(31.2)
    with pytest.raises(ValueError):
        stocks.layer_stock_t_ha(1.0, 1.3, 30, cf_vol=1.2)


def test_som_to_soc_uses_the_settings_factor_default_two():
    assert Settings().som_to_soc_factor == 2.0
    assert stocks.soc_from_som(3.4, Settings().som_to_soc_factor) == pytest.approx(1.7)
    assert stocks.soc_from_som(3.448, 1.724) == pytest.approx(2.0)
    # SOM 3.4 % -> SOC 1.7 % -> 1.7 x 1.3 x 30 = 66.3 t C/ha, flagged as an estimate downstream
    layer = Layer(0, 30, stocks.soc_from_som(3.4, 2.0), bd=1.3, soc_estimated=True)
    assert layer.stock_t_ha == pytest.approx(66.3)
    change = compare_stocks([layer], [Layer(0, 30, 1.8, bd=1.3)], years=2)
    assert change.estimate is True


def test_compaction_shows_a_fixed_depth_gain_that_esm_makes_smaller_single_layer():
    # Baseline: 1.0 % SOC, BD 1.2, 0-30 cm -> mass 3600 t/ha, stock 36 t C/ha.
    # Later, compacted: 1.05 % SOC, BD 1.4 -> mass 4200 t/ha, stock 44.1 t C/ha at fixed depth.
    before = [Layer(0, 30, 1.0, bd=1.2)]
    after = [Layer(0, 30, 1.05, bd=1.4)]
    fixed_gain = 44.1 - 36.0
    # ESM at the smaller mass (3600 t/ha): 0.0105 x 3600 = 37.8 t C/ha -> gain 1.8 t C/ha.
    change = compare_stocks(before, after, years=4)
    assert change.basis == "esm"
    assert change.ref_mass_t_ha == pytest.approx(3600)
    assert change.stock_before_t_ha == pytest.approx(36.0)
    assert change.stock_after_t_ha == pytest.approx(37.8)
    assert change.change_t_ha == pytest.approx(1.8)
    assert 0 < change.change_t_ha < fixed_gain
    # Ellert & Bettany's single-layer shortcut gives the same figure.
    assert stocks.single_layer_esm(44.1, 4200, 3600, 0.0105) == pytest.approx(37.8)
    # per year and CO2e: 1.8 / 4 = 0.45 t C/ha/yr -> x 44/12 = 1.65 t CO2e/ha/yr; 5000 m2 -> 0.825 t
    assert change.change_t_ha_per_year == pytest.approx(0.45)
    assert change.co2e_t_ha_per_year == pytest.approx(1.65)
    assert change.co2e_t_per_year(5000) == pytest.approx(0.825)


def test_esm_two_layers_interpolates_cumulative_mass():
    # Baseline: 0-15 cm 1.2 % BD 1.2 (1800 t, 21.6 t C); 15-30 cm 0.8 % BD 1.3 (1950 t, 15.6 t C)
    #   -> M = 3750 t/ha, C = 37.2 t C/ha.
    # Later: 0-15 cm 1.3 % BD 1.35 (2025 t, 26.325 t C); 15-30 cm 0.85 % BD 1.45 (2175 t, 18.4875 t C)
    #   -> M = 4200 t/ha, C = 44.8125 t C/ha at fixed depth (gain 7.6125).
    # At M_ref = 3750: 26.325 + (3750 - 2025) x 0.0085 = 40.9875 -> ESM gain 3.7875.
    before = [Layer(0, 15, 1.2, bd=1.2), Layer(15, 30, 0.8, bd=1.3)]
    after = [Layer(0, 15, 1.3, bd=1.35), Layer(15, 30, 0.85, bd=1.45)]
    assert stocks.profile_stock_t_ha(after) - stocks.profile_stock_t_ha(before) == pytest.approx(7.6125)
    change = compare_stocks(before, after, years=3)
    assert change.basis == "esm"
    assert change.ref_mass_t_ha == pytest.approx(3750)
    assert change.stock_after_t_ha == pytest.approx(40.9875)
    assert change.change_t_ha == pytest.approx(3.7875)
    assert stocks.cumulative(after) == [(0.0, 0.0), pytest.approx((2025.0, 26.325)), pytest.approx((4200.0, 44.8125))]


def test_loosening_hides_a_gain_at_fixed_depth_that_esm_reveals():
    # Tillage loosens: BD 1.4 -> 1.2, SOC 1.0 -> 1.1 %. Fixed depth: 42 -> 39.6 (a "loss").
    # ESM at 3600 t/ha: before = 0.01 x 3600 = 36; after = 39.6 -> a gain of 3.6.
    change = compare_stocks([Layer(0, 30, 1.0, bd=1.4)], [Layer(0, 30, 1.1, bd=1.2)], years=1)
    assert change.change_t_ha == pytest.approx(3.6)


def test_fixed_depth_when_bulk_density_was_not_measured_at_both_dates():
    before = [Layer(0, 30, 1.0, bd=1.3)]
    after = [Layer(0, 30, 1.2, bd=1.3, bd_measured=False)]
    change = compare_stocks(before, after, years=2)
    assert change.basis == "fixed_depth"
    assert change.ref_mass_t_ha is None
    assert change.change_t_ha == pytest.approx(1.2 * 1.3 * 30 - 39)
    assert any("fixed-depth" in n for n in change.notes)


def test_compared_depth_is_the_shallower_profile():
    before = [Layer(0, 20, 1.0, bd=1.3)]
    after = [Layer(0, 10, 1.2, bd=1.2), Layer(10, 30, 1.0, bd=1.3)]
    change = compare_stocks(before, after, years=1)
    assert change.depth_cm == 20


def test_extrapolates_below_the_deepest_layer_with_its_concentration():
    layers = [Layer(0, 10, 2.0, bd=1.0)]  # 1000 t/ha, 20 t C
    assert stocks.carbon_at_mass(layers, 1500) == pytest.approx(20 + 500 * 0.02)


def test_profiles_with_gaps_or_not_from_the_surface_are_refused():
    with pytest.raises(ValueError, match="start at 0"):
        stocks.check_profile([Layer(5, 30, 1.0, bd=1.3)])
    with pytest.raises(ValueError, match="gap"):
        stocks.check_profile([Layer(0, 10, 1.0, bd=1.3), Layer(15, 30, 1.0, bd=1.3)])
    with pytest.raises(ValueError, match="after"):
        compare_stocks([Layer(0, 30, 1, bd=1.3)], [Layer(0, 30, 1, bd=1.3)], years=0)
