"""The endpoint of a serverless Memcached cache: one asyncio process that speaks the memcached text protocol
over TLS and spreads the items over real memcached processes on loopback, as ElastiCache Serverless for
Memcached does.

To clients it is ONE memcached server (no Auto Discovery, no client-side hashing): every key is routed by
its hash slot (the same 16,384 slots as the Valkey/Redis OSS endpoint) to the memcached process that owns
the slot. It reuses the Valkey/Redis OSS endpoint (proxy.py) for everything that is not the protocol:
CacheUsageLimits (limits.json), ECPU metering and throttling, status.json and events.jsonl, and scaling
(when the data or ECPU/s outgrow the backends a new memcached starts and slots move to it; when the load
drops a backend's slots move back and it stops). Moving a slot here lists the source's items with
`lru_crawler metadump all` and copies each (value, flags, absolute expiry) with get + set, then deletes it
from the source, while commands for the slots that move wait.

Commands: get gets gat gats set add replace append prepend cas delete incr decr touch flush_all version
stats quit, and the meta commands mg ms md ma mn. Items' CAS values change when their slot moves. Refused as
AWS lists it for serverless (UNSUPPORTED below): delayed flush_all, stats other than `stats`/`stats reset`,
verbosity, lru, lru_crawler, watch, me, and get/gets lines over 16 KB. A value over memcached's item size
limit is read and dropped, never held (memcached's `SERVER_ERROR object too large for cache`).
DataStorage.Maximum: each memcached gets its share as `cache_memlimit` and runs with -M (no eviction of its
own); when a write does not fit, the endpoint evicts the least recently used items that have a TTL and
retries, and if none is left the client gets memcached's `SERVER_ERROR out of memory storing object`.

There is no reader endpoint (AWS gives Memcached none): the port after the endpoint's, which the shared
code binds, closes every connection without a byte.

Started by the "serverless" topology (helpers.runtime.serverless) for engine memcached:
`python -m helpers.runtime.serverless.memcached CONFIG`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from helpers.runtime.serverless.backends import BACKEND_ERRORS, Backend
from helpers.runtime.serverless.client import Client
from helpers.runtime.serverless.proxy import Proxy
from helpers.runtime.serverless.resp import key_slot

MB = 1 << 20
BACKEND_MB = 1024  # a backend's memory without a DataStorage maximum (memcached allocates as items arrive)
MIN_MEMLIMIT_MB = 8  # memcached refuses cache_memlimit below 8 MB
STORE = {b"set", b"add", b"replace", b"append", b"prepend", b"cas"}
RETRIEVE = {b"get", b"gets", b"gat", b"gats"}
KEYED = {b"delete", b"incr", b"decr", b"touch", b"mg", b"ms", b"md", b"ma"}
WRITES = STORE | {b"delete", b"incr", b"decr", b"touch", b"ms", b"md", b"ma", b"gat", b"gats"}
OOM = b"SERVER_ERROR out of memory storing object"
# AWS's page "Supported Memcached commands" (ElastiCache Serverless for Memcached; read 2026-12-07): every
# memcached 1.6 command but these: UDP and the binary protocol; "GET/GETS commands are limited to 16KB";
# "Delayed flush_all command will be rejected with CLIENT_ERROR"; and commands that configure the engine or
# reveal its state are not supported: only `stats` and `stats reset` ("Other variations will return ERROR"),
# lru / lru_crawler, watch, verbosity, me. AWS gives no wording for the 16 KB and flush_all refusals: the
# words here are ours (memcached's CLIENT_ERROR form).
UNSUPPORTED = {b"lru", b"lru_crawler", b"watch", b"verbosity", b"me"}
GET_LINE_MAX = 16 * 1024  # a get/gets command line, with its keys
# memcached's item size limit (-I, 1 MB by default, as the memcached processes behind the endpoint run): a
# larger value is read and dropped and refused with memcached's own words, without being held in memory.
MAX_ITEM_BYTES = 1 << 20
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
# Replies that a meta command's q flag leaves out (memcached's "noreply semantics for return codes").
QUIET = {b"mg": (b"EN",), b"ms": (b"HD",), b"md": (b"HD", b"NF"), b"ma": (b"HD", b"NF")}
STAT_SUMS = ("curr_items", "total_items", "bytes", "evictions", "reclaimed", "expired_unfetched", "cmd_get",
             "cmd_set", "cmd_touch", "get_hits", "get_misses", "get_expired", "delete_hits", "delete_misses",
             "incr_hits", "incr_misses", "decr_hits", "decr_misses", "cas_hits", "cas_misses", "touch_hits",
             "touch_misses", "limit_maxbytes")


class MemcachedBackend(Backend):
    """One memcached process behind the endpoint (the attributes the shared scaling code reads)."""

    def __init__(self, ident: int, node: Any):
        super().__init__(ident, node)
        self.ttl_evicted = 0  # items the endpoint evicted (TTL first) for DataStorage.Maximum


async def read_response(r: asyncio.StreamReader, multi: bool) -> bytes:
    """One memcached reply: a line, or (multi) VALUE blocks / STAT or metadump lines up to END."""
    out = bytearray()
    while True:
        line = await asyncio.wait_for(r.readuntil(b"\r\n"), 30)
        out += line
        if line.startswith(b"VALUE "):
            out += await r.readexactly(int(line.split()[3]) + 2)
            continue
        if line.startswith(b"VA "):
            out += await r.readexactly(int(line.split()[1]) + 2)
            return bytes(out)
        # (metadump's lines end in a bare \n: its whole listing arrives as one "line" ending in END)
        if not multi or line.endswith(b"END\r\n") or line.startswith((b"ERROR", b"CLIENT_ERROR",
                                                                         b"SERVER_ERROR", b"BUSY")):
            return bytes(out)


def parse_values(reply: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """(key, flags, data) of each VALUE block of a get reply."""
    i = 0
    while reply.startswith(b"VALUE ", i):
        end = reply.index(b"\r\n", i)
        parts = reply[i:end].split()
        n = int(parts[3])
        yield parts[1], int(parts[2]), reply[end + 2:end + 2 + n]
        i = end + 2 + n + 2


def parse_metadump(reply: bytes) -> Iterator[dict[str, str]]:
    """Each item of `lru_crawler metadump`: key (decoded), exp (absolute unix time, -1 = none), la, size."""
    for line in reply.splitlines():
        if not line.startswith(b"key="):
            continue
        fields = dict(part.split("=", 1) for part in line.decode(errors="replace").split() if "=" in part)
        fields["key"] = urllib.parse.unquote_to_bytes(fields["key"]).decode("latin-1")
        yield fields


class MemcachedProxy(Proxy):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.client_class = MemcachedClient

    # --- backends ----------------------------------------------------------------------------------
    def _start_backend_sync(self, ident: int) -> Any:
        from helpers.runtime import engines
        from helpers.runtime.service import memcached_argv

        binary = self.cfg["binary"]
        pidfile = str(self.dir / f"b{ident}.pid")  # names the cache's directory in the command line

        def argv(port: int) -> list[str]:
            return memcached_argv(binary, port, BACKEND_MB, ["-M", "-P", pidfile])

        return engines.start_node(name=f"{self.name}-b{ident}", kind="memcached", role="node", argv_for_port=argv,
                                  workdir=self.dir, probe=engines.probe_memcached)

    async def add_backend(self) -> Any:
        ident = self.next_id
        self.next_id += 1
        node = await asyncio.to_thread(self.start_engine, ident)
        b = MemcachedBackend(ident, node)
        self.backends[ident] = b
        await self.apply_limits()
        return b

    async def replace_primary(self, b: Any) -> None:
        """A failed memcached is replaced by a new, empty one on the same slots: its items are lost, as when
        ElastiCache replaces a failed Memcached node (Memcached has no replicas)."""
        await self.forget(b)
        node = await asyncio.to_thread(self.start_engine, b.ident)
        self.backends[b.ident] = MemcachedBackend(b.ident, node)
        await self.apply_limits()
        self.event(f"Finished recovery for cache nodes {b.node.name}")

    async def load_commands(self, b: Any) -> None:
        return None  # the text protocol's commands are fixed (above)

    def read_users(self) -> None:
        return None  # Memcached serverless caches have no users: security groups only, as on AWS

    def apply_storage_limit(self) -> None:
        asyncio.get_event_loop().create_task(self.apply_limits())

    async def apply_limits(self) -> None:
        """DataStorage.Maximum as each memcached's cache_memlimit (its share; memcached's floor is 8 MB)."""
        cap = self.storage_max()
        for b in list(self.backends.values()):
            mb = BACKEND_MB if cap is None else max(MIN_MEMLIMIT_MB, cap // max(len(self.backends), 1) // MB)
            with contextlib.suppress(*BACKEND_ERRORS):
                await self.admin(b, b"cache_memlimit %d\r\n" % mb)

    def wanted_backends(self) -> int:
        """As for Valkey/Redis OSS, but never so many that a backend's share of DataStorage.Maximum falls
        below memcached's 8 MB floor (the backends together must not hold more than the maximum)."""
        cap = self.storage_max()
        want = super().wanted_backends()
        return want if cap is None else min(want, max(1, cap // (MIN_MEMLIMIT_MB * MB)))

    async def admin(self, b: Any, line: bytes, multi: bool = False) -> bytes:  # type: ignore[override]
        """One command on the endpoint's own connection to a backend (one at a time per backend)."""
        lock = self.admin_locks.setdefault(b.ident, asyncio.Lock())
        async with lock:
            for attempt in range(2):
                conn = self.admin_conns.get(b.ident)
                try:
                    if conn is None:
                        r, w = await asyncio.open_connection("127.0.0.1", b.port, limit=1 << 24)
                        conn = self.admin_conns[b.ident] = (r, w, bytearray())
                    r, w, _buf = conn
                    w.write(line)
                    await w.drain()
                    return await read_response(r, multi)
                except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    self.admin_conns.pop(b.ident, None)
                    if attempt:
                        raise
        return b""

    async def poll(self, b: Any) -> None:
        stats = _stats(await self.admin(b, b"stats\r\n", multi=True))
        b.used = int(stats.get("bytes", 0))
        b.keys = int(stats.get("curr_items", 0))
        b.evictions = int(stats.get("evictions", 0)) + b.ttl_evicted

    async def items(self, b: Any) -> list[dict[str, str]]:
        for _ in range(100):
            reply = await self.admin(b, b"lru_crawler metadump all\r\n", multi=True)
            if not reply.startswith(b"BUSY"):
                return list(parse_metadump(reply))
            await asyncio.sleep(0.05)
        raise RuntimeError("memcached's LRU crawler stayed busy")

    async def _migrate(self, src: Any, target: Any, slots: list[int]) -> int:
        """Copy every item of `slots` from src to target (value, flags, absolute expiry), then delete it from
        src; the slots' commands are held meanwhile by move_slots (proxy.py)."""
        wanted = set(slots)
        expiry = {it["key"].encode("latin-1", errors="replace"): int(it.get("exp", -1)) for it in await self.items(src)}
        keys = [k for k in expiry if key_slot(k) in wanted]
        moved = 0
        for i in range(0, len(keys), 100):
            reply = await self.admin(src, b"get " + b" ".join(keys[i:i + 100]) + b"\r\n", multi=True)
            for key, flags, data in parse_values(reply):
                exp = max(expiry.get(key, -1), 0)
                if exp and exp <= time.time():
                    continue
                stored = await self.admin(target, b"set %s %d %d %d\r\n%s\r\n" % (key, flags, exp, len(data), data))
                if not stored.startswith(b"STORED"):
                    raise RuntimeError(f"moving {key!r}: {stored.decode(errors='replace').strip()}")
                await self.admin(src, b"delete %s\r\n" % key)
                moved += 1
        return moved

    async def evict_ttl(self, b: Any) -> int:
        """DataStorage.Maximum reached: delete the least recently used items that have a TTL (as AWS does),
        a twentieth of them at a time (at least 64)."""
        items = [it for it in await self.items(b) if it.get("exp", "-1") != "-1"]
        items.sort(key=lambda it: (int(it.get("la", 0)), int(it.get("cas", 0))))
        gone = 0
        for it in items[:max(64, len(items) // 20)]:
            reply = await self.admin(b, b"delete %s\r\n" % it["key"].encode("latin-1", errors="replace"))
            gone += reply.startswith(b"DELETED")
        b.ttl_evicted += gone
        return gone

    async def restore(self, files: list[str]) -> None:
        """Load a snapshot (JSON lines: key, flags, absolute expiry or 0, value hex) into the backends."""
        for path in files:
            with open(path) as fh:
                for line in fh:
                    rec = json.loads(line)
                    key, data = rec["k"].encode("latin-1"), bytes.fromhex(rec["v"])
                    if rec.get("exp") and rec["exp"] <= time.time():
                        continue
                    b = self.backends[self.slot_owner[key_slot(key)]]
                    await self.admin(b, b"set %s %d %d %d\r\n%s\r\n" % (key, rec.get("f", 0), rec.get("exp", 0),
                                                                        len(data), data))


class MemcachedClient(Client):
    """One client connection: the memcached text protocol, and its own connection to each backend."""

    async def backend_conn(self, b: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytearray]:
        got = self.conns.get(b.ident)
        if got is None:
            r, w = await asyncio.open_connection("127.0.0.1", b.port, limit=1 << 24)
            got = self.conns[b.ident] = (r, w, bytearray())
        return got

    async def call(self, b: Any, raw: bytes, multi: bool = False) -> bytes:
        for attempt in range(2):
            try:
                r, w, _buf = await self.backend_conn(b)
                w.write(raw)
                await w.drain()
                return await read_response(r, multi)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                self.conns.pop(b.ident, None)
                if attempt:
                    raise
        return b""

    def out(self, data: bytes) -> None:
        self.send(data)

    async def run(self) -> None:
        if self.is_reader:
            return  # AWS gives a serverless Memcached cache one endpoint (no reader endpoint)
        while True:
            await self.w.drain()
            try:
                line = await self.r.readuntil(b"\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                self.out(b"CLIENT_ERROR line too long\r\n")
                await self.w.drain()
                return
            self.p.c["bytes_in"] += len(line)
            tokens = line.split()
            if not tokens:
                self.out(b"ERROR\r\n")
                continue
            cmd = tokens[0]
            data = b""
            try:
                if cmd in STORE or cmd == b"ms":
                    size = int(tokens[4] if cmd in STORE else tokens[2])
                    if size < 0:
                        raise ValueError
                    if size > MAX_ITEM_BYTES:  # as memcached: read the value and drop it, then refuse it
                        await self.swallow(size + 2)
                        if tokens[-1] != b"noreply":
                            self.out(TOO_LARGE)
                        continue
                    data = await self.r.readexactly(size + 2)
                    self.p.c["bytes_in"] += len(data)
            except (IndexError, ValueError):
                self.out(b"CLIENT_ERROR bad command line format\r\n")
                continue
            if cmd == b"quit":
                await self.w.drain()
                return
            try:
                await self.execute_mc(cmd, tokens, line + data)
            except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                self.out(b"SERVER_ERROR the cache could not reach its storage (%s); retry\r\n"
                         % str(exc).encode(errors="replace"))

    async def swallow(self, n: int) -> None:
        """Read and drop `n` bytes of a value the cache refuses, a chunk at a time (never all of it at once)."""
        while n > 0:
            chunk = await self.r.read(min(n, 1 << 16))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", n)
            n -= len(chunk)
            self.p.c["bytes_in"] += len(chunk)

    async def execute_mc(self, cmd: bytes, tokens: list[bytes], raw: bytes) -> None:
        p = self.p
        if cmd in UNSUPPORTED or (cmd == b"stats" and tokens[1:] not in ([], [b"reset"])):
            self.out(b"ERROR\r\n")  # AWS: "Other variations will return ERROR"; the rest "not supported"
        elif cmd in (b"get", b"gets") and len(raw) > GET_LINE_MAX:
            self.out(b"CLIENT_ERROR line too long\r\n")
        elif cmd == b"version":
            self.out(b"VERSION %s\r\n" % str(p.cfg.get("version", "1.6")).split()[-1].encode())
        elif cmd == b"mn":
            self.out(b"MN\r\n")
        elif cmd == b"stats" and tokens[1:] == [b"reset"]:
            for b in list(p.backends.values()):
                await self.call(b, b"stats reset\r\n")
            self.out(b"RESET\r\n")
        elif cmd == b"stats":
            await self.stats()
        elif cmd == b"flush_all" and any(t not in (b"0", b"noreply") for t in tokens[1:]):
            self.out(b"CLIENT_ERROR delayed flush_all is not supported\r\n")  # AWS: "rejected with CLIENT_ERROR"
        elif cmd == b"flush_all":
            for b in list(p.backends.values()):
                await self.call(b, raw.replace(b" noreply", b""))
            if tokens[-1] != b"noreply":
                self.out(b"OK\r\n")
        elif cmd in RETRIEVE:
            await self.retrieve(cmd, tokens)
        elif cmd in STORE or cmd in KEYED:
            if len(tokens) < 2:
                self.out(b"ERROR\r\n")
                return
            await self.keyed(cmd, tokens, raw)
        else:
            self.out(b"ERROR\r\n")

    async def wait_slot(self, slot: int) -> Any:
        p = self.p
        while slot in p.held:
            await p.held[slot].wait()
        return p.backends[p.slot_owner[slot]]

    async def keyed(self, cmd: bytes, tokens: list[bytes], raw: bytes) -> None:
        p = self.p
        key = tokens[1]
        if cmd in QUIET and b"b" in tokens[2 if cmd != b"ms" else 3:]:
            with contextlib.suppress(ValueError):
                key = base64.b64decode(key, validate=True)  # the meta commands' base64 keys route by the key
        quiet = b""
        if cmd in QUIET and b"q" in tokens[2:]:
            quiet, tokens = cmd, [t for t in tokens if t != b"q"]
            head, _, rest = raw.partition(b"\r\n")
            raw = b" ".join(t for t in head.split() if t != b"q") + b"\r\n" + rest
        noreply = cmd not in QUIET and tokens[-1] == b"noreply"
        if noreply:  # the endpoint reads every reply itself, so that it can count and route them
            head, _, rest = raw.partition(b"\r\n")
            raw = head.rsplit(b" ", 1)[0] + b"\r\n" + rest
        if not await p.throttle():
            self.out(b"SERVER_ERROR Throttled: the cache is above its ECPUPerSecond maximum (CacheUsageLimits); "
                     b"retry later\r\n")
            return
        slot = key_slot(key)
        b = await self.wait_slot(slot)
        p.inflight[slot] += 1
        t0 = time.perf_counter()
        try:
            try:
                reply = await self.call(b, raw)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                if not await p.recovered(b):  # its memcached failed: the command goes to the replacement
                    raise
                b = await self.wait_slot(slot)
                reply = await self.call(b, raw)
            for _ in range(3):  # DataStorage.Maximum: evict TTL items (LRU first), then it is out of memory
                if not reply.startswith(OOM) or not await p.evict_ttl(b):
                    break
                reply = await self.call(b, raw)
        finally:
            p.inflight[slot] -= 1
        write = cmd in WRITES
        self.account(cmd, len(raw) + len(reply), b, write, (time.perf_counter() - t0) * 1e6, reply)
        if reply.startswith(OOM):
            p.c["oom"] += 1
        if cmd == b"mg":
            p.c["hits" if reply.startswith((b"VA", b"HD")) else "misses"] += 1
        if noreply or (quiet and reply.startswith(QUIET[quiet])):
            return
        self.out(reply)

    async def retrieve(self, cmd: bytes, tokens: list[bytes]) -> None:
        p = self.p
        head, keys = (tokens[:2], tokens[2:]) if cmd in (b"gat", b"gats") else (tokens[:1], tokens[1:])
        if not keys:
            self.out(b"ERROR\r\n")
            return
        if not await p.throttle():
            self.out(b"SERVER_ERROR Throttled: the cache is above its ECPUPerSecond maximum (CacheUsageLimits); "
                     b"retry later\r\n")
            return
        groups: dict[int, list[bytes]] = {}
        for k in keys:
            groups.setdefault(key_slot(k), []).append(k)
        body = bytearray()
        nbytes = 0
        t0 = time.perf_counter()
        by_backend: dict[int, list[bytes]] = {}
        for slot, ks in groups.items():
            b = await self.wait_slot(slot)
            by_backend.setdefault(b.ident, []).extend(ks)
        for ident, ks in by_backend.items():
            b = p.backends[ident]
            slots = {key_slot(k) for k in ks}
            for s in slots:
                p.inflight[s] += 1
            try:
                if any(s in p.held for s in slots):  # a move began meanwhile: ask again, slot by slot
                    reply = b""
                    for s in slots:
                        owner = await self.wait_slot(s)
                        part = await self.call(owner, b" ".join(head + [k for k in ks if key_slot(k) == s]) + b"\r\n",
                                               multi=True)
                        reply += part[:-5] if part.endswith(b"END\r\n") else part
                    reply += b"END\r\n"
                else:
                    reply = await self.call(b, b" ".join(head + ks) + b"\r\n", multi=True)
            finally:
                for s in slots:
                    p.inflight[s] -= 1
            if not reply.endswith(b"END\r\n"):
                self.out(reply)
                return
            body += reply[:-5]
            nbytes += len(reply)
        found = sum(1 for _ in parse_values(bytes(body)))
        p.c["hits"] += found
        p.c["misses"] += len(keys) - found
        self.account(cmd, sum(len(t) + 1 for t in tokens) + 1 + nbytes, None, cmd in WRITES,
                     (time.perf_counter() - t0) * 1e6)
        self.out(bytes(body) + b"END\r\n")

    async def stats(self) -> None:
        p = self.p
        sums = dict.fromkeys(STAT_SUMS, 0)
        for b in list(p.backends.values()):
            st = _stats(await self.call(b, b"stats\r\n", multi=True))
            for k in STAT_SUMS:
                with contextlib.suppress(ValueError):
                    sums[k] += int(st.get(k, 0))
        sums["evictions"] += sum(b.ttl_evicted for b in p.backends.values())
        version = str(p.cfg.get("version", "1.6")).split()[-1]
        lines = [f"STAT pid {os.getpid()}", f"STAT version {version}",
                 f"STAT curr_connections {p.c['curr_connections']}",
                 f"STAT total_connections {p.c['new_connections']}"] + [f"STAT {k} {v}" for k, v in sums.items()]
        self.out(("\r\n".join(lines) + "\r\nEND\r\n").encode())


def _stats(reply: bytes) -> dict[str, str]:
    out = {}
    for line in reply.decode(errors="replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


# --- read by the control plane (snapshots) -----------------------------------------------------------
def _sync_call(sock: socket.socket, fh: Any, line: bytes, multi: bool) -> bytes:
    sock.sendall(line)
    out = bytearray()
    while True:
        got = fh.readline()
        if not got:
            raise ConnectionError("memcached closed the connection")
        out += got
        if got.startswith(b"VALUE "):
            out += fh.read(int(got.split()[3]) + 2)
            continue
        if not multi or got.endswith(b"END\r\n") or got.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR", b"BUSY")):
            return bytes(out)


def dump_items(port: int) -> Iterator[dict[str, Any]]:
    """Every item of one backend: key, flags, absolute expiry (0 = none) and value, for a snapshot."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rb") as fh:
        for _ in range(200):
            reply = _sync_call(sock, fh, b"lru_crawler metadump all\r\n", True)
            if not reply.startswith(b"BUSY"):
                break
            time.sleep(0.05)
        items = {it["key"].encode("latin-1", errors="replace"): int(it.get("exp", -1))
                 for it in parse_metadump(reply)}
        keys = list(items)
        for i in range(0, len(keys), 100):
            for key, flags, data in parse_values(_sync_call(sock, fh, b"get " + b" ".join(keys[i:i + 100]) + b"\r\n",
                                                            True)):
                exp = items.get(key, -1)
                yield {"k": key.decode("latin-1"), "f": flags, "exp": exp if exp > 0 else 0, "v": data.hex()}


if __name__ == "__main__":
    from helpers.runtime.serverless import proxy

    sys.exit(proxy.main(sys.argv[1:], MemcachedProxy))
