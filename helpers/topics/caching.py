"""Caching patterns in front of the shop database, and the experiments that measure them.

The patterns (cache-aside, write-through, write-behind, TTL jitter, stampede protection with a
lock or with early probabilistic refresh) are short functions a learner can read in one screen;
the experiments run them against the real Redis and the real SQLite database with real threads
and report what the database had to do.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from helpers import measure
from helpers.runtime.i18n import translator
from helpers.runtime.state import LabError
from helpers.topics.datastructures import unlink_matching
from helpers.topics.db import ShopDB

log = logging.getLogger(__name__)
_ = translator(__name__)

PREFIX = "lab03"
Loader = Callable[[], Any]


def page_key(product_id: int) -> str:
    """The cache key of a product page (the same one the lab's exercises use)."""
    return f"{PREFIX}:product:{int(product_id)}"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def clear(r: Any, pattern: str = f"{PREFIX}:*") -> int:
    """Delete every key matching `pattern` (SCAN, never KEYS: it would block a busy server)."""
    return unlink_matching(r, pattern)


# --- TTLs -------------------------------------------------------------------------------------

def ttl_with_jitter(base: float, jitter: float = 0.1, rng: random.Random | None = None) -> float:
    """`base` seconds spread uniformly by +-`jitter` (a fraction): keys loaded together expire apart."""
    if base <= 0:
        raise ValueError("A TTL must be positive.")
    if not 0 <= jitter < 1:
        raise ValueError("jitter is a fraction of the TTL, between 0 and 1 (e.g. 0.1 for +-10%).")
    u = (rng or random).uniform(-jitter, jitter)
    return base * (1 + u)


# --- cache-aside (lazy loading) ---------------------------------------------------------------

def cache_aside(r: Any, key: str, loader: Loader, ttl: float = 300, jitter: float = 0.0) -> tuple[Any, bool]:
    """Read the cache; on a miss load from the database and store with a TTL. Returns (value, hit)."""
    cached = r.get(key)
    if cached is not None:
        return json.loads(cached), True
    value = loader()
    if value is not None:  # never cache "not found" for the full TTL (see negative caching)
        r.set(key, dumps(value), px=max(1, int(ttl_with_jitter(ttl, jitter) * 1000)))
    return value, False


def get_product_page(r: Any, db: ShopDB, product_id: int, ttl: float = 300, jitter: float = 0.0) -> dict | None:
    """Cache-aside for the product page: the function the lab's first exercise asks for."""
    value, _hit = cache_aside(r, page_key(product_id), lambda: db.product_page(product_id), ttl, jitter)
    return value


# --- writes -------------------------------------------------------------------------------------

def update_price_invalidate(r: Any, db: ShopDB, product_id: int, price_cents: int) -> None:
    """Write to the database first, then delete the cached copy: the next read reloads it."""
    db.update_price(product_id, price_cents)
    r.delete(page_key(product_id))


def update_price_write_through(r: Any, db: ShopDB, product_id: int, price_cents: int, ttl: float = 300) -> dict:
    """Write-through: update the database and the cache in the same request (reads never miss)."""
    db.update_price(product_id, price_cents)
    page = db.product_page(product_id)
    r.set(page_key(product_id), dumps(page), px=int(ttl * 1000))
    return page


@dataclass
class WriteBehind:
    """Write-behind (write-back): the request updates Redis and queues the change; a background
    thread flushes the queue to the database in batches, coalescing repeated writes to one row.

    The queue is a Redis list. The flusher reads a batch with LRANGE, applies it in one database
    transaction, and only then removes it with LTRIM, so a crash of the flusher replays (at least
    once) rather than loses; updates are idempotent (SET price = x), so replaying is harmless.
    What it cannot survive is losing the Redis node before the flush: those writes are gone.
    """

    r: Any
    db: ShopDB
    queue: str = f"{PREFIX}:writebehind:queue"
    batch: int = 500
    interval: float = 0.1
    flushed_items: int = 0
    flushes: int = 0
    rows_written: int = 0
    lags_ms: list[float] = field(default_factory=list)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @staticmethod
    def price_key(product_id: int) -> str:
        return f"{PREFIX}:price:{int(product_id)}"

    def write_price(self, product_id: int, price_cents: int) -> None:
        """What the request does: cache and queue in one round trip; the database is not touched."""
        item = json.dumps({"id": int(product_id), "price": int(price_cents), "t": time.time()})
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.price_key(product_id), int(price_cents))
        pipe.rpush(self.queue, item)
        pipe.execute()

    def read_price(self, product_id: int) -> int | None:
        cached = self.r.get(self.price_key(product_id))
        return int(cached) if cached is not None else self.db.price(product_id)

    def pending(self) -> int:
        return int(self.r.llen(self.queue))

    def flush_once(self) -> int:
        """Apply up to `batch` queued writes in one transaction; returns how many items it consumed."""
        raw = self.r.lrange(self.queue, 0, self.batch - 1)
        if not raw:
            return 0
        latest: dict[int, int] = {}
        stamps = []
        for entry in raw:
            item = json.loads(entry)
            latest[item["id"]] = item["price"]  # last write wins: 50 updates of one row become one
            stamps.append(item["t"])
        self.db.execute_many(
            ("UPDATE products SET price_cents = ?, updated_at = datetime('now') WHERE id = ?", (price, pid))
            for pid, price in latest.items())
        self.r.ltrim(self.queue, len(raw), -1)
        now = time.time()
        self.lags_ms += [(now - t) * 1000 for t in stamps]
        self.flushed_items += len(raw)
        self.rows_written += len(latest)
        self.flushes += 1
        return len(raw)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.flush_once() == self.batch and not self._stop.is_set():
                    pass  # a full batch: more is waiting, flush again without pausing
            except (RedisError, sqlite3.Error, LabError) as exc:  # keep the flusher alive; the queue keeps the writes
                log.warning("write-behind flush failed, retrying in %.1f s: %s", self.interval, exc)
            self._stop.wait(self.interval)  # batching by time: what arrives meanwhile goes in one transaction

    def start(self) -> WriteBehind:
        if self._thread and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="write-behind-flusher", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop the flusher (after draining the queue by default)."""
        if drain:
            self.wait_drained(timeout)
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def wait_drained(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty (the database has caught up); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            if not self.running:
                self.flush_once()
            time.sleep(0.01)
        return self.pending() == 0


# --- stampede protection -------------------------------------------------------------------

UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def single_flight(r: Any, key: str, loader: Loader, ttl: float = 300, lock_ms: int = 5000,
                  poll_ms: float = 5, wait_ms: float = 5000, unwrap: bool = False) -> tuple[Any, bool]:
    """Cache-aside where only ONE client per key reloads on a miss; the others wait for its result.

    The lock is `SET lock:key token NX PX lock_ms`: NX makes it exclusive, PX frees it if the
    winner dies, and the token (checked in a Lua script) stops a slow winner from deleting a lock
    that already expired and was taken by someone else. Returns (value, hit). With unwrap=True
    the cached entries are {"value": ..., ...} envelopes (as xfetch stores them).
    """
    def out(raw: str) -> Any:
        data = json.loads(raw)
        return data["value"] if unwrap else data

    cached = r.get(key)
    if cached is not None:
        return out(cached), True
    lock, token = f"{key}:lock", uuid.uuid4().hex
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        if r.set(lock, token, nx=True, px=lock_ms):
            try:
                cached = r.get(key)  # someone may have filled it between our GET and our lock
                if cached is not None:
                    return out(cached), True
                value = loader()
                if (value.get("value") if unwrap else value) is not None:
                    r.set(key, dumps(value), px=int(ttl * 1000))
                return (value["value"] if unwrap else value), False
            finally:
                r.eval(UNLOCK, 1, lock, token)
        time.sleep(poll_ms / 1000)
        cached = r.get(key)
        if cached is not None:
            return out(cached), True
        if time.monotonic() > deadline:  # the winner is stuck: serve from the database rather than fail
            value = loader()
            return (value["value"] if unwrap else value), False


def xfetch(r: Any, key: str, loader: Loader, ttl: float = 300, beta: float = 1.0,
           rng: random.Random | None = None) -> tuple[Any, bool]:
    """Early probabilistic refresh ("XFetch", Vattani et al., VLDB 2015), with one refresher at a time.

    Each entry remembers how long it took to compute (delta). A reader volunteers to refresh
    early with a probability that grows as expiry approaches and with delta: when
    `delta * beta * -ln(U) >= time left`. The volunteer takes the same NX lock as single_flight,
    so while it recomputes everyone else (other volunteers included) keeps being served the
    current value: under steady traffic the key is refreshed before it ever expires, and nobody
    waits. A key that is really missing (a cold start) falls back to single_flight. Returns (value, hit).
    """
    pipe = r.pipeline(transaction=False)
    pipe.get(key)
    pipe.pttl(key)
    cached, pttl = pipe.execute()
    if cached is None:
        return single_flight(r, key, lambda: _timed_entry(loader), ttl, unwrap=True)
    entry = json.loads(cached)
    left = max(pttl, 0) / 1000
    u = (rng or random).random() or 1e-12
    if entry["delta"] * beta * -math.log(u) < left:
        return entry["value"], True
    lock, token = f"{key}:lock", uuid.uuid4().hex
    if not r.set(lock, token, nx=True, px=int(max(1.0, entry["delta"] * 10) * 1000)):
        return entry["value"], True  # someone else is already refreshing it
    try:
        fresh = _timed_entry(loader)
        if fresh["value"] is not None:
            r.set(key, dumps(fresh), px=int(ttl * 1000))
        return fresh["value"], False
    finally:
        r.eval(UNLOCK, 1, lock, token)


def _timed_entry(loader: Loader) -> dict[str, Any]:
    started = time.perf_counter()
    value = loader()
    return {"value": value, "delta": time.perf_counter() - started}


STRATEGIES = ("none", "lock", "xfetch")


def getter(strategy: str, r: Any, db: ShopDB, product_id: int, ttl: float = 300,
           key: str | None = None, beta: float = 1.0, load: Loader | None = None) -> Callable[[], tuple[Any, bool]]:
    """A zero-argument reader of one product page using the named stampede strategy."""
    k = key or page_key(product_id)
    load = load or (lambda: db.product_page(product_id))

    if strategy == "none":
        return lambda: cache_aside(r, k, load, ttl)
    if strategy == "lock":
        return lambda: single_flight(r, k, load, ttl)
    if strategy == "xfetch":
        return lambda: xfetch(r, k, load, ttl, beta=beta)
    raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")


@dataclass
class StampedeResult:
    strategy: str
    clients: int
    db_queries: int
    max_concurrent_queries: int
    wall_ms: float
    latencies_ms: list[float]
    errors: int
    consistent: bool  # every client got the same page
    values: list[Any] = field(default_factory=list, repr=False)  # what each client got

    def __str__(self) -> str:
        return (f"{self.strategy:>6}: {self.clients} clients -> {self.db_queries} database queries "
                f"(up to {self.max_concurrent_queries} at once), {self.wall_ms:.0f} ms")


def stampede_once(r: Any, db: ShopDB, product_id: int, clients: int, strategy: str | Callable[..., Any] = "none",
                  key: str | None = None) -> StampedeResult:
    """A hot key has just expired and `clients` threads ask for it at the same instant.

    `strategy` is "none", "lock", "xfetch" or a function f(r, db, product_id) -> page (a learner's).
    Counts the database queries this caused.
    """
    k = key or page_key(product_id)
    r.delete(k, f"{k}:lock")
    if callable(strategy):
        learner = strategy

        def read() -> Any:
            return learner(r, db, product_id)
        name = getattr(strategy, "__name__", "yours")
    else:
        fn = getter(strategy, r, db, product_id, key=k)

        def read() -> Any:
            return fn()[0]
        name = strategy
    db.reset_counts()
    res = measure.run_concurrently(lambda _i: read(), clients)
    pages = [dumps(p) for p in res.results]
    return StampedeResult(strategy=name, clients=clients, db_queries=db.queries,
                          max_concurrent_queries=db.max_in_flight, wall_ms=res.wall_seconds * 1000,
                          latencies_ms=res.latencies_ms, errors=len(res.errors),
                          consistent=len(set(pages)) == 1 and len(pages) == clients, values=res.results)


@dataclass
class HotKeyResult:
    strategy: str
    clients: int
    seconds: float
    reads: int
    db_queries: int
    max_concurrent_queries: int
    misses: int
    query_times: list[float]
    latencies_ms: list[float]
    missing_ms: float  # how long the hot key was absent from the cache (sampled every millisecond)
    early_refreshes: int  # database loads that started while the key was still cached

    @property
    def hit_ratio(self) -> float:
        return 1 - self.misses / self.reads if self.reads else 0.0

    def percentiles(self) -> dict[str, float]:
        return measure.percentiles(self.latencies_ms)


def hot_key_run(r: Any, db: ShopDB, product_id: int, clients: int = 8, seconds: float = 1.0, ttl: float = 0.3,
                strategy: str = "none", beta: float = 1.0, think_ms: float = 2.0) -> HotKeyResult:
    """`clients` threads read one hot product page continuously while its short TTL expires again and again."""
    key = f"{PREFIX}:hot:{strategy}:{uuid.uuid4().hex[:8]}"
    early = [0]

    def load() -> Any:
        if r.exists(key):  # the value is still cached: this load is a refresh ahead of expiry
            early[0] += 1
        return db.product_page(product_id)

    read = getter(strategy, r, db, product_id, ttl=ttl, key=key, beta=beta, load=load)
    read()  # warm the cache first: the run starts with a hit, as in production
    db.reset_counts()
    early[0] = 0
    counts = {"reads": 0, "misses": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(_i: int) -> None:
        reads = misses = 0
        mine: list[float] = []
        clock = time.perf_counter
        while time.monotonic() < stop_at:
            t0 = clock()
            _value, hit = read()
            mine.append((clock() - t0) * 1000)
            reads += 1
            misses += not hit
            time.sleep(think_ms / 1000)
        with lock:
            counts["reads"] += reads
            counts["misses"] += misses
            latencies.extend(mine)

    missing = [0.0]
    done = threading.Event()

    def watch() -> None:  # how long is the key absent? (what every reader would have missed)
        last = time.monotonic()
        while not done.is_set():
            absent = not r.exists(key)
            now = time.monotonic()
            if absent:  # a pause of this thread is not counted as absence: at most 2 ms per sample
                missing[0] += min(now - last, 0.002)
            last = now
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    measure.run_concurrently(client, clients, timeout=seconds + 30)
    done.set()
    watcher.join(5)
    r.delete(key, f"{key}:lock")
    return HotKeyResult(strategy=strategy, clients=clients, seconds=seconds, reads=counts["reads"],
                        db_queries=db.queries, max_concurrent_queries=db.max_in_flight, misses=counts["misses"],
                        query_times=[t - started for t in db.query_times], latencies_ms=latencies,
                        missing_ms=missing[0] * 1000, early_refreshes=early[0])


# --- TTL and jitter: expiry synchronisation ----------------------------------------------------

@dataclass
class JitterRun:
    ttl_ms: float
    jitter: float
    keys: int
    reads: int
    misses: int
    bucket_ms: float
    misses_per_bucket: list[int]
    expiries: list[float] = field(default_factory=list)  # when each SET was due to expire (s since start)
    seconds: float = 0.0

    @property
    def hit_ratio(self) -> float:
        return 1 - self.misses / self.reads if self.reads else 0.0

    @property
    def peak(self) -> int:
        """The most keys due to expire within one `bucket_ms` window during the run.

        Computed from the TTLs actually set (the schedule Redis follows), so a hiccup of the
        observing loop cannot blur or sharpen it: each of those keys is a database reload due
        at the same moment.
        """
        due = sorted(t for t in self.expiries if t <= self.seconds)
        window = self.bucket_ms / 1000
        best = lo = 0
        for hi, t in enumerate(due):
            while due[lo] < t - window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def ttl_jitter_run(r: Any, db: ShopDB, ttl_ms: float = 400, jitter: float = 0.0, keys: int = 200,
                   seconds: float = 1.2, bucket_ms: float = 25, seed: int = 7) -> JitterRun:
    """Load `keys` products into the cache at the same moment (a deploy, a cold start), then read
    all of them continuously; every miss reloads one row from the database and caches it again
    with TTL = ttl_ms +- jitter. Returns database reloads per time bucket: without jitter they
    arrive in synchronised waves, with jitter they spread out.
    """
    rng = random.Random(seed)
    ids = db.product_ids(limit=keys)
    prefix = f"{PREFIX}:jitter:{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}:{pid}" for pid in ids]

    expiries: list[float] = []
    started = time.monotonic()

    def px() -> int:
        ms = max(1, int(ttl_with_jitter(ttl_ms, jitter, rng)))
        expiries.append(time.monotonic() - started + ms / 1000)
        return ms

    rows = [dumps(db.product(pid)) for pid in ids]  # load first, so every key gets its TTL in the same instant
    pipe = r.pipeline(transaction=False)
    for name, row in zip(names, rows, strict=True):
        pipe.set(name, row, px=px())
    pipe.execute()
    buckets = [0] * max(1, math.ceil(seconds * 1000 / bucket_ms))
    reads = misses = 0
    try:
        while (now := time.monotonic()) - started < seconds:
            values = r.mget(names)
            reads += len(values)
            missing = [i for i, v in enumerate(values) if v is None]
            if missing:
                misses += len(missing)
                b = min(len(buckets) - 1, int((now - started) * 1000 / bucket_ms))
                buckets[b] += len(missing)
                rows = [dumps(db.product(ids[i])) for i in missing]
                pipe = r.pipeline(transaction=False)
                for i, row in zip(missing, rows, strict=True):
                    pipe.set(names[i], row, px=px())
                pipe.execute()
            time.sleep(0.005)
    finally:
        clear(r, f"{prefix}:*")
    return JitterRun(ttl_ms=ttl_ms, jitter=jitter, keys=keys, reads=reads, misses=misses, bucket_ms=bucket_ms,
                     misses_per_bucket=buckets, expiries=expiries, seconds=seconds)


# --- widgets -----------------------------------------------------------------------------------

def jitter_widget(r: Any, db: ShopDB, keys: int = 200, seconds: float = 1.0) -> Any:
    """Sliders for TTL and jitter; each change runs `ttl_jitter_run` for real and plots reloads over time."""
    import ipywidgets as widgets

    from helpers.measure.plots import Interactive

    def draw(ax: Any, ttl_ms: int, jitter_pct: int) -> JitterRun:
        run = ttl_jitter_run(r, db, ttl_ms=ttl_ms, jitter=jitter_pct / 100, keys=keys, seconds=seconds)
        xs = [i * run.bucket_ms / 1000 for i in range(len(run.misses_per_bucket))]
        ax.bar(xs, run.misses_per_bucket, width=run.bucket_ms / 1000 * 0.9, align="edge", color="#cf222e")
        ax.set_ylim(0, keys * 1.05)
        ax.set_xlabel(_("seconds since the cache was filled"))
        ax.set_ylabel(_("database reloads / {bucket:.0f} ms", bucket=run.bucket_ms))
        ax.set_title(_("TTL {ttl} ms ± {jitter}%: hit ratio {ratio:.1%}, up to {peak} keys expiring within "
                       "{bucket:.0f} ms", ttl=ttl_ms, jitter=jitter_pct, ratio=run.hit_ratio, peak=run.peak,
                       bucket=run.bucket_ms))
        return run

    controls = {
        "ttl_ms": widgets.IntSlider(value=300, min=100, max=800, step=50, description="TTL (ms)"),
        "jitter_pct": widgets.IntSlider(value=0, min=0, max=90, step=10, description="jitter ±%"),
    }
    return Interactive(controls, draw)


def stampede_widget(r: Any, db: ShopDB, product_id: int) -> Any:
    """A slider for the number of concurrent clients; each change re-runs the stampede without and with a lock."""
    import ipywidgets as widgets

    from helpers.measure.plots import Interactive, compare_bars

    def draw(ax: Any, clients: int) -> dict[str, StampedeResult]:
        runs = {s: stampede_once(r, db, product_id, clients, s) for s in ("none", "lock")}
        compare_bars({_("no protection"): runs["none"].db_queries, _("lock (SET NX PX)"): runs["lock"].db_queries},
                     ax=ax, ylabel=_("database queries"),
                     title=_("{clients} clients ask for an expired hot key at the same instant", clients=clients))
        ax.set_ylim(0, clients * 1.15)
        return runs

    controls = {"clients": widgets.IntSlider(value=16, min=1, max=64, step=1, description=_("clients"))}
    return Interactive(controls, draw, figsize=(6, 3))
