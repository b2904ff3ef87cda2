"""Field forms: members' field tokens, submissions (raw bytes, SHA-256, instanceID unique per form)
and their attachments.

Revision ID: 0005_fieldforms
Revises: 0001_register
Create Date: 2026-11-27

Written by hand. The uniqueness of (form_id, instance_id) is what makes concurrent resends from
phones land as exactly one row; the partial unique index on (form_id, deprecated_id) makes two
concurrent edits of the same version collide instead of both replacing it.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_fieldforms"
down_revision = "0001_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_field_tokens_member_id_members"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_id"], ["members.id"], name=op.f("fk_field_tokens_created_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_field_tokens_token_hash")),
    )
    op.create_index(op.f("ix_field_tokens_member_id"), "field_tokens", ["member_id"], unique=False)

    op.create_table(
        "field_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("form_id", sa.Text(), nullable=False),
        sa.Column("form_version", sa.Text(), server_default="", nullable=False),
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("deprecated_id", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), server_default="openrosa", nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="received", nullable=False),
        sa.Column("records", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('incomplete', 'received', 'processed', 'rejected', 'superseded')",
            name=op.f("ck_field_submissions_status"),
        ),
        sa.CheckConstraint(
            "source IN ('openrosa', 'central_csv', 'kobo_csv', 'geojson')",
            name=op.f("ck_field_submissions_source"),
        ),
        sa.CheckConstraint("instance_id <> ''", name=op.f("ck_field_submissions_instance_id")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"], name=op.f("fk_field_submissions_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_field_submissions_member_id_members")),
        sa.ForeignKeyConstraint(["superseded_by_id"], ["field_submissions.id"], name=op.f("fk_field_submissions_superseded_by_id_field_submissions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_submissions")),
        sa.UniqueConstraint("form_id", "instance_id", name="uq_field_submissions_instance"),
    )
    op.create_index(op.f("ix_field_submissions_member_id"), "field_submissions", ["member_id"], unique=False)
    op.create_index("ix_field_submissions_coop_form", "field_submissions", ["cooperative_id", "form_id"], unique=False)
    op.create_index(
        "uq_field_submissions_deprecated", "field_submissions", ["form_id", "deprecated_id"], unique=True,
        postgresql_where=sa.text("deprecated_id IS NOT NULL"),
    )

    op.create_table(
        "field_submission_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["field_submissions.id"], name=op.f("fk_field_submission_attachments_submission_id_field_submissions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_submission_attachments")),
        sa.UniqueConstraint("submission_id", "name", name="uq_field_attachments_name"),
    )
    op.create_index(
        op.f("ix_field_submission_attachments_submission_id"), "field_submission_attachments", ["submission_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_field_submission_attachments_submission_id"), table_name="field_submission_attachments")
    op.drop_table("field_submission_attachments")
    op.drop_index("uq_field_submissions_deprecated", table_name="field_submissions")
    op.drop_index("ix_field_submissions_coop_form", table_name="field_submissions")
    op.drop_index(op.f("ix_field_submissions_member_id"), table_name="field_submissions")
    op.drop_table("field_submissions")
    op.drop_index(op.f("ix_field_tokens_member_id"), table_name="field_tokens")
    op.drop_table("field_tokens")
