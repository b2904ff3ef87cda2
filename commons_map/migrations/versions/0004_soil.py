"""Soil and food: the indicator catalogue (seeded from commons_map/data/indicators.csv),
samples with their raw measurements, practices, harvests and where the food went.

Revision ID: 0004_soil
Revises: 0001_register
Create Date: 2026-11-27

Written by hand after the models in commons_map/soil/models.py. The catalogue rows shipped
with the app have no cooperative; a cooperative's coordinators add their own rows.
"""
import csv
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0004_soil"
down_revision = "0001_register"
branch_labels = None
depends_on = None

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "indicators.csv"
DESTINATIONS = ("members", "shared_meals", "households_in_need", "other_cooperatives", "seed_saving", "compost")


def read_catalogue(path: Path = CATALOGUE) -> list[dict]:
    """The shipped indicators as rows for soil_indicators."""
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            units = {}
            for part in r["units"].split("|"):
                unit, factor = part.rsplit(":", 1)
                units[unit] = float(factor)
            rows.append(dict(
                code=r["code"], label_fr=r["label_fr"], label_en=r["label_en"],
                canonical_unit=next(iter(units)), units=units,
                range_min=float(r["range_min"]), range_max=float(r["range_max"]),
                methods=[m for m in r["methods"].split("|") if m], measured=r["measured"],
                depth_required=r["depth_required"] == "true", better=r["better"] or None,
                description_en=r["description_en"],
            ))
    return rows


