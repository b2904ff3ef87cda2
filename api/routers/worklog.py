"""/api/v1/work-logs and /api/v1/activities: volunteer work and its approval."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentMember, OptionalMember, SessionDep
from commons_map.db import DbId
from commons_map.worklog import service
from commons_map.worklog.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    CorrectionIn,
    RejectIn,
    WorkLogIn,
    WorkLogOut,
    WorkLogPatch,
)

router = APIRouter(prefix="/api/v1", tags=["work logs"])


def _one(session: Any, log: Any) -> dict[str, Any]:
    return service.describe(session, [log])[0]


def _activity_out(session: Any, activity: Any, cooperative_id: int | None) -> dict[str, Any]:
    return {"code": activity.code, "label_fr": activity.label_fr, "label_en": activity.label_en,
            "active": service.activity_active_for(session, activity, cooperative_id=cooperative_id)}


@router.get("/activities", response_model=list[ActivityOut], tags=["activities"])
def activities(session: SessionDep, member: OptionalMember) -> list[Any]:
    """The activities a work log picks from (labels in French and English): the member's
    cooperative's; the shipped ones for anonymous visitors."""
    return service.list_activities(session, cooperative_id=member.cooperative_id if member else None)


@router.post("/activities", status_code=201, response_model=ActivityOut, tags=["activities"])
def add_activity(body: ActivityIn, session: SessionDep, member: CurrentMember) -> Any:
    """Add an activity to the catalogue of the coordinator's cooperative."""
    return service.add_activity(session, actor=member, data=body)


@router.patch("/activities/{code}", response_model=ActivityOut, tags=["activities"])
def change_activity(code: str, body: ActivityPatch, session: SessionDep, member: CurrentMember) -> Any:
    """Retire, bring back or relabel an activity of the coordinator's cooperative (a shipped one is
    retired for this cooperative only, and keeps its names)."""
    activity = service.set_activity(session, actor=member, code=code, active=body.active,
                                    label_fr=body.label_fr, label_en=body.label_en)
    return _activity_out(session, activity, member.cooperative_id)


@router.post("/work-logs", status_code=201, response_model=WorkLogOut,
             responses={200: {"description": "a resent source_ref: the log written the first time"}})
def log_work(body: WorkLogIn, session: SessionDep, member: CurrentMember) -> JSONResponse:
    """Log work on a commons; it awaits a steward's or a coordinator's approval."""
    log = service.log_work(session, actor=member, data=body)
    status = 200 if getattr(log, "_resent", False) else 201
    return JSONResponse(WorkLogOut(**_one(session, log)).model_dump(mode="json"), status_code=status)


@router.get("/work-logs", response_model=list[WorkLogOut])
def list_work_logs(
    session: SessionDep,
    member: CurrentMember,
    mine: bool = False,
    member_id: DbId | None = None,
    commons_id: DbId | None = None,
    state: Literal["submitted", "approved", "rejected", "corrected"] | None = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Work logs I may see, newest first."""
    logs = service.list_work_logs(
        session, actor=member, member_id=member.id if mine else member_id, commons_id=commons_id,
        state=state, date_from=date_from, date_to=date_to, limit=limit, offset=offset,
    )
    return service.describe(session, logs)


@router.get("/work-logs/pending", response_model=list[WorkLogOut])
def pending(session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """What awaits my approval."""
    return service.describe(session, service.awaiting_my_approval(session, actor=member))


@router.get("/work-logs/{work_log_id}", response_model=WorkLogOut)
def get_work_log(work_log_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """One work log, with the photos sent with its field form."""
    from commons_map.fieldforms.attachments import attachments_out

    out = _one(session, service.get_work_log(session, actor=member, work_log_id=work_log_id))
    return out | {"attachments": attachments_out(session, actor=member, kind="work_log", record_id=work_log_id)}


@router.patch("/work-logs/{work_log_id}", response_model=WorkLogOut)
def update_work_log(work_log_id: DbId, body: WorkLogPatch, session: SessionDep,
                    member: CurrentMember) -> dict[str, Any]:
    """Change my log while it is not approved."""
    return _one(session, service.update_work_log(session, actor=member, work_log_id=work_log_id, patch=body))


@router.post("/work-logs/{work_log_id}/approve", response_model=WorkLogOut)
def approve(work_log_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Approve a log (four eyes) and credit its hours to the worker."""
    return _one(session, service.approve(session, actor=member, work_log_id=work_log_id))


@router.post("/work-logs/{work_log_id}/reject", response_model=WorkLogOut)
def reject(work_log_id: DbId, body: RejectIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Reject a log, saying why."""
    return _one(session, service.reject(session, actor=member, work_log_id=work_log_id, reason=body.reason))


@router.post("/work-logs/{work_log_id}/correct", status_code=201, response_model=WorkLogOut)
def correct(work_log_id: DbId, body: CorrectionIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Correct an approved log: reverse its credit and record the right entry, approved."""
    new = service.correct(session, actor=member, work_log_id=work_log_id, data=body.log, reason=body.reason)
    return _one(session, new)
