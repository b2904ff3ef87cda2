"""The annual report as one printable HTML document, its charts inside (SVG), in French or English.

Self-contained (no script, font or image fetched): the charts are inline SVG, so they print sharp
at any size and the file can be saved or mailed as it is. A print stylesheet lays it out on A4
(figures and table rows are not cut across pages, the print button is left out); browsers print
it to PDF ("Print / Save as PDF", or Chromium's print-to-PDF). Every text is a message code of
the ``soil`` room (``soil.report_*``), rendered per language.
"""

from __future__ import annotations

import html
import re
from typing import Any

from babel.numbers import format_decimal, format_percent

from commons_map.messages import render
from commons_map.soil import charts
from commons_map.soil.service import DESTINATION_LABELS

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; margin: 0 auto;
       max-width: 60rem; padding: 1rem; line-height: 1.45; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; border-bottom: 2px solid #0072B2; padding-bottom: .15rem; }
.meta { color: #444; margin: 0 0 1rem; }
dl.summary { display: grid; grid-template-columns: minmax(10rem, max-content) 1fr; gap: .25rem 1rem; margin: 0; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; max-width: 100%; }
figcaption { font-size: .9rem; color: #333; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #bbb; padding: .25rem .4rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { font-size: .85rem; color: #333; }
button.print { font: inherit; padding: .5rem 1rem; border: 2px solid #0072B2; background: #fff; color: #00466e;
               border-radius: .3rem; cursor: pointer; }
@page { size: A4; margin: 15mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  button.print, .screen-only { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, tr, dl.summary { break-inside: avoid; page-break-inside: avoid; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


def _t(code: str, locale: str, **params: Any) -> str:
    return html.escape(render(f"soil.report_{code}", params, locale))


def _num(value: float | None, locale: str, digits: int = 2) -> str:
    if value is None:
        return "–"
    return format_decimal(value, format=f"#,##0.{'#' * digits}" if digits else "#,##0", locale=locale)


def _svg(data: bytes, label: str) -> str:
    """Matplotlib's SVG, inline: its XML prologue cut, and named for screen readers."""
    text = data.decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<svg\b", f'<svg role="img" aria-label="{html.escape(label, quote=True)}"', text, count=1)
    return re.sub(r"<title>.*?</title>", "", text, flags=re.S)


def report_html(rep: dict[str, Any], series: dict[str, Any], *, locale: str) -> str:
    """The annual report ``rep`` (``reports.annual_report``) and its charts (``reports.chart_series``)."""
    esc = html.escape
    coop, year = rep["cooperative"]["name"], rep["year"]
    # What was known at the end of the report's year, as its figures.
    series = {"soc": {n: [(d, v) for d, v in pts if d.year <= year] for n, pts in series["soc"].items()},
              "yields": {n: {y: v for y, v in by.items() if y <= year} for n, by in series["yields"].items()}}
    labels = rep["status_labels"]
    soc_title = render("soil.report_soc_chart", {}, locale)
    yields_title = render("soil.report_yields_chart", {}, locale)
    soc_svg = _svg(charts.soc_trend(series["soc"], fmt="svg", locale=locale), soc_title)
    yields_svg = _svg(charts.yields(series["yields"], fmt="svg", locale=locale), yields_title)
    food = rep["food"]
    hours = rep["volunteer_hours"]
    share = food["households_in_need_share"]
    summary = [
        (_t("area", locale), f"{_num(rep['area_under_regeneration_ha'], locale, 2)} ha"),
        (_t("soc_total", locale), f"{_num(rep['soc']['total_t_c_per_year'], locale, 2)} t C"),
        (_t("co2e_total", locale), f"{_num(rep['soc']['total_t_co2e_per_year'], locale, 2)} t CO2e"),
        (_t("harvest_total", locale), f"{_num(food['total_kg'], locale, 1)} kg"),
        (_t("need_share", locale), "–" if share is None else format_percent(share, locale=locale)),
    ]
    if hours.get("total") is not None:
        summary.append((_t("hours", locale), f"{_num(hours['total'], locale, 1)} h"))
    statuses = ", ".join(f"{esc(labels[s][locale])} : {n}" if locale == "fr" else f"{esc(labels[s][locale])}: {n}"
                         for s, n in rep["parcels_by_status"].items() if n)
    summary.append((_t("parcels", locale), statuses or "–"))
    status_of = {p["commons_id"]: p["status"] for p in rep["parcels"]}
    soc_rows = "".join(
        f"<tr><td>{esc(p['name'])}</td><td>{esc(labels[status_of.get(p['commons_id'], 'no_data')][locale])}</td>"
        f"<td class=n>{_num(p['soc_stock_t_ha'], locale, 1)}</td>"
        f"<td class=n>{_num(p['soc_change_t_ha_per_year'], locale, 3)}</td>"
        f"<td>{_t('basis_' + (p['basis'] or 'none'), locale)}{' *' if p['estimate'] else ''}</td>"
        f"<td class=n>{_num(p['t_co2e_per_year'], locale, 3)}</td></tr>"
        for p in rep["soc"]["parcels"]
    )
    crop_rows = "".join(f"<tr><td>{esc(crop)}</td><td class=n>{_num(kg, locale, 1)}</td></tr>"
                        for crop, kg in food["kg_by_crop"].items())
    dest_rows = "".join(
        f"<tr><td>{esc(DESTINATION_LABELS.get(d, {}).get(locale) or _t('not_recorded', locale))}</td>"
        f"<td class=n>{_num(kg, locale, 1)}</td></tr>"
        for d, kg in food["kg_by_destination"].items())
    nothing = _t("nothing", locale)
    return f"""<!DOCTYPE html>
<html lang="{locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_t('title', locale, year=year, cooperative=coop)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{_t('title', locale, year=year, cooperative=coop)}</h1>
<p class="meta">{_t('generated', locale, at=rep['generated_at'][:10])}</p>
<p class="screen-only"><button class="print" type="button" onclick="window.print()">{_t('print', locale)}</button></p>
<section aria-labelledby="h-summary">
<h2 id="h-summary">{_t('summary', locale)}</h2>
<dl class="summary">{''.join(f'<dt>{k}</dt><dd>{v}</dd>' for k, v in summary)}</dl>
</section>
<section aria-labelledby="h-soc">
<h2 id="h-soc">{_t('soc', locale)}</h2>
<figure>{soc_svg}<figcaption>{_t('soc_caption', locale)}</figcaption></figure>
<div class="table-wrap" tabindex="0" role="region" aria-label="{_t('soc', locale)}"><table>
<caption class="note">{_t('soc_table', locale)}</caption>
<thead><tr><th scope=col>{_t('parcel', locale)}</th><th scope=col>{_t('status', locale)}</th>
<th scope=col class=n>{_t('stock', locale)}</th><th scope=col class=n>{_t('change', locale)}</th>
<th scope=col>{_t('basis', locale)}</th><th scope=col class=n>{_t('co2e', locale)}</th></tr></thead>
<tbody>{soc_rows or f'<tr><td colspan=6>{nothing}</td></tr>'}</tbody></table></div>
<p class="note">{_t('method', locale)}</p>
</section>
<section aria-labelledby="h-food">
<h2 id="h-food">{_t('food', locale)}</h2>
<figure>{yields_svg}<figcaption>{_t('yields_caption', locale)}</figcaption></figure>
<div class="table-wrap" tabindex="0" role="region" aria-label="{_t('crop', locale)}"><table>
<thead><tr><th scope=col>{_t('crop', locale)}</th><th scope=col class=n>kg</th></tr></thead>
<tbody>{crop_rows or f'<tr><td colspan=2>{nothing}</td></tr>'}</tbody></table></div>
<div class="table-wrap" tabindex="0" role="region" aria-label="{_t('destination', locale)}"><table>
<thead><tr><th scope=col>{_t('destination', locale)}</th><th scope=col class=n>kg</th></tr></thead>
<tbody>{dest_rows or f'<tr><td colspan=2>{nothing}</td></tr>'}</tbody></table></div>
</section>
</main>
</body>
</html>
"""
