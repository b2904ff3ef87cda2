"""French and English: catalogs complete, formats in the member's locale, errors translated."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from api import i18n
from api.translations import update
from commons_map.errors import ValidationFailed
from commons_map.register.models import Commons
from tests.api.test_pages import sign_in

PO = update.HERE / "{}" / "LC_MESSAGES" / "messages.po"


def catalog(locale: str):
    with open(str(PO).format(locale), "rb") as fh:
        return read_po(fh, locale=locale)


def test_every_string_of_the_pages_is_in_both_catalogs_and_translated_in_french():
    extracted = {m[0] if isinstance(m, tuple) else m for m in update.extract()}
    assert len(extracted) > 200
    fr = catalog("fr")
    en = catalog("en")
    fr_ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in fr if m.id}
    en_ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in en if m.id}
    assert extracted - fr_ids == set(), "run python -m api.translations.update"
    assert extracted - en_ids == set()
    untranslated = [
        m.id
        for m in fr
        if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
    ]
    assert untranslated == []


def test_french_keeps_the_placeholders_of_english():
    for m in catalog("fr"):
        if not m.id:
            continue
        src = m.id if isinstance(m.id, str) else m.id[0]
        dst = m.string if isinstance(m.string, str) else m.string[0]
        assert set(re.findall(r"%\(\w+\)[sd]", src)) == set(re.findall(r"%\(\w+\)[sd]", dst)), src


def test_formats_follow_the_locale():
    fr, en = i18n.Formats("fr"), i18n.Formats("en")
    assert fr.hours(90) == "1 h 30" and en.hours(90) == "1 h 30"
    assert fr.hours(19 * 60 + 3) == "19 h 03" and en.hours(19 * 60 + 3) == "19 h 03"
    assert fr.hours(45) == "45 min" and fr.hours(None) == "–"
    assert fr.number(2.5) == "2,5" and en.number(2.5) == "2.5"
    assert fr.kg(1234.5) == "1\u202f234,5\u202fkg"
    assert fr.area(25_000) == "2,5\u202fha"
    assert fr.date(date(2026, 11, 27)) == "27 nov. 2026"
    assert en.date(date(2026, 11, 27)) == "Nov 27, 2026"
    assert fr.hours(-75) == "\u22121 h 15"


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, "fr"),
        ("", "fr"),
        ("en-US,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,en;q=0.5", "en"),
        ("de,it", "fr"),
        ("fr-CA", "fr"),
        ("en;q=0.2,fr;q=0.8", "fr"),
        ("en;q=0", "fr"),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert i18n.negotiate(header) == expected


@pytest.mark.parametrize(
    "code, params, french",
    [
        ("worklog.date_in_future", {"work_date": date(2026, 12, 1), "today": date(2026, 11, 27)},
         "Le 1 déc. 2026 est dans le futur (nous sommes le 27 nov. 2026)."),
        ("ledger.limit_below", {"account": "Lucas Bernard", "balance_after_minutes": -1300, "short_minutes": 100,
                                "limit_minutes": -1200},
         "Refusé : le solde de Lucas Bernard passerait à −21 h 40, 1 h 40 sous sa limite de −20 h 00."),
    ],
)
def test_service_refusals_reach_the_pages_in_french_from_their_code(code, params, french):
    """No pattern table any more: a refusal is a code, and the page renders its French text."""
    assert not hasattr(i18n, "ERROR_PATTERNS") and not hasattr(i18n, "translate_error")
    i18n.use("fr")
    assert i18n.error_text(ValidationFailed(code, field="x", **params)) == french
    i18n.use("en")
    assert i18n.error_text(ValidationFailed(code, field="x", **params)) != french


def visible_text(page_html: str) -> str:
    body = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", page_html)
    attrs = " ".join(re.findall(r'(?:aria-label|placeholder|title|alt)="([^"]*)"', body))
    return html.unescape(re.sub(r"<[^>]+>", " ", body) + " " + attrs)


def english_only_strings() -> list[str]:
    """Source strings whose French differs, long enough to be unambiguous."""
    out = []
    for m in catalog("fr"):
        if not m.id:
            continue
        src = m.id if isinstance(m.id, str) else m.id[0]
        dst = m.string if isinstance(m.string, str) else m.string[0]
        plain = re.sub(r"%\(\w+\)[sd]", "", src).strip(" .:")
        if src != dst and len(plain) >= 6 and " " in plain:
            out.append(plain)
    return out


def test_a_french_member_reads_no_english_on_the_main_pages(client, db):
    garden = db.scalars(select(Commons).where(Commons.external_id == "demo:garden-0")).one()
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-1")).one()
    sign_in(client, "camille")
    english = english_only_strings()
    pages = [
        "/app/",
        "/app/commons",
        f"/app/commons/{garden.id}",
        "/app/work/new",
        "/app/harvest/new",
        "/app/soil/new",
        "/app/field",
        "/app/account",
        "/app/account/pay",
        "/app/approvals",
        "/app/reserve",
        f"/app/reserve/{tool.id}",
        "/app/reservations",
        "/app/profile",
        "/app/members",
        f"/app/commons/{garden.id}/edit",
    ]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 200, path
        assert '<html lang="fr">' in r.text
        text = visible_text(r.text)
        left = [s for s in english if s in text]
        assert left == [], f"{path}: {left}"
