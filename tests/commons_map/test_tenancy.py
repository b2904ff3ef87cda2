"""Isolation of cooperatives by PostgreSQL itself: plain SQL sessions logged in as the app's role
(no service code), on the demo's two cooperatives (commons_map.tenancy, migration 0012_tenancy).

The other cooperative (cic-diois) acts against the demo's (cic-saillans), which has rows in nearly
every table; the rows of one cooperative that are not public must stay out of reach of the other:
not read, not updated, not deleted, and none written in its name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from commons_map.demo.load import DEMO_SLUG, OTHER_SLUG
from commons_map.settings import Settings


def _via(parent: str, fk: str, column: str = "cooperative_id") -> str:
    return f"(SELECT p.{column} FROM {parent} p WHERE p.id = t.{fk})"


def _public_commons(fk: str) -> str:
    return f"EXISTS (SELECT 1 FROM commons c WHERE c.id = t.{fk} AND c.visibility = 'public')"


# Every table of the schema: the cooperative a row belongs to (SQL over ``t``) and which rows
# anyone may read; None: a table no cooperative owns (shared reference lists). A table missing
# here, or without row-level security and policies, fails test_every_table_has_row_level_security.
OWNERSHIP: dict[str, tuple[str | None, str]] = {
    "cooperatives": ("t.id", "true"),
    "commons_kinds": ("t.cooperative_id", "true"),  # shipped ones (NULL) and a cooperative's own, read by all
    "exchange_categories": (None, "true"),
    "work_activities": ("t.cooperative_id", "t.cooperative_id IS NULL"),  # shipped ones: everyone's
    "work_activities_retired": ("t.cooperative_id", "false"),
    "member_web_sessions": (_via("members", "member_id"), "false"),
    "partners": ("t.cooperative_id", "true"),  # shown on the public map
    "partner_layers": (_via("partners", "partner_id"), "true"),
    "login_failures": (None, "true"),
    "members": ("t.cooperative_id", "false"),
    "member_roles": (_via("members", "member_id"), "false"),
    "role_changes": ("t.cooperative_id", "false"),
    "commons": ("t.cooperative_id", "t.visibility = 'public'"),
    "commons_stewards": (_via("commons", "commons_id"), "false"),
    "commons_history": (_via("commons", "commons_id"), _public_commons("commons_id")),
    "ledger_accounts": ("t.cooperative_id", "false"),
    "ledger_account_history": (_via("ledger_accounts", "account_id"), "false"),
    "ledger_transfers": ("t.cooperative_id", "false"),
    "ledger_postings": (_via("ledger_transfers", "transfer_id"), "false"),
    "work_logs": ("t.cooperative_id", "false"),
    "work_log_companions": (_via("work_logs", "work_log_id"), "false"),
    "work_log_history": (_via("work_logs", "work_log_id"), "false"),
    "resource_rules": (_via("commons", "commons_id"), _public_commons("commons_id")),
    "reservations": (_via("commons", "resource_id"), _public_commons("resource_id")),
    "reservation_events": ("(SELECT c.cooperative_id FROM reservations r JOIN commons c ON c.id = r.resource_id"
                           " WHERE r.id = t.reservation_id)", "false"),
    "reservation_waits": (_via("commons", "resource_id"), "false"),
    "calendar_tokens": (_via("members", "member_id"), "false"),
    "soil_indicators": ("t.cooperative_id", "true"),
    "crops": ("t.cooperative_id", "true"),  # public harvests name them, like the indicators
    "soil_samples": ("t.cooperative_id", _public_commons("commons_id")),
    "soil_measurements": (_via("soil_samples", "sample_id"), "EXISTS (SELECT 1 FROM soil_samples s JOIN commons c"
                          " ON c.id = s.commons_id WHERE s.id = t.sample_id AND c.visibility = 'public')"),
    "soil_practices": ("t.cooperative_id", _public_commons("commons_id")),
    "soil_sample_history": ("t.cooperative_id", "false"),
    "harvests": ("t.cooperative_id", _public_commons("commons_id")),
    "harvest_shares": (_via("harvests", "harvest_id"), "EXISTS (SELECT 1 FROM harvests h JOIN commons c"
                       " ON c.id = h.commons_id WHERE h.id = t.harvest_id AND c.visibility = 'public')"),
    "field_tokens": (_via("members", "member_id"), "false"),
    "field_submissions": ("t.cooperative_id", "false"),
    "field_submission_attachments": (_via("field_submissions", "submission_id"), "false"),
    "publish_figures": ("t.cooperative_id", "true"),
    "publish_figures_digests": ("t.cooperative_id", "true"),
    "publish_merged": (None, "true"),  # low-zoom tiles per cell: derived from public rows, no one owns a cell
    "exchange_posts": ("t.cooperative_id", "t.visibility = 'public'"),
    "exchanges": ("t.cooperative_id", "false"),
    "exchange_messages": (_via("exchanges", "exchange_id"), "false"),
    "exchange_history": ("t.cooperative_id", "false"),
    "exchange_fund_stewards": ("t.cooperative_id", "false"),
    "exchange_supports": ("t.cooperative_id", "false"),
    "exchange_visits": (_via("members", "member_id"), "false"),
    "governance_circles": ("t.cooperative_id", "false"),
    "governance_circle_roles": (_via("governance_circles", "circle_id"), "false"),
    "governance_role_thresholds": (_via("governance_circles", "circle_id"), "false"),
    "governance_proposals": ("t.cooperative_id", "t.public"),
    "governance_amendments": (_via("governance_proposals", "proposal_id"), _via("governance_proposals", "proposal_id",
                                                                                 "public")),
    "governance_positions": (_via("governance_proposals", "proposal_id"), _via("governance_proposals", "proposal_id",
                                                                               "public")),
    "governance_agreements": ("t.cooperative_id", "false"),
    "governance_agreement_revisions": (_via("governance_agreements", "agreement_id"), "false"),
    "governance_trust": (_via("governance_circles", "circle_id"), "false"),
    "governance_role_history": ("t.cooperative_id", "false"),
    "notifications": ("t.cooperative_id", "false"),
    "deliveries": ("t.cooperative_id", "false"),
    "notification_preferences": (_via("members", "member_id"), "false"),
    "notify_settings": (_via("members", "member_id"), "false"),
}
# Rows that belong to two cooperatives at once (a clearing line and what crosses it): either side
# reads and writes them, a third reads nothing (test_a_third_cooperative_sees_nothing_of_a_line).
TWO_SIDED = {
    "clearing_lines": "t.cooperative_id = {c} OR t.partner_cooperative_id = {c}",
    "clearing_payments": "t.cooperative_id = {c} OR t.partner_cooperative_id = {c}",
    "clearing_line_history": "EXISTS (SELECT 1 FROM clearing_lines l WHERE l.id = t.line_id"
                             " AND (l.cooperative_id = {c} OR l.partner_cooperative_id = {c}))",
}
OWNERSHIP.update({t: ("t.cooperative_id", "false") for t in TWO_SIDED})
# Rows an exchange's parties reach across cooperatives (migration 0019_exchange_network): owned by
# the exchange's cooperative (its post's, OWNERSHIP above), read and written also by the party from
# another cooperative ({m}: the acting member, who must be a member of the acting cooperative; a new
# exchange also needs an accepted line). A third cooperative reaches none of them
# (test_only_the_parties_of_an_exchange_across_reach_it).
PARTIES = {
    "exchanges": "{m} IN (t.provider_id, t.receiver_id)",
    "exchange_messages": "EXISTS (SELECT 1 FROM exchanges e WHERE e.id = t.exchange_id"
                         " AND {m} IN (e.provider_id, e.receiver_id))",
    "exchange_history": "EXISTS (SELECT 1 FROM exchanges e WHERE e.id = t.exchange_id"
                        " AND e.cooperative_id = t.cooperative_id AND {m} IN (e.provider_id, e.receiver_id))",
}
OWNED = sorted(t for t, (owner, _) in OWNERSHIP.items() if owner is not None and t not in TWO_SIDED)
NOT_APP_TABLES = ("alembic_version", "spatial_ref_sys")  # the migrations' and PostGIS's own


def tables_without_policies(conn: Connection) -> list[str]:
    """Tables of the public schema the app's role could reach unguarded: row-level security off, or
    on without a single policy, or a table this test does not know (OWNERSHIP)."""
    rows = conn.execute(text(
        "SELECT c.relname, c.relrowsecurity, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY(:skip)"
        " ORDER BY 1"), {"skip": list(NOT_APP_TABLES)}).all()
    return [name for name, rls, policies in rows if not rls or policies == 0 or name not in OWNERSHIP]


@pytest.fixture(scope="module")
def app_engine(engine: Engine, settings: Settings) -> Iterator[Engine]:
    """Connections that log in as the app's role (engine: the demo is loaded, by the owner)."""
    eng = create_engine(settings.app_url, pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def coops(engine: Engine) -> dict[str, tuple[int, int]]:
    """(cooperative id, a member's id) of the demo's cooperative ("demo") and of the other."""
    with engine.connect() as c:
        def one(slug: str) -> tuple[int, int]:
            return tuple(c.execute(text(
                "SELECT co.id, min(m.id) FROM cooperatives co JOIN members m ON m.cooperative_id = co.id"
                " WHERE co.slug = :s GROUP BY co.id"), {"s": slug}).one())
        return {"demo": one(DEMO_SLUG), "other": one(OTHER_SLUG)}


def act(conn: Connection, coop_member: tuple[int, int] | None) -> None:
    """What the app does at each transaction: set the acting cooperative and member (or nobody)."""
    coop, member = coop_member or ("", "")
    conn.execute(text("SELECT set_config('app.cooperative_id', :c, true), set_config('app.member_id', :m, true)"),
                 {"c": str(coop), "m": str(member)})


def _theirs(table: str, coop: int) -> str:
    owner, public = OWNERSHIP[table]
    return f"{owner} = {coop} AND NOT ({public})"


def _owner_count(engine: Engine, table: str, where: str) -> int:
    with engine.connect() as c:
        return c.execute(text(f"SELECT count(*) FROM {table} t WHERE {where}")).scalar_one()


# --- the role ---------------------------------------------------------------------------------


def test_the_app_logs_in_as_a_role_that_owns_nothing_and_is_no_superuser(app_engine, settings) -> None:
    with app_engine.connect() as c:
        who, session_user = c.execute(text("SELECT current_user, session_user")).one()
        assert who == session_user == settings.app_role  # logged in, not SET ROLE
        attrs = c.execute(text("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
                               " WHERE rolname = current_user")).one()
        assert attrs == (False, False, False, False)
        owned = c.execute(text(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
            " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
            " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
            " FROM pg_roles r WHERE r.rolname = current_user")).scalar_one()
        assert owned == 0


@pytest.mark.parametrize("statement", [
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "ALTER TABLE commons DISABLE ROW LEVEL SECURITY",
    "DROP POLICY tenant ON commons",
    "CREATE TABLE escape (id int)",
    "SELECT * FROM alembic_version",
])
def test_the_app_role_cannot_climb_out(app_engine, statement) -> None:
    with app_engine.connect() as c, pytest.raises(ProgrammingError) as err:
        c.execute(text(statement))
    assert err.value.orig.sqlstate in ("42501", "42704"), err.value  # insufficient privilege (or unknown)


# --- every table is guarded ----------------------------------------------------------------------


def test_every_table_has_row_level_security(engine) -> None:
    with engine.connect() as c:
        assert tables_without_policies(c) == []


def test_the_app_only_reads_through_views(engine, settings) -> None:
    """A simple view is updatable with its owner's rights, past the policies of the table under it:
    the default privileges grant the app writes on every new relation, so each view must take them
    back (as 0019_exchange_network does for exchange_posts_readable)."""
    with engine.connect() as c:
        writable = c.execute(text(
            "SELECT c.relname, p.privilege FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) AS p(privilege)"
            " WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')"
            " AND has_table_privilege(:role, c.oid, p.privilege) ORDER BY 1, 2"), {"role": settings.app_role}).all()
        views = c.execute(text("SELECT count(*) FROM pg_views WHERE schemaname = 'public'")).scalar_one()
    assert views >= 3, "commons_public, reservations_owner, exchange_posts_readable at least"
    assert writable == []


@pytest.mark.parametrize("table", sorted(TWO_SIDED))
def test_a_third_cooperative_sees_nothing_of_a_line(table, engine, app_engine) -> None:
    """The demo's Saillans-Diois line and its crossing payments: both sides read them, Crest (a third
    cooperative, with no accepted line to either) reads none, and writes none."""
    with engine.connect() as c:
        ids = dict(c.execute(text("SELECT slug, id FROM cooperatives")).all())
        member = dict(c.execute(text("SELECT cooperative_id, min(id) FROM members GROUP BY 1")).all())
    saillans, diois, crest = ids[DEMO_SLUG], ids[OTHER_SLUG], ids["cic-crest"]
    sides = _owner_count(engine, table, TWO_SIDED[table].format(c=saillans))
    assert sides > 0, "the demo's line has rows here"
    for coop, expected in ((saillans, sides), (diois, _owner_count(engine, table, TWO_SIDED[table].format(c=diois))),
                           (crest, _owner_count(engine, table, TWO_SIDED[table].format(c=crest)))):
        with app_engine.connect() as c:
            act(c, (coop, member[coop]))
            assert c.execute(text(f"SELECT count(*) FROM {table} t")).scalar_one() == expected
            if coop == crest:  # its own pending line aside, nothing of the others' is written
                others = f"NOT ({TWO_SIDED[table].format(c=crest)})"
                assert c.execute(text(f"UPDATE {table} t SET cooperative_id = cooperative_id WHERE {others}")
                                 ).rowcount == 0
                assert c.execute(text(f"DELETE FROM {table} t WHERE {others}")).rowcount == 0
            c.rollback()


def test_a_new_table_without_policies_fails_the_check(engine) -> None:
    with engine.connect() as c, c.begin() as tx:
        c.execute(text("CREATE TABLE partners_without_policy (id serial PRIMARY KEY, cooperative_id int)"))
        assert tables_without_policies(c) == ["partners_without_policy"]
        c.execute(text("ALTER TABLE partners_without_policy ENABLE ROW LEVEL SECURITY"))
        assert tables_without_policies(c) == ["partners_without_policy"]  # on, but no policy yet
        tx.rollback()


def test_the_check_knows_every_table_it_names(engine) -> None:
    with engine.connect() as c:
        present = set(c.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    assert set(OWNERSHIP) <= present


# --- reads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", OWNED)
def test_another_cooperative_reads_nothing_of_ours_but_public_rows(table, engine, app_engine, coops) -> None:
    demo, other = coops["demo"], coops["other"]
    theirs = _theirs(table, demo[0])
    ours_all = _owner_count(engine, table, f"{OWNERSHIP[table][0]} = {demo[0]}")
    with app_engine.connect() as c:
        act(c, other)
        assert c.execute(text(f"SELECT count(*) FROM {table} t WHERE {theirs}")).scalar_one() == 0
        act(c, demo)  # and the cooperative itself sees all of its rows: the policy hides nothing of its own
        assert c.execute(text(f"SELECT count(*) FROM {table} t WHERE {OWNERSHIP[table][0]} = {demo[0]}")
                         ).scalar_one() == ours_all


@pytest.mark.parametrize("table", OWNED)
def test_without_settings_a_connection_sees_no_member_data(table, app_engine) -> None:
    public = OWNERSHIP[table][1]
    with app_engine.connect() as c:
        # not set at all (a fresh transaction), then set to empty: no rows, no error
        assert c.execute(text(f"SELECT count(*) FROM {table} t WHERE NOT ({public})")).scalar_one() == 0
        act(c, None)
        assert c.execute(text(f"SELECT count(*) FROM {table} t WHERE NOT ({public})")).scalar_one() == 0


def test_the_demo_fills_the_tables_the_read_tests_read(engine, coops) -> None:
    """The read tests are not vacuous: the demo's cooperative has non-public rows in most tables."""
    empty = [t for t in OWNED if OWNERSHIP[t][1] != "true"
             and _owner_count(engine, t, _theirs(t, coops["demo"][0])) == 0]
    assert len(empty) <= len(OWNED) // 3, empty


# --- writes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", OWNED)
def test_another_cooperative_cannot_update_or_delete_our_rows(table, engine, app_engine, coops) -> None:
    demo, other = coops["demo"], coops["other"]
    owner_sql = OWNERSHIP[table][0]
    with app_engine.connect() as c, c.begin() as tx:
        act(c, other)
        col = c.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"
                             " ORDER BY ordinal_position LIMIT 1"), {"t": table}).scalar_one()
        # the rows' own triggers (immutable ledgers) do not even fire: none is reached
        assert c.execute(text(f"UPDATE {table} t SET {col} = {col} WHERE {owner_sql} = {demo[0]}")).rowcount == 0
        assert c.execute(text(f"DELETE FROM {table} t WHERE {owner_sql} = {demo[0]}")).rowcount == 0
        tx.rollback()


