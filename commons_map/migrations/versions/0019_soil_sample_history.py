"""Soil samples are corrected and withdrawn through the API, with their history (issue 18 item 1):
a withdrawn sample stays (who, when, why) but leaves the figures; a correction keeps the former
values in ``soil_sample_history``, seen by the cooperative's members only.

Revision ID: 0019_soil_sample_history
Revises: 0018_network_policies
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from commons_map.tenancy import coop_policy, enable_policies

revision = "0019_soil_sample_history"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("soil_samples", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("soil_samples", sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
    op.add_column("soil_samples", sa.Column("withdrawn_reason", sa.Text(), server_default="", nullable=False))
    op.create_foreign_key(op.f("fk_soil_samples_withdrawn_by_id_members"), "soil_samples", "members",
                          ["withdrawn_by_id"], ["id"])
    op.create_table(
        "soil_sample_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("action IN ('corrected', 'withdrawn')", name=op.f("ck_soil_sample_history_action")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_soil_sample_history_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["sample_id"], ["soil_samples.id"], ondelete="CASCADE",
                                name=op.f("fk_soil_sample_history_sample_id_soil_samples")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_soil_sample_history_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_soil_sample_history")),
    )
    op.create_index(op.f("ix_soil_sample_history_sample_id"), "soil_sample_history", ["sample_id"])
    enable_policies(op.execute, {"soil_sample_history": coop_policy("soil_sample_history")})


def downgrade() -> None:
    op.drop_table("soil_sample_history")
    op.drop_constraint(op.f("fk_soil_samples_withdrawn_by_id_members"), "soil_samples", type_="foreignkey")
    for col in ("withdrawn_reason", "withdrawn_by_id", "withdrawn_at"):
        op.drop_column("soil_samples", col)
