"""Public layers: low-zoom merged tiles precomputed per grid cell (``publish_merged``).

Revision ID: 0019_publish_merged
Revises: 0018_network_policies
Create Date: 2026-11-29

Cold merged tiles (zooms 0-13) read every public parcel under them: ~2 s at zooms 6-11 with
100,000 parcels. The merge now lives in a table, one row per collection, zoom, grid cell and
merge value, kept by statement-level triggers on the rows the public source reads
(``commons_map.publish.merged``): a change recomputes only the cells it touched.

Row-level security: the table is public data derived from public rows only (cells mix
cooperatives, so no cooperative owns a row): read by anyone, written by no one but the owner's
``SECURITY DEFINER`` functions the triggers call (``shared_policy`` without writers).

Also a partial GiST index of the point geometries: a merged tile still draws points one by one,
and finds them without reading the polygons under it.
"""
from alembic import op

from commons_map.publish.merged import DEFINERS, FUNCTIONS, TRIGGERS, refresh_function_sql
from commons_map.settings import get_settings
from commons_map.tenancy import policy_sql, shared_policy

revision = "0019_publish_merged"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = get_settings().app_role
    assert role.replace("_", "").isalnum(), role
    op.execute(
        "CREATE TABLE publish_merged (collection text NOT NULL, z smallint NOT NULL, cx integer NOT NULL,"
        " cy integer NOT NULL, mkey text NOT NULL, n integer NOT NULL, area double precision,"
        " x0 double precision NOT NULL, y0 double precision NOT NULL, x1 double precision NOT NULL,"
        " y1 double precision NOT NULL, PRIMARY KEY (collection, z, cx, cy, mkey))"
    )
    for statement in policy_sql("publish_merged", shared_policy("publish_merged")):
        op.execute(statement)
    op.execute(f'GRANT SELECT ON publish_merged TO "{role}"')
    op.execute(
        "CREATE INDEX ix_commons_point_geom ON commons USING gist (geom)"
        " WHERE GeometryType(geom) IN ('POINT', 'MULTIPOINT')"
    )
    op.execute(FUNCTIONS)
    op.execute(refresh_function_sql())
    op.execute(TRIGGERS)
    for fn in DEFINERS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
    op.execute("SELECT publish_merged_rebuild()")


def downgrade() -> None:
    for table in ("commons", "publish_figures", "commons_kinds", "cooperatives"):
        for name in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS publish_merged_{name} ON {table}")
    for fn in ("publish_merged_commons_changed()", "publish_merged_figures_changed()",
               "publish_merged_kinds_changed()", "publish_merged_cooperatives_changed()", *DEFINERS,
               "publish_cell_key(geometry)", "publish_cell_envelope(bigint)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP INDEX IF EXISTS ix_commons_point_geom")
    op.execute("DROP TABLE publish_merged")
