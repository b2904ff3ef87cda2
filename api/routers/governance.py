"""/api/v1/governance: proposals, positions, the close, agreements and their calendar, circles, trust.

Thin: parse, call commons_map.governance.service, shape the answer. Handlers that may close a
proposal (any read of a due one, a position, a close) commit before answering, so the proposal's
row lock is released on the handler's own thread (see api/routers/reservations.py's _done).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentMember, OptionalMember, SessionDep
from commons_map.db import DbId
from commons_map.governance import service
from commons_map.governance.schemas import CircleIn, PositionIn, ProposalIn, ProposalPatch, TrustIn

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])
ICS = "text/calendar; charset=utf-8"


def _proposal(session: Any, p: Any, member: Any, *, detail: bool = True) -> dict[str, Any]:
    session.commit()
    return service.proposal_out(session, p, actor=member, detail=detail)


@router.get("/proposals")
def list_proposals(session: SessionDep, member: OptionalMember,
                   state: Annotated[Literal["open", "closed"] | None, Query()] = None) -> list[dict[str, Any]]:
    """The proposals I see, open first (anonymous: the public ones, without names)."""
    rows = service.list_proposals(session, actor=member, state=state)
    session.commit()
    return [service.proposal_out(session, p, actor=member, detail=False) for p in rows]


@router.post("/proposals", status_code=201)
def create_proposal(body: ProposalIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Put a proposal to the cooperative or to a circle."""
    return _proposal(session, service.create_proposal(session, actor=member, data=body), member)


@router.get("/proposals/{proposal_id}")
def get_proposal(proposal_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """A proposal, with its outcome once closed (closed now if it is due)."""
    return _proposal(session, service.get_proposal(session, actor=member, proposal_id=proposal_id), member)


@router.patch("/proposals/{proposal_id}")
def amend_proposal(proposal_id: DbId, body: ProposalPatch, session: SessionDep,
                   member: CurrentMember) -> dict[str, Any]:
    """Amend my proposal's title or text while it is open (recorded, shown to those who took a position)."""
    return _proposal(session, service.amend(session, actor=member, proposal_id=proposal_id, patch=body), member)


@router.put("/proposals/{proposal_id}/position")
def take_position(proposal_id: DbId, body: PositionIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """My position on a proposal (changeable until the close)."""
    service.take_position(session, actor=member, proposal_id=proposal_id, data=body)
    p = service.get_proposal(session, actor=member, proposal_id=proposal_id)
    return _proposal(session, p, member)


@router.post("/proposals/{proposal_id}/close")
def close_proposal(proposal_id: DbId, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Close a due proposal (anyone who sees it), or my own early; closing a closed one changes nothing."""
    return _proposal(session, service.close(session, actor=member, proposal_id=proposal_id), member)


@router.get("/agreements")
def list_agreements(session: SessionDep, member: CurrentMember,
                    due_within_days: Annotated[int | None, Query(ge=0, le=3660)] = None) -> list[dict[str, Any]]:
    """My cooperative's agreements; with due_within_days, those due for review by then."""
    rows = service.list_agreements(session, actor=member, due_within_days=due_within_days)
    return [service.agreement_out(session, a) for a in rows]


@router.get("/agreements.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}})
def agreements_calendar(session: SessionDep, member: CurrentMember) -> Response:
    """The review dates of my cooperative's agreements (iCalendar)."""
    return Response(service.agreements_calendar(session, actor=member), media_type=ICS,
                    headers={"Content-Disposition": 'inline; filename="agreements.ics"'})


@router.get("/circles")
def list_circles(session: SessionDep, member: CurrentMember) -> list[dict[str, Any]]:
    """My cooperative's circles, their members and the trust each role needs."""
    return service.list_circles(session, actor=member)


@router.post("/circles", status_code=201)
def create_circle(body: CircleIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """A new circle (coordinators), with its founding members and role thresholds."""
    return service.circle_out(session, service.create_circle(session, actor=member, data=body))


@router.put("/trust/{member_ref}")
def give_trust(member_ref: str, body: TrustIn, session: SessionDep,
               member: CurrentMember) -> dict[str, Any]:
    """Give my trust to a member (username or id) for a role of my circle."""
    result = service.give_trust(session, actor=member, receiver=member_ref, circle_id=body.circle_id, role=body.role)
    session.commit()
    return result


@router.delete("/trust/{member_ref}")
def withdraw_trust(member_ref: str, session: SessionDep, member: CurrentMember,
                   circle_id: Annotated[DbId, Query()],
                   role: Annotated[str, Query(max_length=40)] = "member") -> dict[str, Any]:
    """Take my trust back; below the circle's threshold a role that came by trust goes."""
    result = service.withdraw_trust(session, actor=member, receiver=member_ref, circle_id=circle_id, role=role)
    session.commit()
    return result
