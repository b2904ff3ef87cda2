"""The rules of volunteer work: logging it, editing it until approved, approving it (four eyes).

Approval credits the worker from the cooperative's account in the same transaction, exactly once:
the log row is locked while it is decided, and the database refuses a second work credit for the
same log (a partial UNIQUE index). A correction after approval is a reversal plus a new entry.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from commons_map import messages
from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, collector
from commons_map.geo import parse_geojson_geometry, to_ewkt
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Transfer
from commons_map.notify.service import notify
from commons_map.people.models import Cooperative, Member, MemberRole
from commons_map.people.permissions import is_member_of, require_coordinator, require_member
from commons_map.register.models import Commons, Steward
from commons_map.register.service import can_see, get_commons
from commons_map.worklog.models import (
    MAX_MINUTES,
    Activity,
    ActivityRetired,
    WorkLog,
    WorkLogCompanion,
    WorkLogHistory,
)
from commons_map.worklog.schemas import ActivityIn, WorkLogIn, WorkLogPatch

DEFAULT_MAX_AGE_DAYS = 365
DAY_MINUTES = 24 * 60
"""A member's logs of one day add up to at most this (a cooperative may set less:
``settings["work_day_max_hours"]``)."""
MAX_NOTES = 4000
MAX_SOURCE_REF = 200
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_PAGE = 500


# --- the activities catalogue -----------------------------------------------------------------


def _offered(cooperative_id: int | None) -> Any:
    """Activities a cooperative offers: the shipped ones it has not retired, and its own."""
    shipped = Activity.cooperative_id.is_(None)
    if cooperative_id is None:
        return shipped
    retired = exists().where(ActivityRetired.cooperative_id == cooperative_id,
                             ActivityRetired.code == Activity.code)
    return or_(shipped & ~retired, Activity.cooperative_id == cooperative_id)


def list_activities(session: Session, *, cooperative_id: int | None = None,
                    include_inactive: bool = False) -> list[Activity]:
    """The activities members of ``cooperative_id`` pick from, in order (the shipped ones alone
    when no cooperative is given)."""
    stmt = select(Activity).order_by(Activity.position, Activity.code)
    if include_inactive and cooperative_id is not None:
        stmt = stmt.where(Activity.cooperative_id.is_(None) | (Activity.cooperative_id == cooperative_id))
    elif not include_inactive:
        stmt = stmt.where(Activity.active, _offered(cooperative_id))
    else:
        stmt = stmt.where(Activity.cooperative_id.is_(None))
    return list(session.scalars(stmt))


def offered_activity(session: Session, code: str, *, cooperative_id: int) -> Activity | None:
    """The activity ``code`` if ``cooperative_id`` offers it now, else None."""
    return session.scalars(
        select(Activity).where(Activity.code == code, Activity.active, _offered(cooperative_id))
    ).first()


def get_activity(session: Session, code: str, *, cooperative_id: int, field: str = "activity") -> Activity:
    """An activity the cooperative offers, by code, or a ValidationFailed listing the known ones."""
    activity = offered_activity(session, code, cooperative_id=cooperative_id)
    if activity is None:
        known = [a.code for a in list_activities(session, cooperative_id=cooperative_id)]
        raise ValidationFailed("worklog.unknown_activity", field=field, activity=code, known=known)
    return activity


def add_activity(session: Session, *, actor: Member, data: ActivityIn) -> Activity:
    """A new activity in the catalogue of the actor's cooperative (coordinators)."""
    require_coordinator(actor, actor.cooperative_id)
    problems = collector()
    if not CODE_RE.match(data.code):
        problems.add("code", "worklog.activity_code_form")
    if not data.label_fr.strip():
        problems.add("label_fr", "form.empty")
    if not data.label_en.strip():
        problems.add("label_en", "form.empty")
    problems.raise_if_any()
    if session.get(Activity, data.code) is not None:
        # Codes are unique across cooperatives (work logs and forms name them): another
        # cooperative's code is taken too, without saying whose it is.
        raise Conflict("worklog.activity_exists", field="code", activity=data.code)
    position = (session.scalar(select(func.max(Activity.position))) or 0) + 10
    activity = Activity(code=data.code, cooperative_id=actor.cooperative_id, label_fr=data.label_fr.strip(),
                        label_en=data.label_en.strip(), position=position)
    try:
        with session.begin_nested():
            session.add(activity)
            session.flush()
    except IntegrityError:
        # Another cooperative's code (row-level security hides it from the lookup above), or one
        # added at the same moment: taken all the same.
        raise Conflict("worklog.activity_exists", field="code", activity=data.code) from None
    return activity


