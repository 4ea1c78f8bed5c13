"""Caching patterns against the real Redis and the real SQLite shop database."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid

import pytest

from helpers import redis_client
from helpers.runtime.topologies.nodes import wait_for
from helpers.topics import caching, dataset


@pytest.fixture(scope="module")
def r():
    client = redis_client()
    yield client
    caching.clear(client)


@pytest.fixture(scope="module")
def db():
    shop = dataset.open_shop("test-caching")
    yield shop
    shop.close()


@pytest.fixture
def key():
    return f"{caching.PREFIX}:test:{uuid.uuid4().hex[:8]}"


def test_ttl_with_jitter_stays_in_range():
    rng = random.Random(1)
    values = [caching.ttl_with_jitter(100, 0.2, rng) for _ in range(500)]
    assert all(80 <= v <= 120 for v in values)
    assert max(values) - min(values) > 30  # really spread
    assert caching.ttl_with_jitter(100, 0) == 100
    for bad in ((0, 0.1), (10, 1.5), (10, -0.1)):
        with pytest.raises(ValueError):
            caching.ttl_with_jitter(*bad)


def test_cache_aside_miss_then_hit(r, db, key):
    calls = []

    def loader():
        calls.append(1)
        return {"a": 1}

    assert caching.cache_aside(r, key, loader, ttl=60) == ({"a": 1}, False)
    assert caching.cache_aside(r, key, loader, ttl=60) == ({"a": 1}, True)
    assert len(calls) == 1 and 55_000 < r.pttl(key) <= 60_000
    assert caching.cache_aside(r, key + ":none", lambda: None) == (None, False)
    assert r.exists(key + ":none") == 0  # "not found" is not cached


def test_get_product_page_counts_one_query(r, db):
    pid = db.product_ids(limit=3)[2]
    r.delete(caching.page_key(pid))
    db.reset_counts()
    first = caching.get_product_page(r, db, pid)
    second = caching.get_product_page(r, db, pid)
    assert first == second == db.product_page(pid)
    assert db.queries == 2  # one load + the comparison above; the second read was a hit


def test_invalidation_and_write_through(r, db):
    pid = db.product_ids(limit=5)[4]
    r.delete(caching.page_key(pid))
    old = caching.get_product_page(r, db, pid)["price_cents"]
    db.update_price(pid, old + 1)  # the database changes behind the cache's back
    assert caching.get_product_page(r, db, pid)["price_cents"] == old  # stale
    caching.update_price_invalidate(r, db, pid, old + 2)
    assert r.exists(caching.page_key(pid)) == 0
    assert caching.get_product_page(r, db, pid)["price_cents"] == old + 2
    page = caching.update_price_write_through(r, db, pid, old + 3, ttl=60)
    assert page["price_cents"] == old + 3
    db.reset_counts()
    assert caching.get_product_page(r, db, pid)["price_cents"] == old + 3 and db.queries == 0


def test_write_behind_coalesces_and_drains(r, db):
    queue = f"{caching.PREFIX}:test:wb:{uuid.uuid4().hex[:6]}"
    wb = caching.WriteBehind(r, db, queue=queue, interval=0.02)
    ids = db.product_ids(limit=3)
    db.reset_counts()
    for i in range(30):
        wb.write_price(ids[i % 3], 1000 + i)
    assert wb.pending() == 30 and db.writes == 0
    assert wb.read_price(ids[2]) == 1029  # the cache already has it
    assert db.price(ids[2]) != 1029  # the database does not, yet
    assert wb.flush_once() == 30
    assert db.writes == 1 and wb.rows_written == 3  # 30 updates, 3 rows, one transaction
    assert [db.price(i) for i in ids] == [1027, 1028, 1029]
    wb.start()
    for i in range(10):
        wb.write_price(ids[0], 2000 + i)
    assert wb.wait_drained(10)
    wb.stop()
    assert not wb.running and db.price(ids[0]) == 2009
    assert len(wb.lags_ms) == 40 and min(wb.lags_ms) >= 0
    r.delete(queue, *[wb.price_key(i) for i in ids])


def test_write_behind_keeps_the_writes_and_logs_a_flush_the_database_refuses(r, caplog):
    """A flush that fails (here: a read-only database handle) leaves the writes queued, the flusher
    running, and the database's reason in the log, instead of passing in silence."""
    ro = dataset.open_pristine()
    queue = f"{caching.PREFIX}:test:wb:{uuid.uuid4().hex[:6]}"
    wb = caching.WriteBehind(r, ro, queue=queue, interval=0.02)
    pid = ro.product_ids(limit=1)[0]
    try:
        with caplog.at_level(logging.WARNING, logger="helpers.topics.caching"):
            wb.write_price(pid, 4321)
            wb.start()
            wait_for(lambda: [m for m in caplog.messages if "write-behind flush failed" in m], 10,
                     "the failed flush in the log")
            assert wb.running and wb.pending() == 1
        assert any("read-only" in m for m in caplog.messages)
        assert ro.price(pid) != 4321
    finally:
        wb.stop(drain=False)
        r.delete(queue, wb.price_key(pid))
        ro.close()


