"""Memory limits and eviction, measured on a real Redis: skewed workloads and hit ratios.

A cache smaller than its data must choose what to forget. Which keys it keeps decides the hit
ratio, so the labs replay the *same* skewed (Zipf) request sequence against each eviction policy
and count hits. Each request is a cache-aside read done atomically by a tiny Lua script
(GET, and SET on a miss), pipelined, so tens of thousands of requests take well under a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime.i18n import translator
from helpers.runtime.state import LabError

log = logging.getLogger(__name__)
_ = translator(__name__)

POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
            "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl")
ALLKEYS = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
# Lab 07's own server: small on purpose, so a few thousand keys fill it.
LAB07 = {"name": "lab07", "config": {"maxmemory": "2mb", "maxmemory-policy": "allkeys-lru"}}


def lab07_server() -> Any:
    """The lab's standalone Redis (2 MB maxmemory), started or found again."""
    from helpers.runtime.services import start

    return start("redis", name=LAB07["name"], config=dict(LAB07["config"]))

# One cache-aside request: 1 on a hit; on a miss store the value (the "database" answer) and return 0.
CACHE_ASIDE = """
local v = redis.call('GET', KEYS[1])
if v then return 1 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 0
"""


def zipf_requests(n_keys: int, n_requests: int, s: float = 1.0, seed: int = 7, offset: int = 0) -> list[int]:
    """Key ids drawn with P(rank k) ~ 1/k^s: a few keys are hot, most are rarely asked for.

    `offset` shifts the ids, so a second phase with another offset has a different hot set.
    """
    import numpy as np

    if n_keys < 1 or n_requests < 1:
        raise LabError("zipf_requests needs at least one key and one request.")
    ranks = np.arange(1, n_keys + 1, dtype=float)
    p = ranks ** -float(s)
    p /= p.sum()
    return (np.random.default_rng(seed).choice(n_keys, size=n_requests, p=p) + offset).tolist()


def top_share(n_keys: int, top: int, s: float = 1.0) -> float:
    """Share of requests that go to the `top` hottest keys (what a perfect cache of `top` keys hits)."""
    import numpy as np

    p = np.arange(1, n_keys + 1, dtype=float) ** -float(s)
    return float(p[:top].sum() / p.sum())


def parse_bytes(value: int | str) -> int:
    """'2mb' -> 2097152, as redis.conf reads sizes (k/kb/m/mb/g/gb, case-insensitive)."""
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    units = {"kb": 1024, "k": 1000, "mb": 1024**2, "m": 1000**2, "gb": 1024**3, "g": 1000**3, "b": 1}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * mult)
    return int(text)


def configure(r: Any, maxmemory: int | str | None = None, policy: str | None = None) -> None:
    """Set maxmemory and/or the eviction policy at run time (CONFIG SET, as a parameter group does)."""
    if policy is not None:
        if policy not in POLICIES:
            raise LabError(f"{policy!r} is not an eviction policy. Choose one of: {', '.join(POLICIES)}.")
        r.config_set("maxmemory-policy", policy)
    if maxmemory is not None:
        r.config_set("maxmemory", parse_bytes(maxmemory))


