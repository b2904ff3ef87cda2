"""Offers and needs across cooperatives, and a readable face of the posts for the search.

1. Exchanges between cooperatives that agreed to it (an accepted clearing line): an exchange and
   its thread live in the post's cooperative's tables; the party from the other cooperative reads
   and writes them through a ``party`` policy on ``exchanges``, ``exchange_messages`` and
   ``exchange_history``: the acting member is a party of the exchange AND a member of the acting
   cooperative; a new exchange row also needs an accepted line between the two cooperatives. A third
   cooperative's members are parties of nothing: they see nothing. An exchange never moves to
   another cooperative (a trigger), so the party policy cannot carry one away.
2. ``exchange_posts_readable``: the posts the acting cooperative may read, by the very rule of
   the table's policies (its own, and public ones; all of them for the owner, whom the policies do
   not hold, as the table itself), as a view owned by the owner. The search reads
   it: under the table's policies, the text search's ``@@`` and PostGIS's ``&&`` (not leakproof)
   could not use their indexes, and a search on 100,000 posts read them all (as ``commons_public``
   for the map, migration 0012_tenancy).

Revision ID: 0019_exchange_network
Revises: 0018_network_policies
Create Date: 2026-11-29
"""
from alembic import op

from commons_map.tenancy import COOP, MEMBER, app_role

revision = "0019_exchange_network"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None

# the acting member, a member of the acting cooperative, is a provider or receiver of exchange {e}
PARTY = (f"{MEMBER} IN ({{e}}.provider_id, {{e}}.receiver_id)"
         f" AND commons_member_cooperative({MEMBER}) = {COOP}")
LINE = ("EXISTS (SELECT 1 FROM clearing_lines l WHERE l.state = 'accepted' AND ("
        f"(l.cooperative_id = exchanges.cooperative_id AND l.partner_cooperative_id = {COOP})"
        f" OR (l.partner_cooperative_id = exchanges.cooperative_id AND l.cooperative_id = {COOP})))")
OF_PARTY = "EXISTS (SELECT 1 FROM exchanges e WHERE e.id = {table}.exchange_id{extra} AND " + PARTY.format(e="e") + ")"

POLICIES = {
    "exchanges": (PARTY.format(e="exchanges"), f"{PARTY.format(e='exchanges')} AND {LINE}"),
    "exchange_messages": (OF_PARTY.format(table="exchange_messages", extra=""),
                          OF_PARTY.format(table="exchange_messages", extra="")
                          + f" AND exchange_messages.author_id = {MEMBER}"),
    "exchange_history": (
        OF_PARTY.format(table="exchange_history", extra=" AND e.cooperative_id = exchange_history.cooperative_id"),
        OF_PARTY.format(table="exchange_history", extra=" AND e.cooperative_id = exchange_history.cooperative_id")
        + f" AND exchange_history.member_id = {MEMBER}"),
}

STAYS = """
CREATE FUNCTION exchanges_stay_in_their_cooperative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.cooperative_id IS DISTINCT FROM OLD.cooperative_id THEN
        RAISE EXCEPTION 'an exchange stays in its post''s cooperative' USING ERRCODE = '55000';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER exchanges_stay_in_their_cooperative BEFORE UPDATE OF cooperative_id ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_stay_in_their_cooperative();
"""


def upgrade() -> None:
    for table, (using, check) in POLICIES.items():
        op.execute(f"CREATE POLICY party ON {table} USING ({using}) WITH CHECK ({check})")
    op.execute(STAYS)
    op.execute(
        "CREATE VIEW exchange_posts_readable AS SELECT p.* FROM exchange_posts p"
        f" WHERE NOT row_security_active('exchange_posts') OR p.cooperative_id = {COOP} OR p.visibility = 'public'"
    )
    # Read-only for the app: the default privileges (0012_tenancy) grant writes on new relations,
    # views too, and a simple view is updatable with its owner's rights, past the table's policies.
    op.execute(f'REVOKE ALL ON exchange_posts_readable FROM "{app_role()}"')
    op.execute(f'GRANT SELECT ON exchange_posts_readable TO "{app_role()}"')


def downgrade() -> None:
    op.execute("DROP VIEW exchange_posts_readable")
    op.execute("DROP TRIGGER exchanges_stay_in_their_cooperative ON exchanges")
    op.execute("DROP FUNCTION exchanges_stay_in_their_cooperative()")
    for table in POLICIES:
        op.execute(f"DROP POLICY party ON {table}")
