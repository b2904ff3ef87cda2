"""A booking's contribution in hours goes through the time ledger: debited when confirmed,
refunded when cancelled, never twice, and a refusal of the ledger leaves no booking behind."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from commons_map.errors import Conflict
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.reservations import service
from commons_map.reservations.schemas import RulesIn
from tests.commons_map.test_reservations_support import day, new_tool, written

RULES = RulesIn(min_minutes=60, max_days_ahead=30, contribution_minutes=45)


def test_confirming_debits_and_cancelling_refunds(db, people):
    tool = new_tool(db, people, rules=RULES)
    before = ledger.balance(db, member=people.member)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    assert r.contribution_minutes == 45 and r.contribution_transfer_id is not None
    assert ledger.balance(db, member=people.member) == before - 45
    transfer = db.get(Transfer, r.contribution_transfer_id)
    assert transfer.kind == "booking_contribution"
    assert transfer.idempotency_key == f"reservation:{r.id}:contribution"
    service.cancel(db, actor=people.member, reservation_id=r.id, reason="Empêchée")
    assert r.refund_transfer_id is not None
    assert db.get(Transfer, r.refund_transfer_id).reverses_id == transfer.id
    assert ledger.balance(db, member=people.member) == before


def test_approval_mode_debits_on_approval_only(db, people):
    tool = new_tool(db, people, rules=RULES.model_copy(update={"booking_mode": "approval"}))
    before = ledger.balance(db, member=people.member)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    assert r.contribution_transfer_id is None and ledger.balance(db, member=people.member) == before
    service.approve(db, actor=people.steward, reservation_id=r.id)
    assert ledger.balance(db, member=people.member) == before - 45
    # A refusal of a request never debited anything.
    r2 = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    service.refuse(db, actor=people.steward, reservation_id=r2.id)
    assert ledger.balance(db, member=people.member) == before - 45


def test_ledger_refusal_leaves_no_booking(db, people):
    """Beyond the member's lowest balance, the ledger refuses; the booking is not written either."""
    tool = new_tool(db, people, rules=RULES.model_copy(update={"contribution_minutes": 100 * 60}))
    before = written(db)
    balance = ledger.balance(db, member=people.member)
    with pytest.raises(Conflict) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    assert "balance" in err.value.message
    assert written(db) == before
    assert ledger.balance(db, member=people.member) == balance
    # The session is still usable.
    ok = service.book(db, actor=people.coordinator, resource_id=new_tool(db, people, name="autre").id,
                      starts_at=day(2), ends_at=day(2, 12))
    assert ok.state == "confirmed"


def test_demo_guest_room_stays_are_paid_through_the_ledger(db, people):
    from tests.commons_map.test_reservations_support import demo

    room = demo(db, "guest-room")
    from commons_map.reservations.models import Reservation

    paid = db.scalars(select(Reservation).where(Reservation.resource_id == room.id,
                                                Reservation.contribution_transfer_id.is_not(None))).all()
    assert paid, "approved demo stays were debited"
    assert all(db.get(Transfer, r.contribution_transfer_id).kind == "booking_contribution" for r in paid)
