"""Reading geodata files into rows: GeoPackage, zipped shapefile, GeoJSON, KML/KMZ, FlatGeobuf, CSV.

Whatever the format, the result is a ``SourceTable``: the attribute columns as text, one
geometry per row already reprojected to WGS84 and flattened to 2D (as WKB), the problems found
per row while reading, and where the CRS came from. Reprojection is vectorised (pyproj through
geopandas); validity and the register's rules are checked later, set-based, in PostGIS.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from commons_map.errors import ValidationFailed
from commons_map.messages import Message, plain
from ingest.safety import LIMITS, Limits, remove_tree, safe_extract

VECTOR_SUFFIXES = {".gpkg": "GeoPackage", ".geojson": "GeoJSON", ".json": "GeoJSON",
                   ".fgb": "FlatGeobuf", ".kml": "KML", ".shp": "Shapefile"}
ARCHIVE_SUFFIXES = {".zip", ".kmz"}
CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
KML_DISPLAY = ("timestamp", "begin", "end", "altitudeMode", "tessellate", "extrude", "visibility",
               "drawOrder", "icon")
SUPPORTED = sorted({*VECTOR_SUFFIXES, *ARCHIVE_SUFFIXES, *CSV_SUFFIXES})

LAT_NAMES = ("lat", "latitude", "y", "lat_wgs84")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "lon_wgs84")
WKT_NAMES = ("wkt", "geom", "geometry", "the_geom", "wkt_geom", "geometrie")



PROBLEM_SEP = "\x1f"
"""Between the parts of a row's problem as the import carries it (``field``, code, JSON parameters):
one text, so the readers' problems and the SQL checks' travel in the same ``text[]`` column."""


def problem(field_name: str, code: str, **params: Any) -> str:
    """A row's problem: the field (a target such as ``kind``, or a column of the file), a message code
    and its parameters; rendered per language when reported (``read_problem``)."""
    return PROBLEM_SEP.join((field_name, code, json.dumps({k: plain(v) for k, v in params.items()},
                                                          ensure_ascii=False)))


def read_problem(stored: str) -> tuple[str, Message]:
    """``(field, message)`` of a problem written by :func:`problem` (or by the SQL checks, the same way)."""
    field_name, code, params = stored.split(PROBLEM_SEP, 2)
    return field_name, Message(code, json.loads(params))

@dataclass
class SourceTable:
    """Rows of a geodata file: text attributes, WGS84 2D geometries as WKB, per-row problems."""

    format: str
    columns: list[str]
    frame: pd.DataFrame
    wkb: list[bytes | None]
    row_numbers: list[int]
    row_label: str  # "feature" or "line"
    crs: str
    crs_note: str
    problems: dict[int, list[str]] = field(default_factory=dict)  # index -> reasons

    def __len__(self) -> int:
        return len(self.wkb)


def parse_crs(value: str, *, field_name: str = "crs") -> CRS:
    """A pyproj CRS from 'EPSG:2154', '2154', a WKT or a PROJ string."""
    text = value.strip()
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise ValidationFailed("ingest.unknown_crs", field=field_name, value=value, reason=str(exc)) from exc


def crs_name(crs: CRS) -> str:
    """'EPSG:2154' when it has a code, else the CRS's name."""
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


@contextmanager
def opened(path: Path, limits: Limits = LIMITS) -> Iterator[tuple[Path, str]]:
    """The path GDAL should read, after checking and extracting archives (KMZ, zipped shapefile)."""
    suffix = path.suffix.lower()
    if suffix not in ARCHIVE_SUFFIXES:
        yield path, suffix
        return
    tmp = Path(tempfile.mkdtemp(prefix="commons-ingest-"))
    try:
        files = safe_extract(path, tmp, limits)
        wanted = (".kml",) if suffix == ".kmz" else (".shp", ".gpkg", ".geojson", ".json", ".fgb", ".kml", ".csv")
        found = [f for f in files if f.suffix.lower() in wanted and not f.name.startswith("._")]
        if not found:
            raise ValidationFailed("ingest.archive_no_dataset", field="file", wanted=list(wanted))
        if len(found) > 1:
            names = sorted(f.relative_to(tmp).as_posix() for f in found)
            raise ValidationFailed("ingest.archive_several", field="file", names=names)
        yield found[0], found[0].suffix.lower()
    finally:
        remove_tree(tmp)


