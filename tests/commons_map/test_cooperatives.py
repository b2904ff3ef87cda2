"""A new cooperative in minutes (service and CLI), archiving that hides and deletes nothing, the list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from shapely.geometry import LineString, Point, box
from sqlalchemy import func, select

from commons_map.db import make_engine, session_scope
from commons_map.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from commons_map.people.auth import authenticate, issue_token, member_from_token
from commons_map.people.cooperatives import (
    Founder,
    add_cooperative,
    archive_cooperative,
    list_cooperatives,
    parse_bbox,
)
from commons_map.people.models import Cooperative, Member
from commons_map.register.models import Commons
from commons_map.register.service import visible_clause

CLI = [str(Path(sys.executable).parent / "commons-map")]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PW = "mot-de-passe-long"
FOUNDERS = [Founder(username="rose", password=PW, display_name="Rose"), Founder(username="ali", password=PW)]
BOX = box(5.0, 44.5, 5.1, 44.6)


def sizes(db) -> tuple[int, int]:
    return (db.scalar(select(func.count()).select_from(Cooperative)),
            db.scalar(select(func.count()).select_from(Member)))


def test_a_new_cooperative_comes_with_its_territory_and_first_coordinators(db, settings):
    coop = add_cooperative(db, slug="Nyons", name="Coopérative de Nyons", territory=BOX, timezone="Europe/Paris",
                           languages=["en", "fr"], coordinators=FOUNDERS)
    assert coop.slug == "nyons" and coop.settings["languages"] == ["en", "fr"] and coop.archived_at is None
    founders = db.scalars(select(Member).where(Member.cooperative_id == coop.id).order_by(Member.username)).all()
    assert [f.username for f in founders] == ["ali", "rose"]
    assert all(f.is_coordinator and f.locale == "en" for f in founders)
    assert authenticate(db, username="rose", password=PW).id == founders[1].id
    area = db.scalar(select(func.ST_Area(func.Geography(Cooperative.territory))).where(Cooperative.id == coop.id))
    assert 80e6 < area < 100e6  # about 8 km x 11 km
    assert "nyons" in {row["slug"] for row in list_cooperatives(db)}


@pytest.mark.parametrize(("changes", "field", "code"), [
    ({"slug": "x"}, "slug", "cooperatives.slug_form"),
    ({"slug": "avec espace"}, "slug", "cooperatives.slug_form"),
    ({"timezone": "Europe/Saillans"}, "timezone", "cooperatives.timezone_unknown"),
    ({"timezone": "../etc"}, "timezone", "cooperatives.timezone_unknown"),
    ({"languages": ["de"]}, "languages", "cooperatives.languages"),
    ({"languages": []}, "languages", "cooperatives.languages"),
    ({"territory": Point(5, 44)}, "territory", "cooperatives.territory_invalid"),
    ({"territory": LineString([(5, 44), (5.1, 44.1)])}, "territory", "cooperatives.territory_invalid"),
    ({"territory": None}, "territory", "cooperatives.territory_invalid"),
    ({"coordinators": FOUNDERS[:1]}, "coordinators", "cooperatives.coordinators_few"),
    ({"coordinators": []}, "coordinators", "cooperatives.coordinators_few"),
    ({"coordinators": [FOUNDERS[0], FOUNDERS[0]]}, "coordinators.1.username", "cooperatives.coordinator_twice"),
    ({"coordinators": [FOUNDERS[0], Founder("bob", "court")]}, "coordinators.1.password", "people.password_short"),
    ({"coordinators": [FOUNDERS[0], Founder("B@d", PW)]}, "coordinators.1.username", "people.username_form"),
    ({"name": " "}, "name", "form.empty"),
])
def test_bad_input_names_what_and_where_and_writes_nothing(db, changes, field, code):
    before = sizes(db)
    args = {"slug": "nyons", "name": "Nyons", "territory": BOX, "timezone": "Europe/Paris", "languages": ["fr"],
            "coordinators": FOUNDERS, **changes}
    with pytest.raises(ValidationFailed) as err:
        add_cooperative(db, **args)
    assert err.value.code == code and err.value.field == field
    assert sizes(db) == before


def test_a_taken_slug_or_username_is_a_conflict_and_nothing_is_written(db, people):
    before = sizes(db)
    with pytest.raises(Conflict) as err:
        add_cooperative(db, slug="cic-diois", name="Encore", territory=BOX, timezone="UTC", languages=["fr"],
                        coordinators=FOUNDERS)
    assert err.value.code == "cooperatives.slug_taken"
    with pytest.raises(Conflict) as err:
        add_cooperative(db, slug="nyons", name="Nyons", territory=BOX, timezone="UTC", languages=["fr"],
                        coordinators=[FOUNDERS[0], Founder("camille", PW)])
    assert err.value.code == "people.username_taken" and "camille" in err.value.text("fr")
    assert sizes(db) == before


@pytest.mark.parametrize(("value", "code"), [
    ("5,44,5.1", "cooperatives.bbox_form"),
    ("a,b,c,d", "cooperatives.bbox_form"),
    ("", "cooperatives.bbox_form"),
    ("5.1,44,5.0,45", "cooperatives.bbox_range"),
    ("5,44,5,45", "cooperatives.bbox_range"),
    ("179,0,181,1", "cooperatives.bbox_range"),
    ("0,-91,1,0", "cooperatives.bbox_range"),
])
def test_bad_bounding_boxes(value, code):
    with pytest.raises(ValidationFailed) as err:
        parse_bbox(value)
    assert err.value.code == code and err.value.field == "bbox"


def test_archiving_hides_a_cooperative_everywhere_and_deletes_nothing(db, people, settings):
    camille = people.coordinator
    token = issue_token(camille, settings)
    public = select(func.count()).select_from(Commons).where(Commons.cooperative_id == people.coop.id,
                                                              visible_clause(None))
    assert db.scalar(public) > 10
    outsider_sees = select(func.count()).select_from(Commons).where(Commons.cooperative_id == people.coop.id,
                                                                     visible_clause(people.outsider))
    commons_before = db.scalar(select(func.count()).select_from(Commons))
    members_before = sizes(db)
    from commons_map.exchange.service import search_posts

    assert search_posts(db, actor=None)["numberMatched"] > 0, "the demo's public offers and needs"
    archived = archive_cooperative(db, slug="cic-saillans")
    assert search_posts(db, actor=None)["numberMatched"] == 0
    assert search_posts(db, actor=people.outsider)["numberMatched"] == 0
    assert archived.archived_at is not None
    with pytest.raises(AuthenticationFailed) as err:
        authenticate(db, username="camille", password="demo-commons")
    assert err.value.code == "cooperatives.archived_sign_in"
    with pytest.raises(AuthenticationFailed):
        member_from_token(db, token, settings)
    assert db.scalar(public) == 0 and db.scalar(outsider_sees) == 0
    assert "cic-saillans" not in {row["slug"] for row in list_cooperatives(db)}
    assert "cic-saillans" in {row["slug"] for row in list_cooperatives(db, include_archived=True)}
    assert db.scalar(select(func.count()).select_from(Commons)) == commons_before
    assert sizes(db) == members_before
    with pytest.raises(Conflict) as err:
        archive_cooperative(db, slug="cic-saillans")
    assert err.value.code == "cooperatives.already_archived"
    with pytest.raises(NotFound) as err:
        archive_cooperative(db, slug="nowhere")
    assert err.value.code == "cooperatives.unknown"
    # The other cooperatives' members still sign in.
    assert authenticate(db, username="diois", password="demo-commons").id == people.outsider.id


def run(args: list[str], url: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, input=stdin, timeout=300)


def test_the_cli_adds_lists_and_archives_cooperatives(fresh_database):
    url = fresh_database()
    ok = run(["cooperatives", "add", "nyons", "--name", "Coopérative de Nyons", "--bbox", "5.0,44.3,5.2,44.4",
              "--timezone", "Europe/Paris", "--language", "fr", "--language", "en",
              "--coordinator", "rose:Rose Martin", "--coordinator", "ali"], url, stdin=f"{PW}\n{PW}\n")
    assert ok.returncode == 0, ok.stderr
    assert "added cooperative nyons" in ok.stdout and "rose, ali" in ok.stdout
    from_file = run(["cooperatives", "add", "parcelles", "--name", "Parcelles", "--territory",
                     str(FIXTURES / "parcelles.geojson"), "--coordinator", "anne", "--coordinator", "paul"],
                    url, stdin=f"{PW}\n{PW}\n")
    assert from_file.returncode == 0, from_file.stderr
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        rose = s.scalars(select(Member).where(Member.username == "rose")).one()
        assert rose.display_name == "Rose Martin" and rose.is_coordinator
        territory = s.scalar(select(func.ST_GeometryType(Cooperative.territory)).where(Cooperative.slug == "parcelles"))
        assert territory == "ST_MultiPolygon"
    listed = run(["cooperatives", "list"], url)
    assert listed.returncode == 0 and "nyons\t2 members\tEurope/Paris\tfr,en" in listed.stdout
    bad = [
        (["--bbox", "5,44,4,45"], f"{PW}\n{PW}\n", "bbox"),
        (["--bbox", "5,44,5.1,44.1", "--timezone", "Mars/Olympus"], f"{PW}\n{PW}\n", "timezone"),
        ([], f"{PW}\n{PW}\n", "territory"),  # neither a file nor a box
        (["--bbox", "5,44,5.1,44.1"], f"{PW}\n", "password"),  # the second password is missing
    ]
    for extra, stdin, word in bad:
        r = run(["cooperatives", "add", "autre", "--name", "Autre", "--coordinator", "u1", "--coordinator", "u2",
                 *extra], url, stdin=stdin)
        assert r.returncode == 1 and "error" in r.stderr and word in r.stderr.lower(), (extra, r.stderr)
    few = run(["cooperatives", "add", "seule", "--name", "Seule", "--bbox", "5,44,5.1,44.1",
               "--coordinator", "solo"], url, stdin=f"{PW}\n")
    assert few.returncode == 1 and "coordinators" in few.stderr
    dup = run(["cooperatives", "add", "nyons", "--name", "Encore", "--bbox", "5,44,5.1,44.1",
               "--coordinator", "u1", "--coordinator", "u2"], url, stdin=f"{PW}\n{PW}\n")
    assert dup.returncode == 1 and "nyons" in dup.stderr
    both = run(["ledger", "check", "--network", "--cooperative", "nyons"], url)
    assert both.returncode == 1 and "--network" in both.stderr
    archived = run(["cooperatives", "archive", "nyons"], url)
    assert archived.returncode == 0, archived.stderr
    again = run(["cooperatives", "archive", "nyons"], url)
    assert again.returncode == 1 and "archived" in again.stderr
    unknown = run(["cooperatives", "archive", "nowhere"], url)
    assert unknown.returncode == 1 and "nowhere" in unknown.stderr
    listed = run(["cooperatives", "list"], url)
    assert "nyons" not in listed.stdout and "parcelles" in listed.stdout
    assert "nyons" in run(["cooperatives", "list", "--all"], url).stdout
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Cooperative)) == 2, "nothing written by the refusals"
        assert s.scalar(select(func.count()).select_from(Member)) == 4
    engine.dispose()