@dataclass
class HitRatio:
    """What one replay of a request sequence against one policy measured.

    `outcomes` holds one entry per request: 1 hit, 0 miss, -1 write refused (OOM).
    """

    policy: str
    maxmemory: int
    outcomes: list[int]
    warmup: int
    evicted: int
    keys_cached: int
    seconds: float
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return max(0, len(self.outcomes) - self.warmup)

    @property
    def hits(self) -> int:
        return sum(1 for o in self.outcomes[self.warmup:] if o == 1)

    @property
    def refused(self) -> int:
        return sum(1 for o in self.outcomes if o == -1)

    @property
    def ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    def ratio_between(self, start: int, stop: int | None = None) -> float:
        """Hit ratio of requests start..stop (e.g. one phase of a workload)."""
        part = self.outcomes[start:stop]
        return sum(1 for o in part if o == 1) / len(part) if part else 0.0

    def rolling(self, window: int = 1000) -> tuple[list[int], list[float]]:
        """Hit ratio per block of `window` requests: (request index at block end, ratio)."""
        xs, ys = [], []
        for start in range(0, len(self.outcomes) - window + 1, window):
            xs.append(start + window)
            ys.append(self.ratio_between(start, start + window))
        return xs, ys

    def __str__(self) -> str:
        return (f"{self.policy:<15} hit ratio {self.ratio:6.1%}  evicted {self.evicted:>6}  refused {self.refused:>6}  "
                f"keys kept {self.keys_cached:>5}  ({self.seconds:.2f} s)")


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _raw_connection(r: Any) -> Any:
    """A plain socket to the server behind `r` (authenticated if it has a password)."""
    import socket

    kw = r.connection_pool.connection_kwargs
    sock = socket.create_connection((kw.get("host", "127.0.0.1"), kw.get("port", 6379)), timeout=30)
    if kw.get("password"):
        sock.sendall(b"*2\r\n" + _bulk(b"AUTH") + _bulk(str(kw["password"]).encode()))
        if not sock.recv(1024).startswith(b"+OK"):
            sock.close()
            raise LabError("AUTH failed on the raw connection used to replay the workload.")
    return sock


def replay(r: Any, requests: Sequence[int], value: str, prefix: str = "zipf:", ttl: int = 0,
           batch: int = 2000) -> tuple[list[int], list[str]]:
    """Send cache-aside requests in pipelines; return one outcome per request (1/0/-1) and a few errors.

    Like redis-benchmark, it writes the protocol (RESP) itself and reads one reply line per request:
    the Python client's per-command packing would otherwise cost more than Redis's work.
    """
    sha = r.script_load(CACHE_ASIDE).encode()
    tail = _bulk(value.encode()) + _bulk(str(int(ttl)).encode())
    head = b"*6\r\n" + _bulk(b"EVALSHA") + _bulk(sha) + _bulk(b"1")
    prefix_b = prefix.encode()
    outcomes: list[int] = []
    errors: list[str] = []
    sock = _raw_connection(r)
    try:
        for start in range(0, len(requests), batch):
            chunk = requests[start:start + batch]
            sock.sendall(b"".join(head + _bulk(prefix_b + str(k).encode()) + tail for k in chunk))
            buf = b""
            lines: list[bytes] = []
            while len(lines) < len(chunk):
                data = sock.recv(65536)
                if not data:
                    raise LabError("The server closed the connection during the replay; see its log.")
                buf += data
                *complete, buf = buf.split(b"\r\n")
                lines += complete
            for line in lines:
                if line.startswith(b"-"):
                    outcomes.append(-1)
                    if len(errors) < 3:
                        errors.append(line[1:].decode(errors="replace").split(". script:")[0])
                else:
                    outcomes.append(1 if line == b":1" else 0)
    finally:
        sock.close()
    return outcomes, errors