def read_source(path: Path, *, crs: str | None = None, layer: str | None = None,
                csv_columns: dict[str, str] | None = None, encoding: str | None = None,
                limits: Limits = LIMITS) -> SourceTable:
    """Read any supported file into a SourceTable in WGS84, or ValidationFailed saying why not.

    ``encoding`` is that of a shapefile's attributes (as ogr2ogr's ``-oo ENCODING=``) or of a CSV;
    without it a shapefile's .cpg decides, else its bytes (see :func:`shapefile_encoding`).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ValidationFailed("ingest.unsupported_format", field="file", name=path.name, formats=list(SUPPORTED))
    if encoding is not None:
        encoding = check_encoding(encoding)
    with opened(path, limits) as (real, real_suffix):
        if real_suffix in CSV_SUFFIXES:
            return read_csv(real, crs=crs, columns=csv_columns or {}, encoding=encoding)
        return read_vector(real, crs=crs, layer=layer, encoding=encoding)


def check_encoding(name: str) -> str:
    """The encoding's name as given, when Python knows it; ValidationFailed naming ``encoding`` if not."""
    value = name.strip()
    try:
        codecs.lookup(value)
    except LookupError as exc:
        raise ValidationFailed("ingest.unknown_encoding", field="encoding", value=name) from exc
    return value


def _sibling(path: Path, suffix: str) -> Path | None:
    """The file beside ``path`` with the same stem and ``suffix``, whatever the case of either."""
    for candidate in path.parent.iterdir():
        if candidate.stem == path.stem and candidate.suffix.lower() == suffix:
            return candidate
    return None


def shapefile_encoding(shp: Path) -> str | None:
    """How GDAL should decode a shapefile's texts: None to let it decide, else an encoding to pass.

    A .cpg file says it, and GDAL reads it. Without one, GDAL would take ISO-8859-1 (unless the
    DBF's language driver id says otherwise), which garbles the UTF-8 that most tools write now
    ("Églantiers" read as "Ã‰glantiers"). So the DBF's bytes are read: texts all ASCII need no
    choice; non-ASCII texts that are valid UTF-8 are UTF-8 (latin-1 text is hardly ever valid
    UTF-8); otherwise the language driver id, when set, decides (GDAL reads it); when it is not,
    the file is refused with the question of its encoding (``--encoding``), not guessed.
    """
    if _sibling(shp, ".cpg") is not None:
        return None
    dbf = _sibling(shp, ".dbf")
    if dbf is None:
        return None  # GDAL says what is missing
    data = dbf.read_bytes()
    if len(data) < 32:
        return None
    header_len = int.from_bytes(data[8:10], "little")
    names = b"".join(data[i:i + 11] for i in range(32, min(header_len, len(data)) - 31, 32)
                     if data[i] != 0x0D)
    texts = names + data[header_len:]
    if texts.isascii():
        return None
    try:
        texts.decode("utf-8")
    except UnicodeDecodeError:
        if data[29] != 0:  # the language driver id: GDAL decodes by it
            return None
        raise ValidationFailed("ingest.shapefile_encoding_unknown", field="encoding", name=shp.name) from None
    return "UTF-8"


