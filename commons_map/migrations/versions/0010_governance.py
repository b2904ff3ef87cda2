"""Governance: circles, proposals, positions, amendments, agreements, trust, role history.

Revision ID: 0010_governance
Revises: 0002_ledger
Create Date: 2026-11-29

Written by hand. Two triggers make an outcome final: a proposal whose state is already 'closed'
can be neither updated nor deleted, and the positions of a closed proposal can be neither
written nor removed. The close itself (open -> closed, with the outcome and the effect in the
same transaction) is therefore possible once, whatever races.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_governance"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None

ROLE_RE = "role ~ '^[a-z][a-z0-9_]{0,39}$'"


def _ts(name: str, nullable: bool = True, default: bool = False) -> sa.Column:
    kw = {"server_default": sa.text("now()")} if default else {}
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kw)


def _fk(table: str, col: str, ref: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    ref_table = ref.split(".")[0]
    return sa.ForeignKeyConstraint([col], [ref], name=op.f(f"fk_{table}_{col}_{ref_table}"), ondelete=ondelete)


def upgrade() -> None:
    t = "governance_circles"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False, default=True),
        sa.CheckConstraint("length(btrim(name)) BETWEEN 1 AND 120", name=op.f(f"ck_{t}_name")),
        _fk(t, "cooperative_id", "cooperatives.id"),
        _fk(t, "created_by_id", "members.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("cooperative_id", "name", name="uq_governance_circles_name"),
    )
    op.create_index(op.f(f"ix_{t}_cooperative_id"), t, ["cooperative_id"])

    t = "governance_circle_roles"
    op.create_table(
        t,
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _ts("since", nullable=False, default=True),
        sa.CheckConstraint("source IN ('founding', 'decision', 'trust')", name=op.f(f"ck_{t}_source")),
        sa.CheckConstraint(ROLE_RE, name=op.f(f"ck_{t}_role")),
        _fk(t, "circle_id", "governance_circles.id", "CASCADE"),
        _fk(t, "member_id", "members.id", "CASCADE"),
        sa.PrimaryKeyConstraint("circle_id", "member_id", "role", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_member_id"), t, ["member_id"])

    t = "governance_role_thresholds"
    op.create_table(
        t,
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("trusts", sa.Integer(), nullable=False),
        sa.CheckConstraint("trusts BETWEEN 1 AND 1000", name=op.f(f"ck_{t}_trusts")),
        sa.CheckConstraint(ROLE_RE, name=op.f(f"ck_{t}_role")),
        _fk(t, "circle_id", "governance_circles.id", "CASCADE"),
        sa.PrimaryKeyConstraint("circle_id", "role", name=op.f(f"pk_{t}")),
    )

    t = "governance_proposals"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("participation", sa.Text(), nullable=False),
        _ts("opens_at", nullable=False),
        _ts("closes_at", nullable=False),
        sa.Column("quorum", sa.Integer(), nullable=True),
        sa.Column("public", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("threshold", sa.Text(), nullable=True),
        sa.Column("effect", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("outcome", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        _ts("closed_at"),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False, default=True),
        sa.CheckConstraint("method IN ('consent', 'vote', 'score')", name=op.f(f"ck_{t}_method")),
        sa.CheckConstraint("participation IN ('circle', 'all')", name=op.f(f"ck_{t}_participation")),
        sa.CheckConstraint("threshold IS NULL OR threshold IN ('simple', 'two_thirds')", name=op.f(f"ck_{t}_threshold")),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f(f"ck_{t}_state")),
        sa.CheckConstraint("participation = 'all' OR circle_id IS NOT NULL", name=op.f(f"ck_{t}_circle")),
        sa.CheckConstraint("closes_at > opens_at", name=op.f(f"ck_{t}_times")),
        sa.CheckConstraint("quorum IS NULL OR quorum >= 1", name=op.f(f"ck_{t}_quorum")),
        sa.CheckConstraint("(method = 'vote') = (threshold IS NOT NULL)", name=op.f(f"ck_{t}_vote_threshold")),
        sa.CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL AND outcome IS NOT NULL)",
                           name=op.f(f"ck_{t}_closed")),
        sa.CheckConstraint("effect IS NULL OR method <> 'score'", name=op.f(f"ck_{t}_score_effect")),
        _fk(t, "cooperative_id", "cooperatives.id"),
        _fk(t, "circle_id", "governance_circles.id"),
        _fk(t, "author_id", "members.id"),
        _fk(t, "closed_by_id", "members.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_circle_id"), t, ["circle_id"])
    op.create_index("ix_governance_proposals_due", t, ["closes_at"], postgresql_where=sa.text("state = 'open'"))
    op.create_index("ix_governance_proposals_coop", t, ["cooperative_id", "state", "closes_at"])

    t = "governance_amendments"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("old_title", sa.Text(), nullable=False),
        sa.Column("new_title", sa.Text(), nullable=False),
        sa.Column("old_text", sa.Text(), nullable=False),
        sa.Column("new_text", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        _ts("at", nullable=False, default=True),
        _fk(t, "proposal_id", "governance_proposals.id", "CASCADE"),
        _fk(t, "author_id", "members.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("proposal_id", "version", name="uq_governance_amendments_version"),
    )
    op.create_index(op.f(f"ix_{t}_proposal_id"), t, ["proposal_id"])

    t = "governance_positions"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.Text(), nullable=True),
        sa.Column("scores", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        sa.CheckConstraint("choice IS NULL OR choice IN ('consent', 'concern', 'objection', 'yes', 'no', 'abstain')",
                           name=op.f(f"ck_{t}_choice")),
        sa.CheckConstraint("(choice IS NULL) = (scores IS NOT NULL)", name=op.f(f"ck_{t}_choice_or_scores")),
        sa.CheckConstraint("choice NOT IN ('objection', 'concern') OR length(btrim(reason)) > 0",
                           name=op.f(f"ck_{t}_reason")),
        _fk(t, "proposal_id", "governance_proposals.id", "CASCADE"),
        _fk(t, "member_id", "members.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("proposal_id", "member_id", name="uq_governance_positions_member"),
    )
    op.create_index(op.f(f"ix_{t}_member_id"), t, ["member_id"])

    t = "governance_agreements"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("adopted_by_id", sa.Integer(), nullable=False),
        sa.Column("revised_by_id", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        sa.CheckConstraint("length(btrim(title)) BETWEEN 1 AND 200", name=op.f(f"ck_{t}_title")),
        _fk(t, "cooperative_id", "cooperatives.id"),
        _fk(t, "circle_id", "governance_circles.id"),
        _fk(t, "adopted_by_id", "governance_proposals.id"),
        _fk(t, "revised_by_id", "governance_proposals.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("adopted_by_id", name=op.f(f"uq_{t}_adopted_by_id")),
    )
    op.create_index(op.f(f"ix_{t}_cooperative_id"), t, ["cooperative_id"])

    t = "governance_agreement_revisions"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        _ts("at", nullable=False, default=True),
        _fk(t, "agreement_id", "governance_agreements.id", "CASCADE"),
        _fk(t, "proposal_id", "governance_proposals.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("agreement_id", "version", name="uq_governance_agreement_revisions_version"),
        sa.UniqueConstraint("proposal_id", name=op.f(f"uq_{t}_proposal_id")),
    )

    t = "governance_trust"
    op.create_table(
        t,
        sa.Column("giver_id", sa.Integer(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        _ts("given_at", nullable=False, default=True),
        sa.CheckConstraint("giver_id <> receiver_id", name=op.f(f"ck_{t}_not_self")),
        _fk(t, "giver_id", "members.id", "CASCADE"),
        _fk(t, "receiver_id", "members.id", "CASCADE"),
        _fk(t, "circle_id", "governance_circles.id", "CASCADE"),
        sa.PrimaryKeyConstraint("giver_id", "receiver_id", "circle_id", "role", name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_governance_trust_receiver", t, ["circle_id", "receiver_id", "role"])

    t = "governance_role_history"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=True),
        sa.Column("commons_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("trusts", sa.Integer(), nullable=True),
        _ts("at", nullable=False, default=True),
        sa.CheckConstraint("action IN ('granted', 'withdrawn', 'trust_given', 'trust_withdrawn')",
                           name=op.f(f"ck_{t}_action")),
        sa.CheckConstraint("source IN ('founding', 'decision', 'trust', 'direct')", name=op.f(f"ck_{t}_source")),
        _fk(t, "cooperative_id", "cooperatives.id"),
        _fk(t, "member_id", "members.id"),
        _fk(t, "circle_id", "governance_circles.id"),
        _fk(t, "commons_id", "commons.id"),
        _fk(t, "proposal_id", "governance_proposals.id"),
        _fk(t, "actor_id", "members.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_cooperative_id"), t, ["cooperative_id"])
    op.create_index(op.f(f"ix_{t}_member_id"), t, ["member_id"])

    # An outcome is final: a closed proposal and its positions never change again.
    op.execute("""
        CREATE FUNCTION governance_closed_proposal_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.state = 'closed' THEN
                RAISE EXCEPTION 'governance proposal % is closed: its outcome is final', OLD.id
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$;
        CREATE TRIGGER governance_proposals_final BEFORE UPDATE OR DELETE ON governance_proposals
            FOR EACH ROW EXECUTE FUNCTION governance_closed_proposal_is_final();

        CREATE FUNCTION governance_positions_while_open() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE pid integer := CASE WHEN TG_OP = 'DELETE' THEN OLD.proposal_id ELSE NEW.proposal_id END;
        BEGIN
            IF EXISTS (SELECT 1 FROM governance_proposals WHERE id = pid AND state = 'closed') THEN
                RAISE EXCEPTION 'governance proposal % is closed: positions are final', pid
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$;
        CREATE TRIGGER governance_positions_open BEFORE INSERT OR UPDATE OR DELETE ON governance_positions
            FOR EACH ROW EXECUTE FUNCTION governance_positions_while_open();
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS governance_positions_open ON governance_positions")
    op.execute("DROP TRIGGER IF EXISTS governance_proposals_final ON governance_proposals")
    op.execute("DROP FUNCTION IF EXISTS governance_positions_while_open()")
    op.execute("DROP FUNCTION IF EXISTS governance_closed_proposal_is_final()")
    for t in ("governance_role_history", "governance_trust", "governance_agreement_revisions",
              "governance_agreements", "governance_positions", "governance_amendments",
              "governance_proposals", "governance_role_thresholds", "governance_circle_roles",
              "governance_circles"):
        op.drop_table(t)
