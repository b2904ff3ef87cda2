"""Search speed of the exchange network: "category and words within 2 km, nearest first".

    .venv/bin/python bench/exchange.py --posts 100000          # the issue's size
    .venv/bin/python bench/exchange.py --posts 20000 --seconds 10   # small, on a shared machine

Creates its own database (dropped at the end), migrates it, writes ``--posts`` posts around
Saillans (random categories, titles from a small French vocabulary, points within ~12 km, a third
public), then measures the same search twice, with 8 connections each:

1. through the API: ``GET /api/v1/exchange/posts?category=reparer&q=velo&near=...&distance=2000``
   served by ONE ``commons-map serve`` process (as deployed: the app's role, row-level security
   on), loaded by ``wrk`` (Debian package ``wrk``) with a Lua script that signs in with a bearer
   token and prints the 95th percentile;
2. in the database alone: the very SQL the service ran for that request (captured from SQLAlchemy
   and rendered with its parameters), in the transaction the app runs it in (logged in as the
   app's role, the acting member and cooperative set first), run by ``pgbench -c 8``; p95 from
   pgbench's transaction log.

Prints requests per second and p95 side by side, and their ratio. The API side also does what a
request needs beyond that SQL (authentication, JSON, HTTP): that is the point.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.wrk import run_wrk  # noqa: E402
from commons_map.db import drop_database, ensure_database, make_engine, session_scope  # noqa: E402
from commons_map.settings import Settings, get_settings  # noqa: E402

ORIGIN = (5.1950, 44.6975)
SECRET = "bench-secret-not-for-production-0123456789"
WORDS = ["Réparation de vélos", "Réparation de vélo électrique", "Cours de cuisine", "Garde d'enfants",
         "Taille de haies", "Traduction de courriers", "Transport avec un âne", "Aide au déménagement",
         "Pain au levain", "Soutien scolaire", "Électricité et prises", "Couture et retouches"]
CATEGORIES = ["se_nourrir", "se_loger", "se_soigner", "s_entraider", "apprendre", "reparer", "se_deplacer",
              "garder", "jardiner", "bricoler", "accompagner"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(url: str, posts: int) -> tuple[int, int]:
    """A cooperative, a member, and ``posts`` posts; (cooperative id, member id)."""
    from shapely.geometry import MultiPolygon, Polygon

    from commons_map.geo import to_ewkt
    from commons_map.migrate import upgrade
    from commons_map.people.models import Cooperative, Member

    ensure_database(url)
    upgrade(url)
    engine = make_engine(url=url)
    with session_scope(engine) as s:
        coop = Cooperative(slug="bench", name="Bench", territory=to_ewkt(MultiPolygon([Polygon(
            [(5.0, 44.6), (5.4, 44.6), (5.4, 44.8), (5.0, 44.8), (5.0, 44.6)])])))
        s.add(coop)
        s.flush()
        authors = [Member(cooperative_id=coop.id, username=f"b{i}", display_name=f"Membre {i}", password_hash="-")
                   for i in range(50)]
        s.add_all(authors)
        s.flush()
        coop_id, member_id, first, last = coop.id, authors[0].id, authors[0].id, authors[-1].id
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(text("""
            INSERT INTO exchange_posts (cooperative_id, author_id, kind, title, description, category_code,
                                        minutes, geom, exact_place, visibility, expires_at, created_at)
            SELECT :coop, :first + (i % (:last - :first + 1)),
                   CASE WHEN random() < 0.5 THEN 'offer' ELSE 'need' END,
                   (CAST(:words AS text[]))[1 + floor(random() * 12)::int] || ' ' || i,
                   'Annonce de test ' || i, (CAST(:cats AS text[]))[1 + floor(random() * 11)::int],
                   30 + floor(random() * 180)::int,
                   CASE WHEN random() < 0.9 THEN ST_SetSRID(ST_MakePoint(:lon + (random() - 0.5) * 0.3,
                                                                         :lat + (random() - 0.5) * 0.2), 4326) END,
                   random() < 0.2, CASE WHEN i % 3 = 0 THEN 'public' ELSE 'members' END,
                   now() + interval '60 days', now() - random() * interval '50 days'
              FROM generate_series(1, :n) AS i
        """), {"coop": coop_id, "first": first, "last": last, "words": WORDS, "cats": CATEGORIES,
               "lon": ORIGIN[0], "lat": ORIGIN[1], "n": posts})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE exchange_posts"))
    print(f"wrote {posts} posts in {time.perf_counter() - t:.1f} s", flush=True)
    engine.dispose()
    return coop_id, member_id


def captured_sql(url: str, member_id: int, params: dict) -> tuple[str, int]:
    """The search's SQL as the service runs it for the member (logged in as the app's role, as the
    served app), with its parameters inlined; and how many rows it finds."""
    import psycopg

    from commons_map.exchange import service
    from commons_map.people.models import Member
    from commons_map.tenancy import act_for_member

    engine = make_engine(url=Settings(database_url=url).app_url)
    seen: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if "FROM exchange_posts" in statement:
            seen.append((statement, parameters))

    with session_scope(engine) as s:
        act_for_member(s, member_id)
        member = s.scalars(select(Member).where(Member.id == member_id)).one()
        result = service.search_posts(s, actor=member, category=params["category"], q=params["q"],
                                      near=service.Near(params["lon"], params["lat"], params["distance"]),
                                      limit=50)
    statement, parameters = seen[-1]
    raw = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    sql = psycopg.ClientCursor(raw).mogrify(statement, parameters)
    raw.close()
    engine.dispose()
    return sql, result["numberMatched"]




def run_pgbench(url: str, sql: str, seconds: int, connections: int, *, coop_id: int, member_id: int
                ) -> tuple[float, float]:
    """The SQL as the app runs it: logged in as the app's role, in a transaction that first sets the
    acting cooperative and member (commons_map.tenancy)."""
    u = make_url(Settings(database_url=url).app_url)
    work = Path(tempfile.mkdtemp(prefix="pgbench-exchange-"))
    (work / "query.sql").write_text(
        "BEGIN;\n"
        f"SELECT set_config('app.cooperative_id', '{coop_id}', true),"
        f" set_config('app.member_id', '{member_id}', true);\n"
        + " ".join(sql.split()).rstrip(";") + ";\nCOMMIT;\n")
    env = dict(os.environ, PGPASSWORD=u.password or "")
    out = subprocess.run(["pgbench", "-n", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
                          "-U", u.username or "postgres", "-c", str(connections), "-j", "2", "-T", str(seconds),
                          "-f", str(work / "query.sql"), "-l", "--log-prefix", str(work / "log"), u.database],
                         capture_output=True, text=True, env=env, cwd=work, check=True)
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    latencies = sorted(int(line.split()[2]) for f in work.glob("log*") for line in f.read_text().splitlines())
    p95 = latencies[int(0.95 * (len(latencies) - 1))] / 1000
    shutil.rmtree(work)
    return tps, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15, help="duration of each of the two runs")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    url = make_url(get_settings().sync_url).set(database=f"cm_bench_exchange_{os.getpid()}").render_as_string(
        hide_password=False)
    try:
        coop_id, member_id = setup(url, args.posts)
        params = {"category": "reparer", "q": "velo", "lon": ORIGIN[0], "lat": ORIGIN[1], "distance": 2000}
        sql, matched = captured_sql(url, member_id, params)
        print(f"the query finds {matched} posts (50 returned)", flush=True)
        from commons_map.people.auth import issue_token
        from commons_map.people.models import Member

        settings = Settings(database_url=url, secret_key=SECRET)
        engine = make_engine(url=url)
        with session_scope(engine) as s:
            token = issue_token(s.get(Member, member_id), settings)
        engine.dispose()
        port = free_port()
        env = dict(os.environ, COMMONS_DATABASE_URL=url, COMMONS_SECRET_KEY=SECRET, PYTHONPATH=str(ROOT))
        # one process, as `commons-map serve` runs by default (its access log to /dev/null)
        server = subprocess.Popen([sys.executable, "-m", "commons_map.cli", "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        api = (f"http://127.0.0.1:{port}/api/v1/exchange/posts?category=reparer&q=velo"
               f"&near={ORIGIN[0]},{ORIGIN[1]}&distance=2000&limit=50")
        try:
            r = None
            for _ in range(100):
                try:
                    r = httpx.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=5)
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            assert r is not None and r.status_code == 200, r
            assert r.json()["numberMatched"] == matched, "the API and the captured SQL disagree"
            base, path = api.split("/api/", 1)
            w = run_wrk(base, [f"/api/{path}"], seconds=args.seconds, connections=args.connections,
                        headers={"Authorization": f"Bearer {token}"}, timeout_s=10)
            if w.errors:
                raise RuntimeError(f"wrk saw {w.errors} failed requests")
            api_rps, api_p95 = w.rps, w.p95_ms
        finally:
            server.terminate()
            server.wait(timeout=30)
        db_rps, db_p95 = run_pgbench(url, sql, args.seconds, args.connections, coop_id=coop_id, member_id=member_id)
        print(f"\n{args.posts} posts, {args.connections} connections, {args.seconds} s each, "
              f"one `commons-map serve` process, {os.cpu_count()} CPUs (shared), load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"{'':32}{'req/s':>10}{'p95 ms':>10}")
        print(f"{'API (wrk)':32}{api_rps:>10.1f}{api_p95:>10.2f}")
        print(f"{'same SQL (pgbench, app role)':32}{db_rps:>10.1f}{db_p95:>10.2f}")
        print(f"{'ratio database / API':32}{db_rps / api_rps:>10.2f}{api_p95 / db_p95:>10.2f}")
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