def read_vector(path: Path, *, crs: str | None, layer: str | None, encoding: str | None = None) -> SourceTable:
    """A GDAL-readable vector file, through pyogrio."""
    fmt = VECTOR_SUFFIXES.get(path.suffix.lower(), path.suffix)
    if fmt == "Shapefile" and encoding is None:
        encoding = shapefile_encoding(path)
    elif fmt != "Shapefile":
        encoding = None  # GeoPackage, GeoJSON, FlatGeobuf and KML are UTF-8 by definition
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:  # noqa: BLE001 - GDAL's errors are many; each means "unreadable"
        raise ValidationFailed("ingest.gdal_unreadable", field="file", format=fmt, reason=str(exc)) from exc
    with_geom = [str(name) for name, gtype in layers if gtype is not None]
    if layer is not None:
        if layer not in [str(n) for n, _ in layers]:
            raise ValidationFailed("ingest.no_layer", field="layer", layer=layer, layers=[str(n) for n, _ in layers])
        chosen = [layer]
    elif fmt == "KML":
        chosen = with_geom or [str(layers[0][0])]  # KML folders are layers: take them all
    elif len(with_geom) == 1:
        chosen = with_geom
    elif not with_geom:
        raise ValidationFailed("ingest.no_geometry_layer", field="file")
    else:
        raise ValidationFailed("ingest.several_layers", field="layer", layers=with_geom)
    # pyogrio's raw reader: the attributes as arrays and the geometries as the file's WKB, with no
    # GeoDataFrame between; the WKB goes on to PostGIS as it is unless it must be reprojected or flattened.
    parts = []
    for name in chosen:
        try:
            meta, _fids, wkb, fields = pyogrio.raw.read(path, layer=name, encoding=encoding)
        except Exception as exc:  # noqa: BLE001
            raise ValidationFailed("ingest.layer_unreadable", field="file", layer=name, reason=str(exc)) from exc
        wkb = np.empty(0, dtype=object) if wkb is None else wkb  # a layer without geometry column
        parts.append((meta, wkb, pd.DataFrame(dict(zip([str(f) for f in meta["fields"]], fields, strict=True)),
                                              index=pd.RangeIndex(len(wkb)))))
    first_crs = parts[0][0]["crs"]  # KML's folders all share WGS84
    file_crs = CRS.from_user_input(first_crs) if first_crs else None
    if len(parts) == 1:
        wkb_in, attrs = parts[0][1], parts[0][2]
    else:
        wkb_in = np.concatenate([w for _, w, _ in parts])
        attrs = pd.concat([a for _, _, a in parts], ignore_index=True)
    source_crs, note = _choose_crs(file_crs, crs)
    try:
        geoms = shapely.from_wkb(wkb_in)
    except shapely.errors.GEOSException as exc:
        raise ValidationFailed("ingest.layer_unreadable", field="file", layer=", ".join(chosen),
                               reason=str(exc)) from exc
    if fmt == "KML":  # LIBKML's display fields are not attributes anyone mapped
        attrs = attrs.drop(columns=[c for c in KML_DISPLAY if c in attrs.columns])
    return _finish(fmt, attrs, geoms, source_crs, note, start=1, label="feature", wkb_in=wkb_in)


def _choose_crs(file_crs: CRS | None, given: str | None) -> tuple[CRS, str]:
    if file_crs is None and given is None:
        raise ValidationFailed("ingest.crs_unknown_in_file", field="crs")
    if given is None:
        assert file_crs is not None
        return file_crs, f"{crs_name(file_crs)} (read from the file)"
    chosen = parse_crs(given)
    if file_crs is None:
        return chosen, f"{crs_name(chosen)} (given; the file has none)"
    if CRS(file_crs) != chosen:
        return chosen, f"{crs_name(chosen)} (given; it overrides {crs_name(CRS(file_crs))} read from the file)"
    return chosen, f"{crs_name(chosen)} (read from the file)"


def _finish(fmt: str, attrs: pd.DataFrame, geoms: np.ndarray, source_crs: CRS, note: str,
            *, start: int, label: str, row_numbers: list[int] | None = None,
            problems: dict[int, list[str]] | None = None, wkb_in: np.ndarray | None = None) -> SourceTable:
    """Reproject to WGS84, flatten to 2D, check coordinates, and encode as WKB (all vectorised).

    ``wkb_in``: the geometries as the file gave them; sent on as they are when nothing changed them.
    """
    problems = dict(problems or {})
    n = len(geoms)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    for i in np.flatnonzero(~present):
        problems.setdefault(int(i), []).append(problem("geometry", "ingest.row_geometry_missing"))
    geoms = np.where(present, geoms, None)
    has_m = getattr(shapely, "has_m", None)
    if shapely.has_z(geoms).any() or (has_m is not None and has_m(geoms).any()):
        geoms = shapely.force_2d(geoms)  # rebuilds every geometry: only when some have Z or M
        wkb_in = None
    wgs84 = CRS.from_epsg(4326)
    if CRS(source_crs) != wgs84:
        wkb_in = None
        from pyproj import Transformer

        tr = Transformer.from_crs(source_crs, wgs84, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1], errcheck=False)))
    bounds = shapely.bounds(geoms)  # NaN for None
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(bounds).all(axis=1)
        in_range = (finite & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180)
                    & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    for i in np.flatnonzero(present & ~in_range):
        if not finite[i]:
            msg = problem("geometry", "ingest.row_not_reprojectable", crs=crs_name(source_crs))
        else:
            msg = problem("geometry", "ingest.row_out_of_range", crs=crs_name(source_crs),
                          lon=f"{bounds[i, 0]:.6g}", lat=f"{bounds[i, 1]:.6g}")
        problems.setdefault(int(i), []).append(msg)
    ok = present & in_range
    if wkb_in is not None:  # the file's own WKB, unchanged (2D, already WGS84)
        wkb: list[bytes | None] = np.where(ok, wkb_in, None).tolist()
    else:
        wkb = shapely.to_wkb(np.where(ok, geoms, None)).tolist()  # None where not ok
    text_attrs = attrs.astype(object).where(attrs.notna(), None)
    return SourceTable(
        format=fmt,
        columns=[str(c) for c in attrs.columns],
        frame=text_attrs,
        wkb=wkb,
        row_numbers=row_numbers or list(range(start, start + n)),
        row_label=label,
        crs=crs_name(source_crs),
        crs_note=note,
        problems=problems,
    )


