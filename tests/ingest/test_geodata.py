"""Importing commons from geodata files: formats, CRS, validity, idempotence, all or nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from commons_map.errors import Conflict, PermissionDenied, ValidationFailed
from commons_map.register.models import Commons, CommonsHistory
from ingest.geodata import ImportOptions, import_commons

FIX = Path(__file__).resolve().parent.parent / "fixtures"
PARCEL_MAP = {"name": "nom", "kind": "type", "external_id": "uuid"}


def run(db, people, name, **opts):
    actor = opts.pop("actor", people.coordinator)
    return import_commons(db, actor=actor, path=FIX / name, options=ImportOptions(**opts))


def count(db, prefix):
    return db.scalar(select(func.count()).select_from(Commons).where(Commons.external_id.like(prefix + "%")))


@pytest.mark.parametrize("name", ["parcelles.gpkg", "parcelles.geojson", "parcelles.fgb", "parcelles_l93.gpkg"])
def test_vector_files_create_every_row_with_parent(db, people, name):
    report = run(db, people, name, mapping=dict(PARCEL_MAP, parent="parent"))
    assert report.counts["create"] == 5, report.rejected
    assert report.written
    bed = db.scalars(select(Commons).where(Commons.external_id == "f-bed-1")).one()
    garden = db.scalars(select(Commons).where(Commons.external_id == "f-garden-1")).one()
    assert bed.parent_id == garden.id and bed.kind_code == "bed" and garden.kind_code == "garden"
    # French labels of kinds are understood ("Terre" is land).
    assert db.scalar(select(Commons.kind_code).where(Commons.external_id == "f-land-1")) == "land"
    lon, lat = db.execute(select(func.ST_X(func.ST_Centroid(Commons.geom)), func.ST_Y(func.ST_Centroid(Commons.geom)))
                          .where(Commons.external_id == "f-land-1")).one()
    assert 5.17 < lon < 5.19 and 44.69 < lat < 44.71
    hist = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == bed.id)).all()
    assert [h.action for h in hist] == ["created"]
    assert hist[0].member_id == people.coordinator.id
    assert hist[0].changes["source"] == [None, f"import:{name}"]
    assert hist[0].changes["geometry"][1]["type"] == "Polygon"


def test_lambert93_lands_where_the_wgs84_file_does(db, people):
    run(db, people, "parcelles.gpkg", mapping=PARCEL_MAP, id_prefix="a:")
    report = run(db, people, "parcelles_l93.gpkg", mapping=PARCEL_MAP, id_prefix="b:")
    assert "EPSG:2154" in report.crs
    dist = db.scalar(text(
        "SELECT max(ST_HausdorffDistance(a.geom::geography::geometry, b.geom)) FROM commons a JOIN commons b"
        " ON b.external_id = 'b:' || substr(a.external_id, 3) WHERE a.external_id LIKE 'a:%'"))
    assert dist is not None and dist < 1e-6


def test_reimport_changes_nothing(db, people):
    first = run(db, people, "parcelles.gpkg", mapping=dict(PARCEL_MAP, parent="parent"))
    assert first.counts["create"] == 5
    n_hist = db.scalar(select(func.count()).select_from(CommonsHistory))
    again = run(db, people, "parcelles.gpkg", mapping=dict(PARCEL_MAP, parent="parent"))
    assert again.counts == {"create": 0, "update": 0, "unchanged": 5, "rejected": 0, "repaired": 0}
    assert again.written
    assert count(db, "f-") == 5
    assert db.scalar(select(func.count()).select_from(CommonsHistory)) == n_hist
    # The same parcels in Lambert-93 (the round trip moves the last digits): nothing new is created.
    l93 = run(db, people, "parcelles_l93.gpkg", mapping=dict(PARCEL_MAP, parent="parent"))
    assert l93.counts["create"] == 0 and count(db, "f-") == 5


def test_changed_row_is_updated_with_history(db, people, tmp_path):
    run(db, people, "parcelles.geojson", mapping=PARCEL_MAP)
    data = json.loads((FIX / "parcelles.geojson").read_text())
    data["features"][1]["properties"]["nom"] = "Champ du Moulin (renommé)"
    changed = tmp_path / "parcelles.geojson"
    changed.write_text(json.dumps(data))
    report = run(db, people, changed, mapping=PARCEL_MAP) if False else import_commons(
        db, actor=people.coordinator, path=changed, options=ImportOptions(mapping=PARCEL_MAP))
    assert report.counts["update"] == 1 and report.counts["unchanged"] == 4
    c = db.scalars(select(Commons).where(Commons.external_id == "f-land-2")).one()
    assert c.name == "Champ du Moulin (renommé)"
    last = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == c.id)
                      .order_by(CommonsHistory.id.desc())).first()
    assert last.action == "updated"
    assert last.changes["name"] == ["Champ du Moulin", "Champ du Moulin (renommé)"]
    assert "geometry" not in last.changes


def test_dry_run_reports_and_writes_nothing(db, people):
    report = run(db, people, "parcelles.gpkg", mapping=PARCEL_MAP, dry_run=True)  # "parent" found by name
    assert report.counts["create"] == 5 and report.dry_run
    assert not report.written and count(db, "f-") == 0


def test_zipped_shapefile(db, people):
    report = run(db, people, "parcelles_shp.zip", mapping={"name": "nom", "kind": "type", "external_id": "uuid",
                                                          "description": "descr"}, id_prefix="shp:")
    # The bed is rejected: no parent column in the shapefile. All or nothing: nothing written.
    assert report.counts["rejected"] == 1 and not report.written and count(db, "shp:") == 0
    assert report.rejected[0].reasons == [
        "feature 5, parent: a bed must sit inside a garden; give its parent's external id"]
    report = run(db, people, "parcelles_shp.zip", mapping={"name": "nom", "kind": "type", "external_id": "uuid"},
                 id_prefix="shp:", skip_rejected=True)
    assert report.written and count(db, "shp:") == 4
    assert db.scalar(select(Commons.description).where(Commons.external_id == "shp:f-land-1")) == "Prairie de fauche"


def test_file_without_crs_is_refused_unless_given(db, people):
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, "sans_crs_shp.zip", mapping=PARCEL_MAP)
    assert exc.value.field == "crs" and "EPSG:2154" in exc.value.message
    assert count(db, "f-") == 0
    report = run(db, people, "sans_crs_shp.zip", mapping=PARCEL_MAP, crs="EPSG:2154", skip_rejected=True)
    assert report.counts["create"] == 4 and "given" in report.crs


def test_kml_and_kmz(db, people):
    for name, prefix in (("jardins.kml", "kml:"), ("jardins.kmz", "kmz:")):
        report = run(db, people, name, mapping={"name": "Name", "external_id": "Name", "description": "Description"},
                     kind="garden", id_prefix=prefix)
        assert report.counts["create"] == 2, report.rejected
        assert count(db, prefix) == 2
    assert db.scalar(
        select(Commons.description).where(Commons.external_id == "kml:Jardin des Aires")) == "Jardin d'enfants"


def test_french_csv_with_decimal_commas(db, people):
    report = run(db, people, "points_fr.csv", mapping={"external_id": "identifiant", "kind": "type"})
    by_id = {r.external_id: r for r in report.rows}
    assert by_id["pe-1"].action == "create" and by_id["pe-2"].action == "create"
    # A tool can be imported as a point; "membres" is understood as members.
    assert by_id["pe-3"].action == "create"
    assert by_id["pe-4"].action == "rejected"
    assert by_id["pe-4"].reasons == ["line 5, latitude: '' is not a number"]
    assert by_id["pe-4"].row == 5
    assert not report.written
    report = run(db, people, "points_fr.csv", mapping={"external_id": "identifiant", "kind": "type"},
                 skip_rejected=True)
    c = db.scalars(select(Commons).where(Commons.external_id == "pe-2")).one()
    assert c.kind_code == "water_point" and c.visibility == "members" and c.name == "Source n°2 à Saillans"
    x = db.scalar(select(func.ST_X(Commons.geom)).where(Commons.external_id == "pe-2"))
    assert abs(x - 5.192476) < 1e-7


def test_wkt_csv_needs_a_crs(db, people):
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, "vergers_wkt.csv", mapping={"external_id": "id"})
    assert exc.value.field == "crs"
    report = run(db, people, "vergers_wkt.csv", mapping={"external_id": "id"}, crs="EPSG:4326")
    assert report.counts["create"] == 2
    assert db.scalar(select(Commons.kind_code).where(Commons.external_id == "w-1")) == "orchard"


def test_invalid_geometries_reported_per_row_and_repaired_only_when_asked(db, people):
    report = run(db, people, "invalides.geojson", mapping={"external_id": "uuid", "name": "nom"}, kind="land")
    by_id = {r.external_id: r for r in report.rows}
    assert by_id["bad-1"].action == "rejected"
    assert "feature 1, geometry: invalid (Self-intersection" in by_id["bad-1"].reasons[0]
    assert "--make-valid" in by_id["bad-1"].reasons[0]
    assert by_id["bad-2"].reasons == ["feature 2, geometry: a land needs a Polygon or MultiPolygon, not a Point"]
    assert "outside the territory" in by_id["bad-3"].reasons[0]
    assert by_id["bad-4"].action == "create"
    assert not report.written and count(db, "bad-") == 0
    report = run(db, people, "invalides.geojson", mapping={"external_id": "uuid", "name": "nom"}, kind="land",
                 make_valid=True, skip_rejected=True)
    by_id = {r.external_id: r for r in report.rows}
    assert by_id["bad-1"].action == "create" and by_id["bad-1"].repaired
    assert not by_id["bad-4"].repaired
    assert report.counts["repaired"] == 1
    assert db.scalar(
        select(func.ST_GeometryType(Commons.geom)).where(Commons.external_id == "bad-1")) == "ST_MultiPolygon"
    assert db.scalar(select(func.ST_IsValid(Commons.geom)).where(Commons.external_id == "bad-1"))
    assert count(db, "bad-") == 2


def test_unknown_kind_and_bad_values_name_row_field_and_column(db, people, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("id;nom;genre;etat;lat;lon\n"
                 "a;Parcelle A;jardinet;actif;44,70;5,19\n"
                 "b;Parcelle B;water_point;cassé;44,70;5,19\n"
                 "b;Parcelle B bis;water_point;actif;44,70;5,19\n"
                 "c;;water_point;actif;44,70;5,19\n", encoding="utf-8")
    report = import_commons(db, actor=people.coordinator, path=f, options=ImportOptions(
        mapping={"external_id": "id", "kind": "genre"}))
    reasons = {r.row: r.reasons for r in report.rows}
    assert reasons[2][0].startswith("line 2, kind (column 'genre'): unknown kind 'jardinet'; known kinds:")
    assert reasons[3] == ["line 3, state (column 'etat'): 'cassé' is not one of "
                          "active, restoring, fallow, needs_repair, out_of_service, lost"]
    assert reasons[4] == ["line 4, external_id (column 'id'): 'b' repeats the row 3"]
    assert reasons[5] == ["line 5, name (column 'nom'): missing"]
    assert not report.written


def test_another_cooperatives_kind_is_unknown_here_and_ours_is_known(db, people, tmp_path):
    from commons_map.register.models import CommonsKind

    db.add_all([CommonsKind(code="four_a_pain_diois", cooperative_id=people.other_coop.id, label_fr="Four à pain",
                            label_en="Bread oven", category="place", geometry="point"),
                CommonsKind(code="four_a_pain_saillans", cooperative_id=people.coop.id, label_fr="Four banal",
                            label_en="Communal oven", category="place", geometry="point")])
    db.flush()
    f = tmp_path / "fours.csv"
    f.write_text("id;nom;genre;lat;lon\n"
                 "f1;Four du Diois;four_a_pain_diois;44,70;5,19\n"
                 "f2;Four de Saillans;Four banal;44,70;5,19\n", encoding="utf-8")
    report = import_commons(db, actor=people.coordinator, path=f, options=ImportOptions(
        mapping={"external_id": "id", "kind": "genre"}, dry_run=True))
    reasons = {r.row: r.reasons for r in report.rows if r.reasons}
    assert list(reasons) == [2], reasons
    assert reasons[2][0].startswith("line 2, kind (column 'genre'): unknown kind 'four_a_pain_diois'; known kinds:")
    assert "four_a_pain_saillans" in reasons[2][0] and "four_a_pain_diois;" not in reasons[2][0].split(":", 2)[2]


def test_mapping_errors_name_the_columns(db, people):
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, "parcelles.gpkg", mapping={"name": "nom_parcelle", "external_id": "uuid"}, kind="land")
    assert "no column nom_parcelle" in exc.value.message and "uuid, nom" in exc.value.message
    assert exc.value.code == "ingest.map_no_column" and exc.value.field == "map.name"
    assert "aucune colonne nom_parcelle ; les colonnes sont : uuid, nom" in exc.value.text("fr")
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, "jardins.kml", mapping={"name": "Name"}, kind="garden")
    assert exc.value.field == "external_id"
    with pytest.raises(ValidationFailed) as exc:
        run(db, people, "parcelles.gpkg", mapping={"colour": "nom"})
    assert exc.value.field == "map"


def test_unsupported_and_unreadable_files(db, people, tmp_path):
    f = tmp_path / "notes.docx"
    f.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValidationFailed, match="not a supported format") as exc:
        import_commons(db, actor=people.coordinator, path=f, options=ImportOptions())
    assert exc.value.code == "ingest.unsupported_format" and exc.value.params["name"] == "notes.docx"
    assert exc.value.text("fr").startswith("notes.docx n'est pas dans un format pris en charge")
    g = tmp_path / "broken.gpkg"
    g.write_bytes(b"not a geopackage")
    with pytest.raises(ValidationFailed, match="GDAL cannot read it") as exc:
        import_commons(db, actor=people.coordinator, path=g, options=ImportOptions())
    assert exc.value.code == "ingest.gdal_unreadable" and exc.value.field == "file"


def test_only_coordinators_import(db, people):
    for who in (people.member, people.steward, people.outsider):
        with pytest.raises(PermissionDenied):
            import_commons(db, actor=who, path=FIX / "parcelles.gpkg", options=ImportOptions(mapping=PARCEL_MAP),
                           cooperative=people.coop)
    assert count(db, "f-") == 0


def test_archived_commons_cannot_be_changed_by_import(db, people):
    from commons_map.register.service import archive_commons

    run(db, people, "parcelles.geojson", mapping=PARCEL_MAP, skip_rejected=True)
    cid = db.scalar(select(Commons.id).where(Commons.external_id == "f-land-3"))
    archive_commons(db, actor=people.coordinator, commons_id=cid)
    report = run(db, people, "parcelles.geojson", mapping=PARCEL_MAP, skip_rejected=True)
    row = next(r for r in report.rows if r.external_id == "f-land-3")
    assert row.action == "rejected" and "archived" in row.reasons[0]


@pytest.mark.parametrize("name, words, code", [
    ("bomb_ratio.zip", "decompression bomb", "ingest.zip_bomb"),
    ("bomb_entries.zip", "entries", "ingest.too_many_entries"),
    ("traversal.zip", "climbs out", "ingest.entry_climbs"),
    ("absolute.zip", "absolute path", "ingest.entry_absolute"),
])
def test_hostile_archives_refused_before_extraction(db, people, tmp_path, name, words, code):
    with pytest.raises(ValidationFailed, match=words) as exc:
        run(db, people, name, mapping=PARCEL_MAP)
    assert exc.value.code == code and exc.value.field == "file"
    assert exc.value.text("fr") != exc.value.text("en")
    assert not (Path("/tmp/evil.geojson")).exists()


def test_zip_that_lies_about_its_size_is_stopped(tmp_path):
    """A header declaring a small size while the data inflates larger is caught while extracting."""
    import zipfile

    from ingest.safety import safe_extract

    src = tmp_path / "liar.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.geojson", b"x" * 100_000)
    data = bytearray(src.read_bytes())
    # Patch the declared uncompressed size (central directory and local header) down to 10 bytes.
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = data.find(sig)
        off = pos + (22 if sig == b"PK\x03\x04" else 24)
        data[off:off + 4] = (10).to_bytes(4, "little")
    src.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises((ValidationFailed, Exception)) as exc:
        safe_extract(src, out)
    assert not (out / "a.geojson").exists() or (out / "a.geojson").stat().st_size <= 10
    del exc
    shutil.rmtree(out)


def test_created_history_holds_every_given_field_as_create_commons_does(db, people, tmp_path):
    """The 'created' row of an import: each field as [null, value], the geometry as GeoJSON, the source."""
    data = json.loads((FIX / "parcelles.geojson").read_text())
    odd = 'Guillemets " barre \\ retour\nà la ligne\tet tabulation, 中文'
    for f in data["features"]:
        if f["properties"]["uuid"] == "f-bed-1":
            f["properties"]["description"] = odd
            f["properties"]["visibilite"] = "publique"
    path = tmp_path / "avec guillemets \"x\".geojson"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    report = import_commons(db, actor=people.coordinator, path=path,
                            options=ImportOptions(mapping=dict(PARCEL_MAP, parent="parent", visibility="visibilite")))
    assert report.counts["create"] == 5, report.rejected
    source = [None, f"import:{path.name}"]
    for ext in ("f-bed-1", "f-land-2"):
        c = db.scalars(select(Commons).where(Commons.external_id == ext)).one()
        geojson = json.loads(db.scalar(select(func.ST_AsGeoJSON(Commons.geom, 9)).where(Commons.id == c.id)))
        (h,) = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == c.id)).all()
        expected = {"kind": [None, c.kind_code], "name": [None, c.name], "geometry": [None, geojson],
                    "state": [None, "active"], "visibility": [None, c.visibility], "external_id": [None, ext],
                    "source": source}
        if ext == "f-bed-1":
            expected |= {"description": [None, odd], "parent": [None, "f-garden-1"]}
            assert c.description == odd and c.visibility == "public"
        assert h.action == "created" and h.changes == expected


def test_import_puts_the_sessions_settings_back(db, people):
    """The planner settings the import changes for its statements are as before once it returns."""
    def settings():
        return db.execute(text("SELECT current_setting('jit'), current_setting('work_mem')")).one()

    before = settings()
    run(db, people, "parcelles.gpkg", mapping=PARCEL_MAP, dry_run=True)
    assert settings() == before
    run(db, people, "parcelles.gpkg", mapping=dict(PARCEL_MAP, parent="parent"))
    assert settings() == before


def test_geometries_with_z_are_flattened(db, people, tmp_path):
    import geopandas as gpd
    import shapely

    path = tmp_path / "avec_z.gpkg"
    box = [(5.180, 44.700, 301.5), (5.181, 44.700, 302.0), (5.181, 44.701, 303.0), (5.180, 44.701, 302.5),
           (5.180, 44.700, 301.5)]
    gpd.GeoDataFrame({"uuid": ["z-1"], "nom": ["Parcelle en relief"], "type": ["land"]},
                     geometry=[shapely.Polygon(box)], crs="EPSG:4326").to_file(path, engine="pyogrio")
    report = import_commons(db, actor=people.coordinator, path=path, options=ImportOptions(mapping=PARCEL_MAP))
    assert report.counts["create"] == 1, report.rejected
    dims, wkt = db.execute(select(func.ST_NDims(Commons.geom), func.ST_AsText(Commons.geom))
                           .where(Commons.external_id == "z-1")).one()
    assert dims == 2 and wkt == "POLYGON((5.18 44.7,5.181 44.7,5.181 44.701,5.18 44.701,5.18 44.7))"


def test_a_nul_character_in_a_text_is_named_per_row_not_a_server_error(db, people, tmp_path):
    """PostgreSQL text cannot hold NUL: the row is rejected naming field and column; nothing is written.

    (GDAL's readers cut a text at a NUL themselves; our CSV reader keeps it, so the check is ours.)
    """
    f = tmp_path / "nul.csv"
    f.write_text("id;nom;lat;lon\nnul-a;Parcelle\x00A;44,70;5,19\nnul-b;Parcelle B;44,70;5,19\n", encoding="utf-8")
    report = import_commons(db, actor=people.coordinator, path=f, options=ImportOptions(
        mapping={"external_id": "id", "name": "nom"}, kind="water_point"))
    bad = {r.external_id: r for r in report.rejected}
    assert list(bad) == ["nul-a"], report.as_dict()["rows"]
    assert bad["nul-a"].reasons == [
        "line 2, name (column 'nom'): holds a NUL character (\\0), which no text can store;"
        " remove it in the source file"]
    assert not report.written and count(db, "nul-") == 0


def test_rejections_are_codes_said_in_each_language(db, people, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("id;nom;genre;etat;lat;lon\n"
                 "a;Parcelle A;jardinet;actif;44,70;5,19\n"
                 "b;Parcelle B;water_point;cassé;44,70;5,19\n"
                 "b;Parcelle B bis;water_point;actif;44,70;5,19\n"
                 "c;;water_point;actif;x;5,19\n", encoding="utf-8")
    report = import_commons(db, actor=people.coordinator, path=f, options=ImportOptions(
        mapping={"external_id": "id", "kind": "genre"}))
    fr = {r.row: r.reasons_in("fr") for r in report.rows}
    assert fr[2][0].startswith("ligne 2, kind (colonne « genre ») : type inconnu « jardinet » ; types connus :")
    assert fr[3] == ["ligne 3, state (colonne « etat ») : « cassé » n'est pas parmi "
                     "active, restoring, fallow, needs_repair, out_of_service, lost"]
    assert fr[4] == ["ligne 4, external_id (colonne « id ») : « b » répète la ligne 3"]
    assert fr[5] == ["ligne 5, lat : 'x' n'est pas un nombre", "ligne 5, name (colonne « nom ») : manquant"]
    rows = {r["row"]: r for r in report.as_dict("fr")["rows"]}
    assert rows[4]["reasons"] == fr[4]
    assert rows[4]["problems"] == [{"field": "external_id", "code": "ingest.row_repeats",
                                    "params": {"value": "b", "row": 3}}]
    assert [p["code"] for p in rows[5]["problems"]] == ["ingest.row_not_a_number", "ingest.row_missing"]
    assert report.as_dict()["rows"][2]["reasons"] == [  # English by default (logs)
        "line 4, external_id (column 'id'): 'b' repeats the row 3"]
    geo = import_commons(db, actor=people.coordinator, path=FIX / "invalides.geojson", options=ImportOptions(
        mapping={"external_id": "uuid", "name": "nom"}, kind="land"))
    by_id = {r.external_id: r for r in geo.rows}
    assert by_id["bad-2"].reasons_in("fr") == [
        "entité 2, geometry : un land demande un Polygon ou un MultiPolygon, pas un Point"]
    assert by_id["bad-1"].reasons_in("fr")[0].startswith("entité 1, geometry : invalide (Self-intersection")
    assert "réparez-la avec --make-valid" in by_id["bad-1"].reasons_in("fr")[0]
    assert "hors du territoire de" in by_id["bad-3"].reasons_in("fr")[0]


def test_an_empty_cell_keeps_the_value_when_the_row_is_updated(db, people, tmp_path):
    """The comparison and the history treat an empty description or state as 'keep': so does the write."""
    data = json.loads((FIX / "parcelles.geojson").read_text())
    for f in data["features"]:
        f["properties"]["etat"] = "fallow"
    first = tmp_path / "parcelles.geojson"
    first.write_text(json.dumps(data))
    mapping = dict(PARCEL_MAP, description="description", state="etat")
    assert import_commons(db, actor=people.coordinator, path=first,
                          options=ImportOptions(mapping=mapping)).counts["create"] == 5
    data["features"][0]["properties"].update(nom="Pré de la Tuilière (renommé)", description=None, etat=None)
    first.write_text(json.dumps(data))
    report = import_commons(db, actor=people.coordinator, path=first, options=ImportOptions(mapping=mapping))
    assert report.counts["update"] == 1 and report.counts["unchanged"] == 4
    c = db.scalars(select(Commons).where(Commons.external_id == "f-land-1")).one()
    assert (c.name, c.description, c.state) == ("Pré de la Tuilière (renommé)", "Prairie de fauche", "fallow")
    last = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == c.id)
                      .order_by(CommonsHistory.id.desc())).first()
    assert set(last.changes) == {"name", "source"}


def test_the_report_gives_the_ids_written_and_none_when_nothing_is(db, people, tmp_path):
    data = json.loads((FIX / "parcelles.geojson").read_text())
    data["features"][0]["properties"]["type"] = "volcan"  # one rejected row: nothing is written
    bad = tmp_path / "parcelles.geojson"
    bad.write_text(json.dumps(data))
    refused = import_commons(db, actor=people.coordinator, path=bad, options=ImportOptions(mapping=PARCEL_MAP))
    assert not refused.written and count(db, "f-") == 0
    assert [r.commons_id for r in refused.rows] == [None] * 5
    report = run(db, people, "parcelles.geojson", mapping=PARCEL_MAP)
    ids = dict(db.execute(select(Commons.external_id, Commons.id).where(Commons.external_id.like("f-%"))).all())
    assert {r.external_id: r.commons_id for r in report.rows} == ids and len(ids) == 5
    assert [r.commons_id for r in sorted(report.rows, key=lambda r: r.row)] == sorted(ids.values())  # file order


def test_an_external_id_given_by_another_writer_meanwhile_fails_the_import_by_name(db, people, engine):
    """Between the comparison with the register and the write, the register's form gives one of the
    file's external ids to a commons (committed): the import stops, names it, and writes nothing."""

    def other_writer(stage: str, done: int, total: int) -> None:
        if stage == "checked against the register":
            with engine.begin() as c:
                c.execute(text(
                    "INSERT INTO commons (cooperative_id, kind_code, name, geom, external_id)"
                    " VALUES (:c, 'land', 'Saisi entre-temps',"
                    " ST_GeomFromText('POLYGON((5.18 44.70,5.181 44.70,5.181 44.701,5.18 44.70))', 4326), 'f-land-3')"),
                    {"c": people.coop.id})

    try:
        with pytest.raises(Conflict) as err:
            import_commons(db, actor=None, system=True, cooperative=people.coop, path=FIX / "parcelles.geojson",
                           options=ImportOptions(mapping=PARCEL_MAP), progress=other_writer)
        assert err.value.code == "ingest.external_id_taken_meanwhile"
        assert err.value.params["external_id"] == "f-land-3"
        assert "f-land-3" in str(err.value)
        assert db.scalar(text("SELECT count(*) FROM commons WHERE external_id LIKE 'f-%'")) == 1  # theirs only
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM commons WHERE external_id = 'f-land-3' AND name = 'Saisi entre-temps'"))
