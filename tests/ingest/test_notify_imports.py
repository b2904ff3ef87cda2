"""An import tells the coordinator who ran it how it ended (finished, rows rejected, failed), through
the service, the upload API and the command line; a dry run tells nobody."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select, text

from commons_map.errors import ValidationFailed
from commons_map.notify.models import Notification
from commons_map.notify.service import text_of
from ingest.geodata import ImportOptions, import_commons
from tests.ingest.conftest import FIX
from tests.ingest.test_api_and_cli import MAP, _cli, upload

PARCEL_MAP = {"name": "nom", "kind": "type", "external_id": "uuid"}


def _jobs(db, member) -> list[Notification]:
    return list(db.scalars(select(Notification).where(Notification.member_id == member.id,
                                                      Notification.dedupe.like("job:%")).order_by(Notification.id)))


def test_a_finished_import_tells_its_counts_in_both_languages(db, people):
    before = len(_jobs(db, people.coordinator))
    dry = import_commons(db, actor=people.coordinator, path=FIX / "parcelles.gpkg",
                         options=ImportOptions(mapping=PARCEL_MAP, dry_run=True, id_prefix="nj:"))
    assert dry.counts["create"] == 5 and len(_jobs(db, people.coordinator)) == before  # a dry run: nothing
    import_commons(db, actor=people.coordinator, path=FIX / "parcelles.gpkg",
                   options=ImportOptions(mapping=PARCEL_MAP, id_prefix="nj:"))
    [n] = _jobs(db, people.coordinator)[before:]
    assert (n.kind, n.code, n.link) == ("job_finished", "notify.import_finished", "/app/commons")
    assert text_of(n, "fr") == ("L'import de parcelles.gpkg est terminé : 5 créés, 0 mis à jour, 0 inchangés, "
                                "0 refusés.")
    assert text_of(n, "en") == ("The import of parcelles.gpkg is done: 5 created, 0 updated, 0 unchanged, "
                                "0 rejected.")
    import_commons(db, actor=people.coordinator, path=FIX / "parcelles.gpkg",
                   options=ImportOptions(mapping=PARCEL_MAP, id_prefix="nj:"))
    again = _jobs(db, people.coordinator)[before:]
    assert len(again) == 2 and "0 created, 0 updated, 5 unchanged" in text_of(again[1], "en")  # each run is told


def test_rejected_rows_tell_that_nothing_was_written(db, people):
    before = len(_jobs(db, people.coordinator))
    report = import_commons(db, actor=people.coordinator, path=FIX / "invalides.geojson",
                            options=ImportOptions(mapping={"external_id": "uuid", "name": "nom"}, kind="land"))
    assert not report.written
    [n] = _jobs(db, people.coordinator)[before:]
    assert (n.kind, n.code) == ("job_failed", "notify.import_rejected")
    assert text_of(n, "fr") == ("L'import de invalides.geojson n'a rien écrit : 3 lignes sont refusées "
                                "(corrigez-les, ou passez-les).")
    assert text_of(n, "en").startswith("The import of invalides.geojson wrote nothing: 3 rows are rejected")


def test_a_failed_import_tells_why_in_a_transaction_of_its_own(db, people, engine):
    """The import's transaction rolls back; the notice of its failure is committed apart and stays."""
    with engine.connect() as c:
        last = c.scalar(text("SELECT coalesce(max(id), 0) FROM notifications"))
    with pytest.raises(ValidationFailed):
        import_commons(db, actor=people.coordinator, path=FIX / "sans_crs_shp.zip",
                       options=ImportOptions(mapping=PARCEL_MAP))
    with engine.begin() as c:
        ids = list(c.scalars(text("SELECT id FROM notifications WHERE member_id = :m AND code = 'notify.import_failed'"
                                  " AND params->>'file' = 'sans_crs_shp.zip' AND id > :last ORDER BY id"),
                             {"m": people.coordinator.id, "last": last}))
    try:
        assert len(ids) == 1
        n = db.get(Notification, ids[0])
        assert n is not None and n.kind == "job_failed"
        assert n.params["reason"]["code"] == "ingest.crs_unknown_in_file"
        assert text_of(n, "fr").startswith("L'import de sans_crs_shp.zip a échoué : Le fichier ")
        assert text_of(n, "en") == (
            "The import of sans_crs_shp.zip failed: The file does not say which coordinate reference system it uses; "
            "give it (e.g. --crs EPSG:2154 for Lambert-93, EPSG:4326 for GPS longitude/latitude).")
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM notifications WHERE id = ANY(:ids)"), {"ids": ids})


