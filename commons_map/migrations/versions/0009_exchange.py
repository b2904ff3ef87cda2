"""Offers and needs: the exchange network paid in time, and the solidarity fund.

Revision ID: 0009_exchange
Revises: 0002_ledger
Create Date: 2026-11-29

Written by hand. What lives in the database itself:

* ``exchange_french``: a text search configuration = French stemming after ``unaccent``, so that
  "reparation velo" finds "Réparation de vélos" (accents and plurals forgiven). Posts carry a
  generated tsvector in that configuration, with a GIN index.
* ``exchange_posts.shown``: the place others are shown, generated from the stored point (snapped
  to the register's ~500 m grid, ``APPROXIMATE_GRID_DEG`` = 0.005, unless the poster chose to show
  it exactly). Distance filters and nearest-first ordering run on it (GIST index on its
  geography), so probing with small distances never finds the exact spot.
* ``exchanges.transfer_id`` UNIQUE: one ledger transfer pays one exchange, whatever the races.
* a ledger account kind ``solidarity_fund`` (one per cooperative), and supports that need two
  different stewards (CHECK ``approved_by_id <> proposed_by_id``).
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_exchange"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None

GRID_DEG = 0.005  # commons_map.register.service.APPROXIMATE_GRID_DEG (a test checks they agree)

CATEGORIES = [
    # code, label_fr, label_en
    ("se_nourrir", "Se nourrir", "Food"),
    ("se_loger", "Se loger", "Housing"),
    ("se_soigner", "Se soigner", "Care and health"),
    ("s_entraider", "S'entraider", "Mutual help"),
    ("apprendre", "Apprendre", "Learning"),
    ("reparer", "Réparer", "Repairing"),
    ("se_deplacer", "Se déplacer (à pied, à vélo, traction animale)", "Getting around (low-impact, animal traction)"),
    ("garder", "Garder (enfants, animaux)", "Looking after (children, animals)"),
    ("jardiner", "Jardiner", "Gardening"),
    ("bricoler", "Bricoler", "DIY and odd jobs"),
    ("accompagner", "Accompagner (démarches, traduction)", "Accompanying (paperwork, translation)"),
]

SEARCH_CONFIG = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION exchange_french (COPY = french);
ALTER TEXT SEARCH CONFIGURATION exchange_french
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem;
"""