def set_activity(session: Session, *, actor: Member, code: str, active: bool | None = None,
                 label_fr: str | None = None, label_en: str | None = None) -> Activity:
    """Retire, bring back or relabel an activity of the actor's cooperative (coordinators); logs
    keep their activity. A shipped activity is retired or brought back for this cooperative only,
    and its names are the software's (relabelling it is refused)."""
    require_coordinator(actor, actor.cooperative_id)
    activity = session.get(Activity, code)
    if activity is None or activity.cooperative_id not in (None, actor.cooperative_id):
        raise NotFound("worklog.no_activity", field="code", activity=code)
    problems = collector()
    for name, value in (("label_fr", label_fr), ("label_en", label_en)):
        if value is not None and not value.strip():
            problems.add(name, "form.empty")
        elif value is not None and activity.cooperative_id is None:
            problems.add(name, "worklog.activity_shipped", activity=code)
    problems.raise_if_any()
    if activity.cooperative_id is None:
        if active is not None:
            retired = session.get(ActivityRetired, (actor.cooperative_id, code))
            if not active and retired is None:
                session.add(ActivityRetired(cooperative_id=actor.cooperative_id, code=code))
            elif active and retired is not None:
                session.delete(retired)
        session.flush()
        return activity
    if active is not None:
        activity.active = active
    if label_fr is not None:
        activity.label_fr = label_fr.strip()
    if label_en is not None:
        activity.label_en = label_en.strip()
    session.flush()
    return activity


def activity_active_for(session: Session, activity: Activity, *, cooperative_id: int | None) -> bool:
    """Whether ``activity`` is offered by ``cooperative_id`` (its own flag, or not retired there)."""
    if not activity.active:
        return False
    if activity.cooperative_id is not None or cooperative_id is None:
        return True
    return session.get(ActivityRetired, (cooperative_id, activity.code)) is None


# --- checks on the way in ---------------------------------------------------------------------


def _today(coop: Cooperative) -> date:
    return datetime.now(ZoneInfo(coop.timezone or "Europe/Paris")).date()


def day_cap_minutes(coop: Cooperative) -> int:
    """How many minutes a member's logs of one day may add up to in ``coop``."""
    raw = (coop.settings or {}).get("work_day_max_hours")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw < 24:
        return int(raw * 60)
    return DAY_MINUTES


def _check_day(session: Session, problems: Any, *, coop: Cooperative, worker: Member, work_date: date,
               minutes: int, field: str, exclude_id: int | None) -> None:
    """The worker's logs of ``work_date`` (awaiting or approved) plus these minutes stay within the
    day's cap. The worker's row is locked first, so two logs sent at once are counted one after
    the other (the second sees the first)."""
    session.execute(select(Member.id).where(Member.id == worker.id).with_for_update())
    stmt = select(func.coalesce(func.sum(WorkLog.minutes), 0)).where(
        WorkLog.member_id == worker.id, WorkLog.work_date == work_date,
        WorkLog.state.in_(("submitted", "approved")))
    if exclude_id is not None:
        stmt = stmt.where(WorkLog.id != exclude_id)
    logged = int(session.scalar(stmt) or 0)
    cap = day_cap_minutes(coop)
    if logged + minutes > cap:
        problems.add(field, "worklog.day_full", work_date=work_date, cap_minutes=cap,
                     logged_minutes=logged, given_minutes=minutes, left_minutes=max(cap - logged, 0))


