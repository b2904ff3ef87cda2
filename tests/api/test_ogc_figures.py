"""The restored-land layer carries the soil feature's figures and the ledger's volunteer hours."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from commons_map.ledger.service import minutes_by_commons
from commons_map.publish import figures
from commons_map.register.models import Commons
from commons_map.soil.service import parcel_summaries
from commons_map.soil.status import STATUS_LABELS


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield
    figures.clear_cache()


def test_the_adapter_finds_both_features():
    assert figures.soil_available() and figures.ledger_available()
    assert set(figures.status_labels()) == set(STATUS_LABELS)


def test_restored_land_features_hold_the_soil_and_ledger_figures(client, db, people):
    summaries = parcel_summaries(db, cooperative_id=people.coop.id)
    minutes = minutes_by_commons(db, cooperative_id=people.coop.id)
    feats = client.get("/ogc/collections/restored_land/items?limit=1000").json()["features"]
    assert feats
    statuses = set()
    for f in feats:
        p = f["properties"]
        s = summaries.get(f["id"])
        status = s.status if s is not None else "no_data"
        statuses.add(status)
        assert p["status"] == status
        assert p["status_label_fr"] == STATUS_LABELS[status]["fr"]
        assert p["status_label_en"] == STATUS_LABELS[status]["en"]
        if s is not None and s.soc_stock_t_ha is not None:
            assert p["soc_stock_t_ha"] == pytest.approx(s.soc_stock_t_ha, abs=0.01)
        if s is not None and s.co2e_t_per_year is not None:
            assert p["co2e_t_per_year"] == pytest.approx(s.co2e_t_per_year, abs=0.001)
        if s is not None and s.harvest_kg_total:
            assert p["harvest_kg_total"] == pytest.approx(s.harvest_kg_total, abs=0.1)
        assert p["volunteer_hours"] == pytest.approx(minutes.get(f["id"], 0) / 60, abs=0.006)
    assert len(statuses) >= 2  # the demo has parcels in different states
    assert any(f["properties"]["volunteer_hours"] > 0 for f in feats)


def test_gardens_show_volunteer_hours_and_status_filter_works(client, db, people):
    minutes = minutes_by_commons(db, cooperative_id=people.coop.id)
    for f in client.get("/ogc/collections/gardens/items?limit=100").json()["features"]:
        assert f["properties"]["volunteer_hours"] == pytest.approx(
            minutes.get(f["id"], 0) / 60, abs=0.006
        )
    regenerating = client.get(
        "/ogc/collections/restored_land/items",
        params={"filter": "status = 'regenerating'", "limit": 100},
    ).json()["features"]
    assert regenerating and all(f["properties"]["status"] == "regenerating" for f in regenerating)


def test_tile_popups_get_the_same_figures(client, db):
    import mapbox_vector_tile

    from commons_map.publish.service import MERGE_MAX_ZOOM
    from tests.api.test_tiles import centre, tile_of

    # One feature per commons from the first zoom past the merged ones.
    z = MERGE_MAX_ZOOM + 1
    lon, lat, land_id = centre(db, "demo:land-0")
    item = client.get(f"/ogc/collections/restored_land/items/{land_id}").json()["properties"]
    x, y = tile_of(lon, lat, z)
    tile = client.get(f"/tiles/restored_land/{z}/{x}/{y}.mvt")
    served = {
        f["id"]: f["properties"]
        for f in mapbox_vector_tile.decode(tile.content)["restored_land"]["features"]
    }
    # Served tiles colour by the same status; their popups read the item itself.
    assert served[land_id]["status"] == item["status"]
    # The static export's tiles carry the figures for its popups: the same as the item's.
    from commons_map.publish import service
    from commons_map.publish.collections import COLLECTIONS

    static = service.tile(db, collection=COLLECTIONS["restored_land"], z=z, x=x, y=y, static=True)
    feats = {
        f["id"]: f["properties"]
        for f in mapbox_vector_tile.decode(static)["restored_land"]["features"]
    }
    props = feats[land_id]
    for key in (
        "status",
        "status_label_fr",
        "soc_stock_t_ha",
        "co2e_t_per_year",
        "volunteer_hours",
    ):
        if item[key] is None:
            assert key not in props or props[key] is None
        else:
            assert (
                props[key] == pytest.approx(item[key])
                if isinstance(item[key], float)
                else props[key] == item[key]
            )


def test_a_failing_figure_source_leaves_the_layer_working(client, monkeypatch):
    import commons_map.soil.service as soil

    def broken(session, *, cooperative_id, **kw):
        session.execute(select(Commons.id).limit(1))
        raise RuntimeError("soil sums failed")

    monkeypatch.setattr(soil, "parcel_summaries", broken)
    r = client.get("/ogc/collections/restored_land/items?limit=100")
    assert r.status_code == 200
    feats = r.json()["features"]
    assert feats and {f["properties"]["status"] for f in feats} == {"no_data"}
    assert any(f["properties"]["volunteer_hours"] > 0 for f in feats)  # the ledger still answered


def test_items_pages_bring_the_figures_table_up_to_date_at_most_once_a_second(client, db, monkeypatch):
    """An items page joins the figures table: it reads their digests (and rewrites stale ones) at
    most once a second per process, and again at once after the figures are forgotten."""
    from sqlalchemy import event

    engine = client.app.state.engine
    digest_reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.startswith("SELECT") and "publish_figures_digests" in statement:
            digest_reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        url = "/ogc/collections/restored_land/items?limit=5"
        for _ in range(3):
            assert client.get(url).status_code == 200
        assert len(digest_reads) == 1
        figures.clear_cache()
        assert client.get(url).status_code == 200
        assert len(digest_reads) == 2
        monkeypatch.setattr(figures, "SYNC_EVERY_S", 0.0)
        assert client.get(url).status_code == 200
        assert len(digest_reads) == 3
    finally:
        event.remove(engine, "before_cursor_execute", count)
