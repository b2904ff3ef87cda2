"""Reservations through the services: rules, bookings, the database guarantee, approvals,
check-out and check-in, maintenance, no-shows, waiting list, availability, the spatio-temporal
search and the calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.register.models import CommonsHistory
from commons_map.register.service import archive_commons
from commons_map.reservations import service
from commons_map.reservations.models import Reservation, ReservationEvent, WaitingEntry
from commons_map.reservations.schemas import RulesIn
from tests.commons_map.test_reservations_support import day, demo, new_place, new_tool, shed, written

# --- rules --------------------------------------------------------------------------------------


def test_steward_makes_a_tool_reservable_with_a_history_row(db, people):
    tool = new_tool(db, people)
    rules = service.get_rules(db, actor=people.member, resource_id=tool.id)
    assert (rules.min_minutes, rules.buffer_minutes, rules.booking_mode) == (60, 30, "members")
    hist = db.scalars(
        select(CommonsHistory).where(CommonsHistory.commons_id == tool.id).order_by(CommonsHistory.id)).all()
    assert [h.action for h in hist] == ["created", "made_reservable"]
    assert hist[-1].member_id == people.steward.id
    out = service.rules_out(db, rules)
    assert out["timezone"] == "Europe/Paris" and out["opening_hours"] is None


def test_plain_member_may_not_set_rules(db, people):
    tool = new_tool(db, people, reservable=False)
    with pytest.raises(PermissionDenied):
        service.set_rules(db, actor=people.member, resource_id=tool.id, data=RulesIn())
    with pytest.raises(PermissionDenied):
        service.set_rules(db, actor=people.other_steward, resource_id=tool.id, data=RulesIn())


def test_rules_refuse_max_shorter_than_min(db, people):
    tool = new_tool(db, people, reservable=False)
    with pytest.raises(ValidationFailed) as err:
        service.set_rules(db, actor=people.steward, resource_id=tool.id,
                          data=RulesIn(min_minutes=120, max_minutes=60))
    assert err.value.field == "max_minutes"


@pytest.mark.parametrize("hours, fragment", [
    ({"lun": [["08:00", "12:00"]]}, "unknown weekday"),
    ({"mon": [["12:00", "08:00"]]}, "must come after"),
    ({"mon": [["25:00", "26:00"]]}, "not a time"),
    ({"mon": [["08:00", "12:00"], ["11:00", "14:00"]]}, "overlap"),
])
def test_bad_opening_hours_are_refused(hours, fragment):
    with pytest.raises(ValueError, match=fragment):
        RulesIn(opening_hours=hours)


def test_disabled_rules_stop_new_bookings_but_keep_the_old(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    service.disable_rules(db, actor=people.steward, resource_id=tool.id)
    with pytest.raises(ValidationFailed, match="not reservable"):
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(4), ends_at=day(4, 12))
    assert db.get(Reservation, r.id).state == "confirmed"


# --- booking and the guarantee ------------------------------------------------------------------


def test_book_confirms_and_records_an_event(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13),
                     purpose="Planches")
    assert r.state == "confirmed" and r.member_id == people.member.id
    assert r.blocked_until == day(2, 13, 30), "the 30 min buffer is kept after the booking"
    events = db.scalars(select(ReservationEvent).where(ReservationEvent.reservation_id == r.id)).all()
    assert [e.action for e in events] == ["booked"] and events[0].member_id == people.member.id


def test_overlap_is_refused_naming_the_interval(db, people):
    tool = new_tool(db, people)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    before = written(db)
    with pytest.raises(Conflict) as err:
        service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2, 12),
                     ends_at=day(2, 15))
    assert err.value.code == "reservations.slot_booked_buffer"
    assert err.value.params["starts_at"] == day(2) and err.value.params["ends_at"] == day(2, 13)
    assert "du 1 déc. 2026, 10:00 au 1 déc. 2026, 13:00" in err.value.text("fr")
    assert "from Dec 1, 2026, 10:00\u202fAM to Dec 1, 2026, 1:00\u202fPM" in err.value.text("en")
    assert err.value.detail["conflict"]["starts_at"] == day(2).isoformat()
    assert "Lucas" not in err.value.message, "a conflict never says who booked"
    assert written(db) == before


def test_the_buffer_after_a_booking_is_kept_free(db, people):
    tool = new_tool(db, people)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    with pytest.raises(Conflict, match="30 min kept free") as err:
        service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2, 13, 15),
                     ends_at=day(2, 15))
    assert err.value.code == "reservations.slot_booked_buffer" and err.value.params["buffer_minutes"] == 30
    assert "30 min laissées libres" in err.value.text("fr")
    # A booking that would end inside the next one's start is refused too (its own buffer).
    with pytest.raises(Conflict):
        service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2, 8),
                     ends_at=day(2, 9, 45))
    ok = service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2, 13, 30),
                      ends_at=day(2, 15))
    assert ok.state == "confirmed"
    early = service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(2, 8),
                         ends_at=day(2, 9, 30))
    assert early.blocked_until == day(2, 10)


def test_the_database_refuses_an_overlap_even_without_the_service(db, people):
    tool = new_tool(db, people)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    with pytest.raises(IntegrityError) as err, db.begin_nested():
        db.execute(text(
            "INSERT INTO reservations (resource_id, kind, member_id, state, starts_at, ends_at, blocked_until)"
            " VALUES (:r, 'booking', :m, 'confirmed', :s, :e, :e)"),
            {"r": tool.id, "m": people.coordinator.id, "s": day(2, 12), "e": day(2, 14)})
    assert err.value.orig.sqlstate == "23P01"
    assert "ex_reservations_no_overlap" in str(err.value.orig)
    # Inactive states do not hold the slot: a cancelled row may overlap.
    db.execute(text(
        "INSERT INTO reservations (resource_id, kind, member_id, state, starts_at, ends_at, blocked_until)"
        " VALUES (:r, 'booking', :m, 'cancelled', :s, :e, :e)"),
        {"r": tool.id, "m": people.coordinator.id, "s": day(2, 12), "e": day(2, 14)})


def test_database_conflict_becomes_a_409_and_the_transaction_survives(db, people):
    """Bypass the service's check: the constraint answers, the savepoint keeps the session usable."""
    tool = new_tool(db, people)
    first = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    clash = Reservation(resource_id=tool.id, kind="booking", member_id=people.coordinator.id, state="confirmed",
                        starts_at=day(2, 11), ends_at=day(2, 12), blocked_until=day(2, 12))
    with pytest.raises(Conflict) as err:
        service._insert_guarded(db, clash)
    assert err.value.detail["detected_by"] == "database"
    assert err.value.detail["conflict"]["starts_at"] == first.starts_at.isoformat()
    # The same session goes on working.
    later = service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    db.flush()
    assert later.id is not None
    assert db.scalar(select(Reservation.state).where(Reservation.id == first.id)) == "confirmed"


