"""Scaling a serverless cache behind its endpoint: the monitor (stats, limits, failed engines), scaling out and
in, and moving slots (MIGRATE) while the commands for them wait; blocked clients follow their slot.

Part of the endpoint's Proxy (proxy.py), which mixes this in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from helpers.runtime.serverless.backends import BACKEND_ERRORS, Backend
from helpers.runtime.serverless.metering import _commandstats, _info_field, _keyspace
from helpers.runtime.serverless.resp import SLOTS, ReplyError

log = logging.getLogger(__name__)

CHUNK = 1024  # slots moved at a time while scaling


class Blocked:
    """A client's blocking command (BLPOP, XREAD BLOCK...) waiting on one engine."""

    def __init__(self, client: Any, slot: int, backend: Backend):
        self.client = client
        self.slot = slot
        self.backend = backend
        self.moved = False  # its slot moved: it was unblocked there and goes again to the slot's new owner

    def local_address(self) -> str | None:
        conn = self.client.conns.get(self.backend.ident)
        if conn is None:
            return None
        with contextlib.suppress(TypeError, ValueError):
            host, port = conn[1].get_extra_info("sockname")[:2]
            return f"{host}:{port}"
        return None


NULL_REPLIES = {b"*-1\r\n", b"$-1\r\n", b"_\r\n"}  # what a blocking command answers when it times out


def reblocked(args: list[bytes], elapsed: float) -> list[bytes]:
    """A blocking command sent again after `elapsed` s: its timeout less what it already waited (0 stays 0)."""
    name = args[0].upper()
    out = list(args)
    if name in (b"BLMPOP", b"BZMPOP"):
        at, scale = 1, 1.0
    elif name in (b"XREAD", b"XREADGROUP"):
        at = next((i + 1 for i, a in enumerate(args[:-1]) if a.upper() == b"BLOCK"), -1)
        scale = 1000.0
    else:  # BLPOP BRPOP BZPOPMIN BZPOPMAX BRPOPLPUSH BLMOVE: the timeout is the last argument
        at, scale = len(args) - 1, 1.0
    if at <= 0:
        return out
    try:
        timeout = float(out[at])
    except ValueError:
        return out
    if timeout <= 0:
        return out
    left = max(timeout - elapsed * scale, 1.0 if scale > 1 else 0.001)
    out[at] = str(int(left) if scale > 1 else round(left, 3)).encode()
    return out


