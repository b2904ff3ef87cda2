"""The regeneration status of a parcel: one documented rule over its indicators' trends.

The rule (``regeneration_status``):

1. Only indicators that say which way is better count: the SOC stock (t C/ha, on an equivalent
   soil mass basis when bulk density was measured at both dates), infiltration time (lower is
   better), earthworms per pit (higher), VESS score (lower). Each is compared between its first and
   its latest sampling date.
2. A parcel sampled on fewer than two dates (for every one of these indicators) is
   ``baseline_only``; a parcel never sampled is ``no_data``.
3. Each indicator trends ``+1`` (the right way), ``-1`` (the wrong way) or ``0`` (a change smaller
   than its tolerance in ``TOLERANCES``, which stands for measurement noise).
4. The SOC stock weighs 2, the others 1. The score is the weighted sum.
5. ``regenerating`` when the score is at least 1 and the SOC stock is not going down;
   ``degrading`` when the score is at most -1 and the SOC stock is not going up;
   ``stable`` otherwise (no clear trend, or indicators that disagree with the carbon).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

Status = Literal["regenerating", "stable", "degrading", "baseline_only", "no_data"]
STATUSES: tuple[Status, ...] = ("regenerating", "stable", "degrading", "baseline_only", "no_data")

# Which way is better, for the indicators the rule uses.
DIRECTION: dict[str, int] = {"soc_stock": +1, "infiltration": -1, "earthworms": +1, "vess": -1}
WEIGHT: dict[str, int] = {"soc_stock": 2, "infiltration": 1, "earthworms": 1, "vess": 1}
# A change below this is noise: (relative share of the first value, absolute floor in its unit).
TOLERANCES: dict[str, tuple[float, float]] = {
    "soc_stock": (0.03, 0.5),      # 3 % of the stock, at least 0.5 t C/ha
    "infiltration": (0.15, 1.0),   # 15 %, at least 1 minute per 25 mm
    "earthworms": (0.20, 2.0),     # 20 %, at least 2 worms per pit
    "vess": (0.0, 0.5),            # half a score point
}

STATUS_LABELS: dict[str, dict[str, str]] = {
    "regenerating": {
        "fr": "En régénération",
        "en": "Regenerating",
        "explanation_fr": "Entre le premier et le dernier prélèvement, le carbone du sol augmente ou les"
        " autres indicateurs (infiltration, vers de terre, structure) s'améliorent sans que le carbone baisse.",
        "explanation_en": "Between the first and the latest sampling, soil carbon goes up, or the other"
        " indicators (infiltration, earthworms, structure) improve while carbon does not go down.",
    },
    "stable": {
        "fr": "Stable",
        "en": "Stable",
        "explanation_fr": "Les indicateurs mesurés à plusieurs dates ne montrent pas de tendance nette,"
        " ou se contredisent.",
        "explanation_en": "The indicators measured on several dates show no clear trend, or disagree"
        " with each other.",
    },
    "degrading": {
        "fr": "En dégradation",
        "en": "Degrading",
        "explanation_fr": "Entre le premier et le dernier prélèvement, le carbone du sol baisse ou les"
        " autres indicateurs se dégradent sans que le carbone augmente.",
        "explanation_en": "Between the first and the latest sampling, soil carbon goes down, or the other"
        " indicators get worse while carbon does not go up.",
    },
    "baseline_only": {
        "fr": "État initial seulement",
        "en": "Baseline only",
        "explanation_fr": "Le sol n'a été mesuré qu'à une date : c'est l'état de référence, une tendance"
        " viendra avec le prochain prélèvement.",
        "explanation_en": "The soil was measured on one date only: this is the baseline, a trend will"
        " come with the next sampling.",
    },
    "no_data": {
        "fr": "Pas encore mesuré",
        "en": "Not sampled yet",
        "explanation_fr": "Aucune observation du sol n'a encore été enregistrée sur cette parcelle.",
        "explanation_en": "No soil observation has been recorded on this parcel yet.",
    },
}


@dataclass(frozen=True)
class Trend:
    """An indicator's value at its first and at its latest sampling date."""

    indicator: str
    first: float
    last: float
    first_date: date
    last_date: date
    basis: str | None = None

    @property
    def dates(self) -> int:
        return 1 if self.first_date == self.last_date else 2


def direction(trend: Trend) -> int:
    """+1 when the indicator moved the right way beyond its tolerance, -1 the wrong way, else 0."""
    if trend.dates < 2:
        return 0
    rel, floor = TOLERANCES[trend.indicator]
    tolerance = max(abs(trend.first) * rel, floor)
    delta = trend.last - trend.first
    if abs(delta) < tolerance:
        return 0
    return DIRECTION[trend.indicator] * (1 if delta > 0 else -1)


def regeneration_status(trends: Mapping[str, Trend], *, sampled: bool = True) -> Status:
    """The status of a parcel from its indicators' trends (see the module docstring)."""
    usable = {k: t for k, t in trends.items() if k in DIRECTION}
    if not usable:
        return "no_data" if not sampled else "baseline_only"
    if all(t.dates < 2 for t in usable.values()):
        return "baseline_only"
    dirs = {k: direction(t) for k, t in usable.items() if t.dates >= 2}
    score = sum(WEIGHT[k] * d for k, d in dirs.items())
    soc = dirs.get("soc_stock", 0)
    if score >= 1 and soc >= 0:
        return "regenerating"
    if score <= -1 and soc <= 0:
        return "degrading"
    return "stable"
