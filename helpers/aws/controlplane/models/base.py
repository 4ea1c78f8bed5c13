"""What every part of the control plane shares: names and limits, the records, the backend's state.

The records (cache clusters, replication groups, users, ...) are plain dataclasses; `Backend` holds
them in memory like moto's backends, with the tools every resource's module uses: a lock, lookups
that raise the API's NotFound, background work that reports failures as events, engine versions.
"""

from __future__ import annotations

import contextlib
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.discovery import ConfigEndpoint
from helpers.aws.controlplane.endpoints import Forwarder
from helpers.aws.controlplane.errors import (
    invalid_combination,
    invalid_value,
    not_found,
)
from helpers.runtime import state
from helpers.runtime.engines import Node

_T = TypeVar("_T")

ACCOUNT = "123456789012"
ADMIN_USER = "elasticache-lab-admin"  # the control plane's own ACL user (AWS keeps one too)
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")

# Memory per node type (MiB) minus ElastiCache's 25 % reserved memory: becomes `maxmemory`.
NODE_MEMORY_MB = {"micro": 512, "small": 1400, "medium": 3090, "large": 6380, "xlarge": 12900}

# The parameters a lab can see applied: name -> (default, allowed values, description).
REDIS_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "maxmemory-policy": ("volatile-lru", "volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,"
                         "allkeys-random,volatile-ttl,noeviction", "Which keys are evicted when memory is full."),
    "maxmemory-samples": ("3", "1-", "Keys sampled per eviction (LRU/LFU/TTL are approximated)."),
    "timeout": ("0", "0,20-", "Close a client connection idle for this many seconds (0: never)."),
    "tcp-keepalive": ("300", "0-", "Seconds between TCP keepalive probes to clients."),
    "notify-keyspace-events": ("", "", "Keyspace notifications published on Pub/Sub (e.g. Ex for expiries)."),
    "lfu-log-factor": ("10", "1-", "LFU counter logarithm factor."),
    "lfu-decay-time": ("1", "0-", "Minutes after which an LFU counter decays."),
    "slowlog-log-slower-than": ("10000", "-", "Microseconds above which a command goes to the slow log."),
    "slowlog-max-len": ("128", "0-", "Length of the slow log."),
    "activedefrag": ("no", "yes,no", "Defragment memory in the background."),
    "lazyfree-lazy-eviction": ("no", "yes,no", "Free evicted values in a background thread."),
    "lazyfree-lazy-expire": ("no", "yes,no", "Free expired values in a background thread."),
    "hash-max-listpack-entries": ("128", "0-", "Small hashes are encoded compactly up to this many fields."),
    "set-max-intset-entries": ("512", "0-", "Small integer sets are encoded compactly up to this size."),
    "zset-max-listpack-entries": ("128", "0-", "Small sorted sets are encoded compactly up to this size."),
}
MEMCACHED_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "max_item_size": ("1048576", "1048576-134217728", "Largest item size in bytes (-I); applied at node start."),
    "chunk_size_growth_factor": ("1.25", "1.01-2", "Slab size growth factor (-f); applied at node start."),
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def arn(kind: str, ident: str) -> str:
    return f"arn:aws:elasticache:us-east-1:{ACCOUNT}:{kind}:{ident}"


def check_id(value: Any, what: str, limit: int) -> str:
    """AWS's naming rule: a letter first, then letters/digits/hyphens, no '--', no trailing '-'."""
    if not value or not isinstance(value, str):
        raise invalid_value(f"The parameter {what} must be provided and must not be blank.")
    ident = value.lower()
    if len(ident) > limit or not ID_RE.match(ident) or "--" in ident or ident.endswith("-"):
        raise invalid_value(f"The parameter {what} is not a valid identifier. Identifiers must begin with a "
                            "letter; must contain only ASCII letters, digits, and hyphens; and must not end "
                            f"with a hyphen or contain two consecutive hyphens (at most {limit} characters).")
    return ident


def maxmemory_for(node_type: str) -> str:
    size = node_type.rsplit(".", 1)[-1]
    return f"{NODE_MEMORY_MB.get(size, 512)}mb"


@dataclass
class Event:
    source_id: str
    source_type: str
    message: str
    date: datetime = field(default_factory=now)


@dataclass
class ParameterGroup:
    name: str
    family: str
    description: str
    values: dict[str, str] = field(default_factory=dict)  # user-set values only
    is_default: bool = False

    @property
    def catalog(self) -> dict[str, tuple[str, str, str]]:
        return MEMCACHED_PARAMETERS if self.family.startswith("memcached") else REDIS_PARAMETERS

    def effective(self) -> dict[str, str]:
        return {k: self.values.get(k, d[0]) for k, d in self.catalog.items()}

    @property
    def arn(self) -> str:
        return arn("parametergroup", self.name)


