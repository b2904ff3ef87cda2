"""`commons-map ledger check | statement | figures`, run as a user or a cron job would."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text

from commons_map.db import make_engine, session_scope
from commons_map.geo import to_ewkt
from commons_map.ledger import service as ledger
from commons_map.people.models import Cooperative, Member
from commons_map.register.models import Commons, Steward
from commons_map.worklog import service as worklog
from commons_map.worklog.schemas import WorkLogIn

CLI = [str(Path(sys.executable).parent / "commons-map")]


def run(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=300)


def _small_ledger(url: str) -> None:
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="petite", name="Petite coopérative", settings={},
                           territory=to_ewkt(MultiPolygon([Polygon([(5.1, 44.6), (5.3, 44.6), (5.3, 44.8),
                                                                    (5.1, 44.8), (5.1, 44.6)])])))
        s.add(coop)
        s.flush()
        ana, ben = (Member(cooperative_id=coop.id, username=u, display_name=n, password_hash="-")
                    for u, n in (("ana", "Ana"), ("ben", "Ben")))
        s.add_all([ana, ben])
        s.flush()
        land = Commons(cooperative_id=coop.id, kind_code="land", name="Pré", visibility="public",
                       geom=to_ewkt(Polygon([(5.19, 44.69), (5.195, 44.69), (5.195, 44.695), (5.19, 44.69)])),
                       steward_rows=[Steward(member_id=ben.id)])
        s.add(land)
        s.flush()
        day = datetime.now(ZoneInfo("Europe/Paris")).date() - timedelta(days=1)
        log = worklog.log_work(s, actor=ana, data=WorkLogIn(commons_id=land.id, work_date=day, minutes=150,
                                                             activity="sowing"))
        worklog.approve(s, actor=ben, work_log_id=log.id)
        ledger.pay(s, payer=ana, payee="ben", minutes=40, reason="Réparation de vélo", idempotency_key="cli-1")
    engine.dispose()


def test_check_statement_and_figures(fresh_database):
    url = fresh_database()
    _small_ledger(url)
    r = run(["ledger", "check"], url)
    assert r.returncode == 0, r.stderr
    assert "ledger OK" in r.stdout and "transfers: 2" in r.stdout

    r = run(["ledger", "statement", "ana", "--cooperative", "petite"], url)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert [row[5] for row in rows[2:-1]] == ["150", "-40"]
    assert rows[-1][2] == "closing" and rows[-1][-1] == "110"

    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    r = run(["ledger", "statement", "ben", "--cooperative", "petite", "--format", "json",
             "--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1))], url)
    data = json.loads(r.stdout)
    assert data["closing_balance"] == 40 and data["lines"][0]["counterparty"] == "Ana"

    r = run(["ledger", "figures", "--cooperative", "petite", "--json"], url)
    figs = json.loads(r.stdout)
    assert figs["total_minutes"] == 150 and figs["per_activity"][0]["activity"] == "sowing"
    r = run(["ledger", "figures", "--cooperative", "petite"], url)
    assert r.returncode == 0 and "total: 2 h 30" in r.stdout  # hours and minutes, not decimal hours

    for bad, words in ((["ledger", "statement", "nobody", "--cooperative", "petite"], "No member"),
                       (["ledger", "statement", "ana", "--from", "hier"], "not a date"),
                       (["ledger", "statement", "ana", "--format", "xml"], "csv or json")):
        r = run(bad, url)
        assert r.returncode != 0 and words in r.stderr, r.stderr


def test_check_exits_non_zero_on_a_breach(fresh_database):
    url = fresh_database()
    _small_ledger(url)
    engine = make_engine(url=url)
    with engine.begin() as conn:  # a cached balance drifts (accounts are not immutable)
        conn.execute(text("UPDATE ledger_accounts SET balance = balance + 5 WHERE member_id ="
                          " (SELECT id FROM members WHERE username = 'ben')"))
    engine.dispose()
    r = run(["ledger", "check"], url)
    assert r.returncode == 1
    assert "breach" in r.stderr and "balances sum to 5" in r.stderr
    assert "cached balance 45 but its postings sum to 40" in r.stderr
