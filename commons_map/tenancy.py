"""Isolation of cooperatives by PostgreSQL itself (row-level security), the wall under the services.

The app logs in as a role that owns nothing and is not a superuser (``Settings.app_role``,
``COMMONS_DATABASE_APP_URL``); the tables are owned by the role that runs the migrations and the
CLI's admin commands (the owner, whom row-level security does not hold). Every table carries
policies (migration 0012_tenancy) that read two settings of the transaction:

- ``app.cooperative_id``: the acting cooperative; a row of a cooperative's table is seen and
  written only when it belongs to it (public rows are read by anyone);
- ``app.member_id``: the acting member (their own row of ``members`` is visible before the
  cooperative is known).

Unset or empty means "nobody": no member data (fail closed), never an error. The settings are
transaction-local (``set_config(..., true)``): a pooled connection never carries them to the next
request. They are kept in ``session.info`` and set again at each transaction the session begins
(event ``after_begin``), so a commit in the middle of a request keeps the same actor.

Authentication meets the wall before it knows the cooperative: narrow ``SECURITY DEFINER``
functions owned by the owner turn a username, a field token or a calendar token into a member id,
and a member id (from a signed token or cookie) into its cooperative; nothing else, never the
password hash. The helpers here call them (``act_for_member``, ``member_id_by``).

New tables: give them policies in their migration (``enable_policies`` with the helpers below) (the test
``tests/commons_map/test_tenancy.py::test_every_table_has_row_level_security`` fails on a table
without). A step that must write into another cooperative in the same transaction (a crossing
payment's posting in the payee's ledger) switches the acting cooperative for that step only:
``with acting_cooperative(session, other_id): ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

INFO_KEY = "commons_map.tenancy"  # session.info[INFO_KEY] = (member_id, cooperative_id)
SETTING_COOP = "app.cooperative_id"
SETTING_MEMBER = "app.member_id"

# --- SQL for migrations ----------------------------------------------------------------------

COOP = "app_cooperative_id()"
MEMBER = "app_member_id()"


def coop_policy(table: str, *, column: str = "cooperative_id", public: str | None = None) -> list[str]:
    """Policies of a table that holds ``column``: its cooperative's rows only; ``public``: a
    predicate of the rows anyone may read (anonymous too), e.g. ``"visibility = 'public'"``."""
    own = f"{column} = {COOP}"
    out = [f"CREATE POLICY tenant ON {table} USING ({own}) WITH CHECK ({own})"]
    if public:
        out.append(f"CREATE POLICY public_read ON {table} FOR SELECT USING ({public})")
    return out


def child_policy(table: str, *, fk: str, parent: str, parent_column: str = "id",
                 public: str | None = None) -> list[str]:
    """Policies of a table whose rows belong to a parent row that holds ``cooperative_id``."""
    own = f"EXISTS (SELECT 1 FROM {parent} p WHERE p.{parent_column} = {table}.{fk} AND p.cooperative_id = {COOP})"
    out = [f"CREATE POLICY tenant ON {table} USING ({own}) WITH CHECK ({own})"]
    if public:
        out.append(f"CREATE POLICY public_read ON {table} FOR SELECT USING ({public})")
    return out


def shared_policy(table: str, *, writable: str | None = None) -> list[str]:
    """Policies of a table no cooperative owns (reference lists): read by all; written by the owner
    only, or also by the app when ``writable`` is "members" (a signed-in member: the services say
    which) or "anyone" (e.g. the sign-in throttle's failures, before anyone is known)."""
    read = [f"CREATE POLICY shared_read ON {table} FOR SELECT USING (true)"]
    if writable is None:
        return read
    who = {"members": f"{COOP} IS NOT NULL", "anyone": "true"}[writable]
    return [f"CREATE POLICY shared_write ON {table} USING ({who}) WITH CHECK ({who})", *read]


def policy_sql(table: str, policies: list[str]) -> list[str]:
    """Enable row-level security on ``table`` with these policies (from the helpers above)."""
    return [f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY", *policies]


def app_role() -> str:
    """The app's role name (``Settings.app_role``), checked to be a plain identifier for the SQL."""
    from commons_map.settings import get_settings

    role = get_settings().app_role
    assert role.replace("_", "").isalnum(), role
    return role


def enable_policies(execute: Any, policies: dict[str, list[str]], *, role: str | None = None) -> None:
    """In a migration (``execute`` = ``op.execute``): row-level security with these policies on each
    table, and the app's role granted its rows (the policies decide which) and the sequences."""
    role = role or app_role()
    for table, statements in policies.items():
        for statement in policy_sql(table, statements):
            execute(statement)
        execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"')
    execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')


def drop_policies(execute: Any, tables: Any) -> None:
    """Undo :func:`enable_policies` (a migration's downgrade): every policy of each table goes."""
    for table in tables:
        execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        execute(
            f"DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies WHERE tablename = '{table}'"
            f" LOOP EXECUTE format('DROP POLICY %I ON {table}', p.policyname); END LOOP; END $$"
        )


def sync_app_password(settings: Any) -> bool:
    """Give the app's role the password that ``COMMONS_DATABASE_APP_URL`` carries (run as the owner
    by ``commons-map db upgrade``, at every start); False when that URL has none (trust, peer...)."""
    from sqlalchemy.engine import make_url

    from commons_map.db import make_engine

    app = make_url(settings.app_url)
    if not settings.database_app_url or not app.password or app.username != settings.app_role:
        return False
    literal = "'" + str(app.password).replace("'", "''") + "'"
    engine = make_engine(settings, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER ROLE "{settings.app_role}" PASSWORD {literal}')
    finally:
        engine.dispose()
    return True


# --- the acting member and cooperative of a session --------------------------------------------


def _apply(session: Session, conn: Any) -> None:
    member_id, coop_id = session.info.get(INFO_KEY, (None, None))
    conn.execute(
        text("SELECT set_config(:k1, :v1, true), set_config(:k2, :v2, true)"),
        {"k1": SETTING_COOP, "v1": "" if coop_id is None else str(int(coop_id)),
         "k2": SETTING_MEMBER, "v2": "" if member_id is None else str(int(member_id))},
    )


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: Any, connection: Any) -> None:
    """Each transaction a session begins carries its actor. Nobody needs no round trip: the
    settings are transaction-local, so a transaction begins with none set (read as nobody)."""
    if session.info.get(INFO_KEY, (None, None)) != (None, None):
        _apply(session, connection)


def act_as(session: Session, *, member_id: int | None, cooperative_id: int | None) -> None:
    """Make the session act for this member of this cooperative (None, None: anonymous), now
    and in every transaction it begins after."""
    session.info[INFO_KEY] = (member_id, cooperative_id)
    if session.in_transaction():
        _apply(session, session.connection())


def acting(session: Session) -> tuple[int | None, int | None]:
    """(member id, cooperative id) the session acts for; (None, None) when anonymous."""
    return session.info.get(INFO_KEY, (None, None))


ONE_STATEMENT_KEY = "commons_map.one_statement"  # session.info: its reads run in autocommit


def read_in_one_statement(session: Session) -> bool:
    """Let an anonymous read that is ONE statement run outside a transaction block (autocommit):
    that spares the BEGIN and COMMIT round trips, and one statement sees one snapshot anyway.

    Only for a session that has not begun (its connection is taken now, in autocommit) and that
    acts for nobody: the tenancy settings are transaction-local, so in autocommit they would end
    with the statement that set them. True when applied: the caller then runs one statement, a
    read (``api.deps.get_session`` has nothing to commit after it). False: a plain transaction.
    """
    if session.in_transaction() or acting(session) != (None, None):
        return False
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    session.info[ONE_STATEMENT_KEY] = True
    return True


def act_for_member(session: Session, member_id: int | None) -> int | None:
    """Act for the member with this id (from a signed token, cookie or a lookup below): their
    cooperative is read through ``commons_member_cooperative`` (any member, active or not).
    Returns the cooperative id, or None (then anonymous) when there is no such member."""
    coop = None
    if member_id is not None:
        # One round trip: the lookup and the transaction's settings together (a member of no
        # cooperative sets nobody, as act_as below does again for the transactions after).
        coop = session.scalar(text(
            "SELECT c FROM (SELECT commons_member_cooperative(:m) AS c) x,"
            " LATERAL (SELECT set_config(:k1, coalesce(c::text, ''), true),"
            " set_config(:k2, CASE WHEN c IS NULL THEN '' ELSE :mt END, true)) s"),
            {"m": int(member_id), "mt": str(int(member_id)), "k1": SETTING_COOP, "k2": SETTING_MEMBER})
    member = member_id if coop is not None else None
    session.info[INFO_KEY] = (member, coop)  # set in this transaction already; in each one after
    if member_id is None and session.in_transaction():
        _apply(session, session.connection())
    return coop


LOOKUPS = {
    "username": "commons_member_by_username",
    "field_token": "commons_member_by_field_token",
    "calendar_token": "commons_member_by_calendar_token",
}


def member_id_by(session: Session, kind: str, value: str) -> int | None:
    """The member id a username (lower case) or a token hash names, or None; read whatever the
    session acts for, through the narrow ``SECURITY DEFINER`` lookups (``LOOKUPS``)."""
    return session.scalar(text(f"SELECT {LOOKUPS[kind]}(:v)"), {"v": value})


@contextmanager
def acting_cooperative(session: Session, cooperative_id: int) -> Iterator[None]:
    """Act for another cooperative for one step of the transaction (the member stays), then back.

    For the code that legitimately writes across (a crossing payment's leg in the other ledger):
    flush inside the block, so the rows are written while the setting holds."""
    before = acting(session)
    act_as(session, member_id=before[0], cooperative_id=cooperative_id)
    try:
        yield
        session.flush()
    except BaseException:
        session.info[INFO_KEY] = before  # the transaction is rolled back; the next one starts as before
        raise
    act_as(session, member_id=before[0], cooperative_id=before[1])