@dataclass
class User:
    user_id: str
    user_name: str
    engine: str
    access_string: str
    passwords: list[str]
    no_password: bool
    status: str = "active"

    @property
    def arn(self) -> str:
        return arn("user", self.user_id)


@dataclass
class UserGroup:
    group_id: str
    engine: str
    user_ids: list[str]
    status: str = "active"

    @property
    def arn(self) -> str:
        return arn("usergroup", self.group_id)


@dataclass(frozen=True)
class NodeSnapshot:
    """One node's RDB file in a snapshot (of a replication group: one per node group)."""

    node_id: str
    size: int  # bytes
    node_created: datetime
    cluster_id: str | None = None  # the member cluster it was taken from (replication groups)
    node_group_id: str | None = None
    created: datetime = field(default_factory=now)


@dataclass
class Snapshot:
    name: str
    cluster: CacheCluster | None = None  # a copy of the source as it was when the snapshot was taken
    group: ReplicationGroup | None = None
    files: list[str] = field(default_factory=list)  # one RDB file per shard, under the state dir
    status: str = "creating"
    node_snapshots: list[NodeSnapshot] = field(default_factory=list)
    created: datetime = field(default_factory=now)

    @property
    def arn(self) -> str:
        return arn("snapshot", self.name)


@dataclass
class CacheCluster:
    """A standalone cache cluster: one Redis node, or 1-40 Memcached nodes."""

    cluster_id: str
    engine: str
    engine_version: str
    node_type: str
    num_nodes: int
    az: str
    param_group: str
    subnet_group: str | None
    security_group_ids: list[str]
    auth_token: str | None
    tls: bool
    snapshot_name: str | None
    snapshot_retention: int
    snapshot_window: str
    maintenance_window: str
    status: str = "creating"
    created: datetime = field(default_factory=now)
    nodes: list[dict[str, Any]] = field(default_factory=list)  # {"id", "created", "status"}
    next_node: int = 1
    discovery: ConfigEndpoint | None = None  # Memcached: the configuration endpoint (Auto Discovery)

    @property
    def arn(self) -> str:
        return arn("cluster", self.cluster_id)

    def service_name(self, node_id: str | None = None) -> str:
        if self.engine == "memcached":
            return f"{ops.PREFIX}{self.cluster_id}-{node_id}"
        return f"{ops.PREFIX}{self.cluster_id}"


@dataclass
class ReplicationGroup:
    group_id: str
    description: str
    engine: str
    engine_version: str
    node_type: str
    cluster_mode: bool
    shards: int
    replicas: int
    automatic_failover: bool
    multi_az: bool
    param_group: str
    subnet_group: str | None
    security_group_ids: list[str]
    auth_token: str | None
    tls: bool
    user_group_ids: list[str]
    snapshot_name: str | None
    snapshot_retention: int
    snapshot_window: str
    status: str = "creating"
    created: datetime = field(default_factory=now)
    member_ids: dict[str, str] = field(default_factory=dict)  # node name -> member cluster id
    node_group_of: dict[str, str] = field(default_factory=dict)  # node name -> node group id
    applied_users: set[str] = field(default_factory=set)
    admin_password: str | None = None
    resharding: bool = False  # shown as PendingModifiedValues while node groups are added or removed
    # The stable endpoints (primary, reader, configuration): loopback forwarders, see endpoints.py
    endpoints: dict[str, Forwarder] = field(default_factory=dict)
    recovering: set[str] = field(default_factory=set)  # node names the monitor is replacing
    busy: bool = False  # an operation is switching nodes: the recovery monitor leaves the group alone

    @property
    def arn(self) -> str:
        return arn("replicationgroup", self.group_id)

    @property
    def service_name(self) -> str:
        return f"{ops.PREFIX}rg-{self.group_id}"

    @property
    def topology(self) -> str:
        if self.cluster_mode:
            return "cluster"
        return "replicated" if self.replicas > 0 else "aws-redis"


@dataclass
class Member:
    """A member cache cluster of a replication group: one data node, with its role right now."""

    group: ReplicationGroup
    cluster_id: str  # <group>-001, or <group>-<node group>-001 in cluster mode
    node: Node
    role: str  # primary | replica
    node_group: str
    az: str

    @property
    def arn(self) -> str:
        return arn("cluster", self.cluster_id)


