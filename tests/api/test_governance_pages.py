"""The decisions pages over the in-process client: open proposals first, a position with its reason,
refusals next to the field with nothing written, the outcome and its reasons, the agreements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from commons_map.governance import service
from commons_map.governance.models import Position
from commons_map.governance.schemas import EffectIn, PositionIn, ProposalIn
from tests.api.test_pages import sign_in


def _open(db, people, **kw):
    kw.setdefault("title", "Ouvrir la chambre aux voyageurs")
    kw.setdefault("text", "Aux voyageurs du réseau, trois nuits au plus.")
    return service.create_proposal(db, actor=people.coordinator, data=ProposalIn(
        closes_at=datetime.now(UTC) + timedelta(days=3), **kw))


def _decided(db, people):
    past = datetime.now(UTC) - timedelta(days=3)
    p = service.create_proposal(db, actor=people.coordinator, now=past, data=ProposalIn(
        title="Charte de la cabane", text="On rend les outils propres.", closes_at=past + timedelta(days=1),
        effect=EffectIn(type="agreement_adopt", value={"title": "Charte de la cabane", "text": "Outils propres.",
                                                       "review_on": "2020-03-01"})))
    service.take_position(db, actor=people.steward, proposal_id=p.id, now=past + timedelta(hours=1),
                          data=PositionIn(choice="concern", reason="Qui vérifie ?"))
    return p


def test_open_proposals_come_first_and_a_position_takes_two_taps(client, db, people):
    decided = _decided(db, people)
    p = _open(db, people)
    token = sign_in(client, people.member.username)
    page = client.get("/app/decisions").text
    assert page.index(p.title) < page.index("Charte de la cabane")  # open first, then outcomes
    assert "Attend votre position" in page
    detail = client.get(f"/app/decisions/{p.id}")
    assert detail.status_code == 200 and 'name="choice" value="objection"' in detail.text
    # an objection without a reason: shown next to the field, nothing written
    r = client.post(f"/app/decisions/{p.id}/position", data={"csrf_token": token, "choice": "objection"})
    assert r.status_code == 422 and "demande une raison" in r.text and 'aria-invalid="true"' in r.text
    assert db.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == p.id)) == 0
    r = client.post(f"/app/decisions/{p.id}/position", data={"csrf_token": token, "choice": "consent"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/app/decisions/{p.id}?done=position")
    mine = db.scalars(select(Position).where(Position.proposal_id == p.id)).one()
    assert (mine.member_id, mine.choice) == (people.member.id, "consent")
    # the decided one shows its outcome and reasons
    out = client.get(f"/app/decisions/{decided.id}").text
    assert "Adoptée" in out and "Qui vérifie ?" in out and "Appliquée" in out


def test_positions_after_the_close_are_refused_on_the_page(client, db, people):
    p = _open(db, people)
    token = sign_in(client, people.member.username)
    service.close(db, actor=people.coordinator, proposal_id=p.id)
    r = client.post(f"/app/decisions/{p.id}/position", data={"csrf_token": token, "choice": "consent"})
    assert r.status_code == 422 and "est close" in r.text
    assert db.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == p.id)) == 0


def test_agreements_page_shows_those_due_for_review_in_english_too(client, db, people):
    _decided(db, people)
    sign_in(client, "thomas")  # an English-speaking coordinator
    r = client.get("/app/agreements")
    assert r.status_code == 200 and "Charte de la cabane" in r.text and "Due for review" in r.text
    assert client.get("/app/decisions").text.count("Decisions") >= 1


def test_another_cooperative_reads_a_public_proposal_page_without_names(client, db, people):
    p = _open(db, people, public=True)
    service.take_position(db, actor=people.steward, proposal_id=p.id,
                          data=PositionIn(choice="concern", reason="Et le ménage ?"))
    sign_in(client, people.outsider.username)
    r = client.get(f"/app/decisions/{p.id}")
    assert r.status_code == 200 and p.title in r.text
    assert people.coordinator.display_name not in r.text and people.steward.display_name not in r.text
    assert 'name="choice"' not in r.text
    hidden = _open(db, people, title="Interne")
    assert client.get(f"/app/decisions/{hidden.id}").status_code == 404
