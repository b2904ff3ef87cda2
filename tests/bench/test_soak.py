"""bench/soak.py cannot rot: a short run end to end, and its checks can fail."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("bench_soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
def test_a_short_soak_runs_and_every_invariant_holds():
    # About a minute: own database with the demo, a server, 12 s of the mix at 5 requests/s.
    out = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--minutes",
            "0.2",
            "--rate",
            "5",
            "--workers",
            "1",
            "--parcels",
            "200",
            "--members",
            "8",
            "--quick-check",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = {
        m.group(1): [int(x) for x in m.groups()[1:5]]
        for m in re.finditer(
            r"^(map page|tiles|ogc items|submission|booking|payment)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s",
            out.stdout,
            re.M,
        )
    }
    assert set(table) == {"map page", "tiles", "ogc items", "submission", "booking", "payment"}, (
        out.stdout
    )
    assert all(
        requests > 0 and errors == 0 for requests, _refused, _replayed, errors in table.values()
    ), table
    assert sum(v[0] for v in table.values()) == 60  # 0.2 min x 5 requests/s, each sent
    oks = re.findall(r"^\s+OK\s+(.+?):", out.stdout, re.M)
    assert len(oks) == 5 and "FAIL" not in out.stdout, out.stdout
    assert out.stdout.rstrip().endswith("soak passed")


def test_the_checks_fail_when_an_answered_success_is_missing(fresh_database):
    soak = load_soak().Soak("http://127.0.0.1:9", fresh_database(), seed=1, cli_check=False)
    soak.booked = {987654: "lucas"}
    soak.submitted = {"uuid:never-stored": {}}
    soak.paid = {"never-paid": (123, "lucas", {})}
    checks = {name: ok for name, ok, _ in soak.invariants()}
    assert checks == {
        "ledger check": True,
        "reservation overlap (self-join)": True,
        "bookings answered 201 are stored": False,
        "submissions answered 201 stored once, processed": False,
        "payments answered 201 stored once": False,
    }
