"""The message catalogue: every code speaks French and English, with the same parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from commons_map import messages
from commons_map.errors import ValidationFailed, collector, input_problem


def _codes(root: Path, locale: str) -> dict[str, tuple[str, str]]:
    """code -> (room file, text), read straight from the .po files."""
    out: dict[str, tuple[str, str]] = {}
    for po in sorted((root / locale / "LC_MESSAGES").glob("*.po")):
        ids = re.findall(r'^msgid "(.+)"$', po.read_text(), re.M)
        twice = sorted({i for i in ids if ids.count(i) > 1})
        assert not twice, f"{po.name} ({locale}) gives {twice} twice"
        with po.open("rb") as fh:
            for m in read_po(fh, locale=locale):
                if m.id:
                    assert m.id not in out, f"{m.id} is in {po.name} and {out[m.id][0]}"
                    out[m.id] = (po.stem, str(m.string))
    return out


def check_catalogue(root: Path) -> None:
    """Every code of the catalogue under ``root`` in both languages, with the same parameters."""
    en, fr = _codes(root, "en"), _codes(root, "fr")
    assert en, "the English catalogue is empty"
    assert sorted(set(en) - set(fr)) == [], "codes without French"
    assert sorted(set(fr) - set(en)) == [], "codes without English"
    for code, (room, text) in en.items():
        assert messages.CODE.match(code), f"{code!r} is not a code (room.name)"
        assert code.split(".")[0] == room, f"{code} lives in {room}.po, not in {code.split('.')[0]}.po"
        assert text.strip(), f"{code} has no English text"
        assert fr[code][1].strip(), f"{code} has no French text"
        p_en, p_fr = sorted(messages.parameters(text)), sorted(messages.parameters(fr[code][1]))
        assert p_en == p_fr, f"{code}: English uses {p_en}, French {p_fr}"


def test_every_code_has_french_and_english_with_the_same_parameters():
    check_catalogue(messages.CATALOGUE_DIR)


@pytest.mark.parametrize(("en", "fr", "fails"), [
    ('"Refused by %(minutes)s."', '"Refusé."', "demo.refused: English uses"),
    ('"Refused."', '""', "demo.refused has no French text"),
    ('"Refused."', None, "codes without French"),
    ('"Refused."\nmsgid "demo.refused"\nmsgstr "Again."', '"Refusé."', "gives \\['demo.refused'\\] twice"),
])
def test_the_check_fails_on_a_missing_french_text_or_parameter(tmp_path: Path, en, fr, fails):
    """The check above can fail: a catalogue with a gap is caught."""
    for locale, text in (("en", en), ("fr", fr)):
        d = tmp_path / locale / "LC_MESSAGES"
        d.mkdir(parents=True)
        body = f'msgid "demo.refused"\nmsgstr {text}\n' if text is not None else ""
        (d / "demo.po").write_text('msgid ""\nmsgstr ""\n\n' + body)
    with pytest.raises(AssertionError, match=fails):
        check_catalogue(tmp_path)


def test_a_refusal_renders_in_both_languages_with_its_parameters():
    exc = ValidationFailed("ledger.limit_below", field="minutes", account="Léa", balance_after_minutes=-1243,
                           short_minutes=43, limit_minutes=-1200)
    assert exc.text("en") == "Refused: Léa's balance would go to −20 h 43, 43 min below its limit of −20 h 00."
    assert exc.text("fr") == ("Refusé : le solde de Léa passerait à −20 h 43, 43 min sous sa limite de −20 h 00.")
    assert exc.message == exc.text("en")
    body = exc.as_dict("fr")
    assert body["code"] == "ledger.limit_below" and body["params"]["short_minutes"] == 43
    assert body["errors"] == [{"field": "minutes", "message": exc.text("fr"), "code": "ledger.limit_below",
                               "params": body["params"]}]
    assert exc.summary("fr") == "minutes: " + exc.text("fr")


def test_durations_read_as_hours_and_minutes():
    assert messages.duration(1143) == "19 h 03"
    assert messages.duration(45) == "45 min"
    assert messages.duration(-120) == "−2 h 00"
    assert messages.render("ledger.limit_above", {"account": "x", "balance_after_minutes": 6030,
                                                  "over_minutes": 30, "limit_minutes": 6000}, "en").endswith(
        "100 h 30, 30 min above its limit of 100 h 00.")


def test_several_problems_raise_together_and_one_keeps_its_own_code():
    one = collector()
    one.add("payee", "ledger.self_payment")
    with pytest.raises(ValidationFailed) as caught:
        one.raise_if_any()
    assert caught.value.code == "ledger.self_payment"
    two = collector()
    two.add("payee", "ledger.self_payment")
    two.add("minutes", "input.missing")
    with pytest.raises(ValidationFailed) as caught:
        two.raise_if_any()
    assert caught.value.code == "input.invalid" and len(caught.value.problems) == 2
    assert caught.value.summary("fr") == ("payee: Vous ne pouvez pas vous payer vous-même.; "
                                          "minutes: Ce champ est obligatoire.")


def test_pydantic_errors_become_input_codes():
    p = input_problem({"type": "greater_than", "loc": ("body", "minutes"), "ctx": {"gt": 0}})
    assert (p.field, p.code, p.text("fr")) == ("minutes", "input.greater_than", "Doit être supérieur à 0.")
    assert input_problem({"type": "no_such_pydantic_type", "loc": ("q",)}).code == "input.invalid"


def test_accept_language_picks_our_locale_or_the_default():
    assert messages.negotiate("en-GB,en;q=0.9") == "en"
    assert messages.negotiate("de-DE, fr;q=0.5") == "fr"
    assert messages.negotiate("de", default="en") == "en"
    assert messages.negotiate(None, default="en") == "en"


# --- every refusal is said with a code --------------------------------------------------------------

ERRORS = {"DomainError", "ValidationFailed", "NotFound", "PermissionDenied", "AuthenticationFailed", "Conflict",
          "LimitExceeded", "TooManyAttempts", "PayloadTooLarge", "OgcError", "Impossible"}
ROOT = Path(__file__).resolve().parents[2]


def sentences(path: Path) -> list[tuple[int, str]]:
    """Where ``path`` raises a domain error, or adds a collector problem, with a sentence, not a code."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in ERRORS:
            arg = node.args[0] if node.args else None
        elif (name == "add" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
              and f.value.id == "problems" and len(node.args) >= 2):  # problems = collector()
            arg = node.args[1]
        else:
            continue
        if arg is None:
            found.append((node.lineno, "(no code)"))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if not messages.is_code(arg.value):
                found.append((node.lineno, arg.value))
        elif isinstance(arg, ast.JoinedStr | ast.BinOp):
            found.append((node.lineno, ast.unparse(arg)))
    return found


def test_every_refusal_is_said_with_a_code_of_the_catalogue():
    left = [f"{p.relative_to(ROOT)}:{line}: {text[:80]}"
            for package in ("commons_map", "api", "ingest", "maps")
            for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts
            for line, text in sentences(p)]
    assert left == [], f"{len(left)} refusals still said with a sentence:\n" + "\n".join(left[:40])


def test_the_scan_finds_a_sentence(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text('raise ValidationFailed(f"minutes: {m} is too many", field="minutes")\n'
                   'problems.add("name", "must not be empty")\nraise Conflict("ledger.self_payment")\n')
    assert [line for line, _ in sentences(bad)] == [1, 2]
