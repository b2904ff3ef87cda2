"""The demo's offers and needs: enough of them, in Saillans, paid through a ledger that still checks."""

from __future__ import annotations

from sqlalchemy import func, select

from commons_map.exchange.models import Category, Exchange, Post
from commons_map.ledger import service as ledger
from commons_map.ledger.models import Account


def test_demo_exchange_network(db, people):
    coop = people.coop.id
    posts = db.scalar(select(func.count()).select_from(Post).where(Post.cooperative_id == coop))
    categories = db.scalar(select(func.count(func.distinct(Post.category_code))).where(Post.cooperative_id == coop))
    assert posts >= 30 and categories == db.scalar(select(func.count()).select_from(Category))
    placed_in_territory = db.scalar(select(func.count()).select_from(Post).where(
        Post.cooperative_id == coop, func.ST_Within(Post.geom, people.coop.territory)))
    assert placed_in_territory >= 20
    paid = db.scalar(select(func.count()).select_from(Exchange).where(
        Exchange.cooperative_id == coop, Exchange.transfer_id.is_not(None)))
    open_ = db.scalar(select(func.count()).select_from(Exchange).where(
        Exchange.cooperative_id == coop, Exchange.transfer_id.is_(None), Exchange.state != "cancelled"))
    by_fund = db.scalar(select(func.count()).select_from(Exchange).where(
        Exchange.cooperative_id == coop, Exchange.by_fund, Exchange.transfer_id.is_not(None)))
    assert paid >= 20 and open_ >= 3 and by_fund == 1
    fund = db.scalars(select(Account).where(Account.cooperative_id == coop, Account.kind == "solidarity_fund")).one()
    assert fund.balance >= 0
    assert ledger.check(db).breaches == []
