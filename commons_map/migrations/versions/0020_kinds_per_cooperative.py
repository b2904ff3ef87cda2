"""Coordinators add kinds of commons for their cooperative: a kind has a cooperative (none for the
shipped kinds, which are everyone's). Everyone reads every kind (the public map names the kind of a
public commons); a cooperative writes only its own.

Revision ID: 0020_kinds_per_cooperative
Revises: 0018_network_policies
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from commons_map.tenancy import COOP

revision = "0020_kinds_per_cooperative"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("commons_kinds", sa.Column("cooperative_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_commons_kinds_cooperative_id_cooperatives"), "commons_kinds", "cooperatives",
                          ["cooperative_id"], ["id"])
    op.create_index(op.f("ix_commons_kinds_cooperative_id"), "commons_kinds", ["cooperative_id"])
    op.execute("DROP POLICY IF EXISTS shared_write ON commons_kinds")
    own = f"cooperative_id = {COOP}"
    op.execute(f"CREATE POLICY tenant ON commons_kinds USING ({own}) WITH CHECK ({own})")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS tenant ON commons_kinds")
    op.execute(f"CREATE POLICY shared_write ON commons_kinds USING ({COOP} IS NOT NULL)"
               f" WITH CHECK ({COOP} IS NOT NULL)")
    op.drop_index(op.f("ix_commons_kinds_cooperative_id"), table_name="commons_kinds")
    op.drop_constraint(op.f("fk_commons_kinds_cooperative_id_cooperatives"), "commons_kinds", type_="foreignkey")
    op.drop_column("commons_kinds", "cooperative_id")
