"""What governance takes in: proposals, amendments, positions, circles, trust."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from commons_map.db import DbId

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_REASON = 2_000


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("governance.nul_character", "A text may not contain the NUL character.", {})
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class EffectIn(BaseModel):
    """The one change a proposal makes when it passes (see commons_map.governance.effects)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=40)
    target: int | None = Field(default=None, ge=1, le=2**31 - 1)
    value: Any = None


class ProposalIn(BaseModel):
    """A new proposal."""

    model_config = ConfigDict(extra="forbid")

    title: Text = Field(max_length=MAX_TITLE)
    text: Text = Field(max_length=MAX_TEXT)
    method: Literal["consent", "vote", "score"] = "consent"
    participation: Literal["circle", "all"] = "all"
    circle_id: DbId | None = None
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime
    quorum: int | None = Field(default=None, ge=1, le=100_000)
    public: bool = False
    options: list[Text] = Field(default_factory=list, max_length=20)
    threshold: Literal["simple", "two_thirds"] | None = None
    effect: EffectIn | None = None


class ProposalPatch(BaseModel):
    """An amendment by the proposer: a new title or text, and a note saying what changed."""

    model_config = ConfigDict(extra="forbid")

    title: Text | None = Field(default=None, max_length=MAX_TITLE)
    text: Text | None = Field(default=None, max_length=MAX_TEXT)
    note: Text = Field(default="", max_length=MAX_REASON)


class PositionIn(BaseModel):
    """My position: a choice (consent, vote) or one score per option (score), and a reason."""

    model_config = ConfigDict(extra="forbid")

    choice: Literal["consent", "concern", "objection", "yes", "no", "abstain"] | None = None
    scores: list[int] | None = Field(default=None, max_length=20)
    reason: Text = Field(default="", max_length=MAX_REASON)


class CircleIn(BaseModel):
    """A new circle: its founding members and the trust each role needs."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(max_length=120)
    description: Text = Field(default="", max_length=MAX_TEXT)
    members: list[DbId] = Field(default_factory=list, max_length=500)
    thresholds: dict[Text, int] = Field(default_factory=dict, max_length=20)


class TrustIn(BaseModel):
    """Trust given to a member for a role of a circle."""

    model_config = ConfigDict(extra="forbid")

    circle_id: DbId
    role: Text = Field(default="member", max_length=40)
