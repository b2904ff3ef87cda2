"""The register: cooperatives, members and roles, kinds of commons, commons, stewards, history.

Revision ID: 0001_register
Revises:
Create Date: 2026-11-27

Generated with GeoAlchemy2's alembic helpers, then reviewed by hand: the extensions come first,
the kinds of commons are seeded as data (the cooperative can add more), and the spatial indexes
are created once (the helpers keep autogenerate from adding a second GiST index).
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001_register'
down_revision = None
branch_labels = None
depends_on = None


KINDS = [
    # code, label_fr, label_en, category, geometry, parent_kinds, requires_parent, may_be_kept, visibility
    ("land", "Terre", "Land", "land", "area", [], False, False, "public"),
    ("garden", "Jardin", "Garden", "garden", "area", ["land"], False, False, "public"),
    ("bed", "Planche ou parcelle de jardin", "Garden bed or plot", "bed", "area", ["garden"], True, False, "members"),
    ("orchard", "Verger", "Orchard", "land", "area", ["land"], False, False, "public"),
    ("hedge", "Haie", "Hedge", "land", "any", ["land"], False, False, "public"),
    ("tool", "Outil", "Tool", "tool", "point", [], False, True, "members"),
    ("housing", "Logement", "Housing", "housing", "area", [], False, False, "private"),
    ("guest_room", "Chambre d'amis", "Guest room", "housing", "any", ["housing", "building"], False, False, "members"),
    ("building", "Bâtiment", "Building", "place", "any", [], False, False, "public"),
    ("kitchen", "Cuisine partagée", "Community kitchen", "place", "any", [], False, False, "public"),
    ("workshop", "Atelier", "Workshop", "place", "any", [], False, False, "public"),
    ("tool_shed", "Cabane à outils", "Tool shed", "place", "any", [], False, False, "public"),
    ("seed_library", "Grainothèque", "Seed library", "place", "any", [], False, False, "public"),
    ("water_point", "Point d'eau", "Water point", "place", "point", [], False, False, "public"),
    ("compost", "Compostière", "Compost site", "place", "any", [], False, False, "public"),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table('commons_kinds',
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('label_fr', sa.Text(), nullable=False),
    sa.Column('label_en', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('geometry', sa.Text(), nullable=False),
    sa.Column('parent_kinds', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('requires_parent', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('may_be_kept', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('default_visibility', sa.Text(), server_default='members', nullable=False),
    sa.CheckConstraint("geometry IN ('area', 'point', 'any')", name=op.f('ck_commons_kinds_geometry')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_commons_kinds'))
    )
    op.create_geospatial_table('cooperatives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('territory', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('timezone', sa.Text(), server_default='Europe/Paris', nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cooperatives')),
    sa.UniqueConstraint('slug', name=op.f('uq_cooperatives_slug'))
    )
    op.create_geospatial_index('idx_cooperatives_territory', 'cooperatives', ['territory'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('commons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cooperative_id', sa.Integer(), nullable=False),
    sa.Column('kind_code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('geom', Geometry(srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('kept_at_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Text(), server_default='active', nullable=False),
    sa.Column('rules_of_use', sa.Text(), server_default='', nullable=False),
    sa.Column('tenure', sa.Text(), server_default='owned', nullable=False),
    sa.Column('tenure_end', sa.Date(), nullable=True),
    sa.Column('tenure_notes', sa.Text(), server_default='', nullable=False),
    sa.Column('visibility', sa.Text(), server_default='members', nullable=False),
    sa.Column('location_precision', sa.Text(), server_default='exact', nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('area_m2', sa.Double(), sa.Computed('CASE WHEN ST_Dimension(geom) = 2 THEN ST_Area(geom::geography) END', persisted=True), nullable=True),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('french'::regconfig, coalesce(name, '') || ' ' || coalesce(description, ''))", persisted=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("location_precision IN ('exact', 'approximate')", name=op.f('ck_commons_precision')),
    sa.CheckConstraint("state IN ('active', 'restoring', 'fallow', 'needs_repair', 'out_of_service', 'lost')", name=op.f('ck_commons_state')),
    sa.CheckConstraint("tenure IN ('owned', 'lent', 'municipal_agreement', 'lease', 'commons_trust', 'other')", name=op.f('ck_commons_tenure')),
    sa.CheckConstraint("visibility IN ('public', 'members', 'private')", name=op.f('ck_commons_visibility')),
    sa.CheckConstraint('geom IS NOT NULL OR kept_at_id IS NOT NULL', name=op.f('ck_commons_located')),
    sa.CheckConstraint('geom IS NULL OR ST_IsValid(geom)', name=op.f('ck_commons_valid_geom')),
    sa.CheckConstraint('id <> parent_id AND id <> kept_at_id', name=op.f('ck_commons_not_self')),
    sa.ForeignKeyConstraint(['cooperative_id'], ['cooperatives.id'], name=op.f('fk_commons_cooperative_id_cooperatives')),
    sa.ForeignKeyConstraint(['kept_at_id'], ['commons.id'], name=op.f('fk_commons_kept_at_id_commons')),
    sa.ForeignKeyConstraint(['kind_code'], ['commons_kinds.code'], name=op.f('fk_commons_kind_code_commons_kinds')),
    sa.ForeignKeyConstraint(['parent_id'], ['commons.id'], name=op.f('fk_commons_parent_id_commons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commons')),
    sa.UniqueConstraint('cooperative_id', 'external_id', name='uq_commons_external_id')
    )
    op.create_geospatial_index('idx_commons_geom', 'commons', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_commons_coop_kind', 'commons', ['cooperative_id', 'kind_code'], unique=False)
    op.create_index(op.f('ix_commons_kept_at_id'), 'commons', ['kept_at_id'], unique=False)
    op.create_index(op.f('ix_commons_parent_id'), 'commons', ['parent_id'], unique=False)
    op.create_index('ix_commons_search', 'commons', ['search'], unique=False, postgresql_using='gin')
    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cooperative_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('locale', sa.Text(), server_default='fr', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('token_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("locale IN ('fr', 'en')", name=op.f('ck_members_locale')),
    sa.CheckConstraint('username = lower(username)', name=op.f('ck_members_username_lower')),
    sa.ForeignKeyConstraint(['cooperative_id'], ['cooperatives.id'], name=op.f('fk_members_cooperative_id_cooperatives')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('username', name=op.f('uq_members_username'))
    )
    op.create_index(op.f('ix_members_cooperative_id'), 'members', ['cooperative_id'], unique=False)
    op.create_table('commons_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('commons_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['commons_id'], ['commons.id'], name=op.f('fk_commons_history_commons_id_commons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_commons_history_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commons_history'))
    )
    op.create_index(op.f('ix_commons_history_commons_id'), 'commons_history', ['commons_id'], unique=False)
    op.create_table('commons_stewards',
    sa.Column('commons_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['commons_id'], ['commons.id'], name=op.f('fk_commons_stewards_commons_id_commons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_commons_stewards_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('commons_id', 'member_id', name=op.f('pk_commons_stewards'))
    )
    op.create_index(op.f('ix_commons_stewards_member_id'), 'commons_stewards', ['member_id'], unique=False)
    op.create_table('member_roles',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('coordinator')", name=op.f('ck_member_roles_role')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_roles_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'role', name=op.f('pk_member_roles'))
    )
    kinds = sa.table(
        "commons_kinds",
        *(sa.column(c) for c in ("code", "label_fr", "label_en", "category", "geometry",
                                  "requires_parent", "may_be_kept", "default_visibility")),
        sa.column("parent_kinds", postgresql.ARRAY(sa.Text())),
    )
    op.bulk_insert(kinds, [
        dict(code=k[0], label_fr=k[1], label_en=k[2], category=k[3], geometry=k[4],
             parent_kinds=k[5], requires_parent=k[6], may_be_kept=k[7], default_visibility=k[8])
        for k in KINDS
    ])


def downgrade() -> None:
    op.drop_table('member_roles')
    op.drop_index(op.f('ix_commons_stewards_member_id'), table_name='commons_stewards')
    op.drop_table('commons_stewards')
    op.drop_index(op.f('ix_commons_history_commons_id'), table_name='commons_history')
    op.drop_table('commons_history')
    op.drop_index(op.f('ix_members_cooperative_id'), table_name='members')
    op.drop_table('members')
    op.drop_index('ix_commons_search', table_name='commons', postgresql_using='gin')
    op.drop_index(op.f('ix_commons_parent_id'), table_name='commons')
    op.drop_index(op.f('ix_commons_kept_at_id'), table_name='commons')
    op.drop_index('ix_commons_coop_kind', table_name='commons')
    op.drop_geospatial_index('idx_commons_geom', table_name='commons', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('commons')
    op.drop_geospatial_index('idx_cooperatives_territory', table_name='cooperatives', postgresql_using='gist', column_name='territory')
    op.drop_geospatial_table('cooperatives')
    op.drop_table('commons_kinds')
