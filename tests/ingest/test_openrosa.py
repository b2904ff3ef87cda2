"""OpenRosa as ODK Collect speaks it: form list, forms, HEAD/POST submission, idempotency, edits."""

from __future__ import annotations

import base64
import hashlib
from datetime import date

import defusedxml.ElementTree as ET
import pytest
from sqlalchemy import func, select

from commons_map import messages
from commons_map.fieldforms.models import Submission
from commons_map.fieldforms.service import issue_token, revoke_token
from commons_map.register.models import Commons
from commons_map.worklog.models import WorkLog
from tests.ingest.conftest import commons_id, files, new_iid, xml

NS = {"x": "http://openrosa.org/xforms/xformsList", "r": "http://openrosa.org/http/response"}


@pytest.fixture
def token(db, people):
    """A field token for the plain member (lucas)."""
    secret, _ = issue_token(db, actor=people.member, member=people.member, label="Android de Lucas")
    return secret


@pytest.fixture
def activity(db):
    from commons_map.worklog.service import list_activities

    return list_activities(db)[0].code


def message(resp) -> str:
    return ET.fromstring(resp.content).find("r:message", NS).text


def assert_openrosa_headers(resp) -> None:
    assert resp.headers["X-OpenRosa-Version"] == "1.0"
    assert resp.headers["Date"].endswith("GMT")


def worklog_xml(db, activity, iid, hours="2.5", **kw):
    return xml("worklog.xml", commons=f"c{commons_id(db, 'demo:garden-0')}", hours=hours, activity=activity,
               iid=iid, **kw)


