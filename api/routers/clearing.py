"""/api/v1/clearing: clearing lines between cooperatives (payments cross through /ledger/payments)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentMember, SessionDep
from commons_map.clearing import service
from commons_map.clearing.schemas import LimitIn, LineIn, LineOut
from commons_map.db import DbId

router = APIRouter(prefix="/api/v1/clearing", tags=["clearing"])


@router.get("/lines", response_model=list[LineOut])
def lines(session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """My cooperative's clearing lines: the other side, the limit, what each owes."""
    return [service.line_out(session, line, for_cooperative_id=member.cooperative_id)
            for line in service.list_lines(session, actor=member)]


@router.post("/lines", status_code=201, response_model=LineOut)
def propose(body: LineIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Propose a line to another cooperative (coordinators); one of its coordinators accepts it."""
    line = service.propose_line(session, actor=member, partner=body.partner, limit_minutes=body.limit_minutes)
    return service.line_out(session, line, for_cooperative_id=member.cooperative_id)


@router.post("/lines/{line_id}/accept", response_model=LineOut)
def accept(line_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Accept the other side's proposal: the line, or a raise of its limit (coordinators)."""
    line = service.accept_line(session, actor=member, line_id=line_id)
    return service.line_out(session, line, for_cooperative_id=member.cooperative_id)


@router.put("/lines/{line_id}/limit", response_model=LineOut)
def limit(line_id: DbId, body: LimitIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Lower the limit at once (never below what is owed), or propose a raise (coordinators)."""
    line = service.change_limit(session, actor=member, line_id=line_id, limit_minutes=body.limit_minutes)
    return service.line_out(session, line, for_cooperative_id=member.cooperative_id)
