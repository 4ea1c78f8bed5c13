"""Valkey next to Redis OSS (lab 16): one node of each engine, the same workload on both, features
found by asking the engine, the price table's Valkey rows, and the nearest local equivalent of
ElastiCache's durability option.

Everything runs on real engines: one standalone node of each installed engine (the standalone
topology's `engine` option starts the named engine whatever ELASTICACHE_LAB_ENGINE says). An engine
that is not installed is skipped with the command that installs it, never replaced by the other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from helpers.runtime import engines, services
from helpers.runtime.service import Service
from helpers.runtime.state import LabError
from helpers.topics import practices

log = logging.getLogger(__name__)

ENGINES = ("valkey", "redis")  # Valkey first: the engine ElastiCache leads with
TITLES = engines.TITLES


# --- which engines are here, and one node of each -----------------------------------------------------

def installed() -> dict[str, str | None]:
    """engine -> None when it is installed here, else the sentence that says how to install it."""
    found: dict[str, str | None] = {}
    for name in ENGINES:
        try:
            engines.find_engine(name)
            found[name] = None
        except LabError as exc:
            found[name] = str(exc)
    return found


def node_name(engine: str, prefix: str = "lab16") -> str:
    return f"{prefix}-{engine}"


def start_pair(prefix: str = "lab16") -> dict[str, Service]:
    """One standalone node of each installed engine, side by side: {"valkey": svc, "redis": svc}.
    A missing engine is left out (installed() says why), so the lab runs the half it can."""
    return {name: services.start("redis", name=node_name(name, prefix), engine=name)
            for name, missing in installed().items() if missing is None}


def clients(pair: dict[str, Service], **kwargs: Any) -> dict[str, Any]:
    return {name: svc.client(**kwargs) for name, svc in pair.items()}


# --- who am I talking to? -----------------------------------------------------------------------------

IDENTITY_FIELDS = ("server_name", "valkey_version", "redis_version", "valkey_release_stage", "redis_mode",
                   "server_mode")


def identity(r: Any) -> dict[str, Any]:
    """The INFO server fields that say which engine and version answer ('-' where a field is absent)."""
    info = r.info("server")
    return {field: info.get(field, "-") for field in IDENTITY_FIELDS}


def engine_from_info(info: dict[str, Any]) -> str:
    """'valkey' or 'redis' from INFO server: Valkey says so (server_name, valkey_version); its
    redis_version is frozen at 7.2.4 for old clients, so that field alone cannot tell."""
    if str(info.get("server_name", "")).lower() == "valkey" or "valkey_version" in info:
        return "valkey"
    return "redis"


# --- the same workload on both engines ------------------------------------------------------------

def workload(prefix: str) -> list[tuple[Any, ...]]:
    """An application's day in commands: strings, counters, expiry, hashes, lists, sets, sorted sets,
    a stream with explicit ids, a transaction-free script, and the errors an app may meet. Nothing
    time- or random-dependent, so both engines must give the same replies."""
    k = f"{prefix}:"
    return [
        ("SET", k + "user:1:name", "Ada"), ("GET", k + "user:1:name"),
        ("SET", k + "user:1:name", "Grace", "NX"), ("SET", k + "session", "abc", "EX", "300"),
        ("INCR", k + "views"), ("INCRBY", k + "views", "41"), ("INCRBYFLOAT", k + "price", "9.99"),
        ("APPEND", k + "log", "start;"), ("APPEND", k + "log", "stop;"), ("STRLEN", k + "log"),
        ("HSET", k + "user:1", "name", "Ada", "plan", "pro", "logins", "3"), ("HINCRBY", k + "user:1", "logins", "1"),
        ("HGET", k + "user:1", "plan"), ("HLEN", k + "user:1"),
        ("RPUSH", k + "queue", "j1", "j2", "j3"), ("LMOVE", k + "queue", k + "working", "LEFT", "RIGHT"),
        ("LRANGE", k + "queue", "0", "-1"), ("LLEN", k + "working"),
        ("SADD", k + "tags", "cache", "valkey", "redis", "cache"), ("SCARD", k + "tags"),
        ("SISMEMBER", k + "tags", "valkey"),
        ("ZADD", k + "board", "300", "ada", "250", "grace", "410", "linus"),
        ("ZREVRANGE", k + "board", "0", "1", "WITHSCORES"), ("ZRANK", k + "board", "ada"),
        ("XADD", k + "events", "1-1", "type", "signup"), ("XADD", k + "events", "1-2", "type", "login"),
        ("XLEN", k + "events"), ("XRANGE", k + "events", "-", "+", "COUNT", "1"),
        ("EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", k + "views", "100"),
        ("TYPE", k + "board"), ("EXISTS", k + "user:1:name", k + "nope"),
        ("INCR", k + "user:1:name"),  # an error both engines give: not an integer
        ("HGET", k + "queue", "x"),   # WRONGTYPE
    ]


def _plain(value: Any) -> Any:
    """A reply as plain Python (bytes -> str, tuples -> lists) so replies compare across clients."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def run_workload(r: Any, prefix: str) -> list[Any]:
    """Run workload(prefix) with client r; each reply, or 'ERR <first word of the error>'."""
    for key in r.scan_iter(match=f"{prefix}:*", count=500):
        r.delete(key)
    from redis.exceptions import ResponseError

    errors: tuple[type[Exception], ...] = (ResponseError,)
    try:  # the `valkey` client (a fork of redis-py) raises its own ResponseError
        from valkey.exceptions import ResponseError as ValkeyResponseError

        errors += (ValkeyResponseError,)
    except ImportError:
        pass  # no valkey client installed: only redis-py's errors can come
    replies = []
    for command in workload(prefix):
        try:
            replies.append(_plain(r.execute_command(*command)))
        except errors as exc:  # the point: the same error on both engines, whichever client
            replies.append("ERR " + str(exc).split()[0])
    return replies


