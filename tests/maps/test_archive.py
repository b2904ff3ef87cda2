"""The PMTiles archive, made zoom by zoom in a few statements, holds the served tiles (static form)."""

from __future__ import annotations

import gzip
import json

import mapbox_vector_tile
from sqlalchemy import text

from commons_map.publish import service, tilecache
from commons_map.publish.collections import COLLECTIONS
from maps.archive import write_pmtiles
from maps.site import MAP_LAYERS, public_bounds, tile_range
from tests.conftest import add_public_parcels


def _features(data: bytes) -> dict[str, list[str]]:
    """Each layer's features as sorted JSON text (order within a tile is not part of its content)."""
    layers = mapbox_vector_tile.decode(data) if data else {}
    return {
        name: sorted(json.dumps([f.get("id"), f["properties"], f["geometry"]], sort_keys=True)
                     for f in layer["features"])
        for name, layer in layers.items()
    }


def test_every_archive_tile_is_the_served_tile_of_every_layer(db, tmp_path, monkeypatch):
    """Zoom 0-16 over the public layers (demo and 600 parcels, so that merged cells hold several):
    the same tiles hold features, and each holds the same features, merged at low zooms, with
    every figure (static form), as the tile endpoint's query makes them one at a time."""
    add_public_parcels(db, 600)
    # a point among the parcels (a place), so the merged zooms keep points one by one too
    db.execute(text(
        "UPDATE commons SET geom = ST_SetSRID(ST_MakePoint(5.03, 44.503), 4326) WHERE id = ("
        " SELECT c.id FROM commons c JOIN commons_kinds k ON k.code = c.kind_code"
        " WHERE k.category = 'land' AND c.visibility = 'public' AND c.archived_at IS NULL"
        " AND c.name LIKE 'synthétique%' ORDER BY c.id LIMIT 1)"))
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=0))
    bounds = public_bounds(db)
    path = tmp_path / "public.pmtiles"
    made = write_pmtiles(db, path, layers=MAP_LAYERS, bounds=bounds, max_zoom=16)
    from pmtiles.reader import MmapSource, Reader

    served: dict[tuple[int, int, int], bytes] = {}
    archived: dict[tuple[int, int, int], bytes] = {}
    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        assert reader.header()["max_zoom"] == 16
        for z in range(17):
            xs, ys = tile_range(bounds, z)
            for x in xs:
                for y in ys:
                    data = b"".join(service.tile(db, collection=COLLECTIONS[cid], z=z, x=x, y=y, static=True)
                                    for cid in MAP_LAYERS)
                    if data:
                        served[(z, x, y)] = data
                    got = reader.get(z, x, y)
                    if got is not None:
                        archived[(z, x, y)] = gzip.decompress(got)
    assert set(archived) == set(served) and len(archived) == made["tiles"] > 17
    merged = points = 0
    for zxy, data in served.items():
        assert _features(archived[zxy]) == _features(data), zxy
        land = mapbox_vector_tile.decode(data).get("restored_land", {"features": []})["features"]
        merged += zxy[0] <= service.MERGE_MAX_ZOOM and any(f["properties"].get("count", 0) > 1 for f in land)
        points += zxy[0] <= service.MERGE_MAX_ZOOM and any(f["geometry"]["type"] == "Point"
                                                           and "id" in f["properties"] for f in land)
    assert merged and points  # the comparison covered merged blocks and points kept one by one
    # the figures are in the archive's tiles (static form): a parcel's status label at zoom 16
    top = [f for zxy, d in archived.items() if zxy[0] == 16
           for f in mapbox_vector_tile.decode(d).get("restored_land", {"features": []})["features"]]
    assert top and all("status_label_fr" in f["properties"] for f in top)


def test_an_archive_of_nothing_public_is_one_empty_tile(db, tmp_path):
    """Nothing under the box: the archive is still a valid file (one empty tile), no error."""
    path = tmp_path / "empty.pmtiles"
    box = (-170.0, -80.0, -169.99, -79.99)
    made = write_pmtiles(db, path, layers=MAP_LAYERS, bounds=box, min_zoom=8, max_zoom=10)
    from pmtiles.reader import MmapSource, Reader

    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        tiles = [reader.get(z, x, y) for z in range(8, 11) for x in tile_range(box, z)[0]
                 for y in tile_range(box, z)[1]]
    assert made["tiles"] == 0 and [gzip.decompress(t) for t in tiles if t is not None] == [b""]


def test_the_static_tile_files_are_the_served_tiles(db, settings, tmp_path, monkeypatch):
    """The export's restored-land tile files (made zoom by zoom like the archive) hold the served
    static tiles; a tile with nothing is an empty file."""
    from maps.site import build_static_site

    add_public_parcels(db, 300)
    monkeypatch.setattr(tilecache, "CACHE", tilecache.TileCache(max_bytes=0))
    counts = build_static_site(db, tmp_path, licence=settings.data_licence, min_zoom=12, max_zoom=15,
                               basemap=None, archive_max_zoom=None)
    land = COLLECTIONS["restored_land"]
    files = sorted((tmp_path / "tiles" / land.id).rglob("*.mvt"))
    assert len(files) == counts["tiles"] > 8
    empty = 0
    for f in files:
        z, x, y = int(f.parts[-3]), int(f.parts[-2]), int(f.stem)
        served = service.tile(db, collection=land, z=z, x=x, y=y, static=True)
        assert _features(f.read_bytes()) == _features(served), (z, x, y)
        empty += not served
    assert 0 < empty < len(files)
