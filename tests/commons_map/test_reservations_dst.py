"""Reservations across a change of clocks (issue 18 item 13): a whole local day is one day whatever
its length in hours, on the 25-hour day in October and the 23-hour day in March (Europe/Paris);
and an open-ended maintenance period reads as one in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from commons_map.errors import Conflict, ValidationFailed
from commons_map.reservations import service
from commons_map.reservations.schemas import RulesIn
from tests.commons_map.test_reservations_support import PARIS, new_tool

# Clocks go back on the last Sunday of October 2027 (25 hours) and forward on the last Sunday of
# March 2027 (23 hours).
LONG_DAY = datetime(2027, 10, 31).date()
SHORT_DAY = datetime(2027, 3, 28).date()

ONE_DAY = RulesIn(min_minutes=60, max_minutes=24 * 60, max_days_ahead=30, buffer_minutes=0,
                  max_active_per_member=3)


def _whole(d) -> tuple[datetime, datetime]:  # noqa: ANN001
    return datetime.combine(d, time(), PARIS), datetime.combine(d + timedelta(days=1), time(), PARIS)


@pytest.mark.parametrize("d, hours", [(LONG_DAY, 25), (SHORT_DAY, 23)])
def test_a_whole_local_day_is_one_day_on_both_dst_days(db, people, d, hours):
    tool = new_tool(db, people, rules=ONE_DAY)
    start, end = _whole(d)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=hours)  # really that long
    now = start - timedelta(days=3)
    r = service.book(db, actor=people.member, resource_id=tool.id, starts_at=start, ends_at=end, now=now)
    assert r.state == "confirmed" and (r.starts_at, r.ends_at) == (start, end)
    # The search offers what the booking accepts: the same whole day is free on another tool.
    other = new_tool(db, people, name="Grelinette jumelle", rules=ONE_DAY)
    free = service.find_free(db, actor=people.member, kind="tool", starts_at=start, ends_at=end, now=now)
    assert other.id in {f["id"] for f in free} and tool.id not in {f["id"] for f in free}


# Too long both ways: in October to 01:00 the next day is 26 h elapsed and 25 h on the wall clock;
# in March to 01:00 is 24 h elapsed (one day: accepted), to 02:00 is 25 h elapsed and 26 h on the wall.
@pytest.mark.parametrize("d, extra", [(LONG_DAY, 1), (SHORT_DAY, 2)])
def test_more_than_a_day_is_still_too_long_on_dst_days(db, people, d, extra):
    tool = new_tool(db, people, rules=ONE_DAY)
    start, end = _whole(d)
    now = start - timedelta(days=3)
    with pytest.raises(ValidationFailed) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=start,
                     ends_at=end + timedelta(hours=extra), now=now)
    assert err.value.code == "reservations.too_long" and err.value.field == "ends_at"
    free = service.find_free(db, actor=people.member, kind="tool", starts_at=start,
                             ends_at=end + timedelta(hours=extra), now=now)
    assert tool.id not in {f["id"] for f in free}


def test_a_minimum_of_one_day_is_met_by_the_23_hour_day(db, people):
    tool = new_tool(db, people, rules=RulesIn(min_minutes=24 * 60, max_minutes=3 * 24 * 60, max_days_ahead=30,
                                              buffer_minutes=0, max_active_per_member=3))
    start, end = _whole(SHORT_DAY)
    now = start - timedelta(days=3)
    assert service.book(db, actor=people.member, resource_id=tool.id, starts_at=start, ends_at=end,
                        now=now).state == "confirmed"
    with pytest.raises(ValidationFailed) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=end,
                     ends_at=(end.astimezone(UTC) + timedelta(hours=23)).astimezone(PARIS), now=now)
    assert err.value.code == "reservations.too_short"


def test_open_ended_maintenance_reads_until_cleared_in_both_languages(db, people):
    tool = new_tool(db, people)
    start, _ = _whole(LONG_DAY)
    now = start - timedelta(days=3)
    service.declare_maintenance(db, actor=people.steward, resource_id=tool.id, starts_at=start, now=now)
    with pytest.raises(Conflict) as err:
        service.book(db, actor=people.member, resource_id=tool.id, starts_at=start + timedelta(days=1),
                     ends_at=start + timedelta(days=1, hours=3), now=now)
    assert err.value.code == "reservations.slot_maintenance_open"
    en, fr = err.value.text("en"), err.value.text("fr")
    assert en.startswith("This slot is already taken: in maintenance from ")
    assert en.endswith(" until a steward clears it.") and " to " not in en
    assert "à partir du" in fr and fr.endswith("jusqu'à ce qu'un·e référent·e la lève.") and " au " not in fr
    assert "2027" in en and "2027" in fr
