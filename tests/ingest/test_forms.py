"""The XLSForm workbooks: reproducible from build.py, compiled by pyxform, passed by ODK Validate."""

from __future__ import annotations

import shutil

import pytest
from pyxform.xls2xform import convert

from ingest.forms.build import build
from ingest.xforms import FORMS, choices_for, served_form, workbook_with_choices


def test_workbooks_are_exactly_what_build_py_makes(tmp_path):
    for path in build(tmp_path):
        committed = FORMS_DIR / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{path.name}: run python -m ingest.forms.build"


FORMS_DIR = next(iter(FORMS.values())).path.parent


@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_every_workbook_compiles(form_id):
    spec = FORMS[form_id]
    warnings: list[str] = []
    result = convert(xlsform=str(spec.path), warnings=warnings)
    assert f'id="{form_id}"' in result.xform
    assert warnings == []
    for repeat in spec.repeats:
        assert f'nodeset="/data/{repeat}"' in result.xform


@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_served_forms_hold_the_cooperatives_choices(db, people, form_id):
    form = served_form(db, member=people.steward, form_id=form_id)
    text = form.xml.decode()
    lists = choices_for(db, member=people.steward, spec=FORMS[form_id])
    for name, items in lists.items():
        assert items and all(f"<value>{c[0]}</value>" in text or f">{c[0]}<" in text for c in items[:5]), name
    assert "placeholder" not in text
    assert f'version="{form.version}"' in text


@pytest.mark.skipif(shutil.which("java") is None, reason="ODK Validate needs Java (java not on PATH)")
def test_served_forms_pass_odk_validate(db, people):
    """pyxform's validate=True runs ODK Validate (the JavaRosa engine Collect uses) on the machine's Java."""
    for form_id, spec in FORMS.items():
        data = workbook_with_choices(spec, choices_for(db, member=people.steward, spec=spec), "2026112799")
        warnings: list[str] = []
        result = convert(xlsform=data, file_type=".xlsx", validate=True, warnings=warnings)
        assert f'id="{form_id}"' in result.xform
