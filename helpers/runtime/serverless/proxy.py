"""The endpoint of a serverless cache: one asyncio process that speaks RESP2/RESP3 over TLS and
spreads the data over real engine processes on loopback, as ElastiCache Serverless does.

To clients it is a Valkey/Redis OSS cluster of one shard (CLUSTER SLOTS/SHARDS/NODES name the
endpoint itself for slots 0-16383, and the reader endpoint as its replica); behind it, every hash
slot belongs to one backend engine (each a one-node cluster owning every slot, so the engine itself
answers CROSSSLOT, CLUSTER GETKEYSINSLOT and MIGRATE). It:

- routes each command by the hash slot of its keys (COMMAND's key positions; COMMAND GETKEYS for
  commands whose keys move), answers CROSSSLOT when a command's keys span slots;
- meters ECPUs (AWS's rule: 1 ECPU per KB transferred for simple commands, minimum 1; for costlier
  commands the higher of that and their engine CPU time relative to a GET/SET, read from the
  engine's own INFO commandstats) and throttles above CacheUsageLimits.ECPUPerSecond.Maximum;
- scales out (a new backend, slots moved with MIGRATE while the proxy holds commands for the slots
  that move) when data or ECPU/s outgrow the backends, and back in when the load drops;
- writes status.json (counters, backends) and events.jsonl in its directory; reads limits.json.

Started by the "serverless" topology (helpers.runtime.serverless): `python -m helpers.runtime.serverless CONFIG`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime.serverless.resp import (
    SLOTS,
    Incomplete,
    ProtocolError,
    Push,
    ReplyError,
    command,
    encode,
    key_slot,
    parse_command,
    parse_value,
    reply_end,
)
from helpers.runtime.state import LabError

log = logging.getLogger(__name__)

#: What a command on a backend engine can raise: its error reply, a lost or refused connection, no answer in
#: time, a reply cut short or one that does not parse.
BACKEND_ERRORS = (ReplyError, ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                  ProtocolError)
#: What stopping an engine process can raise: its process table entry or pid file gone or unreadable.
NODE_ERRORS = (OSError, psutil.Error, LabError)
# What one request may hold (the endpoint refuses more before it reads it, so it never buffers more):
# - one argument: 32 MiB, AWS's largest key+value on ElastiCache Serverless for Valkey/Redis OSS (its quota
#   page; not in the copy of AWS's pages searched on 2026-12-07: check it). An engine with proto-max-bulk-len
#   32mb answers the same `ERR Protocol error: invalid bulk length` and closes, which is what is answered here.
# - the query buffer: client-query-buffer-limit 1 GiB (AWS, "Valkey and Redis OSS configuration and limits",
#   Serverless caches); past it the engine closes the connection without a reply.
MAX_ITEM_BYTES = 32 << 20
QUERY_BUFFER_LIMIT = 1 << 30
KB = 1024  # "1 ECPU per kilobyte": taken as 1024 bytes (AWS does not say which kilobyte)
CHUNK = 1024  # slots moved at a time while scaling
THROTTLE_WAIT = 0.5  # s a command may wait for ECPU budget before it is refused as throttled
RETRY_RECOVERY = 5.0  # s between two attempts to recover a shard whose recovery failed
BURST = 0.1  # s of ECPUPerSecond.Maximum that may be spent at once (a short burst above the rate)
# Commands the endpoint answers itself, or refuses as ElastiCache Serverless does.
RESTRICTED = {b"CONFIG", b"DEBUG", b"MONITOR", b"SHUTDOWN", b"SLAVEOF", b"REPLICAOF", b"SYNC", b"PSYNC",
              b"BGSAVE", b"SAVE", b"BGREWRITEAOF", b"LASTSAVE", b"ACL", b"MODULE", b"MIGRATE", b"FAILOVER",
              b"SWAPDB", b"MOVE", b"LATENCY", b"SLOWLOG", b"MEMORY", b"OBJECT", b"SCRIPT", b"FUNCTION",
              b"PSUBSCRIBE", b"PUNSUBSCRIBE", b"KEYS", b"WAIT", b"FCALL", b"FCALL_RO"}  # AWS's serverless list
# Pub/sub: a subscriber is subscribed on every engine behind the endpoint (SUBSCRIBE there, or SSUBSCRIBE
# for shard channels), and a message is published on the engine that owns its channel's slot, so it
# reaches every subscriber once, whichever engine the slot moves to.
SUBSCRIBE_CMDS = {b"SUBSCRIBE": b"channel", b"SSUBSCRIBE": b"shard"}
UNSUBSCRIBE_CMDS = {b"UNSUBSCRIBE": b"channel", b"SUNSUBSCRIBE": b"shard"}
IN_SUBSCRIBED = {b"SUBSCRIBE", b"SSUBSCRIBE", b"UNSUBSCRIBE", b"SUNSUBSCRIBE", b"PSUBSCRIBE", b"PUNSUBSCRIBE",
                 b"PING", b"QUIT", b"RESET"}
UNMETERED = {b"COMMAND", b"INFO", b"CLUSTER", b"AUTH", b"HELLO", b"MULTI", b"EXEC", b"CLIENT", b"PING"}
# Local-only timings (not AWS parameters: AWS publishes neither): how long the load must stay low before a
# shard goes, and how often the control plane publishes this cache's metrics (s). tuning.json may shorten them.
TUNABLE = {"scale_in_after": 10.0, "metric_period": 5.0}  # metric_period: the control plane's interval
LOCAL = {b"PING", b"CLUSTER", b"READONLY", b"READWRITE", b"SELECT", b"CLIENT", b"MULTI", b"EXEC", b"DISCARD",
         b"DBSIZE", b"FLUSHALL", b"FLUSHDB", b"SCAN", b"INFO", b"RESET", b"ECHO", b"PUBSUB", b"PUBLISH",
         b"SPUBLISH", b"SUBSCRIBE", b"SSUBSCRIBE", b"UNSUBSCRIBE", b"SUNSUBSCRIBE"}
NOT_PIPELINED = {b"QUIT", b"HELLO", b"AUTH", b"WATCH", b"UNWATCH", b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO",
                 b"FCALL", b"FCALL_RO", b"COMMAND"}
HIT_COMMANDS = {b"GET", b"GETEX", b"HGET", b"HMGET", b"MGET", b"GETDEL", b"HGETALL", b"LRANGE", b"SMEMBERS",
                b"ZRANGE", b"EXISTS", b"STRLEN", b"HEXISTS", b"SISMEMBER"}


class Backend:
    def __init__(self, ident: int, node: Any):
        self.ident = ident
        self.node = node  # helpers.runtime.engines.Node
        self.port: int = node.port
        self.alive = True
        self.used = 0
        self.keys = 0
        self.volatile = 0
        self.evictions = 0
        self.usec: dict[str, float] = {}  # command -> usec per call (INFO commandstats)
        self.replica: Backend | None = None  # the shard's replica (ident -ident): what the reader endpoint reads


class Blocked:
    """A client's blocking command (BLPOP, XREAD BLOCK...) waiting on one engine."""

    def __init__(self, client: Client, slot: int, backend: Backend):
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


