"""Build the XLSForm workbooks of ingest/forms/ from the definitions below (reviewable as code).

Run: python -m ingest.forms.build   (or python ingest/forms/build.py)

The workbooks are written byte-for-byte the same every time (fixed timestamps inside the zip),
so a change shows up in review as a change to this file. The lists that come from the
cooperative's register (commons, crops, activities, indicators, units) are not in the workbooks:
the questions read them from CSV media files (``select_one_from_file commons.csv``) the server
makes from the database when a phone asks (see ingest/xforms.py), so a new garden changes one
small file and not the form.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
FR, EN = "label::Français (fr)", "label::English (en)"
HFR, HEN = "hint::Français (fr)", "hint::English (en)"
FIXED = (2026, 1, 1, 0, 0, 0)

SURVEY_COLS = ["type", "name", FR, EN, HFR, HEN, "required", "relevant", "constraint",
               "constraint_message::Français (fr)", "constraint_message::English (en)", "default",
               "appearance", "choice_filter", "calculation", "parameters"]

DESTINATIONS = [
    ("members", "Membres", "Members"),
    ("shared_meals", "Repas partagés", "Shared meals"),
    ("households_in_need", "Foyers dans le besoin", "Households in need"),
    ("other_cooperatives", "Autres coopératives", "Other cooperatives"),
    ("seed_saving", "Semences", "Seed saving"),
    ("compost", "Compost", "Compost"),
]
STATES = [
    ("active", "En service, en bon état", "In use, in good order"),
    ("needs_repair", "À réparer", "Needs repair"),
    ("out_of_service", "Hors service", "Out of service"),
    ("lost", "Introuvable", "Lost"),
    ("fallow", "En friche / au repos", "Fallow / resting"),
    ("restoring", "En restauration", "Being restored"),
]


def q(type_: str, name: str, fr: str, en: str, **kw: str) -> dict[str, str]:
    """One survey row."""
    return {"type": type_, "name": name, FR: fr, EN: en, **kw}


FORMS: dict[str, dict] = {
    "worklog": {
        "title": "Journal de travail bénévole / Volunteer work log",
        "form_id": "commons_worklog",
        "version": "2026112901",
        "survey": [
            q("start", "start", "", ""),
            q("end", "end", "", ""),
            q("select_one_from_file commons.csv", "commons", "Sur quel commun avez-vous travaillé ?",
              "Which commons did you work on?", required="yes", appearance="autocomplete"),
            q("date", "work_date", "Date du travail", "Date of the work", required="yes", default="today()",
              constraint=". <= today()", **{"constraint_message::Français (fr)": "Pas dans le futur",
                                             "constraint_message::English (en)": "Not in the future"}),
            q("decimal", "hours", "Durée (heures, ex. 1,5)", "Duration (hours, e.g. 1.5)", required="yes",
              constraint=". > 0 and . <= 16", **{"constraint_message::Français (fr)": "Entre 0 et 16 heures",
                                                  "constraint_message::English (en)": "Between 0 and 16 hours"}),
            q("select_one_from_file activities.csv", "activity", "Activité", "Activity", required="yes"),
            q("text", "notes", "Remarques", "Notes", appearance="multiline"),
            q("geopoint", "location", "Où étiez-vous ? (facultatif)", "Where were you? (optional)"),
            q("image", "photo", "Photo (facultatif)", "Photo (optional)", parameters="max-pixels=1600"),
        ],
        "choices": [],
    },
    "harvest": {
        "title": "Récolte / Harvest",
        "form_id": "commons_harvest",
        "version": "2026112901",
        "survey": [
            q("select_one_from_file commons.csv", "commons", "Parcelle, jardin ou planche", "Parcel, garden or bed",
              required="yes", appearance="autocomplete"),
            q("date", "harvested_on", "Date de la récolte", "Harvest date", required="yes", default="today()",
              constraint=". <= today()"),
            q("begin_repeat", "crops", "Culture récoltée", "Crop harvested"),
            q("select_one_from_file crops.csv", "crop", "Culture", "Crop", required="yes", appearance="autocomplete"),
            q("decimal", "weight_kg", "Poids (kg, frais)", "Weight (kg, fresh)", constraint=". > 0"),
            q("integer", "count", "Nombre (sans balance)", "Count (no scale)", relevant="not(${weight_kg} > 0)",
              constraint=". > 0"),
            q("select_one destinations", "destination", "Pour qui ?", "Where does it go?", required="yes"),
            q("end_repeat", "crops", "", ""),
            q("text", "notes", "Remarques", "Notes", appearance="multiline"),
            q("image", "photo", "Photo (facultatif)", "Photo (optional)", parameters="max-pixels=1600"),
        ],
        "choices": [*[("destinations", *d) for d in DESTINATIONS]],
    },
    "soil": {
        "title": "Observation du sol / Soil observation",
        "form_id": "commons_soil",
        "version": "2026112901",
        "survey": [
            q("select_one_from_file commons.csv", "commons", "Parcelle, jardin ou planche", "Parcel, garden or bed",
              required="yes", appearance="autocomplete"),
            q("date", "sampled_on", "Date", "Date", required="yes", default="today()", constraint=". <= today()"),
            q("geopoint", "point", "Point de prélèvement", "Sampling point"),
            q("begin_repeat", "measures", "Mesure", "Measurement"),
            q("select_one_from_file indicators.csv", "indicator", "Indicateur", "Indicator", required="yes"),
            q("decimal", "value", "Valeur", "Value", required="yes"),
            q("select_one_from_file units.csv", "unit", "Unité", "Unit", required="yes",
              choice_filter="indicator=${indicator}"),
            q("integer", "depth_top_cm", "Profondeur haut (cm)", "Depth top (cm)", constraint=". >= 0"),
            q("integer", "depth_bottom_cm", "Profondeur bas (cm)", "Depth bottom (cm)",
              constraint=". > ${depth_top_cm}"),
            q("end_repeat", "measures", "", ""),
            q("text", "notes", "Remarques", "Notes", appearance="multiline"),
            q("image", "photo", "Photo du profil (facultatif)", "Photo of the profile (optional)",
              parameters="max-pixels=1600"),
        ],
        "choices": [],
    },
    "inventory": {
        "title": "Inventaire d'un commun / Commons inventory check",
        "form_id": "commons_inventory",
        "version": "2026112901",
        "survey": [
            q("select_one_from_file commons.csv", "commons", "Outil, lieu ou terrain vérifié",
              "Tool, place or land checked", required="yes", appearance="autocomplete"),
            q("select_one states", "state", "État constaté", "State found", required="yes"),
            q("image", "photo", "Photo", "Photo", parameters="max-pixels=1600"),
            q("text", "notes", "Remarques", "Notes", appearance="multiline"),
        ],
        "choices": [*[("states", *s) for s in STATES]],
    },
}


def workbook(spec: dict) -> Workbook:
    """The XLSForm workbook of one form definition."""
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(SURVEY_COLS)
    for row in spec["survey"]:
        ws.append([row.get(c, "") for c in SURVEY_COLS])
    ch = wb.create_sheet("choices")
    ch.append(["list_name", "name", FR, EN, "indicator"])
    for row in spec["choices"]:
        ch.append(list(row) + [""] * (5 - len(row)))
    st = wb.create_sheet("settings")
    st.append(["form_title", "form_id", "version", "default_language", "instance_name"])
    st.append([spec["title"], spec["form_id"], spec["version"], "Français (fr)", ""])
    wb.properties.creator = "commons-map"
    wb.properties.created = wb.properties.modified = datetime(2026, 1, 1)
    return wb


def to_bytes(wb: Workbook) -> bytes:
    """The workbook as .xlsx bytes with fixed zip timestamps (reproducible)."""
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _fixed_core(data)
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED)
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, data)
    return out.getvalue()


def _fixed_core(data: bytes) -> bytes:
    import re

    return re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>2026-01-01T00:00:00Z\g<2>", data)


def build(target: Path = HERE) -> list[Path]:
    """Write every workbook; returns their paths."""
    paths = []
    for key, spec in FORMS.items():
        path = target / f"{key}.xlsx"
        path.write_bytes(to_bytes(workbook(spec)))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build():
        print(p)
