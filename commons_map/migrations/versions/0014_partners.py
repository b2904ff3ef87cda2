"""Partners: other OGC API - Features servers whose public layers join a cooperative's public map.

Revision ID: 0014_partners
Revises: 0001_register
Create Date: 2026-11-29

``partners`` is what a coordinator listed (the landing page URL, a name, a licence, a link) and
how the last fetch went (status, error code and parameters, when). ``partner_layers`` is the
cached copy of each public collection, as validated GeoJSON the public map reads from our own
server: a partner that is down or slow never slows the map.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014_partners"
down_revision = "0001_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cooperative_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("error_code", sa.Text()),
        sa.Column("error_params", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.Column("fetched_at", sa.DateTime(timezone=True)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("cooperative_id", "url", name="uq_partners_cooperative_url"),
        sa.CheckConstraint("status IN ('pending', 'ok', 'unavailable')", name="ck_partners_status"),
    )
    op.create_index("ix_partners_cooperative_id", "partners", ["cooperative_id"])
    op.create_table(
        "partner_layers",
        sa.Column("partner_id", sa.Integer(), sa.ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("collection_id", sa.Text(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=False),
        sa.Column("feature_count", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("geojson", sa.LargeBinary(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partner_layers")
    op.drop_index("ix_partners_cooperative_id", table_name="partners")
    op.drop_table("partners")
