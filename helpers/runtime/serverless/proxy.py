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

Proxy is made of one part per job: backends.py (the engines, the endpoint's own connection to them, their
recovery), metering.py (ECPUs, limits, status), commands.py (the command table and each command's keys) and
scaling.py (the monitor, scaling, slot moves); client.py (with pubsub.py) is one client connection. This module
starts the endpoint and serves clients; the names of those parts are importable from here too.

Started by the "serverless" topology (helpers.runtime.serverless): `python -m helpers.runtime.serverless CONFIG`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from helpers.runtime.serverless.backends import BACKEND_ERRORS, NODE_ERRORS, RETRY_RECOVERY, Backend, Backends
from helpers.runtime.serverless.client import Client
from helpers.runtime.serverless.commands import (
    IN_SUBSCRIBED,
    LOCAL,
    MAX_ITEM_BYTES,
    NOT_PIPELINED,
    QUERY_BUFFER_LIMIT,
    RESTRICTED,
    SUBSCRIBE_CMDS,
    UNSUBSCRIBE_CMDS,
    CommandTable,
)
from helpers.runtime.serverless.metering import (
    BURST,
    HIT_COMMANDS,
    KB,
    THROTTLE_WAIT,
    TUNABLE,
    UNMETERED,
    Metering,
)
from helpers.runtime.serverless.resp import SLOTS, key_slot
from helpers.runtime.serverless.scaling import CHUNK, NULL_REPLIES, Blocked, Scaling, reblocked

log = logging.getLogger(__name__)

# The names this module held before its parts moved to their own modules (imported from here still).
__all__ = ["BACKEND_ERRORS", "BURST", "CHUNK", "HIT_COMMANDS", "IN_SUBSCRIBED", "KB", "LOCAL", "MAX_ITEM_BYTES",
           "NODE_ERRORS", "NOT_PIPELINED", "NULL_REPLIES", "QUERY_BUFFER_LIMIT", "RESTRICTED", "RETRY_RECOVERY",
           "SUBSCRIBE_CMDS", "THROTTLE_WAIT", "TUNABLE", "UNMETERED", "UNSUBSCRIBE_CMDS", "Backend", "Blocked",
           "Client", "Proxy", "main", "reblocked"]


class Proxy(Backends, Metering, CommandTable, Scaling):
    client_class: Any = None  # Client (client.py); the Memcached endpoint (memcached.py) has its own

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


Proxy.client_class = Client


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
