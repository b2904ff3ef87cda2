"""Public reads on a real streaming replica (``pg_basebackup -R``), and back to the primary when it
is down or behind.

Which server answered is told by the data itself: with the replica's replay paused, a commons
written on the primary is missing on the replica, so a public read that does not find it was
served by the replica, and one that finds it by the primary. Every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from commons_map.db import make_engine
from tests.faults.conftest import BIN, SERVER_SECRET, wait_for

pytestmark = pytest.mark.timeout(400)

MAX_LAG = 4.0  # seconds; the servers check the replica every CHECK seconds
CHECK = 0.3


def add_public_parcel(primary, name: str) -> int:  # noqa: ANN001
    """A public parcel written (and committed) on the primary; its id."""
    with primary.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO commons (cooperative_id, kind_code, name, geom, visibility, state)"
                " SELECT (SELECT id FROM cooperatives ORDER BY id LIMIT 1), 'land', :name,"
                " ST_MakeEnvelope(5.18, 44.70, 5.1804, 44.7003, 4326), 'public', 'restoring'"
                " RETURNING id"
            ),
            {"name": name},
        ).scalar_one()


def bearer(primary, username: str) -> dict[str, str]:  # noqa: ANN001
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from commons_map.people.auth import issue_token
    from commons_map.people.models import Member
    from commons_map.settings import Settings

    with Session(primary) as s:
        member = s.scalars(select(Member).where(Member.username == username)).one()
        return {"Authorization": f"Bearer {issue_token(member, Settings(secret_key=SERVER_SECRET))}"}


def test_public_reads_go_to_the_replica_and_back_to_the_primary_when_it_lags_or_stops(
    cluster, replica, server_factory
):
    subprocess.run([str(BIN / "commons-map"), "demo", "load"], env=dict(os.environ, COMMONS_DATABASE_URL=cluster.url),
                   check=True, capture_output=True, timeout=600)
    primary = make_engine(url=cluster.url, pool_size=2)
    standby = create_engine(replica.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)  # it restarts
    with standby.connect() as conn:
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True

    server = server_factory(
        cluster.url,
        COMMONS_DATABASE_REPLICA_URL=replica.url,
        COMMONS_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG),
        COMMONS_REPLICA_CHECK_SECONDS=str(CHECK),
    )
    server.start()
    http = httpx.Client(base_url=server.url, timeout=30)
    coordinator = bearer(primary, "camille")

    def replica_state() -> str:
        return http.get("/health").json()["replica"]["state"]

    def public(commons_id: int) -> int:
        return http.get(f"/ogc/collections/restored_land/items/{commons_id}?f=json").status_code

    def replay(paused: bool) -> None:
        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()"))

    try:
        assert wait_for("the replica in use", lambda: replica_state() == "replica", timeout=60, interval=0.1)
        caught_up = add_public_parcel(primary, "avant la pause")
        wait_for("the replica to replay it", lambda: public(caught_up) == 200, timeout=60, interval=0.1)
        # The figures table the public queries join is written on the primary (asked by the reads on
        # the read-only replica), and reaches the replica by replication.
        def digests(engine) -> int:  # noqa: ANN001
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM publish_figures_digests")).scalar_one()

        wait_for("the figures written on the primary", lambda: digests(primary) > 0, timeout=60, interval=0.1)
        wait_for("the figures replicated", lambda: digests(standby) == digests(primary), timeout=60, interval=0.1)

        # (1) Replay paused, a parcel written on the primary: the public read does not see it,
        # so the replica served it (it is behind by less than the limit).
        replay(paused=True)
        first = add_public_parcel(primary, "pendant la pause")
        written_at = time.monotonic()
        assert public(first) == 404
        tile = http.get("/tiles/restored_land/14/8428/5970.mvt")
        assert tile.status_code in (200, 204)
        # (5) Members' reads and writes take the primary, replica or not: the coordinator reads the
        # parcel the replica lacks, writes a new one and reads it back at once.
        assert http.get(f"/api/v1/commons/{first}", headers=coordinator).status_code == 200
        made = http.post("/api/v1/commons", headers=coordinator, json={
            "kind": "garden", "name": "Jardin écrit pendant la pause", "visibility": "public",
            "geometry": {"type": "Polygon", "coordinates": [[[5.181, 44.701], [5.1813, 44.701], [5.1813, 44.7012],
                                                             [5.181, 44.7012], [5.181, 44.701]]]}})
        assert made.status_code == 201, made.text
        assert http.get(f"/api/v1/commons/{made.json()['id']}", headers=coordinator).status_code == 200
        assert time.monotonic() - written_at < MAX_LAG, "the machine was too slow for the check above"

        # (3) Behind by more than the limit: the primary serves the public reads, which see it.
        wait_for("the replica seen lagging", lambda: replica_state() == "lagging", timeout=MAX_LAG * 10, interval=0.1)
        assert public(first) == 200
        health = http.get("/health").json()["replica"]
        assert health["public_reads"] == "primary" and health["lag_seconds"] >= MAX_LAG

        # (4) Replay resumed: back to the replica. Shown by pausing again: a new parcel is missing.
        replay(paused=False)
        wait_for("the replica in use again", lambda: replica_state() == "replica", timeout=60, interval=0.1)
        assert public(first) == 200  # the replica replayed it
        replay(paused=True)
        second = add_public_parcel(primary, "seconde pause")
        assert public(second) == 404
        replay(paused=False)
        wait_for("the replica to replay the second", lambda: public(second) == 200, timeout=60, interval=0.1)

        # (2) The replica stopped: every public read still answers, from the primary.
        replica.stop()
        codes: Counter[int] = Counter()
        for _ in range(30):
            codes[public(second)] += 1
            codes[http.get("/ogc/collections/restored_land/items?limit=5").status_code] += 1
            codes[http.get("/maps/public").status_code] += 1
        assert codes == Counter({200: 90}), codes
        assert replica_state() == "unreachable"
        third = add_public_parcel(primary, "réplique arrêtée")
        assert public(third) == 200

        # And back when it returns: it catches up from the primary's WAL, then serves again (shown
        # as above: replay paused, a new parcel is missing from the public read).
        replica.start()
        wait_for("the replica in use after its restart", lambda: replica_state() == "replica", timeout=60, interval=0.1)
        wait_for("the replica to replay the third", lambda: public(third) == 200, timeout=60, interval=0.1)
        replay(paused=True)
        fourth = add_public_parcel(primary, "après le retour")
        assert public(fourth) == 404
        replay(paused=False)
    finally:
        http.close()
        primary.dispose()
        standby.dispose()
