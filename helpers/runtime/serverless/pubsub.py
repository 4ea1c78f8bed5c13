"""Pub/sub through a serverless cache's endpoint: a subscriber is subscribed on every engine behind it, and a
message is published on the engine that owns its channel's slot.

Part of the endpoint's Client (client.py), which mixes this in.
"""

from __future__ import annotations

import asyncio
import contextlib

from helpers.runtime.serverless.backends import Backend
from helpers.runtime.serverless.commands import SUBSCRIBE_CMDS, UNSUBSCRIBE_CMDS
from helpers.runtime.serverless.resp import Incomplete, Push, ReplyError, command, key_slot, parse_value


class PubSub:
    """A client connection's subscriptions: its subscriber connection to each engine, and the messages relayed."""

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
