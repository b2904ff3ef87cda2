"""French and English for the members' pages: gettext catalogs (Babel), locale choice, formats.

Catalogs are the ``.po`` files under ``api/translations/<locale>/LC_MESSAGES/messages.po``,
compiled in memory when first used (no build step: a fresh clone works as it is). Source
strings are English; the English catalog exists so that both languages are explicit.
Services refuse with message codes, rendered from commons_map/messages (``error_text``).
"""

from __future__ import annotations

import contextvars
import logging
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers, units
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from commons_map import messages
from commons_map.errors import DomainError, FieldProblem
from commons_map.messages import negotiate  # noqa: F401  (the pages' and the API's one rule)

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
log = logging.getLogger("commons_map.i18n")


@cache
def translations(locale: str) -> Translations:
    """The compiled catalog of a locale (read from its .po once per process)."""
    po = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return Translations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


# The translations in force while a page renders (set by the renderer, read by templates).
_current: contextvars.ContextVar[Translations] = contextvars.ContextVar("commons_map_translations")


_current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("commons_map_locale")


def use(locale: str) -> None:
    """Make ``locale`` the language of what is rendered next in this context."""
    _current.set(translations(locale))
    _current_locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def current_locale() -> str:
    """The language of what renders now in this context (French when none was chosen)."""
    return _current_locale.get(DEFAULT_LOCALE)


def error_text(problem: DomainError | FieldProblem) -> str:
    """A refusal or one of its problems in the current language, from its code's text."""
    return problem.text(current_locale())


def gettext(message: str, **params: Any) -> str:
    """The message in the current language, with ``%(name)s`` parameters filled in."""
    t = _current.get(None) or translations(DEFAULT_LOCALE)
    text = t.gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    """Singular or plural in the current language."""
    t = _current.get(None) or translations(DEFAULT_LOCALE)
    text = t.ngettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


_ = gettext


class Formats:
    """Dates, numbers and units in one member's locale and the cooperative's time zone."""

    def __init__(self, locale: str, tz: str | tzinfo = "Europe/Paris") -> None:
        self.locale = locale if locale in LOCALES else DEFAULT_LOCALE
        self.babel = Locale.parse(self.locale)
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    def date(self, value: date | datetime | None, fmt: str = "medium") -> str:
        """A date, e.g. « 27 nov. 2026 »."""
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return dates.format_date(value, format=fmt, locale=self.babel)

    def datetime(self, value: datetime | None, fmt: str = "medium") -> str:
        """A moment in the cooperative's time zone."""
        if value is None:
            return ""
        return dates.format_datetime(value, format=fmt, tzinfo=self.tz, locale=self.babel)

    def short_datetime(self, value: datetime | None) -> str:
        """A moment, short: « 27/11/2026 14:30 »."""
        return self.datetime(value, "short")

    def time(self, value: datetime | None) -> str:
        """A time of day in the cooperative's zone."""
        if value is None:
            return ""
        return dates.format_time(value, format="short", tzinfo=self.tz, locale=self.babel)

    def weekday(self, value: date) -> str:
        """« lun. 30 nov. »."""
        return dates.format_skeleton("MMMEd", value, locale=self.babel)

    def number(self, value: float | int | Decimal | None, digits: int = 2) -> str:
        """A decimal number with the locale's separators (decimal comma in French)."""
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return numbers.format_decimal(value, format=pattern, locale=self.babel)

    def hours(self, minutes: int | None) -> str:
        """A duration or balance of time currency in hours and minutes: « 19 h 03 », « 45 min », « −1 h 15 »."""
        if minutes is None:
            return "–"
        return messages.duration(minutes, self.locale)

    def unit(self, value: float | None, unit: str, digits: int = 2) -> str:
        """A measure with a CLDR unit, e.g. ("mass-kilogram") → « 12,5 kg »."""
        if value is None:
            return "–"
        fmt = "#,##0" + ("." + "#" * digits if digits else "")
        return units.format_unit(value, unit, length="short", format=fmt, locale=self.babel)

    def kg(self, value: float | None) -> str:
        """A mass in kilograms."""
        return self.unit(value, "mass-kilogram", 1)

    def area(self, m2: float | None) -> str:
        """An area: m² below a hectare, hectares above."""
        if m2 is None:
            return "–"
        if m2 >= 10_000:
            return self.unit(m2 / 10_000, "area-hectare", 2)
        return self.unit(m2, "area-square-meter", 0)

    def percent(self, value: float | None) -> str:
        """A share between 0 and 1 as a percentage."""
        if value is None:
            return "–"
        return numbers.format_percent(value, locale=self.babel)