def test_cancelled_slot_can_be_booked_again(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    service.cancel(db, actor=people.member, reservation_id=r.id, reason="Pluie")
    assert r.state == "cancelled" and r.cancel_reason == "Pluie" and r.cancelled_by == people.member.id
    again = service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    assert again.state == "confirmed"
    with pytest.raises(Conflict, match="only a requested, confirmed booking can be cancelled") as err:
        service.cancel(db, actor=people.member, reservation_id=r.id)
    assert err.value.code == "reservations.wrong_state"
    assert err.value.params["allowed"] == ["requested", "confirmed"] and err.value.params["action"] == "cancelled"


def test_others_cannot_see_or_cancel_my_booking(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 13))
    with pytest.raises(NotFound):
        service.get_reservation(db, actor=people.other_steward, reservation_id=r.id)
    with pytest.raises(NotFound):
        service.cancel(db, actor=people.other_steward, reservation_id=r.id)
    # The tool's steward may.
    assert service.get_reservation(db, actor=people.steward, reservation_id=r.id).id == r.id


def test_outsiders_cannot_book(db, people):
    members_tool = new_tool(db, people)
    public_tool = new_tool(db, people, name="Outil public", visibility="public")
    with pytest.raises(NotFound):
        service.book(db, actor=people.outsider, resource_id=members_tool.id, starts_at=day(2), ends_at=day(2, 13))
    with pytest.raises(PermissionDenied):
        service.book(db, actor=people.outsider, resource_id=public_tool.id, starts_at=day(2), ends_at=day(2, 13))
    with pytest.raises(PermissionDenied):
        service.book(db, actor=None, resource_id=public_tool.id, starts_at=day(2), ends_at=day(2, 13))


# --- bad input: a 4xx naming the rule, nothing written -----------------------------------------


def _bad(db, people, tool, starts_at, ends_at, error, field, code, actor=None):
    before = written(db)
    with pytest.raises(error) as err:
        service.book(db, actor=actor or people.member, resource_id=tool.id, starts_at=starts_at, ends_at=ends_at)
    assert err.value.field == field, err.value.message
    assert err.value.code == code, err.value.message
    assert err.value.text("fr") != err.value.text("en")
    assert written(db) == before
    return err.value


