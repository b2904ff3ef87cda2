"""Work logs: logging, bad input (nothing written), editing until approval, four-eyes approval,
crediting exactly once, rejection, correction as reversal plus new entry, resent field forms."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.register.models import Commons
from commons_map.worklog import service
from commons_map.worklog.models import Activity, WorkLog, WorkLogHistory
from commons_map.worklog.schemas import ActivityIn, WorkLogIn, WorkLogPatch

TZ = ZoneInfo("Europe/Paris")


def today():
    return datetime.now(TZ).date()


def commons(db, key: str) -> Commons:
    return db.scalars(select(Commons).where(Commons.external_id == f"demo:{key}")).one()


def counts(db) -> tuple[int, int, int]:
    return (db.scalar(select(func.count()).select_from(WorkLog)),
            db.scalar(select(func.count()).select_from(Transfer)),
            db.scalar(select(func.count()).select_from(WorkLogHistory)))


def stewarded_land(db, people):
    """A land parcel stewarded by mamadou (the steward persona)."""
    c = db.scalars(select(Commons).where(Commons.external_id.like("demo:land-%"))
                   .order_by(Commons.id)).all()
    return next(x for x in c if people.steward.id in x.steward_ids)


def log(db, people, who=None, **kw) -> WorkLog:
    land = stewarded_land(db, people)
    data = {"commons_id": land.id, "work_date": today() - timedelta(days=2), "minutes": 90,
            "activity": "mulching", "notes": "Paillage au foin"}
    data.update(kw)
    return service.log_work(db, actor=who or people.member, data=WorkLogIn(**data))


def test_a_member_logs_work_with_times_place_and_companions(db, people):
    land = stewarded_land(db, people)
    day = today() - timedelta(days=1)
    start = datetime.combine(day, time(9, 0), TZ)
    point = db.scalar(select(func.ST_AsGeoJSON(func.ST_PointOnSurface(Commons.geom))).where(Commons.id == land.id))
    import json

    entry = service.log_work(db, actor=people.member, data=WorkLogIn(
        commons_id=land.id, work_date=day, started_at=start, ended_at=start + timedelta(hours=2, minutes=30),
        activity="hedge_planting", notes="30 plants", location=json.loads(point),
        with_member_ids=[people.other_steward.id]))
    assert entry.minutes == 150
    assert entry.state == "submitted"
    out = service.describe(db, [entry])[0]
    assert out["location"]["type"] == "Point"
    assert out["with_member_ids"] == [people.other_steward.id]
    assert out["activity_label_fr"] == "Plantation de haie"
    assert out["credit_transfer_id"] is None
    assert db.scalars(
        select(WorkLogHistory.action).where(WorkLogHistory.work_log_id == entry.id)).all() == ["submitted"]


BAD = [
    ({"minutes": 0}, "minutes", "worklog.duration_not_positive"),
    ({"minutes": -30}, "minutes", "worklog.duration_not_positive"),
    ({"minutes": 16 * 60 + 1}, "minutes", "worklog.duration_too_long"),
    ({"work_date": "FUTURE"}, "work_date", "worklog.date_in_future"),
    ({"work_date": "YEARS_BACK"}, "work_date", "worklog.date_too_old"),
    ({"activity": "juggling"}, "activity", "worklog.unknown_activity"),
    ({"minutes": None}, "minutes", "worklog.duration_missing"),
    ({"minutes": None, "started_at": "START", "ended_at": "START"}, "ended_at", "worklog.end_before_start"),
    ({"minutes": None, "started_at": "START", "ended_at": "START+17H"}, "ended_at", "worklog.duration_too_long"),
    ({"minutes": None, "started_at": "NAIVE", "ended_at": "NAIVE+1H"}, "started_at", "worklog.time_without_offset"),
    ({"minutes": None, "started_at": "START"}, "ended_at", "worklog.times_both"),
    ({"minutes": 45, "started_at": "START", "ended_at": "START+1H"}, "minutes", "worklog.minutes_mismatch"),
    ({"location": {"type": "LineString", "coordinates": [[5.19, 44.69], [5.2, 44.7]]}}, "location",
     "register.geometry_not_point"),
    ({"location": {"type": "Point", "coordinates": [500, 44.7]}}, "location", "register.longitude_range"),
    ({"with_member_ids": ["SELF"]}, "with_member_ids", "worklog.companion_self"),
    ({"with_member_ids": [987654]}, "with_member_ids", "worklog.no_companion"),
]


@pytest.mark.parametrize(("change", "field", "code"), BAD)
def test_bad_work_logs_name_the_field_and_write_nothing(db, people, change, field, code):
    day = today() - timedelta(days=2)
    start = datetime.combine(day, time(8, 0), TZ)
    values = {"FUTURE": today() + timedelta(days=1), "YEARS_BACK": today() - timedelta(days=800),
              "START": start, "START+17H": start + timedelta(hours=17), "START+1H": start + timedelta(hours=1),
              "NAIVE": start.replace(tzinfo=None), "NAIVE+1H": (start + timedelta(hours=1)).replace(tzinfo=None)}
    kw = {k: values.get(v, v) if isinstance(v, str) else v for k, v in change.items()}
    if kw.get("with_member_ids") == ["SELF"]:
        kw["with_member_ids"] = [people.member.id]
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        log(db, people, **kw)
    assert field in [p.field for p in err.value.problems], err.value.problems
    assert (field, code) in [(p.field, p.code) for p in err.value.problems], err.value.problems
    assert all(p.text("fr") != p.text("en") for p in err.value.problems)
    assert counts(db) == before


def test_work_on_a_commons_the_member_may_not_see_is_not_found(db, people):
    home = commons(db, "home-0")  # private housing of mamadou
    before = counts(db)
    with pytest.raises(NotFound) as err:
        log(db, people, commons_id=home.id)
    assert err.value.field == "commons_id"
    with pytest.raises(NotFound):
        log(db, people, who=people.outsider, commons_id=commons(db, "garden-0").id)
    with pytest.raises(NotFound):
        log(db, people, commons_id=987654)
    assert counts(db) == before


def test_archived_commons_refuses_work(db, people):
    garden = commons(db, "garden-1")
    garden.archived_at = datetime.now(TZ)
    db.flush()
    with pytest.raises(ValidationFailed) as err:
        log(db, people, commons_id=garden.id)
    assert err.value.field == "commons_id" and err.value.code == "worklog.commons_archived"
    assert "is archived" in err.value.message and "est archivé" in err.value.text("fr")


def test_the_worker_edits_until_approval_then_only_a_correction(db, people):
    entry = log(db, people)
    service.update_work_log(db, actor=people.member, work_log_id=entry.id,
                            patch=WorkLogPatch(minutes=120, notes="Paillage et arrosage"))
    assert entry.minutes == 120 and entry.notes == "Paillage et arrosage"
    with pytest.raises(NotFound):  # another member does not even read it
        service.update_work_log(db, actor=people.other_steward, work_log_id=entry.id, patch=WorkLogPatch(minutes=10))
    with pytest.raises(PermissionDenied):  # its steward reads it, and approves it, but does not edit it
        service.update_work_log(db, actor=people.steward, work_log_id=entry.id, patch=WorkLogPatch(minutes=10))
    with pytest.raises(ValidationFailed) as err:
        service.update_work_log(db, actor=people.member, work_log_id=entry.id, patch=WorkLogPatch(minutes=2000))
    assert err.value.field == "minutes"
    db.refresh(entry)
    assert entry.minutes == 120
    service.approve(db, actor=people.steward, work_log_id=entry.id)
    with pytest.raises(Conflict) as err:
        service.update_work_log(db, actor=people.member, work_log_id=entry.id, patch=WorkLogPatch(minutes=60))
    assert err.value.field == "state"
    actions = db.scalars(select(WorkLogHistory.action).where(WorkLogHistory.work_log_id == entry.id)
                         .order_by(WorkLogHistory.id)).all()
    assert actions == ["submitted", "updated", "approved"]


def test_approval_credits_the_worker_once_from_the_cooperative(db, people):
    entry = log(db, people, minutes=75)
    before_worker = ledger.balance(db, member=people.member)
    coop_acc = ledger.cooperative_account(db, cooperative_id=people.coop.id)
    before_coop = coop_acc.balance
    service.approve(db, actor=people.steward, work_log_id=entry.id)
    assert entry.state == "approved" and entry.decided_by_id == people.steward.id
    assert ledger.balance(db, member=people.member) == before_worker + 75
    db.refresh(coop_acc)
    assert coop_acc.balance == before_coop - 75
    credit = db.scalars(select(Transfer).where(Transfer.work_log_id == entry.id)).one()
    assert credit.kind == "work_credit" and credit.initiated_by_id == people.steward.id
    assert sorted(p.amount for p in credit.postings) == [-75, 75]
    with pytest.raises(Conflict) as err:
        service.approve(db, actor=people.coordinator, work_log_id=entry.id)
    assert err.value.field == "state"
    assert ledger.balance(db, member=people.member) == before_worker + 75
    assert ledger.check(db).ok


def test_four_eyes_the_worker_never_approves_their_own_work(db, people):
    entry = log(db, people, who=people.steward)  # mamadou logs on his own land
    before = counts(db)
    with pytest.raises(PermissionDenied) as err:
        service.approve(db, actor=people.steward, work_log_id=entry.id)
    assert err.value.field == "approver" and err.value.code == "worklog.own_work"
    assert "nobody approves" in err.value.message and "Quatre yeux" in err.value.text("fr")
    with pytest.raises(PermissionDenied):
        service.reject(db, actor=people.steward, work_log_id=entry.id, reason="non")
    entry_c = log(db, people, who=people.coordinator)
    with pytest.raises(PermissionDenied):
        service.approve(db, actor=people.coordinator, work_log_id=entry_c.id)
    assert counts(db)[1] == before[1]
    db.refresh(entry)
    assert entry.state == "submitted"


def test_the_database_refuses_self_approval_whatever_the_code(db, people):
    entry = log(db, people)
    with pytest.raises(Exception) as err:
        with db.begin_nested():
            db.execute(text("UPDATE work_logs SET state='approved', decided_by_id=member_id, decided_at=now()"
                            " WHERE id=:i"), {"i": entry.id})
    assert "four_eyes" in str(err.value)


def test_only_stewards_of_that_commons_or_coordinators_approve(db, people):
    entry = log(db, people, with_member_ids=[people.other_steward.id])
    # a companion reads the log they worked on, but is not its commons' steward
    with pytest.raises(PermissionDenied) as err:
        service.approve(db, actor=people.other_steward, work_log_id=entry.id)
    assert err.value.field == "approver" and err.value.code == "worklog.not_a_steward"
    lucas_logs_elsewhere = log(db, people, who=people.other_steward)
    with pytest.raises(NotFound):  # not theirs, not theirs to approve: not even read
        service.approve(db, actor=people.member, work_log_id=lucas_logs_elsewhere.id)
    with pytest.raises(NotFound):
        service.approve(db, actor=people.outsider, work_log_id=entry.id)
    service.approve(db, actor=people.coordinator, work_log_id=entry.id)
    assert entry.state == "approved"


def test_awaiting_my_approval(db, people):
    mine = log(db, people)  # lucas on mamadou's land
    own = log(db, people, who=people.steward)
    pending_ids = {w.id for w in service.awaiting_my_approval(db, actor=people.steward)}
    assert mine.id in pending_ids and own.id not in pending_ids
    # on commons they steward, or beds of a garden they steward
    assert all(people.steward.id in service.work_stewards(db, db.get(Commons, w.commons_id))
               for w in service.awaiting_my_approval(db, actor=people.steward))
    assert mine.id not in {w.id for w in service.awaiting_my_approval(db, actor=people.other_steward)}
    coord = {w.id for w in service.awaiting_my_approval(db, actor=people.coordinator)}
    assert {mine.id, own.id} <= coord
    assert service.awaiting_my_approval(db, actor=people.member) == []


def test_rejection_needs_a_reason_and_credits_nothing(db, people):
    entry = log(db, people)
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        service.reject(db, actor=people.steward, work_log_id=entry.id, reason="  ")
    assert err.value.field == "reason"
    service.reject(db, actor=people.steward, work_log_id=entry.id, reason="Doublon avec le journal d'hier")
    assert entry.state == "rejected" and entry.rejection_reason.startswith("Doublon")
    assert counts(db)[1] == before[1]
    with pytest.raises(Conflict):
        service.approve(db, actor=people.steward, work_log_id=entry.id)
    # The worker fixes it: back to submitted, then approved.
    service.update_work_log(db, actor=people.member, work_log_id=entry.id, patch=WorkLogPatch(minutes=60))
    assert entry.state == "submitted" and entry.rejection_reason is None
    service.approve(db, actor=people.steward, work_log_id=entry.id)
    assert entry.state == "approved"


def test_correction_is_a_reversal_plus_a_new_entry(db, people):
    entry = log(db, people, minutes=180)
    service.approve(db, actor=people.steward, work_log_id=entry.id)
    before = ledger.balance(db, member=people.member)
    fixed = WorkLogIn(commons_id=entry.commons_id, work_date=entry.work_date, minutes=120, activity="mulching")
    with pytest.raises(PermissionDenied):
        service.correct(db, actor=people.member, work_log_id=entry.id, data=fixed, reason="trop")
    with pytest.raises(ValidationFailed) as err:
        service.correct(db, actor=people.steward, work_log_id=entry.id, data=fixed, reason="")
    assert err.value.field == "reason"
    new = service.correct(db, actor=people.steward, work_log_id=entry.id, data=fixed, reason="3 h notées pour 2 h")
    assert entry.state == "corrected" and new.corrects_id == entry.id and new.state == "approved"
    assert new.member_id == people.member.id and new.minutes == 120
    assert ledger.balance(db, member=people.member) == before - 60
    old_credit = db.scalars(select(Transfer).where(Transfer.work_log_id == entry.id,
                                                   Transfer.kind == "work_credit")).one()
    reversal = db.scalars(select(Transfer).where(Transfer.reverses_id == old_credit.id)).one()
    assert reversal.kind == "reversal"
    assert sorted(p.amount for p in reversal.postings) == [-180, 180]
    assert ledger.minutes_by_commons(db, cooperative_id=people.coop.id)[entry.commons_id] >= 120
    with pytest.raises(Conflict):
        service.correct(db, actor=people.steward, work_log_id=entry.id, data=fixed, reason="encore")
    assert ledger.check(db).ok


def test_a_resent_field_form_never_makes_a_second_log(db, people):
    first = log(db, people, source_ref="uuid:4c1f0b7e-odk")
    before = counts(db)
    again = log(db, people, source_ref="uuid:4c1f0b7e-odk")
    assert again.id == first.id
    assert counts(db) == before
    with pytest.raises(Conflict) as err:
        log(db, people, source_ref="uuid:4c1f0b7e-odk", minutes=30)
    assert err.value.field == "source_ref"
    assert counts(db) == before


def test_approval_beyond_the_workers_limit_is_refused_and_writes_nothing(db, people):
    acc = ledger.ensure_member_account(db, member=people.member)
    ledger.set_limits(db, actor=people.coordinator, account_id=acc.id, min_minutes=None,
                      max_minutes=acc.balance + 60)
    entry = log(db, people, minutes=90)
    before = counts(db)
    with pytest.raises(ledger.LimitExceeded) as err:
        service.approve(db, actor=people.steward, work_log_id=entry.id)
    assert err.value.field == "minutes" and "30 min above" in err.value.message
    assert err.value.detail["exceeds_by_minutes"] == 30
    db.refresh(entry)
    assert entry.state == "submitted"
    assert counts(db) == before


def test_activities_catalogue_is_data_coordinators_extend(db, people):
    codes = [a.code for a in service.list_activities(db)]
    assert {"sowing", "weeding", "mulching", "composting", "building", "repair", "harvest", "teaching"} <= set(codes)
    assert all(a.label_fr and a.label_en for a in service.list_activities(db))
    with pytest.raises(PermissionDenied):
        service.add_activity(db, actor=people.member, data=ActivityIn(code="beekeeping", label_fr="Apiculture",
                                                                     label_en="Beekeeping"))
    with pytest.raises(ValidationFailed) as err:
        service.add_activity(db, actor=people.coordinator, data=ActivityIn(code="Bee Keeping", label_fr="x",
                                                                          label_en=""))
    assert {p.field for p in err.value.problems} == {"code", "label_en"}
    service.add_activity(db, actor=people.coordinator,
                         data=ActivityIn(code="beekeeping", label_fr="Apiculture", label_en="Beekeeping"))
    assert db.get(Activity, "beekeeping").label_fr == "Apiculture"
    with pytest.raises(Conflict):
        service.add_activity(db, actor=people.coordinator,
                             data=ActivityIn(code="beekeeping", label_fr="Apiculture", label_en="Beekeeping"))
    assert log(db, people, activity="beekeeping").activity_code == "beekeeping"


def test_listing_is_scoped_to_what_the_member_may_see(db, people):
    entry = log(db, people)
    # issue 18 item 23: members read their own logs and those they may approve, not everyone's notes
    assert entry.id not in {w.id for w in service.list_work_logs(db, actor=people.other_steward)}
    with pytest.raises(NotFound):
        service.get_work_log(db, actor=people.other_steward, work_log_id=entry.id)
    assert entry.id in {w.id for w in service.list_work_logs(db, actor=people.steward)}
    assert entry.id in {w.id for w in service.list_work_logs(db, actor=people.coordinator)}
    assert all(w.cooperative_id == people.coop.id for w in service.list_work_logs(db, actor=people.member))
    assert service.list_work_logs(db, actor=people.outsider) == [] or all(
        w.cooperative_id == people.other_coop.id for w in service.list_work_logs(db, actor=people.outsider))
    with pytest.raises(NotFound):
        service.get_work_log(db, actor=people.outsider, work_log_id=entry.id)
    mine = service.list_work_logs(db, actor=people.member, member_id=people.member.id, state="submitted")
    assert entry.id in {w.id for w in mine} and all(w.member_id == people.member.id for w in mine)


# --- a day holds at most 24 hours (issue 18 item 2) -----------------------------------------------


def _logged(db, member, day) -> int:
    return db.scalar(select(func.coalesce(func.sum(WorkLog.minutes), 0)).where(
        WorkLog.member_id == member.id, WorkLog.work_date == day, WorkLog.state.in_(("submitted", "approved"))))


def test_a_members_logs_of_one_day_add_up_to_at_most_24_hours(db, people):
    day = today() - timedelta(days=40)
    assert _logged(db, people.member, day) == 0
    log(db, people, work_date=day, minutes=15 * 60 + 30)
    before = counts(db)
    with pytest.raises(ValidationFailed) as err:
        log(db, people, work_date=day, minutes=15 * 60 + 30)
    assert err.value.code == "worklog.day_full" and err.value.field == "minutes"
    assert err.value.params["left_minutes"] == 8 * 60 + 30 and err.value.params["cap_minutes"] == 24 * 60
    assert "il en reste 8 h 30" in err.value.text("fr") and "8 h 30 are left" in err.value.text("en")
    assert counts(db) == before
    log(db, people, work_date=day, minutes=8 * 60 + 30)  # exactly 24 h
    with pytest.raises(ValidationFailed):
        log(db, people, work_date=day, minutes=1)
    # another day, another member: their own 24 hours
    log(db, people, work_date=day - timedelta(days=1), minutes=15 * 60)
    log(db, people, who=people.steward, work_date=day, minutes=15 * 60)


def test_a_cooperative_may_set_a_shorter_day_and_an_edit_counts_once(db, people):
    coop = people.coop
    coop.settings = {**(coop.settings or {}), "work_day_max_hours": 10}
    db.flush()
    day = today() - timedelta(days=41)
    first = log(db, people, work_date=day, minutes=6 * 60)
    # editing the log replaces its minutes, it does not add to them
    service.update_work_log(db, actor=people.member, work_log_id=first.id, patch=WorkLogPatch(minutes=9 * 60))
    with pytest.raises(ValidationFailed) as err:
        log(db, people, work_date=day, minutes=61)
    assert err.value.params["cap_minutes"] == 600 and err.value.params["left_minutes"] == 60
    log(db, people, work_date=day, minutes=60)
    # a refused log does not count
    other = log(db, people, who=people.other_steward, work_date=day, minutes=10 * 60)
    service.reject(db, actor=people.coordinator, work_log_id=other.id, reason="Pas ce jour-là")
    log(db, people, who=people.other_steward, work_date=day, minutes=10 * 60)


def test_logs_sent_at_once_never_pass_the_day(engine):
    """Eight phones send 5 hours each for the same member and day at the same moment, each on its
    own connection: four fit in 24 hours, the others are refused, none is lost or doubled."""
    import threading
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from commons_map.db import make_sessionmaker, session_scope
    from commons_map.people.models import Cooperative, Member
    from commons_map.people.service import create_member

    with session_scope(engine) as s:
        coop = s.scalars(select(Cooperative).where(Cooperative.slug == "cic-saillans")).one()
        worker = create_member(s, cooperative=coop, username=f"day-{uuid.uuid4().hex[:8]}",
                               display_name="Journée pleine", password="un mot de passe long", bootstrap=True)
        land = s.scalars(select(Commons).where(Commons.external_id == "demo:land-0")).one()
        worker_id, land_id = worker.id, land.id
    day = today() - timedelta(days=3)
    start = threading.Barrier(8)
    Session = make_sessionmaker(engine)

    def send(i: int) -> str:
        with Session() as s:
            me = s.get(Member, worker_id)
            start.wait()
            try:
                service.log_work(s, actor=me, data=WorkLogIn(commons_id=land_id, work_date=day, minutes=300,
                                                             activity="weeding", notes=f"phone {i}"))
                s.commit()
                return "saved"
            except ValidationFailed as exc:
                s.rollback()
                return exc.code

    try:
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(send, range(8)))
        assert sorted(outcomes) == ["saved"] * 4 + ["worklog.day_full"] * 4
        with Session() as s:
            assert s.scalar(select(func.sum(WorkLog.minutes)).where(WorkLog.member_id == worker_id)) == 20 * 60
    finally:
        with session_scope(engine) as s:
            ids = list(s.scalars(select(WorkLog.id).where(WorkLog.member_id == worker_id)))
            s.execute(text("DELETE FROM notifications WHERE dedupe = ANY(:d)"),
                      {"d": [f"worklog:{i}:submitted" for i in ids]})
            s.execute(text("DELETE FROM work_log_history WHERE work_log_id = ANY(:i)"), {"i": ids})
            s.execute(text("DELETE FROM work_logs WHERE id = ANY(:i)"), {"i": ids})


def test_a_gardens_stewards_approve_the_work_on_its_beds(db, people):
    """Issue 18 item 23: beds have no stewards of their own, so work on a bed waited for a
    coordinator. A garden's stewards steward its beds: they are told, see it and approve it."""
    from commons_map.notify.models import Notification

    beds = db.scalars(select(Commons).where(Commons.kind_code == "bed", Commons.parent_id.is_not(None))).all()
    bed = next(b for b in beds if not b.steward_ids and db.get(Commons, b.parent_id).steward_ids
               and people.member.id not in db.get(Commons, b.parent_id).steward_ids)
    garden = db.get(Commons, bed.parent_id)
    steward = db.get(type(people.member), sorted(garden.steward_ids)[0])
    entry = service.log_work(db, actor=people.member, data=WorkLogIn(
        commons_id=bed.id, work_date=today() - timedelta(days=1), minutes=60, activity="weeding"))
    told = db.scalars(select(Notification.member_id).where(Notification.dedupe == f"worklog:{entry.id}:submitted"))
    assert steward.id in set(told)
    assert entry.id in {w.id for w in service.awaiting_my_approval(db, actor=steward)}
    service.approve(db, actor=steward, work_log_id=entry.id)
    assert entry.state == "approved"
    # a steward of another garden still does not
    other = log(db, people)  # on the steward persona's land
    outsider_steward = next(m for m in (people.other_steward,) if m.id not in work_stewards_of(db, other))
    with pytest.raises((PermissionDenied, NotFound)):
        service.approve(db, actor=outsider_steward, work_log_id=other.id)


def work_stewards_of(db, entry) -> set[int]:
    return service.work_stewards(db, db.get(Commons, entry.commons_id))
