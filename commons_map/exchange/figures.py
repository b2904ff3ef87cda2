"""Figures of the exchange network: hours exchanged per month and per category, members active,
the share of hours that reached members the solidarity fund supports, and distinct pairs."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from commons_map.exchange.models import Category, Exchange, Post
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import require_member


def figures(session: Session, *, actor: Member, year: int | None = None) -> dict[str, Any]:
    """The cooperative's exchange figures (paid exchanges only, of one year if given), for its members."""
    require_member(actor, actor.cooperative_id)
    coop = actor.cooperative_id
    tz = session.scalar(select(Cooperative.timezone).where(Cooperative.id == coop)) or "Europe/Paris"
    paid = [Exchange.cooperative_id == coop, Exchange.transfer_id.is_not(None)]
    if year is not None:  # the cooperative's calendar year, in its time zone
        paid.append(func.extract("year", func.timezone(tz, Exchange.paid_at)) == year)
    month = func.to_char(func.timezone(tz, Exchange.paid_at), "YYYY-MM")
    supported = func.sum(Exchange.minutes * cast(Exchange.by_fund, Integer))
    per_month = [{"month": m, "minutes": int(minutes), "exchanges": n, "supported_minutes": int(fund)}
                 for m, minutes, n, fund in session.execute(
        select(month, func.sum(Exchange.minutes), func.count(), supported).where(*paid)
        .group_by(month).order_by(month))]
    per_category = [{"category": code, "label_fr": fr, "label_en": en, "minutes": int(minutes), "exchanges": n}
                    for code, fr, en, minutes, n in session.execute(
        select(Category.code, Category.label_fr, Category.label_en, func.sum(Exchange.minutes), func.count())
        .join(Post, Post.id == Exchange.post_id).join(Category, Category.code == Post.category_code)
        .where(*paid).group_by(Category.code).order_by(func.sum(Exchange.minutes).desc(), Category.code))]
    total, by_fund, pairs = session.execute(select(
        func.coalesce(func.sum(Exchange.minutes), 0),
        func.coalesce(func.sum(Exchange.minutes * cast(Exchange.by_fund, Integer)), 0),
        func.count(func.distinct(func.least(Exchange.provider_id, Exchange.receiver_id) * 2_147_483_648
                                 + func.greatest(Exchange.provider_id, Exchange.receiver_id))),
    ).where(*paid)).one()
    people = select(Exchange.provider_id.label("m")).where(*paid).union(
        select(Exchange.receiver_id.label("m")).where(*paid)).subquery()
    active = session.scalar(select(func.count()).select_from(people))
    return {
        "year": year,
        "minutes_exchanged": int(total), "members_active": int(active or 0), "distinct_pairs": int(pairs),
        "supported_minutes": int(by_fund),
        "supported_share": round(int(by_fund) / int(total), 4) if total else 0.0,
        "per_month": per_month, "per_category": per_category,
    }


def to_csv(data: dict[str, Any]) -> str:
    """The figures as one CSV table: section, key, minutes, exchanges."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "key", "minutes", "exchanges"])
    for row in data["per_month"]:
        w.writerow(["month", row["month"], row["minutes"], row["exchanges"]])
    for row in data["per_category"]:
        w.writerow(["category", row["category"], row["minutes"], row["exchanges"]])
    w.writerow(["total", "minutes_exchanged", data["minutes_exchanged"], ""])
    w.writerow(["total", "supported_minutes", data["supported_minutes"], ""])
    w.writerow(["total", "supported_share", data["supported_share"], ""])
    w.writerow(["total", "members_active", data["members_active"], ""])
    w.writerow(["total", "distinct_pairs", data["distinct_pairs"], ""])
    return out.getvalue()