def test_naive_datetimes_are_refused(db, people):
    tool = new_tool(db, people)
    naive = day(2).replace(tzinfo=None)
    _bad(db, people, tool, naive, day(2, 12), ValidationFailed, "starts_at", "reservations.naive_datetime")
    _bad(db, people, tool, day(2), day(2, 12).replace(tzinfo=None), ValidationFailed, "ends_at",
         "reservations.naive_datetime")


def test_end_before_start(db, people):
    tool = new_tool(db, people)
    _bad(db, people, tool, day(2, 12), day(2, 10), ValidationFailed, "ends_at", "reservations.ends_before_start")


def test_zero_length(db, people):
    tool = new_tool(db, people)
    _bad(db, people, tool, day(2, 12), day(2, 12), ValidationFailed, "ends_at", "reservations.zero_length")


def test_too_short_and_too_long(db, people):
    tool = new_tool(db, people)
    e = _bad(db, people, tool, day(2, 12), day(2, 12, 30), ValidationFailed, "ends_at", "reservations.too_short")
    assert e.params["min_minutes"] == 60 and e.params["asked_minutes"] == 30
    assert "au moins 1 h 00 (demandé : 30 min)" in e.text("fr")
    e = _bad(db, people, tool, day(2, 12), day(6, 12), ValidationFailed, "ends_at", "reservations.too_long")
    assert "at most 72 h 00" in e.text("en") and e.params["max_minutes"] == 3 * 24 * 60


def test_too_far_ahead(db, people):
    tool = new_tool(db, people)
    e = _bad(db, people, tool, day(31), day(31, 12), ValidationFailed, "starts_at", "reservations.too_far_ahead")
    assert "at most 30 days ahead" in e.text("en") and "au plus 30 jours à l'avance" in e.text("fr")


def test_in_the_past(db, people):
    tool = new_tool(db, people)
    _bad(db, people, tool, day(-1), day(-1, 12), ValidationFailed, "starts_at", "reservations.starts_in_past")


def test_outside_opening_hours(db, people):
    place = new_place(db, people)
    monday = 0
    # Across the lunch closing on Monday.
    e = _bad(db, people, place, day(1, 11, weekday=monday), day(1, 15, weekday=monday), ValidationFailed,
             "starts_at", "reservations.outside_hours")
    assert "08:00-12:00, 14:00-22:00" in e.message and "08:00-12:00, 14:00-22:00" in e.text("fr")
    # Closed on Sundays.
    e = _bad(db, people, place, day(1, 10, weekday=6), day(1, 12, weekday=6), ValidationFailed, "starts_at",
             "reservations.closed_day")
    assert e.params["day"].weekday() == 6 and "est fermé le" in e.text("fr")
    # Too late in the evening.
    _bad(db, people, place, day(1, 21, weekday=2), day(1, 23, weekday=2), ValidationFailed, "starts_at",
         "reservations.outside_hours")
    ok = service.book(db, actor=people.member, resource_id=place.id, starts_at=day(1, 14, weekday=monday),
                      ends_at=day(1, 22, weekday=monday))
    assert ok.state == "confirmed"


def test_opening_hours_are_read_in_the_cooperative_zone(db, people):
    place = new_place(db, people)
    # 09:00 in Paris given as UTC: 08:00Z in winter, 07:00Z in summer.
    start = day(1, 9, weekday=1)
    utc = start.astimezone(UTC)
    r = service.book(db, actor=people.member, resource_id=place.id, starts_at=utc, ends_at=utc + timedelta(hours=2))
    assert r.starts_at == start


def test_over_the_cap(db, people):
    tool = new_tool(db, people)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    _bad(db, people, tool, day(4), day(4, 12), Conflict, "resource_id", "reservations.cap_reached")


def test_not_reservable(db, people):
    tool = new_tool(db, people, reservable=False)
    _bad(db, people, tool, day(2), day(2, 12), ValidationFailed, "resource_id", "reservations.not_reservable")


def test_archived(db, people):
    tool = new_tool(db, people)
    archive_commons(db, actor=people.coordinator, commons_id=tool.id, reason="perdue")
    _bad(db, people, tool, day(2), day(2, 12), ValidationFailed, "resource_id", "reservations.archived")


def test_lost_item_cannot_be_booked(db, people):
    tool = new_tool(db, people)
    tool.state = "lost"
    _bad(db, people, tool, day(2), day(2, 12), ValidationFailed, "resource_id", "reservations.unusable")


