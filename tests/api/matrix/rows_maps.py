"""Access-matrix rows of the public map's own pages (api/routers/maps.py)."""

from __future__ import annotations

from tests.api.test_access_matrix import PUBLIC_LAYER, Row, every

ROWS = [
    # A public parcel's page: anyone, signed in or not; never a member's name or a hidden commons.
    Row("GET", "/maps/parcels/{commons_id}", every(200), url="/maps/parcels/{public}", hidden=PUBLIC_LAYER),
]