def _clean(
    session: Session, *, worker: Member, viewer: Member, data: WorkLogIn, exclude_id: int | None = None
) -> dict[str, Any]:
    """Check a log for ``worker`` as ``viewer`` sees the commons; the values to store."""
    coop = session.get(Cooperative, worker.cooperative_id)
    assert coop is not None
    commons = get_commons(session, actor=viewer, commons_id=data.commons_id)  # 404 if not visible
    if commons.cooperative_id != worker.cooperative_id or not can_see(session, worker, commons):
        raise NotFound("register.no_commons", field="commons_id", commons_id=data.commons_id)
    problems = collector()
    if commons.archived_at is not None:
        problems.add("commons_id", "worklog.commons_archived", commons_id=commons.id, commons=commons.name)

    tz = ZoneInfo(coop.timezone or "Europe/Paris")
    today = _today(coop)
    max_age = int((coop.settings or {}).get("work_log_max_age_days", DEFAULT_MAX_AGE_DAYS))
    if data.work_date > today:
        problems.add("work_date", "worklog.date_in_future", work_date=data.work_date, today=today)
    elif data.work_date < today - timedelta(days=max_age):
        problems.add("work_date", "worklog.date_too_old", work_date=data.work_date, days=max_age)

    minutes = data.minutes
    started, ended = data.started_at, data.ended_at
    minutes_field = "minutes"
    if started is not None or ended is not None:
        if started is None or ended is None:
            problems.add("started_at" if started is None else "ended_at",
                         "worklog.times_both")
        elif started.tzinfo is None or ended.tzinfo is None:
            problems.add("started_at" if started.tzinfo is None else "ended_at",
                         "worklog.time_without_offset")
        elif ended <= started:
            problems.add("ended_at", "worklog.end_before_start", started_at=started.isoformat(),
                         ended_at=ended.isoformat())
        else:
            span = int((ended - started).total_seconds() // 60)
            if data.minutes is not None and data.minutes != span:
                problems.add("minutes", "worklog.minutes_mismatch", given_minutes=data.minutes, span_minutes=span)
            minutes, minutes_field = span, "ended_at"
            if started.astimezone(tz).date() != data.work_date:
                problems.add("started_at", "worklog.start_other_day", day=started.astimezone(tz).date(),
                             work_date=data.work_date)
            if ended > datetime.now(UTC) + timedelta(minutes=5):
                problems.add("ended_at", "worklog.end_in_future", ended_at=ended.isoformat())
    if minutes is None:
        if started is None and ended is None:
            problems.add("minutes", "worklog.duration_missing")
    elif isinstance(minutes, bool) or minutes <= 0:
        problems.add(minutes_field, "worklog.duration_not_positive", given_minutes=minutes)
    elif minutes > MAX_MINUTES:
        problems.add(minutes_field, "worklog.duration_too_long", max_hours=MAX_MINUTES // 60,
                     given_minutes=minutes)
    else:
        _check_day(session, problems, coop=coop, worker=worker, work_date=data.work_date, minutes=minutes,
                   field=minutes_field, exclude_id=exclude_id)

    if offered_activity(session, data.activity, cooperative_id=coop.id) is None:
        known = [a.code for a in list_activities(session, cooperative_id=coop.id)]
        problems.add("activity", "worklog.unknown_activity", activity=data.activity, known=known)
    if len(data.notes) > MAX_NOTES:
        problems.add("notes", "form.too_long", maximum=MAX_NOTES, length=len(data.notes))
    if data.source_ref is not None and not (0 < len(data.source_ref.strip()) <= MAX_SOURCE_REF):
        problems.add("source_ref", "worklog.source_ref_length", maximum=MAX_SOURCE_REF)

    location = None
    if data.location is not None:
        try:
            geom = parse_geojson_geometry(data.location, field="location")
        except ValidationFailed as exc:
            first = exc.problems[0] if exc.problems else None
            problems.add("location", first.code if first else exc.code, **(first.params if first else exc.params))
        else:
            if geom.geom_type != "Point":
                problems.add("location", "register.geometry_not_point", geometry_type=geom.geom_type)
            else:
                location = to_ewkt(geom)

    companions = sorted(set(data.with_member_ids))
    if worker.id in companions:
        problems.add("with_member_ids", "worklog.companion_self")
    elif companions:
        found = set(session.scalars(select(Member.id).where(
            Member.id.in_(companions), Member.cooperative_id == worker.cooperative_id, Member.is_active)))
        missing = [str(i) for i in companions if i not in found]
        if missing:
            problems.add("with_member_ids", "worklog.no_companion", member_ids=missing)
    problems.raise_if_any()
    return {
        "commons": commons, "minutes": minutes, "started_at": started, "ended_at": ended,
        "activity_code": data.activity, "notes": data.notes.strip(), "location": location,
        "companions": companions, "work_date": data.work_date,
    }


def _record(session: Session, log: WorkLog, actor: Member | None, action: str, changes: dict) -> None:
    def j(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    session.add(WorkLogHistory(work_log_id=log.id, member_id=actor.id if actor else None, action=action,
                               changes={k: [j(a), j(b)] for k, (a, b) in changes.items()}))


def _same_request(log: WorkLog, worker: Member, data: WorkLogIn) -> bool:
    return (log.member_id == worker.id and log.commons_id == data.commons_id
            and log.work_date == data.work_date and log.activity_code == data.activity
            and (data.minutes is None or data.minutes == log.minutes))


def _by_source_ref(session: Session, cooperative_id: int, ref: str) -> WorkLog | None:
    return session.scalar(select(WorkLog).where(WorkLog.cooperative_id == cooperative_id,
                                                WorkLog.source_ref == ref))


def _resent(log: WorkLog, actor: Member, data: WorkLogIn) -> WorkLog:
    if not _same_request(log, actor, data):
        raise Conflict("worklog.source_ref_reused", field="source_ref", source_ref=data.source_ref,
                       work_log_id=log.id)
    log._resent = True  # type: ignore[attr-defined]
    return log


def log_work(session: Session, *, actor: Member, data: WorkLogIn) -> WorkLog:
    """Log work on a commons; awaits approval. A resent ``source_ref`` returns the first log."""
    require_member(actor, actor.cooperative_id)
    ref = data.source_ref.strip() if data.source_ref else None
    if ref:
        existing = _by_source_ref(session, actor.cooperative_id, ref)
        if existing is not None:
            return _resent(existing, actor, data)
    clean = _clean(session, worker=actor, viewer=actor, data=data)
    log = WorkLog(
        cooperative_id=actor.cooperative_id, member_id=actor.id, commons_id=clean["commons"].id,
        work_date=clean["work_date"], started_at=clean["started_at"], ended_at=clean["ended_at"],
        minutes=clean["minutes"], activity_code=clean["activity_code"], notes=clean["notes"],
        location=clean["location"], source_ref=ref,
        companion_rows=[WorkLogCompanion(member_id=i) for i in clean["companions"]],
    )
    try:
        with session.begin_nested():
            session.add(log)
            session.flush()
    except IntegrityError:
        again = _by_source_ref(session, actor.cooperative_id, ref) if ref else None
        if again is None:
            raise
        return _resent(again, actor, data)
    _record(session, log, actor, "submitted", {"minutes": (None, log.minutes)})
    session.flush()
    _tell_deciders(session, log, clean["commons"], actor)
    return log


def work_stewards(session: Session, commons: Commons) -> set[int]:
    """Who approves work on ``commons``: its stewards; for a bed, which has none of its own, those
    of the garden it lies in too (a garden's stewards steward its beds)."""
    ids = set(commons.steward_ids)
    if commons.kind_code == "bed" and commons.parent_id is not None:
        parent = session.get(Commons, commons.parent_id)
        if parent is not None:
            ids |= parent.steward_ids
    return ids


def _stewards_log(actor: Member) -> Any:
    """SQL: the actor stewards the log's commons, or the garden a bed of it lies in."""
    parent = aliased(Commons)
    return or_(
        exists().where(Steward.commons_id == WorkLog.commons_id, Steward.member_id == actor.id),
        exists().where(parent.id == Commons.parent_id, Commons.kind_code == "bed",
                       Steward.commons_id == parent.id, Steward.member_id == actor.id),
    )


def _tell_deciders(session: Session, log: WorkLog, commons: Commons, worker: Member) -> None:
    """A new log waits for approval: its commons' stewards are told (the coordinators when it has none)."""
    deciders = [i for i in work_stewards(session, commons) if i != worker.id]
    if not deciders:
        deciders = [i for i in session.scalars(
            select(MemberRole.member_id).join(Member).where(Member.cooperative_id == log.cooperative_id,
                                                            MemberRole.role == "coordinator")) if i != worker.id]
    notify(session, recipients=deciders, kind="worklog_to_approve", code="notify.worklog_to_approve",
           params={"member": worker.display_name, "minutes": log.minutes, "commons": commons.name},
           link="/app/approvals", dedupe=f"worklog:{log.id}:submitted")


def _tell_worker(session: Session, log: WorkLog, commons: Commons, decision: str) -> None:
    notify(session, recipients=[log.member_id], kind=f"worklog_{decision}", code=f"notify.worklog_{decision}",
           params={"minutes": log.minutes, "commons": commons.name}, link="/app/work",
           dedupe=f"worklog:{log.id}:{decision}")


# --- reading ----------------------------------------------------------------------------------


def _visible_logs(actor: Member) -> Any:
    """The logs the actor may read: their own, those they worked on as a companion, and those they
    may approve (on a commons they steward; every log of the cooperative for its coordinators).
    A member does not read the others' logs and notes otherwise."""
    stmt = select(WorkLog).join(Commons, Commons.id == WorkLog.commons_id).where(
        WorkLog.cooperative_id == actor.cooperative_id)
    if actor.is_coordinator:
        return stmt
    return stmt.where(or_(
        WorkLog.member_id == actor.id,
        exists().where(WorkLogCompanion.work_log_id == WorkLog.id, WorkLogCompanion.member_id == actor.id),
        _stewards_log(actor),
    ))


def get_work_log(session: Session, *, actor: Member, work_log_id: int, lock: bool = False) -> WorkLog:
    """A work log the actor may read (``_visible_logs``), else 404."""
    require_member(actor, actor.cooperative_id)
    stmt = _visible_logs(actor).where(WorkLog.id == work_log_id)
    if lock:
        stmt = stmt.with_for_update(of=WorkLog).execution_options(populate_existing=True)
    log = session.scalar(stmt)
    if log is None:
        raise NotFound("worklog.no_work_log", field="work_log_id", work_log_id=work_log_id)
    return log


def list_work_logs(
    session: Session,
    *,
    actor: Member,
    member_id: int | None = None,
    commons_id: int | None = None,
    state: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[WorkLog]:
    """Work logs the actor may see, newest first, filtered."""
    require_member(actor, actor.cooperative_id)
    stmt = _visible_logs(actor)
    if member_id is not None:
        stmt = stmt.where(WorkLog.member_id == member_id)
    if commons_id is not None:
        stmt = stmt.where(WorkLog.commons_id == commons_id)
    if state is not None:
        stmt = stmt.where(WorkLog.state == state)
    if date_from is not None:
        stmt = stmt.where(WorkLog.work_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(WorkLog.work_date <= date_to)
    stmt = stmt.order_by(WorkLog.work_date.desc(), WorkLog.id.desc()).limit(min(limit, MAX_PAGE)).offset(offset)
    return list(session.scalars(stmt))


def awaiting_my_approval(session: Session, *, actor: Member) -> list[WorkLog]:
    """Submitted logs by others on commons I steward (every commons for coordinators)."""
    require_member(actor, actor.cooperative_id)
    stmt = _visible_logs(actor).where(WorkLog.state == "submitted", WorkLog.member_id != actor.id)
    if not actor.is_coordinator:
        stmt = stmt.where(_stewards_log(actor))
    return list(session.scalars(stmt.order_by(WorkLog.work_date, WorkLog.id)))


def describe(session: Session, logs: list[WorkLog]) -> list[dict[str, Any]]:
    """Work logs as the API shows them (names, labels, location as GeoJSON, credit transfer)."""
    if not logs:
        return []
    ids = [log.id for log in logs]
    names = dict(session.execute(select(Member.id, Member.display_name).where(
        Member.id.in_({log.member_id for log in logs}))).all())
    commons = dict(session.execute(select(Commons.id, Commons.name).where(
        Commons.id.in_({log.commons_id for log in logs}))).all())
    points = dict(session.execute(select(WorkLog.id, func.ST_AsGeoJSON(WorkLog.location)).where(
        WorkLog.id.in_(ids), WorkLog.location.is_not(None))).all())
    credits = dict(session.execute(select(Transfer.work_log_id, Transfer.id).where(
        Transfer.work_log_id.in_(ids), Transfer.kind == "work_credit")).all())
    out = []
    for log in logs:
        out.append({
            "id": log.id, "member_id": log.member_id, "member": names.get(log.member_id, ""),
            "commons_id": log.commons_id, "commons": commons.get(log.commons_id, ""),
            "work_date": log.work_date, "started_at": log.started_at, "ended_at": log.ended_at,
            "minutes": log.minutes, "activity": log.activity_code,
            "activity_label_fr": log.activity.label_fr, "activity_label_en": log.activity.label_en,
            "notes": log.notes, "location": json.loads(points[log.id]) if log.id in points else None,
            "with_member_ids": log.with_member_ids, "state": log.state, "decided_by_id": log.decided_by_id,
            "decided_at": log.decided_at, "rejection_reason": log.rejection_reason,
            "source_ref": log.source_ref, "corrects_id": log.corrects_id,
            "credit_transfer_id": credits.get(log.id), "created_at": log.created_at,
        })
    return out


# --- editing before approval -------------------------------------------------------------------


def update_work_log(session: Session, *, actor: Member, work_log_id: int, patch: WorkLogPatch) -> WorkLog:
    """The worker changes their log until it is approved; a rejected log goes back for approval."""
    log = get_work_log(session, actor=actor, work_log_id=work_log_id, lock=True)
    if log.member_id != actor.id:
        raise PermissionDenied("worklog.edit_not_yours", field="work_log_id")
    if log.state not in ("submitted", "rejected"):
        raise Conflict("worklog.edit_decided", field="state", work_log_id=log.id)
    given = patch.model_dump(exclude_unset=True)
    current = {
        "commons_id": log.commons_id, "work_date": log.work_date, "started_at": log.started_at,
        "ended_at": log.ended_at, "minutes": None if log.started_at else log.minutes,
        "activity": log.activity_code, "notes": log.notes, "with_member_ids": log.with_member_ids,
        "location": _location_geojson(session, log),
    }
    if "minutes" in given and given["minutes"] is not None and "started_at" not in given:
        current["started_at"] = current["ended_at"] = None
    if given.get("started_at") is not None and "minutes" not in given:
        current["minutes"] = None
    merged = WorkLogIn(**{**current, **given})
    clean = _clean(session, worker=actor, viewer=actor, data=merged, exclude_id=log.id)
    changes: dict[str, tuple[Any, Any]] = {}
    for attr, value in (("commons_id", clean["commons"].id), ("work_date", clean["work_date"]),
                        ("started_at", clean["started_at"]), ("ended_at", clean["ended_at"]),
                        ("minutes", clean["minutes"]), ("activity_code", clean["activity_code"]),
                        ("notes", clean["notes"])):
        if getattr(log, attr) != value:
            changes[attr] = (getattr(log, attr), value)
            setattr(log, attr, value)
    if "location" in given:
        log.location = clean["location"]
        changes["location"] = (None, given["location"])
    if log.with_member_ids != clean["companions"]:
        changes["with_member_ids"] = (log.with_member_ids, clean["companions"])
        log.companion_rows = [WorkLogCompanion(member_id=i) for i in clean["companions"]]
    if log.state == "rejected":
        changes["state"] = ("rejected", "submitted")
        log.state, log.decided_by_id, log.decided_at, log.rejection_reason = "submitted", None, None, None
    _record(session, log, actor, "updated", changes)
    session.flush()
    return log


def _location_geojson(session: Session, log: WorkLog) -> dict | None:
    raw = session.scalar(select(func.ST_AsGeoJSON(WorkLog.location)).where(WorkLog.id == log.id))
    return json.loads(raw) if raw else None


# --- deciding -------------------------------------------------------------------------------


def _may_decide(session: Session, actor: Member, log: WorkLog, commons: Commons) -> None:
    if log.member_id == actor.id:
        raise PermissionDenied("worklog.own_work", field="approver", commons=commons.name)
    if not (actor.is_coordinator or actor.id in work_stewards(session, commons)):
        raise PermissionDenied("worklog.not_a_steward", field="approver", commons=commons.name)


_DECIDED = {"approved": "worklog.already_approved", "rejected": "worklog.already_rejected"}


def _undecided(log: WorkLog) -> None:
    if log.state != "submitted":
        raise Conflict(_DECIDED.get(log.state, "worklog.already_decided"), field="state", work_log_id=log.id)


def _credit(session: Session, *, actor: Member, log: WorkLog, commons: Commons) -> Transfer:
    worker = session.get(Member, log.member_id)
    assert worker is not None
    worker_account = ledger.ensure_member_account(session, member=worker)
    coop_account = ledger.cooperative_account(session, cooperative_id=log.cooperative_id)
    activity = session.get(Activity, log.activity_code)
    label = activity.label_fr if activity else log.activity_code
    return ledger.post(
        session, cooperative_id=log.cooperative_id, kind="work_credit",
        legs=[ledger.Leg(coop_account.id, -log.minutes), ledger.Leg(worker_account.id, log.minutes)],
        # The ledger keeps its reasons as written (in the cooperative's French); the date as people read it.
        reason=f"Travail approuvé : {label}, {commons.name}, le {messages.format_value(log.work_date, 'fr')}",
        initiated_by=actor, idempotency_key=f"work-credit:{log.id}", work_log_id=log.id,
    )


def approve(session: Session, *, actor: Member, work_log_id: int) -> WorkLog:
    """Approve a log (a steward of the commons or a coordinator, never the worker) and credit it."""
    log = get_work_log(session, actor=actor, work_log_id=work_log_id, lock=True)
    commons = session.get(Commons, log.commons_id)
    assert commons is not None
    _may_decide(session, actor, log, commons)
    _undecided(log)
    _credit(session, actor=actor, log=log, commons=commons)  # refuses beyond limits, writes nothing then
    log.state, log.decided_by_id, log.decided_at = "approved", actor.id, datetime.now(UTC)
    _record(session, log, actor, "approved", {"state": ("submitted", "approved")})
    session.flush()
    _tell_worker(session, log, commons, "approved")
    return log


def reject(session: Session, *, actor: Member, work_log_id: int, reason: str) -> WorkLog:
    """Reject a log with a reason (same deciders as approval)."""
    log = get_work_log(session, actor=actor, work_log_id=work_log_id, lock=True)
    commons = session.get(Commons, log.commons_id)
    assert commons is not None
    _may_decide(session, actor, log, commons)
    _undecided(log)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("worklog.reject_reason", field="reason")
    log.state, log.decided_by_id, log.decided_at, log.rejection_reason = "rejected", actor.id, datetime.now(UTC), reason
    _record(session, log, actor, "rejected", {"state": ("submitted", "rejected"), "reason": (None, reason)})
    session.flush()
    _tell_worker(session, log, commons, "refused")
    return log


def correct(session: Session, *, actor: Member, work_log_id: int, data: WorkLogIn, reason: str) -> WorkLog:
    """Correct an approved log: its credit is reversed and a new, approved entry replaces it."""
    old = get_work_log(session, actor=actor, work_log_id=work_log_id, lock=True)
    commons = session.get(Commons, old.commons_id)
    assert commons is not None
    _may_decide(session, actor, old, commons)
    if old.state != "approved":
        raise Conflict("worklog.correct_not_approved", field="state", work_log_id=old.id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("worklog.correct_reason", field="reason")
    if data.source_ref:
        raise ValidationFailed("worklog.correction_source_ref", field="source_ref")
    worker = session.get(Member, old.member_id)
    assert worker is not None
    clean = _clean(session, worker=worker, viewer=actor, data=data, exclude_id=old.id)
    new_commons = clean["commons"]
    _may_decide(session, actor, old, new_commons)
    credit = session.scalars(select(Transfer).where(
        Transfer.work_log_id == old.id, Transfer.kind == "work_credit")).one()
    ledger.post_reversal(session, actor=actor, transfer=credit,
                         reason=f"Correction du journal de travail {old.id} : {reason}",
                         idempotency_key=f"work-correction:{old.id}")
    old.state = "corrected"
    _record(session, old, actor, "corrected", {"state": ("approved", "corrected"), "reason": (None, reason)})
    new = WorkLog(
        cooperative_id=old.cooperative_id, member_id=worker.id, commons_id=new_commons.id,
        work_date=clean["work_date"], started_at=clean["started_at"], ended_at=clean["ended_at"],
        minutes=clean["minutes"], activity_code=clean["activity_code"], notes=clean["notes"],
        location=clean["location"], corrects_id=old.id,
        companion_rows=[WorkLogCompanion(member_id=i) for i in clean["companions"]],
    )
    session.add(new)
    session.flush()
    _credit(session, actor=actor, log=new, commons=new_commons)
    new.state, new.decided_by_id, new.decided_at = "approved", actor.id, datetime.now(UTC)
    _record(session, new, actor, "approved", {"state": (None, "approved"), "corrects": (None, old.id)})
    session.flush()
    return new


def member_may_log_on(session: Session, *, actor: Member, commons_id: int) -> bool:
    """True when the actor may log work on that commons (used by forms to build choice lists)."""
    commons = session.get(Commons, commons_id)
    return (commons is not None and is_member_of(actor, commons.cooperative_id)
            and commons.archived_at is None and can_see(session, actor, commons))
