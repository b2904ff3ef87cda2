"""Shapefiles' (and CSVs') text encodings: the .cpg, else UTF-8 detected, else a refusal naming it.

The shapefiles are written here with pyogrio in UTF-8 and in latin-1, then their .cpg removed
(or their DBF's language driver id set), as files from other tools come.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import select, text

from commons_map.errors import ValidationFailed
from commons_map.register.models import Commons
from ingest.geodata import ImportOptions, import_commons
from tests.ingest.test_api_and_cli import _cli

NAMES = ["Églantiers", "Potager de la Côte", "Verger"]
MAP = {"name": "nom", "kind": "type", "external_id": "uuid"}


def shapefile(folder: Path, encoding: str, *, cpg: bool, ldid: int | None = None, prefix: str = "enc") -> Path:
    """A zipped shapefile of three parcels near Saillans, its texts in ``encoding``."""
    folder.mkdir(parents=True, exist_ok=True)
    gdf = gpd.GeoDataFrame(
        {"uuid": [f"{prefix}-{i}" for i in range(3)], "nom": NAMES, "type": ["land"] * 3},
        geometry=[shapely.box(5.18 + i * .001, 44.70, 5.1805 + i * .001, 44.7005) for i in range(3)],
        crs="EPSG:4326")
    shp = folder / "parcelles.shp"
    gdf.to_file(shp, engine="pyogrio", encoding=encoding)
    raw = (folder / "parcelles.dbf").read_bytes()
    assert ("Églantiers".encode(encoding)) in raw  # the bytes are really in that encoding
    if ldid is not None:
        (folder / "parcelles.dbf").write_bytes(raw[:29] + bytes([ldid]) + raw[30:])
    if not cpg:
        (folder / "parcelles.cpg").unlink()
    zipped = folder.with_suffix(".zip")
    with zipfile.ZipFile(zipped, "w") as z:
        for f in folder.iterdir():
            z.write(f, f.name)
    return zipped


def names(db, prefix: str = "enc") -> list[str]:
    return list(db.scalars(select(Commons.name).where(Commons.external_id.like(prefix + "-%"))
                           .order_by(Commons.external_id)))


def run(db, people, path: Path, **opts):
    return import_commons(db, actor=people.coordinator, path=path, options=ImportOptions(mapping=MAP, **opts))


@pytest.mark.parametrize(("encoding", "cpg"), [("UTF-8", True), ("UTF-8", False), ("ISO-8859-1", True)])
def test_names_arrive_as_written(db, people, tmp_path, encoding, cpg):
    report = run(db, people, shapefile(tmp_path / "p", encoding, cpg=cpg))
    assert report.written and report.counts["create"] == 3
    assert names(db) == NAMES


def test_latin1_without_cpg_is_refused_naming_the_encoding_then_read_when_given(db, people, tmp_path):
    path = shapefile(tmp_path / "p", "ISO-8859-1", cpg=False)
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, path)
    assert exc.value.code == "ingest.shapefile_encoding_unknown" and exc.value.field == "encoding"
    assert "--encoding" in exc.value.text("en") and "no .cpg file" in exc.value.text("en")
    assert "n'a pas de fichier .cpg" in exc.value.text("fr")
    assert names(db) == []
    report = run(db, people, path, encoding="ISO-8859-1")
    assert report.written and names(db) == NAMES


def test_the_language_driver_id_decides_when_there_is_no_cpg(db, people, tmp_path):
    # 0x57 (87) is "ANSI" / ISO-8859-1 in the DBF's language driver ids, as GDAL reads them.
    report = run(db, people, shapefile(tmp_path / "p", "ISO-8859-1", cpg=False, ldid=0x57))
    assert report.written and names(db) == NAMES


def test_a_given_encoding_wins_over_detection(db, people, tmp_path):
    path = shapefile(tmp_path / "p", "UTF-8", cpg=False)
    run(db, people, path, encoding="ISO-8859-1")  # read as asked: the UTF-8 bytes as latin-1
    assert names(db) == [n.encode("utf-8").decode("latin-1") for n in NAMES]
    report = run(db, people, path, encoding="UTF-8")
    assert report.counts["update"] == 2 and names(db) == NAMES


def test_unknown_encoding_is_refused(db, people, tmp_path):
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, shapefile(tmp_path / "p", "UTF-8", cpg=True), encoding="klingon-8")
    assert exc.value.code == "ingest.unknown_encoding" and exc.value.field == "encoding"
    assert "klingon-8" in exc.value.text("fr")


def test_csv_in_a_given_encoding_and_refused_when_it_is_not(db, people, tmp_path):
    f = tmp_path / "jardins.csv"
    f.write_bytes("uuid;nom;type;lat;lon\nenc-0;Églantiers;water_point;44,70;5,19\n".encode("cp1252"))
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, f, encoding="UTF-8")
    assert exc.value.code == "ingest.not_in_encoding" and exc.value.field == "encoding"
    report = run(db, people, f, encoding="CP1252")
    assert report.written and names(db) == ["Églantiers"]


def _upload(client, headers, path: Path, **fields):
    return client.post("/api/v1/ingest/commons", headers=headers,
                       files={"file": (path.name, path.read_bytes(), "application/zip")},
                       data={"map": json.dumps(MAP)} | fields)


def test_api_encoding_field(orclient, db, people, auth, tmp_path):
    path = shapefile(tmp_path / "p", "ISO-8859-1", cpg=False)
    resp = _upload(orclient, auth(people.coordinator), path)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == "ingest.shapefile_encoding_unknown" and body["errors"][0]["field"] == "encoding"
    assert names(db) == []
    resp = _upload(orclient, auth(people.coordinator), path, encoding="nope")
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "encoding"
    resp = _upload(orclient, auth(people.coordinator), path, encoding="ISO-8859-1")
    assert resp.status_code == 201, resp.text
    assert names(db) == NAMES
    utf8 = shapefile(tmp_path / "q", "UTF-8", cpg=False, prefix="encu")
    resp = _upload(orclient, auth(people.coordinator), utf8)
    assert resp.status_code == 201 and names(db, "encu") == NAMES


def test_cli_encoding_option(database_url, engine, tmp_path):
    prefix = f"cli{os.getpid()}enc"
    path = shapefile(tmp_path / "p", "ISO-8859-1", cpg=False, prefix=prefix)
    try:
        refused = _cli(database_url, "commons", str(path), "--map", "name=nom", "--map", "kind=type",
                       "--external-id", "uuid")
        assert refused.returncode == 1 and "--encoding" in refused.stderr
        done = _cli(database_url, "commons", str(path), "--map", "name=nom", "--map", "kind=type",
                    "--external-id", "uuid", "--encoding", "ISO-8859-1")
        assert done.returncode == 0, done.stderr
        with engine.connect() as c:
            got = c.scalars(text("SELECT name FROM commons WHERE external_id LIKE :p ORDER BY external_id"),
                            {"p": prefix + "-%"}).all()
        assert got == NAMES
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM commons_history WHERE commons_id IN (SELECT id FROM commons"
                           " WHERE external_id LIKE :p)"), {"p": prefix + "-%"})
            c.execute(text("DELETE FROM commons WHERE external_id LIKE :p"), {"p": prefix + "-%"})
