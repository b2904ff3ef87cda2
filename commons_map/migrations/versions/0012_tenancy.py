"""Tenancy: the app's role (logs in, owns nothing) and row-level security on every table.

Each table gets policies that read the transaction's ``app.cooperative_id`` / ``app.member_id``
(``commons_map.tenancy``): a cooperative's rows for that cooperative only, public rows for anyone,
nothing when unset. The owner (who runs this) is not held by them (RLS enabled, not forced).
The role is cluster-wide: created once, race-safe (tests migrate databases in parallel); grants
are per database.

Revision ID: 0012_tenancy
Revises: every head of 0001-0011 (a merge: it needs every table)
Create Date: 2026-11-29
"""
from alembic import op

from commons_map.tenancy import app_role, child_policy, coop_policy, drop_policies, enable_policies, shared_policy

revision = "0012_tenancy"
down_revision = ("0003_reservations", "0004_soil", "0005_fieldforms", "0007_security",
                 "0008_publish_figures", "0009_exchange", "0010_governance", "0011_notify")
branch_labels = None
depends_on = None

# a child row anyone reads when its parent row is readable (the parent's own policies decide)
VISIBLE = "EXISTS (SELECT 1 FROM {parent} v WHERE v.id = {fk})"
PUBLIC_PROPOSAL = "EXISTS (SELECT 1 FROM governance_proposals g WHERE g.id = {fk} AND g.public)"
PUBLIC_COMMONS = "EXISTS (SELECT 1 FROM commons c WHERE c.id = {fk} AND c.visibility = 'public')"