def test_form_list_with_token(orclient, token):
    resp = orclient.get(f"/openrosa/key/{token}/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert resp.status_code == 200, resp.text
    assert_openrosa_headers(resp)
    assert resp.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(resp.content)
    assert root.tag == "{http://openrosa.org/xforms/xformsList}xforms"
    forms = {x.find("x:formID", NS).text: x for x in root.findall("x:xform", NS)}
    assert set(forms) == {"commons_worklog", "commons_harvest", "commons_soil", "commons_inventory"}
    wl = forms["commons_worklog"]
    url = wl.find("x:downloadUrl", NS).text
    assert url.endswith(f"/openrosa/key/{token}/forms/commons_worklog.xml")
    # Its choice lists are media files (CSV): the manifest lists them.
    assert wl.find("x:manifestUrl", NS).text.endswith(f"/openrosa/key/{token}/forms/commons_worklog/manifest")
    form = orclient.get(url.split("testserver", 1)[1])
    assert form.status_code == 200
    assert_openrosa_headers(form)
    assert wl.find("x:hash", NS).text == "md5:" + hashlib.md5(form.content).hexdigest()
    only = orclient.get(f"/openrosa/key/{token}/formList?formID=commons_soil")
    assert [x.text for x in ET.fromstring(only.content).iter(f"{{{NS['x']}}}formID")] == ["commons_soil"]


def test_form_list_needs_credentials_and_accepts_basic(orclient, people):
    from commons_map.demo.load import DEMO_PASSWORD

    resp = orclient.get("/openrosa/formList")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('Basic realm="commons-map"')
    assert_openrosa_headers(resp)
    assert "Sign in" in message(resp)
    bad = base64.b64encode(b"lucas:wrong-password").decode()
    assert orclient.get("/openrosa/formList", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    good = base64.b64encode(f"lucas:{DEMO_PASSWORD}".encode()).decode()
    resp = orclient.get("/openrosa/formList", headers={"Authorization": f"Basic {good}"})
    assert resp.status_code == 200
    assert "/openrosa/forms/commons_worklog.xml" in resp.text and "/key/" not in resp.text


def test_revoked_or_unknown_token_is_refused(orclient, db, people, token):
    from commons_map.fieldforms.models import FieldToken

    assert orclient.get("/openrosa/key/not-a-token/formList").status_code == 401
    row = db.scalars(select(FieldToken).where(FieldToken.member_id == people.member.id)).one()
    assert row.token_hash != token and len(row.token_hash) == 64  # stored hashed
    revoke_token(db, actor=people.member, token_id=row.id)
    assert orclient.get(f"/openrosa/key/{token}/formList").status_code == 401
    assert orclient.head(f"/openrosa/key/{token}/submission").status_code == 401


NS_MANIFEST = {"m": "http://openrosa.org/xforms/xformsManifest"}


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_choice_lists_are_csv_media_a_new_garden_changes_the_csv_not_the_form(orclient, db, people, token):
    """Issue 18, item 5: the lists are media files; the form's bytes, hash and version stay."""
    from commons_map.register.schemas import CommonsIn
    from commons_map.register.service import create_commons

    def worklog_form():
        resp = orclient.get(f"/openrosa/key/{token}/formList?formID=commons_worklog")
        lst = ET.fromstring(resp.content)
        manifest_url = lst.find("x:xform/x:manifestUrl", NS).text
        assert manifest_url.endswith(f"/openrosa/key/{token}/forms/commons_worklog/manifest")
        manifest = orclient.get(manifest_url.split("testserver", 1)[-1])
        assert manifest.status_code == 200
        assert_openrosa_headers(manifest)
        root = ET.fromstring(manifest.content)
        assert root.tag == "{http://openrosa.org/xforms/xformsManifest}manifest"
        media = {m.find("m:filename", NS_MANIFEST).text: (m.find("m:hash", NS_MANIFEST).text,
                                                          m.find("m:downloadUrl", NS_MANIFEST).text)
                 for m in root.findall("m:mediaFile", NS_MANIFEST)}
        xml = orclient.get(f"/openrosa/key/{token}/forms/commons_worklog.xml").content
        return lst.find("x:xform/x:hash", NS).text, lst.find("x:xform/x:version", NS).text, xml, media

    hash1, version1, form1, media1 = worklog_form()
    assert set(media1) == {"commons.csv", "activities.csv"}
    assert b'src="jr://file-csv/commons.csv"' in form1 and b"<value>c" not in form1
    assert hash1 == "md5:" + hashlib.md5(form1).hexdigest()
    url = media1["commons.csv"][1].split("testserver", 1)[-1]
    got = orclient.get(url)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert media1["commons.csv"][0] == "md5:" + hashlib.md5(got.content).hexdigest()
    rows = _csv_rows(got.content)
    garden = commons_id(db, "demo:garden-0")
    name = db.scalar(select(Commons.name).where(Commons.id == garden))
    assert any(r["name"] == f"c{garden}" and name in r["label"] and name in r["label::English (en)"] for r in rows)
    # Private homes of others are not offered to a plain member.
    home = commons_id(db, "demo:home-0")
    assert f"c{home}" not in {r["name"] for r in rows}

    new = create_commons(db, actor=people.coordinator, data=CommonsIn(
        kind="garden", name="Jardin de la Gare", visibility="members",
        geometry={"type": "Polygon", "coordinates": [[[5.190, 44.690], [5.1905, 44.690], [5.1905, 44.6903],
                                                      [5.190, 44.6903], [5.190, 44.690]]]}))
    hash2, version2, form2, media2 = worklog_form()
    assert (hash2, version2, form2) == (hash1, version1, form1)  # the form: not downloaded again
    assert media2["commons.csv"][0] != media1["commons.csv"][0]  # one small file is
    assert media2["activities.csv"] == media1["activities.csv"]
    rows = _csv_rows(orclient.get(url).content)
    assert any(r["name"] == f"c{new.id}" and r["label::Français (fr)"].startswith("Jardin de la Gare") for r in rows)


def test_media_needs_credentials_and_names_unknown_files(orclient, people, token):
    assert orclient.get("/openrosa/forms/commons_harvest/manifest").status_code == 401
    assert orclient.get("/openrosa/forms/commons_harvest/media/crops.csv").status_code == 401
    assert orclient.get("/openrosa/key/not-a-token/forms/commons_harvest/media/crops.csv").status_code == 401
    resp = orclient.get(f"/openrosa/key/{token}/forms/commons_harvest/media/secret.csv")
    assert resp.status_code == 404 and "crops.csv" in message(resp)
    assert orclient.get(f"/openrosa/key/{token}/forms/nope/manifest").status_code == 404
    crops = _csv_rows(orclient.get(f"/openrosa/key/{token}/forms/commons_harvest/media/crops.csv").content)
    assert {"name": "tomato", "label": "Tomate / Tomato", "label::Français (fr)": "Tomate",
            "label::English (en)": "Tomato"} in crops
    units = _csv_rows(orclient.get(f"/openrosa/key/{token}/forms/commons_soil/media/units.csv").content)
    assert any(u["indicator"] == "bulk_density" and u["label"] == "g/cm3" for u in units)


def test_head_submission_is_204(orclient, token):
    resp = orclient.head(f"/openrosa/key/{token}/submission")
    assert resp.status_code == 204
    assert_openrosa_headers(resp)
    assert int(resp.headers["X-OpenRosa-Accept-Content-Length"]) > 1_000_000


def test_worklog_submission_becomes_a_submitted_log(orclient, db, people, token, activity):
    iid = new_iid()
    body = worklog_xml(db, activity, iid)
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert resp.status_code == 201, resp.text
    assert_openrosa_headers(resp)
    assert ET.fromstring(resp.content).tag == "{http://openrosa.org/http/response}OpenRosaResponse"
    assert "approval" in message(resp)
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.raw == body and sub.sha256 == hashlib.sha256(body).hexdigest()
    assert sub.status == "processed" and sub.member_id == people.member.id
    log = db.get(WorkLog, sub.records["ids"][0])
    assert log.source_ref == iid and log.state == "submitted" and log.minutes == 150
    assert log.member_id == people.member.id
    # Nothing is credited before a steward approves.
    from commons_map.ledger.models import Transfer

    assert db.scalar(select(func.count()).select_from(Transfer).where(Transfer.work_log_id == log.id)) == 0


def test_resend_same_bytes_is_201_and_creates_nothing(orclient, db, token, activity):
    iid = new_iid()
    body = worklog_xml(db, activity, iid)
    first = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert first.status_code == 201
    again = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert again.status_code == 201 and "Already received" in message(again)
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 1
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 1


def test_same_instance_other_bytes_is_409(orclient, db, token, activity):
    iid = new_iid()
    assert orclient.post(f"/openrosa/key/{token}/submission",
                         **files(worklog_xml(db, activity, iid))).status_code == 201
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(worklog_xml(db, activity, iid, hours="3")))
    assert resp.status_code == 409
    assert_openrosa_headers(resp)
    assert "other content" in message(resp)
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == iid)).one()
    assert log.minutes == 150


