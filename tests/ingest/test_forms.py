"""The XLSForm workbooks: reproducible from build.py, compiled by pyxform, passed by ODK Validate."""

from __future__ import annotations

import csv
import io
import shutil

import pytest
from pyxform.xls2xform import convert
from sqlalchemy import insert, select

from ingest.forms.build import build
from ingest.xforms import FORMS, choices_for, media_files, served_form


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
def test_served_forms_read_the_cooperatives_lists_from_csv_media(db, people, form_id):
    """The lists are not inlined (issue 18, item 5): every list is a CSV media file of the form,
    listed with the rows the member may choose from, and the form is the same for every member."""
    form = served_form(db, member=people.steward, form_id=form_id)
    text = form.xml.decode()
    assert form.has_media and form.xml == served_form(db, member=people.member, form_id=form_id).xml
    lists = choices_for(db, member=people.steward, spec=FORMS[form_id])
    media = {m.filename: m for m in media_files(db, member=people.steward, form_id=form_id)}
    assert set(media) == {f"{name}.csv" for name in lists}
    for name, items in lists.items():
        assert f'<instance id="{name}" src="jr://file-csv/{name}.csv"/>' in text
        assert f"instance('{name}')/root/item" in text
        rows = list(csv.DictReader(io.StringIO(media[f"{name}.csv"].data.decode())))
        assert [r["name"] for r in rows] == [c[0] for c in items] and rows, name
        assert all(f"<value>{c[0]}</value>" not in text for c in items[:5]), name
    assert "placeholder" not in text
    assert f'version="{form.version}"' in text


def test_a_large_register_leaves_the_form_small(db, people):
    """1,345 commons (an import) used to make a 310 KB work-log form; now they make a CSV."""
    from commons_map.register.models import Commons

    before = served_form(db, member=people.coordinator, form_id="commons_worklog")
    garden = db.scalar(select(Commons).where(Commons.kind_code == "garden", Commons.cooperative_id == people.coop.id))
    db.execute(insert(Commons), [
        {"cooperative_id": people.coop.id, "kind_code": "tool", "name": f"Outil importé {i}", "visibility": "members",
         "geom": garden.geom} for i in range(1345)])
    after = served_form(db, member=people.coordinator, form_id="commons_worklog")
    assert after.xml == before.xml and len(after.xml) < 20_000
    commons_csv = next(m for m in media_files(db, member=people.coordinator, form_id="commons_worklog")
                       if m.filename == "commons.csv")
    assert commons_csv.data.count(b"\n") > 1345


@pytest.mark.skipif(shutil.which("java") is None, reason="ODK Validate needs Java (java not on PATH)")
def test_served_forms_pass_odk_validate():
    """pyxform's validate=True runs ODK Validate (the JavaRosa engine Collect uses) on the machine's Java."""
    for form_id, spec in FORMS.items():
        warnings: list[str] = []
        result = convert(xlsform=str(spec.path), validate=True, warnings=warnings)
        assert f'id="{form_id}"' in result.xform
