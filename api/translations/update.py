"""Extract the pages' strings and write both catalogs: ``python -m api.translations.update``.

English is the source language (its catalog maps each string to itself being empty);
French comes from ``fr_strings.FR``. A string without a French translation is reported and
makes the command exit 1, so nothing a member reads stays untranslated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

from api.translations.fr_strings import FR

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "t": None}
METHOD_MAP = [("api/**.py", "python"), ("api/templates/**.html", "jinja2")]
OPTIONS = {"api/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> dict[str | tuple[str, str], None]:
    """Every translatable string of api/ (Python and templates), in a stable order."""
    found: dict[str | tuple[str, str], None] = {}
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        if not message:
            continue
        if isinstance(message, tuple):
            message = tuple(m for m in message if m) if len(message) > 1 else message[0]
            if isinstance(message, tuple) and len(message) == 1:
                message = message[0]
        if _file.startswith("api/translations"):
            continue
        found[message] = None
    return found


def build(locale: str, messages: dict) -> Catalog:
    """A catalog of ``messages`` for ``locale``."""
    cat = Catalog(
        locale=locale,
        project="commons-map",
        version="0.1",
        charset="utf-8",
        fuzzy=False,
        copyright_holder="commons-map contributors",
    )
    for msg in sorted(messages, key=lambda m: m[0] if isinstance(m, tuple) else m):
        if locale == "fr":
            key = msg[0] if isinstance(msg, tuple) else msg
            text = FR.get(key, "" if not isinstance(msg, tuple) else ("", ""))
            if isinstance(text, tuple):  # French has more plural forms in CLDR: repeat the plural
                text = tuple(text) + (text[-1],) * (cat.num_plurals - len(text))
            cat.add(msg, text)
        else:
            cat.add(msg, "" if not isinstance(msg, tuple) else ("",) * cat.num_plurals)
    return cat


def main() -> int:
    """Write api/translations/{fr,en}/LC_MESSAGES/messages.po; 1 when French is missing."""
    messages = extract()
    missing = [m for m in messages if (m[0] if isinstance(m, tuple) else m) not in FR]
    for locale in ("fr", "en"):
        out = HERE / locale / "LC_MESSAGES" / "messages.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:
            write_po(fh, build(locale, messages), omit_header=False, sort_output=True, width=100)
    for m in missing:
        print(f"missing French: {m!r}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
