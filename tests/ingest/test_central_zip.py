"""ODK Central's "download all" ZIP taken as it comes (main CSV, repeat CSVs, media/), and the photos
of submissions shown on the records they made, to those who may read them (issue 18, item 6)."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commons_map.errors import ValidationFailed
from commons_map.fieldforms.models import Attachment, Submission
from commons_map.register.models import Commons
from commons_map.soil.models import Harvest
from commons_map.worklog.models import WorkLog
from ingest.exports import import_export
from tests.ingest.conftest import commons_id, new_iid

# A small JPEG (SOI, APP0 JFIF header, EOI): what a phone's camera sends, in miniature.
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
CENTRAL_TAIL = ("SubmitterID,SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,"
                "FormVersion")


def central_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    """A ZIP laid out as ODK Central's "download all" answers it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return path


def harvest_zip(tmp_path: Path, db, iid: str, photo: str = "1764403921123.jpg") -> Path:
    bed = f"c{commons_id(db, 'demo:bed-0-0')}"
    day = (date.today() - timedelta(days=3)).isoformat()
    main = (f"SubmissionDate,commons,harvested_on,notes,photo,meta-instanceID,KEY,{CENTRAL_TAIL}\r\n"
            f"{day}T17:02:11.010Z,{bed},{day},Récolte du soir,{photo},{iid},{iid},6,mamadou,1,1,,,"
            f"collect:Xy12,0,2026112901\r\n")
    crops = ("crop,weight_kg,count,destination,PARENT_KEY,KEY\r\n"
             f"tomato,4.5,,members,{iid},{iid}/crops[1]\r\n"
             f"Courgettes,2.1,,households_in_need,{iid},{iid}/crops[2]\r\n")
    return central_zip(tmp_path / "Récolte - Harvest.zip", {
        "commons_harvest.csv": main, "commons_harvest-crops.csv": crops, f"media/{photo}": JPEG,
        "media/unrelated.png": PNG})


def test_central_download_all_zip_is_imported_as_it_comes(db, people, tmp_path, attachments):
    iid = new_iid()
    path = harvest_zip(tmp_path, db, iid)
    result = import_export(db, path=path, cooperative=people.coop, attachments_dir=attachments)
    assert result.written and (result.form_id, result.rows, result.created, result.processed) == (
        "commons_harvest", 1, 1, 1)
    assert result.rejected == [] and result.attachments == 1
    rows = db.scalars(select(Harvest).where(Harvest.source_ref.like(iid + "%")).order_by(Harvest.source_ref)).all()
    assert [(h.crop, h.weight_kg, h.recorded_by_id) for h in rows] == [
        ("tomato", 4.5, people.steward.id), ("courgette", 2.1, people.steward.id)]
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.source == "central_csv" and sub.records == {"kind": "harvest", "ids": [h.id for h in rows]}
    [att] = db.scalars(select(Attachment).where(Attachment.submission_id == sub.id)).all()
    assert (att.name, att.content_type, att.size, att.sha256) == (
        "1764403921123.jpg", "image/jpeg", len(JPEG), hashlib.sha256(JPEG).hexdigest())
    assert (attachments / att.sha256[:2] / att.sha256).read_bytes() == JPEG
    # The file no row names is not kept.
    assert not (attachments / hashlib.sha256(PNG).hexdigest()[:2]).exists()
    # The same ZIP again: nothing new.
    again = import_export(db, path=path, cooperative=people.coop, attachments_dir=attachments)
    assert (again.created, again.duplicates, again.attachments) == (0, 1, 0)


def test_a_refused_or_dry_run_zip_writes_nothing_not_even_its_photos(db, people, tmp_path, attachments):
    iid = new_iid()
    path = harvest_zip(tmp_path, db, iid)
    dry = import_export(db, path=path, cooperative=people.coop, attachments_dir=attachments, dry_run=True)
    assert not dry.written and dry.created == 1 and dry.attachments == 0
    assert list(attachments.iterdir()) == []
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
    # A crop the cooperative does not know: the row is refused, naming it; nothing reaches the disk.
    bad = tmp_path / "bad"
    bad.mkdir()
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files["commons_harvest-crops.csv"] = files["commons_harvest-crops.csv"].replace(b"Courgettes", b"Kiwano")
    refused = import_export(db, path=central_zip(bad / "export.zip", files), cooperative=people.coop,
                            attachments_dir=attachments)
    assert not refused.written and len(refused.rejected) == 1 and "Kiwano" in refused.rejected[0]
    assert list(attachments.iterdir()) == []
    assert db.scalar(select(func.count()).select_from(Harvest).where(Harvest.source_ref.like(iid + "%"))) == 0