# --- CSV ---------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _number(raw: str | None) -> float | None:
    """'44,6975' or '44.6975' or ' 5,19 ' as a float; None when not a number."""
    if raw is None:
        return None
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


_EWKT = re.compile(r"^\s*SRID=(\d+);(.*)$", re.S | re.I)


def read_csv(path: Path, *, crs: str | None, columns: dict[str, str], encoding: str | None = None) -> SourceTable:
    """A CSV with lat/lon or WKT columns; ';' or ',' or tab separated; decimal commas handled."""
    data = path.read_bytes()
    if encoding is None:
        text = _decode(data)
    else:
        try:  # a byte-order mark is not part of the first column's name
            text = data.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
        except UnicodeDecodeError as exc:
            raise ValidationFailed("ingest.not_in_encoding", field="encoding", encoding=encoding,
                                   offset=exc.start) from exc
    head = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=head.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    cols = [c for c in (reader.fieldnames or [])]
    if not cols:
        raise ValidationFailed("ingest.csv_no_header", field="file")
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    for row in reader:
        if None in row:
            row.pop(None)  # type: ignore[arg-type]
        if not any((v or "").strip() for v in row.values()):
            continue
        rows.append(row)
        lines.append(reader.line_num)
    lat_col = columns.get("lat") or _find(cols, LAT_NAMES)
    lon_col = columns.get("lon") or _find(cols, LON_NAMES)
    wkt_col = columns.get("wkt") or _find(cols, WKT_NAMES)
    for key, col in (("lat", columns.get("lat")), ("lon", columns.get("lon")), ("wkt", columns.get("wkt"))):
        if col and col not in cols:
            raise ValidationFailed("ingest.no_column", field=key, column=col, columns=cols)
    problems: dict[int, list[str]] = {}
    geoms: list[object] = []
    srids: set[str] = set()
    use_wkt = wkt_col is not None and not ("lat" in columns or "lon" in columns)
    if not use_wkt and not (lat_col and lon_col):
        raise ValidationFailed("ingest.csv_no_position", field="file", columns=cols)
    for i, row in enumerate(rows):
        if use_wkt:
            raw = (row.get(wkt_col) or "").strip()
            m = _EWKT.match(raw)
            if m:
                srids.add(m.group(1))
                raw = m.group(2)
            try:
                geoms.append(shapely.from_wkt(raw) if raw else None)
            except shapely.errors.GEOSException as exc:
                geoms.append(None)
                problems.setdefault(i, []).append(problem(wkt_col, "ingest.row_wkt", error=str(exc)))
                continue
        else:
            lat, lon = _number(row.get(lat_col)), _number(row.get(lon_col))
            bad = False
            for col, val in ((lat_col, lat), (lon_col, lon)):
                if val is None:
                    problems.setdefault(i, []).append(problem(col, "ingest.row_not_a_number", value=repr(row.get(col))))
                    bad = True
            geoms.append(None if bad else shapely.Point(lon, lat))
    if use_wkt:
        if len(srids) > 1:
            raise ValidationFailed("ingest.mixed_srids", field="crs", srids=sorted(srids))
        if srids and crs is None:
            source, note = parse_crs(srids.pop()), "from the SRID= prefix of the WKT"
            note = f"{crs_name(source)} ({note})"
        else:
            source, note = _choose_crs(None, crs)
    elif crs is None:
        source = CRS.from_epsg(4326)
        note = f"EPSG:4326 (longitude/latitude columns {lon_col!r}/{lat_col!r}: GPS degrees)"
    else:
        source, note = _choose_crs(None, crs)
    geo_cols = {c for c in (lat_col, lon_col, wkt_col) if c}
    attrs = pd.DataFrame([{k: v for k, v in r.items() if k not in geo_cols} for r in rows],
                         columns=[c for c in cols if c not in geo_cols])
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    # Rows whose geometry could not be read must not be reported again as "missing".
    table = _finish("CSV", attrs, arr, source, note, start=2, label="line", row_numbers=lines, problems={})
    for i, reasons in problems.items():
        table.problems[i] = reasons
    return table
