"""Many cooperatives: archiving a cooperative, clearing lines and crossing payments.

Revision ID: 0013_clearing
Revises: 0002_ledger
Create Date: 2026-11-29

A cooperative is archived (``cooperatives.archived_at``), never deleted. A clearing line joins
two cooperatives' ledgers: proposed by a coordinator of one (``cooperative_id``), accepted by a
coordinator of the other (``partner_cooperative_id``); one line per pair, whoever proposed.
Each side keeps, in its own ledger, a clearing account for the other
(``ledger_accounts.partner_cooperative_id``). A crossing payment is two transfers, one in each
ledger, written in one transaction and recorded once in ``clearing_payments``.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013_clearing"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cooperatives", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("ledger_accounts", sa.Column("partner_cooperative_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_ledger_accounts_partner_cooperative_id_cooperatives"), "ledger_accounts",
                          "cooperatives", ["partner_cooperative_id"], ["id"])
    op.create_check_constraint(op.f("ck_ledger_accounts_clearing_partner"), "ledger_accounts",
                               "(kind = 'clearing') = (partner_cooperative_id IS NOT NULL)")
    op.create_index("uq_ledger_accounts_clearing", "ledger_accounts", ["cooperative_id", "partner_cooperative_id"],
                    unique=True, postgresql_where=sa.text("kind = 'clearing'"))

    op.create_table(
        "clearing_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("partner_cooperative_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="proposed", nullable=False),
        sa.Column("limit_minutes", sa.Integer(), nullable=False),
        sa.Column("proposed_limit_minutes", sa.Integer(), nullable=True),
        sa.Column("limit_proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by_id", sa.Integer(), nullable=False),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("cooperative_id <> partner_cooperative_id", name=op.f("ck_clearing_lines_two_sides")),
        sa.CheckConstraint("state IN ('proposed', 'accepted')", name=op.f("ck_clearing_lines_state")),
        sa.CheckConstraint("limit_minutes > 0", name=op.f("ck_clearing_lines_limit")),
        sa.CheckConstraint("proposed_limit_minutes IS NULL OR proposed_limit_minutes > limit_minutes",
                           name=op.f("ck_clearing_lines_raise")),
        sa.CheckConstraint("(state = 'accepted') = (accepted_by_id IS NOT NULL)", name=op.f("ck_clearing_lines_accepted")),
        sa.CheckConstraint("accepted_by_id IS NULL OR accepted_by_id <> proposed_by_id",
                           name=op.f("ck_clearing_lines_four_eyes")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_clearing_lines_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["partner_cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_clearing_lines_partner_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["members.id"], name=op.f("fk_clearing_lines_proposed_by_id_members")),
        sa.ForeignKeyConstraint(["accepted_by_id"], ["members.id"], name=op.f("fk_clearing_lines_accepted_by_id_members")),
        sa.ForeignKeyConstraint(["limit_proposed_by_id"], ["members.id"],
                                name=op.f("fk_clearing_lines_limit_proposed_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_lines")),
    )
    # One line per pair of cooperatives, whichever side proposed it.
    op.execute("CREATE UNIQUE INDEX uq_clearing_lines_pair ON clearing_lines"
               " (LEAST(cooperative_id, partner_cooperative_id), GREATEST(cooperative_id, partner_cooperative_id))")
    op.create_index(op.f("ix_clearing_lines_partner_cooperative_id"), "clearing_lines", ["partner_cooperative_id"])

    op.create_table(
        "clearing_line_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["clearing_lines.id"], name=op.f("fk_clearing_line_history_line_id_clearing_lines")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_clearing_line_history_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_clearing_line_history_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_line_history")),
    )
    op.create_index(op.f("ix_clearing_line_history_line_id"), "clearing_line_history", ["line_id"])

    op.create_table(
        "clearing_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("partner_cooperative_id", sa.Integer(), nullable=False),
        sa.Column("payer_transfer_id", sa.Integer(), nullable=False),
        sa.Column("payee_transfer_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_clearing_payments_minutes")),
        sa.CheckConstraint("cooperative_id <> partner_cooperative_id", name=op.f("ck_clearing_payments_two_sides")),
        sa.ForeignKeyConstraint(["line_id"], ["clearing_lines.id"], name=op.f("fk_clearing_payments_line_id_clearing_lines")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_clearing_payments_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["partner_cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_clearing_payments_partner_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["payer_transfer_id"], ["ledger_transfers.id"],
                                name=op.f("fk_clearing_payments_payer_transfer_id_ledger_transfers")),
        sa.ForeignKeyConstraint(["payee_transfer_id"], ["ledger_transfers.id"],
                                name=op.f("fk_clearing_payments_payee_transfer_id_ledger_transfers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_payments")),
        sa.UniqueConstraint("payer_transfer_id", name=op.f("uq_clearing_payments_payer_transfer_id")),
        sa.UniqueConstraint("payee_transfer_id", name=op.f("uq_clearing_payments_payee_transfer_id")),
    )
    op.create_index(op.f("ix_clearing_payments_line_id"), "clearing_payments", ["line_id"])


def downgrade() -> None:
    op.drop_table("clearing_payments")
    op.drop_table("clearing_line_history")
    op.drop_table("clearing_lines")
    op.drop_index("uq_ledger_accounts_clearing", table_name="ledger_accounts")
    op.drop_constraint(op.f("ck_ledger_accounts_clearing_partner"), "ledger_accounts", type_="check")
    op.drop_constraint(op.f("fk_ledger_accounts_partner_cooperative_id_cooperatives"), "ledger_accounts",
                       type_="foreignkey")
    op.drop_column("ledger_accounts", "partner_cooperative_id")
    op.drop_column("cooperatives", "archived_at")
