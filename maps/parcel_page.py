"""The permalink page of a public parcel: server-rendered HTML, its story as an SVG chart by year."""

from __future__ import annotations

import html

from commons_map.publish.parcel import ParcelStory

TEXT = {
    "fr": {
        "title": "{name} : terre restaurée",
        "description": "{name} : état du sol « {status} », carbone du sol et récoltes année après année.",
        "status": "État du sol",
        "area": "Surface",
        "soc": "Carbone organique du sol (t C/ha), par année",
        "harvest": "Récoltes (kg), par année",
        "none": "Pas encore de données.",
        "back": "Retour à la carte",
        "other": "English",
        "year": "Année",
    },
    "en": {
        "title": "{name}: restored land",
        "description": "{name}: soil status “{status}”, soil carbon and harvests year by year.",
        "status": "Soil status",
        "area": "Area",
        "soc": "Soil organic carbon (t C/ha), by year",
        "harvest": "Harvests (kg), by year",
        "none": "No data yet.",
        "back": "Back to the map",
        "other": "Français",
        "year": "Year",
    },
}


def _chart(series: list[tuple[int, float]], *, caption: str, colour: str, t: dict[str, str], unit: str) -> str:
    """A bar chart (inline SVG, no script) with the same figures as a table for screen readers."""
    e = html.escape
    if not series:
        return f"<figure><figcaption>{e(caption)}</figcaption><p>{e(t['none'])}</p></figure>"
    top = max(v for _, v in series) or 1.0
    w, h, gap = 300, 140, 6
    bw = (w - gap * (len(series) + 1)) / len(series)
    bars = []
    for i, (year, value) in enumerate(series):
        bh = max(1.0, value / top * (h - 30))
        x = gap + i * (bw + gap)
        bars.append(
            f'<rect x="{x:.1f}" y="{h - 16 - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{colour}"/>'
            f'<text x="{x + bw / 2:.1f}" y="{h - 2}" text-anchor="middle" font-size="11">{year}</text>'
            f'<text x="{x + bw / 2:.1f}" y="{h - 20 - bh:.1f}" text-anchor="middle" font-size="11">{value:g}</text>'
        )
    rows = "".join(f"<tr><td>{y}</td><td>{v:g} {e(unit)}</td></tr>" for y, v in series)
    return (
        f'<figure><figcaption>{e(caption)}</figcaption>'
        f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{e(caption)}">{"".join(bars)}</svg>'
        f'<table><thead><tr><th scope="col">{e(t["year"])}</th><th scope="col">{e(unit)}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></figure>"
    )


def parcel_page(story: ParcelStory, *, lang: str, root: str = "") -> str:
    """The page of one public parcel in ``lang`` (fr or en)."""
    e = html.escape
    t = TEXT[lang]
    other = "en" if lang == "fr" else "fr"
    status = story.status_label[lang]
    title = t["title"].format(name=story.name)
    desc = t["description"].format(name=story.name, status=status)
    here = f"{root}/maps/parcels/{story.id}"
    area = ""
    if story.area_m2:
        a = story.area_m2
        area = f"{a / 10000:.2f} ha" if a >= 10000 else f"{a:.0f} m²"
    back = f"{root}/maps/public?lang={lang}#16/{story.lat:.5f}/{story.lon:.5f}"
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<meta name="description" content="{e(desc)}">
<link rel="canonical" href="{e(here)}?lang={lang}">
<link rel="alternate" hreflang="{other}" href="{e(here)}?lang={other}">
<meta property="og:title" content="{e(title)}">
<meta property="og:description" content="{e(desc)}">
<link rel="icon" href="data:,">
<style>
body {{font:16px/1.5 system-ui,sans-serif; margin:0 auto; max-width:40rem; padding:1rem; color:#1a1a1a}}
a {{color:#0b5394}} figure {{margin:1.5rem 0}} figcaption {{font-weight:600}}
table {{border-collapse:collapse; margin-top:.5rem}} td, th {{padding:2px 10px 2px 0; text-align:left}}
.status {{display:inline-block; width:1rem; height:1rem; border:1px solid #333; vertical-align:-2px;
  margin-right:.4rem}}
nav a {{margin-right:1rem}}
</style>
</head>
<body>
<nav><a href="{e(back)}">{e(t["back"])}</a>
<a href="{e(here)}?lang={other}" hreflang="{other}" lang="{other}">{e(t["other"])}</a></nav>
<main>
<h1>{e(story.name)}</h1>
{f"<p>{e(story.description)}</p>" if story.description else ""}
<dl>
<dt>{e(t["status"])}</dt>
<dd><span class="status" style="background:{e(story.colour)}"></span><strong>{e(status)}</strong>
<br>{e(story.status_explanation[lang])}</dd>
{f"<dt>{e(t['area'])}</dt><dd>{e(area)}</dd>" if area else ""}
</dl>
{_chart(story.soc_by_year, caption=t["soc"], colour="#1b7837", t=t, unit="t C/ha")}
{_chart(story.harvest_by_year, caption=t["harvest"], colour="#b35806", t=t, unit="kg")}
</main>
</body>
</html>
"""
