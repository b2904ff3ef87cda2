"""Reservations: booking rules, bookings and maintenance periods, waiting list, calendar tokens.

Revision ID: 0003_reservations
Revises: 0001_register
Create Date: 2026-11-27

Written by hand. The heart of it is the exclusion constraint ``ex_reservations_no_overlap``:
no two active rows (requested, confirmed, checked_out, maintenance) of one resource may have
overlapping ``[starts_at, blocked_until)`` ranges, where ``blocked_until`` is the end plus the
buffer after the booking (NULL for an open-ended maintenance period: an unbounded range).
It needs btree_gist (for ``resource_id WITH =``), created by 0001_register.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_reservations"
down_revision = "0001_register"
branch_labels = None
depends_on = None

STATES = "('requested', 'confirmed', 'checked_out', 'returned', 'cancelled', 'no_show', 'refused', 'maintenance', 'cleared')"
ACTIVE = "state IN ('requested', 'confirmed', 'checked_out', 'maintenance')"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "resource_rules",
        sa.Column("commons_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("booking_mode", sa.Text(), server_default="members", nullable=False),
        sa.Column("min_minutes", sa.Integer(), server_default="30", nullable=False),
        sa.Column("max_minutes", sa.Integer(), server_default="4320", nullable=False),
        sa.Column("max_days_ahead", sa.Integer(), server_default="60", nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_active_per_member", sa.Integer(), server_default="2", nullable=False),
        sa.Column("opening_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("contribution_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("offer_hours", sa.Integer(), server_default="24", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("booking_mode IN ('members', 'approval')", name=op.f("ck_resource_rules_booking_mode")),
        sa.CheckConstraint("min_minutes >= 1 AND max_minutes >= min_minutes", name=op.f("ck_resource_rules_durations")),
        sa.CheckConstraint("max_days_ahead >= 0", name=op.f("ck_resource_rules_horizon")),
        sa.CheckConstraint("buffer_minutes >= 0", name=op.f("ck_resource_rules_buffer")),
        sa.CheckConstraint("max_active_per_member >= 1", name=op.f("ck_resource_rules_cap")),
        sa.CheckConstraint("contribution_minutes >= 0", name=op.f("ck_resource_rules_contribution")),
        sa.CheckConstraint("offer_hours >= 1", name=op.f("ck_resource_rules_offer_hours")),
        sa.ForeignKeyConstraint(["commons_id"], ["commons.id"], name=op.f("fk_resource_rules_commons_id_commons"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by"], ["members.id"], name=op.f("fk_resource_rules_updated_by_members")),
        sa.PrimaryKeyConstraint("commons_id", name=op.f("pk_resource_rules")),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), server_default="booking", nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        _ts("starts_at", nullable=False),
        _ts("ends_at"),
        _ts("blocked_until"),
        sa.Column("buffer_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("purpose", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        _ts("decided_at"),
        sa.Column("decision_note", sa.Text(), server_default="", nullable=False),
        _ts("checked_out_at"),
        sa.Column("checked_out_by", sa.Integer(), nullable=True),
        sa.Column("checkout_notes", sa.Text(), server_default="", nullable=False),
        _ts("returned_at"),
        sa.Column("returned_by", sa.Integer(), nullable=True),
        sa.Column("return_notes", sa.Text(), server_default="", nullable=False),
        sa.Column("damaged", sa.Boolean(), server_default="false", nullable=False),
        _ts("cancelled_at"),
        sa.Column("cancelled_by", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("caused_by_id", sa.Integer(), nullable=True),
        sa.Column("contribution_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("contribution_transfer_id", sa.Integer(), nullable=True),
        sa.Column("refund_transfer_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_reservations_state")),
        sa.CheckConstraint("kind IN ('booking', 'maintenance')", name=op.f("ck_reservations_kind")),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name=op.f("ck_reservations_positive_length")),
        sa.CheckConstraint(
            "(ends_at IS NULL AND blocked_until IS NULL) OR blocked_until >= ends_at",
            name=op.f("ck_reservations_buffer_after"),
        ),
        sa.CheckConstraint(
            "(kind = 'booking' AND member_id IS NOT NULL AND ends_at IS NOT NULL"
            " AND state NOT IN ('maintenance', 'cleared'))"
            " OR (kind = 'maintenance' AND state IN ('maintenance', 'cleared', 'cancelled'))",
            name=op.f("ck_reservations_kind_fits"),
        ),
        sa.ForeignKeyConstraint(["resource_id"], ["commons.id"], name=op.f("fk_reservations_resource_id_commons"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_reservations_member_id_members")),
        sa.ForeignKeyConstraint(["created_by"], ["members.id"], name=op.f("fk_reservations_created_by_members")),
        sa.ForeignKeyConstraint(["decided_by"], ["members.id"], name=op.f("fk_reservations_decided_by_members")),
        sa.ForeignKeyConstraint(["checked_out_by"], ["members.id"], name=op.f("fk_reservations_checked_out_by_members")),
        sa.ForeignKeyConstraint(["returned_by"], ["members.id"], name=op.f("fk_reservations_returned_by_members")),
        sa.ForeignKeyConstraint(["cancelled_by"], ["members.id"], name=op.f("fk_reservations_cancelled_by_members")),
        sa.ForeignKeyConstraint(["caused_by_id"], ["reservations.id"], name=op.f("fk_reservations_caused_by_id_reservations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    # The guarantee: no two active rows of one resource overlap, buffers included.
    op.execute(
        "ALTER TABLE reservations ADD CONSTRAINT ex_reservations_no_overlap"
        " EXCLUDE USING gist (resource_id WITH =, tstzrange(starts_at, blocked_until, '[)') WITH &&)"
        f" WHERE ({ACTIVE})"
    )
    op.create_index("ix_reservations_member_state", "reservations", ["member_id", "state"])
    op.create_index("ix_reservations_resource_starts", "reservations", ["resource_id", "starts_at"])
    op.create_table(
        "reservation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(["reservation_id"], ["reservations.id"], name=op.f("fk_reservation_events_reservation_id_reservations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_reservation_events_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_events")),
    )
    op.create_index(op.f("ix_reservation_events_reservation_id"), "reservation_events", ["reservation_id"])
    op.create_table(
        "reservation_waits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        _ts("starts_at", nullable=False),
        _ts("ends_at", nullable=False),
        sa.Column("state", sa.Text(), server_default="waiting", nullable=False),
        _ts("offered_at"),
        _ts("offer_expires_at"),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('waiting', 'offered', 'accepted', 'expired', 'cancelled')", name=op.f("ck_reservation_waits_state")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_reservation_waits_positive_length")),
        sa.CheckConstraint("state <> 'offered' OR offer_expires_at IS NOT NULL", name=op.f("ck_reservation_waits_offer_deadline")),
        sa.ForeignKeyConstraint(["resource_id"], ["commons.id"], name=op.f("fk_reservation_waits_resource_id_commons"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_reservation_waits_member_id_members")),
        sa.ForeignKeyConstraint(["reservation_id"], ["reservations.id"], name=op.f("fk_reservation_waits_reservation_id_reservations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_waits")),
    )
    op.create_index(op.f("ix_reservation_waits_member_id"), "reservation_waits", ["member_id"])
    op.create_index("ix_reservation_waits_resource_state", "reservation_waits", ["resource_id", "state"])
    op.create_table(
        "calendar_tokens",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_calendar_tokens_member_id_members"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_calendar_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_calendar_tokens_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("calendar_tokens")
    op.drop_table("reservation_waits")
    op.drop_table("reservation_events")
    op.drop_table("reservations")
    op.drop_table("resource_rules")