def test_deprecated_id_edit_replaces_the_record(orclient, db, token, activity):
    old = new_iid()
    orclient.post(f"/openrosa/key/{token}/submission", **files(worklog_xml(db, activity, old)))
    new = new_iid()
    edit = worklog_xml(db, activity, new, hours="4", deprecated=f"<deprecatedID>{old}</deprecatedID>")
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(edit))
    assert resp.status_code == 201, resp.text
    old_sub = db.scalars(select(Submission).where(Submission.instance_id == old)).one()
    new_sub = db.scalars(select(Submission).where(Submission.instance_id == new)).one()
    assert old_sub.status == "superseded" and old_sub.superseded_by_id == new_sub.id
    assert new_sub.status == "processed" and new_sub.records["ids"] == old_sub.records["ids"]
    log = db.get(WorkLog, new_sub.records["ids"][0])
    assert log.minutes == 240
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref.in_([old, new]))) == 1
    # Editing the replaced version again: 409. An unknown deprecatedID: 404.
    again = worklog_xml(db, activity, new_iid(), hours="5", deprecated=f"<deprecatedID>{old}</deprecatedID>")
    conflict = orclient.post(f"/openrosa/key/{token}/submission", **files(again))
    assert conflict.status_code == 409
    said = {loc: messages.render("fieldforms.deprecated_replaced", {"deprecated_id": old}, loc) for loc in ("fr", "en")}
    assert message(conflict) == f"deprecatedID: {said['fr']} / {said['en']}"  # the English names its field
    assert said["fr"].startswith("Cette version a déjà été remplacée") and "already replaced" in said["en"]
    ghost = worklog_xml(db, activity, new_iid(), deprecated="<deprecatedID>uuid:nobody</deprecatedID>")
    assert orclient.post(f"/openrosa/key/{token}/submission", **files(ghost)).status_code == 404
    assert db.get(WorkLog, log.id).minutes == 240


