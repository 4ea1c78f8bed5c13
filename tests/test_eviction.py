"""helpers.topics.eviction against a real Redis with a small maxmemory."""

from __future__ import annotations

import pytest

from helpers.runtime.services import start
from helpers.runtime.state import LabError
from helpers.topics import eviction as ev


@pytest.fixture(scope="module")
def r():
    svc = start("redis", name="test-eviction", config={"maxmemory": "2mb", "maxmemory-policy": "allkeys-lru"})
    client = svc.client()
    ev.configure(client, maxmemory="2mb")
    yield client
    client.flushdb()


def test_zipf_is_skewed_deterministic_and_shiftable():
    a = ev.zipf_requests(1000, 5000, s=1.0, seed=3)
    assert a == ev.zipf_requests(1000, 5000, s=1.0, seed=3)
    assert all(0 <= k < 1000 for k in a)
    assert a.count(0) > a.count(10) > a.count(500)  # rank 0 is the hottest
    shifted = ev.zipf_requests(1000, 100, seed=3, offset=1000)
    assert min(shifted) >= 1000
    assert 0.0 < ev.top_share(1000, 10) < ev.top_share(1000, 100) < 1.0


def test_parse_bytes_reads_redis_units():
    assert ev.parse_bytes("2mb") == 2 * 1024 * 1024
    assert ev.parse_bytes("100kb") == 102400
    assert ev.parse_bytes("1gb") == 1024**3
    assert ev.parse_bytes(42) == 42


def test_configure_rejects_unknown_policy(r):
    with pytest.raises(LabError, match="not an eviction policy"):
        ev.configure(r, policy="allkeys-fifo")


def test_lfu_beats_random_and_noeviction_refuses(r):
    reqs = ev.zipf_requests(50_000, 25_000, s=1.0, seed=1)
    res = ev.compare_policies(r, reqs, ["noeviction", "allkeys-lfu", "allkeys-random"], maxmemory="2mb", warmup=8_000)
    assert all(len(x.outcomes) == len(reqs) for x in res.values())
    assert res["allkeys-lfu"].ratio > res["allkeys-random"].ratio + 0.01
    assert res["allkeys-lfu"].evicted > 0 and res["allkeys-lfu"].refused == 0
    assert res["noeviction"].refused > 0 and res["noeviction"].evicted == 0
    assert "maxmemory" in res["noeviction"].errors[0]
    xs, ys = res["allkeys-lfu"].rolling(5_000)
    assert len(xs) == 5 and all(0 <= y <= 1 for y in ys)


def test_volatile_policies_keep_keys_without_ttl(r):
    assert ev.evict_one(r, "volatile-ttl", {"a": 600, "b": 60, "c": None}) == ["b"]
    assert ev.evict_one(r, "noeviction", {"a": 600, "b": 60}) == []
    r.flushdb()
    ev.configure(r, policy="volatile-lru")
    ev.fill(r, "perm:", 500)
    ev.fill(r, "tmp:", 8_000, ttl=600)
    assert ev.count(r, "perm:*") == 500
    assert ev.fill(r, "perm2:", 8_000).refused > 0  # nothing with a TTL left to evict


def test_fill_counts_refused_writes(r):
    r.flushdb()
    ev.configure(r, policy="noeviction")
    res = ev.fill(r, "x:", 10_000)
    assert res.refused > 0 and res.written + res.refused == 10_000
    assert "OutOfMemoryError" in res.first_error


def test_memory_per_key(r):
    ev.configure(r, maxmemory="64mb")
    try:
        rows = ev.memory_usage_by_size(r, [1, 100, 1000])
        assert [row["memory_usage"] for row in rows] == sorted(row["memory_usage"] for row in rows)
        assert rows[0]["memory_usage"] > 16  # the overhead: 24 B on Valkey 9 (key embedded in its object), ~50 on Redis 7.0
        assert 100 < ev.used_memory_per_key(r, n=2_000, value_size=100) < 400
        assert ev.count(r, "perkey:*") == 0  # cleaned up
    finally:
        ev.configure(r, maxmemory="2mb")


def test_explorer_widget_runs_headless(r):
    ex = ev.EvictionExplorer(r, n_keys=5_000, n_requests=3_000, warmup=1_000)
    res = ex.update()
    assert 0 <= res.ratio <= 1 and "hit ratio" in ex.out.value
