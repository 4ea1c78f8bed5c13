"""Timers, percentiles and small load generators that every lab measures with.

Latency is reported in milliseconds throughout (what a person reads on a dashboard), and
percentiles use the "nearest rank" method: p99 of 100 samples is a sample that was really
observed, never an interpolated value no request ever saw.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PS: tuple[float, ...] = (50, 95, 99)


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (0 < p <= 100) of `samples`."""
    if not samples:
        raise ValueError("percentile() of no samples: measure something first.")
    if not 0 < p <= 100:
        raise ValueError(f"p must be in (0, 100], got {p}.")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


def _label(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def percentiles(samples: Iterable[float], ps: Sequence[float] = DEFAULT_PS) -> dict[str, float]:
    """Summary of a latency sample: {'p50', 'p95', 'p99', 'min', 'max', 'mean', 'n'} (same unit as input).

    `ps` chooses other percentiles; p99.9 becomes the key 'p99_9'.
    """
    data = [float(s) for s in samples]
    if not data:
        raise ValueError("percentiles() of no samples: measure something first.")
    out = {_label(p): percentile(data, p) for p in ps}
    out.update(min=min(data), max=max(data), mean=sum(data) / len(data), n=len(data))
    return out


def timed(fn: Callable[[], Any], n: int, warmup: int = 1) -> list[float]:
    """Call `fn()` n times (after `warmup` untimed calls); return each call's latency in ms."""
    if n < 1:
        raise ValueError("timed() needs n >= 1 calls.")
    for _ in range(warmup):
        fn()
    out: list[float] = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        fn()
        out.append((clock() - start) * 1000.0)
    return out


def speedup(slow: Sequence[float] | dict[str, float], fast: Sequence[float] | dict[str, float],
            p: str = "p50") -> float:
    """How many times faster `fast` is than `slow` at percentile `p` (samples or percentiles() dicts)."""
    s = slow if isinstance(slow, dict) else percentiles(slow)
    f = fast if isinstance(fast, dict) else percentiles(fast)
    return s[p] / max(f[p], 1e-9)


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.ms` (or `sw.seconds`)."""

    def __enter__(self) -> Stopwatch:
        self.seconds = 0.0
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start

    @property
    def ms(self) -> float:
        return self.seconds * 1000.0


@dataclass
class LoadResult:
    """What `run_concurrently` observed: per-call latencies (ms), errors, wall time."""

    latencies_ms: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    @property
    def throughput(self) -> float:
        """Completed calls per second over the whole run."""
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds else 0.0

    def percentiles(self, ps: Sequence[float] = DEFAULT_PS) -> dict[str, float]:
        return percentiles(self.latencies_ms, ps)


def run_concurrently(fn: Callable[[int], Any], clients: int, calls_per_client: int = 1,
                     timeout: float = 60.0) -> LoadResult:
    """Run `fn(client_index)` from `clients` threads that all start at the same instant.

    A barrier releases every thread together, which is what makes a cache stampede real: the
    clients really do arrive at the same moment. Exceptions are collected, not raised, so a
    demonstration can count failures.
    """
    if clients < 1:
        raise ValueError("run_concurrently() needs at least one client.")
    out = LoadResult()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            return
        for _ in range(calls_per_client):
            start = time.perf_counter()
            try:
                value = fn(i)
            except Exception as exc:  # whatever fn raised is counted and returned to the caller, not raised
                log.debug("run_concurrently: client %d failed: %s", i, exc, exc_info=True)
                with lock:
                    out.errors.append(exc)
                continue
            elapsed = (time.perf_counter() - start) * 1000.0
            with lock:
                out.latencies_ms.append(elapsed)
                out.results.append(value)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    out.wall_seconds = time.perf_counter() - started
    return out
