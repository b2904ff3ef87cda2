"""What the software says to people, by message code, in French and English.

Services refuse and report with a *code* and its parameters (``ledger.limit_exceeded`` with the
account and the minutes short), never with sentences. One gettext catalogue per language and
per room renders them: ``commons_map/messages/<locale>/LC_MESSAGES/<room>.po``, where the room
is the code's prefix (``ledger`` for ``ledger.limit_exceeded``). The msgid is the code; the
msgstr is the text, with ``%(name)s`` parameters. The API (Accept-Language or the member's
setting), the pages, the OpenRosa answers shown in Collect, the CLI and the notifications all
render through :func:`render`.

Parameters are formatted for the language: a parameter whose name is ``minutes`` or ends in
``_minutes`` is a duration of time currency (« 19 h 03 », « 45 min »); dates and moments use the
locale's medium format; decimals the locale's separators; lists are joined. Everything else is
shown as it is (ids are not grouped: « work log 12045 »).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.messages.pofile import read_po

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
CATALOGUE_DIR = Path(__file__).resolve().parent
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
PARAM = re.compile(r"%\((\w+)\)[sd]")
log = logging.getLogger("commons_map.messages")


@cache
def catalogue(locale: str) -> dict[str, str]:
    """Every code of a locale and its text, read once per process from the rooms' .po files."""
    texts: dict[str, str] = {}
    for po in sorted((CATALOGUE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=locale, domain=po.stem):
                if message.id and isinstance(message.id, str) and message.string:
                    texts[message.id] = str(message.string)
    return texts


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The best of our locales for an Accept-Language header; ``default`` (French) when nothing fits."""
    if not accept_language:
        return default
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
    return default


def terminal_locale() -> str:
    """The language of the command line: ``COMMONS_LOCALE``, else the POSIX locale (LC_ALL, LC_MESSAGES,
    LANG); English when none of them is French, as terminals and logs usually are."""
    import os

    for var in ("COMMONS_LOCALE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def is_code(text: str) -> bool:
    """True when ``text`` is a message code of the catalogue (not a sentence)."""
    return bool(CODE.match(text)) and text in catalogue("en")


def parameters(template: str) -> set[str]:
    """The names of the ``%(name)s`` parameters a text uses."""
    return set(PARAM.findall(template))


def duration(minutes: int, locale: str = DEFAULT_LOCALE) -> str:
    """Minutes of time currency as hours and minutes: « 19 h 03 », « 45 min », « −2 h 00 »."""
    sign = "−" if minutes < 0 else ""
    h, m = divmod(abs(int(minutes)), 60)
    if h == 0:
        return f"{sign}{m} min"
    return f"{sign}{h} h {m:02d}"


def _format(name: str, value: Any, locale: str) -> str:
    if isinstance(value, Message):  # a message within a message (a row's reason), in the same language
        return value.text(locale)
    loc = Locale.parse(locale)
    if isinstance(value, bool):
        return str(value).lower()
    if (name == "minutes" or name.endswith("_minutes")) and isinstance(value, int):
        return duration(value, locale)
    if isinstance(value, datetime):  # to the minute: "19 déc. 2026, 03:00", "Dec 19, 2026, 3:00 AM"
        return str(loc.datetime_formats["medium"]).format(
            dates.format_time(value, format="short", locale=loc),
            dates.format_date(value, format="medium", locale=loc),
        )
    if isinstance(value, date):
        return dates.format_date(value, format="medium", locale=loc)
    if isinstance(value, float | Decimal):
        return numbers.format_decimal(value, format="#,##0.###", locale=loc)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_format(name, v, locale) for v in value)
    return "" if value is None else str(value)


def format_value(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """One value as a message would say it in ``locale`` (a date: « 20 oct. 2026 »)."""
    return _format("value", value, locale if locale in LOCALES else DEFAULT_LOCALE)


def render(code: str, params: Mapping[str, Any] | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """The text of a code in ``locale`` (French when the locale is not ours), parameters filled in."""
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    template = catalogue(locale).get(code) or catalogue("en").get(code)
    params = dict(params or {})
    if template is None:
        log.error("message code %r has no text", code)
        return code + (f" {params}" if params else "")
    values = {k: _format(k, v, locale) for k, v in params.items()}
    try:
        return template % values if "%(" in template else template
    except (KeyError, ValueError):
        log.error("message %r in %s lacks a parameter (given %s)", code, locale, sorted(values))
        return template


def plain(value: Any) -> Any:
    """A parameter as JSON can carry it (dates as ISO 8601)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Message):
        return value.as_dict()
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class Message:
    """A code and its parameters: what is said, before the language is chosen."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self, locale: str = DEFAULT_LOCALE) -> str:
        """The message in ``locale``."""
        return render(self.code, self.params, locale)

    def as_dict(self) -> dict[str, Any]:
        """The code and its parameters, JSON-safe (for the API and the notifications table)."""
        return {"code": self.code, "params": {k: plain(v) for k, v in self.params.items()}}
