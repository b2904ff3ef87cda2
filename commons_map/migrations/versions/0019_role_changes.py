"""Four eyes on roles: granting or taking back the coordinator role is a request that another
coordinator approves (table role_changes, one pending request per member and role), with its
row-level security.

Revision ID: 0019_role_changes
Revises: 0018_network_policies
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from commons_map.tenancy import coop_policy, enable_policies

revision = "0019_role_changes"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "role_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cooperative_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("requested_by", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint("action IN ('grant', 'revoke')", name=op.f("ck_role_changes_action")),
        sa.CheckConstraint("state IN ('pending', 'applied', 'refused', 'withdrawn')",
                           name=op.f("ck_role_changes_state")),
    )
    op.create_index(op.f("ix_role_changes_cooperative_id"), "role_changes", ["cooperative_id"])
    op.create_index(op.f("ix_role_changes_member_id"), "role_changes", ["member_id"])
    op.create_index("uq_role_changes_pending", "role_changes", ["member_id", "role"], unique=True,
                    postgresql_where=sa.text("state = 'pending'"))
    enable_policies(op.execute, {"role_changes": coop_policy("role_changes")})


def downgrade() -> None:
    op.drop_table("role_changes")
