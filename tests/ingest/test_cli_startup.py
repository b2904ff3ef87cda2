"""`commons-map GROUP ...` imports only that group's commands (issue 18 item 14: start-up time)."""

from __future__ import annotations

import os
import subprocess
import sys

from commons_map.cli import GROUPS, _groups_to_load


def test_one_group_when_the_command_names_it():
    assert _groups_to_load(["/venv/bin/commons-map", "ingest", "commons", "f.gpkg"]) == ["ingest"]
    assert _groups_to_load(["/x/commons_map/cli.py", "soil", "report"]) == ["soil"]
    # help, the module's own commands, an unknown word, or another program (tests): every group
    for argv in (["commons-map"], ["commons-map", "--help"], ["commons-map", "db", "upgrade"],
                 ["commons-map", "nonsense"], ["/usr/bin/pytest", "ingest"]):
        assert _groups_to_load(argv) == list(GROUPS)


def test_the_ingest_command_does_not_import_the_other_groups():
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "commons_map.cli", "ingest", "--help"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "commons" in run.stdout  # the ingest group's commands are listed
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time")}
    for module in ("commons_map.governance.cli", "commons_map.reservations.cli", "commons_map.exchange.cli",
                   "maps.cli", "commons_map.soil.cli"):
        assert module not in imported, module
    everything = subprocess.run([sys.executable, "-m", "commons_map.cli", "--help"], env=env, capture_output=True,
                                text=True, timeout=120)
    assert everything.returncode == 0
    for group in GROUPS:
        assert group in everything.stdout, group
