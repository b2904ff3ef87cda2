"""The documented regeneration rule: one test per outcome, and the edge cases that decide it."""

from __future__ import annotations

from datetime import date

from commons_map.soil.status import STATUS_LABELS, STATUSES, Trend, direction, regeneration_status

D0, D1 = date(2022, 4, 1), date(2026, 4, 1)


def t(indicator: str, first: float, last: float, d0: date = D0, d1: date = D1) -> Trend:
    return Trend(indicator, first, last, d0, d1)


def test_regenerating_when_carbon_goes_up():
    assert regeneration_status({"soc_stock": t("soc_stock", 40, 44)}) == "regenerating"


def test_regenerating_on_biology_and_structure_when_carbon_holds():
    trends = {"soc_stock": t("soc_stock", 40, 40.3), "earthworms": t("earthworms", 6, 14),
              "infiltration": t("infiltration", 40, 12)}
    assert regeneration_status(trends) == "regenerating"


def test_degrading_when_carbon_goes_down():
    assert regeneration_status({"soc_stock": t("soc_stock", 50, 45)}) == "degrading"


def test_degrading_on_compaction_signs_without_carbon_data():
    trends = {"vess": t("vess", 2.5, 4.0), "infiltration": t("infiltration", 10, 45)}
    assert regeneration_status(trends) == "degrading"


def test_stable_when_changes_are_within_tolerance():
    trends = {"soc_stock": t("soc_stock", 40, 40.4), "earthworms": t("earthworms", 10, 11),
              "vess": t("vess", 3.0, 3.2)}
    assert regeneration_status(trends) == "stable"


def test_stable_when_carbon_falls_but_the_rest_improves():
    trends = {"soc_stock": t("soc_stock", 40, 37), "earthworms": t("earthworms", 5, 15),
              "infiltration": t("infiltration", 60, 10), "vess": t("vess", 4, 2.5)}
    assert regeneration_status(trends) == "stable"


def test_baseline_only_with_one_date():
    trends = {"soc_stock": t("soc_stock", 40, 40, D0, D0), "earthworms": t("earthworms", 8, 8, D0, D0)}
    assert regeneration_status(trends) == "baseline_only"


def test_no_data_when_never_sampled():
    assert regeneration_status({}, sampled=False) == "no_data"


def test_direction_follows_which_way_is_better():
    assert direction(t("infiltration", 30, 10)) == 1   # faster infiltration is better
    assert direction(t("earthworms", 20, 5)) == -1
    assert direction(t("soc_stock", 40, 40.2)) == 0   # within 0.5 t C/ha


def test_every_status_has_french_and_english_labels_and_an_explanation():
    for status in STATUSES:
        labels = STATUS_LABELS[status]
        for key in ("fr", "en", "explanation_fr", "explanation_en"):
            assert labels[key].strip(), (status, key)
        assert labels["explanation_en"].endswith(".")
