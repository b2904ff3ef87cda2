"""Public layers: the figures table is logged, so a streaming replica holds it too.

Revision ID: 0012_replica_figures_logged
Revises: 0008_publish_figures
Create Date: 2026-11-29

The public reads may go to a streaming replica (``COMMONS_DATABASE_REPLICA_URL``,
``commons_map.replica``), and every items page and tile of the restored land joins
``publish_figures``. An UNLOGGED table writes no WAL, so a replica has none of its rows and refuses
to read it ("cannot access temporary or unlogged relations during recovery"). Logged, it costs
the WAL of one cooperative's figures when they change (at most every five minutes, a few hundred
bytes a parcel), and it survives a crash like the rest.
"""
from alembic import op

revision = "0012_replica_figures_logged"
down_revision = "0008_publish_figures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE publish_figures SET LOGGED")
    op.execute("ALTER TABLE publish_figures_digests SET LOGGED")


def downgrade() -> None:
    op.execute("ALTER TABLE publish_figures_digests SET UNLOGGED")
    op.execute("ALTER TABLE publish_figures SET UNLOGGED")
