"""`commons-map partners add/list/refresh/remove`, run as an operator would, against the loopback stub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, text

from commons_map.db import make_engine, session_scope
from commons_map.partners.models import Partner, PartnerLayer

CLI = [str(Path(sys.executable).parent / "commons-map")]


def run(args: list[str], url: str, locale: str = "en") -> subprocess.CompletedProcess:
    env = dict(os.environ, COMMONS_DATABASE_URL=url, COMMONS_LOCALE=locale, COMMONS_PARTNERS_TIMEOUT_SECONDS="2",
               COMMONS_PARTNERS_MAX_BYTES="262144")
    return subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=300)


def test_the_partners_commands(fresh_database, partner_stub):
    url = fresh_database()
    engine = make_engine(url=url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO cooperatives (slug, name, territory) VALUES ('cli', 'Coop',"
                          " ST_Multi(ST_MakeEnvelope(5.0, 44.6, 5.5, 44.9, 4326)))"))

    def counts() -> tuple[int, int]:
        with session_scope(engine) as s:
            return (s.scalar(select(func.count()).select_from(Partner)),
                    s.scalar(select(func.count()).select_from(PartnerLayer)))

    added = run(["partners", "add", partner_stub.url("/good/"), "--cooperative", "cli"], url)
    assert added.returncode == 0, added.stderr
    assert "Vergers du Crestois" in added.stdout and "vergers (4)" in added.stdout
    assert counts() == (1, 2)

    for path, words in (("/toprivate/", "10.1.2.3"), ("/oversize/", "262144 bytes"), ("/loop/", "in a loop")):
        bad = run(["partners", "add", partner_stub.url(path), "--cooperative", "cli"], url)
        assert bad.returncode == 1 and words in bad.stderr, bad.stderr
    fr = run(["partners", "add", partner_stub.url("/notogc/")], url, locale="fr")
    assert fr.returncode == 1 and "n'est pas la page d'accueil d'une OGC API" in fr.stderr
    assert counts() == (1, 2)

    listed = [json.loads(line) for line in run(["partners", "list", "--json"], url).stdout.splitlines()]
    assert [(p["name"], p["status"], p["licence"]) for p in listed] == [("Vergers du Crestois", "ok", "CC-BY-4.0")]

    partner_stub.broken.add("/good")
    try:
        refreshed = run(["partners", "refresh", "--max-age", "0"], url)
    finally:
        partner_stub.broken.discard("/good")
    assert refreshed.returncode == 0 and "0 ok, 1 unavailable" in refreshed.stdout
    line = run(["partners", "list"], url).stdout
    assert "unavailable: " in line and "HTTP status 503" in line and "vergers (4)" in line  # the copy stays
    assert "0 ok, 0 unavailable" in run(["partners", "refresh"], url).stdout  # not due yet

    pid = listed[0]["id"]
    missing = run(["partners", "remove", str(pid + 1000)], url)
    assert missing.returncode == 1 and f"no partner {pid + 1000}" in missing.stderr
    assert run(["partners", "remove", str(pid)], url).returncode == 0
    assert counts() == (0, 0)
    engine.dispose()