# Every table and its rule (explicit, frozen with this revision).
POLICIES: dict[str, list[str]] = {
    # shared reference lists (written by coordinators through the services) and the directory
    "cooperatives": [
        "CREATE POLICY directory ON cooperatives FOR SELECT USING (true)",
        "CREATE POLICY tenant ON cooperatives FOR UPDATE USING (id = app_cooperative_id())"
        " WITH CHECK (id = app_cooperative_id())",
    ],
    "commons_kinds": shared_policy("commons_kinds", writable="members"),  # services say who
    "exchange_categories": shared_policy("exchange_categories", writable="members"),  # services say who
    "work_activities": shared_policy("work_activities", writable="members"),  # services say who
    "login_failures": shared_policy("login_failures", writable="anyone"),  # the throttle, before anyone is known
    # a member's own row is visible before the cooperative is known (signing in)
    "members": [
        "CREATE POLICY tenant ON members USING (cooperative_id = app_cooperative_id())"
        " WITH CHECK (cooperative_id = app_cooperative_id())",
        "CREATE POLICY self_read ON members FOR SELECT USING (id = app_member_id())",
    ],
    "member_roles": child_policy("member_roles", fk="member_id", parent="members"),
    # register
    "commons": coop_policy("commons", public="visibility = 'public'"),
    "commons_stewards": child_policy("commons_stewards", fk="commons_id", parent="commons"),
    # a public commons' history: the services filter each entry by what it showed then
    "commons_history": child_policy("commons_history", fk="commons_id", parent="commons",
                                    public=PUBLIC_COMMONS.format(fk="commons_history.commons_id")),
    # ledger and work
    "ledger_accounts": coop_policy("ledger_accounts"),
    "ledger_account_history": child_policy("ledger_account_history", fk="account_id", parent="ledger_accounts"),
    "ledger_transfers": coop_policy("ledger_transfers"),
    "ledger_postings": child_policy("ledger_postings", fk="transfer_id", parent="ledger_transfers"),
    "work_logs": coop_policy("work_logs"),
    "work_log_companions": child_policy("work_log_companions", fk="work_log_id", parent="work_logs"),
    "work_log_history": child_policy("work_log_history", fk="work_log_id", parent="work_logs"),
    # reservations
    # a public resource's rules and calendar (busy times; the services leave out who and why)
    "resource_rules": child_policy("resource_rules", fk="commons_id", parent="commons",
                                   public=PUBLIC_COMMONS.format(fk="resource_rules.commons_id")),
    "reservations": child_policy("reservations", fk="resource_id", parent="commons",
                                 public=PUBLIC_COMMONS.format(fk="reservations.resource_id")),
    "reservation_events": child_policy("reservation_events", fk="reservation_id", parent="reservations_owner"),
    "reservation_waits": child_policy("reservation_waits", fk="resource_id", parent="commons"),
    "calendar_tokens": child_policy("calendar_tokens", fk="member_id", parent="members"),
    # soil: what is measured, done and harvested on a public parcel is public (the services leave
    # out who); the indicators' definitions are a catalogue anyone reads
    "soil_indicators": [
        "CREATE POLICY tenant ON soil_indicators USING (cooperative_id = app_cooperative_id())"
        " WITH CHECK (cooperative_id = app_cooperative_id())",
        "CREATE POLICY shared_read ON soil_indicators FOR SELECT USING (true)",
    ],
    "soil_samples": coop_policy("soil_samples", public=PUBLIC_COMMONS.format(fk="soil_samples.commons_id")),
    "soil_measurements": child_policy("soil_measurements", fk="sample_id", parent="soil_samples",
                                      public=VISIBLE.format(parent="soil_samples", fk="soil_measurements.sample_id")),
    "soil_practices": coop_policy("soil_practices", public=PUBLIC_COMMONS.format(fk="soil_practices.commons_id")),
    "harvests": coop_policy("harvests", public=PUBLIC_COMMONS.format(fk="harvests.commons_id")),
    "harvest_shares": child_policy("harvest_shares", fk="harvest_id", parent="harvests",
                                   public=VISIBLE.format(parent="harvests", fk="harvest_shares.harvest_id")),
    # field forms
    "field_tokens": child_policy("field_tokens", fk="member_id", parent="members"),
    "field_submissions": coop_policy("field_submissions"),
    "field_submission_attachments": child_policy("field_submission_attachments", fk="submission_id",
                                                 parent="field_submissions"),
    # publish: public figures of public parcels, written as their cooperative (publish.figures)
    "publish_figures": coop_policy("publish_figures", public="true"),
    "publish_figures_digests": coop_policy("publish_figures_digests", public="true"),
    # exchange
    "exchange_posts": coop_policy("exchange_posts", public="visibility = 'public'"),
    "exchanges": coop_policy("exchanges"),
    "exchange_messages": child_policy("exchange_messages", fk="exchange_id", parent="exchanges"),
    "exchange_history": coop_policy("exchange_history"),
    "exchange_fund_stewards": coop_policy("exchange_fund_stewards"),
    "exchange_supports": coop_policy("exchange_supports"),
    "exchange_visits": child_policy("exchange_visits", fk="member_id", parent="members"),
    # governance
    "governance_circles": coop_policy("governance_circles"),
    "governance_circle_roles": child_policy("governance_circle_roles", fk="circle_id", parent="governance_circles"),
    "governance_role_thresholds": child_policy("governance_role_thresholds", fk="circle_id",
                                               parent="governance_circles"),
    "governance_proposals": coop_policy("governance_proposals", public="public"),
    # a public proposal's outcome (counts, no names: the services) is computed from its positions
    "governance_amendments": child_policy("governance_amendments", fk="proposal_id", parent="governance_proposals",
                                          public=PUBLIC_PROPOSAL.format(fk="governance_amendments.proposal_id")),
    "governance_positions": child_policy("governance_positions", fk="proposal_id", parent="governance_proposals",
                                         public=PUBLIC_PROPOSAL.format(fk="governance_positions.proposal_id")),
    "governance_agreements": coop_policy("governance_agreements"),
    "governance_agreement_revisions": child_policy("governance_agreement_revisions", fk="agreement_id",
                                                   parent="governance_agreements"),
    "governance_trust": child_policy("governance_trust", fk="circle_id", parent="governance_circles"),
    "governance_role_history": coop_policy("governance_role_history"),
    # notifications
    "notifications": coop_policy("notifications"),
    "deliveries": coop_policy("deliveries"),
    "notification_preferences": child_policy("notification_preferences", fk="member_id", parent="members"),
    "notify_settings": child_policy("notify_settings", fk="member_id", parent="members"),
}

