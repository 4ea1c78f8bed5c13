"""Real-time analytics on Redis: event generators, HyperLogLog vs sets, rate limiters, geo, a live chart.

Lab 06 measures everything it shows. The rate limiters here are small but production-shaped:
the fixed window uses one atomic MULTI (INCR + EXPIRE NX), the sliding window log a sorted set,
and the token bucket is a Lua script run by the server (redis-py's register_script), so the
read-compute-write of many concurrent clients cannot interleave. A deliberately naive bucket
is kept next to it to show what interleaving does.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime.i18n import translator
from helpers.topics.messaging import clear_prefix

_ = translator(__name__)

__all__ = ["clear_prefix", "player_names", "game_events", "visitor_ids", "hll_vs_set", "plot_hll",
           "FixedWindowLimiter", "SlidingWindowLimiter", "TokenBucket", "NaiveTokenBucket", "burst",
           "BucketTrace", "bucket_trace", "bucket_playground",
           "wait_for_window_phase", "daily_activity", "MADRID_PLACES", "haversine_km", "LiveDashboard"]

EARTH_RADIUS_KM = 6372.7975608  # the radius Redis's GEO commands use


# --- event generators ----------------------------------------------------------------------------

def player_names(n: int, seed: int = 6) -> list[str]:
    """n distinct, readable player names (deterministic for a seed)."""
    rng = random.Random(seed)
    first = ["ana", "bo", "cy", "dee", "eli", "fay", "gus", "hal", "ivy", "jo", "kai", "lu", "max", "ned",
             "ola", "pia", "quin", "rui", "sol", "tea", "uma", "vic", "wes", "xia", "yan", "zoe"]
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = f"{rng.choice(first)}{rng.randint(1, 999)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def game_events(n: int, players: Sequence[str], seed: int = 6) -> list[tuple[str, int]]:
    """n (player, points) events; a few players play far more often (a Zipf-like skew, as in real games)."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(players))]
    chosen = rng.choices(list(players), weights=weights, k=n)
    return [(p, rng.choice((5, 10, 10, 20, 50))) for p in chosen]


def visitor_ids(n: int, seed: int = 6) -> list[str]:
    """n distinct visitor ids that look like cookies (hex), deterministic for a seed."""
    rng = random.Random(seed)
    return [f"v-{rng.getrandbits(64):016x}-{i}" for i in range(n)]


# --- HyperLogLog vs an exact set -------------------------------------------------------------------

def hll_vs_set(r: Any, prefix: str, checkpoints: Sequence[int], seed: int = 6,
               batch: int = 1000) -> list[dict[str, float]]:
    """Add the same visitors to a HyperLogLog and to a set; at each checkpoint record counts and memory.

    Returns rows {visitors, hll_count, error_pct, hll_bytes, set_bytes}; memory is MEMORY USAGE
    (SAMPLES 0 = exact) of each key, so the figures are what the server really holds.
    """
    hll, exact = prefix + "hll", prefix + "set"
    r.delete(hll, exact)
    ids = visitor_ids(max(checkpoints), seed)
    rows: list[dict[str, float]] = []
    added = 0
    for target in sorted(checkpoints):
        pipe = r.pipeline(transaction=False)
        for i in range(added, target, batch):
            chunk = ids[i:min(target, i + batch)]
            pipe.pfadd(hll, *chunk)
            pipe.sadd(exact, *chunk)
        pipe.execute()
        added = target
        estimate = r.pfcount(hll)
        rows.append({"visitors": target, "hll_count": estimate, "exact_count": r.scard(exact),
                     "error_pct": 100.0 * abs(estimate - target) / target,
                     "hll_bytes": r.memory_usage(hll, samples=0), "set_bytes": r.memory_usage(exact, samples=0)})
    return rows


