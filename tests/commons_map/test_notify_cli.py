"""`commons-map notify remind` from the command line, twice: the second run tells nobody again."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from commons_map.db import session_scope
from commons_map.governance.models import Proposal
from commons_map.governance.schemas import ProposalIn
from commons_map.governance.service import create_proposal
from commons_map.notify.models import Notification
from commons_map.notify.service import text_of
from tests.commons_map.notify_helpers import clean_fixture, member, notify_engine_fixture  # noqa: F401 (fixtures)

CLI = str(Path(sys.executable).parent / "commons-map")


def test_remind_twice_tells_once(clean):
    amelie = member(clean, "amelie")
    with session_scope(clean) as s:
        s.query(Proposal).delete()
        p = create_proposal(s, actor=amelie, data=ProposalIn(
            title="Ruches au verger", text="Deux ruches au fond du verger.",
            closes_at=datetime.now(UTC) + timedelta(hours=12)))
        pid = p.id
        s.query(Notification).delete()  # the opening notices: only the reminders are counted below
    env = dict(os.environ, COMMONS_DATABASE_URL=clean.url.render_as_string(hide_password=False), COMMONS_LOCALE="en")
    first = subprocess.run([CLI, "notify", "remind"], env=env, capture_output=True, text=True, timeout=120)
    second = subprocess.run([CLI, "notify", "remind"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    # john and nomail may take part and have not; amelie proposed it
    assert first.stdout.strip() == ("2 notification(s): 0 return reminder(s), 0 overdue, 2 proposal(s) closing, "
                                    "0 agreement review(s)")
    assert second.stdout.startswith("0 notification(s)")
    with session_scope(clean) as s:
        told = s.scalars(select(Notification).where(Notification.dedupe == f"proposal:{pid}:closing")
                         .order_by(Notification.member_id)).all()
        assert [n.member_id for n in told] == [member(clean, "john").id, member(clean, "nomail").id]
        assert text_of(told[0], "en").startswith("The proposal « Ruches au verger » closes on ")
        s.query(Proposal).delete()