def test_unknown_resource(db, people):
    with pytest.raises(NotFound) as err:
        service.book(db, actor=people.member, resource_id=10**9, starts_at=day(2), ends_at=day(2, 12))
    assert err.value.field == "resource_id"


# --- approvals ----------------------------------------------------------------------------------


def test_approval_flow(db, people):
    tool = new_tool(db, people, rules=RulesIn(booking_mode="approval", min_minutes=60, max_days_ahead=30))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    assert r.state == "requested"
    assert r.id in [x.id for x in service.list_to_decide(db, actor=people.steward)]
    assert r.id not in [x.id for x in service.list_to_decide(db, actor=people.other_steward)]
    with pytest.raises(PermissionDenied):
        service.approve(db, actor=people.member, reservation_id=r.id)
    # A request holds the slot while it waits.
    with pytest.raises(Conflict):
        service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    service.approve(db, actor=people.steward, reservation_id=r.id, note="OK, clé à la cabane")
    assert (r.state, r.decided_by, r.decision_note) == ("confirmed", people.steward.id, "OK, clé à la cabane")
    with pytest.raises(Conflict, match="only a requested booking can be approved") as err:
        service.approve(db, actor=people.steward, reservation_id=r.id)
    assert err.value.code == "reservations.wrong_state" and err.value.params["state"] == "confirmed"
    # Stewards book their own resource without asking themselves.
    own = service.book(db, actor=people.steward, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    assert own.state == "confirmed"


def test_refusal_frees_the_slot(db, people):
    tool = new_tool(db, people, rules=RulesIn(booking_mode="approval", min_minutes=60, max_days_ahead=30))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    service.refuse(db, actor=people.steward, reservation_id=r.id, note="Le semoir part en réparation")
    assert r.state == "refused"
    assert service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2),
                        ends_at=day(2, 12)).state == "requested"


# --- check-out, check-in, overdue, damage, maintenance -------------------------------------------


def test_check_out_and_in_record_who_when_and_condition(db, people):
    tool = new_tool(db, people)
    start = datetime.now(UTC) + timedelta(minutes=5)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=start, ends_at=start + timedelta(hours=3))
    t_out = start + timedelta(minutes=1)
    service.check_out(db, actor=people.steward, reservation_id=r.id, notes="Manche fendu", now=t_out)
    assert (r.state, r.checked_out_by, r.checked_out_at, r.checkout_notes) == (
        "checked_out", people.steward.id, t_out, "Manche fendu")
    assert not service.is_overdue(r, t_out)
    assert service.is_overdue(r, start + timedelta(hours=4)), "overdue is derived: checked out and past its end"
    late = start + timedelta(hours=5)
    assert [x.id for x in service.list_my_reservations(db, actor=people.member, overdue_only=True, now=late)] == [r.id]
    service.check_in(db, actor=people.member, reservation_id=r.id, notes="Nettoyée", now=late)
    assert (r.state, r.returned_by, r.returned_at, r.return_notes, r.damaged) == (
        "returned", people.member.id, late, "Nettoyée", False)
    events = [e.action for e in db.scalars(
        select(ReservationEvent).where(ReservationEvent.reservation_id == r.id).order_by(ReservationEvent.id))]
    assert events == ["booked", "checked_out", "returned"]
    returned = db.scalars(select(ReservationEvent).where(ReservationEvent.reservation_id == r.id,
                                                         ReservationEvent.action == "returned")).one()
    assert returned.changes["overdue"] is True


def test_check_in_of_something_not_checked_out(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    before = written(db)
    with pytest.raises(Conflict) as err:
        service.check_in(db, actor=people.member, reservation_id=r.id, notes="?")
    assert err.value.field == "state" and "is confirmed" in err.value.message
    assert written(db) == before and r.state == "confirmed"


def test_check_out_too_early_is_refused(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    with pytest.raises(ValidationFailed, match="check out at most 1 h 00 before"):
        service.check_out(db, actor=people.member, reservation_id=r.id)


def test_damaged_return_puts_the_item_in_maintenance_until_cleared(db, people):
    tool = new_tool(db, people)
    start = datetime.now(UTC) + timedelta(minutes=5)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=start, ends_at=start + timedelta(hours=2))
    later = service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    service.check_out(db, actor=people.member, reservation_id=r.id, now=start)
    with pytest.raises(ValidationFailed) as err:
        service.check_in(db, actor=people.member, reservation_id=r.id, damaged=True, now=start + timedelta(hours=1))
    assert err.value.field == "notes"
    back = start + timedelta(hours=1)
    service.check_in(db, actor=people.member, reservation_id=r.id, damaged=True, notes="Dent cassée", now=back)
    m = db.scalars(select(Reservation).where(Reservation.caused_by_id == r.id)).one()
    assert (m.kind, m.state, m.starts_at, m.ends_at) == ("maintenance", "maintenance", back, None)
    assert later.state == "cancelled" and "abîmé" in later.cancel_reason
    with pytest.raises(Conflict, match="in maintenance from .* until a steward clears it"):
        service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    with pytest.raises(PermissionDenied):
        service.clear_maintenance(db, actor=people.member, maintenance_id=m.id)
    service.clear_maintenance(db, actor=people.steward, maintenance_id=m.id, notes="Dent ressoudée",
                              now=back + timedelta(hours=1))
    assert m.state == "cleared" and m.ends_at == back + timedelta(hours=1)
    assert service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5),
                        ends_at=day(5, 12)).state == "confirmed"


