"""Governance over HTTP: the contracts of issue 15, problem+json with codes naming the field, nothing
written on refusal, and the public view of a proposal that never names a member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from commons_map.governance import service
from commons_map.governance.models import Circle, Position, Proposal
from commons_map.governance.schemas import CircleIn, PositionIn, ProposalIn
from commons_map.people.models import Member

EN = {"Accept-Language": "en"}


def now() -> datetime:
    return datetime.now(UTC)


def m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def n_proposals(db) -> int:
    return db.scalar(select(func.count()).select_from(Proposal))


def body(**kw):
    out = {"title": "Ouvrir la chambre d'amis aux voyageurs", "text": "Trois nuits au plus, sur réservation.",
           "closes_at": (now() + timedelta(days=7)).isoformat()}
    out.update(kw)
    return out


def due(db, actor, **kw) -> Proposal:
    """A proposal made two days ago that closed an hour ago (not yet closed by anyone)."""
    past = now() - timedelta(days=2)
    kw.setdefault("title", "Arrosage le matin")
    kw.setdefault("text", "Avant 9 h de juin à août.")
    kw.setdefault("closes_at", now() - timedelta(hours=1))
    p = service.create_proposal(db, actor=actor, data=ProposalIn(**kw), now=past)
    return p


def take(db, who, p, choice, reason=""):
    service.take_position(db, actor=who, proposal_id=p.id, data=PositionIn(choice=choice, reason=reason),
                          now=now() - timedelta(days=1))


def codes(r) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in r.json().get("errors", [])]


def test_propose_take_a_position_amend_and_close_early(client, auth, people, db):
    r = client.post("/api/v1/governance/proposals", json=body(quorum=2), headers=auth(people.member))
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["state"] == "open" and p["phase"] == "open" and p["author"]["name"] == people.member.display_name
    url = f"/api/v1/governance/proposals/{p['id']}"
    r = client.put(url + "/position", json={"choice": "concern", "reason": "Qui fait le ménage ?"},
                   headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["my_position"]["choice"] == "concern"
    r = client.patch(url, json={"text": "Trois nuits au plus ; ménage par l'hôte.", "note": "ménage"},
                     headers=auth(people.member))
    assert r.status_code == 200 and r.json()["version"] == 2
    mine = client.get(url, headers=auth(people.steward)).json()["my_position"]
    assert mine["amended_since"] is True
    assert client.patch(url, json={"text": "x"}, headers=auth(people.steward)).json()["code"] == \
        "governance.author_only"
    r = client.post(url + "/close", headers=auth(people.steward))
    assert r.status_code == 403 and r.json()["code"] == "governance.close_early_author_only"
    client.put(url + "/position", json={"choice": "consent"}, headers=auth(people.coordinator))
    r = client.post(url + "/close", headers=auth(people.member))
    assert r.status_code == 200, r.text
    out = r.json()["outcome"]
    assert out["passed"] is True and out["counts"] == {"consent": 1, "concern": 1, "objection": 0}
    r = client.put(url + "/position", json={"choice": "objection", "reason": "trop tard"}, headers=auth(people.steward))
    assert r.status_code == 409 and r.json()["code"] == "governance.closed"
    again = client.post(url + "/close", headers=auth(people.member))
    assert again.status_code == 200 and again.json()["closed_at"] == r.json()["params"]["closed_at"]


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(client, auth, people, db):
    before = n_proposals(db)
    circle_id = db.scalar(select(Circle.id).where(Circle.cooperative_id == people.coop.id).limit(1))
    cases = [
        (body(closes_at=(now() - timedelta(hours=1)).isoformat()), 422, ("closes_at", "governance.closes_in_past")),
        (body(quorum=10_000), 422, ("quorum", "governance.quorum_above_eligible")),
        (body(method="vote", threshold="unanimity"), 422, ("threshold", "input.literal_error")),
        (body(closes_at="demain"), 422, ("closes_at", "input.datetime_from_date_parsing")),
        (body(effect={"type": "coordinator_grant", "target": people.outsider.id}), 422,
         ("effect.target", "governance.effect_no_member")),
        (body(participation="circle"), 422, ("circle_id", "governance.circle_required")),
        (body(title="Four\x00"), 422, ("title", "input.nul_character")),  # refused app-wide, naming the field
        (body(effect={"type": "coordinator_grant", "target": 2**40}), 422, ("effect.target", "input.less_than_equal")),
        (body(effect={"type": "circle_member_grant", "target": circle_id, "value": 2**40}), 422,
         ("effect.value", "governance.effect_no_member")),
        (body(effect={"type": "agreement_adopt", "value": {"title": "t", "text": "a\x00"}}), 422,
         ("effect.value.text", "input.nul_character")),  # refused app-wide, naming the nested field
    ]
    for payload, status, expected in cases:
        r = client.post("/api/v1/governance/proposals", json=payload, headers={**auth(people.member), **EN})
        assert r.status_code == status, (payload, r.text)
        assert expected in codes(r), (expected, r.json())
    assert n_proposals(db) == before
    r = client.post("/api/v1/governance/proposals", json=body(), headers=EN)
    assert r.status_code == 401


def test_an_objection_without_a_reason_is_refused_in_the_member_language(client, auth, people, db):
    p = service.create_proposal(db, actor=people.member, data=ProposalIn(**body()))
    url = f"/api/v1/governance/proposals/{p.id}/position"
    r = client.put(url, json={"choice": "objection"}, headers=auth(people.steward))
    assert r.status_code == 422 and codes(r) == [("reason", "governance.reason_required")]
    assert "raison" in r.json()["detail"]  # demo members read French
    r = client.put(url, json={"choice": "yes"}, headers={**auth(people.steward), **EN})
    assert codes(r) == [("choice", "governance.choice_for_method")]
    assert db.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == p.id)) == 0


def test_a_public_proposal_reads_anonymously_with_its_outcome_and_no_name(client, auth, people, db):
    p = due(db, people.member, public=True, title="Ouvrir la chambre d'amis", text="Aux voyageurs.")
    take(db, people.steward, p, "objection", reason="Pas avant la réfection du toit.")
    take(db, people.coordinator, p, "consent")
    hidden = due(db, people.member, title="Sujet interne")
    r = client.get(f"/api/v1/governance/proposals/{p.id}")  # the read closes it (it is due)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["state"] == "closed" and doc["outcome"]["passed"] is False
    assert doc["outcome"]["reasons"] == [{"choice": "objection", "reason": "Pas avant la réfection du toit."},]
    assert "author" not in doc and "positions" not in doc
    listing = client.get("/api/v1/governance/proposals")
    assert [x["id"] for x in listing.json()] == [p.id] or p.id in [x["id"] for x in listing.json()]
    assert hidden.id not in [x["id"] for x in listing.json()]
    assert client.get(f"/api/v1/governance/proposals/{hidden.id}").status_code == 404
    names = set(db.scalars(select(Member.display_name)))
    usernames = set(db.scalars(select(Member.username)))
    for text in (r.text, listing.text):
        leaked = [n for n in names | usernames if n in text]
        assert leaked == [], leaked
    # members see who said what
    inside = client.get(f"/api/v1/governance/proposals/{p.id}", headers=auth(people.member)).json()
    assert {x["member"]["name"] for x in inside["positions"]} == {people.steward.display_name,
                                                                 people.coordinator.display_name}
    # another cooperative reads the public view only
    outside = client.get(f"/api/v1/governance/proposals/{p.id}", headers=auth(people.outsider))
    assert outside.status_code == 200 and "positions" not in outside.json()


def test_a_circle_only_proposal_is_seen_by_the_circle_only(client, auth, people, db):
    circle = service.create_circle(db, actor=people.coordinator, data=CircleIn(
        name="Cercle logement", members=[people.steward.id, people.other_steward.id]))
    p = service.create_proposal(db, actor=people.steward, data=ProposalIn(**body(
        participation="circle", circle_id=circle.id)))
    url = f"/api/v1/governance/proposals/{p.id}"
    assert client.get(url, headers=auth(people.other_steward)).status_code == 200
    assert client.get(url, headers=auth(people.member)).status_code == 404
    assert client.get(url, headers=auth(people.coordinator)).status_code == 404
    assert p.id not in [x["id"] for x in client.get("/api/v1/governance/proposals",
                                                    headers=auth(people.member)).json()]
    r = client.put(url + "/position", json={"choice": "consent"}, headers=auth(people.member))
    assert r.status_code == 404


def test_agreements_circles_and_trust(client, auth, people, db):
    from commons_map.governance.schemas import EffectIn

    p = due(db, people.member, effect=EffectIn(type="agreement_adopt", value={
        "title": "Charte du four à pain", "text": "On le nettoie après usage.", "review_on": "2020-01-01"}))
    take(db, people.steward, p, "consent")
    r = client.get("/api/v1/governance/agreements?due_within_days=0", headers=auth(people.member))
    titles = [a["title"] for a in r.json()]
    assert "Charte du four à pain" in titles  # the list closed the due adoption first
    assert all(a["due_for_review"] for a in r.json())
    ics = client.get("/api/v1/governance/agreements.ics", headers=auth(people.member))
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert "Charte du four" in ics.text
    assert client.get("/api/v1/governance/agreements.ics").status_code == 401
    r = client.post("/api/v1/governance/circles", json={"name": "Outils", "members": [people.steward.id,
                                                                                      people.other_steward.id],
                                                        "thresholds": {"member": 2}}, headers=auth(people.coordinator))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post("/api/v1/governance/circles", json={"name": "Autre"},
                       headers=auth(people.member)).status_code == 403
    r = client.put(f"/api/v1/governance/trust/{people.member.username}", json={"circle_id": cid},
                   headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["trusts"] == 1 and r.json()["holds_role"] is False
    r = client.put(f"/api/v1/governance/trust/{people.member.id}", json={"circle_id": cid},
                   headers=auth(people.other_steward))
    assert r.json()["holds_role"] is True and r.json()["change"] == "granted"
    circles = client.get("/api/v1/governance/circles", headers=auth(people.member)).json()
    outils = next(c for c in circles if c["id"] == cid)
    assert people.member.id in [x["id"] for x in outils["members"]]
    r = client.delete(f"/api/v1/governance/trust/{people.member.username}?circle_id={cid}",
                      headers=auth(people.steward))
    assert r.status_code == 200 and r.json()["change"] == "withdrawn"
    r = client.delete(f"/api/v1/governance/trust/{people.member.username}?circle_id={cid}",
                      headers=auth(people.steward))
    assert r.status_code == 404 and r.json()["code"] == "governance.no_trust"
    r = client.put(f"/api/v1/governance/trust/{people.steward.username}", json={"circle_id": cid},
                   headers=auth(people.steward))
    assert r.status_code == 422 and codes(r) == [("member", "governance.trust_self")]
    r = client.delete(f"/api/v1/governance/trust/{people.member.username}?circle_id={cid}&role=Tr%00",
                      headers=auth(people.steward))
    assert r.status_code == 422 and codes(r) == [("role", "input.nul_character")]  # refused app-wide
    r = client.put("/api/v1/governance/trust/lu%00cas", json={"circle_id": cid}, headers=auth(people.steward))
    assert r.status_code == 422 and r.json()["code"] == "input.nul_character"
