"""`commons-map reservations ...`, run as a person or a cron job would (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import icalendar
from sqlalchemy import select

from commons_map.register.models import Commons

CLI = [str(Path(sys.executable).parent / "commons-map"), "reservations"]


def run(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=300)


def test_calendar_availability_overdue(engine, database_url, db, tmp_path):
    kitchen = db.scalars(select(Commons).where(Commons.external_id == "demo:kitchen")).one()
    out = tmp_path / "cuisine.ics"
    r = run(["calendar", str(kitchen.id), "--out", str(out)], database_url)
    assert r.returncode == 0, r.stderr
    cal = icalendar.Calendar.from_ical(out.read_bytes())
    assert len(list(cal.walk("VEVENT"))) > 3
    r = run(["availability", str(kitchen.id), "--as", "lucas", "--days", "3"], database_url)
    assert r.returncode == 0, r.stderr
    assert "free from" in r.stdout
    r = run(["overdue"], database_url)
    assert r.returncode == 0, r.stderr


def test_bad_input_is_named(engine, database_url, db):
    kitchen = db.scalars(select(Commons).where(Commons.external_id == "demo:kitchen")).one()
    r = run(["availability", str(kitchen.id), "--as", "lucas", "--from", "2030-01-01T10:00"], database_url)
    assert r.returncode == 1 and "has no offset" in r.stderr
    r = run(["availability", str(kitchen.id), "--as", "nobody"], database_url)
    assert r.returncode == 1 and "no member 'nobody'" in r.stderr
    r = run(["availability", "999999", "--as", "lucas"], database_url)
    assert r.returncode == 1 and "No resource 999999" in r.stderr


def test_tick_on_an_empty_database(fresh_database):
    r = run(["tick"], fresh_database())
    assert r.returncode == 0, r.stderr
    assert "0 offer(s) made" in r.stdout