@pytest.mark.parametrize("table", OWNED)
def test_another_cooperative_cannot_write_a_row_into_ours(table, engine, app_engine, coops) -> None:
    """A copy of one of our rows (the owner reads it), inserted by the other cooperative: refused
    by the policies' WITH CHECK, before any constraint is looked at."""
    demo, other = coops["demo"], coops["other"]
    with engine.connect() as c:
        row = c.execute(text(f"SELECT row_to_json(t)::text FROM {table} t WHERE {OWNERSHIP[table][0]} = {demo[0]}"
                             " LIMIT 1")).scalar()
    if row is None:
        pytest.skip(f"the demo has no row of {table} to copy")  # counted by test_the_demo_fills...
    with engine.connect() as c:
        cols = ", ".join(c.execute(text(
            "SELECT quote_ident(column_name) FROM information_schema.columns WHERE table_name = :t"
            " AND is_generated = 'NEVER' ORDER BY ordinal_position"), {"t": table}).scalars())
    insert = text(f"INSERT INTO {table} ({cols})"
                  f" SELECT {cols} FROM json_populate_record(NULL::{table}, CAST(:r AS json))")
    for actor in (other, None):  # the other cooperative's member, and nobody
        with app_engine.connect() as c, c.begin() as tx:
            act(c, actor)
            with pytest.raises(DBAPIError) as err:
                c.execute(insert, {"r": row})
            assert "row-level security" in str(err.value.orig), err.value.orig
            tx.rollback()


