"""Ending a support over HTTP, and the exchange figures as the annual report's chart (issue 14 item 6):
a year's figures in JSON, CSV and PNG, in the annual report for members only."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from commons_map.exchange import service
from commons_map.exchange.charts import figures_png
from commons_map.exchange.models import ExchangeHistory, Support
from commons_map.exchange.schemas import PostIn
from commons_map.people.models import Member

P = "/api/v1/exchange"
EN = {"Accept-Language": "en"}


def _m(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def _oksana_support(db) -> Support:
    return db.scalars(select(Support).where(Support.member_id == _m(db, "oksana").id,
                                            Support.ended_at.is_(None))).one()


def _support_rows(db) -> tuple[int, int]:
    return (db.scalar(select(func.count()).select_from(Support).where(Support.ended_at.is_not(None))),
            db.scalar(select(func.count()).select_from(ExchangeHistory)))


def test_a_steward_ends_a_support_over_http(client, auth, db):
    support = _oksana_support(db)
    r = client.post(f"{P}/solidarity/supports/{support.id}/end", json={"reason": "Plus besoin."},
                    headers=auth(_m(db, "yasmine")))
    assert r.status_code == 200, r.text
    assert r.json() | {"ended": True} == r.json() and r.json()["active"] is False
    again = client.post(f"{P}/solidarity/supports/{support.id}/end", headers=auth(_m(db, "camille")) | EN)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "support_id" and "already ended" in again.json()["detail"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"reason": "x" * 2001}, 422, "reason"),
    ({"reason": "a\u0000b"}, 422, "reason"),
    ({"reason": 5}, 422, "reason"),
    ({"why": "x"}, 422, "why"),
])
def test_bad_input_to_end_a_support_names_the_field_and_writes_nothing(client, auth, db, body, status, field):
    support = _oksana_support(db)
    before = _support_rows(db)
    r = client.post(f"{P}/solidarity/supports/{support.id}/end", json=body, headers=auth(_m(db, "yasmine")) | EN)
    assert r.status_code == status, r.text
    assert field in [e["field"].split(".")[-1] for e in r.json()["errors"]], r.json()
    assert _support_rows(db) == before


def test_who_may_not_end_a_support_learns_nothing_of_it(client, auth, db, people):
    support = _oksana_support(db)
    before = _support_rows(db)
    for who in (people.member, _m(db, "pierre"), people.outsider):
        r = client.post(f"{P}/solidarity/supports/{support.id}/end", headers=auth(who))
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "support_id"
    assert client.post(f"{P}/solidarity/supports/{support.id}/end").status_code == 401
    assert client.post(f"{P}/solidarity/supports/0/end", headers=auth(_m(db, "yasmine"))).status_code == 422
    assert _support_rows(db) == before


def _paid_exchange(db, minutes: int = 75) -> None:
    provider, receiver = _m(db, "julien"), _m(db, "marie")
    post = service.create_post(db, actor=provider, data=PostIn(kind="offer", title="Aide au jardin",
                                                               category="jardiner", minutes=minutes))
    ex = service.reply(db, actor=receiver, post_id=post.id)
    service.accept(db, actor=provider, exchange_id=ex.id)
    service.done(db, actor=receiver, exchange_id=ex.id)
    db.flush()


def test_figures_of_one_year(client, auth, db, people):
    this_year = date.today().year
    before = client.get(f"{P}/figures", params={"year": this_year}, headers=auth(people.member)).json()
    _paid_exchange(db)
    now = client.get(f"{P}/figures", params={"year": this_year}, headers=auth(people.member)).json()
    assert now["year"] == this_year and now["minutes_exchanged"] == before["minutes_exchanged"] + 75
    assert sum(m["minutes"] for m in now["per_month"]) == now["minutes_exchanged"]
    assert sum(m["supported_minutes"] for m in now["per_month"]) == now["supported_minutes"]
    assert all(m["month"].startswith(str(this_year)) for m in now["per_month"])
    last = client.get(f"{P}/figures", params={"year": this_year - 5}, headers=auth(people.member)).json()
    assert last["minutes_exchanged"] == 0 and last["per_month"] == [] and last["distinct_pairs"] == 0
    every = client.get(f"{P}/figures", headers=auth(people.member)).json()
    assert every["year"] is None and every["minutes_exchanged"] >= now["minutes_exchanged"]


@pytest.mark.parametrize(("params", "field"), [({"year": 1000}, "year"), ({"year": "x"}, "year"),
                                               ({"format": "gif"}, "format"), ({"format": "png", "lang": "de"},
                                                                                "lang")])
def test_bad_figures_parameters_name_the_field(client, auth, people, params, field):
    r = client.get(f"{P}/figures", params=params, headers=auth(people.member) | EN)
    assert r.status_code == 422 and field in [e["field"].split(".")[-1] for e in r.json()["errors"]], r.json()


def test_the_figures_chart_as_png(client, auth, people):
    for params in ({"format": "png"}, {"format": "png", "lang": "en"}, {"format": "png", "year": 2020}):
        r = client.get(f"{P}/figures", params=params, headers=auth(people.member))
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert client.get(f"{P}/figures", params={"format": "png"}).status_code == 401


def test_the_chart_draws_every_figure_in_both_languages():
    """Drawn text is checked through matplotlib's own texts: French and English, the headline figures."""
    import matplotlib.pyplot as plt

    data = {"year": 2026, "minutes_exchanged": 150, "members_active": 3, "distinct_pairs": 2,
            "supported_minutes": 30, "supported_share": 0.2,
            "per_month": [{"month": "2026-10", "minutes": 150, "exchanges": 2, "supported_minutes": 30}],
            "per_category": [{"category": "jardiner", "label_fr": "Jardiner", "label_en": "Gardening",
                              "minutes": 150, "exchanges": 2}]}
    seen: list[str] = []
    real_close = plt.close

    def keep_texts(fig) -> None:  # noqa: ANN001
        seen.extend(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")))
        real_close(fig)

    plt.close = keep_texts
    try:
        assert figures_png(data)[:4] == b"\x89PNG"
        both = "\n".join(seen)
        seen.clear()
        figures_png(data, locale="en")
        english = "\n".join(seen)
    finally:
        plt.close = real_close
    assert "Échanges en temps, 2026 / Exchanges in time, 2026" in both
    assert "2,5 h échangées · 3 membres actifs · 2 paires distinctes · 20,0\u202f% des heures" in both
    assert "2.5 h exchanged · 3 members active · 2 distinct pairs · 20.0% of hours to supported members" in both
    assert "Jardiner\nGardening" in both and "2026-10" in both
    assert "Gardening" in english and "Jardiner" not in english and "échangées" not in english


def test_the_annual_report_holds_the_year_of_exchanges_for_members(client, auth, db, people):
    year = date.today().year
    _paid_exchange(db, minutes=45)
    rep = client.get("/api/v1/soil/report", params={"year": year}, headers=auth(people.member)).json()
    ex = rep["exchange"]
    assert ex["year"] == year and ex["minutes_exchanged"] >= 45 and ex["members_active"] >= 2
    r = client.get("/api/v1/soil/report", params={"year": year, "format": "csv"}, headers=auth(people.member))
    rows = [row for row in csv.DictReader(io.StringIO(r.text)) if row["section"] == "exchange"]
    hours = next(row for row in rows if row["measure"] == "hours_exchanged")
    assert float(hours["value"]) == round(ex["minutes_exchanged"] / 60, 2) and hours["unit"] == "h"
    assert {row["name"] for row in rows if row["measure"] == "hours_by_category"} >= {"jardiner"}
    anonymous = client.get("/api/v1/soil/report", params={"year": year, "cooperative_id": people.coop.id}).json()
    assert anonymous["exchange"] is None  # who exchanged with whom stays with the members
    outsider = client.get("/api/v1/soil/report", params={"year": year, "cooperative_id": people.coop.id},
                          headers=auth(people.outsider)).json()
    assert outsider["exchange"] is None


def test_the_annual_report_chart_of_exchanges(client, auth, people):
    png = client.get("/api/v1/soil/charts/exchange.png", headers=auth(people.member))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    fr = client.get("/api/v1/soil/charts/exchange.png", params={"year": 2025, "lang": "fr"},
                    headers=auth(people.member))
    assert fr.status_code == 200 and fr.content != png.content
    anonymous = client.get("/api/v1/soil/charts/exchange.png", params={"cooperative_id": people.coop.id})
    assert anonymous.status_code == 403
    outsider = client.get("/api/v1/soil/charts/exchange.png", params={"cooperative_id": people.coop.id},
                          headers=auth(people.outsider))
    assert outsider.status_code == 403
    bad = client.get("/api/v1/soil/charts/exchange.png", params={"year": 3000}, headers=auth(people.member) | EN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("year")
