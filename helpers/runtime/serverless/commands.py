"""The command table of a serverless cache's endpoint: what it answers itself, refuses or does not pipeline,
the bounds of one request, and each command's keys (the engine's COMMAND, or COMMAND GETKEYS).

Part of the endpoint's Proxy (proxy.py), which mixes this in.
"""

from __future__ import annotations

from typing import Any

from helpers.runtime.serverless.backends import Backend
from helpers.runtime.serverless.resp import ReplyError

# What one request may hold (the endpoint refuses more before it reads it, so it never buffers more):
# - one argument: 32 MiB, AWS's largest key+value on ElastiCache Serverless for Valkey/Redis OSS (its quota
#   page; not in the copy of AWS's pages searched on 2026-12-07: check it). An engine with proto-max-bulk-len
#   32mb answers the same `ERR Protocol error: invalid bulk length` and closes, which is what is answered here.
# - the query buffer: client-query-buffer-limit 1 GiB (AWS, "Valkey and Redis OSS configuration and limits",
#   Serverless caches); past it the engine closes the connection without a reply.
MAX_ITEM_BYTES = 32 << 20
QUERY_BUFFER_LIMIT = 1 << 30
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
LOCAL = {b"PING", b"CLUSTER", b"READONLY", b"READWRITE", b"SELECT", b"CLIENT", b"MULTI", b"EXEC", b"DISCARD",
         b"DBSIZE", b"FLUSHALL", b"FLUSHDB", b"SCAN", b"INFO", b"RESET", b"ECHO", b"PUBSUB", b"PUBLISH",
         b"SPUBLISH", b"SUBSCRIBE", b"SSUBSCRIBE", b"UNSUBSCRIBE", b"SUNSUBSCRIBE"}
NOT_PIPELINED = {b"QUIT", b"HELLO", b"AUTH", b"WATCH", b"UNWATCH", b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO",
                 b"FCALL", b"FCALL_RO", b"COMMAND"}


class CommandTable:
    """The Proxy's table of the engines' commands (arity, flags, key positions) and the keys of a command."""

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

    async def keys_of(self, args: list[bytes], conn: Any) -> list[bytes]:
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
