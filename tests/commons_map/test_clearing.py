"""Hours that cross between cooperatives: clearing lines (four eyes across cooperatives), crossing
payments in both ledgers at once, their limits, and the network check."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from commons_map.clearing import service as clearing
from commons_map.clearing.models import ClearingLine, ClearingLineHistory, ClearingPayment
from commons_map.demo.network import CREST_SLUG
from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Posting, Transfer
from commons_map.people.cooperatives import archive_cooperative
from commons_map.people.models import Cooperative, Member


def m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def counts(db) -> tuple[int, int, int, int]:
    return (db.scalar(select(func.count()).select_from(Transfer)),
            db.scalar(select(func.count()).select_from(Posting)),
            db.scalar(select(func.count()).select_from(ClearingPayment)),
            db.scalar(select(func.count()).select_from(ClearingLine)))


def line_between(db, a: Cooperative, b: Cooperative) -> ClearingLine:
    return db.scalars(select(ClearingLine).where(clearing._pair(a.id, b.id))).one()


def test_the_demo_network_holds_and_shows_three_cooperatives(db, people):
    report = clearing.check_network(db)
    assert report.ok, report.breaches
    slugs = set(db.scalars(select(Cooperative.slug)))
    assert {"cic-saillans", "cic-diois", CREST_SLUG} <= slugs
    line = line_between(db, people.coop, people.other_coop)
    assert line.state == "accepted" and line.proposed_by_id == people.coordinator.id
    assert db.scalar(select(func.count()).select_from(ClearingPayment).where(ClearingPayment.line_id == line.id)) == 4
    ours = clearing.clearing_balance(db, cooperative_id=people.coop.id, partner_cooperative_id=people.other_coop.id)
    theirs = clearing.clearing_balance(db, cooperative_id=people.other_coop.id, partner_cooperative_id=people.coop.id)
    assert ours == -theirs == 90 + 45 - 60 - 120


def test_a_crossing_payment_posts_in_both_ledgers_once(db, people):
    payer, payee = people.member, m(db, "josiane")
    b_payer, b_payee = ledger.balance(db, member=payer), ledger.balance(db, member=payee)
    ours0 = clearing.clearing_balance(db, cooperative_id=people.coop.id, partner_cooperative_id=people.other_coop.id)
    t = ledger.pay(db, payer=payer, payee="josiane@cic-diois", minutes=50, reason="Semis de courges",
                   idempotency_key="cross-1")
    assert t.cooperative_id == people.coop.id and not ledger.was_replayed(t)
    crossing = db.scalars(select(ClearingPayment).where(ClearingPayment.payer_transfer_id == t.id)).one()
    mirror = db.get(Transfer, crossing.payee_transfer_id)
    assert mirror.cooperative_id == people.other_coop.id and crossing.minutes == 50
    assert ledger.balance(db, member=payer) == b_payer - 50
    assert ledger.balance(db, member=payee) == b_payee + 50
    assert clearing.clearing_balance(db, cooperative_id=people.coop.id,
                                     partner_cooperative_id=people.other_coop.id) == ours0 + 50
    n = counts(db)
    again = ledger.pay(db, payer=payer, payee="josiane@cic-diois", minutes=50, reason="Semis de courges",
                       idempotency_key="cross-1")
    assert again.id == t.id and ledger.was_replayed(again) and counts(db) == n
    assert ledger.balance(db, member=payee) == b_payee + 50
    for other in ({"payee": "baptiste@cic-diois", "minutes": 50}, {"payee": "josiane@cic-diois", "minutes": 51}):
        with pytest.raises(Conflict) as err:
            ledger.pay(db, payer=payer, reason="Semis de courges", idempotency_key="cross-1", **other)
        assert err.value.code == "ledger.key_reused"
    assert counts(db) == n
    report = clearing.check_network(db)
    assert report.ok, report.breaches
    from commons_map.notify.models import Notification

    note = db.scalars(select(Notification).where(Notification.member_id == payee.id,
                                                 Notification.dedupe == f"transfer:{mirror.id}:received")).one()
    assert note.cooperative_id == people.other_coop.id


def test_a_payment_past_the_line_is_a_409_naming_the_line_and_the_minutes(db, people):
    line = line_between(db, people.coop, people.other_coop)
    owed = clearing.clearing_balance(db, cooperative_id=people.coop.id, partner_cooperative_id=people.other_coop.id)
    too_much = line.limit_minutes - owed + 25
    n = counts(db)
    with pytest.raises(clearing.LineLimitExceeded) as err:
        clearing.pay_across(db, payer=people.coordinator, payee="maelle@cic-diois", minutes=too_much,
                            reason="Trop", idempotency_key="cross-over")
    assert isinstance(err.value, Conflict) and err.value.code == "clearing.limit_exceeded"
    assert err.value.params["line_id"] == line.id and err.value.params["short_minutes"] == 25
    assert "25 min" in err.value.text("en") and str(line.id) in err.value.text("fr")
    assert counts(db) == n
    # Exactly up to the limit passes; the other way round frees room again.
    clearing.pay_across(db, payer=people.coordinator, payee="maelle@cic-diois", minutes=too_much - 25,
                        reason="Juste", idempotency_key="cross-exact")
    with pytest.raises(clearing.LineLimitExceeded):
        clearing.pay_across(db, payer=people.member, payee="maelle@cic-diois", minutes=1, reason="Une de trop",
                            idempotency_key="cross-one")
    clearing.pay_across(db, payer=m(db, "baptiste"), payee="lucas@cic-saillans", minutes=30, reason="Retour",
                        idempotency_key="cross-back")
    clearing.pay_across(db, payer=people.member, payee="maelle@cic-diois", minutes=30, reason="Encore",
                        idempotency_key="cross-one-2")
    assert clearing.check_network(db).ok


@pytest.mark.parametrize(("payee", "cls", "code"), [
    ("nobody@cic-diois", ValidationFailed, "ledger.no_payee"),
    ("maelle@nowhere", ValidationFailed, "cooperatives.unknown"),
    ("gaspard@cic-crest", ValidationFailed, "clearing.no_line"),       # no line Saillans–Crest
    ("@cic-diois", ValidationFailed, "ledger.no_payee"),
    ("maelle@", ValidationFailed, "ledger.no_payee"),
])
def test_bad_payees_across_are_refused_and_nothing_is_written(db, people, payee, cls, code):
    n = counts(db)
    with pytest.raises(cls) as err:
        ledger.pay(db, payer=people.member, payee=payee, minutes=10, reason="Essai", idempotency_key="bad-1")
    assert err.value.code == code and err.value.field == "payee"
    assert counts(db) == n


def test_a_line_not_yet_accepted_carries_nothing(db, people):
    n = counts(db)
    with pytest.raises(Conflict) as err:  # Crest proposed a line to the Diois; nobody accepted it yet
        ledger.pay(db, payer=m(db, "gaspard"), payee="baptiste@cic-diois", minutes=10, reason="Essai",
                   idempotency_key="pending-1")
    assert err.value.code == "clearing.line_not_accepted"
    assert counts(db) == n


def test_an_archived_cooperative_receives_nothing(db, people):
    archive_cooperative(db, slug="cic-diois")
    n = counts(db)
    with pytest.raises(ValidationFailed) as err:
        ledger.pay(db, payer=people.member, payee="maelle@cic-diois", minutes=10, reason="Essai",
                   idempotency_key="archived-1")
    assert err.value.code == "cooperatives.archived"
    with pytest.raises(ValidationFailed):
        clearing.propose_line(db, actor=m(db, "odile"), partner="cic-diois", limit_minutes=60)
    assert counts(db) == n


def test_own_cooperative_named_in_full_is_a_plain_payment(db, people):
    t = ledger.pay(db, payer=people.member, payee="oksana@cic-saillans", minutes=5, reason="Café",
                   idempotency_key="own-full")
    assert db.scalar(select(func.count()).select_from(ClearingPayment)
                     .where(ClearingPayment.payer_transfer_id == t.id)) == 0
    assert {p.amount for p in t.postings} == {-5, 5}
    with pytest.raises(ValidationFailed) as err:
        clearing.pay_across(db, payer=people.member, payee="oksana@cic-saillans", minutes=5, reason="Café",
                            idempotency_key="own-full-2")
    assert err.value.code == "clearing.payee_here"


def test_a_line_needs_a_coordinator_of_each_side(db, people):
    crest_coord, gaspard = m(db, "odile"), m(db, "gaspard")
    with pytest.raises(PermissionDenied):
        clearing.propose_line(db, actor=gaspard, partner="cic-saillans", limit_minutes=60)
    line = clearing.propose_line(db, actor=crest_coord, partner="cic-saillans", limit_minutes=60)
    assert line.state == "proposed" and line.cooperative_id == crest_coord.cooperative_id
    with pytest.raises(PermissionDenied) as err:  # the proposing side alone cannot open it
        clearing.accept_line(db, actor=m(db, "youssef"), line_id=line.id)
    assert err.value.code == "clearing.accept_own_proposal"
    with pytest.raises(PermissionDenied):  # a plain member of the other side neither
        clearing.accept_line(db, actor=people.member, line_id=line.id)
    with pytest.raises(NotFound):  # a third cooperative does not even see it
        clearing.accept_line(db, actor=people.outsider, line_id=line.id)
    with pytest.raises(Conflict) as err:
        clearing.propose_line(db, actor=people.coordinator, partner=CREST_SLUG, limit_minutes=60)
    assert err.value.code == "clearing.line_exists"
    accepted = clearing.accept_line(db, actor=people.coordinator, line_id=line.id)
    assert accepted.state == "accepted" and accepted.accepted_by_id == people.coordinator.id
    with pytest.raises(Conflict) as err:
        clearing.accept_line(db, actor=people.coordinator, line_id=line.id)
    assert err.value.code == "clearing.nothing_to_accept"
    actions = db.scalars(select(ClearingLineHistory.action).where(ClearingLineHistory.line_id == line.id)
                         .order_by(ClearingLineHistory.id)).all()
    assert actions == ["proposed", "accepted"]
    clearing.pay_across(db, payer=gaspard, payee="lucas@cic-saillans", minutes=60, reason="Plein",
                        idempotency_key="crest-1")
    assert clearing.check_network(db).ok


@pytest.mark.parametrize(("partner", "limit", "code"), [
    ("cic-saillans", 60, "clearing.line_to_self"),
    ("nowhere", 60, "cooperatives.unknown"),
    (CREST_SLUG, 0, "clearing.limit_range"),
    (CREST_SLUG, "60", "ledger.minutes_not_whole"),
])
def test_bad_line_proposals(db, people, partner, limit, code):
    n = counts(db)
    with pytest.raises(ValidationFailed) as err:
        clearing.propose_line(db, actor=people.coordinator, partner=partner, limit_minutes=limit)
    assert err.value.code == code
    assert counts(db) == n


def test_a_limit_is_lowered_by_either_side_never_below_what_is_owed_and_raised_by_both(db, people):
    line = line_between(db, people.coop, people.other_coop)
    owed = clearing.owed(db, line)
    assert owed == 45
    with pytest.raises(Conflict) as err:
        clearing.change_limit(db, actor=m(db, "maelle"), line_id=line.id, limit_minutes=owed - 1)
    assert err.value.code == "clearing.limit_below_owed" and err.value.params["owed_minutes"] == owed
    assert db.get(ClearingLine, line.id).limit_minutes == 20 * 60
    lowered = clearing.change_limit(db, actor=m(db, "maelle"), line_id=line.id, limit_minutes=owed)
    assert lowered.limit_minutes == owed
    raised = clearing.change_limit(db, actor=people.coordinator, line_id=line.id, limit_minutes=600)
    assert raised.limit_minutes == owed and raised.proposed_limit_minutes == 600
    with pytest.raises(PermissionDenied):
        clearing.accept_line(db, actor=m(db, "yasmine"), line_id=line.id)
    done = clearing.accept_line(db, actor=m(db, "diois"), line_id=line.id)
    assert done.limit_minutes == 600 and done.proposed_limit_minutes is None
    with pytest.raises(PermissionDenied):
        clearing.change_limit(db, actor=people.member, line_id=line.id, limit_minutes=100)


def test_a_pending_line_limit_cannot_change(db, people):
    pending = db.scalars(select(ClearingLine).where(ClearingLine.state == "proposed")).first()
    with pytest.raises(Conflict) as err:
        clearing.change_limit(db, actor=m(db, "odile"), line_id=pending.id, limit_minutes=30)
    assert err.value.code == "clearing.line_not_accepted"


def test_one_side_of_a_crossing_payment_cannot_be_reversed_alone(db, people):
    t = ledger.pay(db, payer=people.member, payee="josiane@cic-diois", minutes=20, reason="Aide",
                   idempotency_key="cross-rev")
    with pytest.raises(Conflict) as err:
        ledger.reverse(db, actor=people.coordinator, transfer_id=t.id, reason="Erreur", idempotency_key="rev-x")
    assert err.value.code == "clearing.reverse_crossing"


def test_the_network_check_finds_a_clearing_account_moved_outside_a_crossing(db, people):
    assert clearing.check_network(db).ok
    ours = clearing.clearing_account(db, cooperative_id=people.coop.id, partner_cooperative_id=people.other_coop.id)
    # A balanced transfer in Saillans' ledger alone: that ledger still sums to zero, the mirror breaks.
    issuer = ledger.cooperative_account(db, cooperative_id=people.coop.id)
    ledger.post(db, cooperative_id=people.coop.id, kind="adjustment",
                legs=[ledger.Leg(ours.id, 7), ledger.Leg(issuer.id, -7)],
                reason="Écriture hors compensation", initiated_by=people.coordinator, idempotency_key="corrupt")
    assert ledger.check(db).ok
    report = clearing.check_network(db)
    assert not report.ok
    assert any("must mirror" in b for b in report.breaches), report.breaches


def test_loading_the_demo_again_changes_nothing_and_the_network_still_holds(db, people):
    from commons_map.demo.load import load_demo

    before = counts(db), db.scalar(select(func.count()).select_from(Cooperative))
    again = load_demo(db)
    assert not again.created
    assert (counts(db), db.scalar(select(func.count()).select_from(Cooperative))) == before
    assert clearing.check_network(db).ok


def test_a_line_with_an_archived_side_cannot_be_accepted(db, people):
    pending = db.scalars(select(ClearingLine).where(ClearingLine.state == "proposed")).first()  # Crest -> Diois
    archive_cooperative(db, slug=CREST_SLUG)
    with pytest.raises(Conflict) as err:
        clearing.accept_line(db, actor=people.outsider, line_id=pending.id)
    assert err.value.code == "cooperatives.archived"
    assert db.get(ClearingLine, pending.id).state == "proposed"


def test_a_key_used_for_a_local_payment_is_not_reused_across(db, people):
    ledger.pay(db, payer=people.member, payee="oksana", minutes=5, reason="Café", idempotency_key="shared-key")
    n = counts(db)
    with pytest.raises(Conflict) as err:
        ledger.pay(db, payer=people.member, payee="maelle@cic-diois", minutes=5, reason="Café",
                   idempotency_key="shared-key")
    assert err.value.code == "ledger.key_reused"
    assert counts(db) == n


def test_a_limit_beyond_reason_is_refused(db, people):
    line = line_between(db, people.coop, people.other_coop)
    with pytest.raises(ValidationFailed) as err:
        clearing.change_limit(db, actor=people.coordinator, line_id=line.id, limit_minutes=clearing.MAX_LIMIT + 1)
    assert err.value.code == "clearing.limit_range"