def test_single_flight_lets_one_client_load(r, db):
    hot = db.bestsellers(5)[4]
    result = caching.stampede_once(r, db, hot, 12, "lock")
    assert result.db_queries == 1 and result.errors == 0 and result.consistent
    unprotected = caching.stampede_once(r, db, hot, 12, "none")
    assert unprotected.db_queries >= 2 and unprotected.consistent
    assert "database queries" in str(unprotected)


def test_single_flight_gives_up_waiting_on_a_stuck_winner(r, key):
    r.set(f"{key}:lock", "someone-else", px=5000)  # a winner that never finishes
    value, hit = caching.single_flight(r, key, lambda: {"v": 1}, ttl=10, poll_ms=1, wait_ms=30)
    assert value == {"v": 1} and hit is False
    r.delete(f"{key}:lock")


def test_xfetch_refreshes_early_and_only_once(r, key):
    loads = []

    def loader():
        loads.append(1)
        time.sleep(0.02)  # the recompute time XFetch remembers (delta)
        return {"n": len(loads)}

    assert caching.xfetch(r, key, loader, ttl=5) == ({"n": 1}, False)  # cold: loads once
    entry = json.loads(r.get(key))
    assert set(entry) == {"value", "delta"} and entry["delta"] >= 0
    never = random.Random(0)
    never.random = lambda: 1.0  # -ln(1) = 0: never volunteers while time is left
    assert caching.xfetch(r, key, loader, ttl=5, rng=never) == ({"n": 1}, True)
    always = random.Random(0)
    always.random = lambda: 1e-300  # -ln(tiny) is huge: volunteers now
    r.set(f"{key}:lock", "busy", px=2000)
    assert caching.xfetch(r, key, loader, ttl=5, rng=always) == ({"n": 1}, True)  # someone else refreshes
    r.delete(f"{key}:lock")
    assert caching.xfetch(r, key, loader, ttl=5, rng=always) == ({"n": 2}, False)
    assert len(loads) == 2


def test_getter_rejects_unknown_strategy(r, db):
    with pytest.raises(ValueError, match="Unknown strategy"):
        caching.getter("magic", r, db, 1)


def test_stampede_once_with_a_learner_function(r, db):
    pid = db.product_ids(limit=2)[1]

    def mine(r_, db_, product_id):
        return caching.get_product_page(r_, db_, product_id)

    result = caching.stampede_once(r, db, pid, 4, mine)
    assert result.strategy == "mine" and result.consistent and result.db_queries >= 1


def test_hot_key_run_counts_reads_and_queries(r, db):
    hot = db.bestsellers(5)[4]
    res = caching.hot_key_run(r, db, hot, clients=3, seconds=0.4, ttl=0.15, strategy="lock")
    assert res.reads > 0 and res.db_queries >= 1 and res.max_concurrent_queries == 1
    assert 0 < res.hit_ratio <= 1 and res.percentiles()["n"] == res.reads


def test_jitter_spreads_reloads(r, db):
    flat = caching.ttl_jitter_run(r, db, ttl_ms=150, jitter=0.0, keys=60, seconds=0.5)
    spread = caching.ttl_jitter_run(r, db, ttl_ms=150, jitter=0.6, keys=60, seconds=0.5)
    assert flat.misses > 0 and spread.misses > 0
    assert flat.peak >= 30  # most keys expire in the same bucket
    assert 0 < spread.hit_ratio < 1
    assert not list(r.scan_iter(match=f"{caching.PREFIX}:jitter:*"))  # cleaned up


def test_widgets_build_and_update_headless(r, db):
    pytest.importorskip("ipywidgets")
    w = caching.jitter_widget(r, db, keys=30, seconds=0.3)
    run = w.update()
    assert run.reads > 0 and w.ui is not None
    s = caching.stampede_widget(r, db, db.bestsellers(5)[4])
    s.controls["clients"].value = 4  # a change re-runs the experiment
    assert s.last["lock"].db_queries == 1