@pytest.mark.parametrize("table", sorted(t for t in OWNED if OWNERSHIP[t][0] == "t.cooperative_id"))
def test_a_row_cannot_be_moved_into_another_cooperative(table, engine, app_engine, coops) -> None:
    demo, other = coops["demo"], coops["other"]
    if _owner_count(engine, table, f"t.cooperative_id = {demo[0]}") == 0:
        pytest.skip(f"the demo has no row of {table} to move")
    with app_engine.connect() as c, c.begin() as tx:
        act(c, demo)
        with pytest.raises(DBAPIError) as err:
            c.execute(text(f"UPDATE {table} SET cooperative_id = {other[0]} WHERE cooperative_id = {demo[0]}"))
        # refused by the policy's WITH CHECK, or before it by a BEFORE UPDATE trigger of the table
        # (the ledger is immutable, a closed proposal final): either way nothing moves
        assert ("row-level security" in str(err.value.orig)
                or err.value.orig.sqlstate in ("23001", "55000")), err.value.orig
        tx.rollback()


# --- the ways in before the cooperative is known -------------------------------------------------


def test_the_narrow_lookups_give_an_id_and_nothing_more(app_engine, coops) -> None:
    with app_engine.connect() as c:
        act(c, None)
        member = c.execute(text("SELECT commons_member_by_username('diois')")).scalar_one()
        assert member == coops["other"][1] or member is not None
        assert c.execute(text("SELECT commons_member_cooperative(:m)"), {"m": member}).scalar_one() == coops["other"][0]
        assert c.execute(text("SELECT commons_member_by_username('nobody-here')")).scalar_one() is None
        assert c.execute(text("SELECT commons_member_by_field_token('0' || repeat('f', 63))")).scalar_one() is None
        # the member's own row once they act, never anyone else's, never before
        assert c.execute(text("SELECT count(*) FROM members")).scalar_one() == 0
        c.execute(text("SELECT set_config('app.member_id', :m, true)"), {"m": str(member)})
        assert c.execute(text("SELECT array_agg(id) FROM members")).scalar_one() == [member]


