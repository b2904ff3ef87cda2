"""The time ledger: payments, limits, idempotency, reversals, immutability in the database,
the invariant check, statements and figures."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from commons_map.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from commons_map.ledger import service
from commons_map.ledger.models import Account, Posting, Transfer
from commons_map.people.models import Member


def n_transfers(db) -> int:
    return db.scalar(select(func.count()).select_from(Transfer))


def n_postings(db) -> int:
    return db.scalar(select(func.count()).select_from(Posting))


def member(db, username: str) -> Member:
    return db.scalars(select(Member).where(Member.username == username)).one()


def test_the_demo_ledger_holds_the_invariant(db, people):
    report = service.check(db)
    assert report.ok, report.breaches
    assert report.transfers > 100 and report.total_balance == 0
    coop_acc = service.cooperative_account(db, cooperative_id=people.coop.id)
    assert coop_acc.balance < 0, "the cooperative issued the credited hours"
    from commons_map.demo.load import MEMBERS

    demo = [username for username, *_ in MEMBERS] + ["diois"]
    without = db.scalars(select(Member.username).outerjoin(Account, Account.member_id == Member.id)
                         .where(Member.username.in_(demo), Account.id.is_(None))).all()
    assert without == [], "every demo member has an account"


def test_a_member_pays_another_and_the_payee_sees_it_at_once(db, people):
    payer, payee = people.member, member(db, "oksana")
    b_payer, b_payee = service.balance(db, member=payer), service.balance(db, member=payee)
    t = service.pay(db, payer=payer, payee="oksana", minutes=45, reason="Réparation de vélo",
                    idempotency_key="k-pay-1")
    assert t.kind == "service_payment" and t.initiated_by_id == payer.id
    assert service.balance(db, member=payer) == b_payer - 45
    assert service.balance(db, member=payee) == b_payee + 45
    lines = service.statement(db, account=service.ensure_member_account(db, member=payee))["lines"]
    assert lines[-1]["transfer_id"] == t.id and lines[-1]["amount"] == 45
    assert lines[-1]["counterparty"] == payer.display_name
    assert service.check(db).ok


def test_a_retry_with_the_same_key_pays_once_and_other_content_is_a_conflict(db, people):
    before = service.balance(db, member=people.member)
    t1 = service.pay(db, payer=people.member, payee="oksana", minutes=30, reason="Covoiturage",
                     idempotency_key="retry-1")
    count = n_transfers(db)
    t2 = service.pay(db, payer=people.member, payee="oksana", minutes=30, reason="Covoiturage",
                     idempotency_key="retry-1")
    assert t2.id == t1.id and service.was_replayed(t2)
    assert n_transfers(db) == count
    assert service.balance(db, member=people.member) == before - 30
    with pytest.raises(Conflict) as err:
        service.pay(db, payer=people.member, payee="oksana", minutes=31, reason="Covoiturage",
                    idempotency_key="retry-1")
    assert err.value.field == "idempotency_key"
    assert n_transfers(db) == count


PAY_BAD = [
    ({"payee": "SELF"}, "payee", "ledger.self_payment"),
    ({"payee": "nobody-here"}, "payee", "ledger.no_payee"),
    ({"payee": "diois"}, "payee", "ledger.no_payee"),  # another cooperative's member
    ({"payee": "99999999999"}, "payee", "ledger.no_payee"),  # an id no row can have
    ({"payee": None, "to_account_id": 987654}, "to_account_id", "ledger.no_account_here"),
    ({"minutes": 0}, "minutes", "ledger.minutes_not_positive"),
    ({"minutes": -15}, "minutes", "ledger.minutes_not_positive"),
    ({"reason": "   "}, "reason", "ledger.reason_missing"),
    ({"idempotency_key": ""}, "idempotency_key", "ledger.key_missing"),
    ({"payee": None}, "payee", "ledger.payee_or_account"),
]


@pytest.mark.parametrize(("change", "field", "code"), PAY_BAD)
def test_bad_payments_name_the_field_and_write_nothing(db, people, change, field, code):
    kw = {"payee": "oksana", "minutes": 30, "reason": "Garde d'enfants", "idempotency_key": "bad-1"}
    kw.update(change)
    if kw.get("payee") == "SELF":
        kw["payee"] = people.member.username
    before = (n_transfers(db), n_postings(db), service.balance(db, member=people.member))
    with pytest.raises(ValidationFailed) as err:
        service.pay(db, payer=people.member, **kw)
    assert field in [p.field for p in err.value.problems]
    assert code in [p.code for p in err.value.problems]
    assert all(p.text("fr") != p.text("en") for p in err.value.problems)
    assert (n_transfers(db), n_postings(db), service.balance(db, member=people.member)) == before


def test_payment_to_an_archived_or_inactive_account_is_refused(db, people):
    oksana = member(db, "oksana")
    acc = service.ensure_member_account(db, member=oksana)
    if acc.balance:
        service.adjust(db, actor=people.coordinator, member="oksana", minutes=-acc.balance,
                       reason="Solde avant départ", idempotency_key="settle-oksana")
    assert acc.balance == 0
    service.archive_account(db, actor=people.coordinator, account_id=acc.id)
    before = n_transfers(db)
    with pytest.raises(ValidationFailed) as err:
        service.pay(db, payer=people.member, payee="oksana", minutes=30, reason="x", idempotency_key="arch-1")
    assert err.value.field == "payee" and err.value.code == "ledger.account_closed"
    assert "est fermé" in err.value.text("fr") and "is closed" in err.value.text("en")
    with pytest.raises(ValidationFailed) as err:
        service.pay(db, payer=people.member, to_account_id=acc.id, minutes=30, reason="x", idempotency_key="arch-2")
    assert err.value.field == "to_account_id"
    samir = member(db, "samir")
    samir.is_active = False
    db.flush()
    with pytest.raises(ValidationFailed) as err:
        service.pay(db, payer=people.member, payee="samir", minutes=30, reason="x", idempotency_key="arch-3")
    assert err.value.field == "payee"
    assert n_transfers(db) == before


def test_archiving_needs_a_zero_balance_and_a_coordinator(db, people):
    acc = service.ensure_member_account(db, member=people.member)
    with pytest.raises(PermissionDenied):
        service.archive_account(db, actor=people.member, account_id=acc.id)
    if acc.balance == 0:
        service.adjust(db, actor=people.coordinator, member=people.member.username, minutes=10, reason="x",
                       idempotency_key="nz")
    with pytest.raises(Conflict) as err:
        service.archive_account(db, actor=people.coordinator, account_id=acc.id)
    assert err.value.code == "ledger.account_not_settled" and "settle" in err.value.message


def test_a_payment_beyond_the_limit_is_refused_and_says_by_how_much(db, people):
    payer = people.member
    acc = service.ensure_member_account(db, member=payer)
    lo, hi = service.limits_of(acc, people.coop.settings)
    assert (lo, hi) == (-1200, 6000), "the demo cooperative sets -20 h .. +100 h"
    room = acc.balance - lo
    before = (n_transfers(db), acc.balance)
    with pytest.raises(service.LimitExceeded) as err:
        service.pay(db, payer=payer, payee="oksana", minutes=room + 25, reason="Déménagement",
                    idempotency_key="limit-1")
    assert err.value.field == "minutes"
    assert err.value.code == "ledger.limit_below" and err.value.params["short_minutes"] == 25
    assert "20 h 25, 25 min below its limit of −20 h 00" in err.value.message
    assert err.value.detail == {"account_id": acc.id, "limit": "min", "limit_minutes": -1200,
                                "balance_after": -1225, "exceeds_by_minutes": 25}
    db.refresh(acc)
    assert (n_transfers(db), acc.balance) == before
    # Exactly up to the limit is fine.
    service.pay(db, payer=payer, payee="oksana", minutes=room, reason="Déménagement", idempotency_key="limit-2")
    assert service.balance(db, member=payer) == -1200


def test_the_payees_maximum_is_enforced_too(db, people):
    oksana = member(db, "oksana")
    acc = service.ensure_member_account(db, member=oksana)
    service.set_limits(db, actor=people.coordinator, account_id=acc.id, min_minutes=None,
                       max_minutes=acc.balance + 100)
    with pytest.raises(service.LimitExceeded) as err:
        service.pay(db, payer=people.member, payee="oksana", minutes=130, reason="Cours", idempotency_key="max-1")
    assert err.value.detail["limit"] == "max" and err.value.detail["exceeds_by_minutes"] == 30
    assert "30 min above" in err.value.message


def test_limits_are_set_by_coordinators_with_a_history_row(db, people):
    acc = service.ensure_member_account(db, member=people.member)
    with pytest.raises(PermissionDenied):
        service.set_limits(db, actor=people.member, account_id=acc.id, min_minutes=-5000, max_minutes=None)
    with pytest.raises(ValidationFailed) as err:
        service.set_limits(db, actor=people.coordinator, account_id=acc.id, min_minutes=100, max_minutes=50)
    assert err.value.field == "min_minutes"
    service.set_limits(db, actor=people.coordinator, account_id=acc.id, min_minutes=-3000, max_minutes=None)
    assert service.account_out(db, acc)["min_minutes"] == -3000
    assert service.account_out(db, acc)["max_minutes"] == 6000


def test_the_cooperative_account_may_go_negative_it_issues_the_currency(db, people):
    coop_acc = service.cooperative_account(db, cooperative_id=people.coop.id)
    assert service.limits_of(coop_acc, people.coop.settings) == (None, None)
    service.adjust(db, actor=people.coordinator, member="lucas", minutes=600, reason="Accueil des nouveaux",
                   idempotency_key="adj-1")
    db.refresh(coop_acc)
    assert coop_acc.balance < -600


def test_adjustments_are_for_coordinators(db, people):
    before = n_transfers(db)
    with pytest.raises(PermissionDenied):
        service.adjust(db, actor=people.steward, member="lucas", minutes=60, reason="x", idempotency_key="a")
    with pytest.raises(ValidationFailed) as err:
        service.adjust(db, actor=people.coordinator, member="lucas", minutes=0, reason="x", idempotency_key="a")
    assert err.value.field == "minutes"
    assert n_transfers(db) == before


def test_a_coordinator_never_adjusts_their_own_account_alone(db, people):
    """Four eyes: another coordinator adjusts a coordinator's hours, by member or by account."""
    before = n_transfers(db)
    own = service.ensure_member_account(db, member=people.coordinator)
    for target in ({"member": people.coordinator.username}, {"account_id": own.id}):
        with pytest.raises(PermissionDenied) as err:
            service.adjust(db, actor=people.coordinator, minutes=600, reason="x", idempotency_key="self", **target)
        assert err.value.code == "ledger.adjust_own_account" and err.value.field == next(iter(target))
    assert n_transfers(db) == before
    other = db.scalars(select(Member).where(Member.username == "yasmine")).one()
    assert other.is_coordinator and other.id != people.coordinator.id
    t = service.adjust(db, actor=other, member=people.coordinator.username, minutes=60,
                       reason="Heures de permanence oubliées", idempotency_key="four-eyes")
    assert any(p.account_id == own.id and p.amount == 60 for p in t.postings)


