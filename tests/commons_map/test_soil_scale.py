"""Parcel summaries over more parcels than PostgreSQL takes parameters in one statement."""

from __future__ import annotations

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy.orm import Session

from commons_map.db import make_engine
from commons_map.demo.synth import load_synthetic
from commons_map.geo import to_ewkt
from commons_map.people.models import Cooperative
from commons_map.soil.service import parcel_summaries


def test_summaries_for_more_than_65535_parcels(fresh_database):
    engine = make_engine(url=fresh_database())
    try:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            coop = Cooperative(slug="big", name="Grande coopérative",
                               territory=to_ewkt(MultiPolygon([
                                   Polygon([(5, 44.5), (5.3, 44.5), (5.3, 44.8), (5, 44.8)])])))
            s.add(coop)
        load_synthetic(engine, coop, 66_000)
        with Session(engine) as s:
            summaries = parcel_summaries(s, cooperative_id=coop.id)
        assert len(summaries) == 66_000
        assert {x.status for x in summaries.values()} == {"no_data"}
    finally:
        engine.dispose()
