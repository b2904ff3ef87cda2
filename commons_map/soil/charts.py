"""Charts (matplotlib, Agg backend), as PNG or SVG: SOC trend and yields per parcel.

Readable with many parcels: up to ``ONE_CHART_MAX`` parcels share one chart, each with its own
colour of a colour-blind-safe palette (Okabe & Ito), its own marker and its name written at the
end of its line; beyond that the SOC chart becomes small multiples, one panel per parcel (the
others in light grey behind it, for comparison), since no palette keeps a dozen lines apart.
Texts are in French and English together, or in one language (``locale``).
"""

from __future__ import annotations

import io
import math
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito's colour-blind-safe palette (its yellow darkened to read on white paper).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#B59F00"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]
ONE_CHART_MAX = len(PALETTE)
PANEL_COLUMNS = 4

TEXTS: dict[str | None, dict[str, str]] = {
    None: {
        "soc_y": "Stock de carbone / SOC stock (t C/ha, 0-30 cm)\nà masse de sol équivalente / equivalent soil mass",
        "soc_x": "Date de prélèvement / sampling date",
        "soc_title": "Carbone organique du sol par parcelle / Soil organic carbon per parcel",
        "no_soc": "Aucune mesure / no measurement yet",
        "yield_y": "Rendement / yield (kg/m²)",
        "yield_title": "Rendement des jardins par an / Garden yields per year",
        "no_yield": "Aucune récolte / no harvest yet",
    },
    "fr": {
        "soc_y": "Stock de carbone (t C/ha, 0-30 cm)\nà masse de sol équivalente",
        "soc_x": "Date de prélèvement",
        "soc_title": "Carbone organique du sol par parcelle",
        "no_soc": "Aucune mesure",
        "yield_y": "Rendement (kg/m²)",
        "yield_title": "Rendement des jardins par an",
        "no_yield": "Aucune récolte",
    },
    "en": {
        "soc_y": "SOC stock (t C/ha, 0-30 cm)\nequivalent soil mass",
        "soc_x": "Sampling date",
        "soc_title": "Soil organic carbon per parcel",
        "no_soc": "No measurement yet",
        "yield_y": "Yield (kg/m²)",
        "yield_title": "Garden yields per year",
        "no_yield": "No harvest yet",
    },
}


def style(i: int) -> dict[str, str]:
    """The i-th series' colour, marker and line style: no two of the first 32 alike."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}


def _out(fig, fmt: str) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    # SVG keeps its texts as text (selectable, searchable, sharp when printed), not as outlines.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight",
                    metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buf.getvalue()


def soc_trend(series: dict[str, list[tuple[date, float]]], *, fmt: str = "png", locale: str | None = None,
              title: str = "") -> bytes:
    """SOC stock (t C/ha, 0-30 cm) per sampling date, one line (or one panel) per parcel.

    The series are comparable across dates: on an equivalent soil mass basis where bulk density was
    measured each time (``ParcelSummary.series_basis`` says which), so compaction does not show as a gain.
    """
    t = TEXTS[locale]
    named = [(name, points) for name, points in sorted(series.items()) if points]
    if len(named) > ONE_CHART_MAX:
        return _soc_panels(named, fmt=fmt, t=t, title=title)
    fig, ax = plt.subplots(figsize=(9, 5))
    for i, (name, points) in enumerate(named):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=name, **style(i))
        ax.annotate(name, (xs[-1], ys[-1]), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7,
                    color=style(i)["color"])
    if not named:
        ax.text(0.5, 0.5, t["no_soc"], ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(t["soc_y"])
    ax.set_xlabel(t["soc_x"])
    ax.set_title(title or t["soc_title"])
    ax.grid(alpha=0.3)
    if named:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _out(fig, fmt)


def _soc_panels(named: list[tuple[str, list[tuple[date, float]]]], *, fmt: str, t: dict[str, str],
                title: str) -> bytes:
    """Small multiples: one panel per parcel, its line in colour over every other parcel's in grey."""
    import matplotlib.dates as mdates

    years = [d.year for _name, points in named for d, _v in points]
    step = max(1, math.ceil((max(years) - min(years) + 1) / 4))  # at most about four years marked per panel
    rows = math.ceil(len(named) / PANEL_COLUMNS)
    fig, axes = plt.subplots(rows, PANEL_COLUMNS, figsize=(10, 2.2 * rows + 0.8), sharex=True, sharey=True,
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(named):
            ax.set_visible(False)
            continue
        for j, (_other, points) in enumerate(named):
            if j != k:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, color="#c8c8c8", linewidth=0.8)
        name, points = named[k]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color=PALETTE[0], marker="o", linewidth=2)
        ax.set_title(name if len(name) <= 38 else name[:36] + "…", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(mdates.YearLocator(step))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    fig.supylabel(t["soc_y"], fontsize=8)
    fig.supxlabel(t["soc_x"], fontsize=8)
    fig.suptitle(title or t["soc_title"])
    fig.tight_layout()
    return _out(fig, fmt)


def soc_trend_png(series: dict[str, list[tuple[date, float]]], *, title: str = "") -> bytes:
    """The SOC chart as PNG, its texts in both languages."""
    return soc_trend(series, fmt="png", title=title)


def yields(data: dict[str, dict[int, float]], *, fmt: str = "png", locale: str | None = None,
           title: str = "") -> bytes:
    """kg/m2 per year, grouped bars per parcel (a garden sums its beds); each year its colour and hatching."""
    t = TEXTS[locale]
    fig, ax = plt.subplots(figsize=(9, 5))
    years = sorted({y for by_year in data.values() for y in by_year})
    names = sorted(data)
    width = 0.8 / max(len(years), 1)
    hatches = ["", "//", "..", "xx", "\\\\", "++", "oo", "--"]
    for i, y in enumerate(years):
        xs = [j + i * width for j in range(len(names))]
        ax.bar(xs, [data[n].get(y, 0.0) for n in names], width=width, label=str(y),
               color=PALETTE[i % len(PALETTE)], hatch=hatches[(i // len(PALETTE) + i) % len(hatches)],
               edgecolor="white" if i < len(PALETTE) else "black")
    ax.set_xticks([j + width * (len(years) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(t["yield_y"])
    ax.set_title(title or t["yield_title"])
    if not years:
        ax.text(0.5, 0.5, t["no_yield"], ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _out(fig, fmt)


def yields_png(data: dict[str, dict[int, float]], *, title: str = "") -> bytes:
    """The yields chart as PNG, its texts in both languages."""
    return yields(data, fmt="png", title=title)