def test_maintenance_crud_and_conflicts(db, people):
    tool = new_tool(db, people)
    booked = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(4), ends_at=day(4, 12))
    with pytest.raises(PermissionDenied):
        service.declare_maintenance(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(3))
    with pytest.raises(Conflict) as err:
        service.declare_maintenance(db, actor=people.steward, resource_id=tool.id, starts_at=day(3), ends_at=day(5))
    assert err.value.code.startswith("reservations.slot_booked") and err.value.params["starts_at"] == booked.starts_at
    with pytest.raises(ValidationFailed):
        service.declare_maintenance(db, actor=people.steward, resource_id=tool.id, starts_at=day(3), ends_at=day(2))
    m = service.declare_maintenance(db, actor=people.steward, resource_id=tool.id, starts_at=day(2),
                                    ends_at=day(3), reason="Affûtage")
    assert [x.id for x in service.list_maintenance(db, actor=people.member, resource_id=tool.id)] == [m.id]
    with pytest.raises(Conflict, match="in maintenance"):
        service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(2, 14), ends_at=day(2, 16))
    # Stretching it over the booking is refused; shortening it is fine.
    with pytest.raises(Conflict):
        service.update_maintenance(db, actor=people.steward, maintenance_id=m.id, ends_at=day(4, 11))
    service.update_maintenance(db, actor=people.steward, maintenance_id=m.id, ends_at=day(2, 12))
    assert service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(2, 14),
                        ends_at=day(2, 16)).state == "confirmed"
    # A period not started yet is withdrawn, not cleared.
    service.clear_maintenance(db, actor=people.steward, maintenance_id=m.id)
    assert m.state == "cancelled"


def test_no_show(db, people):
    tool = new_tool(db, people)
    start = datetime.now(UTC) + timedelta(minutes=5)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=start, ends_at=start + timedelta(hours=4))
    with pytest.raises(ValidationFailed, match="A no-show can be marked from"):
        service.mark_no_show(db, actor=people.steward, reservation_id=r.id, now=start + timedelta(minutes=10))
    with pytest.raises(PermissionDenied):
        service.mark_no_show(db, actor=people.member, reservation_id=r.id, now=start + timedelta(hours=1))
    service.mark_no_show(db, actor=people.steward, reservation_id=r.id, now=start + timedelta(hours=1))
    assert r.state == "no_show"
    # The rest of the slot is free again.
    again = service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=start + timedelta(hours=2),
                         ends_at=start + timedelta(hours=4), now=start + timedelta(hours=1))
    assert again.state == "confirmed"


# --- waiting list ---------------------------------------------------------------------------------


