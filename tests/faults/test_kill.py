"""SIGKILL in the middle of the work: a file import, a batch of field forms, a burst of payments.

Each test runs the real thing (`commons-map ingest commons` or `commons-map serve`, in its own
process group) over a real PostGIS database holding the demo cooperative, kills it with SIGKILL
once progress is seen (statements running in the database, answers received), restarts the
server, and checks what is stored: nothing half-done, nothing twice, everything that was
answered with a success is there, and retrying everything after the restart adds only what was
missing. Every wait is bounded; none relies on a sleep alone.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from commons_map.db import make_engine, session_scope
from commons_map.people.auth import issue_token
from commons_map.settings import Settings
from tests.faults.conftest import BIN, SERVER_SECRET, wait_for
from tests.ingest.conftest import xml

pytestmark = pytest.mark.timeout(420)

ROWS = 30_000  # polygons in the GeoPackage: the import takes several seconds
SUBMISSIONS = 240  # field forms in the batch
PAYMENTS = 300  # payments in the burst
THREADS = 8
KILL_AFTER = 40  # successes seen before the kill


def with_app_name(url: str, name: str) -> str:
    """The database URL with an application_name, so pg_stat_activity shows whose backend is whose."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def backends(engine, app_name: str) -> list[tuple[int, str, str]]:
    """(pid, state, query) of the backends a process opened under ``app_name``."""
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT pid, coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = :a"
                ),
                {"a": app_name},
            )
        ]