def snapshot(r: Any, prefix: str) -> dict[str, Any]:
    """Every key under prefix: its type and value (and whether it has a TTL), for comparing data."""
    out: dict[str, Any] = {}
    for raw in sorted(r.scan_iter(match=f"{prefix}:*", count=500)):
        key = _plain(raw)
        kind = _plain(r.type(key))
        value: Any = _read_value(r, key, kind)
        out[key] = (kind, _plain(value), r.ttl(key) > 0)
    return out


def _read_value(r: Any, key: str, kind: str) -> Any:
    if kind == "string":
        return r.get(key)
    if kind == "hash":
        return r.hgetall(key)
    if kind == "list":
        return r.lrange(key, 0, -1)
    if kind == "set":
        return sorted(_plain(list(r.smembers(key))))
    if kind == "zset":
        return r.zrange(key, 0, -1, withscores=True)
    return r.xrange(key)


# --- features found by asking the engine --------------------------------------------------------------

def has_command(r: Any, name: str) -> bool:
    """Whether the engine knows command `name` (COMMAND INFO answers nil for an unknown one)."""
    reply = r.execute_command("COMMAND INFO", name)
    if isinstance(reply, dict):
        return name.lower() in {_plain(k).lower() for k in reply}
    return bool(reply) and reply[0] is not None


def _tokens(arguments: Any) -> set[str]:
    """Every option token in a COMMAND DOCS argument tree (RESP2 flat lists or RESP3 maps)."""
    found: set[str] = set()
    for arg in arguments or []:
        if not isinstance(arg, dict):
            arg = dict(zip(arg[::2], arg[1::2], strict=False)) if isinstance(arg, (list, tuple)) else {}
        arg = {_plain(k): v for k, v in arg.items()}
        if arg.get("token"):
            found.add(_plain(arg["token"]).upper())
        found |= _tokens(arg.get("arguments"))
    return found


def has_argument(r: Any, command: str, token: str) -> bool:
    """Whether the engine's COMMAND DOCS lists option `token` for `command` (e.g. SET ... IFEQ)."""
    reply = r.execute_command("COMMAND DOCS", command)
    if isinstance(reply, (list, tuple)):
        reply = dict(zip(reply[::2], reply[1::2], strict=False))
    doc = {_plain(k).lower(): v for k, v in (reply or {}).items()}.get(command.lower())
    if not doc:
        return False
    if isinstance(doc, (list, tuple)):
        doc = dict(zip(doc[::2], doc[1::2], strict=False))
    doc = {_plain(k): v for k, v in doc.items()}
    return token.upper() in _tokens(doc.get("arguments"))


@dataclass(frozen=True)
class Feature:
    name: str
    command: str
    token: str | None  # an option of `command`, or None: the command itself
    valkey: str  # the Valkey version that added it (valkey.io's command pages, checked November 2026)
    what: str


FEATURES = (
    Feature("hash-field expiration", "HEXPIRE", None, "9.0", "a TTL per hash field (HEXPIRE, HTTL, HPERSIST)"),
    Feature("conditional SET", "SET", "IFEQ", "8.1", "SET key new IFEQ old: compare-and-set in one command"),
    Feature("conditional delete", "DELIFEQ", None, "9.0", "DELIFEQ key value: release a lock only if you hold it"),
    Feature("command log", "COMMANDLOG", None, "8.1", "slow commands and also large requests and replies"),
    Feature("AOF fsync acknowledgement", "WAITAOF", None, "7.2 (Redis OSS 7.2 too)",
            "WAITAOF: block until your writes are fsynced to the AOF"),
)


def supports(r: Any, feature: Feature) -> bool:
    return has_argument(r, feature.command, feature.token) if feature.token else has_command(r, feature.command)