def plot_hll(rows: Sequence[dict[str, float]], axes: Any = None) -> Any:
    """Two panels: HLL error (%) and memory of each structure, as the number of visitors grows."""
    import matplotlib.pyplot as plt

    from helpers.measure.plots import PALETTE

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    xs = [row["visitors"] for row in rows]
    ax = axes[0]
    ax.plot(xs, [row["error_pct"] for row in rows], "o-", color=PALETTE[0], label="HyperLogLog error")
    ax.axhline(0.81, color=PALETTE[2], ls="--", lw=1, label="standard error 0.81%")
    ax.axhline(2.0, color=PALETTE[1], ls=":", lw=1, label="2%")
    ax.set_xscale("log")
    ax.set_xlabel("distinct visitors")
    ax.set_ylabel("error of PFCOUNT (%)")
    ax.set_title("HyperLogLog: how wrong?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.plot(xs, [row["set_bytes"] / 1024 for row in rows], "o-", color=PALETTE[1], label="set (exact)")
    ax.plot(xs, [row["hll_bytes"] / 1024 for row in rows], "o-", color=PALETTE[0], label="HyperLogLog")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distinct visitors")
    ax.set_ylabel("MEMORY USAGE (KiB)")
    ax.set_title("...and how big?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return axes


# --- rate limiters ----------------------------------------------------------------------------------

class FixedWindowLimiter:
    """At most `limit` requests per client per calendar window of `window_s` seconds (INCR + EXPIRE).

    Cheap (one counter per client per window) but a client can send `limit` at the end of one
    window and `limit` again at the start of the next: twice the limit in a moment.
    """

    def __init__(self, r: Any, prefix: str, limit: int, window_s: int = 1):
        self.r, self.prefix, self.limit, self.window_s = r, prefix, limit, window_s

    def allow(self, client: str) -> bool:
        window = int(time.time() // self.window_s)
        key = f"{self.prefix}{client}:{window}"
        pipe = self.r.pipeline(transaction=True)  # MULTI/EXEC: the counter never lives without a TTL
        pipe.incr(key)
        pipe.expire(key, self.window_s * 2, nx=True)
        count, _ = pipe.execute()
        return count <= self.limit


class SlidingWindowLimiter:
    """At most `limit` requests in any `window_ms` milliseconds: a log of timestamps in a sorted set."""

    def __init__(self, r: Any, prefix: str, limit: int, window_ms: int = 1000):
        self.r, self.prefix, self.limit, self.window_ms = r, prefix, limit, window_ms

    def allow(self, client: str) -> bool:
        key = self.prefix + client
        now = time.time() * 1000
        member = f"{now:.3f}-{uuid.uuid4().hex[:8]}"
        pipe = self.r.pipeline(transaction=True)
        pipe.zremrangebyscore(key, 0, now - self.window_ms)  # forget requests older than the window
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.pexpire(key, self.window_ms)
        _, _, count, _ = pipe.execute()
        if count > self.limit:
            self.r.zrem(key, member)  # a refused request does not count against the client
            return False
        return True


TOKEN_BUCKET_LUA = """
-- KEYS[1]: the bucket (a hash); ARGV: capacity, refill per second, cost of this request,
-- and optionally the time of the request in seconds (a clock the caller controls).
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')                    -- the server's clock: every client agrees
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity     -- a new client starts with a full bucket
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class TokenBucket:
    """A token bucket run atomically inside Redis: bursts up to `capacity`, then `refill_per_second`.

    register_script sends EVALSHA (the script is cached on the server) and falls back to EVAL
    after a restart, when the cache is empty.
    """

    def __init__(self, r: Any, prefix: str, capacity: float, refill_per_second: float):
        if capacity <= 0 or refill_per_second <= 0:
            from helpers.runtime.state import LabError

            raise LabError("A token bucket needs capacity > 0 and refill_per_second > 0.")
        self.r, self.prefix = r, prefix
        self.capacity, self.refill_per_second = capacity, refill_per_second
        self.script = r.register_script(TOKEN_BUCKET_LUA)
        self.last_tokens = float(capacity)

    def allow(self, client: str, cost: float = 1, at: float | None = None) -> bool:
        """One request; `at` (seconds) replaces the server's clock, so a trace or a check can say when
        each request happens and get the same answer on a fast machine and on a loaded one."""
        args = [self.capacity, self.refill_per_second, cost] + ([repr(float(at))] if at is not None else [])
        allowed, tokens = self.script(keys=[self.prefix + client], args=args)
        self.last_tokens = float(tokens)
        return bool(allowed)


class NaiveTokenBucket(TokenBucket):
    """The same arithmetic done in Python: read, compute, write. Concurrent clients interleave."""

    def allow(self, client: str, cost: float = 1, at: float | None = None) -> bool:
        key = self.prefix + client
        tokens_s, ts_s = self.r.hmget(key, "tokens", "ts")
        now = time.time() if at is None else at
        tokens = float(tokens_s) if tokens_s is not None else float(self.capacity)
        ts = float(ts_s) if ts_s is not None else now
        tokens = min(self.capacity, tokens + max(0.0, now - ts) * self.refill_per_second)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self.r.hset(key, mapping={"tokens": tokens, "ts": now})
        self.r.pexpire(key, math.ceil(self.capacity / self.refill_per_second * 1000) + 1000)
        self.last_tokens = tokens
        return allowed


def burst(limiter: Any, client: str, n: int, at: float | None = None) -> int:
    """Send n requests back to back; return how many the limiter allowed. `at` gives a token bucket
    the time of the burst (its clock), for a count that does not depend on the machine's speed."""
    if at is None:
        return sum(1 for _ in range(n) if limiter.allow(client))
    return sum(1 for _ in range(n) if limiter.allow(client, at=at))


def wait_for_window_phase(window_s: float, phase: float) -> float:
    """Sleep until `phase` (0..1) of the current fixed window, or of the next one if already past it."""
    now = time.time()
    start = now - now % window_s
    target = start + phase * window_s
    if target <= now:
        target += window_s
    time.sleep(target - now)
    return target


@dataclass
class BucketTrace:
    """Each request of a real traffic pattern against a token bucket: when, allowed?, tokens left."""

    times: list[float] = field(default_factory=list)
    allowed: list[bool] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)

    @property
    def n_allowed(self) -> int:
        return sum(self.allowed)


def bucket_trace(r: Any, prefix: str, capacity: float, refill_per_second: float, seconds: float = 1.0,
                 rps: float = 40, burst_size: int = 15) -> BucketTrace:
    """A burst of `burst_size` requests at t=0, then a steady `rps` for `seconds`, against a fresh bucket.

    Every request really runs the bucket's script in Redis, at the time the pattern gives it (the
    script's `at`), not at the time the machine gets round to it: the trace is the same on a fast
    machine and on a loaded one, and it takes milliseconds instead of `seconds`."""
    clear_prefix(r, prefix)
    bucket = TokenBucket(r, prefix, capacity, refill_per_second)
    trace = BucketTrace()
    times = [0.0] * burst_size + [(k + 1) / rps for k in range(int(seconds * rps))]
    for t in times:
        trace.allowed.append(bucket.allow("client", at=t))
        trace.times.append(t)
        trace.tokens.append(bucket.last_tokens)
    return trace


def bucket_playground(r: Any, prefix: str, seconds: float = 1.0) -> Any:
    """Sliders for capacity and refill rate; each change fires a real burst + steady traffic at the bucket."""
    import ipywidgets as widgets

    from helpers.measure.plots import PALETTE, Interactive

    summary = widgets.HTML()  # the counts in words, redrawn with the chart on every slider move

    def draw(ax: Any, capacity: int, refill_per_second: int) -> BucketTrace:
        trace = bucket_trace(r, prefix, capacity, refill_per_second, seconds=seconds)
        burst, steady = trace.allowed[:15], trace.allowed[15:]
        summary.value = _("capacity {capacity}, refill {refill}/s: <b>{allowed} of {requests} requests allowed</b> "
                          "({burst_allowed} of the burst of {burst}, {steady_allowed} of the {steady} steady requests)",
                          capacity=capacity, refill=refill_per_second, allowed=trace.n_allowed,
                          requests=len(trace.allowed), burst_allowed=sum(burst), burst=len(burst),
                          steady_allowed=sum(steady), steady=len(steady))
        ax.step(trace.times, trace.tokens, where="post", color=PALETTE[0], label=_("tokens left"))
        for flag, marker, colour, label in ((True, "o", PALETTE[2], _("allowed")),
                                            (False, "x", PALETTE[1], _("refused (429)"))):
            idx = [i for i, a in enumerate(trace.allowed) if a is flag]
            if idx:
                ax.plot([trace.times[i] for i in idx], [trace.tokens[i] for i in idx], marker, color=colour, ms=4,
                        label=label)
        ax.set_ylim(-0.5, 30.5)
        ax.set_xlabel(_("seconds"))
        ax.set_ylabel(_("tokens"))
        ax.set_title(_("burst of 15 then 40 req/s: {allowed} of {requests} allowed", allowed=trace.n_allowed,
                       requests=len(trace.allowed)))
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
        return trace

    controls = {
        "capacity": widgets.IntSlider(value=10, min=1, max=30, step=1, description=_("capacity")),
        "refill_per_second": widgets.IntSlider(value=10, min=1, max=60, step=1, description=_("refill / s")),
    }
    playground = Interactive(controls, draw)
    playground.ui.children = (*playground.ui.children, summary)
    playground.summary = summary
    return playground


# --- daily active users ----------------------------------------------------------------------------

def daily_activity(n_users: int, days: int, seed: int = 6, first_day: float = 0.3,
                   keep: float = 0.6, join: float = 0.08) -> list[set[int]]:
    """Active user ids per day: a first-day cohort, then each day most actives return and a few join."""
    rng = random.Random(seed)
    out = [{u for u in range(n_users) if rng.random() < first_day}]
    for _ in range(days - 1):
        prev = out[-1]
        out.append({u for u in range(n_users) if rng.random() < (keep if u in prev else join)})
    return out


# --- geo ---------------------------------------------------------------------------------------------

# A few well-known places in central Madrid (longitude, latitude; public landmarks, rounded to ~10 m).
MADRID_PLACES: list[tuple[str, float, float]] = [
    ("Puerta del Sol", -3.70357, 40.41688),
    ("Plaza Mayor", -3.70739, 40.41551),
    ("Mercado de San Miguel", -3.70898, 40.41540),
    ("Palacio Real", -3.71430, 40.41794),
    ("Catedral de la Almudena", -3.71440, 40.41570),
    ("Plaza de España", -3.71222, 40.42333),
    ("Templo de Debod", -3.71787, 40.42402),
    ("Plaza de Callao", -3.70583, 40.42000),
    ("Plaza de Cibeles", -3.69306, 40.41933),
    ("Puerta de Alcalá", -3.68861, 40.42000),
    ("Museo del Prado", -3.69214, 40.41378),
    ("Museo Reina Sofía", -3.69447, 40.40796),
    ("Parque del Retiro (Estanque)", -3.68278, 40.41528),
    ("Estación de Atocha", -3.68917, 40.40667),
    ("Matadero Madrid", -3.69750, 40.39167),
    ("Estadio Santiago Bernabéu", -3.68835, 40.45306),
    ("Cuatro Torres", -3.68660, 40.47660),
    ("Estadio Metropolitano", -3.59944, 40.43611),
]


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in km, with the Earth radius Redis uses (to compare with GEOSEARCH)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


# --- the live chart ----------------------------------------------------------------------------------

@dataclass
class LiveRun:
    """What a LiveDashboard run produced and what Redis counted, to compare in asserts."""

    frames: int = 0
    produced: int = 0
    counted: int = 0
    unique_visitors: int = 0
    true_visitors: int = 0
    per_second: list[float] = field(default_factory=list)
    top_pages: list[tuple[str, float]] = field(default_factory=list)


PAGES = ["/", "/search", "/product/42", "/product/7", "/cart", "/checkout", "/product/13", "/help"]


class LiveDashboard:
    """Page views stream into Redis from a producer thread while a chart redraws from Redis.

    Each event does INCR on a per-bucket counter, PFADD of the visitor on a per-bucket
    HyperLogLog and ZINCRBY on a page leaderboard; the chart reads only Redis. The number of
    frames is bounded, and the producer thread is stopped and joined before `run` returns, so
    it works headless (under nbval) exactly as in JupyterLab.
    """

    def __init__(self, r: Any, prefix: str, bucket_ms: int = 250, seed: int = 6):
        self.r, self.prefix, self.bucket_ms, self.seed = r, prefix, bucket_ms, seed

    def _bucket(self, t: float) -> int:
        return int(t * 1000 // self.bucket_ms)

    def _produce(self, stop: threading.Event, rate: Callable[[float], float], out: dict[str, Any]) -> None:
        rng = random.Random(self.seed)
        visitors = visitor_ids(400, self.seed)
        weights = [1.0 / (i + 1) ** 0.7 for i in range(len(visitors))]  # regulars come back often
        t0 = last = time.time()
        produced, owed, seen = 0, 0.0, set()
        while not stop.is_set():
            now = time.time()
            owed += rate(now - t0) * (now - last)  # events due since the last batch, at the wanted rate
            last = now
            n = int(owed)
            owed -= n
            if n:
                bucket = self._bucket(now)
                pipe = self.r.pipeline(transaction=False)
                for v in rng.choices(visitors, weights=weights, k=n):
                    page = rng.choices(PAGES, weights=(8, 5, 4, 3, 2, 1, 1, 1))[0]
                    seen.add(v)
                    pipe.incr(f"{self.prefix}views:{bucket}")
                    pipe.pfadd(f"{self.prefix}uv:{bucket}", v)
                    pipe.zincrby(f"{self.prefix}pages", 1, page)
                pipe.expire(f"{self.prefix}views:{bucket}", 600)
                pipe.expire(f"{self.prefix}uv:{bucket}", 600)
                pipe.execute()
                produced += n
                out["produced"], out["seen"] = produced, len(seen)
            stop.wait(0.02)

    def run(self, seconds: float = 3.0, frames: int = 10,
            rate: Callable[[float], float] | None = None, show: bool = True) -> LiveRun:
        """Stream events for `seconds` while drawing `frames` frames; return what was measured."""
        import matplotlib.pyplot as plt

        from helpers.measure.plots import PALETTE

        rate = rate or (lambda t: 400.0 if 0.35 * seconds < t < 0.65 * seconds else 120.0)  # a spike
        stop, out = threading.Event(), {"produced": 0, "seen": 0}
        first = self._bucket(time.time())
        producer = threading.Thread(target=self._produce, args=(stop, rate, out), name="live-producer", daemon=True)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
        handle = None
        result = LiveRun()
        producer.start()
        try:
            t0 = time.monotonic()
            for frame in range(frames):
                time.sleep(max(0.0, t0 + (frame + 1) * seconds / frames - time.monotonic()))
                last = self._bucket(time.time())
                buckets = list(range(first, last + 1))
                pipe = self.r.pipeline(transaction=False)
                pipe.mget([f"{self.prefix}views:{b}" for b in buckets])
                for b in buckets:
                    pipe.pfcount(f"{self.prefix}uv:{b}")
                pipe.zrevrange(f"{self.prefix}pages", 0, 4, withscores=True)
                reply = pipe.execute()
                per_sec = [int(v or 0) * 1000 / self.bucket_ms for v in reply[0]]
                uniques = reply[1:-1]
                xs = [(b - first) * self.bucket_ms / 1000 for b in buckets]
                ax1.clear()
                ax1.plot(xs, per_sec, color=PALETTE[0], label="page views / s")
                ax1.plot(xs, [u * 1000 / self.bucket_ms for u in uniques], color=PALETTE[2],
                         label="unique visitors / s (HLL)")
                ax1.set_xlim(0, seconds)
                ax1.set_xlabel("seconds")
                ax1.set_title(f"live from Redis — frame {frame + 1}/{frames}")
                ax1.legend(fontsize=8, loc="upper left")
                ax1.grid(alpha=0.3)
                ax2.clear()
                top = reply[-1]
                ax2.barh([p for p, _ in top][::-1], [s for _, s in top][::-1], color=PALETTE[3])
                ax2.set_title("top pages (ZREVRANGE)")
                fig.tight_layout()
                if show:
                    handle = _show(fig, handle)
                result.frames += 1
                result.per_second, result.top_pages = per_sec, top
        finally:
            stop.set()
            producer.join(timeout=5)
            plt.close(fig)
        buckets = range(first, self._bucket(time.time()) + 1)
        keys = [f"{self.prefix}uv:{b}" for b in buckets]
        result.produced = out["produced"]
        result.true_visitors = out["seen"]
        result.counted = sum(int(v or 0) for v in self.r.mget([f"{self.prefix}views:{b}" for b in buckets]))
        result.unique_visitors = self.r.pfcount(*keys)  # PFCOUNT of several keys: the union, on the fly
        return result


def _show(fig: Any, handle: Any) -> Any:
    """Show a figure in a notebook, replacing the previous frame in place."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover
        return None
    if get_ipython() is None:
        return None
    if handle is None:
        return display(fig, display_id=True)
    handle.update(fig)
    return handle