def gone(engine, app_name: str) -> bool:
    """True once PostgreSQL has ended every backend of a killed process (its transactions rolled back)."""
    return not backends(engine, app_name)


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory) -> Path:
    """A GeoPackage of ROWS small land parcels on a grid near Saillans (the bench's shape)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    path = tmp_path_factory.mktemp("kill") / "parcelles.gpkg"
    side = math.ceil(math.sqrt(ROWS))
    i = np.arange(ROWS)
    rng = np.random.default_rng(11)
    x0, y0 = 5.02 + (i % side) * 0.0005, 44.60 + (i // side) * 0.00036
    geoms = shapely.box(
        x0,
        y0,
        x0 + 0.0005 * rng.uniform(0.6, 0.9, ROWS),
        y0 + 0.00036 * rng.uniform(0.6, 0.9, ROWS),
    )
    gdf = gpd.GeoDataFrame(
        {
            "uuid": [f"p-{k}" for k in i],
            "nom": [f"Parcelle {k}" for k in i],
            "type": ["land"] * ROWS,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    gdf.to_file(path, layer="parcelles", driver="GPKG", engine="pyogrio")
    return path


@pytest.fixture
def engine(demo_database):
    eng = make_engine(url=demo_database, pool_size=2, max_overflow=2)
    yield eng
    eng.dispose()


def imported(engine, prefix: str, source: str) -> tuple[int, int, int]:
    """(commons rows, distinct external ids, history rows) of one import."""
    with engine.connect() as c:
        n, distinct = c.execute(
            text(
                "SELECT count(*), count(DISTINCT external_id) FROM commons"
                " WHERE external_id LIKE :p"
            ),
            {"p": prefix + "%"},
        ).one()
        hist = c.execute(
            text(
                "SELECT count(*) FROM commons_history h JOIN commons c ON c.id = h.commons_id"
                " WHERE c.external_id LIKE :p AND h.changes->'source'->>1 = :s"
            ),
            {"p": prefix + "%", "s": source},
        ).scalar_one()
    return n, distinct, hist


def kill_point(engine, app_name: str, alive: Callable[[], bool], *, last: bool = False) -> str:
    """Wait until the import's transaction is writing into the register; answer what it runs then.

    ``last``: wait further, for its last statement (the history rows: every commons row is then
    written, uncommitted). Should a poll miss that statement, the first poll that finds the
    transaction past the register write, still open, answers instead.
    """
    seen_write = False

    def ready() -> str | None:
        nonlocal seen_write
        if not alive():
            raise AssertionError(
                "the import finished before it could be killed: make the file bigger"
            )
        for _pid, state, query in backends(engine, app_name):
            if state == "active" and "INSERT INTO commons_history" in query:
                return query
            if state == "active" and "INSERT INTO commons (" in query:
                if not last:
                    return query
                seen_write = True
            elif seen_write and state.startswith("idle in transaction"):
                return f"({state}) {query}"
        return None

    return wait_for("the import to write into the register", ready, timeout=180, interval=0.01)


# --- (a) a large geodata import --------------------------------------------------------------------


def test_cli_import_killed_while_writing_leaves_nothing_and_reruns_whole(
    demo_database, engine, gpkg
):
    prefix, app_name = "kill-cli:", f"cm-kill-import-{uuid.uuid4().hex[:6]}"
    args = [
        str(BIN / "commons-map"),
        "ingest",
        "commons",
        str(gpkg),
        "--map",
        "name=nom",
        "--map",
        "kind=type",
        "--external-id",
        "uuid",
        "--id-prefix",
        prefix,
    ]
    env = dict(os.environ, COMMONS_DATABASE_URL=with_app_name(demo_database, app_name))
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        running = kill_point(engine, app_name, lambda: proc.poll() is None)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    print(f"import killed while running: {running.strip()[:60]!r}")
    assert "INSERT INTO commons" in running
    wait_for(
        "PostgreSQL to end the killed import's backend",
        lambda: gone(engine, app_name),
        timeout=180,
        interval=0.1,
    )

    # Nothing of the killed import: no commons, no history rows.
    assert imported(engine, prefix, "import:parcelles.gpkg") == (0, 0, 0)

    rerun = subprocess.run(
        args,
        env=dict(os.environ, COMMONS_DATABASE_URL=demo_database),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{ROWS}" in rerun.stderr
    # Every row exactly once, each with its one "created" history row.
    assert imported(engine, prefix, "import:parcelles.gpkg") == (ROWS, ROWS, ROWS)


def test_server_killed_during_an_upload_import_leaves_nothing(
    demo_database, engine, gpkg, server_factory
):
    prefix, app_name = "kill-upload:", f"cm-kill-upload-{uuid.uuid4().hex[:6]}"
    server = server_factory(with_app_name(demo_database, app_name))
    server.start()
    headers = bearer(engine, "camille")
    fields = {"name": "nom", "kind_column": "type", "external_id": "uuid", "id_prefix": prefix}
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            with gpkg.open("rb") as f:
                outcome["response"] = httpx.post(
                    server.url + "/api/v1/ingest/commons",
                    headers=headers,
                    data=fields,
                    files={"file": ("parcelles.gpkg", f, "application/geopackage+sqlite3")},
                    timeout=300,
                )
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=upload)
    sender.start()
    try:
        running = kill_point(engine, app_name, sender.is_alive, last=True)
    finally:
        server.kill()
        sender.join(60)
    assert "INSERT INTO commons" in running
    assert "response" not in outcome, "the upload was answered before the kill"
    print(f"upload killed while running: {running.strip()[:60]!r}")
    wait_for(
        "PostgreSQL to end the killed server's backends",
        lambda: gone(engine, app_name),
        timeout=180,
        interval=0.1,
    )
    assert imported(engine, prefix, "import:parcelles.gpkg") == (0, 0, 0)

    server.start()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    with gpkg.open("rb") as f:
        again = httpx.post(
            server.url + "/api/v1/ingest/commons",
            headers=headers,
            data=fields,
            files={"file": ("parcelles.gpkg", f, "application/geopackage+sqlite3")},
            timeout=300,
        )
    assert again.status_code == 201, again.text[:2000]
    assert again.json()["counts"]["create"] == ROWS
    assert imported(engine, prefix, "import:parcelles.gpkg") == (ROWS, ROWS, ROWS)


# --- helpers for the HTTP bursts ----------------------------------------------------------------------


def bearer(engine, username: str) -> dict[str, str]:
    """Bearer headers for a demo member, signed with the fault servers' secret."""
    from sqlalchemy import select

    from commons_map.people.models import Member

    settings = Settings(secret_key=SERVER_SECRET)
    with session_scope(engine) as s:
        member = s.scalars(select(Member).where(Member.username == username)).one()
        return {"Authorization": f"Bearer {issue_token(member, settings)}"}


