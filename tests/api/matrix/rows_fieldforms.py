"""Access-matrix rows of the crop catalogue, the forms' CSV media and the photos of field submissions.

Crops: anyone reads the catalogue, coordinators add (the outsider to its own cooperative) and change
their own (the outsider does not find ours). The forms' media follow the forms: any signed-in member,
each reading the lists of what they may see. A work log's photo: its worker, the steward who
approves it and the coordinators; 404 to everyone else, anonymous included.
"""

from __future__ import annotations

from tests.api.test_access_matrix import OURS, Row, Subjects, coordinators, every, js, rule, signed_in

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PHOTO = "matrice-1764403000999.jpg"


def _own_crop(s: Subjects) -> str:
    from commons_map.soil.crops import add_crop

    crop = add_crop(s.db, actor=s.people.coordinator, code="matrice_oca", label_fr="Oca", label_en="Oca")
    s.db.flush()
    return crop.code


def _harvest(s: Subjects) -> int:
    from datetime import date

    from commons_map.soil.schemas import HarvestIn
    from commons_map.soil.service import record_harvest

    h = record_harvest(s.db, actor=s.people.member, data=HarvestIn(
        commons_id=s.public, crop="tomato", harvested_on=date.today(), weight_kg=1.5))
    s.db.flush()
    return h.id


def _photographed_log(s: Subjects) -> int:
    """The member's work log on the steward's land, as if sent from Collect with a photo."""
    from commons_map.fieldforms.service import add_attachment, store_submission
    from commons_map.settings import Settings

    log_id = s.work_log
    stored = store_submission(s.db, cooperative_id=s.people.coop.id, member=s.people.member,
                              form_id="commons_worklog", form_version="2026112901",
                              instance_id=f"uuid:matrice-{log_id}", deprecated_id=None, raw=b"<data/>",
                              source="openrosa")
    stored.submission.status, stored.submission.records = "processed", {"kind": "work_log", "ids": [log_id]}
    add_attachment(s.db, submission=stored.submission, name=PHOTO, content_type="image/jpeg", data=JPEG,
                   root=Settings.model_fields["attachments_dir"].default)
    s.db.flush()
    return log_id


SUBJECTS = {"matrix_crop": _own_crop, "matrix_harvest": _harvest, "photographed_log": _photographed_log}

LISTS = {"members": OURS, "private": ["steward", "coordinator"]}

ROWS = [
    Row("GET", "/api/v1/soil/crops", every(200)),
    Row("POST", "/api/v1/soil/crops", coordinators(201, outsider=201),
        body=lambda s, role: {"json": {"code": f"matrice_{role}", "label_fr": f"Matrice {role}",
                                       "label_en": f"Matrix {role}"}}),
    Row("PATCH", "/api/v1/soil/crops/{code}", coordinators(200, outsider=404), url="/api/v1/soil/crops/{matrix_crop}",
        body=js(label_en="Oca (New Zealand yam)")),
    Row("GET", "/api/v1/soil/harvests/{harvest_id}", every(200), url="/api/v1/soil/harvests/{matrix_harvest}"),
    Row("GET", "/openrosa/forms/{form_id}/manifest", signed_in(200), url="/openrosa/forms/commons_worklog/manifest"),
    Row("GET", "/openrosa/key/{token}/forms/{form_id}/manifest", signed_in(200),
        url="/openrosa/key/{role_field_token}/forms/commons_worklog/manifest"),
    Row("GET", "/openrosa/forms/{form_id}/media/{filename}", signed_in(200), hidden=LISTS,
        url="/openrosa/forms/commons_worklog/media/commons.csv"),
    Row("GET", "/openrosa/key/{token}/forms/{form_id}/media/{filename}", signed_in(200), hidden=LISTS,
        url="/openrosa/key/{role_field_token}/forms/commons_worklog/media/commons.csv"),
    Row("GET", "/api/v1/attachments/{kind}/{record_id}/{name}",
        rule(200, anonymous=404, other_steward=404, outsider=404),
        url="/api/v1/attachments/work_log/{photographed_log}/" + PHOTO),
]