def test_a_zip_that_is_not_an_export_is_refused_naming_what_it_holds(db, people, tmp_path, attachments):
    two = central_zip(tmp_path / "two.zip", {"commons_harvest.csv": "a,b\r\n1,2\r\n", "other.csv": "c\r\n3\r\n"})
    with pytest.raises(ValidationFailed) as err:
        import_export(db, path=two, cooperative=people.coop, attachments_dir=attachments)
    assert err.value.problems[0].field == "file" and "other.csv" in err.value.summary("en")
    climbing = central_zip(tmp_path / "climb.zip", {"../evil.csv": "a\r\n1\r\n"})
    with pytest.raises(ValidationFailed) as err:
        import_export(db, path=climbing, cooperative=people.coop, attachments_dir=attachments)
    assert err.value.problems[0].code == "ingest.entry_climbs"


def _worklog_zip(tmp_path: Path, db, iid: str, land_id: int, photo: str) -> Path:
    day = (date.today() - timedelta(days=2)).isoformat()
    main = ("SubmissionDate,start,end,commons,work_date,hours,activity,notes,location-Latitude,location-Longitude,"
            f"location-Altitude,location-Accuracy,photo,meta-instanceID,KEY,{CENTRAL_TAIL}\r\n"
            f"{day}T08:12:01.010Z,{day}T09:02:11.421+02:00,{day}T11:05:40.102+02:00,c{land_id},{day},2,mulching,"
            f"Paillage,,,,,{photo},{iid},{iid},5,lucas,1,1,,,collect:abc,0,2026112901\r\n")
    return central_zip(tmp_path / "commons_worklog.zip", {"commons_worklog.csv": main, f"media/{photo}": JPEG})


@pytest.mark.parametrize(("role", "sees"), [
    ("member", True),          # the worker
    ("steward", True),         # steward of the land: approves it
    ("coordinator", True),
    ("other_steward", False),  # a member of the cooperative who neither did nor approves the work
    ("outsider", False),       # another cooperative's coordinator
    ("anonymous", False),
])
def test_a_photo_is_shown_on_its_work_log_to_those_who_may_read_it(orclient, db, people, auth, tmp_path,
                                                                   attachments, role, sees):
    land = next(c for c in db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%"))
                                      .order_by(Commons.id)) if people.steward.id in c.steward_ids)
    iid, photo = new_iid(), "1764403000555.jpg"
    result = import_export(db, path=_worklog_zip(tmp_path, db, iid, land.id, photo), cooperative=people.coop,
                           attachments_dir=attachments)
    assert result.written and result.attachments == 1
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == iid)).one()
    assert log.member_id == people.member.id
    who = people.by_role(role)
    headers = auth(who) if who is not None else {}
    url = f"/api/v1/attachments/work_log/{log.id}/{photo}"
    got = orclient.get(url, headers=headers)
    item = orclient.get(f"/api/v1/work-logs/{log.id}", headers=headers)
    if sees:
        assert got.status_code == 200 and got.content == JPEG
        assert got.headers["content-type"] == "image/jpeg" and "private" in got.headers["cache-control"]
        assert item.json()["attachments"] == [{"name": photo, "content_type": "image/jpeg", "size": len(JPEG),
                                               "url": url}]
    else:
        assert got.status_code == 404 and got.content != JPEG
        assert item.status_code in (401, 403, 404)
    # Another name, or the same name on a record of another kind: nothing, for anyone.
    assert orclient.get(url.replace(photo, "other.jpg"), headers=headers).status_code == 404
    assert orclient.get(f"/api/v1/attachments/harvest/{log.id}/{photo}", headers=headers).status_code == 404
    assert orclient.get(f"/api/v1/attachments/nope/{log.id}/{photo}", headers=headers).status_code == 404


@pytest.mark.parametrize(("role", "sees"), [("member", True), ("coordinator", True), ("outsider", False),
                                            ("anonymous", False)])
def test_a_harvest_photo_stays_with_the_cooperatives_members(orclient, db, people, auth, tmp_path, attachments,
                                                              role, sees):
    iid = new_iid()
    import_export(db, path=harvest_zip(tmp_path, db, iid), cooperative=people.coop, attachments_dir=attachments)
    first = db.scalars(select(Harvest).where(Harvest.source_ref == f"{iid}/crops[1]")).one()
    who = people.by_role(role)
    headers = auth(who) if who is not None else {}
    url = f"/api/v1/attachments/harvest/{first.id}/1764403921123.jpg"
    got = orclient.get(url, headers=headers)
    assert got.status_code == (200 if sees else 404)
    item = orclient.get(f"/api/v1/soil/harvests/{first.id}", headers=headers)
    if sees:
        assert got.content == JPEG and item.json()["attachments"][0]["url"] == url
    elif item.status_code == 200:  # a public parcel's harvest: its photo stays inside the cooperative
        assert item.json()["attachments"] == []