def test_a_bad_setting_is_an_error_not_a_way_around(app_engine) -> None:
    with app_engine.connect() as c, pytest.raises(DBAPIError):
        c.execute(text("SELECT set_config('app.cooperative_id', '1 OR true', true)"))
        c.execute(text("SELECT count(*) FROM members")).scalar_one()


# --- the helpers the services use ---------------------------------------------------------------


def test_act_for_member_sets_both_and_an_unknown_member_is_nobody(app_engine, coops) -> None:
    from sqlalchemy.orm import Session

    from commons_map.tenancy import act_for_member, acting

    with Session(app_engine) as s:
        assert act_for_member(s, coops["other"][1]) == coops["other"][0]
        assert acting(s) == (coops["other"][1], coops["other"][0])
        assert s.execute(text("SELECT app_cooperative_id(), app_member_id()")).one() == (
            coops["other"][0], coops["other"][1])
        s.commit()  # the next transaction carries the same actor (after_begin)
        assert s.execute(text("SELECT app_cooperative_id()")).scalar_one() == coops["other"][0]
        assert act_for_member(s, 2**31 - 1) is None
        assert acting(s) == (None, None)
        assert s.execute(text("SELECT count(*) FROM members")).scalar_one() == 0


def test_acting_cooperative_switches_for_one_step_and_comes_back(app_engine, coops) -> None:
    from sqlalchemy.orm import Session

    from commons_map.tenancy import act_for_member, acting, acting_cooperative

    demo, other = coops["demo"], coops["other"]
    with Session(app_engine) as s:
        act_for_member(s, other[1])
        with acting_cooperative(s, demo[0]):
            assert s.execute(text("SELECT count(*) FROM ledger_accounts")).scalar_one() > 0
            assert s.execute(text("SELECT bool_and(cooperative_id = :d) FROM ledger_accounts"),
                             {"d": demo[0]}).scalar_one()
        assert acting(s) == (other[1], other[0])
        assert s.execute(text("SELECT count(*) FROM ledger_accounts WHERE cooperative_id = :d"),
                         {"d": demo[0]}).scalar_one() == 0
        # an error inside: the transaction is lost, the next one acts as before
        with pytest.raises(DBAPIError), acting_cooperative(s, demo[0]):
            s.execute(text("SELECT 1 / 0"))
        s.rollback()
        assert acting(s) == (other[1], other[0])
        assert s.execute(text("SELECT app_cooperative_id()")).scalar_one() == other[0]