def test_split_upload_with_is_incomplete(orclient, db, token, activity, attachments):
    iid = new_iid()
    body = worklog_xml(db, activity, iid, photo="planche.jpg")
    body = body.replace(b"<notes>", b"<notes>voir aussi audio.m4a ")
    jpg, m4a = b"\xff\xd8\xff\xe0" + b"1" * 5000, b"\x00\x00\x00 ftypM4A " + b"2" * 3000
    first = orclient.post(f"/openrosa/key/{token}/submission",
                          **files(body, ("planche.jpg", jpg, "image/jpeg"), incomplete=True))
    assert first.status_code == 201
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.status == "incomplete" and not sub.records
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == iid)) == 0
    last = orclient.post(f"/openrosa/key/{token}/submission", **files(body, ("planche.jpg", jpg, "image/jpeg")))
    assert last.status_code == 201
    db.refresh(sub)
    assert sub.status == "processed"
    assert [a.name for a in sub.attachments] == ["planche.jpg"]
    stored = attachments / sub.attachments[0].sha256[:2] / sub.attachments[0].sha256
    assert stored.read_bytes() == jpg
    del m4a


def test_attachments_not_referenced_are_not_kept(orclient, db, token, activity):
    iid = new_iid()
    body = worklog_xml(db, activity, iid, photo="a.jpg")
    resp = orclient.post(f"/openrosa/key/{token}/submission",
                         **files(body, ("a.jpg", b"\xff\xd8a", "image/jpeg"), ("b.jpg", b"\xff\xd8b", "image/jpeg")))
    assert resp.status_code == 201
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert [a.name for a in sub.attachments] == ["a.jpg"]


@pytest.mark.parametrize("name", ["../../etc/cron.d/evil.jpg", "..\\..\\evil.jpg", "a/b.jpg", "..", "ev\x01il.jpg"])
def test_attachment_names_with_paths_are_refused(orclient, db, token, activity, attachments, name):
    iid = new_iid()
    body = worklog_xml(db, activity, iid, photo="evil.jpg")
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body, (name, b"\xff\xd8x", "image/jpeg")))
    # Starlette may already cut a path down to its last part; either way nothing escapes the store.
    if resp.status_code == 201:
        sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
        assert all("/" not in a.name and "\\" not in a.name and ".." not in a.name for a in sub.attachments)
    else:
        assert resp.status_code == 422 and "plain file name" in message(resp) or "control" in message(resp)
        assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
    assert all(p.is_file() and len(p.name) == 64 for p in attachments.rglob("*") if p.is_file())


def test_attachment_basename_check_directly():
    from commons_map.errors import ValidationFailed
    from ingest.openrosa import Incoming, check_file

    for bad in ("../x.jpg", "a/b.jpg", "a\\b.jpg", "..", "x\x00.jpg", ""):
        with pytest.raises(ValidationFailed):
            check_file(Incoming(bad, "image/jpeg", b"x"))
    with pytest.raises(ValidationFailed, match="not a photo"):
        check_file(Incoming("script.sh", "text/x-shellscript", b"#!/bin/sh"))
    check_file(Incoming("photo.jpg", "image/jpeg", b"\xff\xd8"))


