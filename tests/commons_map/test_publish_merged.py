"""The precomputed low-zoom merge (``publish_merged``, commons_map/publish/merged.py).

Kept by triggers, cell by cell: after any change it must hold exactly what a rebuild from the
public rows makes; it is readable by anyone and written by no one but the owner's functions.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from commons_map.publish import merged
from tests.conftest import add_public_parcels, as_app_role


def _snapshot(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(text(
        "SELECT collection, z, cx, cy, mkey, n, round(area::numeric, 3), round(x0::numeric, 3),"
        " round(y0::numeric, 3), round(x1::numeric, 3), round(y1::numeric, 3)"
        " FROM publish_merged ORDER BY 1, 2, 3, 4, 5"))]


def _rebuilt(db) -> list[tuple]:
    """What a rebuild from scratch makes now (in a savepoint, undone after)."""
    with db.begin_nested() as sp:
        db.execute(text("SELECT publish_merged_rebuild()"))
        rows = _snapshot(db)
        sp.rollback()
    return rows


def _counts(db, z: int) -> dict[str, int]:
    return dict(db.execute(text(
        "SELECT collection, sum(n)::int FROM publish_merged WHERE z = :z GROUP BY 1"), {"z": z}).all())


def test_the_installed_function_is_the_one_the_code_makes(db):
    """A change of the collections (sources, merge keys) needs a migration that installs it again."""
    installed = db.scalar(text("SELECT prosrc FROM pg_proc WHERE proname = 'publish_merged_refresh'"))
    made = merged.refresh_function_sql().split("$fn$")[1]
    assert installed == made


def test_every_change_leaves_what_a_rebuild_makes(db):
    add_public_parcels(db, 300)  # one statement, 300 cells: the set-by-set path
    assert _snapshot(db) == _rebuilt(db)
    land_before = _counts(db, 10)["restored_land"]
    one = db.scalar(text("SELECT id FROM commons WHERE name = 'synthétique 7'"))
    # one edit: the cell-by-cell path; moved far away, made private, back, then deleted
    db.execute(text("UPDATE commons SET geom = ST_Translate(geom, 0.3, 0.2) WHERE id = :i"), {"i": one})
    assert _snapshot(db) == _rebuilt(db)
    db.execute(text("UPDATE commons SET visibility = 'private' WHERE id = :i"), {"i": one})
    assert _snapshot(db) == _rebuilt(db)
    assert _counts(db, 10)["restored_land"] == land_before - 1  # a private parcel counts nowhere
    db.execute(text("UPDATE commons SET visibility = 'public' WHERE id = :i"), {"i": one})
    assert _counts(db, 10)["restored_land"] == land_before
    db.execute(text("DELETE FROM commons WHERE id = :i"), {"i": one})
    assert _snapshot(db) == _rebuilt(db)
    # a figure changes a parcel's status: restored_land is merged by status
    other = db.scalar(text("SELECT id FROM commons WHERE name = 'synthétique 8'"))
    coop = db.scalar(text("SELECT cooperative_id FROM commons WHERE id = :i"), {"i": other})
    db.execute(text("INSERT INTO publish_figures (commons_id, cooperative_id, status) VALUES (:i, :c, 'regenerating')"),
               {"i": other, "c": coop})
    assert _snapshot(db) == _rebuilt(db)
    assert db.scalar(text(
        "SELECT sum(n) FROM publish_merged WHERE collection = 'restored_land' AND z = 13 AND mkey = 'regenerating'"
    )) >= 1
    # a kind leaving the land category: every cell again
    db.execute(text("UPDATE commons_kinds SET category = 'garden' WHERE code = 'land'"))
    assert _snapshot(db) == _rebuilt(db)
    assert "restored_land" not in _counts(db, 10) or _counts(db, 10)["restored_land"] < land_before


def test_an_edit_that_changes_nothing_on_the_map_rewrites_no_cell(db):
    add_public_parcels(db, 20)
    before = db.execute(text("SELECT count(*), sum(hashtext(xmin::text)) FROM publish_merged")).one()
    db.execute(text("UPDATE commons SET description = 'autre', state = 'active' WHERE name = 'synthétique 3'"))
    assert db.execute(text("SELECT count(*), sum(hashtext(xmin::text)) FROM publish_merged")).one() == before


@pytest.mark.parametrize("statement", [
    "INSERT INTO publish_merged (collection, z, cx, cy, mkey, n, x0, y0, x1, y1)"
    " VALUES ('restored_land', 3, 0, 0, 'faux', 99, 0, 0, 1, 1)",
    "UPDATE publish_merged SET n = n + 1",
    "DELETE FROM publish_merged",
    "SELECT publish_merged_rebuild()",
    "SELECT publish_merged_refresh(ARRAY[1::bigint])",
])
def test_the_app_reads_the_cells_and_cannot_write_them(db, settings, statement):
    add_public_parcels(db, 5)
    with db.begin_nested() as sp, as_app_role(db, settings):
        assert db.scalar(text("SELECT count(*) FROM publish_merged")) > 0  # public: anyone reads
        try:
            result = db.execute(text(statement))
        except DBAPIError as exc:
            assert "permission denied" in str(exc.orig) or "row-level security" in str(exc.orig)
        else:
            assert result.rowcount == 0  # no policy lets the app's role reach a row
        sp.rollback()
