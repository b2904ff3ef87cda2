"""Ending a support of the solidarity fund: one steward is enough (four eyes guard the fund's hours
going out, not their stopping); the member may end their own; nobody else learns it exists."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.exchange import service
from commons_map.exchange.models import ExchangeHistory, Post, Support
from commons_map.exchange.schemas import PostIn
from commons_map.people.models import Member


def _m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _oksana_support(db) -> Support:
    """The demo's active support (proposed by Camille, approved by Yasmine)."""
    return db.scalars(select(Support).where(Support.member_id == _m(db, "oksana").id,
                                            Support.ended_at.is_(None))).one()


def _history(db, support_id: int) -> list[str]:
    return list(db.scalars(select(ExchangeHistory.action).where(ExchangeHistory.support_id == support_id)
                           .order_by(ExchangeHistory.id)))


def test_one_steward_ends_an_active_support_and_the_fund_no_longer_pays(db, people):
    support, oksana, yasmine = _oksana_support(db), _m(db, "oksana"), _m(db, "yasmine")
    provider = _m(db, "pierre")
    post = service.create_post(db, actor=provider, data=PostIn(kind="offer", title="Couture", category="reparer",
                                                               minutes=30))
    ex = service.reply(db, actor=oksana, post_id=post.id)
    service.accept(db, actor=provider, exchange_id=ex.id)
    service.ask_fund(db, actor=oksana, exchange_id=ex.id)

    ended = service.end_support(db, actor=yasmine, support_id=support.id, reason="Situation régularisée")
    assert ended.ended_at is not None
    assert _history(db, support.id)[-1] == "support_ended"
    last = db.scalars(select(ExchangeHistory).where(ExchangeHistory.support_id == support.id)
                      .order_by(ExchangeHistory.id.desc())).first()
    assert last.member_id == yasmine.id and last.changes == {"reason": "Situation régularisée", "was_active": True}
    assert service.solidarity_out(db, actor=oksana)["my_support"] is None
    assert support.id not in [s["id"] for s in service.solidarity_out(db, actor=yasmine)["supports"]]
    with pytest.raises(PermissionDenied) as refused:
        service.ask_fund(db, actor=oksana, exchange_id=ex.id)
    assert refused.value.code == "exchange.not_supported"
    # Asked before the end, paid after it: the receiver pays, not the fund.
    service.done(db, actor=oksana, exchange_id=ex.id)
    assert ex.by_fund is False and ex.transfer_id is not None
    # A new support may be proposed once the old one ended.
    again = service.propose_support(db, actor=people.coordinator, member_id=oksana.id)
    assert again.approved_at is None


def test_the_proposer_may_withdraw_a_proposal_not_yet_approved(db, people):
    fatou = _m(db, "fatou")
    proposal = service.propose_support(db, actor=people.coordinator, member_id=fatou.id, note="à voir")
    service.end_support(db, actor=people.coordinator, support_id=proposal.id)
    assert proposal.ended_at is not None and proposal.approved_at is None
    with pytest.raises(Conflict) as decided:
        service.approve_support(db, actor=_m(db, "yasmine"), support_id=proposal.id)
    assert decided.value.code == "exchange.support_decided"


def test_the_member_may_end_their_own_support(db):
    support, oksana = _oksana_support(db), _m(db, "oksana")
    service.end_support(db, actor=oksana, support_id=support.id)
    assert support.ended_at is not None


def _nothing_written(db, support: Support, before: int) -> None:
    db.refresh(support)
    assert support.ended_at is None
    assert db.scalar(select(func.count()).select_from(ExchangeHistory)
                     .where(ExchangeHistory.support_id == support.id)) == before


def test_refusals_name_the_field_and_write_nothing(db, people):
    support = _oksana_support(db)
    before = len(_history(db, support.id))
    # Anyone else (another cooperative's coordinator too) does not learn the support exists.
    for who in (people.member, people.steward, _m(db, "pierre"), people.outsider):
        with pytest.raises(NotFound) as hidden:
            service.end_support(db, actor=who, support_id=support.id)
        assert hidden.value.code == "exchange.no_support" and hidden.value.field == "support_id"
    with pytest.raises(NotFound):
        service.end_support(db, actor=_m(db, "yasmine"), support_id=2_000_000_000)
    with pytest.raises(ValidationFailed) as long_reason:
        service.end_support(db, actor=_m(db, "yasmine"), support_id=support.id, reason="x" * 2001)
    assert [p.field for p in long_reason.value.problems] == ["reason"]
    with pytest.raises(ValidationFailed) as nul:
        service.end_support(db, actor=_m(db, "yasmine"), support_id=support.id, reason="a\x00b")
    assert nul.value.problems[0].code == "exchange.text_nul"
    _nothing_written(db, support, before)
    service.end_support(db, actor=_m(db, "yasmine"), support_id=support.id)
    with pytest.raises(Conflict) as twice:
        service.end_support(db, actor=people.coordinator, support_id=support.id)
    assert twice.value.code == "exchange.support_ended" and twice.value.field == "support_id"
    assert _history(db, support.id).count("support_ended") == 1
    assert db.scalar(select(func.count()).select_from(Post)) > 0  # the demo is there
