"""Geometry checks on the way in: each bad shape is refused with the field and the reason."""

import pytest

from commons_map.errors import ValidationFailed
from commons_map.geo import check_geometry_class, parse_geojson_geometry

SQUARE = [[5.19, 44.69], [5.191, 44.69], [5.191, 44.691], [5.19, 44.691], [5.19, 44.69]]


def test_valid_polygon_is_parsed():
    geom = parse_geojson_geometry({"type": "Polygon", "coordinates": [SQUARE]})
    assert geom.geom_type == "Polygon"
    assert geom.is_valid


@pytest.mark.parametrize(
    ("geometry", "fragment"),
    [
        ({"type": "Polygon",
          "coordinates": [[[5.19, 44.69], [5.191, 44.691], [5.191, 44.69], [5.19, 44.691], [5.19, 44.69]]]},
         "invalid geometry: Self-intersection"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "is not closed"),
        ({"type": "Polygon", "coordinates": [[[5.19, 44.69], [5.191, 44.69], [5.19, 44.69]]]}, "at least 4"),
        ({"type": "Point", "coordinates": [200.0, 44.0]}, "longitude 200.0"),
        ({"type": "Point", "coordinates": [5.0, 95.0]}, "latitude 95.0"),
        ({"type": "Point", "coordinates": [5.0]}, "must be [longitude, latitude]"),
        ({"type": "Point", "coordinates": ["5", 44]}, "not a finite number"),
        ({"type": "Circle", "coordinates": [5, 44]}, "unknown geometry type 'Circle'"),
        ("POINT(5 44)", "must be a GeoJSON geometry object"),
        ({"type": "Polygon", "coordinates": []}, "non-empty array"),
    ],
)
def test_bad_geometries_are_refused_with_a_reason(geometry, fragment):
    with pytest.raises(ValidationFailed) as err:
        parse_geojson_geometry(geometry)
    assert err.value.field == "geometry"
    assert fragment in err.value.message


def test_geometry_class_names_the_kind():
    point = parse_geojson_geometry({"type": "Point", "coordinates": [5.19, 44.69]})
    with pytest.raises(ValidationFailed, match="a garden needs a Polygon or MultiPolygon, not a Point"):
        check_geometry_class(point, "area", "garden")
    square = parse_geojson_geometry({"type": "Polygon", "coordinates": [SQUARE]})
    with pytest.raises(ValidationFailed, match="a tool needs a Point"):
        check_geometry_class(square, "point", "tool")
    check_geometry_class(square, "any", "building")