def test_attachment_of_the_wrong_type_is_refused(orclient, db, token, activity):
    iid = new_iid()
    body = worklog_xml(db, activity, iid, photo="run.sh")
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body, ("run.sh", b"#!/bin/sh", "text/x-sh")))
    assert resp.status_code == 422 and "not a photo" in message(resp)
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0


def test_harvest_submission_records_each_crop(orclient, db, people, activity):
    from commons_map.soil.models import Harvest

    secret, _ = issue_token(db, actor=people.steward, member=people.steward)
    iid = new_iid()
    body = xml("harvest.xml", commons=f"c{commons_id(db, 'demo:garden-0')}", iid=iid)
    resp = orclient.post(f"/openrosa/key/{secret}/submission", **files(body))
    assert resp.status_code == 201, resp.text
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.status == "processed", sub.problem
    rows = db.scalars(select(Harvest).where(Harvest.id.in_(sub.records["ids"])).order_by(Harvest.id)).all()
    assert [(h.crop, h.weight_kg, h.source_ref) for h in rows] == [
        ("tomato", 3.5, f"{iid}/crops[1]"), ("physalis", 0.4, f"{iid}/crops[2]")]
    orclient.post(f"/openrosa/key/{secret}/submission", **files(body))
    assert db.scalar(select(func.count()).select_from(Harvest).where(Harvest.source_ref.like(iid + "%"))) == 2


def test_soil_submission_records_a_sample(orclient, db, people):
    from commons_map.soil.models import Sample

    secret, _ = issue_token(db, actor=people.steward, member=people.steward)
    iid = new_iid()
    body = xml("soil.xml", commons=f"c{commons_id(db, 'demo:garden-0')}", iid=iid, point="", indicator="bulk_density",
               value="1.32", unit="bulk_density__g_cm3")
    resp = orclient.post(f"/openrosa/key/{secret}/submission", **files(body))
    assert resp.status_code == 201
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.status == "processed", sub.problem
    sample = db.get(Sample, sub.records["ids"][0])
    assert sample.source_ref == iid and len(sample.measurements) == 1
    m = sample.measurements[0]
    assert (m.indicator_code, m.value, m.unit) == ("bulk_density", 1.32, "g/cm3")


def test_inventory_check_updates_the_state(orclient, db, people):
    from commons_map.register.models import CommonsHistory

    tool = db.scalars(select(Commons).where(Commons.external_id.like("demo:tool-%"), Commons.state == "active")
                      .order_by(Commons.id)).first()
    secret, _ = issue_token(db, actor=people.coordinator, member=people.coordinator)
    iid = new_iid()
    body = xml("inventory.xml", commons=f"c{tool.id}", state="needs_repair", iid=iid)
    resp = orclient.post(f"/openrosa/key/{secret}/submission",
                         **files(body, ("manche.jpg", b"\xff\xd8\xff" + b"m" * 100, "image/jpeg")))
    assert resp.status_code == 201
    db.refresh(tool)
    assert tool.state == "needs_repair"
    last = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == tool.id)
                      .order_by(CommonsHistory.id.desc())).first()
    assert last.changes["state"] == ["active", "needs_repair"] and last.member_id == people.coordinator.id


