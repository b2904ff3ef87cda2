"""Public layers: a small partial index for the rows whose public geometry is derived.

Revision ID: 0006_publish
Revises: 0001_register
Create Date: 2026-11-27

The public source (commons_map/publish/sql.py) is a UNION ALL: commons with their own exact
geometry (found through the GiST index on ``geom``), and the few whose public geometry is
derived (kept at a place, or marked approximate). Without this index the second branch scans
the whole commons table on every page and tile; with it, it reads a handful of rows.
"""
from alembic import op

revision = "0006_publish"
down_revision = "0001_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_commons_public_derived ON commons (id)"
        " WHERE visibility = 'public' AND archived_at IS NULL"
        " AND (geom IS NULL OR location_precision = 'approximate')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_commons_public_derived")
