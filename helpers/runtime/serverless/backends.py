"""The engines behind a serverless cache's endpoint: each shard's primary and replica, the endpoint's own
connection to them, and their recovery (a node that fails is replaced while its slots' commands wait).

Part of the endpoint's Proxy (proxy.py), which mixes this in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import psutil

from helpers.runtime.flow import on_failure_async
from helpers.runtime.serverless.resp import SLOTS, Incomplete, ProtocolError, ReplyError, command, parse_value
from helpers.runtime.state import LabError

log = logging.getLogger(__name__)

#: What a command on a backend engine can raise: its error reply, a lost or refused connection, no answer in
#: time, a reply cut short or one that does not parse.
BACKEND_ERRORS = (ReplyError, ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                  ProtocolError)
#: What stopping an engine process can raise: its process table entry or pid file gone or unreadable.
NODE_ERRORS = (OSError, psutil.Error, LabError)
RETRY_RECOVERY = 5.0  # s between two attempts to recover a shard whose recovery failed


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


class Backends:
    """The Proxy's engines: start, stop, replace, and talk to them as the endpoint's own user."""

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
        async with on_failure_async(lambda: self.stop_backend(rep)):
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
            async with on_failure_async(lambda: self.stop_backend(b)):
                await self.add_replica(b)
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