def upgrade() -> None:
    op.execute(SEARCH_CONFIG)
    # The ledger learns a new kind of account: the cooperative's solidarity fund (one each).
    op.drop_constraint(op.f("ck_ledger_accounts_kind"), "ledger_accounts", type_="check")
    op.create_check_constraint(
        op.f("ck_ledger_accounts_kind"), "ledger_accounts",
        "kind IN ('member', 'cooperative', 'commons_fund', 'clearing', 'solidarity_fund')",
    )
    op.create_index("uq_ledger_accounts_solidarity_fund", "ledger_accounts", ["cooperative_id"], unique=True,
                    postgresql_where=sa.text("kind = 'solidarity_fund'"))

    categories = op.create_table(
        "exchange_categories",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("label_fr", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("position", sa.Integer(), server_default="100", nullable=False),
        sa.CheckConstraint("code ~ '^[a-z][a-z0-9_]{1,39}$'", name=op.f("ck_exchange_categories_code")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_exchange_categories")),
    )
    op.bulk_insert(categories, [
        {"code": c, "label_fr": fr, "label_en": en, "position": 10 * (i + 1)}
        for i, (c, fr, en) in enumerate(CATEGORIES)
    ])

    op.create_table(
        "exchange_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("category_code", sa.Text(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("when_text", sa.Text(), server_default="", nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("geom", geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
                  nullable=True),
        sa.Column("exact_place", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("shown", geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
                  sa.Computed(f"CASE WHEN exact_place THEN geom ELSE ST_SnapToGrid(geom, {GRID_DEG}) END",
                              persisted=True), nullable=True),
        sa.Column("visibility", sa.Text(), server_default="members", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("search", postgresql.TSVECTOR(), sa.Computed(
            "setweight(to_tsvector('exchange_french'::regconfig, title), 'A')"
            " || setweight(to_tsvector('exchange_french'::regconfig, description), 'B')", persisted=True),
            nullable=True),
        sa.CheckConstraint("kind IN ('offer', 'need')", name=op.f("ck_exchange_posts_kind")),
        sa.CheckConstraint("visibility IN ('members', 'public')", name=op.f("ck_exchange_posts_visibility")),
        sa.CheckConstraint("length(btrim(title)) BETWEEN 1 AND 120", name=op.f("ck_exchange_posts_title")),
        sa.CheckConstraint("length(description) <= 4000", name=op.f("ck_exchange_posts_description")),
        sa.CheckConstraint("minutes BETWEEN 1 AND 1440", name=op.f("ck_exchange_posts_minutes")),
        sa.CheckConstraint("starts_on IS NULL OR ends_on IS NULL OR starts_on <= ends_on",
                           name=op.f("ck_exchange_posts_dates")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_exchange_posts_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["author_id"], ["members.id"], name=op.f("fk_exchange_posts_author_id_members")),
        sa.ForeignKeyConstraint(["category_code"], ["exchange_categories.code"],
                                name=op.f("fk_exchange_posts_category_code_exchange_categories")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_posts")),
    )
    op.create_index("ix_exchange_posts_search", "exchange_posts", ["search"], postgresql_using="gin")
    op.execute("CREATE INDEX ix_exchange_posts_shown ON exchange_posts USING gist ((shown::geography))")
    op.create_index("ix_exchange_posts_open", "exchange_posts", ["cooperative_id", "created_at"],
                    postgresql_where=sa.text("archived_at IS NULL"))
    op.create_index("ix_exchange_posts_author", "exchange_posts", ["author_id"])

    op.create_table(
        "exchange_fund_stewards",
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("appointed_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_exchange_fund_stewards_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_exchange_fund_stewards_member_id_members")),
        sa.ForeignKeyConstraint(["appointed_by_id"], ["members.id"],
                                name=op.f("fk_exchange_fund_stewards_appointed_by_id_members")),
        sa.PrimaryKeyConstraint("cooperative_id", "member_id", name=op.f("pk_exchange_fund_stewards")),
    )
    op.create_table(
        "exchange_supports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("approved_by_id IS NULL OR approved_by_id <> proposed_by_id",
                           name=op.f("ck_exchange_supports_four_eyes")),
        sa.CheckConstraint("(approved_by_id IS NULL) = (approved_at IS NULL)", name=op.f("ck_exchange_supports_approved")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_exchange_supports_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_exchange_supports_member_id_members")),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["members.id"],
                                name=op.f("fk_exchange_supports_proposed_by_id_members")),
        sa.ForeignKeyConstraint(["approved_by_id"], ["members.id"],
                                name=op.f("fk_exchange_supports_approved_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_supports")),
    )
    op.create_index("uq_exchange_supports_open", "exchange_supports", ["member_id"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"))

    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("receiver_id", sa.Integer(), nullable=False),
        sa.Column("opened_by_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="proposed", nullable=False),
        sa.Column("done_recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("done_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transfer_id", sa.Integer(), nullable=True),
        sa.Column("by_fund", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('proposed', 'accepted', 'done', 'cancelled', 'disputed')",
                           name=op.f("ck_exchanges_state")),
        sa.CheckConstraint("minutes BETWEEN 1 AND 1440", name=op.f("ck_exchanges_minutes")),
        sa.CheckConstraint("provider_id <> receiver_id", name=op.f("ck_exchanges_two_people")),
        sa.CheckConstraint("transfer_id IS NULL OR state = 'done'", name=op.f("ck_exchanges_paid_done")),
        sa.CheckConstraint("(transfer_id IS NULL) = (paid_at IS NULL)", name=op.f("ck_exchanges_paid_at")),
        sa.CheckConstraint("state <> 'done' OR done_recorded_at IS NOT NULL", name=op.f("ck_exchanges_done_at")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_exchanges_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["post_id"], ["exchange_posts.id"], name=op.f("fk_exchanges_post_id_exchange_posts")),
        sa.ForeignKeyConstraint(["provider_id"], ["members.id"], name=op.f("fk_exchanges_provider_id_members")),
        sa.ForeignKeyConstraint(["receiver_id"], ["members.id"], name=op.f("fk_exchanges_receiver_id_members")),
        sa.ForeignKeyConstraint(["opened_by_id"], ["members.id"], name=op.f("fk_exchanges_opened_by_id_members")),
        sa.ForeignKeyConstraint(["done_recorded_by_id"], ["members.id"],
                                name=op.f("fk_exchanges_done_recorded_by_id_members")),
        sa.ForeignKeyConstraint(["transfer_id"], ["ledger_transfers.id"],
                                name=op.f("fk_exchanges_transfer_id_ledger_transfers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchanges")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_exchanges_transfer_id")),
    )
    op.create_index("ix_exchanges_post", "exchanges", ["post_id"])
    op.create_index("ix_exchanges_provider", "exchanges", ["provider_id"])
    op.create_index("ix_exchanges_receiver", "exchanges", ["receiver_id"])
    op.create_index("ix_exchanges_due", "exchanges", ["done_recorded_at"],
                    postgresql_where=sa.text("state = 'done' AND transfer_id IS NULL"))

    op.create_table(
        "exchange_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("length(btrim(body)) BETWEEN 1 AND 2000", name=op.f("ck_exchange_messages_body")),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], name=op.f("fk_exchange_messages_exchange_id_exchanges")),
        sa.ForeignKeyConstraint(["author_id"], ["members.id"], name=op.f("fk_exchange_messages_author_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_messages")),
    )
    op.create_index("ix_exchange_messages_exchange", "exchange_messages", ["exchange_id", "id"])

    op.create_table(
        "exchange_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("exchange_id", sa.Integer(), nullable=True),
        sa.Column("support_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_exchange_history_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["post_id"], ["exchange_posts.id"], name=op.f("fk_exchange_history_post_id_exchange_posts")),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], name=op.f("fk_exchange_history_exchange_id_exchanges")),
        sa.ForeignKeyConstraint(["support_id"], ["exchange_supports.id"],
                                name=op.f("fk_exchange_history_support_id_exchange_supports")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_exchange_history_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_history")),
    )
    op.create_index("ix_exchange_history_exchange", "exchange_history", ["exchange_id"])
    op.create_index("ix_exchange_history_post", "exchange_history", ["post_id"])

    op.create_table(
        "exchange_visits",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_exchange_visits_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_exchange_visits")),
    )


def downgrade() -> None:
    for table in ("exchange_visits", "exchange_history", "exchange_messages", "exchanges", "exchange_supports",
                  "exchange_fund_stewards", "exchange_posts", "exchange_categories"):
        op.drop_table(table)
    op.execute("DELETE FROM ledger_accounts WHERE kind = 'solidarity_fund'")  # refused if it holds postings
    op.drop_index("uq_ledger_accounts_solidarity_fund", table_name="ledger_accounts")
    op.drop_constraint(op.f("ck_ledger_accounts_kind"), "ledger_accounts", type_="check")
    op.create_check_constraint(
        op.f("ck_ledger_accounts_kind"), "ledger_accounts", "kind IN ('member', 'cooperative', 'commons_fund', 'clearing')"
    )
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS exchange_french")

