"""`commons-map exchange settle-due`, run as the daily timer would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, text

from commons_map.db import make_engine, session_scope
from commons_map.exchange import service
from commons_map.exchange.models import Exchange
from commons_map.exchange.schemas import PostIn
from tests.commons_map.exchange_helpers import small_coop

CLI = [str(Path(sys.executable).parent / "commons-map")]


def test_settle_due_pays_what_waited_14_days(fresh_database):
    url = fresh_database()
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        _, p, r = small_coop(s, "petite")
        ids = []
        for i in range(3):
            post = service.create_post(s, actor=p, data=PostIn(kind="offer", title=f"S{i}", category="apprendre",
                                                               minutes=30))
            ex = service.reply(s, actor=r, post_id=post.id)
            service.accept(s, actor=p, exchange_id=ex.id)
            service.done(s, actor=p, exchange_id=ex.id)
            ids.append(ex.id)
        s.execute(text("UPDATE exchanges SET done_recorded_at = now() - interval '15 days' WHERE id IN (:a, :b)"),
                  {"a": ids[0], "b": ids[1]})
        service.dispute(s, actor=r, exchange_id=ids[1])
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    run = subprocess.run(CLI + ["exchange", "settle-due"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "paid 1 exchange(s)" in run.stdout
    with session_scope(engine) as s:
        paid = {e.id: e.transfer_id is not None for e in s.scalars(select(Exchange))}
    assert paid == {ids[0]: True, ids[1]: False, ids[2]: False}
    again = subprocess.run(CLI + ["exchange", "settle-due"], capture_output=True, text=True, env=env, timeout=120)
    assert "paid 0 exchange(s)" in again.stdout
    check = subprocess.run(CLI + ["ledger", "check"], capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    engine.dispose()
