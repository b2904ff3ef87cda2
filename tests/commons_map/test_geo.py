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
    ("geometry", "code", "fragment"),
    [
        ({"type": "Polygon",
          "coordinates": [[[5.19, 44.69], [5.191, 44.691], [5.191, 44.69], [5.19, 44.691], [5.19, 44.69]]]},
         "register.geometry_invalid", "Self-intersection"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "register.ring_not_closed", "is not closed"),
        ({"type": "Polygon", "coordinates": [[[5.19, 44.69], [5.191, 44.69], [5.19, 44.69]]]},
         "register.ring_too_short", "at least 4"),
        ({"type": "Point", "coordinates": [200.0, 44.0]}, "register.longitude_range", "Longitude 200"),
        ({"type": "Point", "coordinates": [5.0, 95.0]}, "register.latitude_range", "Latitude 95"),
        ({"type": "Point", "coordinates": [5.0]}, "register.position_form", "must be [longitude, latitude]"),
        ({"type": "Point", "coordinates": ["5", 44]}, "register.position_not_number", "not a finite number"),
        ({"type": "Circle", "coordinates": [5, 44]}, "register.geometry_type", "Unknown geometry type Circle"),
        ("POINT(5 44)", "register.geometry_not_object", "Must be a GeoJSON geometry object"),
        ({"type": "Polygon", "coordinates": []}, "register.coordinates_empty", "non-empty array"),
    ],
)
def test_bad_geometries_are_refused_with_a_reason(geometry, code, fragment):
    with pytest.raises(ValidationFailed) as err:
        parse_geojson_geometry(geometry)
    assert err.value.field == "geometry"
    assert err.value.code == code
    assert fragment in err.value.message
    assert err.value.text("fr") != err.value.text("en")


def test_geometry_class_names_the_kind():
    point = parse_geojson_geometry({"type": "Point", "coordinates": [5.19, 44.69]})
    with pytest.raises(ValidationFailed, match="A garden needs a Polygon or MultiPolygon, not a Point") as err:
        check_geometry_class(point, "area", "garden")
    assert err.value.code == "register.needs_area" and err.value.params["kind"] == "garden"
    square = parse_geojson_geometry({"type": "Polygon", "coordinates": [SQUARE]})
    with pytest.raises(ValidationFailed, match="A tool needs a Point"):
        check_geometry_class(square, "point", "tool")
    check_geometry_class(square, "any", "building")
