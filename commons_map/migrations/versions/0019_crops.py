"""Crops are a catalogue (issue 18, item 3): "Tomates" and "tomate" were two crops in the annual report.

A table of crops (French and English names, a code, other names it goes by), shipped with the
common crops of French community gardens; a cooperative's coordinators add their own. Each
harvest references its crop (``crop_id``); ``harvests.crop`` keeps the crop's code, set by a
trigger from ``crop_id``, so the figures group by it.

Existing free-text names are folded (lower case, no accents, each word singular: "Tomates",
"tomate" and "tomatoes" are one) and matched against the shipped codes, names and aliases; a name
that matches none becomes a crop of the cooperative that used it (its code made from the name).

Revision ID: 0019_crops
Revises: 0018_network_policies
Create Date: 2026-11-29
"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from commons_map.tenancy import coop_policy, enable_policies

revision = "0019_crops"
down_revision = "0018_network_policies"
branch_labels = None
depends_on = None

# code, French, English, other names (folded as below), frozen with this revision.
SHIPPED = [
    ("tomato", "Tomate", "Tomato", []),
    ("cherry_tomato", "Tomate cerise", "Cherry tomato", []),
    ("courgette", "Courgette", "Courgette", ["zucchini"]),
    ("squash", "Courge", "Squash", ["potiron", "potimarron", "citrouille", "pumpkin"]),
    ("butternut", "Courge butternut", "Butternut squash", ["butternut", "doubeurre"]),
    ("cucumber", "Concombre", "Cucumber", []),
    ("melon", "Melon", "Melon", []),
    ("pattypan", "Pâtisson", "Pattypan squash", []),
    ("potato", "Pomme de terre", "Potato", ["patate"]),
    ("green_bean", "Haricot vert", "Green bean", ["french bean"]),
    ("bean", "Haricot", "Bean", ["haricot sec"]),
    ("pea", "Petit pois", "Pea", ["poi"]),
    ("broad_bean", "Fève", "Broad bean", ["feve"]),
    ("chickpea", "Pois chiche", "Chickpea", []),
    ("lettuce", "Laitue", "Lettuce", ["salade"]),
    ("lambs_lettuce", "Mâche", "Lamb's lettuce", ["mache", "doucette"]),
    ("rocket", "Roquette", "Rocket", ["arugula"]),
    ("spinach", "Épinard", "Spinach", []),
    ("chard", "Blette", "Chard", ["bette", "swiss chard"]),
    ("cabbage", "Chou", "Cabbage", []),
    ("cauliflower", "Chou-fleur", "Cauliflower", []),
    ("broccoli", "Brocoli", "Broccoli", []),
    ("carrot", "Carotte", "Carrot", []),
    ("beetroot", "Betterave", "Beetroot", ["beet"]),
    ("radish", "Radis", "Radish", []),
    ("turnip", "Navet", "Turnip", []),
    ("parsnip", "Panais", "Parsnip", []),
    ("celery", "Céleri", "Celery", ["celeri rave", "celeriac"]),
    ("fennel", "Fenouil", "Fennel", []),
    ("onion", "Oignon", "Onion", []),
    ("shallot", "Échalote", "Shallot", []),
    ("garlic", "Ail", "Garlic", []),
    ("leek", "Poireau", "Leek", []),
    ("sweet_pepper", "Poivron", "Sweet pepper", ["pepper"]),
    ("chili", "Piment", "Chili pepper", ["chilli"]),
    ("aubergine", "Aubergine", "Aubergine", ["eggplant"]),
    ("sweet_corn", "Maïs doux", "Sweet corn", ["mai", "corn"]),
    ("sunflower", "Tournesol", "Sunflower", []),
    ("strawberry", "Fraise", "Strawberry", []),
    ("raspberry", "Framboise", "Raspberry", []),
    ("blackcurrant", "Cassis", "Blackcurrant", []),
    ("redcurrant", "Groseille", "Redcurrant", []),
    ("apple", "Pomme", "Apple", []),
    ("pear", "Poire", "Pear", []),
    ("plum", "Prune", "Plum", []),
    ("cherry", "Cerise", "Cherry", []),
    ("apricot", "Abricot", "Apricot", []),
    ("peach", "Pêche", "Peach", ["peche"]),
    ("grape", "Raisin", "Grape", []),
    ("fig", "Figue", "Fig", []),
    ("physalis", "Physalis", "Physalis", ["cape gooseberry"]),
    ("walnut", "Noix", "Walnut", []),
    ("hazelnut", "Noisette", "Hazelnut", []),
    ("herbs", "Aromatiques", "Herbs", ["herbe aromatique", "aromatique"]),
    ("basil", "Basilic", "Basil", []),
    ("parsley", "Persil", "Parsley", []),
]


def _singular(word: str) -> str:
    if len(word) <= 3:
        return word
    for plural, singular in (("eaux", "eau"), ("oes", "o"), ("ies", "y")):
        if word.endswith(plural):
            return word[: -len(plural)] + singular
    if word[-1] in "sx" and not word.endswith("ss"):
        return word[:-1]
    return word


def fold(name: str) -> str:
    """As commons_map.soil.crops.fold when this revision was written."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(_singular(w) for w in re.split(r"[^a-z0-9]+", plain) if w)