def burst(
    url: str,
    jobs: list[Any],
    send: Callable[[httpx.Client, Any], Any],
    *,
    threads: int = THREADS,
    kill: Callable[[], None] | None = None,
    kill_after: int = 0,
    success: Callable[[Any], bool] = lambda r: True,
) -> dict[Any, Any]:
    """Send every job from ``threads`` threads; with ``kill``, call it once ``kill_after`` successes are seen.

    Answers {job key: outcome} where the outcome is what ``send`` returned, or the exception.
    After the kill the threads stop taking new jobs (jobs not sent have no outcome).
    """
    todo: queue.Queue = queue.Queue()
    for job in jobs:
        todo.put(job)
    outcomes: dict[Any, Any] = {}
    lock = threading.Lock()
    successes = threading.Semaphore(0)
    killed = threading.Event()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not killed.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    out = send(http, job)
                except httpx.HTTPError as exc:
                    out = exc
                with lock:
                    outcomes[job["key"]] = out
                if not isinstance(out, Exception) and success(out):
                    successes.release()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    if kill is not None:
        deadline = time.monotonic() + 180
        for _ in range(kill_after):
            assert successes.acquire(timeout=max(0.1, deadline - time.monotonic())), (
                "no progress before the kill"
            )
        assert not todo.empty(), "every job was done before the kill: send more"
        kill()
        killed.set()
    for w in workers:
        w.join(120)
        assert not w.is_alive()
    return outcomes


# --- (b) a batch of field-form submissions over OpenRosa ------------------------------------------


def field_tokens(engine, usernames: list[str]) -> dict[str, str]:
    from sqlalchemy import select

    from commons_map.fieldforms.service import issue_token as field_token
    from commons_map.people.models import Member

    with session_scope(engine) as s:
        out = {}
        for u in usernames:
            member = s.scalars(select(Member).where(Member.username == u)).one()
            out[u] = field_token(s, actor=None, member=member, label="kill test", system=True)[0]
        return out


