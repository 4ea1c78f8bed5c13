"""One client connection to a serverless cache's endpoint: its protocol (RESP2/RESP3), identity and
transactions, its own connection to each engine, and where each command goes (routed by hash slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from helpers.runtime.serverless.backends import Backend
from helpers.runtime.serverless.commands import (
    IN_SUBSCRIBED,
    LOCAL,
    MAX_ITEM_BYTES,
    NOT_PIPELINED,
    QUERY_BUFFER_LIMIT,
    RESTRICTED,
)
from helpers.runtime.serverless.metering import HIT_COMMANDS, UNMETERED
from helpers.runtime.serverless.pubsub import PubSub
from helpers.runtime.serverless.resp import (
    SLOTS,
    Incomplete,
    ProtocolError,
    ReplyError,
    command,
    encode,
    key_slot,
    parse_command,
    parse_value,
    reply_end,
)
from helpers.runtime.serverless.scaling import NULL_REPLIES, Blocked, reblocked

log = logging.getLogger(__name__)


class Client(PubSub):
    """One client connection: its protocol, identity, and its own connection to each backend."""

    def __init__(self, proxy: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, is_reader: bool):
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
