"""What a serverless cache's endpoint counts and limits: ECPUs (AWS's rule), throttling above
CacheUsageLimits.ECPUPerSecond.Maximum, DataStorage.Maximum as the engines' maxmemory, the local timings of
tuning.json, and status.json / events.jsonl in the endpoint's directory.

Part of the endpoint's Proxy (proxy.py), which mixes this in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from helpers.runtime.serverless.backends import BACKEND_ERRORS, Backend

log = logging.getLogger(__name__)

KB = 1024  # "1 ECPU per kilobyte": taken as 1024 bytes (AWS does not say which kilobyte)
THROTTLE_WAIT = 0.5  # s a command may wait for ECPU budget before it is refused as throttled
BURST = 0.1  # s of ECPUPerSecond.Maximum that may be spent at once (a short burst above the rate)
UNMETERED = {b"COMMAND", b"INFO", b"CLUSTER", b"AUTH", b"HELLO", b"MULTI", b"EXEC", b"CLIENT", b"PING"}
# Local-only timings (not AWS parameters: AWS publishes neither): how long the load must stay low before a
# shard goes, and how often the control plane publishes this cache's metrics (s). tuning.json may shorten them.
TUNABLE = {"scale_in_after": 10.0, "metric_period": 5.0}  # metric_period: the control plane's interval
HIT_COMMANDS = {b"GET", b"GETEX", b"HGET", b"HMGET", b"MGET", b"GETDEL", b"HGETALL", b"LRANGE", b"SMEMBERS",
                b"ZRANGE", b"EXISTS", b"STRLEN", b"HEXISTS", b"SISMEMBER"}


class Metering:
    """The Proxy's events, status, limits and ECPU budget."""

    # --- events, status, limits ------------------------------------------------------------------
    def event(self, message: str) -> None:
        with (self.dir / "events.jsonl").open("a") as fh:
            fh.write(json.dumps({"time": time.time(), "message": message}) + "\n")

    def read_limits(self) -> None:
        path = self.dir / "limits.json"
        with contextlib.suppress(OSError, ValueError):
            mtime = path.stat().st_mtime
            if mtime != self.limits_mtime:
                self.limits = json.loads(path.read_text())
                self.limits_mtime = mtime
                self.apply_storage_limit()

    def read_tuning(self) -> None:
        path = self.dir / "tuning.json"
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            self.tuning = {}
            return
        self.tuning = {k: float(v) for k, v in raw.items() if k in TUNABLE and isinstance(v, (int, float))}

    def setting(self, key: str) -> float:
        """A local timing: tuning.json's value, else the endpoint's configuration, else the default."""
        return float(self.tuning.get(key, self.cfg.get(key, TUNABLE[key])))

    def ecpu_max(self) -> float | None:
        v = (self.limits.get("ECPUPerSecond") or {}).get("Maximum")
        return float(v) if v else None

    def storage_max(self) -> int | None:
        ds = self.limits.get("DataStorage") or {}
        if not ds.get("Maximum"):
            return None
        return int(float(ds["Maximum"]) * float(self.cfg.get("gb_bytes", 1 << 30)))

    def apply_storage_limit(self) -> None:
        """DataStorage.Maximum as each engine's maxmemory (its share, above its empty footprint), with
        volatile-lru: the engines evict keys that have a TTL first and answer OOM when none is left."""
        cap = self.storage_max()
        for b in self.backends.values():
            asyncio.get_event_loop().create_task(self._set_maxmemory(b, cap))

    async def _set_maxmemory(self, b: Backend, cap: int | None) -> None:
        try:
            if cap is None:
                await self.admin(b, "CONFIG", "SET", "maxmemory", "0")
                return
            info = await self.admin(b, "INFO", "memory")
            startup = _info_field(info, "used_memory_startup")
            share = cap // max(len(self.backends), 1)
            await self.admin(b, "CONFIG", "SET", "maxmemory", str(startup + share))
        except BACKEND_ERRORS as exc:  # a backend being replaced: its replacement gets the limit when it starts
            log.warning("could not set maxmemory on backend %s of %s: %s", b.ident, self.name, exc)

    def status(self) -> dict[str, Any]:
        now = time.time()
        return {"time": now, "pid": os.getpid(), "ready": True, "scaling": self.scaling,
                "backends": [{"id": b.ident, "port": b.port, "pid": b.node.pid, "used": b.used, "keys": b.keys,
                              "replica_port": b.replica.port if b.replica else None,
                              "replica_pid": b.replica.node.pid if b.replica else None,
                              "slots": sum(1 for o in self.slot_owner if o == b.ident)}
                             for b in self.backends.values()],
                "bytes_used": sum(b.used for b in self.backends.values()),
                "items": sum(b.keys for b in self.backends.values()),
                "volatile_items": sum(b.volatile for b in self.backends.values()),
                "evictions": sum(b.evictions for b in self.backends.values()),
                "ecpu_per_second": self.ecpu_rate(), "metric_period": self.tuning.get("metric_period"), **self.c}

    def write_status(self) -> None:
        tmp = self.dir / "status.json.tmp"
        tmp.write_text(json.dumps(self.status()))
        os.replace(tmp, self.dir / "status.json")

    def ecpu_rate(self, window: float = 5.0) -> float:
        now = time.monotonic()
        pts = [(t, e) for t, e in self.rate_window if now - t <= window]
        if len(pts) < 2:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / max(pts[-1][0] - pts[0][0], 1e-3)


    # --- ECPU --------------------------------------------------------------------------------------
    def ecpus(self, name: bytes, nbytes: int, backend: Backend | None) -> float:
        kb = nbytes / KB
        spec = self.spec(name)
        simple = spec is not None and b"FAST" in spec[1]
        vcpu = 1.0
        if not simple and backend is not None:
            base = backend.usec.get("get") or backend.usec.get("set")
            own = backend.usec.get(name.decode(errors="replace").lower())
            if base and own:
                vcpu = own / base
        return max(1.0, kb, vcpu)

    def refill(self) -> None:
        mx = self.ecpu_max()
        now = time.monotonic()
        if mx is None:
            self.tokens = 0.0
        else:
            self.tokens = min(mx * BURST, self.tokens + (now - self.last_refill) * mx)
        self.last_refill = now

    async def throttle(self) -> bool:
        """True to go on; False when the command must be refused (no ECPU budget within THROTTLE_WAIT)."""
        mx = self.ecpu_max()
        if mx is None:
            return True
        self.refill()
        if self.tokens > 0:
            return True
        self.c["throttled"] += 1
        wait = -self.tokens / mx + 0.001
        if wait > THROTTLE_WAIT:
            return False
        await asyncio.sleep(wait)
        self.refill()
        return True



def _info_field(info: Any, field: str) -> int:
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith(field + ":"):
            with contextlib.suppress(ValueError):
                return int(float(line.split(":", 1)[1]))
    return 0


def _keyspace(info: Any, what: str) -> int:
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    total = 0
    for line in text.splitlines():
        if line.startswith("db") and ":" in line:
            for part in line.split(":", 1)[1].split(","):
                k, _, v = part.partition("=")
                if k == what:
                    total += int(v)
    return total


def _commandstats(info: Any) -> dict[str, float]:
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    out = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[8:].partition(":")
            for part in rest.split(","):
                k, _, v = part.partition("=")
                if k == "usec_per_call":
                    with contextlib.suppress(ValueError):
                        out[name.replace("|", " ")] = float(v)
    return out
