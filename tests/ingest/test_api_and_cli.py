"""The upload endpoint for coordinators and the `commons-map ingest` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import func, select, text

from commons_map.register.models import Commons
from tests.ingest.conftest import FIX

MAP = json.dumps({"name": "nom", "kind": "type", "external_id": "uuid"})


def upload(client, headers, fname, **fields):
    with open(FIX / fname, "rb") as f:
        return client.post("/api/v1/ingest/commons", headers=headers,
                           files={"file": (fname, f.read(), "application/octet-stream")},
                           data={k: str(v) for k, v in fields.items()})


def test_upload_dry_run_then_real_run(orclient, db, people, auth):
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP, dry_run="true")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["counts"]["create"] == 5 and body["dry_run"] and not body["written"]
    assert db.scalar(select(func.count()).select_from(Commons).where(Commons.external_id.like("f-%"))) == 0
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP)
    assert resp.status_code == 201 and resp.json()["written"]
    assert db.scalar(select(func.count()).select_from(Commons).where(Commons.external_id.like("f-%"))) == 5
    again = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP)
    assert again.status_code == 200 and again.json()["counts"]["unchanged"] == 5


def test_upload_with_rejected_rows_is_422_and_writes_nothing(orclient, db, people, auth):
    resp = upload(orclient, auth(people.coordinator), "invalides.geojson", name="nom", external_id="uuid", kind="land")
    assert resp.status_code == 422
    body = resp.json()
    assert body["report"]["counts"]["rejected"] == 3 and not body["report"]["written"]
    assert body["errors"][0]["field"] == "row 1" and "Self-intersection" in body["errors"][0]["message"]
    # said in the reader's language (French here), with the codes in the report
    assert body["detail"] == "3 ligne(s) refusée(s) ; rien n'est écrit (corrigez-les, ou envoyez skip_rejected=true)"
    assert body["errors"][0]["message"].startswith("entité 1, geometry : invalide (Self-intersection")
    assert body["report"]["rows"][0]["problems"][0]["code"] == "ingest.row_invalid"
    english = upload(orclient, auth(people.coordinator) | {"Accept-Language": "en"}, "invalides.geojson", name="nom",
                     external_id="uuid", kind="land").json()
    assert english["detail"].startswith("3 row(s) rejected; nothing was written")
    assert english["errors"][1]["message"] == "feature 2, geometry: a land needs a Polygon or MultiPolygon, not a Point"
    assert db.scalar(select(func.count()).select_from(Commons).where(Commons.external_id.like("bad-%"))) == 0
    resp = upload(orclient, auth(people.coordinator), "invalides.geojson", name="nom", external_id="uuid",
                  kind="land", make_valid="true", skip_rejected="true")
    assert resp.status_code == 201
    rows = {r["external_id"]: r for r in resp.json()["rows"]}
    assert rows["bad-1"]["repaired"] and rows["bad-1"]["action"] == "create"


def test_upload_refusals(orclient, people, auth):
    assert upload(orclient, auth(people.member), "parcelles.gpkg", map=MAP).status_code == 403
    assert upload(orclient, auth(people.steward), "parcelles.gpkg", map=MAP).status_code == 403
    assert upload(orclient, {}, "parcelles.gpkg", map=MAP).status_code == 401
    resp = upload(orclient, auth(people.coordinator), "sans_crs_shp.zip", map=MAP)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "crs"
    resp = upload(orclient, auth(people.coordinator), "traversal.zip", map=MAP)
    assert resp.status_code == 422 and resp.json()["code"] == "ingest.entry_climbs"
    assert resp.json()["detail"] == "L'entrée ../../../tmp/evil.geojson sort de l'archive (« .. »)."
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map="{not json")
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "map"
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP, dry_run="maybe")
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "dry_run"
    resp = orclient.post("/api/v1/ingest/commons", headers=auth(people.coordinator), data={"map": MAP})
    assert resp.status_code == 422


def test_upload_size_cap(orclient, people, auth, monkeypatch):
    import api.routers.ingest as routes
    from ingest.safety import Limits

    monkeypatch.setattr(routes, "LIMITS", Limits(upload_bytes=10_000))
    resp = upload(orclient, auth(people.coordinator), "parcelles.gpkg", map=MAP)
    assert resp.status_code == 413


def _cli(database_url, *args):
    env = dict(os.environ, COMMONS_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "commons_map.cli", "ingest", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_dry_run_real_run_and_rerun(database_url, engine, tmp_path):
    prefix = f"cli{os.getpid()}:"
    args = ["commons", str(FIX / "parcelles_l93.gpkg"), "--map", "name=nom", "--map", "kind=type",
            "--external-id", "uuid", "--id-prefix", prefix, "--as", "camille"]
    try:
        dry = _cli(database_url, *args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "dry run" in dry.stderr and "EPSG:2154" in dry.stderr
        with engine.connect() as c:
            assert c.scalar(text("SELECT count(*) FROM commons WHERE external_id LIKE :p"), {"p": prefix + "%"}) == 0
        report = tmp_path / "report.csv"
        real = _cli(database_url, *args, "--report", str(report))
        assert real.returncode == 0, real.stderr
        assert report.read_text().count("create") == 5
        with engine.connect() as c:
            assert c.scalar(text("SELECT count(*) FROM commons WHERE external_id LIKE :p"), {"p": prefix + "%"}) == 5
            assert c.scalar(text(
                "SELECT count(*) FROM commons_history h JOIN commons c ON c.id = h.commons_id"
                " JOIN members m ON m.id = h.member_id WHERE c.external_id LIKE :p AND m.username = 'camille'"),
                {"p": prefix + "%"}) == 5
        rerun = _cli(database_url, *args)
        assert rerun.returncode == 0 and "unchanged" in rerun.stderr
        bad = _cli(database_url, "commons", str(FIX / "invalides.geojson"), "--map", "name=nom",
                   "--external-id", "uuid", "--kind", "land", "--id-prefix", prefix)
        assert bad.returncode == 1 and "Self-intersection" in bad.stderr and "nothing was written" in bad.stderr
        nocrs = _cli(database_url, "commons", str(FIX / "sans_crs_shp.zip"), "--external-id", "uuid", "--kind", "land")
        assert nocrs.returncode == 1 and "--crs EPSG:2154" in nocrs.stderr
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM commons WHERE external_id LIKE :p"), {"p": prefix + "%"})


def test_cli_token_prints_a_working_url(database_url, engine):
    out = _cli(database_url, "token", "lucas", "--label", "test", "--base-url", "https://commons.example")
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert url.startswith("https://commons.example/openrosa/key/")
    from commons_map.db import session_scope
    from commons_map.fieldforms.service import member_from_token

    secret = url.rsplit("/", 1)[1]
    with session_scope(engine) as s:
        assert member_from_token(s, secret).username == "lucas"
        s.execute(text("DELETE FROM field_tokens WHERE label = 'test'"))


def test_cli_submissions_all_or_nothing_then_skip_rejected(database_url, engine, tmp_path):
    """`ingest submissions`: a refused row writes nothing and exits 1; --skip-rejected writes the rest."""
    from datetime import date

    from tests.ingest.conftest import new_iid

    ids = [new_iid() for _ in range(4)]
    with engine.connect() as c:
        garden = c.scalar(text("SELECT id FROM commons WHERE external_id = 'demo:garden-0'"))
        activity = c.scalar(text("SELECT code FROM work_activities ORDER BY code LIMIT 1"))
    src = (FIX / "exports" / "central_commons_worklog.csv").read_text(encoding="utf-8")
    for k, v in {"DATE": date.today().isoformat(), "COMMONS": f"c{garden}", "ACTIVITY": activity,
                 **{f"IID{i + 1}": v for i, v in enumerate(ids)}}.items():
        src = src.replace(f"@{k}@", v)
    path = tmp_path / "central_commons_worklog.csv"
    path.write_text(src, encoding="utf-8")
    count = "SELECT count(*) FROM field_submissions WHERE instance_id = ANY(:ids)"
    try:
        refused = _cli(database_url, "submissions", str(path))
        assert refused.returncode == 1, refused.stderr
        assert "line 5" in refused.stderr and "16 hours" in refused.stderr and "nothing was written" in refused.stderr
        with engine.connect() as c:
            assert c.scalar(text(count), {"ids": ids}) == 0
        done = _cli(database_url, "submissions", str(path), "--skip-rejected")
        assert done.returncode == 0, done.stderr
        with engine.connect() as c:
            assert c.scalar(text(count), {"ids": ids}) == 3
            assert c.scalar(text("SELECT count(*) FROM work_logs WHERE source_ref = ANY(:ids)"), {"ids": ids}) == 3
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM work_logs WHERE source_ref = ANY(:ids)"), {"ids": ids})
            c.execute(text("DELETE FROM field_submissions WHERE instance_id = ANY(:ids)"), {"ids": ids})
