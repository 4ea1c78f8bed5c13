"""helpers.topics.analytics against a real Redis: generators, HLL vs set, rate limiters, geo, the live chart."""

from __future__ import annotations

import threading
import time

import pytest

from helpers import start
from helpers.runtime.state import LabError
from helpers.topics.analytics import (
    MADRID_PLACES,
    BucketTrace,
    FixedWindowLimiter,
    LiveDashboard,
    NaiveTokenBucket,
    SlidingWindowLimiter,
    TokenBucket,
    bucket_playground,
    bucket_trace,
    burst,
    clear_prefix,
    daily_activity,
    game_events,
    haversine_km,
    hll_vs_set,
    player_names,
    visitor_ids,
    wait_for_window_phase,
)

P = "test:analytics:"


@pytest.fixture()
def r():
    client = start("redis").client()
    clear_prefix(client, P)
    yield client
    clear_prefix(client, P)


def test_generators_are_deterministic_and_distinct():
    names = player_names(50)
    assert len(set(names)) == 50 and names == player_names(50)
    events = game_events(500, names)
    assert events == game_events(500, names) and all(p in names for p, _ in events)
    counts = {p: sum(1 for q, _ in events if q == p) for p in names}
    assert counts[names[0]] > counts[names[-1]]  # skewed: the first players play more
    ids = visitor_ids(1000)
    assert len(set(ids)) == 1000


def test_hll_error_is_small_and_memory_bounded(r):
    rows = hll_vs_set(r, P, [100, 5000, 20000])
    assert [row["exact_count"] for row in rows] == [100, 5000, 20000]
    assert all(row["error_pct"] < 2.5 for row in rows)
    assert rows[-1]["hll_bytes"] <= 16 * 1024 < rows[-1]["set_bytes"]
    assert rows[0]["hll_bytes"] < rows[-1]["hll_bytes"]  # sparse encoding while small


def test_fixed_window_allows_limit_per_window_and_expires(r):
    lim = FixedWindowLimiter(r, P + "fw:", limit=5, window_s=1)
    wait_for_window_phase(1, 0.05)
    assert burst(lim, "c", 12) == 5
    keys = list(r.scan_iter(P + "fw:*"))
    assert keys and all(0 < r.ttl(k) <= 2 for k in keys)
    wait_for_window_phase(1, 0.05)
    assert burst(lim, "c", 3) == 3


def test_sliding_window_counts_only_allowed_requests(r):
    lim = SlidingWindowLimiter(r, P + "sw:", limit=5, window_ms=300)
    assert burst(lim, "c", 12) == 5
    assert r.zcard(P + "sw:c") == 5  # refused requests were not logged
    time.sleep(0.35)
    assert burst(lim, "c", 2) == 2


def test_token_bucket_bursts_then_refills(r):
    bucket = TokenBucket(r, P + "tb:", capacity=10, refill_per_second=20)
    t0 = time.monotonic()
    allowed = burst(bucket, "c", 30)
    assert 10 <= allowed <= 10 + int(20 * (time.monotonic() - t0)) + 1
    time.sleep(0.25)
    t1 = time.monotonic()
    again = burst(bucket, "c", 30)
    assert 3 <= again <= 6 + int(20 * (time.monotonic() - t1)) + 1
    assert 0 < r.pttl(P + "tb:c") <= 1500
    with pytest.raises(LabError):
        TokenBucket(r, P, capacity=0, refill_per_second=1)


def test_lua_bucket_is_exact_under_concurrency(r):
    def hammer(bucket):
        total = []
        barrier = threading.Barrier(6)

        def client():
            barrier.wait()
            total.append(sum(bucket.allow("c") for _ in range(15)))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(total)

    assert hammer(TokenBucket(r, P + "lua:", capacity=20, refill_per_second=0.001)) == 20
    assert hammer(NaiveTokenBucket(r, P + "naive:", capacity=20, refill_per_second=0.001)) >= 20


def test_daily_activity_has_returning_users():
    days = daily_activity(5000, 3)
    assert len(days) == 3 and all(days)
    retained = len(days[0] & days[1]) / len(days[0])
    assert 0.5 < retained < 0.7


def test_geosearch_matches_haversine(r):
    key = P + "places"
    for name, lon, lat in MADRID_PLACES:
        r.geoadd(key, (lon, lat, name))
    sol = MADRID_PLACES[0]
    found = r.geosearch(key, longitude=sol[1], latitude=sol[2], radius=1.5, unit="km", withdist=True, sort="ASC")
    for name, dist in found:
        lon, lat = next((lo, la) for n, lo, la in MADRID_PLACES if n == name)
        assert abs(dist - haversine_km(sol[1], sol[2], lon, lat)) < 0.005
    expected = {n for n, lo, la in MADRID_PLACES if haversine_km(sol[1], sol[2], lo, la) <= 1.5}
    assert {n for n, _ in found} == expected


def test_live_dashboard_is_bounded_and_counts_everything(r):
    run = LiveDashboard(r, P + "live:", bucket_ms=100).run(seconds=0.6, frames=3, show=False)
    assert run.frames == 3 and run.produced > 0
    assert run.counted == run.produced
    assert abs(run.unique_visitors - run.true_visitors) <= max(3, 0.03 * run.true_visitors)
    assert not [t for t in threading.enumerate() if t.name == "live-producer"]


def test_bucket_trace_and_playground(r):
    trace = bucket_trace(r, P + "trace:", capacity=5, refill_per_second=10, seconds=0.3, rps=20)
    assert len(trace.allowed) == 15 + 6
    assert trace.allowed[:5] == [True] * 5 and not any(trace.allowed[5:15])  # the burst drains the bucket
    w = bucket_playground(r, P + "play:", seconds=0.2)
    run = w.update()  # what a headless run does once
    assert isinstance(run, BucketTrace) and run.n_allowed >= 10
