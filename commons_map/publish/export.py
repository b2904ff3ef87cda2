"""Whole public layers as files: GeoJSON, GeoPackage and CSV, each with its licence and date."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from commons_map.publish import service
from commons_map.publish.collections import Collection

FORMATS = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
}


def metadata(collection: Collection, *, licence: str, on: date | None = None) -> dict[str, str]:
    """What travels with every download: title, licence, date, source."""
    return {
        "title": f"{collection.title_fr} / {collection.title_en}",
        "description": collection.description_fr,
        "licence": licence,
        "date": (on or datetime.now(UTC).date()).isoformat(),
        "source": "commons-map",
    }


def write_geojson(session: Session, out: BinaryIO, *, collection: Collection, licence: str) -> int:
    """Write the layer as one GeoJSON FeatureCollection to ``out``, page by page as the database
    builds its features (only one page is held at a time); the number of bytes written."""
    meta = metadata(collection, licence=licence)
    head = json.dumps(
        {"type": "FeatureCollection", "name": collection.id, **meta}, ensure_ascii=False
    )
    written = out.write(head[:-1].encode() + b',"features":[')
    sep = b""
    for feat in service.all_features(session, collection=collection):
        written += out.write(sep + feat.encode())
        sep = b","
    return written + out.write(b"]}")


def geojson_bytes(session: Session, *, collection: Collection, licence: str) -> bytes:
    """The layer as one GeoJSON FeatureCollection (built by the database, feature by feature)."""
    buf = io.BytesIO()
    write_geojson(session, buf, collection=collection, licence=licence)
    return buf.getvalue()


def csv_bytes(session: Session, *, collection: Collection, licence: str) -> bytes:
    """The layer as CSV: one row per feature, the properties and the geometry as WKT (CRS84)."""
    import shapely

    names, rows = service.rows_for_export(session, collection=collection)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*names, "wkt"])
    for row in rows:
        *values, wkb = row
        geom = shapely.from_wkb(bytes(wkb)) if wkb is not None else None
        w.writerow([_cell(v) for v in values] + [geom.wkt if geom is not None else ""])
    return buf.getvalue().encode("utf-8")


def _cell(v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    return v


def gpkg_bytes(session: Session, *, collection: Collection, licence: str) -> bytes:
    """The layer as a GeoPackage (EPSG:4326), with licence and date in its metadata."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    names, rows = service.rows_for_export(session, collection=collection)
    df = pd.DataFrame([r[:-1] for r in rows], columns=names)
    for col in df.columns:
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, datetime)).any():
            df[col] = df[col].map(
                lambda v: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v
            )
            df[col] = pd.to_datetime(df[col])
        elif df[col].dtype == object and df[col].map(lambda v: isinstance(v, date)).any():
            df[col] = df[col].map(lambda v: v.isoformat() if isinstance(v, date) else v)
    geoms = [shapely.from_wkb(bytes(r[-1])) if r[-1] is not None else None for r in rows]
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")
    meta = metadata(collection, licence=licence)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{collection.id}.gpkg"
        gdf.to_file(
            path,
            driver="GPKG",
            layer=collection.id,
            engine="pyogrio",
            metadata={k.upper(): v for k, v in meta.items()},
            layer_options={
                "DESCRIPTION": f"{meta['title']} — licence {licence}, {meta['date']}",
                "IDENTIFIER": meta["title"],
            },
            promote_to_multi=False,
        )
        return path.read_bytes()


BUILDERS = {"geojson": geojson_bytes, "gpkg": gpkg_bytes, "csv": csv_bytes}


def export(session: Session, *, collection: Collection, fmt: str, licence: str) -> bytes:
    """The layer in a format of FORMATS."""
    return BUILDERS[fmt](session, collection=collection, licence=licence)