def test_waiting_list_offers_the_freed_slot_to_the_first_in_line(db, people):
    tool = new_tool(db, people, rules=RulesIn(min_minutes=60, max_days_ahead=30, offer_hours=24))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    with pytest.raises(Conflict, match="free; book it"):
        service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(6), ends_at=day(6, 12))
    first = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    second = service.wait(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    with pytest.raises(Conflict, match="already wait"):
        service.wait(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    positions = {w["id"]: w["position"] for w in service.list_my_waits(db, actor=people.coordinator)}
    assert positions[second.id] == 2
    now = datetime.now(UTC)
    service.cancel(db, actor=people.member, reservation_id=r.id, now=now)
    assert (first.state, second.state) == ("offered", "waiting")
    assert first.offer_expires_at == now + timedelta(hours=24)
    # Nobody else may take it while it is offered.
    with pytest.raises(Conflict, match="waiting list"):
        service.book(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    with pytest.raises(NotFound):
        service.accept_offer(db, actor=people.coordinator, wait_id=first.id)
    with pytest.raises(Conflict, match="only an offer can be accepted"):
        service.accept_offer(db, actor=people.coordinator, wait_id=second.id)
    booked = service.accept_offer(db, actor=people.other_steward, wait_id=first.id)
    assert booked.state == "confirmed" and booked.member_id == people.other_steward.id
    assert (first.state, first.reservation_id) == ("accepted", booked.id)


def test_an_expired_offer_passes_to_the_next_in_line(db, people):
    tool = new_tool(db, people, rules=RulesIn(min_minutes=60, max_days_ahead=30, offer_hours=2))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    first = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    second = service.wait(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    now = datetime.now(UTC)
    service.cancel(db, actor=people.member, reservation_id=r.id, now=now)
    assert first.state == "offered"
    later = now + timedelta(hours=3)
    assert service.process_waiting_list(db, resource_id=tool.id, now=later) == 1
    assert (first.state, second.state) == ("expired", "offered")
    with pytest.raises(Conflict, match="is expired"):
        service.accept_offer(db, actor=people.other_steward, wait_id=first.id, now=later)
    assert service.accept_offer(db, actor=people.coordinator, wait_id=second.id, now=later).state == "confirmed"


def test_declining_an_offer_passes_it_on(db, people):
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    first = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    second = service.wait(db, actor=people.coordinator, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    service.cancel(db, actor=people.member, reservation_id=r.id)
    service.leave_waiting_list(db, actor=people.other_steward, wait_id=first.id)
    assert (first.state, second.state) == ("cancelled", "offered")


# --- availability and the spatio-temporal search -------------------------------------------------


def test_availability_leaves_out_busy_times_buffers_and_closed_hours(db, people):
    place = new_place(db, people)
    monday = day(1, 0, weekday=0)
    service.book(db, actor=people.member, resource_id=place.id, starts_at=monday.replace(hour=15),
                 ends_at=monday.replace(hour=17))
    out = service.availability(db, actor=people.member, resource_id=place.id, start=monday,
                               end=monday + timedelta(days=1))
    free = [(s["starts_at"].strftime("%H:%M"), s["ends_at"].strftime("%H:%M")) for s in out["free"]]
    # Open 08-12 and 14-22; busy 15-17 plus 30 min; a slot before it must leave the buffer.
    assert free == [("08:00", "12:00"), ("17:30", "22:00")], free
    assert [(b["starts_at"].strftime("%H:%M"), b["ends_at"].strftime("%H:%M")) for b in out["busy"]] == [
        ("15:00", "17:30")]
    # 14:00-14:30 is too short for the one-hour minimum (15:00 minus the buffer), so it is left out.
    assert "member_id" not in str(out)


def test_availability_keeps_the_buffer_before_a_booking_just_past_the_window(db, people):
    tool = new_tool(db, people)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2, 12), ends_at=day(2, 13))
    out = service.availability(db, actor=people.member, resource_id=tool.id, start=day(2, 8), end=day(2, 11, 45))
    assert [(s["starts_at"], s["ends_at"]) for s in out["free"]] == [(day(2, 8), day(2, 11, 30))]
    assert out["busy"] == []
    # Every free slot can really be booked whole.
    slot = out["free"][0]
    assert service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=slot["starts_at"],
                        ends_at=slot["ends_at"]).state == "confirmed"


def test_availability_rejects_bad_windows(db, people):
    tool = new_tool(db, people)
    with pytest.raises(ValidationFailed) as err:
        service.availability(db, actor=people.member, resource_id=tool.id, start=day(3), end=day(2))
    assert err.value.field == "until"
    with pytest.raises(ValidationFailed):
        service.availability(db, actor=people.member, resource_id=tool.id, start=day(1), end=day(200))


def test_which_tools_are_free_near_here_in_one_query(db, people):
    a = new_tool(db, people, name="Semoir A")
    b = new_tool(db, people, name="Semoir B")
    service.book(db, actor=people.member, resource_id=b.id, starts_at=day(2, 10), ends_at=day(2, 11))
    from commons_map.demo.load import offset

    here = offset(-200, 120)  # next to the shed
    found = service.find_free(db, actor=people.member, kind="tool", starts_at=day(2, 9), ends_at=day(2, 12),
                              near=service.Near(*here, 2000))
    ids = [f["id"] for f in found]
    assert a.id in ids and b.id not in ids
    shed_dist = next(f["distance_m"] for f in found if f["id"] == a.id)
    assert shed_dist < 100, "a tool kept at the shed is located at the shed"
    # A buffer counts: b is booked 10-11 with 30 min after; 11:15-12 is not free, 11:30-12:30 is.
    assert b.id not in [f["id"] for f in service.find_free(
        db, actor=people.member, kind="tool", starts_at=day(2, 11, 15), ends_at=day(2, 12, 15))]
    assert b.id in [f["id"] for f in service.find_free(
        db, actor=people.member, kind="tool", starts_at=day(2, 11, 30), ends_at=day(2, 12, 30))]
    # Far away: nothing of ours.
    far = service.find_free(db, actor=people.member, kind="tool", starts_at=day(2, 9), ends_at=day(2, 12),
                            near=service.Near(2.35, 48.85, 2000))
    assert far == []
    # Too short for the rules (min 60 min) is not offered.
    assert a.id not in [f["id"] for f in service.find_free(
        db, actor=people.member, kind="tool", starts_at=day(2, 9), ends_at=day(2, 9, 30))]


def test_find_free_reads_opening_hours_in_sql(db, people):
    place = new_place(db, people)
    ids = lambda s, e: [f["id"] for f in service.find_free(db, actor=people.member, kind="kitchen",  # noqa: E731
                                                           starts_at=s, ends_at=e)]
    assert place.id in ids(day(1, 9, weekday=0), day(1, 11, weekday=0))
    assert place.id not in ids(day(1, 11, weekday=0), day(1, 15, weekday=0)), "across the Monday lunch break"
    assert place.id not in ids(day(1, 10, weekday=6), day(1, 12, weekday=6)), "closed on Sunday"
    assert place.id in ids(day(1, 20, weekday=2), day(1, 22, weekday=2)), "until closing time"


def test_find_free_hides_what_the_viewer_may_not_see(db, people):
    tool = new_tool(db, people, name="Outil des membres")
    assert tool.id not in [f["id"] for f in service.find_free(db, actor=None, kind="tool", starts_at=day(2, 9),
                                                               ends_at=day(2, 12))]
    assert tool.id in [f["id"] for f in service.find_free(db, actor=people.member, kind="tool",
                                                           starts_at=day(2, 9), ends_at=day(2, 12))]


# --- calendars ----------------------------------------------------------------------------------


def test_resource_feed_shows_busy_times_only(db, people):
    tool = new_tool(db, people, visibility="public")
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12),
                     purpose="Secret du potager")
    body = service.resource_calendar(db, actor=None, resource_id=tool.id)
    cal = icalendar.Calendar.from_ical(body)
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1
    ev = events[0]
    assert ev.decoded("dtstart") == r.starts_at
    assert ev.decoded("dtend") == r.blocked_until
    text_body = body.decode()
    for secret in (people.member.display_name, people.member.username, "Secret du potager"):
        assert secret not in text_body


