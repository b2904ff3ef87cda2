"""OAuth2 password flow: POST /api/v1/auth/token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import CurrentMember, SessionDep, SettingsDep, sign_in
from commons_map.people.auth import issue_token, sign_out_everywhere

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/token", response_model=Token)
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """Exchange a username and password for a bearer token (throttled after repeated failures)."""
    member = sign_in(request, session, username=form.username, password=form.password)
    return Token(access_token=issue_token(member, settings), expires_in=settings.token_minutes * 60)


@router.post("/revoke", status_code=204)
def revoke(member: CurrentMember, session: SessionDep) -> None:
    """Revoke every token issued to me so far and end my browser sessions (sign out everywhere)."""
    sign_out_everywhere(session, member=session.merge(member))
