"""The real `commons-map soil` commands over the committed test database."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "commons-map")


def run(url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url)
    return subprocess.run([CLI, "soil", *args], env=env, capture_output=True, text=True, timeout=300)


def test_report_timeline_and_charts_from_the_command_line(engine, database_url, tmp_path):
    r = run(database_url, "report", "--year", "2025", "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["year"] == 2025 and rep["food"]["total_kg"] > 0
    r = run(database_url, "report", "--year", "2025", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert list(csv.DictReader(io.StringIO(r.stdout)))[0]["section"] == "summary"
    r = run(database_url, "timeline", "demo:land-6", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert "tillage" in r.stdout and "bulk_density" in r.stdout
    r = run(database_url, "charts", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for name in ("soc.png", "yields.png", "exchange.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    r = run(database_url, "timeline", "demo:nowhere")
    assert r.returncode != 0 and "no parcel" in (r.stderr + r.stdout)