def test_pay_cooperative_for_a_booking(db, people):
    before = service.balance(db, member=people.member)
    t = service.pay_cooperative(db, member=people.member, minutes=90, reason="Chambre d'amis, une nuit",
                                idempotency_key="booking-1")
    assert t.kind == "booking_contribution"
    assert service.balance(db, member=people.member) == before - 90
    coop_acc = service.cooperative_account(db, cooperative_id=people.coop.id)
    assert any(p.account_id == coop_acc.id and p.amount == 90 for p in t.postings)
    with pytest.raises(ValidationFailed) as err:
        service.pay_cooperative(db, member=people.member, minutes=90, reason="x", idempotency_key="b2",
                                kind="work_credit")
    assert err.value.field == "kind"
    # A cancelled booking is refunded by the system (actor None).
    refund = service.reverse(db, actor=None, transfer_id=t.id, reason="Réservation annulée",
                             idempotency_key="booking-1-refund")
    assert refund.reverses_id == t.id
    assert service.balance(db, member=people.member) == before


def test_reversal_rules(db, people):
    t = service.pay(db, payer=people.member, payee="oksana", minutes=60, reason="Cours", idempotency_key="rev-0")
    oksana = member(db, "oksana")
    # Neither the payer nor a stranger reverses; the payee refunds.
    with pytest.raises(PermissionDenied):
        service.reverse(db, actor=people.member, transfer_id=t.id, reason="je reprends", idempotency_key="r1")
    with pytest.raises(NotFound):
        service.reverse(db, actor=people.other_steward, transfer_id=t.id, reason="x", idempotency_key="r1")
    with pytest.raises(NotFound):
        service.reverse(db, actor=people.outsider, transfer_id=t.id, reason="x", idempotency_key="r1")
    with pytest.raises(ValidationFailed) as err:
        service.reverse(db, actor=oksana, transfer_id=t.id, reason=" ", idempotency_key="r1")
    assert err.value.field == "reason"
    r = service.reverse(db, actor=oksana, transfer_id=t.id, reason="Cours annulé", idempotency_key="r1")
    assert r.kind == "reversal" and r.reverses_id == t.id
    assert sorted((p.account_id, p.amount) for p in r.postings) == sorted(
        (p.account_id, -p.amount) for p in t.postings)
    again = service.reverse(db, actor=oksana, transfer_id=t.id, reason="Cours annulé", idempotency_key="r1")
    assert again.id == r.id
    with pytest.raises(Conflict) as err:
        service.reverse(db, actor=people.coordinator, transfer_id=t.id, reason="encore", idempotency_key="r2")
    assert err.value.code == "ledger.reversed_by" and "already reversed" in err.value.message
    with pytest.raises(ValidationFailed):
        service.reverse(db, actor=people.coordinator, transfer_id=r.id, reason="x", idempotency_key="r3")
    assert service.check(db).ok


