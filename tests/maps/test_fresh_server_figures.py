"""A server just started serves the figures table as it finds it and computes them in the background
(on 100,000 parcels the soil sums take tens of seconds, which the first visitor must not wait for);
the CLI and the tests compute them when asked, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from commons_map.publish import figures


@pytest.fixture(autouse=True)
def _fresh_figures():
    figures.clear_cache()
    yield
    figures.clear_cache()  # also ends serve_held_at_start


def _held(db) -> dict[int, str]:
    return dict(db.execute(text("SELECT cooperative_id, digest FROM publish_figures_digests")).all())


def test_a_fresh_server_serves_the_table_and_computes_in_the_background(db, monkeypatch):
    first = figures.sync(db)  # computed now and written (as a server did before this one started)
    # A cooperative whose figures did not change keeps the time they were first written (earlier
    # tests may have written them minutes ago): make them all "computed just now".
    db.execute(text("UPDATE publish_figures_digests SET computed_at = now()"))
    held = _held(db)
    assert held and first[1:] == tuple(sorted(held.items()))
    figures.clear_cache()  # a new process: nothing computed in memory
    figures.serve_held_at_start()
    computed: list[int] = []
    later: list[int] = []
    monkeypatch.setattr(figures, "_compute_as", lambda _s, coop: computed.append(coop))
    monkeypatch.setattr(figures, "_refresh_later", lambda _s, key: later.append(key[1]))

    # figures computed less than CACHE_SECONDS ago by any process: served as they are
    assert figures.sync(db) == first and computed == [] and later == []

    # older: still served at once, and computed again in the background, once per cooperative
    db.execute(text("UPDATE publish_figures_digests SET computed_at = computed_at - interval '1 day'"))
    assert figures.sync(db) == first and computed == []
    assert sorted(later) == sorted(held)
    assert _held(db) == held  # nothing rewritten meanwhile


def test_without_figures_in_the_table_even_a_fresh_server_computes_them(db, monkeypatch):
    db.execute(text("DELETE FROM publish_figures_digests"))
    figures.serve_held_at_start()
    later: list[int] = []
    monkeypatch.setattr(figures, "_refresh_later", lambda _s, key: later.append(key[1]))
    stamp = figures.sync(db)
    assert later == [] and _held(db) and stamp[1:] == tuple(sorted(_held(db).items()))


def test_after_clear_cache_figures_are_computed_when_asked(db, monkeypatch):
    figures.sync(db)
    figures.serve_held_at_start()
    figures.clear_cache()  # the tests' and the importers' way: the next reader computes them
    computed: list[int] = []
    real = figures._compute_as
    monkeypatch.setattr(figures, "_compute_as", lambda s, coop: computed.append(coop) or real(s, coop))
    figures.sync(db)
    assert sorted(computed) == sorted(_held(db))


def test_figures_asked_together_are_computed_once(monkeypatch):
    """The first tiles of a map come together: one computation, the others wait for it."""
    import threading
    import time

    calls: list[int] = []

    def slow(_session, coop: int):
        calls.append(coop)
        time.sleep(0.3)
        return figures.Computed.of({"1": {"status": "stable"}})

    monkeypatch.setattr(figures, "_compute_as", slow)
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(figures._computed(None, ("bench-db", 7), True)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7] and len(got) == 6 and len({id(g) for g in got}) == 1
