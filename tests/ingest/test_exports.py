"""ODK Central and KoboToolbox exports: CSV (- or / groups, split geopoints), GeoJSON, repeats, dedupe."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commons_map.errors import ValidationFailed
from commons_map.fieldforms.models import Submission
from commons_map.fieldforms.service import issue_token
from commons_map.register.models import Commons
from commons_map.worklog.models import WorkLog
from ingest.exports import import_export, leaf_values
from ingest.xforms import FORMS
from tests.ingest.conftest import FIX, commons_id, files, new_iid, xml

EXPORTS = FIX / "exports"


def fill(tmp_path: Path, name: str, **subs: str) -> Path:
    text = (EXPORTS / name).read_text(encoding="utf-8")
    for k, v in {"DATE": date.today().isoformat(), **subs}.items():
        text = text.replace(f"@{k}@", v)
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


@pytest.fixture
def activity(db):
    from commons_map.worklog.service import list_activities

    return list_activities(db)[0].code


def test_central_csv_dedupes_with_openrosa(orclient, db, people, tmp_path, activity):
    garden = f"c{commons_id(db, 'demo:garden-0')}"
    ids = [new_iid() for _ in range(4)]
    # The third row already came in through ODK Collect.
    secret, _ = issue_token(db, actor=people.member, member=people.member)
    body = xml("worklog.xml", commons=garden, hours="2", activity=activity, iid=ids[2])
    assert orclient.post(f"/openrosa/key/{secret}/submission", **files(body)).status_code == 201
    path = fill(tmp_path, "central_commons_worklog.csv", COMMONS=garden, ACTIVITY=activity,
                **{f"IID{i + 1}": v for i, v in enumerate(ids)})
    # The fourth row claims 30 hours in a day: refused. All or nothing: nothing is written.
    refused = import_export(db, path=path, cooperative=people.coop)
    assert refused.form_id == "commons_worklog" and not refused.written
    assert refused.duplicates == 1 and len(refused.rejected) == 1
    assert refused.rejected[0].startswith(f"line 5: {ids[3]}: ") and "16 hours" in refused.rejected[0]
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id.in_(ids))) == 1
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref.in_(ids))) == 1
    # With skip_rejected the good rows are written; the refused one leaves no trace.
    result = import_export(db, path=path, cooperative=people.coop, skip_rejected=True)
    assert result.written and (result.rows, result.created, result.duplicates, result.processed) == (4, 2, 1, 2)
    assert len(result.rejected) == 1
    logs = {log.source_ref: log for log in db.scalars(select(WorkLog).where(WorkLog.source_ref.in_(ids)))}
    assert set(logs) == {ids[0], ids[1], ids[2]}
    assert logs[ids[0]].member_id == people.member.id and logs[ids[0]].minutes == 90
    assert logs[ids[1]].member_id == people.steward.id and logs[ids[1]].minutes == 180
    assert all(log.state == "submitted" for log in logs.values())
    loc = db.scalar(select(func.ST_AsText(WorkLog.location)).where(WorkLog.source_ref == ids[0]))
    assert loc == "POINT(5.195 44.6975)"
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id == ids[3])) == 0
    subs = db.scalars(select(Submission).where(Submission.instance_id.in_(ids[:2]))).all()
    assert {s.source for s in subs} == {"central_csv"} and {s.status for s in subs} == {"processed"}
    # Importing the same export again changes nothing (and still names the refused row).
    again = import_export(db, path=path, cooperative=people.coop, skip_rejected=True)
    assert (again.created, again.duplicates, len(again.rejected)) == (0, 3, 1)
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref.in_(ids))) == 3


def test_export_rows_without_id_or_member_are_refused(db, people, tmp_path, activity):
    garden = f"c{commons_id(db, 'demo:garden-0')}"
    ids = [new_iid() for _ in range(4)]
    path = fill(tmp_path, "central_commons_worklog.csv", COMMONS=garden, ACTIVITY=activity,
                **{f"IID{i + 1}": v for i, v in enumerate(ids)})
    lines = path.read_text(encoding="utf-8").splitlines()
    # Row 2: no instanceID at all; row 3: a submitter nobody knows; row 4 (30 hours) refused as before.
    lines[2] = lines[2].replace(ids[1], "")
    lines[3] = lines[3].replace(",lucas,", ",inconnu,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_export(db, path=path, cooperative=people.coop)
    assert not result.written and [r.split(":")[0] for r in result.rejected] == ["line 3", "line 4", "line 5"]
    assert "no instanceID" in result.rejected[0] and "matches the submitter" in result.rejected[1]
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id.in_(ids))) == 0
    # in a French terminal, the report is in French
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMONS_LOCALE", "fr")
        fr = import_export(db, path=path, cooperative=people.coop)
    assert [r.split(" :")[0] for r in fr.rejected] == ["ligne 3", "ligne 4", "ligne 5"]
    assert "pas d'instanceID" in fr.rejected[0] and "ne correspond" in fr.rejected[1]
    assert "ne peut dépasser 16 heures (reçu 30 h 00)" in fr.rejected[2]
    # A row already here is known by its instanceID alone: Central's later exports of the same
    # submission differ in review columns, and must not count as new or as conflicts.
    import_export(db, path=path, cooperative=people.coop, skip_rejected=True)
    lines[1] = lines[1].replace(",0,2026112701", ",1,2026112701")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = import_export(db, path=path, cooperative=people.coop, skip_rejected=True)
    assert (again.created, again.duplicates) == (0, 1)


def test_kobo_csv_with_slash_groups_and_decimal_commas(db, people, tmp_path, activity):
    garden = f"c{commons_id(db, 'demo:garden-1')}"
    iid, uuid2 = new_iid(), new_iid()[5:]
    path = fill(tmp_path, "kobo_commons_worklog.csv", COMMONS=garden, ACTIVITY=activity, IID1=iid,
                UUID1=iid[5:], UUID2=uuid2)
    result = import_export(db, path=path, cooperative=people.coop)
    assert (result.created, result.processed) == (2, 2), result.rejected
    log = db.scalars(select(WorkLog).where(WorkLog.source_ref == iid)).one()
    assert log.minutes == 150 and log.member_id == people.member.id
    assert db.scalars(select(Submission.source).where(Submission.instance_id == iid)).one() == "kobo_csv"
    # The row without meta/instanceID is keyed by its _uuid.
    assert db.scalar(select(func.count()).select_from(WorkLog).where(WorkLog.source_ref == f"uuid:{uuid2}")) == 1


def test_central_harvest_with_repeat_csv(db, people, tmp_path):
    from commons_map.soil.models import Harvest

    garden = f"c{commons_id(db, 'demo:garden-0')}"
    iid = new_iid()
    main = fill(tmp_path, "central_commons_harvest.csv", COMMONS=garden, IID1=iid)
    fill(tmp_path, "central_commons_harvest-crops.csv", IID1=iid)
    result = import_export(db, path=main, cooperative=people.coop)
    assert result.processed == 1, result.rejected
    crops = db.scalars(select(Harvest).where(Harvest.source_ref.like(iid + "%")).order_by(Harvest.source_ref)).all()
    assert [(h.crop, h.weight_kg) for h in crops] == [("courgette", 4.2), ("pattypan", 1.1)]


def test_kobo_geojson_inventory(db, people, tmp_path):
    tool = db.scalars(select(Commons).where(Commons.external_id == "demo:tool-1")).one()
    iid = new_iid()
    path = fill(tmp_path, "kobo_commons_inventory.geojson", COMMONS=f"c{tool.id}", IID1=iid, UUID1=iid[5:])
    result = import_export(db, path=path, cooperative=people.coop)
    assert result.processed == 1, result.rejected
    db.refresh(tool)
    assert tool.state == "needs_repair"
    assert db.scalars(select(Submission.source).where(Submission.instance_id == iid)).one() == "geojson"


def test_dry_run_and_unknown_form(db, people, tmp_path, activity):
    garden = f"c{commons_id(db, 'demo:garden-0')}"
    ids = [new_iid() for _ in range(4)]
    path = fill(tmp_path, "central_commons_worklog.csv", COMMONS=garden, ACTIVITY=activity,
                **{f"IID{i + 1}": v for i, v in enumerate(ids)})
    result = import_export(db, path=path, cooperative=people.coop, dry_run=True)
    assert result.created == 3 and len(result.rejected) == 1 and not result.written
    assert db.scalar(select(func.count()).select_from(Submission).where(Submission.instance_id.in_(ids))) == 0
    other = tmp_path / "export.csv"
    other.write_text(path.read_text())
    with pytest.raises(ValidationFailed, match="Cannot tell the form from the file name export.csv"):
        import_export(db, path=other, cooperative=people.coop)
    with pytest.raises(ValidationFailed, match="No form nope"):
        import_export(db, path=other, cooperative=people.coop, form_id="nope")


def test_leaf_values_join_geopoint_parts():
    spec = FORMS["commons_worklog"]
    v = leaf_values({"grp-location-Latitude": "44.1", "grp-location-Longitude": "5.2", "grp-location-Altitude": "",
                     "grp-location-Accuracy": "3", "grp-hours": "1"}, spec)
    assert v == {"location": "44.1 5.2 0 3", "hours": "1"}
    v = leaf_values({"g/location": "", "_location_latitude": "44.1", "_location_longitude": "5.2",
                     "_location_altitude": "100", "_location_precision": "5"}, spec)
    assert v["location"] == "44.1 5.2 100 5"


def test_the_member_an_export_import_runs_as_is_told_how_it_ended(db, people, tmp_path, activity):
    from commons_map.notify.models import Notification
    from commons_map.notify.service import text_of

    def told() -> list[Notification]:
        return list(db.scalars(select(Notification).where(Notification.member_id == people.coordinator.id,
                                                          Notification.dedupe.like("job:%")).order_by(Notification.id)))

    garden = f"c{commons_id(db, 'demo:garden-0')}"
    ids = [new_iid() for _ in range(4)]
    path = fill(tmp_path, "central_commons_worklog.csv", COMMONS=garden, ACTIVITY=activity,
                **{f"IID{i + 1}": v for i, v in enumerate(ids)})
    before = len(told())
    import_export(db, path=path, cooperative=people.coop, member=people.coordinator, dry_run=True)
    assert len(told()) == before  # a dry run tells nobody
    import_export(db, path=path, cooperative=people.coop, member=people.coordinator)  # one row of 30 h
    [refused] = told()[before:]
    assert refused.code == "notify.import_rejected" and refused.params["rejected"] == 1
    import_export(db, path=path, cooperative=people.coop, member=people.coordinator, skip_rejected=True)
    done = told()[before + 1]
    assert done.code == "notify.import_finished"
    assert text_of(done, "en").startswith("The import of central_commons_worklog.csv is done: 3 created")
