"""GDAL's OAPIF driver (a real client, from the pyogrio wheel) reads every public collection.

GDAL runs in a child process: pyogrio holds the GIL while GDAL makes its HTTP requests, so
calling it in the process that also runs the live server's thread would deadlock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from commons_map.publish import figures
from commons_map.publish.collections import COLLECTIONS
from commons_map.publish.sql import public_source


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield


def database_features(engine, collection_id: str) -> dict[str, shapely.Geometry]:
    """name+id -> geometry of the public rows, straight from PostGIS (committed demo data)."""
    c = COLLECTIONS[collection_id]
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT s.id, s.name, ST_AsBinary(s.geom) FROM ({public_source(c)}) s")
        ).all()
    return {r[0]: shapely.from_wkb(bytes(r[2])) for r in rows}


GDAL_SCRIPT = """
import json, sys, pyogrio
args = json.loads(sys.argv[1])
if args.get("list"):
    print(json.dumps([str(n) for n, _ in pyogrio.list_layers(args["url"])]))
else:
    df = pyogrio.read_dataframe(args["url"], layer=args["layer"], where=args.get("where"),
                                bbox=tuple(args["bbox"]) if args.get("bbox") else None, fid_as_index=True)
    df["gdal_fid"] = df.index.astype(int)
    print(json.dumps({"crs": df.crs.to_wkt() if df.crs is not None else None,
                      "geojson": json.loads(df.to_json(default=str))}))
"""


def gdal(**args):
    """Run pyogrio/GDAL in a child process; the layer as a GeoDataFrame (or the layer names)."""
    out = subprocess.run(
        [sys.executable, "-c", GDAL_SCRIPT, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    data = json.loads(out.stdout)
    if args.get("list"):
        return data
    df = gpd.GeoDataFrame.from_features(data["geojson"]["features"])
    return SimpleNamespace(df=df, crs=data["crs"])


class pyogrio:  # noqa: N801 - the same calls as the real module, run out of process
    @staticmethod
    def list_layers(url):
        return [(n, None) for n in gdal(url=url, list=True)]

    @staticmethod
    def read_dataframe(url, layer, where=None, bbox=None):
        got = gdal(url=url, layer=layer, where=where, bbox=list(bbox) if bbox else None)
        got.df.attrs["crs_wkt"] = got.crs
        return got.df


@pytest.mark.parametrize("collection_id", list(COLLECTIONS))
def test_gdal_reads_every_collection_and_gets_what_the_database_holds(
    live_server, engine, collection_id
):
    url = "OAPIF:" + live_server.url + "/ogc"
    layers = {name for name, _ in pyogrio.list_layers(url)}
    assert layers == set(COLLECTIONS)
    df = pyogrio.read_dataframe(url, layer=collection_id)
    expected = database_features(engine, collection_id)
    assert len(df) == len(expected) > 0
    assert "CRS84" in df.attrs["crs_wkt"]
    ids = df["gdal_fid"].astype(int).tolist()  # GDAL takes the GeoJSON "id" as the feature id
    assert sorted(ids) == sorted(expected)
    for fid, geom in zip(ids, df.geometry, strict=True):
        assert geom.equals_exact(expected[fid], tolerance=1e-6), fid
    assert "name" in df.columns and df["name"].notna().all()


def test_gdal_pushes_filters_and_bbox_to_the_server(live_server, engine):
    url = "OAPIF:" + live_server.url + "/ogc"
    df = pyogrio.read_dataframe(url, layer="commons", where="kind = 'orchard'")
    assert df["name"].tolist() == ["Vieux verger de Chabrillan"]
    everything = pyogrio.read_dataframe(url, layer="commons")
    box = (5.15, 44.69, 5.20, 44.71)
    some = pyogrio.read_dataframe(url, layer="commons", bbox=box)
    assert 0 < len(some) < len(everything)
    assert all(g.intersects(shapely.box(*box)) for g in some.geometry)


def test_gdal_reads_restored_land_figures(live_server):
    df = pyogrio.read_dataframe("OAPIF:" + live_server.url + "/ogc", layer="restored_land")
    for col in (
        "status",
        "status_label_fr",
        "soc_stock_t_ha",
        "harvest_kg_total",
        "volunteer_hours",
    ):
        assert col in df.columns, col
    assert (
        set(df["status"]) - {"regenerating", "stable", "degrading", "baseline_only", "no_data"}
        == set()
    )
