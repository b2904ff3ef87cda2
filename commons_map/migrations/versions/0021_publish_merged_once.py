"""Public layers: the set-by-set refresh of ``publish_merged`` computes each cell key once.

Revision ID: 0021_publish_merged_once
Revises: 0019_publish_merged
Create Date: 2026-11-29

``publish_merged_refresh`` made again from ``commons_map.publish.merged`` (the same rows): when
many cells change (an import), the public rows are read once for every merged layer (was once per
layer), the subquery that reads them is kept whole (its cell key, two logarithms and tangents a
row, was computed again for the hash, the sort and each output column), and the cells' extent is
one envelope of the extreme cells (not one reprojected envelope per cell). A rebuild over 100,000
parcels: 2.36-2.66 s of the database's CPU before, 1.91-1.98 s after (alternated, load 4-7); the
rows compared equal, all 164,302 of them.
"""
from alembic import op

from commons_map.publish.merged import refresh_function_sql

revision = "0021_publish_merged_once"
down_revision = "0019_publish_merged"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(refresh_function_sql())


def downgrade() -> None:
    # The former function made the same rows; 0019_publish_merged's downgrade drops it.
    pass
