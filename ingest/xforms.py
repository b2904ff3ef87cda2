"""The forms we serve to ODK Collect: XLSForm in ingest/forms/, choice lists as CSV media from the database.

``served_form(session, member=…, form_id=…)`` answers the XForm XML a phone downloads, its MD5
and version: the same bytes for everyone, whatever the register holds. The choice lists
``commons`` (what this member may see and work on), ``activities``, ``crops``, ``indicators``
and ``units`` are media files (``select_one_from_file commons.csv``), listed in the form's
OpenRosa manifest with their own MD5 and made from the database when asked
(``media_files``): a new garden changes ``commons.csv`` and its hash, not the form, so Collect
downloads one small file again instead of every form (as with ODK Central's form attachments).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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
        FormSpec("worklog", "commons_worklog", "Journal de travail bénévole / Volunteer work log", "2026112901",
                 ("land", "garden", "bed", "tool", "housing", "place"), ("commons", "activities")),
        FormSpec("harvest", "commons_harvest", "Récolte / Harvest", "2026112901",
                 ("land", "garden", "bed"), ("commons", "crops"), repeats=("crops",)),
        FormSpec("soil", "commons_soil", "Observation du sol / Soil observation", "2026112901",
                 ("land", "garden", "bed"), ("commons", "indicators", "units"), repeats=("measures",)),
        FormSpec("inventory", "commons_inventory", "Inventaire d'un commun / Commons inventory check", "2026112901",
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
    return out


def _media_name(list_name: str) -> str:
    return f"{list_name}.csv"


def csv_bytes(items: list[Choice], *, filtered: bool = False) -> bytes:
    """One choice list as the CSV Collect reads (``name``, ``label``; the labels per language too).

    ``label`` holds both languages ("Tomate / Tomato") when they differ: Collect shows the
    ``label`` column of a CSV list, whatever the form's language.
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["name", "label", "label::Français (fr)", "label::English (en)", *(["indicator"] if filtered else [])])
    for name, fr, en, filt in items:
        w.writerow([name, fr if fr == en else f"{fr} / {en}", fr, en, *([filt] if filtered else [])])
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class MediaFile:
    """A media file of a form (a choice list as CSV): its name, bytes and MD5."""

    filename: str
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # noqa: S324 - OpenRosa names MD5 for media hashes


def media_files(session: Session, *, member: Member, form_id: str) -> list[MediaFile]:
    """The CSV media of ``form_id`` for ``member``, made from the register now (so always current)."""
    spec = get_spec(form_id)
    lists = choices_for(session, member=member, spec=spec)
    return [MediaFile(_media_name(name), csv_bytes(items, filtered=name == "units")) for name, items in lists.items()]


def media_file(session: Session, *, member: Member, form_id: str, filename: str) -> MediaFile:
    """One media file of a form, or NotFound naming the form's files."""
    files = media_files(session, member=member, form_id=form_id)
    for f in files:
        if f.filename == filename:
            return f
    raise NotFound("openrosa.no_media", field="filename", filename=filename, form_id=form_id,
                   known=[f.filename for f in files])


@dataclass(frozen=True)
class ServedForm:
    """An XForm as served: its bytes, MD5 and version, and whether it has media (CSV lists)."""

    form_id: str
    title: str
    version: str
    xml: bytes
    has_media: bool = False

    @property
    def md5(self) -> str:
        return hashlib.md5(self.xml).hexdigest()  # noqa: S324 - OpenRosa names MD5 for form hashes


def served_form(session: Session, *, member: Member, form_id: str) -> ServedForm:
    """The XForm of ``form_id``: the same bytes for every member and every state of the register
    (the lists are media files), compiled once per process."""
    del session, member  # the form no longer depends on them: its lists do (media_files)
    spec = get_spec(form_id)
    return ServedForm(form_id=spec.form_id, title=spec.title, version=spec.base_version, xml=_compile(spec.form_id),
                      has_media=bool(spec.lists))


@lru_cache(maxsize=16)
def _compile(form_id: str) -> bytes:
    spec = FORMS[form_id]
    result = convert(xlsform=str(spec.path), warnings=[])
    return result.xform.encode("utf-8")