def test_the_database_refuses_to_edit_or_delete_the_past(db, people):
    t = service.pay(db, payer=people.member, payee="oksana", minutes=15, reason="x", idempotency_key="imm-1")
    for sql in ("UPDATE ledger_transfers SET reason='autre' WHERE id=:i",
                "DELETE FROM ledger_postings WHERE transfer_id=:i",
                "UPDATE ledger_postings SET amount=amount*2 WHERE transfer_id=:i",
                "DELETE FROM ledger_transfers WHERE id=:i"):
        with pytest.raises(DBAPIError) as err:
            with db.begin_nested():
                db.execute(text(sql), {"i": t.id})
        assert "immutable" in str(err.value)


def test_the_database_refuses_an_unbalanced_transfer_at_commit(engine, people):
    """Written around the service, straight in SQL: the deferred trigger stops it at commit."""
    with engine.connect() as conn:
        coop_id = conn.execute(text("SELECT id FROM cooperatives WHERE slug='cic-saillans'")).scalar()
        acc = conn.execute(text("SELECT id FROM ledger_accounts WHERE cooperative_id=:c AND kind='member'"
                                " ORDER BY id LIMIT 2"), {"c": coop_id}).scalars().all()
        conn.rollback()
        for legs in ([(acc[0], 10), (acc[1], -9)], [(acc[0], 10)]):
            tx = conn.begin()
            tid = conn.execute(text(
                "INSERT INTO ledger_transfers (cooperative_id, kind, reason, idempotency_key, fingerprint)"
                " VALUES (:c, 'adjustment', 'fraude', :k, 'x') RETURNING id"),
                {"c": coop_id, "k": f"raw-{len(legs)}"}).scalar()
            for a, amount in legs:
                conn.execute(text("INSERT INTO ledger_postings (transfer_id, account_id, amount, balance_after)"
                                  " VALUES (:t, :a, :m, 0)"), {"t": tid, "a": a, "m": amount})
            with pytest.raises(DBAPIError) as err:
                tx.commit()
            assert "does not balance" in str(err.value) or "two or more" in str(err.value)
            conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM ledger_transfers WHERE reason='fraude'")).scalar() == 0