def test_refused_record_leaves_no_trace_but_a_log_line(orclient, db, people, token, attachments, caplog):
    """A plain member may not change a tool's state: 422 with the reason, nothing kept but a log line."""
    tool = commons_id(db, "demo:tool-0")
    iid = new_iid()
    body = xml("inventory.xml", commons=f"c{tool}", state="lost", iid=iid)  # its photo: manche.jpg
    with caplog.at_level("WARNING", logger="commons_map.openrosa"):
        resp = orclient.post(f"/openrosa/key/{token}/submission",
                             **files(body, ("manche.jpg", b"\xff\xd8\xff" + b"c" * 500, "image/jpeg")))
    assert resp.status_code == 422, resp.text
    assert_openrosa_headers(resp)
    assert ET.fromstring(resp.content).find("r:message", NS).get("nature") == "error"
    # What Collect shows: French first, then the service's English words.
    assert message(resp) == ("Refusé : Seul·es les référent·es de ce commun ou la coordination peuvent le modifier."
                             " / Refused: Only this commons' stewards and the coordinators may change it.")
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
    assert db.get(Commons, tool).state != "lost"
    assert [p for p in attachments.rglob("*") if p.is_file()] == []  # the photo never reached the disk
    lines = [r.getMessage() for r in caplog.records if r.name == "commons_map.openrosa"]
    assert any(iid in line and "commons_inventory" in line and "stewards" in line for line in lines), lines


def test_refused_split_upload_leaves_no_part_behind(orclient, db, token, activity, attachments):
    """The first part is kept while the rest is awaited; when the whole is refused, the part goes too."""
    iid = new_iid()
    body = worklog_xml(db, activity, iid, hours="30", photo="planche.jpg")
    jpg = b"\xff\xd8\xff\xe0" + b"1" * 2000
    first = orclient.post(f"/openrosa/key/{token}/submission",
                          **files(body, ("planche.jpg", jpg, "image/jpeg"), incomplete=True))
    assert first.status_code == 201
    assert db.scalars(select(Submission).where(Submission.instance_id == iid)).one().status == "incomplete"
    last = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert last.status_code == 422 and "16 hours" in message(last)
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == iid)) == 0
    from commons_map.fieldforms.models import Attachment

    assert db.scalar(select(func.count()).select_from(Attachment).where(Attachment.name == "planche.jpg")
                     .join(Submission).where(Submission.instance_id == iid)) == 0


def test_refused_submission_is_accepted_when_resent_after_a_fix(orclient, db, people, token):
    """The phone keeps a refused form; once a coordinator fixes the cause, the same bytes go through."""
    from commons_map.register.schemas import CommonsPatch
    from commons_map.register.service import update_commons

    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-2")).one()
    iid = new_iid()
    body = xml("inventory.xml", commons=f"c{tool.id}", state="out_of_service", iid=iid)
    assert orclient.post(f"/openrosa/key/{token}/submission", **files(body)).status_code == 422
    # The fix: lucas becomes a steward of the tool. Then the phone sends the same form again.
    update_commons(db, actor=people.coordinator, commons_id=tool.id,
                   patch=CommonsPatch(steward_ids=sorted(tool.steward_ids | {people.member.id})))
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert resp.status_code == 201, resp.text
    sub = db.scalars(select(Submission).where(Submission.instance_id == iid)).one()
    assert sub.status == "processed" and sub.raw == body
    db.refresh(tool)
    assert tool.state == "out_of_service"


def test_refused_edit_leaves_the_edited_version_current(orclient, db, token, activity):
    old = new_iid()
    assert orclient.post(f"/openrosa/key/{token}/submission",
                         **files(worklog_xml(db, activity, old, hours="2"))).status_code == 201
    bad = worklog_xml(db, activity, new_iid(), hours="30", deprecated=f"<deprecatedID>{old}</deprecatedID>")
    assert orclient.post(f"/openrosa/key/{token}/submission", **files(bad)).status_code == 422
    old_sub = db.scalars(select(Submission).where(Submission.instance_id == old)).one()
    assert old_sub.status == "processed" and old_sub.superseded_by_id is None
    assert db.get(WorkLog, old_sub.records["ids"][0]).minutes == 120
    # The corrected edit then replaces it.
    good = worklog_xml(db, activity, new_iid(), hours="3", deprecated=f"<deprecatedID>{old}</deprecatedID>")
    assert orclient.post(f"/openrosa/key/{token}/submission", **files(good)).status_code == 201
    assert db.get(WorkLog, old_sub.records["ids"][0]).minutes == 180