def test_the_served_app_reads_through_the_app_role(settings, engine, coops) -> None:
    """The app as served (no test override): its engine logs in as the app role, and a member of the
    other cooperative sees the demo's public commons but none of its members-only or private ones."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from commons_map.people.auth import issue_token
    from commons_map.people.models import Member

    with engine.connect() as c:
        hidden = c.execute(text("SELECT count(*) FROM commons WHERE cooperative_id = :d AND visibility <> 'public'"),
                           {"d": coops["demo"][0]}).scalar_one()
    assert hidden > 0
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        diois = s.get(Member, coops["other"][1])
        token = issue_token(diois, settings)
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.engine.url.username == settings.app_role
        me = client.get("/api/v1/members/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "diois"
        with engine.connect() as c:
            members_only = c.execute(text("SELECT min(id) FROM commons WHERE cooperative_id = :d"
                                          " AND visibility = 'members'"), {"d": coops["demo"][0]}).scalar_one()
        seen = client.get(f"/api/v1/commons/{members_only}", headers={"Authorization": f"Bearer {token}"})
        assert seen.status_code in (403, 404), seen.text
        with app.state.engine.connect() as c:
            act(c, coops["other"])
            assert c.execute(text("SELECT count(*) FROM commons WHERE cooperative_id = :d AND visibility <> 'public'"),
                             {"d": coops["demo"][0]}).scalar_one() == 0
        bad = client.get("/api/v1/members/me", headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401


def test_the_public_view_shows_public_commons_only(engine, app_engine) -> None:
    """``commons_public`` (the map's, OGC API's and tiles' source) is owned by the owner: its own
    WHERE is the wall, so it must hold nothing but public rows, for anyone."""
    with engine.connect() as c:
        public = c.execute(text("SELECT count(*) FROM commons WHERE visibility = 'public'")).scalar_one()
        hidden = c.execute(text("SELECT count(*) FROM commons WHERE visibility <> 'public'")).scalar_one()
    assert public > 0 and hidden > 0
    with app_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM commons_public")).scalar_one() == public
        assert c.execute(text("SELECT count(*) FROM commons_public WHERE visibility <> 'public'")).scalar_one() == 0
        with pytest.raises(ProgrammingError):  # read-only for the app
            c.execute(text("DELETE FROM commons_public"))


@pytest.mark.parametrize("table", OWNED)
def test_every_write_policy_of_a_cooperative_table_checks_the_acting_cooperative(table, engine) -> None:
    """What the row copies above show on the demo's rows, for every table even where the demo has
    none: each policy that lets the app write (ALL, INSERT, UPDATE) checks the acting cooperative."""
    with engine.connect() as c:
        rows = c.execute(text("SELECT policyname, cmd, qual, with_check FROM pg_policies WHERE tablename = :t"),
                         {"t": table}).all()
    writers = [r for r in rows if r.cmd in ("ALL", "INSERT", "UPDATE", "DELETE")]
    assert writers, f"{table}: no policy lets the app write it"
    for r in writers:
        for expr in (r.qual, r.with_check if r.cmd != "DELETE" else r.qual):
            assert expr is not None and "app_cooperative_id()" in expr, (table, r)
    readers = [r for r in rows if r.cmd == "SELECT"]
    for r in readers:  # extra read policies: only what OWNERSHIP says is public, or the member's own row
        assert r.policyname in ("public_read", "directory", "self_read", "shared_read"), (table, r)


def test_db_upgrade_gives_the_app_role_the_password_of_its_url(settings, engine) -> None:
    from sqlalchemy.engine import make_url

    from commons_map.tenancy import sync_app_password

    assert sync_app_password(settings) is False  # no COMMONS_DATABASE_APP_URL: nothing to set
    with_pw = make_url(settings.app_url).set(password="it's-a-secret").render_as_string(hide_password=False)
    other_user = make_url(settings.app_url).set(username="someone", password="x").render_as_string(hide_password=False)
    assert sync_app_password(settings.model_copy(update={"database_app_url": other_user})) is False
    try:
        assert sync_app_password(settings.model_copy(update={"database_app_url": with_pw})) is True
        with engine.connect() as c:
            assert c.execute(text("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = :r"),
                             {"r": settings.app_role}).scalar_one()
    finally:  # trust authentication here: the password is not asked; leave the role as it was
        with engine.begin() as c:
            c.exec_driver_sql(f'ALTER ROLE "{settings.app_role}" PASSWORD NULL')


# --- exchanges across cooperatives (migration 0019_exchange_network) -----------------------------


def _as_app(c: Connection, settings: Settings, actor: tuple[int, int] | None) -> None:
    c.execute(text(f'SET LOCAL ROLE "{settings.app_role}"'))
    act(c, actor)


@pytest.mark.parametrize("table", sorted(PARTIES))
def test_only_the_parties_of_an_exchange_across_reach_it(table, engine, settings) -> None:
    """An exchange of a Saillans post with a Diois member (the two have an accepted line), made by the
    owner in a transaction rolled back after: the Diois party and Saillans read it; another Diois
    member, a Crest member, and the party's id under another cooperative read none of it, and
    update or delete none of it."""
    with engine.connect() as c, c.begin() as tx:
        ids = dict(c.execute(text("SELECT slug, id FROM cooperatives")).all())
        saillans, diois, crest = ids[DEMO_SLUG], ids[OTHER_SLUG], ids["cic-crest"]
        post, author = c.execute(text("SELECT id, author_id FROM exchange_posts WHERE cooperative_id = :s"
                                      " ORDER BY id LIMIT 1"), {"s": saillans}).one()
        party, bystander = c.execute(text("SELECT id FROM members WHERE cooperative_id = :d ORDER BY id LIMIT 2"),
                                     {"d": diois}).scalars().all()
        other = c.execute(text("SELECT min(id) FROM members WHERE cooperative_id = :c"), {"c": crest}).scalar_one()
        ex = c.execute(text(
            "INSERT INTO exchanges (cooperative_id, post_id, provider_id, receiver_id, opened_by_id, minutes)"
            " VALUES (:s, :p, :a, :m, :m, 30) RETURNING id"), {"s": saillans, "p": post, "a": author, "m": party}
        ).scalar_one()
        c.execute(text("INSERT INTO exchange_messages (exchange_id, author_id, body) VALUES (:e, :m, 'Bonjour')"),
                  {"e": ex, "m": party})
        c.execute(text("INSERT INTO exchange_history (cooperative_id, exchange_id, member_id, action, changes)"
                       " VALUES (:s, :e, :m, 'proposed', '{}')"), {"s": saillans, "e": ex, "m": party})
        this = f"{PARTIES[table].format(m=party)} AND {'t.id' if table == 'exchanges' else 't.exchange_id'} = {ex}"
        expected = c.execute(text(f"SELECT count(*) FROM {table} t WHERE {this}")).scalar_one()
        assert expected >= 1
        for actor, sees in (((diois, party), expected), ((saillans, author), expected), ((diois, bystander), 0),
                            ((crest, other), 0), ((crest, party), 0), (None, 0)):
            c.execute(text("SAVEPOINT actor"))
            _as_app(c, settings, actor)
            assert c.execute(text(f"SELECT count(*) FROM {table} t WHERE {this}")).scalar_one() == sees, actor
            if sees == 0:
                col = "exchange_id" if table != "exchanges" else "id"
                assert c.execute(text(f"UPDATE {table} t SET {col} = {col} WHERE {this}")).rowcount == 0
                assert c.execute(text(f"DELETE FROM {table} t WHERE {this}")).rowcount == 0
            c.execute(text("ROLLBACK TO SAVEPOINT actor"))
        tx.rollback()


def test_a_party_opens_an_exchange_across_only_along_an_accepted_line(engine, settings) -> None:
    """The Diois member may write an exchange into Saillans' table naming themselves (the two agreed);
    a Crest member may not (Crest's line is not accepted), nor may anyone move an exchange away."""
    with engine.connect() as c, c.begin() as tx:
        ids = dict(c.execute(text("SELECT slug, id FROM cooperatives")).all())
        saillans, diois, crest = ids[DEMO_SLUG], ids[OTHER_SLUG], ids["cic-crest"]
        post, author = c.execute(text("SELECT id, author_id FROM exchange_posts WHERE cooperative_id = :s"
                                      " ORDER BY id LIMIT 1"), {"s": saillans}).one()
        member = dict(c.execute(text("SELECT cooperative_id, min(id) FROM members GROUP BY 1")).all())
        insert = text("INSERT INTO exchanges (cooperative_id, post_id, provider_id, receiver_id, opened_by_id,"
                      " minutes) VALUES (:s, :p, :a, :m, :m, 30) RETURNING id")
        c.execute(text("SAVEPOINT diois"))
        _as_app(c, settings, (diois, member[diois]))
        ex = c.execute(insert, {"s": saillans, "p": post, "a": author, "m": member[diois]}).scalar_one()
        with pytest.raises(DBAPIError) as err:  # and it stays in Saillans' table
            c.execute(text("UPDATE exchanges SET cooperative_id = :d WHERE id = :e"), {"d": diois, "e": ex})
        assert err.value.orig.sqlstate == "55000", err.value.orig
        c.execute(text("ROLLBACK TO SAVEPOINT diois"))
        _as_app(c, settings, (crest, member[crest]))
        with pytest.raises(DBAPIError) as err:
            c.execute(insert, {"s": saillans, "p": post, "a": author, "m": member[crest]})
        assert "row-level security" in str(err.value.orig), err.value.orig
        tx.rollback()


def test_the_posts_view_shows_what_the_table_would(engine, app_engine, coops) -> None:
    """``exchange_posts_readable`` (the search's source, owned by the owner): a cooperative's own posts
    and public ones, nothing else, for anyone; read-only."""
    demo, other = coops["demo"], coops["other"]
    with engine.connect() as c:
        public = c.execute(text("SELECT count(*) FROM exchange_posts WHERE visibility = 'public'")).scalar_one()
        demo_hidden = c.execute(text("SELECT count(*) FROM exchange_posts WHERE visibility <> 'public'"
                                     " AND cooperative_id = :d"), {"d": demo[0]}).scalar_one()
        everything = c.execute(text("SELECT count(*) FROM exchange_posts")).scalar_one()
        assert c.execute(text("SELECT count(*) FROM exchange_posts_readable")).scalar_one() == everything  # owner
    assert demo_hidden > 0
    with app_engine.connect() as c:
        hidden = "visibility <> 'public' AND cooperative_id <> app_cooperative_id()"
        for actor in (other, None):
            act(c, actor)
            assert c.execute(text("SELECT count(*) FROM exchange_posts_readable"
                                  " WHERE visibility <> 'public' AND cooperative_id = :d"), {"d": demo[0]}
                             ).scalar_one() == 0
            assert c.execute(text(f"SELECT count(*) FROM exchange_posts_readable WHERE {hidden}")).scalar_one() == 0
        act(c, demo)
        assert c.execute(text("SELECT count(*) FROM exchange_posts_readable WHERE visibility <> 'public'"
                              " AND cooperative_id = :d"), {"d": demo[0]}).scalar_one() == demo_hidden
        assert c.execute(text("SELECT count(*) FROM exchange_posts_readable WHERE visibility = 'public'")
                         ).scalar_one() == public
        for write in ("DELETE FROM exchange_posts_readable", "UPDATE exchange_posts_readable SET title = title",
                      "INSERT INTO exchange_posts_readable (title) VALUES ('x')"):
            with pytest.raises(ProgrammingError) as err:  # read-only for the app: no way past the policies
                c.execute(text(write))
            assert "permission denied" in str(err.value.orig), err.value.orig
            c.rollback()
            act(c, demo)
