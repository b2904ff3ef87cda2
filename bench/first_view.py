"""Benchmark: the first view of ``/maps/public`` on 100,000 parcels, on a cold server, in Chromium.

Makes its own database (``cm_bench_first_view``: the demo cooperative and ``--parcels`` synthetic
parcels, as bench/ogc.py does), starts a fresh ``commons-map serve`` on it (nothing computed,
nothing cached), then opens the public map in Debian's headless Chromium (Playwright) and times,
from the navigation's start, until the restored land has drawn (Leaflet.VectorGrid's ``load``:
every tile in view fetched and drawn) and until gardens and points are on the map too: on a
fresh database the first time (the figures never computed), then on a restarted server whose
figures table is older than five minutes (computed again in the background meanwhile), then in a
new browser context (no browser cache) on the now warm server, at once and ``--settle`` seconds
later (the figures computed again in the background meanwhile, holding the GIL of the server). The OpenStreetMap base
map is blocked (this machine may have no way out; the page must not wait for it anyway).

    .venv/bin/python bench/first_view.py                  # --parcels N, --keep, --reuse
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from commons_map.db import drop_database, make_engine  # noqa: E402
from commons_map.settings import get_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DRAWN = "window.commonsMap && window.commonsMap.loaded.tiles"
ALL = (DRAWN + " && window.commonsMap.loaded.garden !== undefined"
       " && window.commonsMap.loaded.points !== undefined")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).parent / "commons-map"
    env = dict(os.environ, COMMONS_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2).read()
            return proc, base
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start")


def view(browser, url: str) -> dict[str, float]:  # noqa: ANN001
    """Open the map in a new context; seconds until the land is drawn, and until every layer is."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="fr-FR")
    page = ctx.new_page()
    page.route("**/*tile.openstreetmap.org/**", lambda r: r.abort())
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    slow: list[tuple[float, str]] = []
    page.on("requestfinished", lambda r: slow.append((r.timing["responseEnd"] - r.timing["requestStart"], r.url)))
    t = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(DRAWN, timeout=180_000, polling=50)
    drawn = time.perf_counter() - t
    page.wait_for_function(ALL, timeout=180_000, polling=50)
    every = time.perf_counter() - t
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd / 1000")
    tiles = sum("/tiles/" in u for u in requests)
    zooms = sorted({int(u.split("/tiles/")[1].split("/")[1]) for u in requests if "/tiles/" in u})
    for ms, u in sorted(slow, reverse=True)[:4]:
        print(f"   slowest: {ms:.0f} ms {u.split('127.0.0.1')[-1][:90]}")
    print(f"   tile zooms: {zooms}")
    errors = page.evaluate("window.commonsMap.errors")
    ctx.close()
    return {"html": nav, "drawn": drawn, "all": every, "tiles": tiles, "errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    ap.add_argument("--database", default="cm_bench_first_view")
    ap.add_argument("--forget-figures", action="store_true", help="empty the figures table first (--reuse)")
    ap.add_argument("--settle", type=int, default=90, help="seconds before the last view")
    args = ap.parse_args()
    url = make_url(get_settings().sync_url).set(database=args.database).render_as_string(hide_password=False)
    if not args.reuse:
        sys.path.insert(0, str(ROOT / "bench"))
        from ogc import setup

        setup(url, args.parcels)
    from playwright.sync_api import sync_playwright

    engine = make_engine(url=url)
    with engine.begin() as conn:
        if args.forget_figures:
            conn.execute(text("DELETE FROM publish_figures"))
            conn.execute(text("DELETE FROM publish_figures_digests"))
        held = conn.scalar(text("SELECT count(*) FROM publish_figures_digests"))
    proc = None
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            print(f"{args.parcels} parcels; OpenStreetMap blocked; one run on a shared 2-core machine\n")
            print("| view | page HTML (s) | restored land drawn (s) | every layer (s) | tile requests | errors |")
            print("| --- | --- | --- | --- | --- | --- |")
            runs = [("cold server, figures never computed (first view after the import)", True),
                    ("cold server (restarted), figures table older than 5 minutes", True),
                    ("warm server, new browser context", False),
                    (f"warm server {args.settle} s later (figures recomputed meanwhile), new context", False)]
            if held:
                runs = runs[1:]
            for name, restart in runs:
                if "later" in name:
                    time.sleep(args.settle)
                if restart:
                    if proc is not None:
                        proc.terminate()
                        proc.wait(timeout=30)
                    with engine.begin() as conn:  # as after a night: computed again in the background
                        conn.execute(text("UPDATE publish_figures_digests"
                                          " SET computed_at = computed_at - interval '1 day'"))
                    proc, base = start_server(url)
                r = view(browser, base + "/maps/public")
                print(f"| {name} | {r['html']:.2f} | {r['drawn']:.2f} | {r['all']:.2f} | {r['tiles']:.0f}"
                      f" | {r['errors']:.0f} |", flush=True)
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        engine.dispose()
        if not args.keep and not args.reuse:
            drop_database(url)


if __name__ == "__main__":
    main()