def test_the_database_refuses_a_second_credit_for_one_work_log(db, people):
    from commons_map.worklog.models import WorkLog

    approved = db.scalars(select(WorkLog).where(WorkLog.state == "approved").limit(1)).one()
    coop_acc = service.cooperative_account(db, cooperative_id=people.coop.id)
    worker = service.ensure_member_account(db, member=db.get(Member, approved.member_id))
    with pytest.raises(Conflict) as err:
        service.post(db, cooperative_id=people.coop.id, kind="work_credit",
                     legs=[service.Leg(coop_acc.id, -10), service.Leg(worker.id, 10)], reason="bis",
                     initiated_by=people.coordinator, idempotency_key="second-credit", work_log_id=approved.id)
    assert err.value.field == "work_log_id"


def test_post_refuses_unbalanced_or_single_legs(db, people):
    a = service.ensure_member_account(db, member=people.member).id
    b = service.ensure_member_account(db, member=people.steward).id
    for legs in ([service.Leg(a, -10), service.Leg(b, 9)], [service.Leg(a, 0), service.Leg(b, 0)],
                 [service.Leg(a, 10)], [service.Leg(a, -10), service.Leg(a, 10)]):
        with pytest.raises(ValidationFailed) as err:
            service.post(db, cooperative_id=people.coop.id, kind="adjustment", legs=legs, reason="x",
                         initiated_by=people.coordinator, idempotency_key="p")
        assert err.value.field == "postings"


