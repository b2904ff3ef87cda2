"""Charts as PNG (matplotlib, Agg backend): SOC trend and yields per parcel."""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def soc_trend_png(series: dict[str, list[tuple[date, float]]], *, title: str = "") -> bytes:
    """SOC stock (t C/ha, 0-30 cm) per sampling date, one line per parcel.

    The series are comparable across dates: on an equivalent soil mass basis where bulk density was
    measured each time (``ParcelSummary.series_basis`` says which), so compaction does not show as a gain.
    """
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, points in sorted(series.items()):
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=name)
    if not series:
        ax.text(0.5, 0.5, "Aucune mesure / no measurement yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("Stock de carbone / SOC stock (t C/ha, 0-30 cm)\nà masse de sol équivalente / equivalent soil mass")
    ax.set_xlabel("Date de prélèvement / sampling date")
    ax.set_title(title or "Carbone organique du sol par parcelle / Soil organic carbon per parcel")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def yields_png(yields: dict[str, dict[int, float]], *, title: str = "") -> bytes:
    """kg/m2 per year, grouped bars per parcel (a garden sums its beds)."""
    fig, ax = plt.subplots(figsize=(9, 5))
    years = sorted({y for by_year in yields.values() for y in by_year})
    names = sorted(yields)
    width = 0.8 / max(len(years), 1)
    for i, y in enumerate(years):
        xs = [j + i * width for j in range(len(names))]
        ax.bar(xs, [yields[n].get(y, 0.0) for n in names], width=width, label=str(y))
    ax.set_xticks([j + width * (len(years) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("Rendement / yield (kg/m²)")
    ax.set_title(title or "Rendement des jardins par an / Garden yields per year")
    if not yields:
        ax.text(0.5, 0.5, "Aucune récolte / no harvest yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
