"""French and English for the members' pages: gettext catalogs (Babel), locale choice, formats.

Catalogs are the ``.po`` files under ``api/translations/<locale>/LC_MESSAGES/messages.po``,
compiled in memory when first used (no build step: a fresh clone works as it is). Source
strings are English; the English catalog exists so that both languages are explicit.
The service layer speaks English; ``translate_error`` turns its messages into the member's
language, by exact catalog match first, then by the patterns in ``ERROR_PATTERNS``.
"""

from __future__ import annotations

import contextvars
import re
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers, units
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


@lru_cache(maxsize=None)
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


def negotiate(accept_language: str | None) -> str:
    """The best of our locales for an Accept-Language header; French when nothing fits."""
    if not accept_language:
        return DEFAULT_LOCALE
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if tag:
            prefs.append((-q, i, tag))
    for negq, _i, tag in sorted(prefs):
        if negq >= 0:
            continue
        base = tag.split("-")[0]
        if base in LOCALES:
            return base
    return DEFAULT_LOCALE


# The translations in force while a page renders (set by the renderer, read by templates).
_current: contextvars.ContextVar[Translations] = contextvars.ContextVar("commons_map_translations")


def use(locale: str) -> None:
    """Make ``locale`` the language of what is rendered next in this context."""
    _current.set(translations(locale))


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
        """A duration or balance of time currency, in hours: « 2,5 h », « −1,25 h »."""
        if minutes is None:
            return "–"
        return units.format_unit(minutes / 60, "duration-hour", length="short", format="#,##0.##",
                                 locale=self.babel)

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


# --- service errors in the member's language -------------------------------------------------

# (pattern over the service's English message, English template of the translation).
# Each template is a msgid of the catalog; the named groups fill it in.
ERROR_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), t)
    for p, t in [
        (r"^(?P<field>[\w.]+): must not be empty$", "This field must not be empty."),
        (r"^(?P<field>[\w.]+): may not be emptied$", "This field must not be empty."),
        (r"^(?P<field>[\w.]+): Field required$", "This field is required."),
        (r"^Field required$", "This field is required."),
        (r"^(?P<field>[\w.]+): (?:must be|should be) (?:positive|greater than 0)",
         "Must be more than zero."),
        (r"^Input should be greater than (?P<n>[\d.]+)$", "Must be more than %(n)s."),
        (r"^Input should be a valid (?:integer|number).*$", "Enter a number."),
        (r"^Input should be a valid date.*$", "Enter a date."),
        (r"^Input should be a valid datetime.*$", "Enter a date and a time."),
        (r"^Unknown username or wrong password$", "Unknown username or wrong password."),
        (r"^Invalid or (?:expired|revoked) token$", "Your session has expired: sign in again."),
        (r"^Only .*$", "You may not do this."),
        (r"^No commons \d+$", "This commons does not exist or is not visible to you."),
        (r".*in the future.*", "The date must not be in the future."),
        (r".*overlap.*|.*already (?:booked|taken|reserved).*|.*conflicts? with.*",
         "This slot is already taken."),
    ]
]


def translate_error(message: str) -> str:
    """A service error in the current language: the catalog's entry, a known pattern, or as is."""
    t = _current.get(None) or translations(DEFAULT_LOCALE)
    exact = t.gettext(message)
    if exact != message:
        return exact
    for pattern, template in ERROR_PATTERNS:
        m = pattern.match(message)
        if m:
            params = {k: v for k, v in m.groupdict().items() if v is not None}
            text = t.gettext(template)
            try:
                return text % params if "%(" in text else text
            except (KeyError, ValueError):
                return text
    return message


def strip_field_prefix(message: str, field: str | None) -> str:
    """'minutes: must be positive' shown next to the field 'minutes' reads 'must be positive'."""
    if field and message.startswith(field + ":"):
        rest = message[len(field) + 1:].strip()
        return rest[:1].upper() + rest[1:] if rest else message
    return message