def test_refused_or_anonymous_imports_tell_nobody(db, people):
    from commons_map.errors import PermissionDenied

    before = len(_jobs(db, people.member))
    with pytest.raises(PermissionDenied):
        import_commons(db, actor=people.member, path=FIX / "parcelles.gpkg", options=ImportOptions(mapping=PARCEL_MAP))
    assert len(_jobs(db, people.member)) == before
    import_commons(db, actor=None, system=True, cooperative=people.coop, path=FIX / "parcelles.gpkg",
                   options=ImportOptions(mapping=PARCEL_MAP, id_prefix="sys:"))
    assert db.scalar(select(Notification.id).where(Notification.dedupe.like("job:%"),
                                                   Notification.params["file"].astext == "parcelles.gpkg",
                                                   Notification.member_id != people.coordinator.id)) is None


def test_the_upload_api_tells_the_coordinator(orclient, db, people, auth):
    before = len(_jobs(db, people.coordinator))
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP, id_prefix="api-nj:")
    assert resp.status_code == 201, resp.text
    resp = upload(orclient, auth(people.coordinator), "invalides.geojson", name="nom", external_id="uuid", kind="land")
    assert resp.status_code == 422
    told = _jobs(db, people.coordinator)[before:]
    assert [n.code for n in told] == ["notify.import_finished", "notify.import_rejected"]
    inbox = orclient.get("/api/v1/notifications", headers=auth(people.coordinator) | {"Accept-Language": "en"})
    assert inbox.status_code == 200
    texts = [i["text"] for i in inbox.json()["items"]]
    assert "The import of parcelles.gpkg is done: 5 created, 0 updated, 0 unchanged, 0 rejected." in texts


def test_the_command_line_tells_the_coordinator_named_by_as(database_url, engine):
    prefix = f"clinj{os.getpid()}:"
    with engine.connect() as c:
        camille, last = c.execute(text("SELECT m.id, coalesce(max(n.id), 0) FROM members m LEFT JOIN notifications n"
                                       " ON n.member_id = m.id WHERE m.username = 'camille' GROUP BY m.id")).one()
    try:
        ok = _cli(database_url, "commons", str(FIX / "parcelles_l93.gpkg"), "--map", "name=nom", "--map", "kind=type",
                  "--external-id", "uuid", "--id-prefix", prefix, "--as", "camille")
        assert ok.returncode == 0, ok.stderr
        bad = _cli(database_url, "commons", str(FIX / "sans_crs_shp.zip"), "--external-id", "uuid", "--kind", "land",
                   "--as", "camille")
        assert bad.returncode == 1 and "--crs EPSG:2154" in bad.stderr
        with engine.connect() as c:
            rows = c.execute(text("SELECT code, params->>'file' FROM notifications WHERE member_id = :m AND id > :last"
                                  " AND dedupe LIKE 'job:%' ORDER BY id"), {"m": camille, "last": last}).all()
        assert [tuple(r) for r in rows] == [("notify.import_finished", "parcelles_l93.gpkg"),
                                            ("notify.import_failed", "sans_crs_shp.zip")]
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM notifications WHERE member_id = :m AND id > :last AND dedupe LIKE 'job:%'"),
                      {"m": camille, "last": last})
            c.execute(text("DELETE FROM commons WHERE external_id LIKE :p"), {"p": prefix + "%"})
