"""Work activities belong to a cooperative: the shipped ones are shared (each cooperative may
retire them for itself), the ones coordinators add are their cooperative's own.

Before, one cooperative's coordinator could rename or retire every cooperative's activities
(issue 18, item 15). Activities added before this revision cannot be told apart by owner: those
used by the work logs of exactly one cooperative become that cooperative's, the others stay shared.

Revision ID: 0016_activities_per_cooperative
Revises: 0002_ledger
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_activities_per_cooperative"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None

# The activities 0002_ledger ships.
SHIPPED = ("sowing", "planting", "weeding", "mulching", "composting", "watering", "harvest", "pruning",
           "hedge_planting", "building", "repair", "tool_maintenance", "cleaning", "seed_saving",
           "soil_sampling", "teaching", "coordination", "other")


def upgrade() -> None:
    op.add_column("work_activities", sa.Column("cooperative_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_work_activities_cooperative_id_cooperatives"), "work_activities",
                          "cooperatives", ["cooperative_id"], ["id"])
    op.create_index(op.f("ix_work_activities_cooperative_id"), "work_activities", ["cooperative_id"])
    op.create_table(
        "work_activities_retired",
        sa.Column("cooperative_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"],
                                name=op.f("fk_work_activities_retired_cooperative_id_cooperatives")),
        sa.ForeignKeyConstraint(["code"], ["work_activities.code"],
                                name=op.f("fk_work_activities_retired_code_work_activities")),
        sa.PrimaryKeyConstraint("cooperative_id", "code", name=op.f("pk_work_activities_retired")),
    )
    op.execute(sa.text("""
        UPDATE work_activities a SET cooperative_id = used.cooperative_id
        FROM (SELECT activity_code, min(cooperative_id) AS cooperative_id FROM work_logs
              GROUP BY activity_code HAVING count(DISTINCT cooperative_id) = 1) used
        WHERE used.activity_code = a.code AND NOT (a.code = ANY(:shipped))
    """).bindparams(shipped=list(SHIPPED)))


def downgrade() -> None:
    op.drop_table("work_activities_retired")
    op.drop_index(op.f("ix_work_activities_cooperative_id"), table_name="work_activities")
    op.drop_constraint(op.f("fk_work_activities_cooperative_id_cooperatives"), "work_activities",
                       type_="foreignkey")
    op.drop_column("work_activities", "cooperative_id")