def test_resource_feed_needs_sight_of_the_resource(db, people):
    tool = new_tool(db, people, visibility="members")
    with pytest.raises(NotFound):
        service.resource_calendar(db, actor=None, resource_id=tool.id)
    assert service.resource_calendar(db, actor=people.member, resource_id=tool.id).startswith(b"BEGIN:VCALENDAR")


def test_private_feed_lists_my_bookings_with_an_unguessable_token(db, people):
    tool = new_tool(db, people)
    mine = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12))
    service.book(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(3), ends_at=day(3, 12))
    token = service.rotate_calendar_token(db, actor=people.member)
    assert len(token) >= 40
    cal = icalendar.Calendar.from_ical(service.member_calendar(db, token=token))
    uids = {str(e["uid"]) for e in cal.walk("VEVENT")}
    assert f"reservation-{mine.id}@commons-map" in uids
    assert all(e.decoded("dtstart") != day(3) for e in cal.walk("VEVENT"))
    new = service.rotate_calendar_token(db, actor=people.member)
    with pytest.raises(NotFound):
        service.member_calendar(db, token=token)
    assert service.member_calendar(db, token=new).startswith(b"BEGIN:VCALENDAR")


def test_demo_has_reservable_things_and_bookings(db, people):
    kitchen = demo(db, "kitchen")
    rules = service.get_rules(db, actor=people.member, resource_id=kitchen.id)
    assert rules.opening_hours is not None and rules.buffer_minutes == 30
    states = dict(db.execute(text("SELECT state, count(*) FROM reservations GROUP BY state")).all())
    assert states.get("returned", 0) > 20 and states.get("confirmed", 0) > 10
    assert states.get("maintenance", 0) >= 1, "one item in maintenance"
    assert db.scalar(select(WaitingEntry.id).limit(1)) is not None
    assert service.get_rules(db, actor=people.member, resource_id=demo(db, "guest-room").id).booking_mode == "approval"
    assert shed(db) is not None