def test_the_command_line_takes_the_zip_as_it_comes(database_url, engine, tmp_path):
    """`commons-map ingest submissions Export.zip --as …`: rows, repeats and photos in one go."""
    import os
    import subprocess
    import sys

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    iid, kept = new_iid(), tmp_path / "kept"
    with Session(engine) as s:
        # The export does not say who sent it: --as says it.
        path = harvest_zip(tmp_path, s, iid)
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files["commons_harvest.csv"] = files["commons_harvest.csv"].replace(b",mamadou,", b",,")
    path = central_zip(tmp_path / "commons_harvest.zip", files)
    env = dict(os.environ, COMMONS_DATABASE_URL=database_url, COMMONS_ATTACHMENTS_DIR=str(kept))
    try:
        out = subprocess.run([sys.executable, "-m", "commons_map.cli", "ingest", "submissions", str(path),
                              "--as", "lea"], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        with engine.connect() as c:
            rows = c.execute(text("SELECT h.crop, m.username FROM harvests h JOIN members m ON m.id = h.recorded_by_id"
                                  " WHERE h.source_ref LIKE :p ORDER BY h.source_ref"), {"p": iid + "%"}).all()
            names = c.scalars(text("SELECT a.name FROM field_submission_attachments a JOIN field_submissions s"
                                   " ON s.id = a.submission_id WHERE s.instance_id = :i"), {"i": iid}).all()
        assert [tuple(r) for r in rows] == [("tomato", "lea"), ("courgette", "lea")]
        assert names == ["1764403921123.jpg"]
        digest = hashlib.sha256(JPEG).hexdigest()
        assert (kept / digest[:2] / digest).read_bytes() == JPEG
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM harvests WHERE source_ref LIKE :p"), {"p": iid + "%"})
            c.execute(text("DELETE FROM field_submissions WHERE instance_id = :i"), {"i": iid})


def test_the_pages_show_a_work_logs_photo_to_its_worker_and_its_approvers(orclient, db, people, tmp_path,
                                                                        attachments):
    from tests.api.test_pages import sign_in

    land = next(c for c in db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%"))
                                      .order_by(Commons.id)) if people.steward.id in c.steward_ids)
    iid, photo = new_iid(), "1764403000777.jpg"
    import_export(db, path=_worklog_zip(tmp_path, db, iid, land.id, photo), cooperative=people.coop,
                  attachments_dir=attachments)
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == iid)).one()
    url = f"/api/v1/attachments/work_log/{log.id}/{photo}"
    sign_in(orclient, "mamadou")  # the steward who approves it
    approvals = orclient.get("/app/approvals")
    assert f'id="w{log.id}"' in approvals.text and f'<img src="{url}"' in approvals.text
    assert "Photo envoyée du terrain" in approvals.text
    assert orclient.get(url).content == JPEG  # the page's session cookie is enough
    orclient.cookies.clear()
    sign_in(orclient, "lucas")  # the worker
    assert f'<img src="{url}"' in orclient.get("/app/work").text
    orclient.cookies.clear()
    sign_in(orclient, "lea")  # neither did nor approves it
    assert url not in orclient.get("/app/approvals").text
    assert orclient.get(url).status_code == 404


@pytest.mark.parametrize(("who", "sees"), [("lea", True), ("camille", True), ("diois", False), (None, False)])
def test_the_commons_page_shows_the_photos_of_its_harvests_to_the_cooperatives_members(
        orclient, db, people, tmp_path, attachments, who, sees):
    from tests.api.test_pages import sign_in

    iid, photo = new_iid(), "1764403555111.jpg"
    import_export(db, path=harvest_zip(tmp_path, db, iid, photo=photo), cooperative=people.coop,
                  attachments_dir=attachments)
    first = db.scalars(select(Harvest).where(Harvest.source_ref == f"{iid}/crops[1]")).one()
    url = f"/api/v1/attachments/harvest/{first.id}/{photo}"
    if who is not None:
        sign_in(orclient, who)
    page = orclient.get(f"/app/commons/{first.commons_id}")
    if sees:
        assert page.status_code == 200 and 'id="field-photos"' in page.text
        # one photo, shown once though its form made two harvests (two crops), under the first
        assert page.text.count(f'<img src="{url}"') == 1 and page.text.count(photo) == 2  # the link and the img
        assert "Photos du terrain" in page.text or "Photos from the field" in page.text
        assert orclient.get(url).content == JPEG
    else:  # another cooperative's coordinator, or a visitor: the bed's page, if public, shows no photo
        assert url not in page.text and 'id="field-photos"' not in page.text
        assert orclient.get(url).status_code == 404