def test_server_killed_during_a_batch_of_submissions(
    demo_database, engine, server_factory, tmp_path
):
    attachments = tmp_path / "attachments"
    server = server_factory(demo_database, COMMONS_ATTACHMENTS_DIR=str(attachments))
    server.start()
    members = ["lucas", "chloe", "oksana", "samir"]
    tokens = field_tokens(engine, members)
    with engine.connect() as c:
        garden = c.execute(
            text("SELECT id FROM commons WHERE external_id = 'demo:garden-0'")
        ).scalar_one()
        activity = c.execute(
            text("SELECT code FROM work_activities WHERE active ORDER BY position, code LIMIT 1")
        ).scalar_one()
    jobs = []
    for i in range(SUBMISSIONS):
        iid = f"uuid:{uuid.uuid4()}"
        # Spread over 80 days: a member logs at most 3 x 4.5 h a day (a day holds 24 hours at most).
        day = (date.today() - timedelta(days=i % 80)).isoformat()
        if i % 3 == 2:
            body, photo = xml("harvest.xml", commons=f"c{garden}", iid=iid, date=day), None
        else:
            photo = (f"photo-{i}.jpg", b"\xff\xd8\xff\xe0" + iid.encode() + os.urandom(2048))
            body = xml(
                "worklog.xml",
                commons=f"c{garden}",
                hours=f"{1 + i % 4}.5",
                activity=activity,
                iid=iid,
                date=day,
                photo=photo[0],
            )
        jobs.append(
            {
                "key": iid,
                "member": members[i % len(members)],
                "body": body,
                "photo": photo,
                "form": "commons_harvest" if photo is None else "commons_worklog",
            }
        )

    def send(http: httpx.Client, job: dict) -> httpx.Response:
        parts = [("xml_submission_file", ("xml_submission_file.xml", job["body"], "text/xml"))]
        if job["photo"]:
            parts.append((job["photo"][0], (job["photo"][0], job["photo"][1], "image/jpeg")))
        return http.post(
            f"/openrosa/key/{tokens[job['member']]}/submission",
            files=parts,
            headers={"X-OpenRosa-Version": "1.0"},
        )

    first = burst(
        server.url,
        jobs,
        send,
        kill=server.kill,
        kill_after=KILL_AFTER,
        success=lambda r: r.status_code == 201,
    )
    answered = {
        k for k, r in first.items() if isinstance(r, httpx.Response) and r.status_code == 201
    }
    unexpected = {
        k: r.status_code
        for k, r in first.items()
        if isinstance(r, httpx.Response) and r.status_code != 201
    }
    assert not unexpected, unexpected
    assert len(answered) >= KILL_AFTER
    ids = [j["key"] for j in jobs]

    def stored() -> dict[str, dict]:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT s.instance_id, s.form_id, s.status, s.records,"
                    " count(*) OVER (PARTITION BY s.form_id, s.instance_id)"
                    " FROM field_submissions s WHERE s.instance_id = ANY(:ids)"
                ),
                {"ids": ids},
            ).all()
        assert all(r[4] == 1 for r in rows), "a submission is stored twice"
        return {r[0]: {"form": r[1], "status": r[2], "records": r[3]} for r in rows}

    def check_records(subs: dict[str, dict]) -> None:
        """Each stored submission is processed, with its records, and each record exists once."""
        with engine.connect() as c:
            logs = dict(
                c.execute(
                    text(
                        "SELECT source_ref, count(*) FROM work_logs WHERE source_ref = ANY(:ids)"
                        " GROUP BY source_ref"
                    ),
                    {"ids": ids},
                ).all()
            )
            harvests = dict(
                c.execute(
                    text(
                        "SELECT split_part(source_ref, '/', 1), count(*) FROM harvests"
                        " WHERE split_part(source_ref, '/', 1) = ANY(:ids) GROUP BY 1"
                    ),
                    {"ids": ids},
                ).all()
            )
            atts = dict(
                c.execute(
                    text(
                        "SELECT s.instance_id, a.sha256 FROM field_submission_attachments a"
                        " JOIN field_submissions s ON s.id = a.submission_id WHERE s.instance_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                ).all()
            )
        jobs_by_id = {j["key"]: j for j in jobs}
        for iid, sub in subs.items():
            assert sub["status"] == "processed", (iid, sub)
            if sub["form"] == "commons_worklog":
                assert logs.get(iid) == 1 and sub["records"]["kind"] == "work_log", (iid, sub)
                data = jobs_by_id[iid]["photo"][1]
                assert atts.get(iid) == hashlib.sha256(data).hexdigest(), iid
                on_disk = attachments / atts[iid][:2] / atts[iid]
                assert on_disk.read_bytes() == data, iid
            else:
                assert harvests.get(iid) == 2 and len(sub["records"]["ids"]) == 2, (iid, sub)
        # No record without its submission: nothing half-written by a killed request.
        assert set(logs) <= set(subs) and set(harvests) <= set(subs)

    server.start()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    before = stored()
    assert answered <= set(before), (
        f"{len(answered - set(before))} submissions answered 201 are missing"
    )
    check_records(before)
    print(
        f"submissions: {len(first)} sent before the kill, {len(answered)} answered 201,"
        f" {len(before)} stored ({len(set(before) - answered)} stored but never answered)"
    )

    # Collect sends again everything it is not sure of: here, all of them.
    second = burst(server.url, jobs, send)
    assert {k: r.status_code for k, r in second.items() if r.status_code != 201} == {}
    for iid in before:
        assert "Already received" in second[iid].text, second[iid].text
    after = stored()
    assert set(after) == set(ids)
    check_records(after)
    with engine.connect() as c:
        # Nothing new for those stored before the restart (the resend added only what was missing).
        n_rows = c.execute(
            text("SELECT count(*) FROM field_submissions WHERE instance_id = ANY(:ids)"),
            {"ids": ids},
        ).scalar_one()
    assert n_rows == SUBMISSIONS


# --- (c) a burst of ledger payments with idempotency keys ------------------------------------------


def ledger_check(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "commons-map"), "ledger", "check"],
        env=dict(os.environ, COMMONS_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_server_killed_during_a_burst_of_payments(demo_database, engine, server_factory):
    server = server_factory(demo_database, workers=2)
    server.start()
    with engine.connect() as c:
        members = [
            r[0]
            for r in c.execute(
                text(
                    "SELECT m.username FROM members m JOIN cooperatives co ON co.id = m.cooperative_id"
                    " WHERE co.slug = (SELECT slug FROM cooperatives ORDER BY id LIMIT 1)"
                    " AND m.is_active ORDER BY m.username"
                )
            )
        ]
        balances_before = dict(c.execute(text("SELECT id, balance FROM ledger_accounts")).all())
    assert len(members) >= 10
    headers = {u: bearer(engine, u) for u in members}
    run = uuid.uuid4().hex[:8]
    jobs = []
    for i in range(PAYMENTS):
        payer = members[i % len(members)]
        payee = members[(i * 7 + 3) % len(members)]
        if payee == payer:
            payee = members[(i + 1) % len(members)]
        jobs.append(
            {"key": f"kill-pay-{run}-{i}", "payer": payer, "payee": payee, "minutes": 1 + i % 9}
        )

    def send(http: httpx.Client, job: dict) -> httpx.Response:
        return http.post(
            "/api/v1/ledger/payments",
            headers=headers[job["payer"]],
            json={
                "payee": job["payee"],
                "minutes": job["minutes"],
                "idempotency_key": job["key"],
                "reason": f"Coup de main n°{job['key'][-4:]}",
            },
        )

    first = burst(
        server.url,
        jobs,
        send,
        kill=server.kill,
        kill_after=KILL_AFTER,
        success=lambda r: r.status_code == 201,
    )
    paid = {
        k: r.json()["id"]
        for k, r in first.items()
        if isinstance(r, httpx.Response) and r.status_code == 201
    }
    refused = {
        k: r.status_code
        for k, r in first.items()
        if isinstance(r, httpx.Response) and r.status_code != 201
    }
    # A refusal is a balance limit (409) and nothing else.
    assert set(refused.values()) <= {409}, refused
    assert len(paid) >= KILL_AFTER

    keys = [j["key"] for j in jobs]

    def transfers() -> dict[str, tuple[int, int]]:
        """{key: (transfer id, minutes)} of this burst's transfers, each key at most once."""
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT t.idempotency_key, t.id, max(p.amount), count(*) OVER (PARTITION BY t.idempotency_key)"
                    " FROM ledger_transfers t JOIN ledger_postings p ON p.transfer_id = t.id"
                    " WHERE t.idempotency_key = ANY(:k) GROUP BY t.idempotency_key, t.id"
                ),
                {"k": keys},
            ).all()
        assert all(r[3] == 1 for r in rows), "a key paid twice"
        return {r[0]: (r[1], r[2]) for r in rows}

    server.start()
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    check = ledger_check(demo_database)
    assert check.returncode == 0, check.stdout + check.stderr
    before = transfers()
    # Every payment answered 201 is there, as the transfer that was answered.
    assert {k: before.get(k, (None,))[0] for k in paid} == paid
    assert not set(before) & set(refused)
    print(
        f"payments: {len(first)} sent before the kill, {len(paid)} answered 201, {len(refused)} refused,"
        f" {len(before)} stored ({len(set(before) - set(paid))} stored but never answered)"
    )

    # The client retries every request with its key: nothing is paid twice.
    second = burst(server.url, jobs, send)
    for key, r in second.items():
        if key in before:
            assert r.status_code == 200 and r.json()["id"] == before[key][0], (
                key,
                r.status_code,
                r.text,
            )
        else:
            assert r.status_code in (201, 409), (key, r.status_code, r.text)
    after = transfers()
    assert set(after) == set(before) | {k for k, r in second.items() if r.status_code == 201}
    check = ledger_check(demo_database)
    assert check.returncode == 0, check.stdout + check.stderr

    # Each account moved by exactly this burst's transfers, each counted once.
    by_key = {j["key"]: j for j in jobs}
    expected = dict(balances_before)
    with engine.connect() as c:
        account_of = dict(
            c.execute(
                text(
                    "SELECT m.username, a.id FROM ledger_accounts a JOIN members m"
                    " ON m.id = a.member_id"
                )
            ).all()
        )
        balances_after = dict(c.execute(text("SELECT id, balance FROM ledger_accounts")).all())
    for key, (_tid, minutes) in after.items():
        job = by_key[key]
        assert minutes == job["minutes"]
        expected[account_of[job["payer"]]] = expected.get(account_of[job["payer"]], 0) - minutes
        expected[account_of[job["payee"]]] = expected.get(account_of[job["payee"]], 0) + minutes
    moved = {a: b for a, b in balances_after.items() if b != balances_before.get(a, 0)}
    assert {a: expected.get(a, 0) for a in moved} == moved
    assert {a: balances_after.get(a, 0) for a, b in expected.items()} == expected
