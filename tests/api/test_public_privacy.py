"""Privacy of the public layers: every public endpoint, format and zoom level, checked for leaks.

No commons that is not public (or is archived), no member's name, and no exact location of a place
marked approximate (the demo's spring, ``demo:water-3``) may appear anywhere the public can read.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from pathlib import Path

import mapbox_vector_tile
import pyogrio
import pytest
from sqlalchemy import select, text

from commons_map.people.models import Member
from commons_map.publish import figures, service
from commons_map.publish.collections import COLLECTIONS
from commons_map.publish.crs import SUPPORTED
from commons_map.register.models import Commons
from commons_map.register.service import APPROXIMATE_GRID_DEG


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield
    figures.clear_cache()


class Secrets:
    def __init__(self, db):
        # Make one public parcel private and archive another, inside this test's transaction.
        for ext, sql in (
            ("demo:land-5", "visibility = 'private'"),
            ("demo:land-7", "archived_at = now()"),
        ):
            db.execute(text(f"UPDATE commons SET {sql} WHERE external_id = :e"), {"e": ext})
        db.expire_all()
        hidden = db.scalars(
            select(Commons).where(
                (Commons.visibility != "public") | Commons.archived_at.is_not(None)
            )
        ).all()
        self.hidden_ids = {c.id for c in hidden}
        self.hidden_names = {c.name for c in hidden}
        assert (
            "Friche des Blaches" in self.hidden_names and "Prairie du Moulin" in self.hidden_names
        )
        assert any(c.kind_code == "housing" for c in hidden)
        self.member_names = set(db.scalars(select(Member.display_name)))
        assert "Camille Roux" in self.member_names and len(self.member_names) >= 25
        spring = db.scalars(select(Commons).where(Commons.external_id == "demo:water-3")).one()
        assert spring.location_precision == "approximate" and spring.visibility == "public"
        self.spring_id = spring.id
        self.exact = db.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM commons WHERE id = :i"), {"i": spring.id}
        ).one()
        self.snapped = db.execute(
            text(
                "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_SnapToGrid(ST_PointOnSurface(geom), :g) g"
                " FROM commons WHERE id = :i) q"
            ),
            {"i": spring.id, "g": APPROXIMATE_GRID_DEG},
        ).one()
        assert math.dist(self.exact, self.snapped) > 0.001  # the two differ by ~100 m or more
        # The exact coordinates as any of our outputs would print them (6 or 7 decimals, ~10 cm);
        # shorter forms would match unrelated vertices of the terraces the spring lies in.
        self.exact_forms = {
            f
            for v in self.exact
            for f in (f"{v:.6f}", repr(round(v, 7)), f"{v:.7f}")
            if len(f.split(".")[1]) >= 5
        }
        self.all_extent = db.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                " (SELECT ST_Extent(geom) e FROM commons) q"
            )
        ).one()
        self.checked = 0

    def forms(self, s: str) -> set[str]:
        return {
            s,
            html.escape(s),
            html.escape(s, quote=False),
            json.dumps(s)[1:-1],
            json.dumps(s, ensure_ascii=False)[1:-1],
        }

    def check_text(self, where: str, body: str) -> None:
        self.checked += 1
        for name in self.hidden_names | self.member_names:
            for form in self.forms(name):
                assert form not in body, f"{where} leaks {name!r}"
        for value in self.exact_forms:
            assert value not in body, f"{where} leaks the spring's exact coordinate {value}"

    def check_features(
        self, where: str, feats: list[dict], *, lat_first: bool = False, projected: bool = False
    ) -> None:
        for f in feats:
            assert f["id"] not in self.hidden_ids, f"{where} leaks commons {f['id']}"
            if f["id"] == self.spring_id and not projected:
                coords = f["geometry"]["coordinates"]
                pt = (coords[1], coords[0]) if lat_first else tuple(coords)
                assert math.dist(pt, self.snapped) < 1e-7, f"{where} shows the spring at {pt}"


@pytest.fixture
def secrets(db) -> Secrets:
    return Secrets(db)


def get_all(client, url: str) -> list[dict]:
    feats = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        feats += body["features"]
        url = next((ln["href"] for ln in body["links"] if ln["rel"] == "next"), None)
    return feats


def test_ogc_documents_items_and_single_features(client, secrets):
    s = secrets
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/api"):
        for f in ("json", "html"):
            r = client.get(f"{path}?f={f}")
            assert r.status_code == 200
            s.check_text(path, r.text)
    for cid in COLLECTIONS:
        for sub in ("", "/queryables"):
            for f in ("json", "html"):
                s.check_text(cid + sub, client.get(f"/ogc/collections/{cid}{sub}?f={f}").text)
        for uri, crs in SUPPORTED.items():
            feats = get_all(client, f"/ogc/collections/{cid}/items?limit=10000&crs={uri}")
            assert feats
            s.check_features(
                f"{cid} {uri}", feats, lat_first=crs.lat_first, projected=crs.srid != 4326
            )
            s.check_text(f"{cid} items {uri}", json.dumps(feats, ensure_ascii=False))
        small = get_all(client, f"/ogc/collections/{cid}/items?limit=3")
        s.check_features(f"{cid} paged", small)
        page = client.get(f"/ogc/collections/{cid}/items?limit=10000&f=html")
        s.check_text(f"{cid} items html", page.text)
        for feat in small[:3]:
            for f in ("json", "html"):
                s.check_text(
                    f"{cid}/{feat['id']}",
                    client.get(f"/ogc/collections/{cid}/items/{feat['id']}?f={f}").text,
                )
        for hid in s.hidden_ids:
            assert client.get(f"/ogc/collections/{cid}/items/{hid}").status_code == 404


def test_filters_cannot_find_the_exact_place_or_hidden_commons(client, secrets):
    s = secrets
    lon, lat = s.exact
    d = 0.0003
    box = f"{lon - d},{lat - d},{lon + d},{lat + d}"
    for cid in COLLECTIONS:
        feats = get_all(client, f"/ogc/collections/{cid}/items?limit=10000&bbox={box}")
        assert s.spring_id not in {f["id"] for f in feats}, (
            "a bbox around the exact spot finds the spring"
        )
        wkt = (f"POLYGON(({lon - d} {lat - d},{lon + d} {lat - d},{lon + d} {lat + d},"
               f"{lon - d} {lat + d},{lon - d} {lat - d}))")
        r = client.get(
            f"/ogc/collections/{cid}/items",
            params={"filter": f"S_INTERSECTS(geometry, {wkt})", "limit": 10000},
        )
        assert s.spring_id not in {f["id"] for f in r.json()["features"]}
        r = client.get(
            f"/ogc/collections/{cid}/items", params={"filter": "name = 'Friche des Blaches'"}
        )
        assert r.json()["numberReturned"] == 0
    sx, sy = s.snapped
    feats = get_all(
        client,
        f"/ogc/collections/tools_and_places/items?limit=10000&bbox={sx - d},{sy - d},{sx + d},{sy + d}",
    )
    assert s.spring_id in {f["id"] for f in feats}  # it is findable where the public sees it


def tiles_covering(extent, z):
    x0, y0, x1, y1 = extent
    n = 2**z

    def tx(lon):
        return int((lon + 180) / 360 * n)

    def ty(lat):
        r = math.radians(lat)
        return int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)

    return [(x, y) for x in range(tx(x0), tx(x1) + 1) for y in range(ty(y1), ty(y0) + 1)]


def tile_lonlat(z, x, y, px, py, extent=4096):
    n = 2**z
    lon = (x + px / extent) / n * 360 - 180
    merc_y = (y + (extent - py) / extent) / n  # mapbox_vector_tile decodes with y up
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * merc_y))))
    return lon, lat


def _public_polygons(db, cid: str) -> int:
    from commons_map.publish.sql import public_source

    return db.scalar(text(
        f"SELECT count(*) FROM ({public_source(COLLECTIONS[cid])}) s"
        " WHERE GeometryType(s.geom) NOT IN ('POINT', 'MULTIPOINT')"
    ))


def test_every_tile_at_every_zoom(client, db, secrets):
    s = secrets
    seen_spring = 0
    polygons = {cid: _public_polygons(db, cid) for cid in COLLECTIONS}
    for z in range(0, 17):
        merged = dict.fromkeys(COLLECTIONS, 0)
        for x, y in tiles_covering(s.all_extent, z):
            for cid in COLLECTIONS:
                r = client.get(
                    f"/tiles/{cid}/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"}
                )
                assert r.status_code in (200, 204)
                if r.status_code == 204:
                    continue
                layer = mapbox_vector_tile.decode(r.content)[cid]
                for feat in layer["features"]:
                    if "count" in feat["properties"]:  # a merged low-zoom feature: no id, no name
                        assert z <= service.MERGE_MAX_ZOOM and set(feat["properties"]) <= {
                            "count", "area_m2", COLLECTIONS[cid].merge_by}
                        merged[cid] += feat["properties"]["count"]
                        continue
                    assert feat["id"] not in s.hidden_ids, (
                        f"tile {cid}/{z}/{x}/{y} leaks commons {feat['id']}"
                    )
                    s.check_text(
                        f"tile {cid}/{z}/{x}/{y}",
                        json.dumps(feat["properties"], ensure_ascii=False),
                    )
                    if feat["id"] == s.spring_id:
                        seen_spring += 1
                        px, py = feat["geometry"]["coordinates"]
                        pt = tile_lonlat(z, x, y, px, py)
                        res = 360 / 2**z / 4096 * 2
                        assert (
                            abs(pt[0] - s.snapped[0]) <= res and abs(pt[1] - s.snapped[1]) <= res
                        ), (z, pt)
        for cid, c in COLLECTIONS.items():
            # merged tiles count the public polygons, each once: none of the hidden ones
            expected = polygons[cid] if service.merges(c, z) else 0
            assert merged[cid] == expected, (cid, z)
    assert (
        seen_spring >= 17
    )  # the spring is there, snapped, at every zoom (commons and tools_and_places)


def test_downloads_map_pages_and_static_export(client, db, secrets, settings):
    s = secrets
    s.check_text("opendata", client.get("/opendata").text)
    s.check_text("opendata html", client.get("/opendata?f=html").text)
    for cid in COLLECTIONS:
        gj = client.get(f"/opendata/{cid}.geojson")
        s.check_text(f"{cid}.geojson", gj.text)
        s.check_features(f"{cid}.geojson", gj.json()["features"])
        s.check_text(f"{cid}.csv", client.get(f"/opendata/{cid}.csv").text)
        s.check_text(f"tilejson {cid}", client.get(f"/tiles/{cid}/tilejson.json").text)
        gpkg = client.get(f"/opendata/{cid}.gpkg").content
        s.check_text(f"{cid}.gpkg bytes", gpkg.decode("utf-8", errors="replace"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.gpkg"
            path.write_bytes(gpkg)
            df = pyogrio.read_dataframe(path, fid_as_index=True)
            assert not set(df["id"]) & s.hidden_ids
            for fid, geom in zip(df["id"], df.geometry, strict=True):
                if fid == s.spring_id:
                    assert math.dist((geom.x, geom.y), s.snapped) < 1e-7
    for lang in ("fr", "en"):
        s.check_text(f"map {lang}", client.get(f"/maps/public?lang={lang}").text)
    for hidden in s.hidden_ids:  # a parcel's own page: none for what is not public
        assert client.get(f"/maps/parcels/{hidden}").status_code == 404
    land = [f["id"] for f in client.get("/ogc/collections/restored_land/items?limit=10000").json()["features"]]
    assert land
    for cid in land:
        for lang in ("fr", "en"):
            r = client.get(f"/maps/parcels/{cid}?lang={lang}")
            assert r.status_code == 200
            s.check_text(f"parcel page {cid} {lang}", r.text)
    from maps.site import build_static_site

    with tempfile.TemporaryDirectory() as tmp:
        build_static_site(db, Path(tmp), licence=settings.data_licence, min_zoom=12, max_zoom=15)
        files = [p for p in Path(tmp).rglob("*") if p.is_file() and "vendor" not in p.parts]
        assert any(p.suffix == ".mvt" for p in files)
        for p in files:
            if p.suffix == ".pmtiles":
                check_archive(s, p)
            elif p.suffix == ".mvt":
                if p.stat().st_size:
                    for feat in mapbox_vector_tile.decode(p.read_bytes())["restored_land"][
                        "features"
                    ]:
                        assert feat["id"] not in s.hidden_ids
                        s.check_text(str(p), json.dumps(feat["properties"], ensure_ascii=False))
            else:
                s.check_text(str(p), p.read_text(encoding="utf-8"))
    assert s.checked > 50  # every body above was looked at


def check_archive(s: Secrets, path: Path) -> None:
    """Every tile of the static export's PMTiles archive, read back with the pmtiles reader."""
    import gzip

    from pmtiles.reader import MmapSource, Reader, all_tiles

    with path.open("rb") as f:
        assert Reader(MmapSource(f)).header()["max_zoom"] == 16
        zooms = set()
        for (z, x, y), data in all_tiles(MmapSource(f)):
            zooms.add(z)
            for cid, layer in mapbox_vector_tile.decode(gzip.decompress(data)).items():
                for feat in layer["features"]:
                    where = f"{path.name} {cid}/{z}/{x}/{y}"
                    s.check_text(where, json.dumps(feat["properties"], ensure_ascii=False))
                    if "count" in feat["properties"]:
                        assert z <= service.MERGE_MAX_ZOOM and "id" not in feat["properties"]
                    else:
                        assert feat["id"] not in s.hidden_ids, f"{where} leaks commons {feat['id']}"
        assert zooms == set(range(17))