FUNCTIONS = """
CREATE FUNCTION app_cooperative_id() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.cooperative_id', true), '')::integer $$;
CREATE FUNCTION app_member_id() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.member_id', true), '')::integer $$;
"""
# The narrow ways in before the cooperative is known (SECURITY DEFINER, the owner's): an id from a
# key, never a password hash nor a row. (name, key type, the id read, table, key column)
LOOKUPS = (
    ("commons_member_cooperative", "integer", "cooperative_id", "members", "id"),
    ("commons_member_by_username", "text", "id", "members", "username"),
    ("commons_member_by_field_token", "text", "member_id", "field_tokens", "token_hash"),
    ("commons_member_by_calendar_token", "text", "member_id", "calendar_tokens", "token_sha256"),
)
LOOKUP_SQL = (
    "CREATE FUNCTION {0}(v {1}) RETURNS integer LANGUAGE sql STABLE SECURITY DEFINER"
    " SET search_path = public, pg_temp AS $$ SELECT {2} FROM {3} WHERE {4} = v $$"
)
DEFINERS = tuple(f"{name}({kind})" for name, kind, *_ in LOOKUPS)

CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        BEGIN
            CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it at the same moment
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}'
               AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)) THEN
        RAISE EXCEPTION 'the app role {role} must not be a superuser nor bypass row-level security';
    END IF;
END $$;
"""


def upgrade() -> None:
    role = app_role()
    op.execute(CREATE_ROLE.format(role=role))
    # reservation_events belong to a reservation, whose cooperative is its resource's
    op.execute(
        "CREATE VIEW reservations_owner WITH (security_barrier) AS"
        " SELECT r.id, c.cooperative_id FROM reservations r JOIN commons c ON c.id = r.resource_id"
    )
    # The public face of the register for the public map, OGC API and tiles (publish.sql): public
    # rows only, by its definition. Owned by the owner, so row-level security does not add its
    # quals (which would keep the bbox from the spatial index, PostGIS's && being not leakproof);
    # xmin and ctid for the tile cache's row versions.
    op.execute(
        "CREATE VIEW commons_public AS SELECT c.*, c.xmin AS row_xmin, c.ctid AS row_ctid"
        " FROM commons c WHERE c.visibility = 'public'"
    )
    op.execute(FUNCTIONS)
    for lookup in LOOKUPS:
        op.execute(LOOKUP_SQL.format(*lookup))
    for fn in DEFINERS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {fn} TO "{role}"')
    op.execute(f'DO $$ BEGIN EXECUTE format(\'GRANT CONNECT ON DATABASE %I TO "{role}"\', current_database()); END $$')
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    enable_policies(op.execute, POLICIES, role=role)
    op.execute(f'GRANT SELECT ON reservations_owner, commons_public TO "{role}"')
    # Tables made later are granted too, so a table without policies is open to the app: the test
    # test_every_table_has_row_level_security is what stops it (see commons_map.tenancy).
    op.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"')
    op.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"')


def downgrade() -> None:
    role = app_role()
    op.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM "{role}"')
    op.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM "{role}"')
    drop_policies(op.execute, POLICIES)
    op.execute("DROP VIEW reservations_owner, commons_public")
    for fn in (*DEFINERS, "app_cooperative_id()", "app_member_id()"):
        op.execute(f"DROP FUNCTION {fn}")
    # the role is the cluster's (other databases may use it): only its rights here go
    op.execute(f'DROP OWNED BY "{role}"')
