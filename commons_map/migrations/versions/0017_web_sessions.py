"""Browser sessions are kept on the server: signing out ends a session for good (a copy of the
cookie taken before is refused), and a member's sessions end when they are retired or change
their password. Cookies from before this revision are not in the table: members sign in once more.

Revision ID: 0017_web_sessions
Revises: 0007_security
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_web_sessions"
down_revision = "0007_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_web_sessions",
        sa.Column("sid_hash", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_member_web_sessions_member_id_members")),
        sa.PrimaryKeyConstraint("sid_hash", name=op.f("pk_member_web_sessions")),
    )
    op.create_index(op.f("ix_member_web_sessions_member_id"), "member_web_sessions", ["member_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_member_web_sessions_member_id"), table_name="member_web_sessions")
    op.drop_table("member_web_sessions")
