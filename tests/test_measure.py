"""Percentiles, timers and the concurrent load runner (no speed is asserted here)."""

from __future__ import annotations

import threading
import time

import pytest

from helpers import measure


def test_percentile_nearest_rank():
    samples = list(range(1, 101))  # 1..100
    assert measure.percentile(samples, 50) == 50
    assert measure.percentile(samples, 95) == 95
    assert measure.percentile(samples, 99) == 99
    assert measure.percentile(samples, 100) == 100
    assert measure.percentile([7.0], 99) == 7.0
    assert measure.percentile([3, 1, 2], 50) == 2  # unsorted input


def test_percentiles_summary_keys():
    out = measure.percentiles([1, 2, 3, 4], ps=(50, 99.9))
    assert out["p50"] == 2 and out["p99_9"] == 4
    assert out["min"] == 1 and out["max"] == 4 and out["mean"] == 2.5 and out["n"] == 4
    assert set(measure.percentiles([1.0])) >= {"p50", "p95", "p99"}


@pytest.mark.parametrize("bad", [[], ()])
def test_percentiles_of_nothing_is_an_error(bad):
    with pytest.raises(ValueError, match="measure something"):
        measure.percentiles(bad)


def test_percentile_bounds():
    with pytest.raises(ValueError):
        measure.percentile([1], 0)
    with pytest.raises(ValueError):
        measure.percentile([1], 101)


def test_timed_counts_calls_and_returns_ms():
    calls = []
    out = measure.timed(lambda: calls.append(1), 5, warmup=2)
    assert len(out) == 5 and len(calls) == 7
    assert all(x >= 0 for x in out)
    slow = measure.timed(lambda: time.sleep(0.002), 2, warmup=0)
    assert min(slow) >= 1.5  # milliseconds, not seconds
    with pytest.raises(ValueError):
        measure.timed(lambda: None, 0)


def test_speedup_accepts_samples_or_summaries():
    assert measure.speedup([10, 10, 10], [2, 2, 2]) == pytest.approx(5)
    assert measure.speedup({"p50": 8.0}, {"p50": 2.0}) == pytest.approx(4)


def test_stopwatch():
    with measure.Stopwatch() as sw:
        time.sleep(0.001)
    assert sw.seconds > 0 and sw.ms == pytest.approx(sw.seconds * 1000)


def test_run_concurrently_releases_all_clients_together():
    seen: set[int] = set()
    inside = []
    peak = [0]
    lock = threading.Lock()

    def fn(i: int) -> int:
        with lock:
            seen.add(i)
            inside.append(i)
            peak[0] = max(peak[0], len(inside))
        time.sleep(0.05)
        with lock:
            inside.remove(i)
        if i == 3:
            raise RuntimeError("boom")
        return i * 2

    res = measure.run_concurrently(fn, clients=8, calls_per_client=2)
    assert seen == set(range(8))
    assert res.calls == 16 and len(res.errors) == 2 and len(res.latencies_ms) == 14
    assert sorted(set(res.results)) == [0, 2, 4, 8, 10, 12, 14]
    assert peak[0] >= 4  # they really overlapped
    assert res.throughput > 0 and res.percentiles()["n"] == 14
    with pytest.raises(ValueError):
        measure.run_concurrently(fn, clients=0)
