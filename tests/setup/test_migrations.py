"""Migrations: every head applies on an empty database, and they go down and up again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from commons_map.migrate import alembic_config, upgrade


def test_downgrade_to_base_and_upgrade_again(fresh_database):
    url = fresh_database()
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            kinds = c.execute(text("SELECT count(*) FROM commons_kinds")).scalar()
            tables = set(inspect(c).get_table_names())
        assert kinds >= 12, "the kinds of commons are seeded by the migration"
        assert {"commons", "members", "cooperatives", "commons_history"} <= tables
        command.downgrade(alembic_config(url), "base")
        with engine.connect() as c:
            left = set(inspect(c).get_table_names()) - {"spatial_ref_sys", "alembic_version"}
        assert left == set(), f"downgrade left tables behind: {left}"
        upgrade(url)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM commons_kinds")).scalar() == kinds
    finally:
        engine.dispose()


def test_the_spatial_index_exists_once(engine):
    """One GiST index over every geometry (GeoAlchemy2 and a migration once both made one), and
    beside it only the partial one over points that the merged map tiles read (0019_publish_merged)."""
    with engine.connect() as c:
        idx = c.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'commons' AND indexdef ILIKE '%gist%geom%'"
        )).scalars().all()
    whole = [i for i in idx if " WHERE " not in i]
    partial = [i for i in idx if " WHERE " in i]
    assert len(whole) == 1, idx
    assert len(partial) == 1 and "ix_commons_point_geom" in partial[0] and "POINT" in partial[0], idx

