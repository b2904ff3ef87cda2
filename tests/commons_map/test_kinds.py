"""Coordinators add kinds of commons for their cooperative (issue 18 item 23; the README said so
and nothing did): French and English labels, used by their members, unknown elsewhere."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from commons_map.errors import Conflict, PermissionDenied, ValidationFailed
from commons_map.register import service
from commons_map.register.models import CommonsKind
from commons_map.register.schemas import CommonsIn, KindIn

OVEN = dict(code="four_a_pain", label_fr="Four à pain", label_en="Bread oven", category="place", geometry="point")


def kinds(db) -> int:  # noqa: ANN001
    return db.scalar(select(func.count()).select_from(CommonsKind))


def test_a_coordinator_adds_a_kind_its_cooperative_uses_and_others_do_not_see(db, people):
    kind = service.add_kind(db, actor=people.coordinator, data=KindIn(**OVEN))
    assert (kind.cooperative_id, kind.label_fr, kind.label_en) == (people.coop.id, "Four à pain", "Bread oven")
    ours = [k.code for k in service.list_kinds(db, cooperative_id=people.coop.id)]
    theirs = [k.code for k in service.list_kinds(db, cooperative_id=people.other_coop.id)]
    assert "four_a_pain" in ours and "four_a_pain" not in theirs and "tool" in theirs
    oven = service.create_commons(db, actor=people.coordinator, data=CommonsIn(
        kind="four_a_pain", name="Four du lavoir", visibility="members",
        geometry={"type": "Point", "coordinates": [5.195, 44.6975]}))
    assert oven.kind_code == "four_a_pain"
    with pytest.raises(ValidationFailed) as err:  # another cooperative's kind is unknown there
        service.create_commons(db, actor=people.outsider, data=CommonsIn(
            kind="four_a_pain", name="Four volé", visibility="members",
            geometry={"type": "Point", "coordinates": [5.37, 44.75]}))
    assert err.value.code == "register.unknown_kind" and err.value.field == "kind"


def test_only_coordinators_add_kinds_and_bad_ones_are_refused_naming_the_field(db, people):
    before = kinds(db)
    with pytest.raises(PermissionDenied):
        service.add_kind(db, actor=people.member, data=KindIn(**OVEN))
    with pytest.raises(Conflict) as taken:
        service.add_kind(db, actor=people.coordinator, data=KindIn(**{**OVEN, "code": "tool"}))
    assert taken.value.code == "register.kind_exists" and taken.value.field == "code"
    with pytest.raises(ValidationFailed) as bad:
        service.add_kind(db, actor=people.coordinator, data=KindIn(**{**OVEN, "label_fr": "  ",
                                                                      "parent_kinds": ["nowhere"]}))
    assert {p.field for p in bad.value.problems} == {"label_fr", "parent_kinds.0"}
    with pytest.raises(ValidationFailed) as orphan:
        service.add_kind(db, actor=people.coordinator, data=KindIn(**{**OVEN, "requires_parent": True}))
    assert orphan.value.problems[0].field == "parent_kinds"
    assert "names the kinds" in orphan.value.summary("en") and "nomme les types" in orphan.value.summary("fr")
    assert kinds(db) == before


def test_the_api_adds_and_lists_kinds_per_cooperative(client, db, people, auth):
    r = client.post("/api/v1/kinds", json=OVEN, headers=auth(people.coordinator))
    assert r.status_code == 201 and r.json()["cooperative_id"] == people.coop.id, r.text
    mine = {k["code"] for k in client.get("/api/v1/kinds", headers=auth(people.member)).json()}
    other = {k["code"] for k in client.get("/api/v1/kinds", headers=auth(people.outsider)).json()}
    assert "four_a_pain" in mine and "four_a_pain" not in other and "tool" in other
    assert client.post("/api/v1/kinds", json={**OVEN, "code": "x2"}, headers=auth(people.member)).status_code == 403
    assert client.post("/api/v1/kinds", json=OVEN).status_code == 401
    again = client.post("/api/v1/kinds", json=OVEN, headers={**auth(people.coordinator), "Accept-Language": "fr"})
    assert again.status_code == 409
    bad = client.post("/api/v1/kinds", json={**OVEN, "code": "Four à pain"}, headers=auth(people.coordinator))
    assert bad.status_code == 422 and "code" in bad.text
    cat = client.post("/api/v1/kinds", json={**OVEN, "code": "oven2", "category": "castle"},
                      headers=auth(people.coordinator))
    assert cat.status_code == 422 and "category" in cat.text


def test_the_cli_adds_a_kind_for_a_coordinator_only(fresh_database):
    """`commons-map kinds add`, on a database of its own (the kind is committed)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from shapely.geometry import MultiPolygon, Polygon

    from commons_map.db import make_engine, session_scope
    from commons_map.geo import to_ewkt
    from commons_map.people.models import Cooperative, Member, MemberRole

    url = fresh_database()
    engine = make_engine(url=url)
    try:
        with session_scope(engine) as s:
            coop = Cooperative(slug="fours", name="Fours", territory=to_ewkt(MultiPolygon([Polygon(
                [(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.8), (5.1, 44.6)])])))
            s.add(coop)
            s.flush()
            s.add_all([Member(cooperative_id=coop.id, username="coord", display_name="C", password_hash="-",
                              role_rows=[MemberRole(role="coordinator")]),
                       Member(cooperative_id=coop.id, username="plain", display_name="P", password_hash="-")])
        cli = str(Path(sys.executable).parent / "commons-map")
        env = dict(os.environ, COMMONS_DATABASE_URL=url, LANG="en_GB.UTF-8")

        def add(*extra: str, by: str = "coord") -> subprocess.CompletedProcess:
            return subprocess.run([cli, "kinds", "add", "four_a_pain", "--fr", "Four à pain", "--en", "Bread oven",
                                   "--category", "place", "--geometry", "point", "--by", by, *extra],
                                  env=env, capture_output=True, text=True, timeout=120)

        refused = add(by="plain")
        assert refused.returncode == 1 and "oordinat" in refused.stderr + refused.stdout
        bad = subprocess.run([cli, "kinds", "add", "x_y", "--fr", "a", "--en", "b", "--category", "castle",
                              "--geometry", "point", "--by", "coord"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert bad.returncode == 1 and "category" in bad.stderr
        ok = add()
        assert ok.returncode == 0 and "added kind four_a_pain" in ok.stdout, ok.stderr
        assert add().returncode == 1  # the code is taken now
        with session_scope(engine) as s:
            kind = s.get(CommonsKind, "four_a_pain")
            assert kind is not None and kind.cooperative_id == s.scalars(
                select(Cooperative.id).where(Cooperative.slug == "fours")).one()
    finally:
        engine.dispose()
