"""The annual report's printable form (issue 18 item 11): one HTML page with its charts inside,
printed to PDF by Chromium, in French and English; charts that stay readable with many parcels."""

from __future__ import annotations

import re
import warnings
from datetime import date
from html import unescape

import pytest

from commons_map.soil import charts
from tests.conftest import axe_violations

ENGLISH_ONLY = ("Annual soil and food report", "The year in figures", "Soil organic carbon", "Where the food went")
FRENCH_ONLY = ("Rapport annuel sol et alimentation", "L'année en chiffres", "Carbone organique du sol",
               "Où est allée la nourriture")


@pytest.mark.parametrize(("locale", "mine", "other"), [("fr", FRENCH_ONLY, ENGLISH_ONLY),
                                                       ("en", ENGLISH_ONLY, FRENCH_ONLY)])
def test_the_report_prints_to_pdf_with_its_charts(client, auth, people, browser, locale, mine, other):
    r = client.get("/api/v1/soil/report.html?year=2025",
                   headers=auth(people.coordinator) | {"Accept-Language": locale})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert f'<html lang="{locale}">' in html
    assert len(re.findall(r'<svg role="img" aria-label="[^"]+"', html)) == 2  # both charts inside, named
    assert "<script" not in html and "http://" not in html.split("<svg", 1)[0]  # nothing fetched
    words = unescape(html)
    for text in mine:
        assert text in words, text
    for text in other:
        assert text not in words, text
    page = browser.new_page(viewport={"width": 360, "height": 780})
    try:
        page.set_content(html)
        assert axe_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll on a phone
        page.emulate_media(media="print")
        assert page.locator("button.print").is_hidden()  # the button is for the screen only
        for box in page.locator("figure svg").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)"):
            assert box > 100
        pdf = page.pdf(format="A4", print_background=True)
    finally:
        page.close()
    assert pdf.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages >= 2, pages  # the summary, two charts and their tables do not fit one A4 page


def test_the_report_without_sign_in_names_the_cooperative(client, people):
    assert client.get("/api/v1/soil/report.html?year=2025").status_code == 422
    r = client.get(f"/api/v1/soil/report.html?year=2025&cooperative_id={people.coop.id}",
                   headers={"Accept-Language": "fr"})
    assert r.status_code == 200 and "Rapport annuel" in r.text
    assert client.get("/api/v1/soil/report.html?year=1200", headers={"Accept-Language": "en"}).status_code == 422


def _series(n: int) -> dict[str, list[tuple[date, float]]]:
    return {f"Parcelle {i:02d}": [(date(2021, 4, 1), 30.0 + i), (date(2023, 4, 1), 31.0 + i),
                                  (date(2025, 4, 1), 33.0 + i / 2)] for i in range(n)}


def test_twelve_parcels_get_one_panel_each_not_shared_colours():
    svg = charts.soc_trend(_series(12), fmt="svg", locale="en").decode()
    for i in range(12):
        assert f"Parcelle {i:02d}" in svg  # each panel's title, as text
    # small multiples: twelve axes (one per parcel), each with its own frame
    assert svg.count('id="axes_') == 12, svg.count('id="axes_')


def test_up_to_eight_parcels_each_have_their_colour_marker_and_a_direct_label():
    svg = charts.soc_trend(_series(8), fmt="svg", locale="fr").decode()
    assert svg.count('id="axes_') == 1
    for colour in charts.PALETTE:
        assert colour.lower() in svg.lower(), colour
    for i in range(8):
        assert svg.count(f"Parcelle {i:02d}") >= 2  # in the legend and at the end of its line
    styles = {tuple(charts.style(i).values()) for i in range(32)}
    assert len(styles) == 32  # no two of the first 32 series drawn alike


def test_gardens_without_a_harvest_in_the_years_shown_say_so():
    """The printable report keeps a year's series only: a garden may be left with no year at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of an empty legend
        svg = charts.yields({"Jardin des Tilleuls": {}}, fmt="svg", locale="en").decode()
    assert "No harvest yet" in svg
