"""Exchanges and proposals notify the people they concern, in the event's own transaction."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from commons_map.exchange import service as exchange
from commons_map.governance import service as governance
from commons_map.notify.models import Notification
from commons_map.notify.service import inbox, text_of
from tests.commons_map.test_exchange import _member, _post
from tests.commons_map.test_governance import T0, position, propose


def _codes(db, member) -> list[str]:
    return [n.code for n in db.scalars(select(Notification).where(Notification.member_id == member.id)
                                         .order_by(Notification.id))]


def test_an_exchange_tells_the_other_party_each_step(db, people):
    author, helper = _member(db, "chloe"), _member(db, "samir")
    post = _post(db, author, kind="need", title="Aide pour déménager samedi", minutes=120)
    before_author, before_helper = len(_codes(db, author)), len(_codes(db, helper))
    ex = exchange.reply(db, actor=helper, post_id=post.id, message="Je peux venir à 9 h.")
    exchange.add_message(db, actor=author, exchange_id=ex.id, body="Merci, à samedi !")
    exchange.accept(db, actor=author, exchange_id=ex.id)
    exchange.done(db, actor=helper, exchange_id=ex.id)   # the provider records it done
    exchange.done(db, actor=author, exchange_id=ex.id)   # the receiver confirms: paid
    assert _codes(db, author)[before_author:] == ["notify.exchange_proposed", "notify.exchange_recorded"]
    assert _codes(db, helper)[before_helper:] == ["notify.exchange_message", "notify.exchange_accepted",
                                                  "notify.exchange_paid"]
    latest = inbox(db, actor=author)[0]
    assert text_of(latest, "fr").startswith(helper.display_name + " indique que « Aide pour déménager samedi »")
    assert "2 h 00" in text_of(latest, "en")


def test_a_proposal_tells_who_may_take_part_then_who_took_part(db, people):
    before = {m.id: len(_codes(db, m)) for m in (people.member, people.coordinator, people.steward)}

    def new(member) -> list[str]:
        return _codes(db, member)[before[member.id]:]

    p = propose(db, people.coordinator, title="Four à pain partagé")
    assert new(people.member) == ["notify.proposal_opened"]
    assert new(people.coordinator) == []  # the proposer knows
    position(db, people.member, p, choice="consent")
    governance.close(db, actor=None, proposal_id=p.id, now=T0 + timedelta(days=8))
    assert new(people.member) == ["notify.proposal_opened", "notify.proposal_passed"]
    assert new(people.coordinator) == ["notify.proposal_passed"]
    assert new(people.steward) == ["notify.proposal_opened"]  # took no part: no outcome message


def test_work_logs_and_payments_tell_who_they_concern(db, people):
    from commons_map.ledger import service as ledger
    from commons_map.register.models import Commons
    from commons_map.worklog import service as worklog
    from commons_map.worklog.schemas import WorkLogIn

    land = next(c for c in db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%"))
                                      .order_by(Commons.id)) if people.steward.id in c.steward_ids)
    before = {m.id: len(_codes(db, m)) for m in (people.member, people.steward)}
    log = worklog.log_work(db, actor=people.member, data=WorkLogIn(
        commons_id=land.id, work_date=date.today(), minutes=90, activity="weeding"))
    assert _codes(db, people.steward)[before[people.steward.id]:] == ["notify.worklog_to_approve"]
    worklog.approve(db, actor=people.steward, work_log_id=log.id)
    ledger.pay(db, payer=people.steward, payee=people.member.username, minutes=30, reason="Semis",
               idempotency_key="wiring-pay")
    ledger.pay(db, payer=people.steward, payee=people.member.username, minutes=30, reason="Semis",
               idempotency_key="wiring-pay")  # a retry tells nobody twice
    assert _codes(db, people.member)[before[people.member.id]:] == ["notify.worklog_approved",
                                                                    "notify.hours_received"]
    latest = inbox(db, actor=people.member)[0]
    assert text_of(latest, "fr") == f"Vous avez reçu 30 min de {people.steward.display_name}."


def test_a_booking_request_tells_the_stewards_and_its_decision_the_member(db, people):
    from commons_map.reservations import service as reservations
    from commons_map.reservations.schemas import RulesIn
    from tests.commons_map.test_reservations_support import day, new_tool

    tool = new_tool(db, people, rules=RulesIn(booking_mode="approval", min_minutes=60, max_days_ahead=30))
    before = {m.id: len(_codes(db, m)) for m in (people.member, people.steward)}
    first = reservations.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    second = reservations.book(db, actor=people.member, resource_id=tool.id, starts_at=day(4), ends_at=day(4, 12))
    assert _codes(db, people.steward)[before[people.steward.id]:] == ["notify.reservation_to_approve"] * 2
    reservations.approve(db, actor=people.steward, reservation_id=first.id)
    reservations.refuse(db, actor=people.steward, reservation_id=second.id, note="En réparation")
    assert _codes(db, people.member)[before[people.member.id]:] == ["notify.reservation_approved",
                                                                    "notify.reservation_refused"]
    assert tool.name in text_of(inbox(db, actor=people.member)[0], "fr")