def test_harvest_edit_replaces_its_harvests(orclient, db, people):
    from commons_map.soil.models import Harvest

    secret, _ = issue_token(db, actor=people.steward, member=people.steward)
    garden = f"c{commons_id(db, 'demo:garden-0')}"
    old = new_iid()
    assert orclient.post(f"/openrosa/key/{secret}/submission",
                         **files(xml("harvest.xml", commons=garden, iid=old))).status_code == 201
    old_ids = db.scalars(select(Submission).where(Submission.instance_id == old)).one().records["ids"]
    new = new_iid()
    edit = xml("harvest.xml", commons=garden, iid=new, deprecated=f"<orx:deprecatedID>{old}</orx:deprecatedID>")
    edit = edit.replace(b"<weight_kg>3.5</weight_kg>", b"<weight_kg>5.25</weight_kg>")
    resp = orclient.post(f"/openrosa/key/{secret}/submission", **files(edit))
    assert resp.status_code == 201, resp.text
    new_sub = db.scalars(select(Submission).where(Submission.instance_id == new)).one()
    assert new_sub.status == "processed"
    assert db.scalar(select(func.count()).select_from(Harvest).where(Harvest.id.in_(old_ids))) == 0
    rows = db.scalars(select(Harvest).where(Harvest.id.in_(new_sub.records["ids"])).order_by(Harvest.id)).all()
    assert [(h.crop, h.weight_kg, h.source_ref) for h in rows] == [
        ("tomato", 5.25, f"{new}/crops[1]"), ("physalis", 0.4, f"{new}/crops[2]")]
    assert db.scalar(select(func.count()).select_from(Harvest).where(
        Harvest.source_ref.like(old + "%") | Harvest.source_ref.like(new + "%"))) == 2


def test_soil_edit_replaces_the_sample_and_a_refused_edit_changes_nothing(orclient, db, people):
    from commons_map.soil.models import Measurement, Sample

    secret, _ = issue_token(db, actor=people.steward, member=people.steward)
    garden = f"c{commons_id(db, 'demo:garden-0')}"
    old = new_iid()

    def soil(iid, value, deprecated=""):
        return xml("soil.xml", commons=garden, iid=iid, point="", indicator="bulk_density", value=value,
                   unit="bulk_density__g_cm3", deprecated=deprecated)

    assert orclient.post(f"/openrosa/key/{secret}/submission", **files(soil(old, "1.32"))).status_code == 201
    old_id = db.scalars(select(Submission).where(Submission.instance_id == old)).one().records["ids"][0]
    # A bulk density of 9 g/cm3 is beyond any soil: the edit is refused and the sample stays.
    bad = soil(new_iid(), "9", f"<deprecatedID>{old}</deprecatedID>")
    resp = orclient.post(f"/openrosa/key/{secret}/submission", **files(bad))
    assert resp.status_code == 422 and "bulk_density" in message(resp)
    assert db.get(Sample, old_id) is not None
    new = new_iid()
    resp = orclient.post(f"/openrosa/key/{secret}/submission",
                         **files(soil(new, "1.28", f"<deprecatedID>{old}</deprecatedID>")))
    assert resp.status_code == 201, resp.text
    new_id = db.scalars(select(Submission).where(Submission.instance_id == new)).one().records["ids"][0]
    db.expire_all()
    assert db.get(Sample, old_id) is None
    assert db.scalar(select(func.count()).select_from(Measurement).where(Measurement.sample_id == old_id)) == 0
    sample = db.get(Sample, new_id)
    assert sample.source_ref == new and [m.value for m in sample.measurements] == [1.28]