def upgrade() -> None:
    op.create_table(
        "soil_indicators",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=True),
        sa.Column("label_fr", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("canonical_unit", sa.Text(), nullable=False),
        sa.Column("units", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("range_min", sa.Double(), nullable=False),
        sa.Column("range_max", sa.Double(), nullable=False),
        sa.Column("methods", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("measured", sa.Text(), server_default="both", nullable=False),
        sa.Column("depth_required", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("better", sa.Text(), nullable=True),
        sa.Column("description_en", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint("measured IN ('field', 'lab', 'both')", name=op.f("ck_soil_indicators_measured")),
        sa.CheckConstraint("better IS NULL OR better IN ('higher', 'lower')", name=op.f("ck_soil_indicators_better")),
        sa.CheckConstraint("range_min <= range_max", name=op.f("ck_soil_indicators_range")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_soil_indicators_cooperative_id_cooperatives")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_soil_indicators")),
    )
    op.create_index(op.f("ix_soil_indicators_cooperative_id"), "soil_indicators", ["cooperative_id"])

    op.create_table(
        "soil_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("commons_id", sa.Integer(), nullable=False),
        sa.Column("point", Geometry(geometry_type="POINT", srid=4326, spatial_index=False,
                                    from_text="ST_GeomFromEWKT", name="geometry"), nullable=True),
        sa.Column("parcel_from_point", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("sampled_on", sa.Date(), nullable=False),
        sa.Column("sampled_by_id", sa.Integer(), nullable=True),
        sa.Column("sampler_name", sa.Text(), server_default="", nullable=False),
        sa.Column("lab", sa.Text(), server_default="", nullable=False),
        sa.Column("lab_report_ref", sa.Text(), server_default="", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_soil_samples_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["commons_id"], ["commons.id"], name=op.f("fk_soil_samples_commons_id_commons")),
        sa.ForeignKeyConstraint(["sampled_by_id"], ["members.id"], name=op.f("fk_soil_samples_sampled_by_id_members")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["members.id"],
                                name=op.f("fk_soil_samples_recorded_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_soil_samples")),
    )
    op.create_index("idx_soil_samples_point", "soil_samples", ["point"], postgresql_using="gist")
    op.create_index("ix_soil_samples_commons_date", "soil_samples", ["commons_id", "sampled_on"])
    op.create_index("uq_soil_samples_source_ref", "soil_samples", ["cooperative_id", "source_ref"], unique=True,
                    postgresql_where=sa.text("source_ref IS NOT NULL"))

    op.create_table(
        "soil_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("indicator_code", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("depth_top_cm", sa.Double(), nullable=True),
        sa.Column("depth_bottom_cm", sa.Double(), nullable=True),
        sa.Column("confirmed_out_of_range", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint("(depth_top_cm IS NULL) = (depth_bottom_cm IS NULL)",
                           name=op.f("ck_soil_measurements_depth_both_or_none")),
        sa.CheckConstraint("depth_top_cm IS NULL OR (depth_top_cm >= 0 AND depth_bottom_cm > depth_top_cm)",
                           name=op.f("ck_soil_measurements_depth_order")),
        sa.ForeignKeyConstraint(["sample_id"], ["soil_samples.id"], ondelete="CASCADE",
                                name=op.f("fk_soil_measurements_sample_id_soil_samples")),
        sa.ForeignKeyConstraint(["indicator_code"], ["soil_indicators.code"],
                                name=op.f("fk_soil_measurements_indicator_code_soil_indicators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_soil_measurements")),
    )
    op.create_index(op.f("ix_soil_measurements_sample_id"), "soil_measurements", ["sample_id"])
    op.create_index(op.f("ix_soil_measurements_indicator_code"), "soil_measurements", ["indicator_code"])

    op.create_table(
        "soil_practices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("commons_id", sa.Integer(), nullable=False),
        sa.Column("practice", sa.Text(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("quantity", sa.Double(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name=op.f("ck_soil_practices_dates")),
        sa.CheckConstraint("quantity IS NULL OR quantity >= 0", name=op.f("ck_soil_practices_quantity")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_soil_practices_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["commons_id"], ["commons.id"], name=op.f("fk_soil_practices_commons_id_commons")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["members.id"],
                                name=op.f("fk_soil_practices_recorded_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_soil_practices")),
    )
    op.create_index("ix_soil_practices_commons_date", "soil_practices", ["commons_id", "started_on"])

    op.create_table(
        "harvests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("commons_id", sa.Integer(), nullable=False),
        sa.Column("crop", sa.Text(), nullable=False),
        sa.Column("harvested_on", sa.Date(), nullable=False),
        sa.Column("weight_kg", sa.Double(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("harvested_by_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("confirmed_implausible", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("weight_kg IS NULL OR weight_kg > 0", name=op.f("ck_harvests_weight")),
        sa.CheckConstraint("count IS NULL OR count > 0", name=op.f("ck_harvests_count")),
        sa.CheckConstraint("weight_kg IS NOT NULL OR count IS NOT NULL", name=op.f("ck_harvests_quantity")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_harvests_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["commons_id"], ["commons.id"], name=op.f("fk_harvests_commons_id_commons")),
        sa.ForeignKeyConstraint(["harvested_by_id"], ["members.id"], name=op.f("fk_harvests_harvested_by_id_members")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["members.id"], name=op.f("fk_harvests_recorded_by_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvests")),
    )
    op.create_index("ix_harvests_commons_date", "harvests", ["commons_id", "harvested_on"])
    op.create_index("uq_harvests_source_ref", "harvests", ["cooperative_id", "source_ref"], unique=True,
                    postgresql_where=sa.text("source_ref IS NOT NULL"))

    op.create_table(
        "harvest_shares",
        sa.Column("harvest_id", sa.Integer(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.CheckConstraint("destination IN (" + ", ".join(f"'{d}'" for d in DESTINATIONS) + ")",
                           name=op.f("ck_harvest_shares_destination")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_harvest_shares_amount")),
        sa.ForeignKeyConstraint(["harvest_id"], ["harvests.id"], ondelete="CASCADE",
                                name=op.f("fk_harvest_shares_harvest_id_harvests")),
        sa.PrimaryKeyConstraint("harvest_id", "destination", name=op.f("pk_harvest_shares")),
    )

    table = sa.table(
        "soil_indicators",
        *(sa.column(c) for c in ("code", "label_fr", "label_en", "canonical_unit", "range_min", "range_max",
                                  "measured", "depth_required", "better", "description_en")),
        sa.column("units", postgresql.JSONB), sa.column("methods", postgresql.ARRAY(sa.Text())),
    )
    op.bulk_insert(table, read_catalogue())


def downgrade() -> None:
    op.drop_table("harvest_shares")
    op.drop_index("uq_harvests_source_ref", table_name="harvests")
    op.drop_index("ix_harvests_commons_date", table_name="harvests")
    op.drop_table("harvests")
    op.drop_index("ix_soil_practices_commons_date", table_name="soil_practices")
    op.drop_table("soil_practices")
    op.drop_table("soil_measurements")
    op.drop_index("uq_soil_samples_source_ref", table_name="soil_samples")
    op.drop_index("ix_soil_samples_commons_date", table_name="soil_samples")
    op.drop_index("idx_soil_samples_point", table_name="soil_samples")
    op.drop_table("soil_samples")
    op.drop_table("soil_indicators")