def _code_for(name: str) -> str:
    code = fold(name).replace(" ", "_")[:60] or "crop"
    return code if code[0].isalpha() else f"crop_{code}"[:60]


def map_free_text(conn: sa.engine.Connection) -> None:
    """Give every harvest without a crop_id the crop its free-text name means (see the docstring)."""
    shipped: dict[str, int] = {}
    for cid, code, fr, en, aliases in conn.execute(sa.text(
            "SELECT id, code, label_fr, label_en, aliases FROM crops WHERE cooperative_id IS NULL")):
        for name in (code, fr, en, *aliases):
            shipped.setdefault(fold(name), cid)
    rows = conn.execute(sa.text(
        "SELECT cooperative_id, crop, count(*) FROM harvests WHERE crop_id IS NULL"
        " GROUP BY cooperative_id, crop ORDER BY cooperative_id, count(*) DESC, crop")).all()
    for coop_id, name, _ in rows:
        folded = fold(name)
        crop_id = shipped.get(folded)
        if crop_id is None:
            code = _code_for(name)
            crop_id = conn.scalar(sa.text(
                "SELECT id FROM crops WHERE cooperative_id = :c AND code = :code"), {"c": coop_id, "code": code})
            if crop_id is None:  # the most used spelling names the new crop
                label = name.strip()[:1].upper() + name.strip()[1:] or code
                crop_id = conn.scalar(sa.text(
                    "INSERT INTO crops (cooperative_id, code, label_fr, label_en, aliases)"
                    " VALUES (:c, :code, :label, :label, :aliases) RETURNING id"),
                    {"c": coop_id, "code": code, "label": label, "aliases": [folded] if folded else []})
        conn.execute(sa.text(
            "UPDATE harvests SET crop_id = :crop WHERE cooperative_id = :c AND crop = :name AND crop_id IS NULL"),
            {"crop": crop_id, "c": coop_id, "name": name})


def upgrade() -> None:
    op.create_table(
        "crops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cooperative_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("label_fr", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.CheckConstraint("code ~ '^[a-z][a-z0-9_]{0,59}$'", name=op.f("ck_crops_code")),
        sa.ForeignKeyConstraint(["cooperative_id"], ["cooperatives.id"], name=op.f("fk_crops_cooperative_id_cooperatives")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crops")),
    )
    op.create_index(op.f("ix_crops_cooperative_id"), "crops", ["cooperative_id"])
    op.create_index("uq_crops_shipped_code", "crops", ["code"], unique=True,
                    postgresql_where=sa.text("cooperative_id IS NULL"))
    op.create_index("uq_crops_cooperative_code", "crops", ["cooperative_id", "code"], unique=True,
                    postgresql_where=sa.text("cooperative_id IS NOT NULL"))
    conn = op.get_bind()
    for code, fr, en, aliases in SHIPPED:
        conn.execute(sa.text("INSERT INTO crops (code, label_fr, label_en, aliases) VALUES (:code, :fr, :en, :a)"),
                     {"code": code, "fr": fr, "en": en, "a": [fold(a) for a in aliases]})

    op.add_column("harvests", sa.Column("crop_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("fk_harvests_crop_id_crops"), "harvests", "crops", ["crop_id"], ["id"])
    op.create_index(op.f("ix_harvests_crop_id"), "harvests", ["crop_id"])
    map_free_text(conn)
    op.execute("UPDATE harvests h SET crop = c.code FROM crops c WHERE c.id = h.crop_id")
    op.alter_column("harvests", "crop_id", nullable=False)
    # harvests.crop is the crop's code, whatever the writer said (a crop's code never changes).
    op.execute("""
        CREATE FUNCTION harvests_crop_code() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.crop := (SELECT code FROM crops WHERE id = NEW.crop_id);
            RETURN NEW;
        END $$
    """)
    op.execute("CREATE TRIGGER harvests_crop_code BEFORE INSERT OR UPDATE OF crop, crop_id ON harvests"
               " FOR EACH ROW EXECUTE FUNCTION harvests_crop_code()")

    # Row-level security: a cooperative writes its own crops; every crop is read by anyone (public
    # harvests name them), like the indicators.
    enable_policies(op.execute, {"crops": coop_policy("crops", public="true")})


def downgrade() -> None:
    op.execute("DROP TRIGGER harvests_crop_code ON harvests")
    op.execute("DROP FUNCTION harvests_crop_code()")
    op.drop_index(op.f("ix_harvests_crop_id"), table_name="harvests")
    op.drop_constraint(op.f("fk_harvests_crop_id_crops"), "harvests", type_="foreignkey")
    op.drop_column("harvests", "crop_id")
    op.drop_table("crops")
