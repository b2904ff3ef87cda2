"""The forms we serve to ODK Collect: XLSForm in ingest/forms/, choice lists filled from the database.

``served_form(session, member=…, form_id=…)`` answers the XForm XML a member's phone downloads,
its MD5 and version. The choice lists ``commons`` (what this member may see and work on),
``activities``, ``crops``, ``indicators`` and ``units`` come from the database at that moment, so a
new garden appears in the form without touching the workbook; the version and the hash change
with them, which is how Collect knows to download the form again.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from openpyxl import load_workbook
from pyxform.xls2xform import convert
from sqlalchemy import select
from sqlalchemy.orm import Session

from commons_map.errors import NotFound
from commons_map.people.models import Member
from commons_map.register.models import Commons, CommonsKind
from commons_map.register.service import visible_clause

FORMS_DIR = Path(__file__).resolve().parent / "forms"
Choice = tuple[str, str, str, str]  # name, label fr, label en, filter column (indicator)

@dataclass(frozen=True)
class FormSpec:
    """One form we serve: its workbook, its id, its dynamic lists and the categories of commons offered."""

    key: str
    form_id: str
    title: str
    base_version: str
    categories: tuple[str, ...]  # commons categories in the "commons" list
    lists: tuple[str, ...]
    repeats: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return FORMS_DIR / f"{self.key}.xlsx"


FORMS: dict[str, FormSpec] = {
    s.form_id: s for s in (
        FormSpec("worklog", "commons_worklog", "Journal de travail bénévole / Volunteer work log", "2026112701",
                 ("land", "garden", "bed", "tool", "housing", "place"), ("commons", "activities")),
        FormSpec("harvest", "commons_harvest", "Récolte / Harvest", "2026112701",
                 ("land", "garden", "bed"), ("commons", "crops"), repeats=("crops",)),
        FormSpec("soil", "commons_soil", "Observation du sol / Soil observation", "2026112701",
                 ("land", "garden", "bed"), ("commons", "indicators", "units"), repeats=("measures",)),
        FormSpec("inventory", "commons_inventory", "Inventaire d'un commun / Commons inventory check", "2026112701",
                 ("land", "garden", "bed", "tool", "housing", "place"), ("commons",)),
    )
}


def get_spec(form_id: str) -> FormSpec:
    """The form with that id, or NotFound naming the known ones."""
    spec = FORMS.get(form_id)
    if spec is None:
        raise NotFound("openrosa.no_form", field="form", form_id=form_id, known=list(FORMS))
    return spec


def commons_choice(commons_id: int) -> str:
    """The choice name of a commons in the forms ('c12')."""
    return f"c{commons_id}"


def unit_choice(indicator: str, unit: str) -> str:
    """The choice name of an indicator's unit ('bulk_density__g_cm3'); unique within the units list."""
    return f"{indicator}__{re.sub(r'[^0-9A-Za-z]+', '_', unit).strip('_')}"


def _commons(session: Session, member: Member, spec: FormSpec) -> list[Choice]:
    rows = session.execute(
        select(Commons.id, Commons.name, CommonsKind.label_fr, CommonsKind.label_en)
        .join(CommonsKind, CommonsKind.code == Commons.kind_code)
        .where(Commons.cooperative_id == member.cooperative_id, Commons.archived_at.is_(None),
               CommonsKind.category.in_(spec.categories), visible_clause(member, Commons))
        .order_by(Commons.name, Commons.id)
    ).all()
    return [(commons_choice(i), f"{name} ({fr})", f"{name} ({en})", "") for i, name, fr, en in rows]


def _activities(session: Session, member: Member) -> list[Choice]:
    from commons_map.worklog.service import list_activities

    return [(a.code, a.label_fr, a.label_en, "")
            for a in list_activities(session, cooperative_id=member.cooperative_id)]


def _crops(session: Session, member: Member) -> list[Choice]:
    from commons_map.soil.crops import list_crops

    return [(c.code, c.label_fr, c.label_en, "") for c in list_crops(session, cooperative_id=member.cooperative_id)]


def _indicators(session: Session, member: Member) -> tuple[list[Choice], list[Choice]]:
    from commons_map.soil.service import list_indicators

    inds = list_indicators(session, cooperative_id=member.cooperative_id)
    indicators = [(i.code, i.label_fr, i.label_en, "") for i in inds]
    units = []
    for i in inds:
        for unit in i.units:
            units.append((unit_choice(i.code, unit), unit, unit, i.code))
    return indicators, units


def choices_for(session: Session, *, member: Member, spec: FormSpec) -> dict[str, list[Choice]]:
    """The dynamic choice lists of a form, for this member, as they stand now."""
    out: dict[str, list[Choice]] = {}
    if "commons" in spec.lists:
        out["commons"] = _commons(session, member, spec)
    if "activities" in spec.lists:
        out["activities"] = _activities(session, member)
    if "crops" in spec.lists:
        out["crops"] = _crops(session, member)
    if "indicators" in spec.lists:
        out["indicators"], out["units"] = _indicators(session, member)
    for name, items in out.items():
        if not items:  # an empty list does not compile: say so inside the form
            out[name] = [("none", "(rien à choisir pour l'instant)", "(nothing to choose yet)", "")]
    return out


@dataclass(frozen=True)
class ServedForm:
    """An XForm as served: its bytes, MD5 and version."""

    form_id: str
    title: str
    version: str
    xml: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.xml).hexdigest()  # noqa: S324 - OpenRosa names MD5 for form hashes


def served_form(session: Session, *, member: Member, form_id: str) -> ServedForm:
    """The XForm of ``form_id`` with its choice lists filled for ``member``."""
    spec = get_spec(form_id)
    lists = choices_for(session, member=member, spec=spec)
    digest = hashlib.sha256(json.dumps(lists, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    version = f"{spec.base_version}.{int(digest[:8], 16) % 10**8:08d}"
    xml = _compile(spec.form_id, version, json.dumps(lists, sort_keys=True, ensure_ascii=False))
    return ServedForm(form_id=spec.form_id, title=spec.title, version=version, xml=xml)


def workbook_with_choices(spec: FormSpec, lists: dict[str, list[Choice]], version: str) -> bytes:
    """The form's workbook with its dynamic lists replaced, as .xlsx bytes."""
    wb = load_workbook(spec.path)
    ch = wb["choices"]
    kept = [list(r) for r in ch.iter_rows(min_row=2, values_only=True) if r[0] not in lists and r[0]]
    tail = {r[0] for r in kept}
    ch.delete_rows(2, ch.max_row)
    for name, items in lists.items():
        for choice, fr, en, filt in items:
            ch.append([name, choice, fr, en, filt])
    # Lists the server fills come first; fixed rows (e.g. "autre", destinations) follow, in order.
    for r in kept:
        ch.append(r)
    del tail
    st = wb["settings"]
    header = [c.value for c in st[1]]
    st.cell(row=2, column=header.index("version") + 1, value=version)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@lru_cache(maxsize=256)
def _compile(form_id: str, version: str, lists_json: str) -> bytes:
    spec = FORMS[form_id]
    lists = {k: [tuple(c) for c in v] for k, v in json.loads(lists_json).items()}
    data = workbook_with_choices(spec, lists, version)  # type: ignore[arg-type]
    result = convert(xlsform=data, file_type=".xlsx", warnings=[])
    return result.xform.encode("utf-8")