def _wait_for_no_child(r: Any, timeout: float = 30.0) -> None:
    """Wait for a running BGSAVE/BGREWRITEAOF to end: while a forked child exists, Redis stops updating
    keys' LRU clocks and LFU counters (to spare copy-on-write), so LRU and LFU would evict like random."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = r.info("persistence")
        if not (info.get("rdb_bgsave_in_progress") or info.get("aof_rewrite_in_progress")):
            return
        time.sleep(0.05)


def measure_hit_ratio(r: Any, policy: str, requests: Sequence[int], maxmemory: int | str | None = None,
                      warmup: int = 0, value_size: int = 200, ttl: int = 0, prefix: str = "zipf:") -> HitRatio:
    """Empty the (lab-owned) server, apply the policy, replay `requests`; the ratio counts after `warmup`."""
    r.flushdb()
    configure(r, maxmemory, policy)
    _wait_for_no_child(r)
    r.config_resetstat()
    started = time.perf_counter()
    outcomes, errors = replay(r, requests, "v" * value_size, prefix=prefix, ttl=ttl)
    seconds = time.perf_counter() - started
    return HitRatio(policy=policy, maxmemory=int(r.config_get("maxmemory")["maxmemory"]), outcomes=outcomes,
                    warmup=warmup, evicted=int(r.info("stats")["evicted_keys"]), keys_cached=int(r.dbsize()),
                    seconds=seconds, errors=errors)


def compare_policies(r: Any, requests: Sequence[int], policies: Iterable[str] = ALLKEYS, **kwargs: Any
                     ) -> dict[str, HitRatio]:
    """The same request sequence replayed against each policy (fair: same keys, same order)."""
    return {p: measure_hit_ratio(r, p, requests, **kwargs) for p in policies}


@dataclass
class FillResult:
    written: int
    refused: int
    first_error: str | None


def fill(r: Any, prefix: str, n: int, value_size: int = 200, ttl: int | None = None, batch: int = 500) -> FillResult:
    """SET `n` keys `prefix0..` (optionally with a TTL), counting writes the server refuses (OOM)."""
    value = "x" * value_size
    written = refused = 0
    first: str | None = None
    for start in range(0, n, batch):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(n, start + batch)):
            pipe.set(f"{prefix}{i}", value, ex=ttl)
        for res in pipe.execute(raise_on_error=False):
            if isinstance(res, Exception):
                refused += 1
                first = first or f"{type(res).__name__}: {res}"
            else:
                written += 1
    return FillResult(written, refused, first)


def count(r: Any, pattern: str) -> int:
    """How many keys match `pattern` (SCAN, never KEYS: it does not block the server)."""
    return sum(1 for _ in r.scan_iter(match=pattern, count=1000))


def evict_one(r: Any, policy: str, candidates: dict[str, int | None], candidate_size: int = 50_000) -> list[str]:
    """Fill the server with keys without TTL, add `candidates` (name -> TTL or None), then write
    until the first eviction: return which candidates were evicted ([] if the server refused instead).
    """
    r.flushdb()
    limit = int(r.config_get("maxmemory")["maxmemory"])
    if not limit:
        raise LabError("maxmemory is 0 (no limit): set one first, e.g. configure(r, maxmemory='2mb').")
    configure(r, maxmemory=0, policy=policy)  # no limit while setting the scene, so nothing is refused
    try:
        room = limit - int(1.25 * len(candidates) * candidate_size) - 120_000
        i = 0
        while int(r.info("memory")["used_memory"]) < room:
            fill(r, f"filler{i}:", 200, 200)
            i += 1
        for name, ttl in candidates.items():
            r.set(f"cand:{name}", "c" * candidate_size, ex=ttl)
    finally:
        configure(r, maxmemory=limit)
    from redis.exceptions import ResponseError

    r.config_resetstat()
    for j in range(2000):
        try:
            r.set(f"more:{j}", "m" * 2000)
        except ResponseError:  # OOM: noeviction or volatile-* with nothing to evict refuses the write
            break
        if int(r.info("stats")["evicted_keys"]):
            break
    return sorted(name for name in candidates if not r.exists(f"cand:{name}"))


def recency_experiment(r: Any, n: int = 1500, value_size: int = 200, policy: str = "allkeys-lru",
                       pause: float = 1.1) -> dict[str, int]:
    """Write `n` old keys, wait, write `n` recent keys, then `n` new ones into a full cache.

    Redis's LRU clock ticks once a second, so the pause must exceed a second for 'old' to mean
    anything. Returns how many old and recent keys survived the evictions.
    """
    r.flushdb()
    configure(r, policy=policy)
    r.config_resetstat()
    fill(r, "old:", n, value_size)
    time.sleep(pause)
    fill(r, "recent:", n, value_size)
    fill(r, "new:", n, value_size)
    return {"old": count(r, "old:*"), "recent": count(r, "recent:*"), "new": count(r, "new:*"),
            "evicted": int(r.info("stats")["evicted_keys"])}


def memory_usage_by_size(r: Any, sizes: Iterable[int], prefix: str = "ovh:") -> list[dict[str, int]]:
    """MEMORY USAGE of one string key per payload size: what each key really costs."""
    rows = []
    for size in sizes:
        key = f"{prefix}{size}"
        r.set(key, "a" * size)
        rows.append({"payload": size, "key_name": len(key), "memory_usage": int(r.memory_usage(key, samples=0)),
                     "encoding": r.object("encoding", key)})
        r.delete(key)
    return rows


def used_memory_per_key(r: Any, n: int = 5000, value_size: int = 100, prefix: str = "perkey:") -> float:
    """Growth of INFO used_memory per key when `n` keys are added (the server's whole bookkeeping)."""
    for key in r.scan_iter(match=f"{prefix}*", count=1000):
        r.delete(key)
    before = int(r.info("memory")["used_memory"])
    result = fill(r, prefix, n, value_size)
    after = int(r.info("memory")["used_memory"])
    if result.refused:
        raise LabError(f"{result.refused} writes were refused (maxmemory reached): measure on a server without a "
                       "small maxmemory, or with fewer keys.")
    per_key = (after - before) / n
    for start in range(0, n, 1000):
        r.delete(*[f"{prefix}{i}" for i in range(start, min(n, start + 1000))])
    return per_key


class EvictionExplorer:
    """Widget: choose maxmemory, policy and skew; replay a Zipf workload and see the hit ratio."""

    def __init__(self, r: Any, n_keys: int = 50_000, n_requests: int = 20_000, warmup: int = 5_000):
        import ipywidgets as w

        self.r, self.n_keys, self.n_requests, self.warmup = r, n_keys, n_requests, warmup
        self.maxmemory = w.IntSlider(value=2, min=2, max=8, step=1, description="maxmemory MB")
        self.policy = w.Dropdown(options=list(POLICIES), value="allkeys-lfu", description=_("policy"))
        self.skew = w.FloatSlider(value=1.0, min=0.6, max=1.4, step=0.1, description="Zipf s")
        self.ttl = w.Checkbox(value=False, description=_("cache entries get a TTL"))
        self.button = w.Button(description=_("Run workload"), button_style="primary")
        self.out = w.HTML()
        self.history: list[tuple[float, bool, HitRatio]] = []
        self.button.on_click(lambda _b: self.update())
        self.widget = w.VBox([w.HBox([self.maxmemory, self.policy]), w.HBox([self.skew, self.ttl, self.button]),
                              self.out])

    def update(self) -> HitRatio:
        reqs = zipf_requests(self.n_keys, self.n_requests + self.warmup, s=self.skew.value)
        result = measure_hit_ratio(self.r, self.policy.value, reqs, maxmemory=f"{self.maxmemory.value}mb",
                                   warmup=self.warmup, ttl=3600 if self.ttl.value else 0)
        self.history.append((self.skew.value, self.ttl.value, result))
        yes, no = _("yes"), _("no")
        rows = "".join(f"<tr><td>{h.maxmemory // 2**20} MB</td><td>{h.policy}</td><td>{s:.1f}</td>"
                       f"<td>{yes if ttl else no}</td><td><b>{h.ratio:.1%}</b></td><td>{h.evicted}</td>"
                       f"<td>{h.refused}</td><td>{h.keys_cached}</td></tr>" for s, ttl, h in self.history[-8:])
        head = "".join(f"<th>{title}</th>" for title in (
            "maxmemory", _("policy"), "Zipf s", "TTL", _("hit ratio"), _("evicted"), _("refused (OOM)"),
            _("keys kept")))
        self.out.value = f"<table><tr>{head}</tr>{rows}</table>"
        return result