class Backend:
    """The control plane's state; the resource modules in this package add the operations."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clusters: dict[str, CacheCluster] = {}
        self.groups: dict[str, ReplicationGroup] = {}
        self.users: dict[str, User] = {"default": User("default", "default", "redis", "on ~* +@all", [], True)}
        self.user_groups: dict[str, UserGroup] = {}
        self.param_groups: dict[str, ParameterGroup] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.events: list[Event] = []
        self.tags: dict[str, dict[str, str]] = {}
        self.threads: list[threading.Thread] = []
        redis_family, mc_family = self.family("redis"), self.family("memcached")
        for name, family in ((f"default.{redis_family}", redis_family),
                             (f"default.{redis_family}.cluster.on", redis_family),
                             (f"default.{mc_family}", mc_family)):
            self.param_groups[name] = ParameterGroup(name, family, f"Default parameter group for {family}",
                                                     is_default=True)

    @staticmethod
    def local_version(engine: str) -> str:
        from helpers.runtime import engines

        kind = "memcached" if engine == "memcached" else "redis"
        text = engines.binary_version(engines.find_binary(kind))  # "Redis 7.0.15", "memcached 1.6.18"
        return text.split()[-1]

    def family(self, engine: str) -> str:
        try:
            version = self.local_version(engine)
        except Exception:  # noqa: BLE001 - no engine installed: a plausible family keeps the API usable
            version = "1.6.0" if engine == "memcached" else "7.0.0"
        major = version.split(".")[0]
        return f"memcached{'.'.join(version.split('.')[:2])}" if engine == "memcached" else f"redis{major}"

    def describe_cache_engine_versions(self, engine: str | None = None, version: str | None = None,
                                       family: str | None = None) -> list[tuple[str, str, str]]:
        """(engine, version, family) of the engines installed here: the only ones the endpoint can run."""
        out = []
        for name in ("redis", "memcached"):
            try:
                local = self.local_version(name)
            except Exception:  # noqa: BLE001 - engine not installed: not offered
                continue
            fam = self.family(name)
            if engine and engine.lower() != name:
                continue
            if version and not local.startswith(str(version)):
                continue
            if family and family != fam:
                continue
            out.append((name, local, fam))
        return out

    def check_engine(self, engine: Any, version: Any) -> tuple[str, str]:
        engine = (engine or "redis").lower()
        if engine not in ("redis", "valkey", "memcached"):
            raise invalid_value(f"Invalid engine: {engine}. Choose redis, valkey or memcached.")
        from helpers.runtime import engines

        if engine == "valkey" and "valkey" not in Path(engines.find_binary("redis")).name:
            raise invalid_value("Engine valkey is not installed on this machine (only redis-server is): "
                                "use --engine redis, or install valkey-server.")
        local = self.local_version(engine)
        if version and not (local == version or local.startswith(str(version) + ".")):
            raise invalid_value(f"Cannot find version {version} for {engine}: this machine runs {engine} {local}. "
                                f"Omit --engine-version or ask for {'.'.join(local.split('.')[:2])}.")
        return engine, local

    def event(self, source_id: str, source_type: str, message: str) -> None:
        with self.lock:
            self.events.append(Event(source_id, source_type, message))

    def add_tags(self, resource_arn: str, tags: dict[str, str] | None) -> None:
        if tags:
            with self.lock:
                self.tags.setdefault(resource_arn, {}).update(tags)

    def background(self, what: str, fn: Any, on_error: Any) -> None:
        """Run fn in a thread; on failure call on_error(message) so the resource shows what went wrong."""

        def run() -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - reported through the API's status and events
                msg = str(exc) or type(exc).__name__
                with contextlib.suppress(Exception):
                    (state.home() / "controlplane.log").open("a").write(f"{now()} {what}: {traceback.format_exc()}\n")
                on_error(msg)

        t = threading.Thread(target=run, name=f"controlplane-{what}", daemon=True)
        with self.lock:
            self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()

    def _lookup(self, table: dict[str, _T], key: Any, kind: str, lower: bool = False) -> _T:
        """table[key] (ids are case-insensitive where AWS lowercases them), or the API's NotFound error."""
        wanted = str(key or "")
        with self.lock:
            found = table.get(wanted.lower() if lower else wanted)
        if found is None:
            raise not_found(kind, str(key))
        return found

    def _describe(self, wanted: Any, get: Callable[[Any], _T], table: dict[str, _T]) -> list[_T]:
        """A Describe* call: the one resource asked for (NotFound if unknown), else every one."""
        if wanted:
            return [get(wanted)]
        with self.lock:
            return list(table.values())

    def check_token(self, token: str, engine: str, tls: bool) -> None:
        if engine == "memcached":
            raise invalid_combination("AuthToken is only for Redis/Valkey.")
        if not tls:
            raise invalid_value("The AUTH token is only supported when encryption-in-transit is enabled "
                                "(add --transit-encryption-enabled).")
        if not 16 <= len(token) <= 128 or not all(32 < ord(c) < 127 for c in token) or set(token) & set("@\"/"):
            raise invalid_value("Invalid AuthToken: 16 to 128 printable characters, without spaces, '@', '\"' "
                                "or '/'.")

    def check_subnet_group(self, name: str | None) -> str | None:
        if not name:
            return None
        from moto.elasticache.models import elasticache_backends

        if name not in elasticache_backends[ACCOUNT]["us-east-1"].cache_subnet_groups:
            raise not_found("CacheSubnetGroup", name)
        return name