def test_check_finds_a_cached_balance_that_drifted(db, people):
    acc = service.ensure_member_account(db, member=people.member)
    db.execute(text("UPDATE ledger_accounts SET balance = balance + 7 WHERE id = :i"), {"i": acc.id})
    report = service.check(db)
    assert not report.ok
    assert any(f"account {acc.id}" in b for b in report.breaches)
    assert any("sum to 7" in b for b in report.breaches)


def test_statement_with_running_balance_over_a_period(db, people):
    acc = service.ensure_member_account(db, member=people.member)
    start = acc.balance
    service.pay(db, payer=people.member, payee="oksana", minutes=30, reason="Vélo", idempotency_key="st-1")
    service.adjust(db, actor=people.coordinator, member="lucas", minutes=100, reason="Accueil", idempotency_key="st-2")
    today = date.today()
    data = service.statement(db, account=acc, date_from=today - timedelta(days=1), date_to=today + timedelta(days=1))
    lines = data["lines"]
    assert [line["amount"] for line in lines[-2:]] == [-30, 100]
    assert lines[-1]["balance"] == start + 70 == data["closing_balance"]
    running = data["opening_balance"]
    for line in lines:
        running += line["amount"]
        assert line["balance"] == running
    rows = list(csv.reader(io.StringIO(service.statement_csv(data))))
    assert rows[0] == service.STATEMENT_COLUMNS
    assert rows[1][2] == "opening" and rows[-1][2] == "closing"
    assert int(rows[-1][-1]) == data["closing_balance"]
    assert len(rows) == len(lines) + 3
    later = service.statement(db, account=acc, date_from=today + timedelta(days=2))
    assert later["lines"] == [] and later["opening_balance"] == data["closing_balance"]
    with pytest.raises(ValidationFailed) as err:
        service.statement(db, account=acc, date_from=today, date_to=today - timedelta(days=3))
    assert err.value.field == "from"


def test_statement_access(db, people):
    with pytest.raises(PermissionDenied):
        service.account_for_statement(db, actor=people.member, member="oksana")
    assert (service.account_for_statement(db, actor=people.coordinator, member="oksana").member_id
            == member(db, "oksana").id)
    assert service.account_for_statement(db, actor=people.member).member_id == people.member.id
    with pytest.raises(NotFound):
        service.account_for_statement(db, actor=people.outsider, member="lucas")


def test_figures_and_minutes_by_commons_agree(db, people):
    from commons_map.worklog.models import WorkLog

    per = service.minutes_by_commons(db, cooperative_id=people.coop.id)
    approved = db.scalar(select(func.sum(WorkLog.minutes)).where(WorkLog.state == "approved",
                                                                 WorkLog.cooperative_id == people.coop.id))
    assert sum(per.values()) == approved > 0
    figs = service.figures(db, cooperative_id=people.coop.id, actor=people.coordinator)
    assert figs["total_minutes"] == approved
    assert sum(r["minutes"] for r in figs["per_activity"]) == approved
    assert sum(r["minutes"] for r in figs["per_month"]) == approved
    assert {r["commons_id"]: r["minutes"] for r in figs["per_commons"]} == per
    assert all(r["label_fr"] and r["label_en"] for r in figs["per_activity"])
    year = date.today().year
    assert sum(service.minutes_by_commons(db, cooperative_id=people.coop.id, year=year).values()) <= approved
    anonymous = service.figures(db, cooperative_id=people.coop.id, actor=None)
    assert anonymous["total_minutes"] <= approved
    from commons_map.register.models import Commons

    assert all(db.get(Commons, r["commons_id"]).visibility == "public" for r in anonymous["per_commons"])
