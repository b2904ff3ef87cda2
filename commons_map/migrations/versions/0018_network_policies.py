"""Row-level security for the tables that came beside it: clearing lines and crossing payments
(seen by both sides), partner maps (public, like the map that shows them), a cooperative's own
activities and the shipped ones it retired, and the members' browser sessions.

Revision ID: 0018_network_policies
Revises: 0012_tenancy, 0012_replica_figures_logged, 0013_clearing, 0014_partners,
    0016_activities_per_cooperative, 0017_web_sessions
Create Date: 2026-11-29
"""
from alembic import op

from commons_map.tenancy import COOP, child_policy, coop_policy, drop_policies, enable_policies

revision = "0018_network_policies"
down_revision = ("0012_tenancy", "0012_replica_figures_logged", "0013_clearing", "0014_partners",
                 "0016_activities_per_cooperative", "0017_web_sessions")
branch_labels = None
depends_on = None

BOTH_SIDES = f"(cooperative_id = {COOP} OR partner_cooperative_id = {COOP})"
LINE_OF_EITHER_SIDE = (
    "EXISTS (SELECT 1 FROM clearing_lines l WHERE l.id = clearing_line_history.line_id"
    f" AND (l.cooperative_id = {COOP} OR l.partner_cooperative_id = {COOP}))"
)

POLICIES: dict[str, list[str]] = {
    # A line, and a crossing payment, belong to both cooperatives: each side reads and writes them.
    "clearing_lines": [f"CREATE POLICY tenant ON clearing_lines USING ({BOTH_SIDES}) WITH CHECK ({BOTH_SIDES})"],
    "clearing_payments": [f"CREATE POLICY tenant ON clearing_payments USING ({BOTH_SIDES}) WITH CHECK ({BOTH_SIDES})"],
    "clearing_line_history": [
        f"CREATE POLICY tenant ON clearing_line_history USING ({LINE_OF_EITHER_SIDE})"
        f" WITH CHECK ({LINE_OF_EITHER_SIDE} AND cooperative_id = {COOP})"
    ],
    # Partner initiatives are shown on the public map to anyone; each cooperative edits its own list.
    "partners": coop_policy("partners", public="true"),
    "partner_layers": child_policy("partner_layers", fk="partner_id", parent="partners", public="true"),
    "work_activities_retired": coop_policy("work_activities_retired"),
    "member_web_sessions": child_policy("member_web_sessions", fk="member_id", parent="members"),
}


def upgrade() -> None:
    enable_policies(op.execute, POLICIES)
    # Activities: the shipped ones (no cooperative) are read by all; a cooperative's own are its own.
    op.execute("DROP POLICY IF EXISTS shared_write ON work_activities")
    op.execute("DROP POLICY IF EXISTS shared_read ON work_activities")
    own = f"cooperative_id = {COOP}"
    op.execute(f"CREATE POLICY tenant ON work_activities USING ({own}) WITH CHECK ({own})")
    op.execute("CREATE POLICY shared_read ON work_activities FOR SELECT USING (cooperative_id IS NULL)")
    # The ledger's balance check runs at commit, when the transaction acts for the payer's cooperative:
    # it must see the whole transfer, whichever ledger it is in (a crossing payment's other leg), or it
    # counts no postings. A check that only reads: it runs as the owner.
    op.execute("ALTER FUNCTION ledger_transfer_balanced() SECURITY DEFINER SET search_path = pg_catalog, public")


def downgrade() -> None:
    op.execute("ALTER FUNCTION ledger_transfer_balanced() SECURITY INVOKER RESET search_path")
    op.execute("DROP POLICY IF EXISTS tenant ON work_activities")
    op.execute("DROP POLICY IF EXISTS shared_read ON work_activities")
    op.execute(f"CREATE POLICY shared_write ON work_activities USING ({COOP} IS NOT NULL)"
               f" WITH CHECK ({COOP} IS NOT NULL)")
    op.execute("CREATE POLICY shared_read ON work_activities FOR SELECT USING (true)")
    drop_policies(op.execute, POLICIES)
