"""Public layers: the figures of each public parcel in a table the map queries join.

Revision ID: 0008_publish_figures
Revises: 0006_publish
Create Date: 2026-11-27

The figures (regeneration status, carbon, harvests, volunteer hours) come from the soil and
ledger features and are computed in Python, kept five minutes. They used to reach every items
page and tile as one JSON parameter, which PostgreSQL parsed on every request: 1.3 s for 100,000
parcels, even for an empty tile. They are now written here when they change (a digest per
cooperative says which version the table holds) and joined by commons id.

UNLOGGED: this is a cache. After a crash PostgreSQL empties it, the digests go with it, and the
next request writes the figures again.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_publish_figures"
down_revision = "0006_publish"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publish_figures",
        sa.Column("commons_id", sa.Integer, primary_key=True),
        sa.Column("cooperative_id", sa.Integer, nullable=False, index=True),
        sa.Column("status", sa.Text),
        sa.Column("status_label_fr", sa.Text),
        sa.Column("status_label_en", sa.Text),
        sa.Column("soc_stock_t_ha", sa.Float(53)),
        sa.Column("soc_change_t_ha_per_year", sa.Float(53)),
        sa.Column("co2e_t_per_year", sa.Float(53)),
        sa.Column("basis", sa.Text),
        sa.Column("harvest_kg_total", sa.Float(53)),
        sa.Column("last_sampled", sa.Date),
        sa.Column("volunteer_hours", sa.Float(53)),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "publish_figures_digests",
        sa.Column("cooperative_id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("publish_figures_digests")
    op.drop_table("publish_figures")