class Proxy:
    client_class: Any = None  # Client (below); the Memcached endpoint (memcached.py) has its own

    def __init__(self, config: dict[str, Any]):
        self.cfg = config
        self.dir = Path(config["workdir"])
        self.name = config["name"]
        self.host = config.get("host", "127.0.0.1")
        self.password = Path(config["password_file"]).read_text().strip()
        self.backends: dict[int, Backend] = {}
        self.next_id = 1
        self.slot_owner = [0] * SLOTS
        self.held: dict[int, asyncio.Event] = {}
        self.inflight = [0] * SLOTS
        self.commands: dict[bytes, tuple[int, set[bytes], int, int, int]] = {}
        self.limits: dict[str, Any] = {}
        self.limits_mtime = 0.0
        self.tuning: dict[str, float] = {}  # tuning.json: local-only timings a lab may shorten (see __init__)
        self.tokens = 0.0
        self.last_refill = time.monotonic()
        self.c = {"ecpu": 0.0, "throttled": 0, "cmds": 0, "bytes_in": 0, "bytes_out": 0, "hits": 0, "misses": 0,
                  "curr_connections": 0, "new_connections": 0, "oom": 0, "read_cmds": 0, "write_cmds": 0,
                  "read_usec": 0.0, "write_usec": 0.0}
        self.rate_window: list[tuple[float, float]] = []  # (time, ecpu total)
        self.scaling = False
        self.low_since: float | None = None
        self.node_id = hashlib.sha1(f"{self.name}-primary".encode()).hexdigest()
        self.reader_id = hashlib.sha1(f"{self.name}-reader".encode()).hexdigest()
        self.users: dict[str, Any] = {}
        self.stopping = False
        self.admin_conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter, bytearray]] = {}
        self.admin_locks: dict[int, asyncio.Lock] = {}
        self.clients: set[Client] = set()
        self.scale_task: asyncio.Task | None = None
        # Every engine this endpoint started, and how many starts are under way (a start runs in a thread,
        # which a cancelled scale-out does not stop): the endpoint stops them all when it stops.
        self.started: list[Any] = []
        self.starting = 0
        self.started_lock = threading.Lock()
        # A failed engine behind the endpoint: its shard's recovery under way (shard -> task), and a count that
        # names the nodes started to replace failed ones.
        self.recoveries: dict[int, asyncio.Task] = {}
        self.failed_at: dict[int, float] = {}  # shard -> when its last recovery failed (monotonic)
        self.blocked: set[Blocked] = set()  # clients' blocking commands under way
        self.replacements = 0

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

    # --- backends --------------------------------------------------------------------------------
    def _start_backend_sync(self, ident: int, primary_port: int | None = None, tag: str | None = None) -> Any:
        """A shard's primary (a one-node cluster owning every slot), or with `primary_port` its replica (read by
        the reader endpoint). `tag` names its files: a node that replaces a failed one gets a new one."""
        from helpers.runtime import engines
        from helpers.runtime.service import redis_conf

        binary = self.cfg["binary"]
        if primary_port is None:
            tag = tag or f"b{ident}"
            conf = {"cluster-enabled": "yes", "cluster-config-file": str(self.dir / f"nodes-{tag}.conf"),
                    "save": "", "appendonly": "no", "maxmemory-policy": "volatile-lru", "dbfilename": f"{tag}.rdb",
                    # its replica syncs at once, without a file, with a small backlog (memory: Binder's 2 GB)
                    "repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0", "repl-backlog-size": "256kb"}
            (self.dir / f"nodes-{tag}.conf").unlink(missing_ok=True)  # a new shard starts as an empty cluster
        else:
            # A cluster node too (it joins its primary's one-node cluster as its replica, in add_replica), so
            # that when the primary dies it takes the slots over (CLUSTER FAILOVER TAKEOVER) and goes on
            # answering CROSSSLOT, GETKEYSINSLOT and MIGRATE as its primary did.
            tag = tag or f"b{ident}r"
            conf = {"cluster-enabled": "yes", "cluster-config-file": str(self.dir / f"nodes-{tag}.conf"),
                    "cluster-replica-no-failover": "yes", "masterauth": self.password, "replica-read-only": "yes",
                    "save": "", "appendonly": "no", "repl-diskless-load": "swapdb", "dbfilename": f"{tag}.rdb",
                    "maxmemory-policy": "volatile-lru", "repl-diskless-sync": "yes",
                    "repl-diskless-sync-delay": "0", "repl-backlog-size": "256kb"}
            (self.dir / f"nodes-{tag}.conf").unlink(missing_ok=True)

        def argv(port: int) -> list[str]:
            return [binary, str(redis_conf(port, self.dir, conf, self.password, filename=f"{tag}.conf"))]

        return engines.start_node(name=f"{self.name}-{tag}", kind="redis", role="replica" if primary_port else "node",
                                  argv_for_port=argv, workdir=self.dir, probe=engines.probe_redis, bus_offset=10000)

    def start_engine(self, *args: Any) -> Any:
        """_start_backend_sync(*args), recorded in `started` for the endpoint's last clean-up (run in a thread)."""
        with self.started_lock:
            self.starting += 1
        try:
            node = self._start_backend_sync(*args)
            with self.started_lock:
                self.started.append(node)
            return node
        finally:
            with self.started_lock:
                self.starting -= 1

    async def stop_every_engine(self, timeout: float = 60.0) -> None:
        """Stop every engine this endpoint started, once the starts under way have finished."""
        deadline = time.monotonic() + timeout
        while self.starting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        with self.started_lock:
            nodes = list(self.started)
        for node in nodes:
            with contextlib.suppress(*NODE_ERRORS):
                await asyncio.to_thread(node.stop)

    async def add_replica(self, b: Backend, tag: str | None = None) -> None:
        """The shard's replica, once its link to the primary is up (so the reader endpoint never reads an empty
        copy of a shard that has data)."""
        node = await asyncio.to_thread(self.start_engine, b.ident, b.port, tag)
        rep = Backend(-b.ident, node)
        try:
            primary_id = (await self.admin(b, "CLUSTER", "MYID")).decode()
            await self.admin(rep, "CLUSTER", "MEET", "127.0.0.1", str(b.port))
            for _ in range(200):  # it must know its primary before it can replicate it
                try:
                    await self.admin(rep, "CLUSTER", "REPLICATE", primary_id)
                    break
                except ReplyError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the replica of shard {b.ident} did not meet its primary")
            for _ in range(200):
                info = await self.admin(rep, "INFO", "replication")
                if b"master_link_status:up" in info:
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the replica of shard {b.ident} did not reach its primary")
            await self.apply_users(rep)
        except BaseException:
            await self.stop_backend(rep)
            raise
        b.replica = rep

    async def stop_backend(self, b: Backend) -> None:
        b.alive = False
        conn = self.admin_conns.pop(b.ident, None)
        if conn:
            conn[1].close()
        await asyncio.to_thread(b.node.stop)

    # --- recovery (a node behind the endpoint fails: ElastiCache replaces it, the endpoint stays) ------------
    def check_backends(self) -> list[asyncio.Task]:
        """A recovery for each shard whose primary or replica process is gone (killed, crashed)."""
        out: list[asyncio.Task] = []
        if self.stopping:
            return out  # the endpoint stops its engines itself: nothing to replace
        for b in list(self.backends.values()):
            if not b.node.alive() or (b.replica is not None and not b.replica.node.alive()):
                out.append(self.recover_soon(b.ident))
        return out

    def recover_soon(self, ident: int) -> asyncio.Task:
        task = self.recoveries.get(ident)
        if task is not None and task.done() and time.monotonic() - self.failed_at.get(ident, -1e9) < RETRY_RECOVERY:
            return task  # it failed a moment ago: tried again a little later, not twice a second
        if task is None or task.done():
            task = self.recoveries[ident] = asyncio.get_event_loop().create_task(self.recover(ident))
        return task

    async def recovered(self, b: Backend) -> bool:
        """After a command failed to reach `b`: True once a failed `b` is replaced (the command may go again)."""
        def healthy(x: Backend | None) -> bool:
            return x is not None and x.node.alive() and (x.replica is None or x.replica.node.alive())

        if self.backends.get(b.ident) is b and healthy(b):
            return False  # not a failed engine: the error stands
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.recover_soon(b.ident)), 60)
        return healthy(self.backends.get(b.ident))

    async def recover(self, ident: int) -> None:
        """Replace the failed node(s) of one shard while the commands for its slots wait."""
        b = self.backends.get(ident)
        if b is None or self.stopping:
            return
        ev = asyncio.Event()
        mine = [s for s in range(SLOTS) if self.slot_owner[s] == ident and s not in self.held]
        for s in mine:
            self.held[s] = ev
        try:
            if not b.node.alive():
                self.event(f"Recovering cache nodes {b.node.name}")
                await self.replace_primary(b)
            elif b.replica is not None and not b.replica.node.alive():
                name = b.replica.node.name
                self.event(f"Recovering cache nodes {name}")
                await self.replace_replica(b)
                self.event(f"Finished recovery for cache nodes {name}")
        except Exception as exc:  # whatever failed is reported as an event; the monitor tries again
            log.exception("recovering shard %s of %s", ident, self.name)
            self.failed_at[ident] = time.monotonic()
            self.event(f"Recovery failed: {exc}")
        finally:
            for s in mine:
                if self.held.get(s) is ev:
                    del self.held[s]
            ev.set()

    def replacement_tag(self, ident: int, replica: bool) -> str:
        self.replacements += 1
        return f"b{ident}{'r' if replica else ''}n{self.replacements}"

    async def forget(self, b: Backend) -> None:
        b.alive = False
        for key in (b.ident, -b.ident):
            conn = self.admin_conns.get(key)
            if conn is not None and conn[1] is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    conn[1].close()
        self.admin_conns.pop(b.ident, None)
        with contextlib.suppress(*NODE_ERRORS):
            await asyncio.to_thread(b.node.stop)

    async def replace_primary(self, b: Backend) -> None:
        """The shard's replica takes its slots over (CLUSTER FAILOVER TAKEOVER: it owns every slot, as its
        primary did) and a new replica follows it; with no live replica, a new empty primary (data lost)."""
        rep = b.replica
        await self.forget(b)
        if rep is not None and rep.node.alive():
            self.admin_conns.pop(rep.ident, None)
            new = Backend(b.ident, rep.node)
            dead_id = None
            with contextlib.suppress(*BACKEND_ERRORS, ValueError):
                nodes = (await self.admin(new, "CLUSTER", "NODES")).decode()
                dead_id = next((ln.split()[0] for ln in nodes.splitlines() if "myself" not in ln), None)
            await self.admin(new, "CLUSTER", "FAILOVER", "TAKEOVER")
            for _ in range(200):
                role = await self.admin(new, "INFO", "replication")
                state = await self.admin(new, "CLUSTER", "INFO")
                if b"role:master" in role and b"cluster_state:ok" in state:
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"replica {rep.node.name} did not take over its primary's slots")
            if dead_id:
                with contextlib.suppress(ReplyError):
                    await self.admin(new, "CLUSTER", "FORGET", dead_id)
            self.backends[b.ident] = new
            self.event(f"Failover to replica node {rep.node.name} completed")
        else:
            if rep is not None:
                await self.forget(rep)
            node = await asyncio.to_thread(self.start_engine, b.ident, None, self.replacement_tag(b.ident, False))
            new = Backend(b.ident, node)
            await self.admin(new, "CLUSTER", "ADDSLOTSRANGE", "0", str(SLOTS - 1))
            for _ in range(100):
                if b"cluster_state:ok" in await self.admin(new, "CLUSTER", "INFO"):
                    break
                await asyncio.sleep(0.05)
            await self.apply_users(new)
            self.backends[b.ident] = new
        if self.storage_max() is not None:
            await self._set_maxmemory(new, self.storage_max())
        await self.reattach_subscribers(new)
        if self.cfg.get("replicas", True):
            await self.add_replica(new, self.replacement_tag(b.ident, True))
        self.event(f"Finished recovery for cache nodes {b.node.name}")

    async def replace_replica(self, b: Backend) -> None:
        assert b.replica is not None
        await self.forget(b.replica)
        b.replica = None
        await self.add_replica(b, self.replacement_tag(b.ident, True))

    async def reattach_subscribers(self, new: Backend) -> None:
        """Subscribers were subscribed on the failed engine too: now on its replacement."""
        for c in list(self.clients):
            if c.subscribed():
                c.sub_conns.pop(new.ident, None)
                with contextlib.suppress(*BACKEND_ERRORS):
                    await c.sub_attach(new)

    async def add_backend(self) -> Backend:
        ident = self.next_id
        self.next_id += 1
        node = await asyncio.to_thread(self.start_engine, ident)
        b = Backend(ident, node)
        await self.admin(b, "CLUSTER", "ADDSLOTSRANGE", "0", str(SLOTS - 1))
        for _ in range(100):  # the one-node cluster turns "ok" once it owns every slot
            info = await self.admin(b, "CLUSTER", "INFO")
            if b"cluster_state:ok" in info:
                break
            await asyncio.sleep(0.05)
        await self.apply_users(b)
        if self.cfg.get("replicas", True):
            try:
                await self.add_replica(b)
            except BaseException:
                await self.stop_backend(b)
                raise
        self.backends[ident] = b
        if self.storage_max() is not None:
            for each in self.backends.values():
                await self._set_maxmemory(each, self.storage_max())
        return b

    async def apply_users(self, b: Backend) -> None:
        """The user group's users (users.json, owner-only) as ACL users of the engine."""
        for user in self.users.values():
            rules = ["reset", "on" if user.get("on", True) else "off"]
            rules += ["nopass"] if user.get("nopass") else [f">{p}" for p in user.get("passwords", [])]
            rules += user.get("access", "~* +@all").split()
            if user["name"] == "default":
                continue  # the engine's default user stays the proxy's own; the endpoint checks clients' AUTH
            await self.admin(b, "ACL", "SETUSER", user["name"], *rules)

    def read_users(self) -> None:
        path = self.dir / "users.json"
        with contextlib.suppress(OSError, ValueError):
            self.users = {u["name"]: u for u in json.loads(path.read_text())}

    async def admin(self, b: Backend, *args: Any) -> Any:
        """One command on a backend as the endpoint's own user; an error reply is raised."""
        [value] = await self.admin_many(b, [args])
        if isinstance(value, ReplyError):
            raise value
        return value

    async def admin_many(self, b: Backend, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands pipelined on the endpoint's own connection to a backend (one at a time per backend)."""
        lock = self.admin_locks.setdefault(b.ident, asyncio.Lock())
        async with lock:
            for attempt in range(2):
                conn = self.admin_conns.get(b.ident)
                try:
                    if conn is None:
                        r, w = await asyncio.open_connection("127.0.0.1", b.port)
                        conn = self.admin_conns[b.ident] = (r, w, bytearray())
                        w.write(command("AUTH", self.password))
                        await w.drain()
                        await self._read_values(conn, 1)
                    r, w, _buf = conn
                    w.write(b"".join(command(*c) for c in commands))
                    await w.drain()
                    return await self._read_values(conn, len(commands))
                except (ConnectionError, OSError, asyncio.TimeoutError):
                    self.admin_conns.pop(b.ident, None)
                    if attempt:
                        raise
        return []

    @staticmethod
    async def _read_values(conn: tuple[Any, Any, bytearray], count: int) -> list[Any]:
        r, _w, buf = conn
        out: list[Any] = []
        while len(out) < count:
            try:
                v, end = parse_value(buf, 0)
                del buf[:end]
                out.append(v)
            except Incomplete:
                chunk = await asyncio.wait_for(r.read(1 << 16), 30)
                if not chunk:
                    raise ConnectionError("backend closed the connection") from None
                buf += chunk
        return out

    async def load_commands(self, b: Backend) -> None:
        for entry in await self.admin(b, "COMMAND"):
            name = entry[0].upper()
            flags = {f.upper() if isinstance(f, bytes) else f for f in entry[2]}
            self.commands[name] = (entry[1], flags, entry[3], entry[4], entry[5])

    # --- routing ---------------------------------------------------------------------------------
    def spec(self, name: bytes) -> tuple[int, set[bytes], int, int, int] | None:
        return self.commands.get(name)

    def static_keys(self, args: list[bytes]) -> list[bytes]:
        """The keys of a command whose key positions are fixed (COMMAND's first/last/step)."""
        spec = self.spec(args[0].upper())
        if spec is None or spec[2] <= 0:
            return []
        _arity, _flags, first, last, step = spec
        end = len(args) - 1 if last < 0 else min(last, len(args) - 1)
        if last < 0:
            end = len(args) + last
        return [args[i] for i in range(first, end + 1, max(step, 1))]

    async def keys_of(self, args: list[bytes], conn: Client) -> list[bytes]:
        name = args[0].upper()
        spec = self.spec(name)
        if spec is None:
            return []
        _arity, flags, first, last, step = spec
        if b"MOVABLEKEYS" in flags or (name in (b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL",
                                                b"FCALL_RO")):
            try:
                got = await self.admin(next(iter(self.backends.values())), "COMMAND", "GETKEYS", *args)
                return list(got) if isinstance(got, list) else []
            except ReplyError:
                return []
        if first <= 0:
            return []
        end = len(args) - 1 if last < 0 else min(last, len(args) - 1)
        if last < 0:
            end = len(args) + last
        return [args[i] for i in range(first, end + 1, max(step, 1))]

    def is_write(self, name: bytes) -> bool:
        spec = self.spec(name)
        return bool(spec and b"WRITE" in spec[1])

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

    # --- clients -----------------------------------------------------------------------------------
    async def serve(self) -> None:
        try:
            await self._serve()
        finally:  # never leave an engine behind, whatever stopped the endpoint (a scale-out half done too)
            if self.scale_task is not None:
                await asyncio.gather(self.scale_task, return_exceptions=True)
            await self.stop_every_engine()

    async def _serve(self) -> None:
        self.read_limits()
        self.read_users()
        n0 = int(self.cfg.get("min_backends", 1))
        first = await self.add_backend()
        self.slot_owner = [first.ident] * SLOTS
        await self.load_commands(first)
        for _ in range(n0 - 1):
            await self.scale_out()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cfg["cert_file"], self.cfg["key_file"])
        ctx.verify_mode = ssl.CERT_NONE  # server-side TLS only, like ElastiCache
        if self.cfg.get("restore_from"):
            await self.restore(self.cfg["restore_from"])
        # The reader endpoint first: readiness is probed on the primary endpoint, so once that answers
        # both do (a client could otherwise meet a refused reader port on a loaded machine).
        reader = await asyncio.start_server(lambda r, w: self.client(r, w, True), self.host,
                                            self.cfg["reader_port"], ssl=ctx)
        primary = await asyncio.start_server(lambda r, w: self.client(r, w, False), self.host, self.cfg["port"],
                                             ssl=ctx)
        self.event(f"Serverless cache {self.name} is available on {self.host}:{self.cfg['port']} "
                   f"(reader {self.host}:{self.cfg['reader_port']}) with {len(self.backends)} shard(s)")
        self.write_status()
        mon = asyncio.get_event_loop().create_task(self.monitor())
        loop = asyncio.get_event_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with primary, reader:
            await stop.wait()
        self.stopping = True
        mon.cancel()
        for task in self.recoveries.values():  # no engine is started for a shard once the endpoint stops
            task.cancel()
        if self.scale_task is not None:
            self.scale_task.cancel()

    async def restore(self, files: list[str]) -> None:
        """Load a snapshot (DUMP payloads in JSON lines: key, ttl ms, payload hex) into the backends."""
        for path in files:
            with open(path) as fh:
                for line in fh:
                    rec = json.loads(line)
                    key = rec["k"].encode("latin-1")
                    b = self.backends[self.slot_owner[key_slot(key)]]
                    await self.admin(b, "RESTORE", key, str(max(rec["ttl"], 0)), bytes.fromhex(rec["v"]), "REPLACE")

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, is_reader: bool) -> None:
        self.c["curr_connections"] += 1
        self.c["new_connections"] += 1
        conn = self.client_class(self, reader, writer, is_reader)
        self.clients.add(conn)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.c["curr_connections"] -= 1
            self.clients.discard(conn)
            await conn.close()


