"""Governance against the real database: proposals, positions, the close and its effects, trust,
agreements. Each test runs in its own rolled-back transaction over the demo cooperative."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.governance import service
from commons_map.governance.models import Agreement, CircleRole, Position, Proposal, RoleHistory, Trust
from commons_map.governance.schemas import CircleIn, EffectIn, PositionIn, ProposalIn, ProposalPatch
from commons_map.ledger.models import Account, AccountHistory
from commons_map.people.models import Member
from commons_map.people.service import approve_role_change, create_member, request_role_change
from commons_map.register.models import Commons, CommonsHistory
from commons_map.register.schemas import CommonsPatch
from commons_map.register.service import archive_commons, update_commons

T0 = datetime(2030, 5, 4, 9, 0, tzinfo=UTC)  # "now" in these tests: proposals open at T0


def m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def commons(db, external_id: str) -> Commons:
    return db.scalars(select(Commons).where(Commons.external_id == external_id)).one()


def propose(db, actor, *, now=T0, days=7, **kw) -> Proposal:
    kw.setdefault("title", "Arrosage le matin en été")
    kw.setdefault("text", "De juin à août, on arrose avant 9 h pour limiter l'évaporation.")
    kw.setdefault("closes_at", now + timedelta(days=days))
    return service.create_proposal(db, actor=actor, data=ProposalIn(**kw), now=now)


def position(db, who, p, choice=None, reason="", scores=None, now=T0 + timedelta(hours=1)):
    return service.take_position(db, actor=who, proposal_id=p.id, data=PositionIn(choice=choice, reason=reason,
                                                                                     scores=scores), now=now)


def close(db, p, now=None):
    return service.close(db, actor=None, proposal_id=p.id, now=now or p.closes_at + timedelta(minutes=1))


def garden_circle(db, people, members=("mamadou", "lea", "hugo")):
    return service.create_circle(db, actor=people.coordinator, data=CircleIn(
        name="Cercle d'essai", members=[m(db, u).id for u in members], thresholds={"member": 2, "facilitator": 2}))


# --- consent and its effect ------------------------------------------------------------------------


def test_consent_passes_without_objection_and_changes_the_rules_of_use_once(db, people):
    garden = commons(db, "demo:garden-0")
    p = propose(db, people.member, quorum=3, effect=EffectIn(type="commons_rules", target=garden.id,
                                                              value="Arrosage avant 9 h de juin à août."))
    position(db, people.member, p, "consent")
    position(db, people.steward, p, "concern", reason="Et les jours de canicule ?")
    position(db, people.coordinator, p, "consent")
    closed = close(db, p)
    assert closed.state == "closed" and closed.outcome["passed"] is True
    assert closed.outcome["why"] == "no_objection"
    assert closed.outcome["counts"] == {"consent": 2, "concern": 1, "objection": 0}
    assert closed.outcome["reasons"] == [{"choice": "concern", "reason": "Et les jours de canicule ?"}]
    assert closed.outcome["effect"]["applied"] is True
    db.refresh(garden)
    assert garden.rules_of_use == "Arrosage avant 9 h de juin à août."
    rows = db.scalars(select(CommonsHistory).where(CommonsHistory.commons_id == garden.id,
                                                   CommonsHistory.action == "decided")).all()
    assert len(rows) == 1
    assert rows[0].changes["decision"] == [None, {"proposal_id": p.id, "title": p.title}]
    # a second close (a second closer, the schedule) changes nothing
    again = close(db, p, now=p.closes_at + timedelta(days=1))
    assert again.closed_at == closed.closed_at
    assert db.scalar(select(func.count()).select_from(CommonsHistory).where(
        CommonsHistory.commons_id == garden.id, CommonsHistory.action == "decided")) == 1


def test_an_objection_blocks_consent_and_the_effect_is_not_applied(db, people):
    garden = commons(db, "demo:garden-0")
    before = garden.rules_of_use
    p = propose(db, people.member, effect=EffectIn(type="commons_rules", target=garden.id, value="Autre règle"))
    position(db, people.member, p, "consent")
    position(db, people.steward, p, "objection", reason="Les bénévoles du matin ne sont pas assez nombreux.")
    closed = close(db, p)
    assert closed.outcome["passed"] is False and closed.outcome["why"] == "objection"
    assert closed.outcome["effect"] == {"type": "commons_rules", "applied": False,
                                        "code": "governance.effect_not_passed", "params": {}}
    db.refresh(garden)
    assert garden.rules_of_use == before


def test_an_objection_needs_a_reason_and_nothing_is_written(db, people):
    p = propose(db, people.member)
    with pytest.raises(ValidationFailed) as exc:
        position(db, people.steward, p, "objection", reason="   ")
    assert exc.value.code == "governance.reason_required" and exc.value.field == "reason"
    assert db.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == p.id)) == 0
    with pytest.raises(ValidationFailed) as exc:
        position(db, people.steward, p, "yes")
    assert exc.value.code == "governance.choice_for_method"


def test_quorum_not_met_fails_consent(db, people):
    p = propose(db, people.member, quorum=3)
    position(db, people.member, p, "consent")
    closed = close(db, p)
    assert closed.outcome["passed"] is False and closed.outcome["why"] == "quorum_not_met"
    assert closed.outcome["quorum_met"] is False and closed.outcome["participants"] == 1


def test_members_change_their_position_until_the_close_then_never(db, people):
    p = propose(db, people.member)
    position(db, people.steward, p, "objection", reason="Trop tôt")
    position(db, people.steward, p, "consent")
    assert db.scalar(select(func.count()).select_from(Position).where(Position.proposal_id == p.id)) == 1
    closed = close(db, p)
    assert closed.outcome["passed"] is True
    with pytest.raises(Conflict) as exc:
        position(db, people.steward, p, "objection", reason="Trop tard", now=p.closes_at + timedelta(hours=2))
    assert exc.value.code == "governance.closed"
    # and the database itself refuses to touch a closed proposal or its positions
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("UPDATE governance_proposals SET title = 'x' WHERE id = :id"), {"id": p.id})
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("UPDATE governance_positions SET choice = 'consent' WHERE proposal_id = :id"), {"id": p.id})


def test_a_position_before_the_opening_is_refused(db, people):
    p = propose(db, people.member, opens_at=T0 + timedelta(days=1))
    with pytest.raises(Conflict) as exc:
        position(db, people.steward, p, "consent", now=T0 + timedelta(hours=2))
    assert exc.value.code == "governance.not_open_yet"


# --- vote and score ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "yes", "no", "abstain", "passed"), [
    ("simple", 2, 1, 0, True),
    ("simple", 1, 1, 3, False),
    ("two_thirds", 2, 1, 1, True),
    ("two_thirds", 3, 2, 0, False),
])
def test_vote_counts_yes_against_no_at_the_threshold(db, people, threshold, yes, no, abstain, passed):
    p = propose(db, people.member, method="vote", threshold=threshold)
    voters = db.scalars(select(Member).where(Member.cooperative_id == people.coop.id).order_by(Member.id)).all()
    for i, choice in enumerate(["yes"] * yes + ["no"] * no + ["abstain"] * abstain):
        position(db, voters[i], p, choice)
    out = close(db, p).outcome
    assert out["counts"] == {"yes": yes, "no": no, "abstain": abstain}
    assert out["passed"] is passed


def test_score_picks_the_highest_total_and_reports_ties(db, people):
    p = propose(db, people.member, method="score", options=["Mardi soir", "Samedi matin", "Dimanche"])
    position(db, people.member, p, scores=[3, 1, 0])
    position(db, people.steward, p, scores=[1, 3, 0])
    out = close(db, p).outcome
    assert out["totals"] == [{"option": "Mardi soir", "total": 4}, {"option": "Samedi matin", "total": 4},
                             {"option": "Dimanche", "total": 0}]
    assert out["passed"] is False and out["winner"] is None and out["tie"] == ["Mardi soir", "Samedi matin"]
    q = propose(db, people.member, method="score", options=["A", "B"])
    position(db, people.member, q, scores=[3, 1])
    position(db, people.steward, q, scores=[2, 3])
    out = close(db, q).outcome
    assert out["winner"] == "A" and out["tie"] == [] and out["passed"] is True
    with pytest.raises(ValidationFailed) as exc:
        position(db, people.coordinator, propose(db, people.member, method="score", options=["A", "B"]),
                 scores=[4, 0])
    assert exc.value.code == "governance.scores_range"


# --- bad input when proposing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kw", "field", "code"), [
    ({"closes_at": T0 - timedelta(hours=1)}, "closes_at", "governance.closes_in_past"),
    ({"opens_at": T0 - timedelta(days=1)}, "opens_at", "governance.opens_in_past"),
    ({"opens_at": T0 + timedelta(days=10)}, "closes_at", "governance.closes_before_opens"),
    ({"quorum": 500}, "quorum", "governance.quorum_above_eligible"),
    ({"participation": "circle"}, "circle_id", "governance.circle_required"),
    ({"threshold": "simple"}, "threshold", "governance.threshold_vote_only"),
    ({"method": "score", "options": ["seule"]}, "options", "governance.options_count"),
    ({"title": "  "}, "title", "governance.title_empty"),
    ({"effect": EffectIn(type="launch_rocket")}, "effect.type", "governance.effect_type"),
    ({"effect": EffectIn(type="commons_visibility", target=1, value="everyone")}, None, None),
    ({"effect": EffectIn(type="account_limits", target=None, value={})}, "effect.target",
     "governance.effect_no_member"),
])
def test_bad_proposals_are_refused_naming_the_field(db, people, kw, field, code):
    if kw.get("effect") is not None and kw["effect"].type == "commons_visibility":
        kw["effect"] = EffectIn(type="commons_visibility", target=commons(db, "demo:garden-0").id, value="everyone")
        field, code = "effect.value", "governance.effect_visibility"
    before = db.scalar(select(func.count()).select_from(Proposal))
    with pytest.raises(ValidationFailed) as exc:
        propose(db, people.member, **kw)
    assert exc.value.code == code and exc.value.field == field
    assert db.scalar(select(func.count()).select_from(Proposal)) == before


def test_quorum_counts_only_the_circle_when_the_circle_decides(db, people):
    circle = garden_circle(db, people)
    with pytest.raises(ValidationFailed) as exc:
        propose(db, m(db, "mamadou"), participation="circle", circle_id=circle.id, quorum=4)
    assert exc.value.params == {"quorum": 4, "eligible": 3}
    assert propose(db, m(db, "mamadou"), participation="circle", circle_id=circle.id, quorum=3).quorum == 3


def test_someone_outside_the_circle_cannot_take_part(db, people):
    circle = garden_circle(db, people)
    hidden = propose(db, m(db, "mamadou"), participation="circle", circle_id=circle.id)
    with pytest.raises(NotFound):  # a circle-only proposal is not even seen from outside
        position(db, people.member, hidden, "consent")
    shown = propose(db, m(db, "mamadou"), participation="circle", circle_id=circle.id, public=True)
    with pytest.raises(PermissionDenied) as exc:
        position(db, people.member, shown, "consent")
    assert exc.value.code == "governance.not_eligible"
    with pytest.raises(PermissionDenied):
        position(db, people.outsider, shown, "consent")
    with pytest.raises(PermissionDenied) as exc:
        propose(db, people.member, participation="circle", circle_id=circle.id)
    assert exc.value.code == "governance.not_in_circle"


# --- amendments, lazy close, close early -----------------------------------------------------------------------


def test_an_amendment_is_recorded_and_shown_to_those_who_took_a_position(db, people):
    p = propose(db, people.member)
    position(db, people.steward, p, "consent")
    with pytest.raises(PermissionDenied) as exc:
        service.amend(db, actor=people.steward, proposal_id=p.id, patch=ProposalPatch(text="autre"), now=T0)
    assert exc.value.code == "governance.author_only"
    service.amend(db, actor=people.member, proposal_id=p.id, now=T0 + timedelta(hours=2),
                  patch=ProposalPatch(text="Avant 8 h plutôt.", note="Plus tôt, suite aux remarques."))
    out = service.proposal_out(db, p, actor=people.steward, now=T0 + timedelta(hours=3))
    assert out["version"] == 2 and out["my_position"]["amended_since"] is True
    first = out["amendments"][0]
    assert first["new_text"] == "Avant 8 h plutôt." and first["old_text"].startswith("De juin")
    position(db, people.steward, p, "consent", now=T0 + timedelta(hours=4))
    assert service.proposal_out(db, p, actor=people.steward, now=T0)["my_position"]["amended_since"] is False
    with pytest.raises(ValidationFailed) as exc:
        service.amend(db, actor=people.member, proposal_id=p.id, patch=ProposalPatch(text="Avant 8 h plutôt."),
                      now=T0)
    assert exc.value.code == "governance.amend_nothing"


def test_reading_a_due_proposal_closes_it_and_close_due_closes_the_rest(db, people):
    a, b = propose(db, people.member, days=1), propose(db, people.member, days=2)
    position(db, people.steward, a, "consent")
    later = T0 + timedelta(days=1, minutes=5)
    got = service.get_proposal(db, actor=people.steward, proposal_id=a.id, now=later)
    assert got.state == "closed" and got.outcome["passed"] is True and got.closed_by_id is None
    assert b.id not in service.close_due(db, now=later)
    assert b.id in service.close_due(db, now=T0 + timedelta(days=3))
    assert service.close_due(db, now=T0 + timedelta(days=3)) == []


def test_only_the_proposer_closes_early(db, people):
    p = propose(db, people.member)
    with pytest.raises(PermissionDenied) as exc:
        service.close(db, actor=people.steward, proposal_id=p.id, now=T0 + timedelta(hours=1))
    assert exc.value.code == "governance.close_early_author_only"
    assert service.close(db, actor=people.member, proposal_id=p.id, now=T0 + timedelta(hours=1)).state == "closed"


# --- effects ------------------------------------------------------------------------------------------------


def _pass(db, people, effect: EffectIn, **kw):
    p = propose(db, people.member, effect=effect, **kw)
    position(db, people.member, p, "yes" if kw.get("method") == "vote" else "consent")
    return close(db, p)


def test_a_steward_named_by_consent_with_history_naming_the_decision(db, people):
    shed = commons(db, "demo:shed")
    chloe = m(db, "chloe")
    p = _pass(db, people, EffectIn(type="steward_grant", target=shed.id, value=chloe.id))
    assert p.outcome["effect"]["applied"] is True
    db.refresh(shed)
    assert chloe.id in shed.steward_ids
    h = db.scalars(select(RoleHistory).where(RoleHistory.proposal_id == p.id)).one()
    assert (h.member_id, h.role, h.commons_id, h.action, h.source) == (chloe.id, "steward", shed.id, "granted",
                                                                         "decision")


def test_a_limit_raised_by_vote(db, people):
    chloe = m(db, "chloe")
    p = _pass(db, people, EffectIn(type="account_limits", target=chloe.id,
                                   value={"min_minutes": -40 * 60, "max_minutes": None}), method="vote")
    assert p.outcome["effect"]["applied"] is True
    account = db.scalars(select(Account).where(Account.member_id == chloe.id)).one()
    assert account.min_minutes == -2400
    h = db.scalars(select(AccountHistory).where(AccountHistory.account_id == account.id)
                   .order_by(AccountHistory.id.desc())).first()
    assert h.changes["decision"][1]["proposal_id"] == p.id and h.changes["min_minutes"][1] == -2400


def test_an_effect_become_impossible_is_reported_not_applied(db, people):
    tool = commons(db, "demo:tool-14")
    p = propose(db, people.member, effect=EffectIn(type="commons_visibility", target=tool.id, value="private"))
    position(db, people.member, p, "consent")
    archive_commons(db, actor=people.coordinator, commons_id=tool.id, reason="cassé")
    out = close(db, p).outcome
    assert out["passed"] is True
    assert out["effect"] == {"type": "commons_visibility", "applied": False,
                             "code": "governance.effect_commons_archived", "params": {"commons": tool.name}}
    db.refresh(tool)
    assert tool.visibility != "private"


def test_a_member_gone_and_the_last_coordinator_are_reported(db, people):
    chloe = m(db, "chloe")
    p = propose(db, people.member, effect=EffectIn(type="coordinator_grant", target=chloe.id))
    position(db, people.member, p, "consent")
    chloe.is_active = False
    db.flush()
    assert close(db, p).outcome["effect"]["code"] == "governance.effect_member_gone"
    assert "coordinator" not in chloe.roles
    for u in ("yasmine", "thomas"):  # four eyes: camille asks, the coordinator concerned approves
        asked = request_role_change(db, actor=people.coordinator, member=m(db, u), role="coordinator",
                                    action="revoke")
        approve_role_change(db, actor=m(db, u), change_id=asked.id)
    q = propose(db, people.member, effect=EffectIn(type="coordinator_withdraw", target=people.coordinator.id))
    position(db, people.member, q, "consent")
    assert close(db, q).outcome["effect"]["code"] == "governance.effect_last_coordinator"
    assert people.coordinator.is_coordinator


def test_agreements_adopted_revised_due_for_review_and_in_the_calendar(db, people):
    p = _pass(db, people, EffectIn(type="agreement_adopt", value={
        "title": "Charte de la cabane", "text": "On rend les outils propres.", "review_on": "2030-06-01"}))
    a = db.scalars(select(Agreement).where(Agreement.adopted_by_id == p.id)).one()
    q = _pass(db, people, EffectIn(type="agreement_revise", target=a.id, value={"review_on": "2031-01-15"}))
    db.refresh(a)
    assert (a.version, a.review_on, a.revised_by_id) == (2, date(2031, 1, 15), q.id)
    out = service.agreement_out(db, a, today=date(2031, 2, 1))
    assert out["due_for_review"] is True and [r["version"] for r in out["revisions"]] == [1, 2]
    due = service.list_agreements(db, actor=people.member, due_within_days=30, today=date(2030, 12, 20))
    assert a.id in [x.id for x in due]
    assert a.id not in [x.id for x in service.list_agreements(db, actor=people.member, due_within_days=30,
                                                                today=date(2030, 6, 1))]
    ics = service.agreements_calendar(db, actor=people.member).decode()
    assert "BEGIN:VCALENDAR" in ics and "Charte de la cabane" in ics and "DTSTART;VALUE=DATE:20310115" in ics


# --- roles only by decision ----------------------------------------------------------------------------------


def test_roles_by_decision_only_refuses_direct_grants(db, people):
    p = _pass(db, people, EffectIn(type="roles_by_decision_only", value=True))
    assert p.outcome["effect"]["applied"] is True
    chloe = m(db, "chloe")
    for attempt in (
        lambda: request_role_change(db, actor=people.coordinator, member=chloe, role="coordinator",
                                    action="grant"),
        lambda: request_role_change(db, actor=people.coordinator, member=m(db, "yasmine"), role="coordinator",
                                    action="revoke"),
        lambda: update_commons(db, actor=people.coordinator, commons_id=commons(db, "demo:shed").id,
                               patch=CommonsPatch(steward_ids=[chloe.id])),
        lambda: create_member(db, cooperative=people.coop, username="nouvelle", display_name="Nouvelle",
                              password="assez-long-123", roles={"coordinator"}, actor=people.coordinator),
    ):
        with pytest.raises(PermissionDenied) as exc:
            attempt()
        assert exc.value.code == "governance.roles_by_decision_only"
    assert "coordinator" not in chloe.roles
    # ... and the decision still grants
    q = _pass(db, people, EffectIn(type="coordinator_grant", target=chloe.id))
    assert q.outcome["effect"]["applied"] is True and chloe.is_coordinator


# --- trust ----------------------------------------------------------------------------------------------------


def test_trust_grants_a_role_at_the_threshold_and_withdraws_it_below(db, people):
    circle = garden_circle(db, people)
    chloe = m(db, "chloe")
    first = service.give_trust(db, actor=m(db, "mamadou"), receiver="chloe", circle_id=circle.id)
    assert (first["trusts"], first["holds_role"], first["change"]) == (1, False, None)
    again = service.give_trust(db, actor=m(db, "mamadou"), receiver="chloe", circle_id=circle.id)
    assert again["trusts"] == 1  # trust is given once
    second = service.give_trust(db, actor=m(db, "lea"), receiver="chloe", circle_id=circle.id)
    assert (second["trusts"], second["holds_role"], second["change"]) == (2, True, "granted")
    assert db.get(CircleRole, (circle.id, chloe.id, "member")).source == "trust"
    gone = service.withdraw_trust(db, actor=m(db, "lea"), receiver=chloe.id, circle_id=circle.id)
    assert (gone["trusts"], gone["holds_role"], gone["change"]) == (1, False, "withdrawn")
    actions = db.scalars(select(RoleHistory.action).where(RoleHistory.member_id == chloe.id,
                                                          RoleHistory.circle_id == circle.id)
                         .order_by(RoleHistory.id)).all()
    assert actions == ["trust_given", "trust_given", "granted", "trust_withdrawn", "withdrawn"]
    shown = service.role_history(db, actor=people.member, member_id=chloe.id)
    assert [h["action"] for h in shown][:5] == list(reversed(actions))  # newest first
    assert shown[0]["source"] == "trust" and shown[0]["trusts"] == 1


def test_trust_refusals(db, people):
    circle = garden_circle(db, people)
    with pytest.raises(PermissionDenied) as exc:  # only the circle's members give its trust
        service.give_trust(db, actor=people.member, receiver="chloe", circle_id=circle.id)
    assert exc.value.code == "governance.not_in_circle"
    with pytest.raises(ValidationFailed) as exc:
        service.give_trust(db, actor=m(db, "mamadou"), receiver="mamadou", circle_id=circle.id)
    assert exc.value.code == "governance.trust_self"
    with pytest.raises(ValidationFailed) as exc:
        service.give_trust(db, actor=m(db, "mamadou"), receiver="chloe", circle_id=circle.id, role="treasurer")
    assert exc.value.code == "governance.no_threshold"
    with pytest.raises(NotFound) as exc:
        service.give_trust(db, actor=m(db, "mamadou"), receiver="diois", circle_id=circle.id)
    assert exc.value.code == "governance.no_member"
    with pytest.raises(NotFound) as exc:
        service.withdraw_trust(db, actor=m(db, "mamadou"), receiver="chloe", circle_id=circle.id)
    assert exc.value.code == "governance.no_trust"
    assert db.scalar(select(func.count()).select_from(Trust).where(Trust.circle_id == circle.id)) == 0


# --- the demo ---------------------------------------------------------------------------------------------------


def test_the_demo_has_decided_proposals_an_open_one_and_agreements(db, people):
    decided = db.scalars(select(Proposal).where(Proposal.cooperative_id == people.coop.id,
                                                Proposal.state == "closed")).all()
    applied = {p.effect["type"] for p in decided if p.effect and p.outcome["effect"]["applied"]}
    assert {"commons_rules", "steward_grant", "account_limits", "agreement_adopt"} <= applied
    assert commons(db, "demo:garden-3").rules_of_use.startswith("Arrosage avant 9 h")
    assert m(db, "chloe").id in commons(db, "demo:seeds").steward_ids
    assert db.scalars(select(Account.min_minutes).where(Account.member_id == m(db, "dawit").id)).one() == -2400
    vote = next(p for p in decided if p.method == "vote")
    assert vote.outcome["counts"] == {"yes": 4, "no": 1, "abstain": 1}
    open_now = db.scalars(select(Proposal).where(Proposal.cooperative_id == people.coop.id,
                                                 Proposal.state == "open", Proposal.public)).all()
    assert len(open_now) >= 1
    agreements = service.list_agreements(db, actor=people.member)
    assert len(agreements) >= 2
    assert len(service.list_agreements(db, actor=people.member, due_within_days=0)) >= 1