def test_only_the_recorder_or_a_coordinator_replaces_soil_records(db, people):
    from commons_map.errors import NotFound, PermissionDenied
    from commons_map.soil.schemas import HarvestIn
    from commons_map.soil.service import record_harvest, replace_harvests

    garden = commons_id(db, "demo:garden-0")
    data = HarvestIn(commons_id=garden, crop="blette", harvested_on=date.today(), weight_kg=1.0)
    h = record_harvest(db, actor=people.steward, data=data)
    with pytest.raises(PermissionDenied, match="who recorded"):
        replace_harvests(db, actor=people.member, harvest_ids=[h.id], data=[data])
    with pytest.raises(NotFound):
        replace_harvests(db, actor=people.outsider, harvest_ids=[h.id], data=[data])
    [again] = replace_harvests(db, actor=people.coordinator, harvest_ids=[h.id], data=[data])
    assert again.id != h.id and again.recorded_by_id == people.coordinator.id


def test_unknown_form_and_missing_instance_id(orclient, token):
    body = b'<data id="not_a_form"><meta><instanceID>uuid:1</instanceID></meta></data>'
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert resp.status_code == 404 and "No form not_a_form" in message(resp)
    assert "Ce formulaire (not_a_form) n'est pas sur ce serveur" in message(resp)
    body = b'<data id="commons_worklog"><hours>1</hours></data>'
    resp = orclient.post(f"/openrosa/key/{token}/submission", **files(body))
    assert resp.status_code == 422 and "instanceID" in message(resp)
    resp = orclient.post(f"/openrosa/key/{token}/submission", files=[("other", ("x.jpg", b"x", "image/jpeg"))])
    assert resp.status_code == 422 and "xml_submission_file" in message(resp)


def test_geopoint_and_geoshape_parsing():
    from commons_map.errors import ValidationFailed
    from ingest.processors import geopoint_accuracy, parse_geopoint, parse_geoshape

    assert parse_geopoint("44.6975 5.195 212.3 4.8", field="p") == {"type": "Point", "coordinates": [5.195, 44.6975]}
    assert geopoint_accuracy("44.6975 5.195 212.3 4.8") == 4.8
    assert parse_geopoint("", field="p") is None
    with pytest.raises(ValidationFailed, match="out of range"):
        parse_geopoint("95 5 0 0", field="p")
    with pytest.raises(ValidationFailed):
        parse_geopoint("abc def", field="p")
    shape = parse_geoshape("44.1 5.1 0 0; 44.1 5.2 0 0;44.2 5.2 0 0;44.1 5.1 0 0;", field="s")
    assert shape["coordinates"][0] == [[5.1, 44.1], [5.2, 44.1], [5.2, 44.2], [5.1, 44.1]]
    assert parse_geoshape("44.1 5.1 0 0;44.1 5.2 0 0;44.2 5.2 0 0", field="s")["coordinates"][0][-1] == [5.1, 44.1]
    with pytest.raises(ValidationFailed, match="at least 3"):
        parse_geoshape("44.1 5.1 0 0;44.1 5.2 0 0", field="s")


def test_field_tokens_api(orclient, people, auth):
    resp = orclient.post("/api/v1/field-tokens", json={"label": "Téléphone"}, headers=auth(people.member))
    assert resp.status_code == 201
    body = resp.json()
    assert body["secret"] and body["server_url"].endswith(f"/openrosa/key/{body['secret']}")
    listed = orclient.get("/api/v1/field-tokens", headers=auth(people.member)).json()
    assert [t["id"] for t in listed] == [body["id"]] and listed[0]["secret"] is None
    # A plain member may not issue tokens for someone else; a coordinator may.
    assert orclient.post("/api/v1/field-tokens", json={"member": "lea"}, headers=auth(people.member)).status_code == 403
    assert orclient.post("/api/v1/field-tokens", json={"member": "lea"},
                         headers=auth(people.coordinator)).status_code == 201
    assert orclient.delete(f"/api/v1/field-tokens/{body['id']}", headers=auth(people.other_steward)).status_code == 404
    assert orclient.delete(f"/api/v1/field-tokens/{body['id']}", headers=auth(people.member)).status_code == 200
    assert orclient.get(f"/openrosa/key/{body['secret']}/formList").status_code == 401


def test_today_is_used(db):
    assert date.today().isoformat() in xml("worklog.xml").decode()