class Scaling:
    """The Proxy's monitor, its scaling out and in, and the slot moves both make."""

    # --- scaling -----------------------------------------------------------------------------------
    async def monitor(self) -> None:
        while not self.stopping:
            self.read_limits()
            self.read_users()
            self.read_tuning()
            pending = self.check_backends()
            if pending:
                await asyncio.gather(*[asyncio.shield(t) for t in pending], return_exceptions=True)
            for b in list(self.backends.values()):
                try:
                    await self.poll(b)
                except (*BACKEND_ERRORS, ValueError, LookupError) as exc:  # a failed backend: recovery replaces it
                    log.debug("could not read the stats of backend %s of %s: %s", b.ident, self.name, exc)
            self.rate_window.append((time.monotonic(), self.c["ecpu"]))
            self.rate_window = self.rate_window[-60:]
            with contextlib.suppress(OSError):
                self.write_status()
            if not self.scaling and (self.scale_task is None or self.scale_task.done()):
                # its own task: the counters and status.json stay current while slots move
                self.scale_task = asyncio.get_event_loop().create_task(self.autoscale_reported())
            await asyncio.sleep(float(self.cfg.get("monitor_interval", 0.5)))

    async def poll(self, b: Backend) -> None:
        """A backend's memory, keys and command costs, from its INFO (the Memcached endpoint reads `stats`)."""
        info = (await self.admin(b, "INFO", "all"))
        # the data's memory: not the engine's empty footprint, nor what replication to its replica takes
        b.used = max(0, _info_field(info, "used_memory") - _info_field(info, "used_memory_startup")
                     - _info_field(info, "mem_replication_backlog")
                     - _info_field(info, "mem_clients_slaves"))
        b.keys = _keyspace(info, "keys")
        b.volatile = _keyspace(info, "expires")
        b.evictions = _info_field(info, "evicted_keys")
        b.usec = _commandstats(info)

    async def autoscale_reported(self) -> None:
        try:
            await self.autoscale()
        except Exception as exc:  # whatever failed is reported as an event; the cache keeps serving
            log.exception("scaling serverless cache %s failed", self.name)
            self.event(f"Serverless cache {self.name} could not change its capacity: {exc}")

    def wanted_backends(self) -> int:
        cap_bytes = int(self.cfg.get("backend_bytes", 4 << 20))
        cap_ecpu = float(self.cfg.get("backend_ecpu", 4000))
        used = sum(b.used for b in self.backends.values())
        rate = self.ecpu_rate()
        need = max(math.ceil(used / (0.8 * cap_bytes)), math.ceil(rate / (0.8 * cap_ecpu)), 1)
        ecpu_min = (self.limits.get("ECPUPerSecond") or {}).get("Minimum")
        if ecpu_min:
            need = max(need, math.ceil(float(ecpu_min) / cap_ecpu))
        return max(int(self.cfg.get("min_backends", 1)), min(need, int(self.cfg.get("max_backends", 4))))

    async def autoscale(self) -> None:
        n = len(self.backends)
        want = self.wanted_backends()
        if want > n:
            self.low_since = None
            await self.scale_out()
        elif want < n:
            now = time.monotonic()
            self.low_since = self.low_since or now
            if now - self.low_since >= self.setting("scale_in_after"):
                self.low_since = None
                await self.scale_in()
        else:
            self.low_since = None

    async def scale_out(self) -> None:
        self.scaling = True
        started = time.monotonic()
        try:
            self.event(f"Serverless cache {self.name} is scaling out: adding capacity "
                       f"({len(self.backends)} -> {len(self.backends) + 1} shards behind the endpoint)")
            new = await self.add_backend()
            for c in list(self.clients):  # subscribers first: a moved channel's messages reach them there
                if c.subscribed():
                    with contextlib.suppress(*BACKEND_ERRORS):
                        await c.sub_attach(new)
            share = SLOTS // len(self.backends)
            moves: list[tuple[int, int]] = []  # (slot, from)
            for b in list(self.backends.values()):
                if b is new:
                    continue
                owned = [s for s in range(SLOTS) if self.slot_owner[s] == b.ident]
                extra = len(owned) - share
                moves += [(s, b.ident) for s in owned[len(owned) - max(extra, 0):]] if extra > 0 else []
            moved_keys = await self.move_slots([s for s, _ in moves], new)
            self.event(f"Serverless cache {self.name} scaled out to {len(self.backends)} shards: "
                       f"{len(moves)} slots and {moved_keys} keys moved in {time.monotonic() - started:.1f} s, "
                       "endpoint unchanged")
        finally:
            self.scaling = False

    async def scale_in(self) -> None:
        if len(self.backends) <= 1:
            return
        self.scaling = True
        started = time.monotonic()
        try:
            victim = max(self.backends.values(), key=lambda b: b.ident)
            self.event(f"Serverless cache {self.name} is scaling in: removing capacity "
                       f"({len(self.backends)} -> {len(self.backends) - 1} shards)")
            rest = [b for b in self.backends.values() if b is not victim]
            slots = [s for s in range(SLOTS) if self.slot_owner[s] == victim.ident]
            moved = 0
            for i, b in enumerate(rest):
                part = slots[i::len(rest)]
                moved += await self.move_slots(part, b)
            self.backends.pop(victim.ident, None)
            if victim.replica is not None:
                await self.stop_backend(victim.replica)
            await self.stop_backend(victim)
            self.event(f"Serverless cache {self.name} scaled in to {len(self.backends)} shards: {len(slots)} slots "
                       f"and {moved} keys moved in {time.monotonic() - started:.1f} s")
        finally:
            self.scaling = False

    async def move_slots(self, slots: list[int], target: Backend) -> int:
        moved = 0
        slots = sorted(slots)
        for i in range(0, len(slots), CHUNK):
            chunk = slots[i:i + CHUNK]
            ev = asyncio.Event()
            for s in chunk:
                self.held[s] = ev
            try:
                deadline = time.monotonic() + 5
                while any(self.inflight[s] for s in chunk) and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
                by_source: dict[int, list[int]] = {}
                for s in chunk:
                    by_source.setdefault(self.slot_owner[s], []).append(s)
                for src_id, owned in by_source.items():
                    src = self.backends.get(src_id)
                    if src is not None and src is not target:
                        moved += await self._migrate(src, target, owned)
                for s in chunk:
                    self.slot_owner[s] = target.ident
                await self.unblock_moved(set(chunk))
            finally:
                for s in chunk:
                    self.held.pop(s, None)
                ev.set()
        return moved

    async def unblock_moved(self, slots: set[int], timeout: float = 5.0) -> None:
        """Clients blocked (BLPOP...) on an engine that no longer owns their slot: CLIENT UNBLOCK there, so that
        their command goes again to the slot's new owner (routed). A command still on its way to the engine
        is unblocked once it arrives (asked again until it has returned)."""
        entries = [e for e in self.blocked if e.slot in slots and self.slot_owner[e.slot] != abs(e.backend.ident)]
        for e in entries:
            e.moved = True
        deadline = time.monotonic() + timeout
        while entries and time.monotonic() < deadline:
            by_backend: dict[int, list[Blocked]] = {}
            for e in entries:
                by_backend.setdefault(e.backend.ident, []).append(e)
            for group in by_backend.values():
                src = group[0].backend
                try:
                    listing = await self.admin(src, "CLIENT", "LIST")
                except (ReplyError, ConnectionError, OSError, asyncio.TimeoutError):
                    continue  # the engine is gone: its clients' commands fail and go again (recovered)
                ids = {}
                for line in listing.decode(errors="replace").splitlines():
                    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                    if "b" in fields.get("flags", ""):
                        ids[fields.get("addr")] = fields.get("id")
                for e in group:
                    cid = ids.get(e.local_address())
                    if cid is not None:
                        with contextlib.suppress(ReplyError):
                            await self.admin(src, "CLIENT", "UNBLOCK", cid)
            await asyncio.sleep(0.01)
            entries = [e for e in entries if e in self.blocked]

    async def _migrate(self, src: Backend, target: Backend, slots: list[int]) -> int:
        """Move every key of `slots` from src to target (the slots' commands are held meanwhile); each slot
        belongs to the target as soon as its keys are there. MIGRATE takes one slot's keys at a time."""
        moved = 0
        for _round in range(1000):
            counts = await self.admin_many(src, [("CLUSTER", "COUNTKEYSINSLOT", str(s)) for s in slots])
            for s, n in zip(slots, counts, strict=True):
                if n == 0:
                    self.slot_owner[s] = target.ident
            slots = [s for s, n in zip(slots, counts, strict=True) if isinstance(n, int) and n > 0]
            if not slots:
                return moved
            lists = await self.admin_many(src, [("CLUSTER", "GETKEYSINSLOT", str(s), "1000") for s in slots])
            migrate = [("MIGRATE", "127.0.0.1", str(target.port), "", "0", "30000", "REPLACE", "AUTH", self.password,
                        "KEYS", *keys) for keys in lists if isinstance(keys, list) and keys]
            for i in range(0, len(migrate), 200):
                for reply in await self.admin_many(src, migrate[i:i + 200]):
                    if isinstance(reply, ReplyError) and not str(reply).startswith("NOKEY"):
                        raise reply
            moved += sum(len(c) - 10 for c in migrate)
        raise RuntimeError("keys kept arriving in slots being moved")
