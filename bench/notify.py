"""Delivery rate of the e-mail sender beside a bare smtplib loop, to the same local SMTP server.

    .venv/bin/python bench/notify.py                       # the issue's size: 10,000 notifications
    .venv/bin/python bench/notify.py --notifications 2000  # small, on a shared machine

Creates its own database (dropped at the end), migrates it, adds a cooperative of ``--members``
members (half French, half English) and writes ``--notifications`` notifications through
``notify()`` (one event to many recipients at a time), each queued for e-mail at once. An SMTP
server (aiosmtpd's ``Sink``, in a process of its own so it does not share our interpreter) listens
on loopback. Then, on the same messages:

1. **bare smtplib**: every message built beforehand (by the sender's own ``Composer``, the very
   bytes it sends), sent in one loop over one connection (``sendmail``): the transport alone, the
   ceiling;
2. **our sender**: ``send_pending`` from the pending outbox to the last ``sent``: claims with
   ``FOR UPDATE SKIP LOCKED``, builds each message in its recipient's language, sends it and
   records its state, batch after batch.

Prints both rates (messages per second), and our rate over the bare one (the goal: >= 0.5x).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.settings import Settings, get_settings  # noqa: E402

SECRET = "bench-secret-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_server(port: int) -> subprocess.Popen:
    """aiosmtpd's Sink (accepts and drops every message) on loopback, in its own process."""
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the SMTP server did not start")


def setup(url: str, *, members: int, notifications: int) -> None:
    """A cooperative, its members, and the pending notifications (each with an e-mail to send)."""
    from commons_map.migrate import upgrade
    from commons_map.notify.service import notify
    from commons_map.people.models import Cooperative, Member

    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="bench", name="Bench", timezone="Europe/Paris",
                           territory="SRID=4326;MULTIPOLYGON(((5 44,6 44,6 45,5 45,5 44)))")
        s.add(coop)
        s.flush()
        people = [Member(cooperative_id=coop.id, username=f"m{i:05d}", display_name=f"Membre {i}",
                         email=f"m{i:05d}@example.org", password_hash="x", locale="fr" if i % 2 else "en")
                  for i in range(members)]
        s.add_all(people)
        s.flush()
        ids = [m.id for m in people]
        made, event = 0, 0
        while made < notifications:
            take = ids[: min(len(ids), notifications - made)]
            event += 1
            made += len(notify(s, recipients=take, kind="reservation_approved", code="notify.reservation_approved",
                               params={"resource": f"Broyeur {event}", "starts_at": "2026-12-03T09:30:00+00:00"},
                               link=f"/app/reserve/{event}", dedupe=f"bench:{event}"))
    engine.dispose()


def settings_for(url: str, port: int) -> Settings:
    return Settings(environment="test", database_url=url, secret_key=SECRET, smtp_host="127.0.0.1",
                    smtp_port=port, smtp_from="Commons <noreply@commons.example>",
                    public_url="https://commons.example", smtp_timeout=30)


def bare(engine, settings: Settings) -> tuple[int, float]:  # noqa: ANN001
    """Every message built first (not timed), then sent in one smtplib loop over one connection."""
    from commons_map.notify.models import Delivery
    from commons_map.notify.sender import Composer

    with session_scope(engine) as s:
        deliveries = list(s.scalars(select(Delivery).order_by(Delivery.id)))
        composer = Composer(settings).load(s, deliveries)
        ready = [(d.address, composer.build(d)) for d in deliveries]
    sender = "noreply@commons.example"
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=30) as smtp:
        for address, data in ready:
            smtp.sendmail(sender, [address], data)
    return len(ready), time.perf_counter() - start


def ours(engine, settings: Settings, batch: int) -> tuple[int, float]:  # noqa: ANN001
    """send_pending from a pending outbox until every delivery is sent."""
    from commons_map.notify.sender import send_pending

    start = time.perf_counter()
    report = send_pending(engine, settings, batch=batch)
    elapsed = time.perf_counter() - start
    if report.errors:
        raise SystemExit(f"the sender failed: {report.errors[:3]}")
    return report.sent, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notifications", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--batch", type=int, default=200, help="deliveries our sender claims per transaction")
    ap.add_argument("--profile", action="store_true", help="print where our sender spends its time (cProfile)")
    args = ap.parse_args()

    url = make_url(get_settings().sync_url).set(
        database=f"cm_bench_notify_{os.getpid()}_{uuid.uuid4().hex[:6]}").render_as_string(hide_password=False)
    port = free_port()
    server = smtp_server(port)
    engine = None
    try:
        t = time.perf_counter()
        setup(url, members=args.members, notifications=args.notifications)
        print(f"setup: {args.notifications} notifications for {args.members} members in "
              f"{time.perf_counter() - t:.1f} s")
        engine = make_engine(url=url)
        settings = settings_for(url, port)

        n_bare, s_bare = bare(engine, settings)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        n_ours, s_ours = ours(engine, settings, args.batch)
        if args.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        with engine.connect() as c:
            sent = c.scalar(select(func.count()).select_from(text("deliveries")).where(text("state = 'sent'")))
        assert n_ours == n_bare == sent == args.notifications, (n_ours, n_bare, sent)

        r_bare, r_ours = n_bare / s_bare, n_ours / s_ours
        print(f"{'':24}{'messages':>10}{'seconds':>10}{'msg/s':>10}")
        print(f"{'bare smtplib loop':24}{n_bare:>10}{s_bare:>10.2f}{r_bare:>10.0f}")
        print(f"{'our sender (batch ' + str(args.batch) + ')':24}{n_ours:>10}{s_ours:>10.2f}{r_ours:>10.0f}")
        print(f"ratio ours / bare: {r_ours / r_bare:.2f}x (goal >= 0.5x)")
    finally:
        if engine is not None:
            engine.dispose()
        server.terminate()
        server.wait(timeout=10)
        drop_database(url)


if __name__ == "__main__":
    main()
