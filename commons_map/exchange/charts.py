"""The exchange network's chart for the annual report, as PNG (matplotlib, Agg backend): hours
exchanged per month (the part the solidarity fund paid for supported members set apart), hours
per category, and the headline figures (members active, distinct pairs, share to supported members).

Labels are in French and English side by side (as the soil charts are), or in one language.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Échanges en temps",
        "year": "Échanges en temps, {year}",
        "per_month": "Heures échangées par mois",
        "per_category": "Heures échangées par catégorie",
        "hours": "heures",
        "by_members": "payées par les membres",
        "by_fund": "payées par le fonds de solidarité (membres soutenus)",
        "summary": "{hours} h échangées · {active} membres actifs · {pairs} paires distinctes"
                   " · {share} des heures vers des membres soutenus",
        "empty": "Aucun échange payé",
    },
    "en": {
        "title": "Exchanges in time",
        "year": "Exchanges in time, {year}",
        "per_month": "Hours exchanged per month",
        "per_category": "Hours exchanged per category",
        "hours": "hours",
        "by_members": "paid by members",
        "by_fund": "paid by the solidarity fund (supported members)",
        "summary": "{hours} h exchanged · {active} members active · {pairs} distinct pairs"
                   " · {share} of hours to supported members",
        "empty": "No paid exchange yet",
    },
}


def _hours(minutes: int) -> float:
    return minutes / 60


def _fmt_hours(minutes: int, locale: str) -> str:
    text = f"{minutes / 60:.0f}" if minutes % 60 == 0 else f"{minutes / 60:.1f}"
    return text.replace(".", ",") if locale == "fr" else text


def _share(share: float, locale: str) -> str:
    text = f"{share * 100:.1f}"
    return f"{text.replace('.', ',')}\u202f%" if locale == "fr" else f"{text}%"


def _say(locale: str | None, key: str, sep: str = " / ", **params: Any) -> str:
    """One language, or French then English (joined by ``sep``) when none is asked."""
    langs = [locale] if locale in TEXTS else ["fr", "en"]
    out = []
    for lang in langs:
        values = {k: (v(lang) if callable(v) else v) for k, v in params.items()}
        out.append(TEXTS[lang][key].format(**values))
    return sep.join(out)


def _label(category: dict[str, Any], locale: str | None) -> str:
    names = [category["label_fr"]] if locale == "fr" else [category["label_en"]] if locale == "en" else [
        category["label_fr"], category["label_en"]]
    return "\n".join(textwrap.fill(n, 30) for n in names)


def figures_png(data: dict[str, Any], *, locale: str | None = None) -> bytes:
    """The figures of :func:`commons_map.exchange.figures.figures` as one PNG chart."""
    height = 6 + 0.35 * len(data["per_category"]) * (1 if locale in TEXTS else 2)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, height), gridspec_kw={"height_ratios": [1, 1.2]})
    year = data.get("year")
    fig.suptitle(_say(locale, "year", year=year) if year else _say(locale, "title"), fontsize=13)
    summary = _say(locale, "summary", sep="\n", hours=lambda lang: _fmt_hours(data["minutes_exchanged"], lang),
                   active=data["members_active"], pairs=data["distinct_pairs"],
                   share=lambda lang: _share(data["supported_share"], lang))
    fig.text(0.5, 0.925, summary, ha="center", va="top", fontsize=8.5)

    months = data["per_month"]
    if months:
        xs = list(range(len(months)))
        fund = [_hours(m.get("supported_minutes", 0)) for m in months]
        members = [_hours(m["minutes"]) - f for m, f in zip(months, fund, strict=True)]
        top.bar(xs, members, color="#1f5f3a", label=_say(locale, "by_members", sep="\n"))
        top.bar(xs, fund, bottom=members, color="#e0a100", hatch="//", edgecolor="#5c4100",
                label=_say(locale, "by_fund", sep="\n"))
        top.set_xticks(xs)
        top.set_xticklabels([m["month"] for m in months], rotation=30, ha="right", fontsize=8)
        top.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        top.text(0.5, 0.5, _say(locale, "empty"), ha="center", va="center", transform=top.transAxes)
    top.set_title(_say(locale, "per_month"), fontsize=10)
    top.set_ylabel(_say(locale, "hours"))
    top.grid(axis="y", alpha=0.3)

    categories = list(reversed(data["per_category"]))  # the largest on top
    if categories:
        labels = [_label(c, locale) for c in categories]
        bottom.barh(range(len(categories)), [_hours(c["minutes"]) for c in categories], color="#1565c0")
        bottom.set_yticks(range(len(categories)))
        bottom.set_yticklabels(labels, fontsize=8)
    else:
        bottom.text(0.5, 0.5, _say(locale, "empty"), ha="center", va="center", transform=bottom.transAxes)
    bottom.set_title(_say(locale, "per_category"), fontsize=10)
    bottom.set_xlabel(_say(locale, "hours"))
    bottom.grid(axis="x", alpha=0.3)

    fig.tight_layout(rect=(0, 0, 1, 0.88))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
