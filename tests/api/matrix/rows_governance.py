"""Access-matrix rows of governance (/api/v1/governance and the /app/decisions pages).

Subjects: a members-only proposal by the member (lucas), a public one, a circle of the steward and
the other steward (trust for ``member`` needs 5), the steward's trust in the member, an agreement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.test_access_matrix import OURS, Row, _form, coordinators, js, page, rule, signed_in

A, M, S, O, C, X = "anonymous", "member", "steward", "other_steward", "coordinator", "outsider"  # noqa: E741
MEMBERS_TITLE = "GOV-MEMBERS-ONLY arrosage"
AGREEMENT_TITLE = "GOV-AGREEMENT charte"
CIRCLE_NAME = "GOV-CIRCLE jardins"


def _closes() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()


def _proposal(s: Any, **kw: Any) -> int:
    from commons_map.governance import service
    from commons_map.governance.schemas import ProposalIn

    kw.setdefault("text", "Avant 9 h de juin à août.")
    p = service.create_proposal(s.db, actor=s.people.member, data=ProposalIn(closes_at=_closes(), **kw))
    s.db.flush()
    return p.id


def _circle(s: Any) -> int:
    if "gov_circle" not in s.__dict__:
        from commons_map.governance import service
        from commons_map.governance.schemas import CircleIn

        c = service.create_circle(s.db, actor=s.people.coordinator, data=CircleIn(
            name=CIRCLE_NAME, members=[s.people.steward.id, s.people.other_steward.id], thresholds={"member": 5}))
        s.db.flush()
        s.__dict__["gov_circle"] = c.id
    return s.__dict__["gov_circle"]


def _trusted(s: Any) -> int:
    from commons_map.governance import service

    service.give_trust(s.db, actor=s.people.steward, receiver=s.people.member.id, circle_id=_circle(s))
    s.db.flush()
    return s.people.member.id


def _agreement(s: Any) -> int:
    from commons_map.governance import service
    from commons_map.governance.schemas import EffectIn, PositionIn, ProposalIn

    past = datetime.now(UTC) - timedelta(days=3)
    p = service.create_proposal(s.db, actor=s.people.member, now=past, data=ProposalIn(
        title="Adopter la charte", text="Charte de la cabane.", closes_at=past + timedelta(days=1),
        effect=EffectIn(type="agreement_adopt", value={"title": AGREEMENT_TITLE, "text": "Outils rendus propres.",
                                                       "review_on": "2031-01-01"})))
    service.take_position(s.db, actor=s.people.steward, proposal_id=p.id, data=PositionIn(choice="consent"),
                          now=past + timedelta(hours=1))
    service.close(s.db, actor=None, proposal_id=p.id)
    s.db.flush()
    return p.outcome["effect"]["result"]["agreement_id"]


SUBJECTS = {
    "gov_proposal": lambda s: _proposal(s, title=MEMBERS_TITLE),
    "gov_public": lambda s: _proposal(s, title="Proposition publique", public=True),
    "gov_circle": _circle,
    "gov_trusted": _trusted,
    "gov_agreement": _agreement,
}

# Members of the cooperative see its proposals; the other cooperative and anonymous visitors see only
# public ones, without names.
SEE = rule(200, anonymous=404, outsider=404)
AUTHOR = rule(403, anonymous=401, member=200, outsider=404)
IN_CIRCLE = rule(403, anonymous=401, steward=200, other_steward=200, outsider=404)
PROPOSAL_BODY = js(title="Proposition matrice", text="Texte.", closes_at=_closes())

ROWS: list[Row] = [
    Row("GET", "/api/v1/governance/proposals", rule(200),
        url="/api/v1/governance/proposals?_={gov_proposal}{gov_public}",
        hidden={MEMBERS_TITLE: OURS, "member_name": OURS, "Proposition publique": [A, M, S, O, C, X]}, shown=True),
    Row("POST", "/api/v1/governance/proposals", signed_in(201), body=PROPOSAL_BODY),
    Row("GET", "/api/v1/governance/proposals/{proposal_id}", SEE, url="/api/v1/governance/proposals/{gov_proposal}",
        hidden={MEMBERS_TITLE: OURS}, shown=True),
    Row("PATCH", "/api/v1/governance/proposals/{proposal_id}", AUTHOR,
        url="/api/v1/governance/proposals/{gov_proposal}", body=js(text="Avant 8 h.")),
    Row("PUT", "/api/v1/governance/proposals/{proposal_id}/position", rule(200, anonymous=401, outsider=404),
        url="/api/v1/governance/proposals/{gov_proposal}/position", body=js(choice="consent")),
    Row("POST", "/api/v1/governance/proposals/{proposal_id}/close", AUTHOR,
        url="/api/v1/governance/proposals/{gov_proposal}/close"),
    Row("GET", "/api/v1/governance/agreements", signed_in(200), url="/api/v1/governance/agreements?_={gov_agreement}",
        hidden={AGREEMENT_TITLE: OURS}, shown=True),
    Row("GET", "/api/v1/governance/agreements.ics", signed_in(200),
        url="/api/v1/governance/agreements.ics?_={gov_agreement}", hidden={AGREEMENT_TITLE: OURS}, shown=True),
    Row("GET", "/api/v1/governance/circles", signed_in(200), url="/api/v1/governance/circles?_={gov_circle}",
        hidden={CIRCLE_NAME: OURS}, shown=True),
    Row("POST", "/api/v1/governance/circles", coordinators(201, outsider=201),
        body=lambda s, role: {"json": {"name": f"Cercle {role}"}}),
    Row("PUT", "/api/v1/governance/trust/{member_ref}", IN_CIRCLE, url="/api/v1/governance/trust/{member_id}",
        body=lambda s, role: {"json": {"circle_id": _circle(s)}}),
    Row("DELETE", "/api/v1/governance/trust/{member_ref}",
        rule(403, anonymous=401, steward=200, other_steward=404, outsider=404),
        url="/api/v1/governance/trust/{gov_trusted}?circle_id={gov_circle}"),
    # --- the decisions pages
    Row("GET", "/app/decisions", page(200), url="/app/decisions?_={gov_proposal}", page=True,
        hidden={MEMBERS_TITLE: OURS}, shown=True),
    Row("GET", "/app/decisions/{proposal_id}", rule(200, anonymous=303, outsider=404),
        url="/app/decisions/{gov_proposal}", page=True, hidden={MEMBERS_TITLE: OURS}, shown=True),
    Row("POST", "/app/decisions/{proposal_id}/position", rule(303, anonymous=303, outsider=404),
        url="/app/decisions/{gov_proposal}/position", page=True, body=_form(choice="consent")),
    Row("GET", "/app/agreements", page(200), url="/app/agreements?_={gov_agreement}", page=True,
        hidden={AGREEMENT_TITLE: OURS}, shown=True),
]
