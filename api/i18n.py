"""French and English for the members' pages: gettext catalogs (Babel), locale choice, formats.

Catalogs are the ``.po`` files under ``api/translations/<locale>/LC_MESSAGES/messages.po``,
compiled in memory when first used (no build step: a fresh clone works as it is). Source
strings are English; the English catalog exists so that both languages are explicit.
The service layer speaks English; ``translate_error`` turns its messages into the member's
language, by exact catalog match first, then by the patterns in ``ERROR_PATTERNS``.
"""

from __future__ import annotations

import contextvars
import logging
import re
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
    """A refusal or one of its problems in the current language: its code's text, or (for a message
    not yet said with a code) the legacy catalog and patterns."""
    if problem.legacy is None:
        return problem.text(current_locale())
    return translate_error(problem.legacy)


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


# --- service errors in the member's language -------------------------------------------------


def N_(message: str) -> str:
    """Mark a string for the catalog without translating it now."""
    return message


# (pattern over the service's English message, English template of the translation).
# Each template is a msgid of the catalog; the named groups fill it in. First match wins.
ERROR_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.S), t)
    for p, t in [
        # the pages' own checks
        (r"^(?:[\w.]+: )?must not be empty$", N_("This field must not be empty.")),
        (r"^(?:[\w.]+: )?may not be emptied$", N_("This field must not be empty.")),
        (r"^(?:[\w.]+: )?'.*' is not a number$", N_("Enter a number, for example 1,5.")),
        (r"^(?:[\w.]+: )?'.*' is not a whole number$", N_("Enter a whole number.")),
        (r"^(?:[\w.]+: )?'.*' is not a date$", N_("Enter a date.")),
        (
            r"^(?:[\w.]+: )?'.*' is not a time of day$",
            N_("Enter a time of day, for example 09:30."),
        ),
        (r"^(?:[\w.]+: )?'.*' is not a commons$", N_("Choose a commons from the list.")),
        (r"^(?:[\w.]+: )?choose a commons$", N_("Choose a commons from the list.")),
        (r"^(?:[\w.]+: )?choose an activity$", N_("Choose an activity.")),
        (
            r"^(?:[\w.]+: )?give the time spent, or when you started and ended$",
            N_("Give the time spent, or when you started and ended."),
        ),
        (r"^(?:[\w.]+: )?the position is out of range$", N_("The position is out of range.")),
        (r"^(?:[\w.]+: )?name the crop$", N_("Name the crop.")),
        (r"^(?:[\w.]+: )?choose what you measured$", N_("Choose what you measured.")),
        (r"^(?:[\w.]+: )?choose a unit$", N_("Choose a unit.")),
        (
            r"^(?:[\w.]+: )?choose the parcel, or share your position$",
            N_("Choose the parcel, or share your position."),
        ),
        (r"^(?:[\w.]+: )?choose who you pay$", N_("Choose who you pay.")),
        (r"^(?:[\w.]+: )?say what the payment is for$", N_("Say what the payment is for.")),
        (r"^(?:[\w.]+: )?'.*' is not an e-mail address$", N_("This is not an e-mail address.")),
        (r"^(?:[\w.]+: )?must be 'fr' or 'en'$", N_("Choose French or English.")),
        (r"^(?:[\w.]+: )?8 to 120 letters.*$", N_("This entry cannot be read.")),
        # pydantic
        (r"^(?:[\w.]+: )?Field required$", N_("This field is required.")),
        (r"^Input should be greater than (?P<n>[\d.]+)$", N_("Must be more than %(n)s.")),
        (r"^Input should be a valid (?:integer|number).*$", N_("Enter a number, for example 1,5.")),
        (r"^Input should be a valid date.*$", N_("Enter a date.")),
        (r"^Input should be .*$", N_("This value is not accepted.")),
        (r"^String should have at (?:most|least) .*$", N_("This text is too long or too short.")),
        # people and sign-in
        (r"^Unknown username or wrong password$", N_("Unknown username or wrong password.")),
        (r"^Invalid or (?:expired|revoked) token$", N_("Your session has expired: sign in again.")),
        (
            r"^(?:[\w.]+: )?2 to 40 characters: lower-case letters.*$",
            N_("2 to 40 characters: lower-case letters, digits, dot, dash, underscore."),
        ),
        (r"^(?:[\w.]+: )?at least (?P<n>\d+) characters$", N_("At least %(n)s characters.")),
        (r"^username '.*' is already taken$", N_("This username is already taken.")),
        (
            r"^The cooperative would be left without a coordinator$",
            N_("The cooperative would be left without a coordinator."),
        ),
        # work logs
        (r"^(?:[\w.]+: )?\S+ is in the future.*$", N_("The date must not be in the future.")),
        (
            r"^(?:[\w.]+: )?\S+ is more than (?P<n>\d+) days back.*$",
            N_("More than %(n)s days back: ask a coordinator."),
        ),
        (
            r"^(?:[\w.]+: )?give both started_at and ended_at.*$",
            N_("Give both times, or only the time spent."),
        ),
        (r"^(?:[\w.]+: )?\S+ is not after started_at.*$", N_("The end must come after the start.")),
        (
            r"^(?:[\w.]+: )?the duration must be positive.*$",
            N_("The time spent must be more than zero."),
        ),
        (
            r"^(?:[\w.]+: )?a single log may not exceed 16 hours.*$",
            N_("One log may not exceed 16 hours: log each day on its own."),
        ),
        (r"^(?:[\w.]+: )?unknown activity.*$", N_("Choose an activity from the list.")),
        (
            r"^(?:[\w.]+: )?list the others who worked with you, not yourself$",
            N_("List the others, not yourself."),
        ),
        (r"^(?:[\w.]+: )?commons \d+ \(.*\) is archived$", N_("This commons is archived.")),
        (
            r"^(?:[\w.]+: )?'.*' was already used for work log \d+ with other content$",
            N_("Already saved with other content; the saved version is kept."),
        ),
        (r"^(?:[\w.]+: )?say why the log is rejected.*$", N_("Say why, so the member can fix it.")),
        (
            r"^.*may not approve (?:their|your) own.*$|^.*four eyes.*$|^.*own (?:work|hours|log).*$",
            N_("Someone else must approve your own hours."),
        ),
        (
            r"^(?:state: )?work log \d+ is (?:already )?(?:approved|rejected).*$",
            N_("This log was already decided."),
        ),
        # harvests and soil
        (r"^(?:[\w.]+: )?.*: .* kg is not a harvest.*$", N_("The weight must be more than 0 kg.")),
        (
            r"^(?:[\w.]+: )?.*: a count of .* is not a harvest.*$",
            N_("The count must be at least 1."),
        ),
        (
            r"^(?:[\w.]+: )?.*: give the weight in kg, or a count.*$",
            N_("Give the weight in kg, or a count when there is no scale."),
        ),
        (
            r"^(?:[\w.]+: )?.* is .* kg/m2, beyond the plausible .*$",
            N_(
                "Far more than this bed can give in one harvest: check the figure, or tick the box to confirm it."
            ),
        ),
        (
            r"^(?:[\w.]+: )?\w+: (?P<value>[\d.,-]+ \S+) is outside the plausible range (?P<range>\S+ \S+);.*$",
            N_(
                "%(value)s is outside the plausible range %(range)s: check for a typo, or tick the box to confirm it."
            ),
        ),
        (
            r"^(?:[\w.]+: )?\w+: .* the unit '.*' does not fit .*; accepted units: (?P<units>.*)$",
            N_("This unit does not fit what you measured; accepted units: %(units)s."),
        ),
        (
            r"^(?:[\w.]+: )?\w+: a depth interval is needed.*$",
            N_("Give the depth (from and to, in cm)."),
        ),
        (
            r"^(?:[\w.]+: )?\w+: give both depth_top_cm and depth_bottom_cm.*$",
            N_("Give both depths, or neither."),
        ),
        (
            r"^(?:[\w.]+: )?\w+: depth_bottom_cm .* is above depth_top_cm.*$",
            N_("The bottom must be deeper than the top."),
        ),
        (
            r"^(?:[\w.]+: )?\w+: method '.*' is not one of (?P<methods>.*?) \(.*$",
            N_("This method is not one of %(methods)s."),
        ),
        (
            r"^(?:[\w.]+: )?the point lies outside every land parcel.*$",
            N_("Your position is outside every parcel: choose the parcel."),
        ),
        (
            r"^(?:[\w.]+: )?lies in '.*' \(commons \d+\), not in the parcel named.*$",
            N_("Your position is in another parcel: check the position or the parcel."),
        ),
        (
            r"^(?:[\w.]+: )?'.*' is not a land parcel, garden or bed$",
            N_("Choose a land parcel, a garden or a bed."),
        ),
        # the time ledger
        (r"^(?:[\w.]+: )?you cannot pay yourself$", N_("You cannot pay yourself.")),
        (
            r"^(?:[\w.]+: )?refused, .*'s balance would go to (?P<new>-?\d+) min, (?P<by>\d+) min below the limit.*$",
            N_("Refused: the balance would go %(by)s minutes below its limit."),
        ),
        (
            r"^(?:[\w.]+: )?refused, .*'s balance would go to (?P<new>-?\d+) min, (?P<by>\d+) min above the limit.*$",
            N_("Refused: the balance would go %(by)s minutes above its limit."),
        ),
        (r"^(?:[\w.]+: )?must be positive \(got .*\)$", N_("Must be more than zero.")),
        (r"^(?:[\w.]+: )?.*'s account is closed$", N_("This account is closed.")),
        # reservations
        (
            r"^(?:[\w.]+: )?the slot is taken: .*$|^(?:[\w.]+: )?the slot .* was just taken$",
            N_("This slot is already taken."),
        ),
        (
            r"^(?:[\w.]+: )?this slot is offered to the first member on the waiting list.*$",
            N_("This slot is offered to the first member on the waiting list for now."),
        ),
        (
            r"^(?:[\w.]+: )?you already have (?P<n>\d+) active booking\(s\) of .*; the cap is (?P<cap>\d+)$",
            N_("You already have %(n)s active reservations of this; the limit is %(cap)s."),
        ),
        (
            r"^(?:[\w.]+: )?equals starts_at; a booking of zero length.*$",
            N_("The end must come after the start."),
        ),
        (r"^(?:[\w.]+: )?\S+ is before starts_at.*$", N_("The end must come after the start.")),
        (
            r"^(?:[\w.]+: )?\S+ must come after (?:starts_at|from).*$",
            N_("The end must come after the start."),
        ),
        (r"^(?:[\w.]+: )?\S+ is in the past.*$", N_("This moment is already past.")),
        (
            r"^(?:[\w.]+: )?.* is booked for at least (?P<d>.*) \(asked.*$",
            N_("It is booked for at least %(d)s."),
        ),
        (
            r"^(?:[\w.]+: )?.* is booked for at most (?P<d>.*) \(asked.*$",
            N_("It is booked for at most %(d)s."),
        ),
        (
            r"^(?:[\w.]+: )?.* is booked at most (?P<n>\d+) days ahead.*$",
            N_("It is booked at most %(n)s days ahead."),
        ),
        (r"^(?:[\w.]+: )?'.*' is (?:closed|open).*$", N_("Outside its opening hours.")),
        (
            r"^(?:[\w.]+: )?this slot is free; book it instead of waiting$",
            N_("This slot is free: book it instead of waiting."),
        ),
        (
            r"^(?:[\w.]+: )?you already wait for an overlapping slot.*$",
            N_("You already wait for this slot."),
        ),
        (
            r"^(?:[\w.]+: )?say what is damaged.*$",
            N_("Say what is damaged, so the stewards know what to repair."),
        ),
        (
            r"^(?:[\w.]+: )?the booking starts at .*; check out at most .*$",
            N_("You can check out at most an hour before the start."),
        ),
        (r"^(?:[\w.]+: )?the booking ended at .*$", N_("This reservation has already ended.")),
        (
            r"^(?:state: )?reservation \d+ is .*; only a .* booking can be .*$",
            N_("This reservation cannot do that in its current state."),
        ),
        (
            r"^(?:[\w.]+: )?is not reservable.*$|^.*not reservable.*$",
            N_("This cannot be reserved."),
        ),
        # field forms (what ODK Collect shows the member)
        (
            r"^instanceID .* was already received with other content.*$",
            N_("This form was already received with other content: edit it on the phone and send the edit."),
        ),
        (
            r"^deprecatedID .*: no such submission.*$",
            N_("The form this edit replaces was never received: send it as a new form."),
        ),
        (
            r"^deprecatedID .* was already replaced.*$",
            N_("This version was already replaced by a later edit: edit the latest version."),
        ),
        (r"^Unknown or revoked field token$", N_("Unknown or revoked field link: ask for a new QR code.")),
        (r"^attachment: .* is not a photo, a sound or a video$", N_("Only photos, sounds and videos can be attached.")),
        (r"^attachment: .* is \d+ bytes; at most .*$", N_("An attached file is too large.")),
        (r"^(?:[\w.]+: )?no form '.*'.*$", N_("This form is not on this server: update the forms list.")),
        (
            r"^(?:state: )?Only .*stewards.* change .*$",
            N_("Only the stewards of this commons or a coordinator may change it."),
        ),
        # generic
        (r"^Only .*$", N_("You may not do this.")),
        (r"^No commons \d+$", N_("This commons does not exist or is not visible to you.")),
        (r"^No member .*$", N_("No such member in this cooperative.")),
    ]
]


def translate_error(message: str) -> str:
    """A service error in the current language: the catalog's entry, a known pattern, or as is."""
    return _translate_error(_current.get(None) or translations(DEFAULT_LOCALE), message)


def translate_error_in(locale: str, message: str) -> str:
    """A service error in ``locale``, whatever language the current context renders in."""
    return _translate_error(translations(locale), message)


def _translate_error(t: Translations, message: str) -> str:
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
    if t.gettext(N_("This value is not accepted.")) == "This value is not accepted.":
        return message  # English: the service's own words are the most precise
    log.info("no translation for service message %r", message)
    return t.gettext(N_("This value is not accepted."))


def strip_field_prefix(message: str, field: str | None) -> str:
    """'minutes: must be positive' shown next to the field 'minutes' reads 'must be positive'."""
    if field and message.startswith(field + ":"):
        rest = message[len(field) + 1 :].strip()
        return rest[:1].upper() + rest[1:] if rest else message
    return message
