"""Notifications: the outbox, e-mail deliveries, members' preferences and digest hour.

Revision ID: 0011_notify
Revises: 0001_register
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_notify"
down_revision = "0001_register"
branch_labels = None
depends_on = None

STATES = "('pending', 'sending', 'sent', 'failed', 'bounced', 'held')"


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("dedupe", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_notifications_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_notifications_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("member_id", "dedupe", name="uq_notifications_member_dedupe"),
    )
    op.create_index(op.f("ix_notifications_cooperative_id"), "notifications", ["cooperative_id"])
    op.create_index(op.f("ix_notifications_member_id"), "notifications", ["member_id"])
    op.create_index("ix_notifications_member_unread", "notifications", ["member_id"],
                    postgresql_where=sa.text("read_at IS NULL"))
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("digest_day", sa.Date(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_deliveries_state")),
        sa.CheckConstraint("(notification_id IS NULL) <> (digest_day IS NULL)", name=op.f("ck_deliveries_one_subject")),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE",
                                name=op.f("fk_deliveries_notification_id_notifications")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_deliveries_member_id_members")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_deliveries_cooperative_id_cooperatives")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("notification_id", "address", name="uq_deliveries_notification_address"),
        sa.UniqueConstraint("member_id", "digest_day", "address", name="uq_deliveries_digest_address"),
    )
    op.create_index(op.f("ix_deliveries_member_id"), "deliveries", ["member_id"])
    op.create_index(op.f("ix_deliveries_cooperative_id"), "deliveries", ["cooperative_id"])
    op.create_index("ix_deliveries_due", "deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("state IN ('pending', 'held')"))
    op.create_foreign_key(op.f("fk_notifications_digest_id_deliveries"), "notifications", "deliveries",
                          ["digest_id"], ["id"], ondelete="SET NULL")
    op.create_table(
        "notification_preferences",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.CheckConstraint("channel IN ('inbox', 'email', 'digest')", name=op.f("ck_notification_preferences_channel")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_notification_preferences_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", "kind", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "notify_settings",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("digest_hour", sa.SmallInteger(), server_default="18", nullable=False),
        sa.CheckConstraint("digest_hour BETWEEN 0 AND 23", name=op.f("ck_notify_settings_digest_hour")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE",
                                name=op.f("fk_notify_settings_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_notify_settings")),
    )


def downgrade() -> None:
    op.drop_table("notify_settings")
    op.drop_table("notification_preferences")
    op.drop_constraint(op.f("fk_notifications_digest_id_deliveries"), "notifications", type_="foreignkey")
    op.drop_table("deliveries")
    op.drop_table("notifications")
