"""`commons-map governance close-due`, run as a cron job would: due proposals close once, the rest wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon

from commons_map.db import make_engine, session_scope
from commons_map.geo import to_ewkt
from commons_map.governance import service
from commons_map.governance.models import Proposal
from commons_map.governance.schemas import PositionIn, ProposalIn
from commons_map.people.models import Cooperative, Member

CLI = [str(Path(sys.executable).parent / "commons-map")]


def run(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url, COMMONS_LOCALE="en")
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=300)


def test_close_due_closes_each_due_proposal_once(fresh_database):
    url = fresh_database()
    engine = make_engine(url=url)
    past = datetime.now(UTC) - timedelta(days=2)
    with session_scope(engine) as s:
        coop = Cooperative(slug="cli", name="Coopérative", territory=to_ewkt(MultiPolygon([Polygon(
            [(5.1, 44.6), (5.3, 44.6), (5.3, 44.8), (5.1, 44.6)])])))
        s.add(coop)
        s.flush()
        ana, ben = (Member(cooperative_id=coop.id, username=u, display_name=u, password_hash="-") for u in "ab")
        s.add_all([ana, ben])
        s.flush()
        due = service.create_proposal(s, actor=ana, now=past, data=ProposalIn(
            title="Due", text="t", closes_at=past + timedelta(days=1)))
        service.take_position(s, actor=ben, proposal_id=due.id, data=PositionIn(choice="consent"),
                              now=past + timedelta(hours=1))
        later = service.create_proposal(s, actor=ana, data=ProposalIn(
            title="Later", text="t", closes_at=datetime.now(UTC) + timedelta(days=1)))
        ids = due.id, later.id
    first = run(["governance", "close-due", "--json"], url)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [x["id"] for x in lines] == [ids[0]] and lines[0]["outcome"]["passed"] is True
    assert "1 closed" in first.stderr
    second = run(["governance", "close-due"], url)
    assert second.returncode == 0 and second.stdout == "" and "0 closed" in second.stderr
    with session_scope(engine) as s:
        assert s.get(Proposal, ids[0]).state == "closed" and s.get(Proposal, ids[1]).state == "open"
    engine.dispose()