def feature_table(clients_by_engine: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per feature: which engine here has it, found by COMMAND INFO / COMMAND DOCS."""
    rows = []
    for f in FEATURES:
        row: dict[str, Any] = {"feature": f.name, "probe": f"{f.command} {f.token or ''}".strip(),
                               "since Valkey": f.valkey}
        for name, r in clients_by_engine.items():
            row[name] = supports(r, f)
        rows.append(row)
    return rows


def hash_field_ttl_demo(r: Any, key: str, ttl_ms: int = 300) -> dict[str, Any]:
    """A session hash whose one-time code expires on its own while the rest of the hash stays."""
    r.delete(key)
    r.hset(key, mapping={"user": "ada", "cart": "3 items", "otp": "482913"})
    set_reply = _plain(r.execute_command("HPEXPIRE", key, ttl_ms, "FIELDS", 1, "otp"))
    ttls = _plain(r.execute_command("HPTTL", key, "FIELDS", 3, "user", "cart", "otp"))
    deadline = time.monotonic() + ttl_ms / 1000 + 5
    while time.monotonic() < deadline and r.hexists(key, "otp"):
        time.sleep(0.05)
    return {"hpexpire": set_reply, "pttl": ttls, "after": _plain(r.hgetall(key)), "key_ttl": r.ttl(key)}


# --- cost: the Valkey rows of the dated price table ------------------------------------------------

def load_prices() -> list[dict[str, Any]]:
    return practices.load_prices()


def price_row(rows: list[dict[str, Any]], engine: str, option: str, item: str) -> dict[str, Any]:
    for row in rows:
        if (row["engine"], row["option"], row["item"]) == (engine, option, item):
            return row
    raise KeyError(f"no price for {engine} / {option} / {item} in data/elasticache_prices.csv")


def engine_prices(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item priced for both engines: Redis OSS and Valkey side by side, with each row's status."""
    out = []
    for r in rows:
        if r["engine"] != "redis":
            continue
        try:
            v = price_row(rows, "valkey", r["option"], r["item"])
        except KeyError:
            continue
        if r["item"] == "minimum_data_gb":
            continue
        out.append({"option": r["option"], "item": r["item"], "unit": r["unit"], "redis_oss": r["usd"],
                    "valkey": v["usd"], "valkey_saves": 1 - v["usd"] / r["usd"],
                    "status": r["status"] if r["status"] == v["status"] else f"{r['status']} / {v['status']}"})
    return out


def monthly_nodes(rows: list[dict[str, Any]], engine: str, node_type: str, nodes: int,
                  option: str = "on_demand") -> float:
    """nodes x hourly price x 730 hours (the course's average month: 8,760 h a year / 12)."""
    return practices.nodes_monthly(rows, engine, node_type, nodes, option)


def monthly_saving(rows: list[dict[str, Any]], node_type: str, nodes: int, option: str = "on_demand") -> float:
    """USD a month saved by running the same nodes on Valkey instead of Redis OSS."""
    return monthly_nodes(rows, "redis", node_type, nodes, option) - monthly_nodes(rows, "valkey", node_type, nodes, option)


# --- durability: the nearest local equivalent -----------------------------------------------------------

def durable_engine() -> str:
    """Valkey when installed (it has WAITAOF), else Redis OSS."""
    have = installed()
    return "valkey" if have["valkey"] is None else "redis"


def start_durable(name: str = "lab16-durable", engine: str | None = None) -> Service:
    """A node with the AOF on and appendfsync always: the reply to a write comes after its fsync."""
    return services.start("redis", name=name, engine=engine or durable_engine(), persistence=True)


def start_cache(name: str = "lab16-cache", engine: str | None = None) -> Service:
    """The same engine as a plain cache: no AOF, no snapshots."""
    return services.start("redis", name=name, engine=engine or durable_engine(),
                          config={"save": "", "appendonly": "no"})


def acknowledged_writes(r: Any, prefix: str, n: int) -> dict[str, Any]:
    """Write n keys one by one; after each, WAITAOF 1 0 (where the engine has it) confirms the local
    fsync. Returns the keys whose write was acknowledged, whether WAITAOF was used and how many
    writes it confirmed as fsynced."""
    for key in r.scan_iter(match=f"{prefix}:*", count=500):
        r.delete(key)
    aof_on = _plain(r.config_get("appendonly").get("appendonly")) == "yes"
    acked, waitaof = [], aof_on and has_command(r, "WAITAOF")  # WAITAOF 1 .. is an error without an AOF
    fsynced = 0
    for i in range(n):
        key = f"{prefix}:{i}"
        if r.set(key, f"order-{i}"):
            acked.append(key)
        if waitaof:
            local, _replicas = r.execute_command("WAITAOF", 1, 0, 1000)
            fsynced += int(local) == 1
    return {"acked": acked, "waitaof": waitaof, "fsynced": fsynced}


def crash_and_restart(svc: Service) -> tuple[Service, float]:
    """kill -9 the node, then start it again with the same options (it replays its AOF, if any).
    Returns the restarted service and the seconds the restart took."""
    svc.kill()
    t0 = time.monotonic()
    again = services.start("redis", name=svc.name, **svc.options)
    return again, time.monotonic() - t0


def survivors(r: Any, keys: list[str]) -> int:
    """How many of `keys` exist (one round trip per 500 keys)."""
    found = 0
    for i in range(0, len(keys), 500):
        found += int(r.exists(*keys[i:i + 500]))
    return found