def test_an_overdue_item_still_counts_toward_the_cap(db, people):
    """Docs review: a checked-out item past its end stopped counting, so a member holding an
    overdue tool could book it twice more."""
    tool = new_tool(db, people)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2), ends_at=day(2, 12),
                     now=day(1))
    service.check_out(db, actor=people.steward, reservation_id=r.id, now=day(2, 10))
    late = day(2, 15)
    assert service.is_overdue(r, late)
    service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(4), ends_at=day(4, 12), now=late)
    with pytest.raises(Conflict) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12), now=late)
    assert err.value.code == "reservations.cap_reached" and err.value.params["active"] == 2


def test_bringing_it_back_early_offers_the_rest_of_the_slot_to_who_waits(db, people):
    tool = new_tool(db, people, rules=RulesIn(min_minutes=60, max_minutes=3 * 24 * 60, max_days_ahead=30,
                                              offer_hours=24))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(2, 9), ends_at=day(2, 18),
                     now=day(1))
    waiting = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(2, 14),
                           ends_at=day(2, 17), now=day(1))
    service.check_out(db, actor=people.steward, reservation_id=r.id, now=day(2, 9))
    service.check_in(db, actor=people.steward, reservation_id=r.id, now=day(2, 12))
    assert waiting.state == "offered"


def test_reading_my_waits_touches_no_other_cooperatives_list(db, people):
    """Docs review: listing my waits processed every cooperative's waiting lists (a GET that wrote
    across cooperatives)."""
    tool = new_tool(db, people, rules=RulesIn(min_minutes=60, max_days_ahead=30, offer_hours=2))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    first = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    now = datetime.now(UTC)
    service.cancel(db, actor=people.member, reservation_id=r.id, now=now)
    assert first.state == "offered"
    later = now + timedelta(hours=3)  # the offer lapsed
    service.list_my_waits(db, actor=people.outsider, now=later)  # another cooperative's member reads theirs
    assert first.state == "offered", "another cooperative's read must not process this list"
    mine = service.list_my_waits(db, actor=people.other_steward, now=later)
    assert [w["state"] for w in mine if w["id"] == first.id] == ["expired"]


def test_free_now_and_book_now_are_found_and_taken_a_moment_late(db, people):
    """Docs review: "free now" found nothing (a start a second behind the server's clock was in the
    past), and a form's start to the minute was refused the same way."""
    tool = new_tool(db, people, rules=RulesIn(min_minutes=30, max_minutes=8 * 60, max_days_ahead=30))
    now = datetime.now(UTC)
    asked = now - timedelta(seconds=50)  # "now", to the minute, sent a moment ago
    found = service.find_free(db, actor=people.member, kind="tool", starts_at=asked,
                              ends_at=asked + timedelta(hours=1), now=now)
    assert tool.id in {f["id"] for f in found}
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=asked,
                     ends_at=asked + timedelta(hours=1), now=now)
    assert r.state == "confirmed"
    with pytest.raises(ValidationFailed) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=now - timedelta(minutes=20),
                     ends_at=now + timedelta(hours=3), now=now)
    assert err.value.code == "reservations.starts_in_past"
    assert tool.id not in {f["id"] for f in service.find_free(
        db, actor=people.member, kind="tool", starts_at=now - timedelta(minutes=20),
        ends_at=now + timedelta(hours=1), now=now)}


def test_a_slot_offered_to_who_waits_is_not_shown_free_to_others(db, people):
    """Docs review: the search showed a slot held for the first in line as free; booking it was then
    refused."""
    tool = new_tool(db, people, rules=RulesIn(min_minutes=60, max_days_ahead=30, offer_hours=24))
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    first = service.wait(db, actor=people.other_steward, resource_id=tool.id, starts_at=day(5), ends_at=day(5, 12))
    now = datetime.now(UTC)
    service.cancel(db, actor=people.member, reservation_id=r.id, now=now)
    assert first.state == "offered"

    def free_for(member) -> bool:
        return tool.id in {f["id"] for f in service.find_free(
            db, actor=member, kind="tool", starts_at=day(5), ends_at=day(5, 12), now=now)}

    assert not free_for(people.coordinator)
    assert free_for(people.other_steward)  # the one it is offered to sees it free