class Client:
    """One client connection: its protocol, identity, and its own connection to each backend."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, is_reader: bool):
        self.p = proxy
        self.r = reader
        self.w = writer
        self.is_reader = is_reader
        self.proto = 2
        self.user: tuple[str, str] | None = None  # (user, password) after AUTH (with a user group)
        self.authed = not proxy.users  # no user group: the default user, no password (as on AWS)
        self.conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter, bytearray]] = {}
        self.multi: list[list[bytes]] | None = None
        self.name = b""
        self.subs: dict[bytes, set[bytes]] = {b"channel": set(), b"shard": set()}  # what it is subscribed to
        self.sub_conns: dict[int, tuple[asyncio.StreamWriter, asyncio.Task]] = {}  # backend -> subscriber conn
        self.sub_acks: dict[int, asyncio.Queue] = {}  # backend -> the engine's subscribe confirmations (or errors)

    def subscribed(self) -> bool:
        return bool(self.subs[b"channel"] or self.subs[b"shard"])

    async def sub_attach(self, b: Backend) -> None:
        """This client's subscriber connection to one engine, subscribed to its channels (as its own user)."""
        if b.ident in self.sub_conns:
            return
        r, w = await asyncio.open_connection("127.0.0.1", b.port)
        buf = bytearray()
        auth = command("AUTH", *self.user) if self.user else command("AUTH", self.p.password)
        w.write(auth)
        await w.drain()
        if (await self._read_reply(r, buf)).startswith(b"-"):
            w.close()
            raise ReplyError("NOPERM this user cannot subscribe")
        self.sub_acks[b.ident] = asyncio.Queue()
        task = asyncio.get_event_loop().create_task(self._relay(b, r, w, buf))
        self.sub_conns[b.ident] = (w, task)
        for kind, cmd in ((b"channel", b"SUBSCRIBE"), (b"shard", b"SSUBSCRIBE")):
            if self.subs[kind]:
                await self.sub_send(b.ident, cmd, sorted(self.subs[kind]))

    async def sub_send(self, ident: int, cmd: bytes, channels: list[bytes]) -> None:
        """(S)SUBSCRIBE on one engine, waiting for its confirmations: once the client has its own,
        a message published anywhere reaches it."""
        w = self.sub_conns[ident][0]
        w.write(command(cmd, *channels))
        await w.drain()
        for _ in channels:
            ack = await asyncio.wait_for(self.sub_acks[ident].get(), 10)
            if isinstance(ack, ReplyError):
                raise ack

    async def _relay(self, b: Backend, r: asyncio.StreamReader, w: asyncio.StreamWriter, buf: bytearray) -> None:
        """Messages an engine pushes to this client's subscriber connection, passed on to the client
        (the engine's own confirmations are not: the endpoint answers (UN)SUBSCRIBE itself)."""
        try:
            while True:
                while True:
                    try:
                        value, end = parse_value(buf, 0)
                        del buf[:end]
                        break
                    except Incomplete:
                        chunk = await r.read(65536)
                        if not chunk:
                            return
                        buf += chunk
                if isinstance(value, list) and value and value[0] in (b"message", b"smessage"):
                    kind = b"channel" if value[0] == b"message" else b"shard"
                    if value[1] in self.subs[kind]:
                        self.p.c["bytes_out"] += len(value[2])
                        self.reply(Push(value))
                        await self.w.drain()
                elif isinstance(value, ReplyError) or (isinstance(value, list) and value
                                                        and value[0] in (b"subscribe", b"ssubscribe")):
                    self.sub_acks[b.ident].put_nowait(value)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.sub_conns.pop(b.ident, None)
            with contextlib.suppress(OSError, RuntimeError):
                w.close()

    def sub_detach_all(self) -> None:
        for w, task in list(self.sub_conns.values()):
            task.cancel()
            with contextlib.suppress(OSError, RuntimeError):
                w.close()
        self.sub_conns.clear()
        self.sub_acks.clear()

    async def subscribe(self, args: list[bytes]) -> None:
        name = args[0].upper()
        kind = SUBSCRIBE_CMDS[name]
        if len(args) < 2:
            self.reply(ReplyError(f"ERR wrong number of arguments for '{name.decode().lower()}' command"))
            return
        channels = args[1:]
        if kind == b"shard" and len({key_slot(c) for c in channels}) > 1:
            self.reply(ReplyError("CROSSSLOT Keys in request don't hash to the same slot"))
            return
        before = set(self.subs[kind])
        new = list(dict.fromkeys(c for c in channels if c not in before))
        self.subs[kind].update(channels)
        try:
            for b in list(self.p.backends.values()):
                if b.ident in self.sub_conns:
                    if new:
                        await self.sub_send(b.ident, name, new)
                else:
                    await self.sub_attach(b)
        except (ReplyError, ConnectionError, OSError, asyncio.TimeoutError) as exc:
            self.subs[kind].difference_update(new)
            if not self.subscribed():
                self.sub_detach_all()
            self.reply(exc if isinstance(exc, ReplyError) else ReplyError(f"ERR could not subscribe ({exc})"))
            return
        self.account(name, sum(len(a) for a in args), None, False, 0.0)
        word = b"subscribe" if kind == b"channel" else b"ssubscribe"
        for c in channels:
            before.add(c)
            self.reply(Push([word, c, len(before)]))

    async def unsubscribe(self, args: list[bytes]) -> None:
        name = args[0].upper()
        kind = UNSUBSCRIBE_CMDS[name]
        word = b"unsubscribe" if kind == b"channel" else b"sunsubscribe"
        channels = args[1:] or sorted(self.subs[kind])
        if not channels:
            self.reply(Push([word, None, len(self.subs[kind])]))
            return
        for c in channels:
            self.subs[kind].discard(c)
            self.reply(Push([word, c, len(self.subs[kind])]))
        for w, _task in list(self.sub_conns.values()):
            w.write(command(name, *channels))
        if not self.subscribed():
            self.sub_detach_all()

    async def publish(self, args: list[bytes]) -> None:
        """PUBLISH/SPUBLISH on the engine owning the channel's slot (every subscriber is subscribed there)."""
        name = args[0].upper()
        if len(args) != 3:
            self.reply(ReplyError(f"ERR wrong number of arguments for '{name.decode().lower()}' command"))
            return
        if not await self.p.throttle():
            self.reply(ReplyError("ERR Throttled: the cache is above its ECPUPerSecond maximum "
                                  "(CacheUsageLimits); retry later"))
            return
        slot = key_slot(args[1])
        while slot in self.p.held:
            await self.p.held[slot].wait()
        b = self.p.backends[self.p.slot_owner[slot]]
        raw = command(*args)
        reply = (await self.forward(b, raw))[0]
        self.account(name, len(raw) + len(reply), b, False, 0.0, reply)
        self.send(reply)

    async def pubsub(self, args: list[bytes]) -> None:
        """PUBSUB CHANNELS/NUMSUB/SHARDCHANNELS/SHARDNUMSUB: every subscriber is on every engine, so one answers."""
        sub = args[1].upper() if len(args) > 1 else b""
        if sub not in (b"CHANNELS", b"NUMSUB", b"SHARDCHANNELS", b"SHARDNUMSUB", b"HELP"):
            self.reply(ReplyError(f"ERR unknown subcommand '{sub.decode(errors='replace')}' (restricted on "
                                  "ElastiCache Serverless)"))
            return
        b = next(iter(self.p.backends.values()))
        self.send((await self.forward(b, command(*args)))[0])

    async def close(self) -> None:
        self.sub_detach_all()
        for _r, w, _b in self.conns.values():
            with contextlib.suppress(OSError, RuntimeError):
                w.close()
        with contextlib.suppress(OSError, RuntimeError):
            self.w.close()

    async def backend_conn(self, b: Backend) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytearray]:
        got = self.conns.get(b.ident)
        if got is not None:
            return got
        r, w = await asyncio.open_connection("127.0.0.1", b.port)
        buf = bytearray()
        hello = []
        if self.user:
            hello.append(command("AUTH", self.user[0], self.user[1]))
        else:
            hello.append(command("AUTH", self.p.password))
        if self.proto == 3:
            hello.append(command("HELLO", "3"))
        if b.ident < 0:  # a replica is a cluster node: it answers reads once told READONLY
            hello.append(command("READONLY"))
        w.write(b"".join(hello))
        await w.drain()
        for _ in hello:
            reply = await self._read_reply(r, buf)
            if reply.startswith(b"-"):
                w.close()
                raise ReplyError(reply[1:].strip().decode(errors="replace"))
        self.conns[b.ident] = (r, w, buf)
        return self.conns[b.ident]

    @staticmethod
    async def _read_reply(r: asyncio.StreamReader, buf: bytearray) -> bytes:
        while True:
            try:
                end = reply_end(buf, 0)
                out = bytes(buf[:end])
                del buf[:end]
                return out
            except Incomplete:
                chunk = await r.read(65536)
                if not chunk:
                    raise ConnectionError("backend closed") from None
                buf += chunk

    async def forward(self, b: Backend, raw: bytes, count: int = 1) -> list[bytes]:
        for attempt in range(2):
            try:
                r, w, buf = await self.backend_conn(b)
                w.write(raw)
                await w.drain()
                return [await self._read_reply(r, buf) for _ in range(count)]
            except (ConnectionError, OSError):
                self.conns.pop(b.ident, None)
                if attempt:
                    raise
        return []

    def send(self, data: bytes) -> None:
        self.p.c["bytes_out"] += len(data)
        self.w.write(data)

    def reply(self, value: Any) -> None:
        self.send(encode(value, self.proto))

    async def run(self) -> None:
        buf = bytearray()
        try:
            await self._run(buf)
        finally:  # freed now: an error that ends the connection keeps this frame (and buf) in a reference cycle
            buf.clear()

    async def _run(self, buf: bytearray) -> None:
        while True:
            cmds: list[tuple[list[bytes], bytes]] = []
            pos, bad = 0, None
            while True:  # every whole command the client has sent: a pipeline goes on together
                try:  # (before AUTH one at a time: the engines' tighter bounds end with AUTH)
                    args, end = parse_command(buf, pos, max_bulk=MAX_ITEM_BYTES, authed=self.authed)
                except Incomplete:
                    break
                except ProtocolError as exc:
                    bad = exc
                    break
                cmds.append((args, bytes(buf[pos:end])))
                pos = end
                if not self.authed:
                    break
            del buf[:pos]
            i = 0
            while i < len(cmds):
                j = self.pipeline_end(cmds, i)
                if j - i > 1:
                    await self.routed_many(cmds[i:j])
                    i = j
                    continue
                args, raw = cmds[i]
                i += 1
                if args and await self.one(args, raw) is False:
                    await self.w.drain()
                    return
            if bad is not None:  # the engine's protocol error, then the connection closes (as the engine does)
                log.info("closing a client connection: %s", bad)
                self.reply(ReplyError(f"ERR {bad}"))
                await self.w.drain()
                return
            await self.w.drain()
            if not cmds:
                if len(buf) > QUERY_BUFFER_LIMIT:  # client-query-buffer-limit: the engine closes, no reply
                    return
                chunk = await self.r.read(65536)
                if not chunk:
                    return
                buf += chunk

    async def one(self, args: list[bytes], raw: bytes) -> bool | None:
        self.p.c["bytes_in"] += len(raw)
        try:
            return await self.execute(args, raw)
        except ReplyError as exc:
            self.reply(exc)
        except (ConnectionError, OSError) as exc:
            self.reply(ReplyError(f"ERR the cache could not reach its storage ({exc}); retry"))
        return None

    def pipeline_end(self, cmds: list[tuple[list[bytes], bytes]], i: int) -> int:
        """The end of the run of commands from `i` that may go to the engines together (plain keyed
        commands; not while throttling, in a transaction or subscribed)."""
        p = self.p
        if not self.authed or self.multi is not None or self.subscribed() or p.ecpu_max() is not None:
            return i + 1
        j = i
        while j < len(cmds):
            args = cmds[j][0]
            if not args:
                break
            name = args[0].upper()
            spec = p.spec(name)
            if (spec is None or name in LOCAL or name in RESTRICTED or name in NOT_PIPELINED
                    or b"MOVABLEKEYS" in spec[1] or b"BLOCKING" in spec[1] or (self.is_reader and b"WRITE" in spec[1])):
                break
            keys = p.static_keys(args)
            if len({key_slot(k) for k in keys}) > 1:
                break
            j += 1
        return max(j, i + 1)

    async def routed_many(self, cmds: list[tuple[list[bytes], bytes]]) -> None:
        """A pipeline of keyed commands: each run of them whose slots one engine owns goes to it in one write."""
        p = self.p
        items = []
        for args, raw in cmds:
            p.c["bytes_in"] += len(raw)
            keys = p.static_keys(args)
            items.append((args[0].upper(), raw, key_slot(keys[0]) if keys else 0))
        i = 0
        while i < len(items):
            slot = items[i][2]
            while slot in p.held:
                await p.held[slot].wait()
            owner = p.slot_owner[slot]
            j = i + 1
            while j < len(items) and items[j][2] not in p.held and p.slot_owner[items[j][2]] == owner:
                j += 1
            group = items[i:j]
            i = j
            b = p.backends[owner]
            target = b.replica if self.is_reader and b.replica is not None else b
            for _n, _r, sl in group:
                p.inflight[sl] += 1
            t0 = time.perf_counter()
            try:
                replies = await self.forward(target, b"".join(r for _n, r, _s in group), len(group))
            except (ConnectionError, OSError, ReplyError) as exc:
                err = exc if isinstance(exc, ReplyError) else ReplyError(
                    f"ERR the cache could not reach its storage ({exc}); retry")
                for _ in group:
                    self.reply(err)
                continue
            finally:
                for _n, _r, sl in group:
                    p.inflight[sl] -= 1
            dt = (time.perf_counter() - t0) * 1e6 / len(group)
            for (name, raw, _s), reply in zip(group, replies, strict=True):
                self.account(name, len(raw) + len(reply), b, p.is_write(name), dt, reply)
                self.send(reply)

    async def execute(self, args: list[bytes], raw: bytes) -> bool | None:
        name = args[0].upper()
        p = self.p
        if name == b"QUIT":
            self.reply("OK")
            return False
        if name == b"HELLO":
            return await self.hello(args)
        if name == b"AUTH":
            return await self.auth(args[1:])
        if not self.authed:
            self.reply(ReplyError("NOAUTH Authentication required."))
            return None
        if self.multi is not None and name not in (b"EXEC", b"DISCARD", b"MULTI", b"WATCH"):
            return await self.queue(args, raw)
        if self.proto == 2 and self.subscribed() and name not in IN_SUBSCRIBED:
            self.reply(ReplyError(f"ERR Can't execute '{args[0].decode(errors='replace').lower()}': only "
                                  "(P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
                                  "context"))
            return None
        local = {b"PING": self.ping, b"CLUSTER": self.cluster, b"READONLY": self.ok, b"READWRITE": self.ok,
                 b"SELECT": self.select, b"CLIENT": self.client_cmd, b"MULTI": self.start_multi,
                 b"EXEC": self.exec_multi, b"DISCARD": self.discard, b"DBSIZE": self.dbsize,
                 b"FLUSHALL": self.flush, b"FLUSHDB": self.flush, b"SCAN": self.scan,
                 b"INFO": self.info, b"RESET": self.reset, b"ECHO": self.echo, b"SUBSCRIBE": self.subscribe,
                 b"SSUBSCRIBE": self.subscribe, b"UNSUBSCRIBE": self.unsubscribe, b"SUNSUBSCRIBE": self.unsubscribe,
                 b"PUBLISH": self.publish, b"SPUBLISH": self.publish, b"PUBSUB": self.pubsub}
        if name in RESTRICTED or (name == b"PUBSUB" and len(args) > 1 and args[1].upper() == b"NUMPAT"):
            self.reply(ReplyError(f"ERR unknown command '{args[0].decode(errors='replace')}', with args "
                                  "beginning with: (restricted on ElastiCache Serverless)"))
            return None
        if name in local:
            await local[name](args)
            return None
        if p.spec(name) is None:
            self.reply(ReplyError(f"ERR unknown command '{args[0].decode(errors='replace')}'"))
            return None
        await self.routed(name, args, raw)
        return None

    async def routed(self, name: bytes, args: list[bytes], raw: bytes) -> None:
        p = self.p
        keys = await p.keys_of(args, self)
        slots = {key_slot(k) for k in keys}
        if len(slots) > 1:
            self.reply(ReplyError("CROSSSLOT Keys in request don't hash to the same slot"))
            return
        slot = slots.pop() if slots else 0
        write = p.is_write(name)
        if self.is_reader and write:
            self.reply(ReplyError(f"MOVED {slot} {p.host}:{p.cfg['port']}"))
            return
        if not await p.throttle():
            self.reply(ReplyError("ERR Throttled: the cache is above its ECPUPerSecond maximum "
                                  "(CacheUsageLimits); retry later"))
            return
        spec = p.spec(name)
        blocking = spec is not None and b"BLOCKING" in spec[1]
        started = time.monotonic()
        failed = False
        while True:
            while slot in p.held:
                await p.held[slot].wait()
            b = p.backends[p.slot_owner[slot]]
            target = b.replica if self.is_reader and b.replica is not None else b  # reader endpoint: the replica
            # A blocked command does not hold its slot's move up: it is unblocked on the engine the slot leaves
            # and sent again to its new owner (move_slots), as a client of a cluster would after MOVED.
            entry = Blocked(self, slot, target) if blocking else None
            if entry is not None:
                p.blocked.add(entry)
            else:
                p.inflight[slot] += 1
            t0 = time.perf_counter()
            try:
                reply = (await self.forward(target, raw))[0]
            except (ConnectionError, OSError):
                # its engine failed: once the shard is recovered the command goes to the replacement
                if failed or not await p.recovered(b):
                    raise
                failed = True
                if blocking:
                    raw = command(*reblocked(args, time.monotonic() - started))
                continue
            finally:
                if entry is not None:
                    p.blocked.discard(entry)
                else:
                    p.inflight[slot] -= 1
            if entry is not None and entry.moved and reply in NULL_REPLIES:
                raw = command(*reblocked(args, time.monotonic() - started))
                continue
            break
        dt = (time.perf_counter() - t0) * 1e6
        self.account(name, len(raw) + len(reply), b, write, dt, reply)
        self.send(reply)

    def account(self, name: bytes, nbytes: int, b: Backend | None, write: bool, usec: float,
                reply: bytes = b"") -> None:
        p = self.p
        if name in UNMETERED:
            return
        e = p.ecpus(name, nbytes, b)
        p.c["ecpu"] += e
        p.c["cmds"] += 1
        if p.ecpu_max() is not None:
            p.refill()
            p.tokens -= e
        if write:
            p.c["write_cmds"] += 1
            p.c["write_usec"] += usec
        else:
            p.c["read_cmds"] += 1
            p.c["read_usec"] += usec
        if reply.startswith(b"-OOM"):
            p.c["oom"] += 1
        if name in HIT_COMMANDS:
            if reply.startswith((b"$-1", b"_", b"*-1", b":0")):
                p.c["misses"] += 1
            elif not reply.startswith(b"-"):
                p.c["hits"] += 1

    async def queue(self, args: list[bytes], raw: bytes) -> None:
        assert self.multi is not None
        if self.p.spec(args[0].upper()) is None:
            self.reply(ReplyError(f"ERR unknown command '{args[0].decode(errors='replace')}'"))
            return
        self.multi.append(args)
        self.reply("QUEUED")

    async def start_multi(self, _args: list[bytes]) -> None:
        if self.multi is not None:
            self.reply(ReplyError("ERR MULTI calls can not be nested"))
            return
        self.multi = []
        self.reply("OK")

    async def discard(self, _args: list[bytes]) -> None:
        if self.multi is None:
            self.reply(ReplyError("ERR DISCARD without MULTI"))
            return
        self.multi = None
        self.reply("OK")

    async def exec_multi(self, _args: list[bytes]) -> None:
        if self.multi is None:
            self.reply(ReplyError("ERR EXEC without MULTI"))
            return
        cmds, self.multi = self.multi, None
        slots: set[int] = set()
        for a in cmds:
            slots |= {key_slot(k) for k in await self.p.keys_of(a, self)}
        if len(slots) > 1:
            self.reply(ReplyError("CROSSSLOT Keys in request don't hash to the same slot"))
            return
        slot = slots.pop() if slots else 0
        if not await self.p.throttle():
            self.reply(ReplyError("ERR Throttled: the cache is above its ECPUPerSecond maximum "
                                  "(CacheUsageLimits); retry later"))
            return
        while slot in self.p.held:
            await self.p.held[slot].wait()
        b = self.p.backends[self.p.slot_owner[slot]]
        raw = command("MULTI") + b"".join(command(*a) for a in cmds) + command("EXEC")
        self.p.inflight[slot] += 1
        try:
            replies = await self.forward(b, raw, len(cmds) + 2)
        finally:
            self.p.inflight[slot] -= 1
        for a in cmds:
            self.account(a[0].upper(), len(raw) // max(len(cmds), 1), b, self.p.is_write(a[0].upper()), 0.0)
        self.send(replies[-1])

    async def hello(self, args: list[bytes]) -> None:
        proto = self.proto
        i = 1
        if len(args) > 1:
            try:
                proto = int(args[1])
            except ValueError:
                self.reply(ReplyError("ERR Protocol version is not an integer or out of range"))
                return
            if proto not in (2, 3):
                self.reply(ReplyError("NOPROTO unsupported protocol version"))
                return
            i = 2
        while i < len(args):
            opt = args[i].upper()
            if opt == b"AUTH" and i + 2 < len(args):
                if not await self.check_auth(args[i + 1], args[i + 2]):
                    return
                i += 3
            elif opt == b"SETNAME" and i + 1 < len(args):
                self.name = args[i + 1]
                i += 2
            else:
                self.reply(ReplyError(f"ERR Syntax error in HELLO option '{args[i].decode(errors='replace')}'"))
                return
        if not self.authed:
            self.reply(ReplyError("NOAUTH HELLO must be called with the client already authenticated, otherwise "
                                  "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
                                  "client and select the RESP protocol version at the same time"))
            return
        if proto != self.proto:
            self.proto = proto
            for _r, w, _b in self.conns.values():
                w.close()
            self.conns.clear()
        engine = self.p.cfg.get("engine", "redis")
        self.reply({"server": engine.encode(), "version": self.p.cfg.get("version", "7.0.0").encode(),
                    "proto": proto, "id": id(self) % 100000, "mode": b"cluster",
                    "role": b"replica" if self.is_reader else b"master", "modules": []})

    async def check_auth(self, user: bytes, password: bytes) -> bool:
        users = self.p.users
        u = users.get(user.decode(errors="replace"))
        ok = False
        if not users:
            # No user group: AWS serverless caches without RBAC have no password (the default user is open).
            self.reply(ReplyError("ERR AUTH <password> called without any password configured for the default "
                                  "user. Are you sure your configuration is correct?"))
            return False
        if u is not None and u.get("on", True):
            ok = u.get("nopass") or password.decode(errors="replace") in u.get("passwords", [])
        if not ok:
            self.reply(ReplyError("WRONGPASS invalid username-password pair or user is disabled."))
            return False
        self.authed = True
        self.user = None if u["name"] == "default" else (u["name"], password.decode())
        for _r, w, _b in self.conns.values():
            w.close()
        self.conns.clear()
        return True

    async def auth(self, args: list[bytes]) -> None:
        if len(args) == 1:
            args = [b"default", args[0]]
        if len(args) != 2:
            self.reply(ReplyError("ERR wrong number of arguments for 'auth' command"))
            return
        if await self.check_auth(args[0], args[1]):
            self.reply("OK")

    async def ok(self, _args: list[bytes]) -> None:
        self.reply("OK")

    async def ping(self, args: list[bytes]) -> None:
        if self.proto == 2 and self.subscribed():
            self.reply([b"pong", args[1] if len(args) > 1 else b""])
            return
        self.reply(args[1] if len(args) > 1 else "PONG")

    async def echo(self, args: list[bytes]) -> None:
        self.reply(args[1] if len(args) > 1 else ReplyError("ERR wrong number of arguments for 'echo' command"))

    async def reset(self, _args: list[bytes]) -> None:
        self.multi = None
        self.subs = {b"channel": set(), b"shard": set()}
        self.sub_detach_all()
        self.reply("RESET")

    async def select(self, args: list[bytes]) -> None:
        if len(args) > 1 and args[1] == b"0":
            self.reply("OK")
        else:
            self.reply(ReplyError("ERR SELECT is not allowed in cluster mode"))

    async def client_cmd(self, args: list[bytes]) -> None:
        sub = args[1].upper() if len(args) > 1 else b""
        if sub == b"SETNAME" and len(args) > 2:
            self.name = args[2]
            self.reply("OK")
        elif sub == b"GETNAME":
            self.reply(self.name or None)
        elif sub in (b"SETINFO", b"NO-EVICT", b"NO-TOUCH"):
            self.reply("OK")
        else:
            self.reply(ReplyError(f"ERR unknown subcommand '{sub.decode(errors='replace')}' (restricted on "
                                  "ElastiCache Serverless)"))

    def _nodes(self) -> list[dict[str, Any]]:
        p = self.p
        return [{"id": p.node_id, "port": p.cfg["port"], "role": "master"},
                {"id": p.reader_id, "port": p.cfg["reader_port"], "role": "replica"}]

    async def cluster(self, args: list[bytes]) -> None:
        p = self.p
        sub = args[1].upper() if len(args) > 1 else b""
        host = p.host.encode()
        if sub == b"SLOTS":
            self.reply([[0, SLOTS - 1, [host, p.cfg["port"], p.node_id.encode()],
                         [host, p.cfg["reader_port"], p.reader_id.encode()]]])
        elif sub == b"SHARDS":
            nodes = [{"id": n["id"].encode(), "tls-port": n["port"], "ip": host, "endpoint": host,
                      "role": n["role"].encode(), "replication-offset": 0, "health": b"online"}
                     for n in self._nodes()]
            self.reply([{"slots": [0, SLOTS - 1], "nodes": nodes}])
        elif sub == b"NODES":
            lines = [f"{p.node_id} {p.host}:{p.cfg['port']}@{p.cfg['port'] + 10000} "
                     f"{'myself,' if not self.is_reader else ''}master - 0 0 1 connected 0-{SLOTS - 1}",
                     f"{p.reader_id} {p.host}:{p.cfg['reader_port']}@{p.cfg['reader_port'] + 10000} "
                     f"{'myself,' if self.is_reader else ''}slave {p.node_id} 0 0 1 connected"]
            self.reply(("\n".join(lines) + "\n").encode())
        elif sub == b"INFO":
            text = ("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n"
                    "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:2\r\ncluster_size:1\r\n"
                    "cluster_current_epoch:1\r\ncluster_my_epoch:1\r\n")
            self.reply(text.encode())
        elif sub == b"MYID":
            self.reply((p.reader_id if self.is_reader else p.node_id).encode())
        elif sub == b"KEYSLOT" and len(args) > 2:
            self.reply(key_slot(args[2]))
        elif sub in (b"COUNTKEYSINSLOT", b"GETKEYSINSLOT") and len(args) > 2:
            try:
                slot = int(args[2])
                b = p.backends[p.slot_owner[slot]]
            except (ValueError, IndexError):
                self.reply(ReplyError("ERR Invalid slot"))
                return
            self.send((await self.forward(b, command(*args)))[0])
        else:
            self.reply(ReplyError(f"ERR unknown subcommand '{sub.decode(errors='replace')}' (restricted on "
                                  "ElastiCache Serverless)"))

    async def everywhere(self, args: list[bytes]) -> list[Any]:
        out = []
        for b in list(self.p.backends.values()):
            raw = (await self.forward(b, command(*args)))[0]
            out.append(parse_value(raw, 0)[0])
        return out

    async def dbsize(self, args: list[bytes]) -> None:
        self.reply(sum(v for v in await self.everywhere(args) if isinstance(v, int)))

    async def flush(self, args: list[bytes]) -> None:
        await self.everywhere(args)
        self.reply("OK")

    async def scan(self, args: list[bytes]) -> None:
        """SCAN across the backends: the cursor holds the backend's cursor and which backend (low 4 bits)."""
        try:
            cursor = int(args[1])
        except (IndexError, ValueError):
            self.reply(ReplyError("ERR invalid cursor"))
            return
        ids = sorted(self.p.backends)
        index, inner = cursor & 0xF, cursor >> 4
        if index >= len(ids):
            self.reply([b"0", []])
            return
        b = self.p.backends[ids[index]]
        raw = (await self.forward(b, command("SCAN", inner, *args[2:])))[0]
        value = parse_value(raw, 0)[0]
        if isinstance(value, ReplyError):
            self.reply(value)
            return
        nxt, keys = int(value[0]), value[1]
        if nxt == 0:
            nxt_cursor = 0 if index + 1 >= len(ids) else (index + 1)
        else:
            nxt_cursor = (nxt << 4) | index
        self.reply([str(nxt_cursor).encode(), keys])

    async def info(self, args: list[bytes]) -> None:
        b = self.p.backends[self.p.slot_owner[0]]
        self.send((await self.forward(b, command(*args)))[0])


Proxy.client_class = Client


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


def main(argv: list[str], cls: Any = Proxy) -> int:
    config = json.loads(Path(argv[0]).read_text())
    from helpers.runtime import logs
    from helpers.runtime.state import LabError

    try:  # this endpoint's warnings and tracebacks: logs/<its service's name>.log in the state directory
        logs.setup(str(config.get("name", "serverless")))
    except (LabError, OSError) as exc:  # no log file: warnings still reach the process's own log (stderr)
        print(f"logging to the state directory is unavailable: {exc}", file=sys.stderr)
    asyncio.run(cls(config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
