"""ElastiCache's published catalogue: parameter groups, node types and engine versions, as AWS states them.

The data lives in `data/elasticache_parameters/` (one CSV per parameter-group family, the node types'
`maxmemory`, the engine versions) and in `data/elasticache_node_types.csv`; where each figure comes
from, and which ones were derived rather than read, is in `data/elasticache_parameters/README.md`.
This module only reads it and checks values the way ModifyCacheParameterGroup does, so the local
control plane answers a bad value with AWS's error instead of a traceback, and so a lab can show
what AWS would have said.

AllowedValues use AWS's syntax: a comma-separated list of items, each a literal (`yes`, `0`, `-2`),
a range (`1-75`, `1.01-100.00`), an open range (`20-`: 20 or more) or `-` alone (any integer).
`0,20-` therefore means "0, or 20 and above".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from helpers.runtime.state import repo_root

GIB = 1024**3
DEFAULT_RESERVED_MEMORY_PERCENT = 25
# The shape of one entry of DescribeEngineDefaultParameters' / DescribeCacheParameters' `Parameters`.
API_FIELDS = ("ParameterName", "ParameterValue", "Description", "Source", "DataType", "AllowedValues",
              "IsModifiable", "MinimumEngineVersion", "ChangeType")

# ElastiCache parameters that no engine has under that name: ElastiCache acts on them itself.
# (name -> what ElastiCache does with it; the local control plane should do the same, never CONFIG SET them.)
ELASTICACHE_ONLY: dict[str, str] = {
    "reserved-memory-percent": "Lowers the engine's maxmemory: the node type's maxmemory minus this percent of it "
                               "is left for data (see maxmemory_for). Default 25.",
    "reserved-memory": "The same in bytes instead of a percent; a parameter group uses one or the other.",
    "close-on-replica-write": "A client that writes to a read replica is disconnected instead of getting a READONLY "
                              "error, so after a promotion it reconnects (through DNS) to the new primary.",
    "cluster-enabled": "Chosen by the parameter group (default.<family> or default.<family>.cluster.on): the nodes "
                       "are started in cluster mode or not; never changed on a running node.",
    "replica-allow-chaining": "Fixed at no: ElastiCache never lets a read replica replicate from another replica "
                              "(the engine has no such setting; its replicaof decides).",
    "rename-commands": "Renames commands (pairs 'OLD NEW'); the engine can only rename at start "
                       "(rename-command in its configuration file).",
    "search-fanout-target-mode": "A setting of the valkey-search module (Valkey 8.2+), not of valkey-server.",
    "search-default-timeout-ms": "A setting of the valkey-search module (Valkey 8.2+), not of valkey-server.",
    "search-enable-partial-results": "A setting of the valkey-search module (Valkey 8.2+), not of valkey-server.",
    "memcached_connections_overhead": "Megabytes kept back for connections: memcached is started with "
                                      "-m max_cache_memory minus this (see memcached_item_memory_mb).",
    "config_max": "Limit of ElastiCache's Auto Discovery configuration entries ('config get cluster').",
    "config_size_max": "Size limit of ElastiCache's Auto Discovery configuration entries.",
    "inline_ascii_resp": "Kept for compatibility; memcached 1.6 has no such option.",
    "watch": "memcached's watch command is always available; ElastiCache's switch has no startup flag.",
}

# Event classes notify-keyspace-events accepts: AWS documents K E g $ l s h z x e A; Redis OSS 7 and Valkey
# also accept t (stream), m (key miss), n (new key) and d (module).
KEYSPACE_EVENT_CLASSES = "KEg$lshzxeAtmnd"


class CatalogueError(Exception):
    """An error as the ElastiCache API answers it: `code` (e.g. InvalidParameterValue) and `message`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- the data --------------------------------------------------------------------------------------------------

def data_dir() -> Path:
    return repo_root() / "data"


def catalogue_dir() -> Path:
    return data_dir() / "elasticache_parameters"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@dataclass(frozen=True)
class Parameter:
    """One row of a family's table (the API fields, plus what the local control plane needs to apply it)."""

    name: str
    value: str
    description: str
    source: str
    data_type: str
    allowed: str
    modifiable: bool
    minimum_engine_version: str
    change_type: str
    cluster_on_value: str  # the value in default.<family>.cluster.on, when it differs
    listed: str  # "yes": in the defaults; "alternative": accepted, not listed; "node-type": per node type
    engine_config: str  # the engine's CONFIG name (Redis/Valkey) or start-up flag (memcached); "" = ElastiCache-only

    def api(self, cluster_mode: bool = False) -> dict[str, Any]:
        value = self.cluster_on_value if cluster_mode and self.cluster_on_value else self.value
        out: dict[str, Any] = {"ParameterName": self.name, "ParameterValue": value, "Description": self.description,
                               "Source": self.source, "DataType": self.data_type, "AllowedValues": self.allowed,
                               "IsModifiable": self.modifiable, "MinimumEngineVersion": self.minimum_engine_version,
                               "ChangeType": self.change_type}
        # AWS leaves out what has no value (notify-keyspace-events has neither a default nor AllowedValues).
        return {k: v for k, v in out.items() if v != ""}


@cache
def _family(family: str) -> dict[str, Parameter]:
    if family not in families():
        raise CatalogueError("InvalidParameterValue",
                             f"CacheParameterGroupFamily {family} is not known here; known: {', '.join(families())}.")
    rows = _read_csv(catalogue_dir() / f"{family}.csv")
    return {r["ParameterName"]: Parameter(
        name=r["ParameterName"], value=r["ParameterValue"], description=r["Description"], source=r["Source"],
        data_type=r["DataType"], allowed=r["AllowedValues"], modifiable=r["IsModifiable"] == "true",
        minimum_engine_version=r["MinimumEngineVersion"], change_type=r["ChangeType"],
        cluster_on_value=r["ClusterOnValue"], listed=r["Listed"], engine_config=r["EngineConfig"]) for r in rows}


@cache
def _versions() -> tuple[dict[str, str], ...]:
    return tuple(_read_csv(catalogue_dir() / "engine_versions.csv"))


@cache
def families() -> tuple[str, ...]:
    """The parameter-group families described here, e.g. ('memcached1.6', 'redis7', 'valkey7', ...)."""
    named = {v["CacheParameterGroupFamily"] for v in _versions()}
    return tuple(sorted(f for f in named if (catalogue_dir() / f"{f}.csv").exists()))


# --- parameters ------------------------------------------------------------------------------------------------

def parameters(family: str, cluster_mode: bool = False) -> list[dict[str, Any]]:
    """DescribeEngineDefaultParameters' `Parameters` for a family (cluster_mode: the .cluster.on default group)."""
    return [p.api(cluster_mode) for p in _family(family).values() if p.listed == "yes"]


def defaults(family: str, cluster_mode: bool = False) -> dict[str, str]:
    """Parameter name -> default value, for the parameters a new group of `family` lists."""
    return {d["ParameterName"]: d.get("ParameterValue", "") for d in parameters(family, cluster_mode)}


def parameter(family: str, name: str) -> Parameter:
    """One parameter of a family, also those not listed in the defaults (reserved-memory, maxmemory, ...)."""
    found = _family(family).get(name)
    if found is None:
        raise unknown_parameter(name)
    return found


def unknown_parameter(name: str) -> CatalogueError:
    # AWS's wording, as answered to ResetCacheParameterGroup for a parameter the group does not have.
    return CatalogueError("InvalidParameterValue", f"Parameter {name} doesn't exist")


def change_type(family: str, name: str) -> str:
    """'immediate' or 'requires-reboot': when a changed value reaches the nodes."""
    return parameter(family, name).change_type


def is_modifiable(family: str, name: str) -> bool:
    return parameter(family, name).modifiable


def validate(family: str, name: str, value: Any) -> None:
    """Raise CatalogueError unless ModifyCacheParameterGroup would accept `name=value` for `family`."""
    p = parameter(family, name)
    if not p.modifiable:
        raise CatalogueError("InvalidParameterValue", f"Parameter {name} is not modifiable.")
    text = "" if value is None else str(value)
    if not allowed(p, text):
        shown = f"'{text}'" if text == "" or text != text.strip() else text
        raise CatalogueError("InvalidParameterValue",
                             f"Value {shown} is not valid for parameter {name}: {describe_allowed(p)}.")


def allowed(p: Parameter, value: str) -> bool:
    """Whether `value` is one of p's AllowedValues (and of the right DataType)."""
    if p.name == "notify-keyspace-events":
        return set(value) <= set(KEYSPACE_EVENT_CLASSES)
    if p.name == "rename-commands":
        return _rename_commands_ok(value, p.allowed)
    if not p.allowed:
        return True
    number = _number(value, p.data_type)
    for item in parse_allowed(p.allowed, p.data_type):
        if isinstance(item, str):
            if value == item:
                return True
        elif number is not None and (item[0] is None or number >= item[0]) and (item[1] is None or number <= item[1]):
            return True
    return False


_NUM = r"-?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^({_NUM})?-({_NUM})?$")


def parse_allowed(spec: str, data_type: str = "string") -> list[str | tuple[Fraction | None, Fraction | None]]:
    """AWS's AllowedValues as items: a literal string, or a (low, high) range where None is open.

    Numeric items (DataType integer/float) become ranges, so '0,20-' -> [(0, 0), (20, None)]; for other
    types every item is a literal ('yes,no' -> ['yes', 'no']).
    """
    if not spec:
        return []
    items: list[str | tuple[Fraction | None, Fraction | None]] = []
    for token in spec.split(","):
        token = token.strip()
        if not token:
            raise ValueError(f"empty item in AllowedValues {spec!r}")
        if data_type not in ("integer", "float"):
            items.append(token)
            continue
        if re.fullmatch(_NUM, token):  # a literal number (also a negative one: '-2' is minus two, not 'up to 2')
            items.append((Fraction(token), Fraction(token)))
            continue
        m = _RANGE.match(token)
        if not m:
            raise ValueError(f"cannot read {token!r} in AllowedValues {spec!r}")
        low, high = (Fraction(x) if x is not None else None for x in m.groups())
        if low is not None and high is not None and low > high:
            raise ValueError(f"empty range {token!r} in AllowedValues {spec!r}")
        items.append((low, high))
    return items


def describe_allowed(p: Parameter) -> str:
    """AllowedValues in words, for error messages: '0,20-' -> 'allowed values are 0,20- (0, or 20 and above)'."""
    if p.name == "notify-keyspace-events":
        return f"use only the event classes {KEYSPACE_EVENT_CLASSES} (e.g. Ex or KEA)"
    if p.name == "rename-commands":
        return "give pairs 'COMMAND NEWNAME' of renamable commands, separated by spaces"
    words = []
    for item in parse_allowed(p.allowed, p.data_type):
        if isinstance(item, str):
            words.append(item)
        elif item == (None, None):
            words.append("any integer")
        elif item[0] is not None and item[0] == item[1]:
            words.append(_fmt(item[0]))
        elif item[1] is None:
            words.append(f"{_fmt(item[0])} and above")
        elif item[0] is None:
            words.append(f"up to {_fmt(item[1])}")
        else:
            words.append(f"{_fmt(item[0])} to {_fmt(item[1])}")
    kind = {"integer": "an integer", "float": "a number"}.get(p.data_type, "one of")
    return f"{kind} in {p.allowed} ({', or '.join(words)})" if p.data_type in ("integer", "float") \
        else f"{kind} {p.allowed}"


def _fmt(x: Fraction | None) -> str:
    return str(x.numerator) if x is not None and x.denominator == 1 else str(float(x or 0))


def _number(value: str, data_type: str) -> Fraction | None:
    if data_type == "integer":
        return Fraction(value) if re.fullmatch(r"-?\d+", value) else None
    if data_type == "float":
        return Fraction(value) if re.fullmatch(_NUM, value) else None
    return None


def _rename_commands_ok(value: str, renamable: str) -> bool:
    words = value.split()
    if len(words) % 2:
        return False
    allowed_names = {c.upper() for c in renamable.split(",")}
    return all(old.upper() in allowed_names for old in words[0::2])


# --- applying values to the engines ------------------------------------------------------------------------------

def engine_config_name(name: str, family: str | None = None) -> str | None:
    """The engine's name for an ElastiCache parameter, or None for an ElastiCache-only one (see ELASTICACHE_ONLY).

    Redis OSS / Valkey: the CONFIG name (client-output-buffer-limit-normal-hard-limit and its siblings are
    parts of one engine setting, client-output-buffer-limit). Memcached: the start-up flag ('-I',
    '-o hash_algorithm').
    """
    for fam in [family] if family else families():
        p = _family(fam).get(name)
        if p is not None:
            return p.engine_config or None
    raise unknown_parameter(name)


_BUFFER_PARTS = ("hard-limit", "soft-limit", "soft-seconds")


def engine_settings(family: str, values: Mapping[str, str]) -> dict[str, str]:
    """CONFIG SET arguments (name -> value) for a Redis OSS / Valkey node, from ElastiCache parameter values.

    Leaves out ElastiCache-only parameters and those that only take effect at start (ChangeType
    requires-reboot), and folds the client-output-buffer-limit-<class>-<part> parameters into the
    engine's single client-output-buffer-limit setting. `values` may hold only the changed parameters:
    the family's defaults fill in the rest of a buffer class.
    """
    if family.startswith("memcached"):
        raise ValueError("memcached has no CONFIG SET: its parameters are start-up flags (engine_config_name)")
    table = _family(family)
    out: dict[str, str] = {}
    classes: set[str] = set()
    for name, value in values.items():
        p = parameter(family, name)
        if not p.engine_config or p.change_type != "immediate" or p.listed == "node-type":
            continue
        if p.engine_config == "client-output-buffer-limit":
            cls = name.removeprefix("client-output-buffer-limit-").split("-")[0]
            if cls in ("normal", "pubsub"):  # the replica class is per node type and not modifiable
                classes.add(cls)
            continue
        if name == "cluster-preferred-endpoint-type" and value == "tls-dynamic":
            value = "ip"  # ElastiCache's own value; the engine knows ip/hostname/unknown-endpoint
        out[p.engine_config] = value
    if classes:
        def part(cls: str, what: str) -> str:
            key = f"client-output-buffer-limit-{cls}-{what}"
            return values.get(key, table[key].value)
        out["client-output-buffer-limit"] = " ".join(
            f"{cls} " + " ".join(part(cls, w) for w in _BUFFER_PARTS) for cls in sorted(classes))
    return out


# --- node types --------------------------------------------------------------------------------------------------

@cache
def _node_types() -> dict[str, dict[str, str]]:
    return {r["node_type"]: r for r in _read_csv(data_dir() / "elasticache_node_types.csv")}


@cache
def _node_maxmemory() -> dict[str, dict[str, str]]:
    return {r["node_type"]: r for r in _read_csv(catalogue_dir() / "node_type_maxmemory.csv")}


def node_types() -> list[str]:
    """The node types in data/elasticache_node_types.csv (current generation)."""
    return list(_node_types())


def is_valid_node_type(node_type: str) -> bool:
    return node_type in _node_types()


def _check_node_type(node_type: str) -> None:
    if not is_valid_node_type(node_type):
        raise CatalogueError("InvalidParameterValue", f"Invalid CacheNodeType: {node_type}.")


def node_type_memory(node_type: str) -> int:
    """The node's memory in bytes, as AWS lists it (memory_gib in the node-type table x 2^30)."""
    _check_node_type(node_type)
    return round(Fraction(_node_types()[node_type]["memory_gib"]) * GIB)


def node_type_maxmemory(node_type: str, engine: str = "redis") -> int:
    """The node-type specific `maxmemory` parameter (bytes) AWS publishes for Redis OSS / Valkey.

    Falls back to the node's listed memory for a type AWS's maxmemory table does not (yet) list.
    """
    _check_node_type(node_type)
    row = _node_maxmemory().get(node_type, {})
    first, second = ("valkey_maxmemory", "redis_maxmemory") if engine == "valkey" else \
        ("redis_maxmemory", "valkey_maxmemory")
    figure = row.get(first) or row.get(second)
    return int(figure) if figure else node_type_memory(node_type)


def maxmemory_for(node_type: str, reserved_memory_percent: float = DEFAULT_RESERVED_MEMORY_PERCENT, *,
                  reserved_memory: int | None = None, engine: str = "redis") -> int:
    """The engine's maxmemory on an ElastiCache node: the node type's maxmemory minus the reserved memory.

    Reserved memory is `reserved-memory-percent` of the node type's maxmemory (25 by default), or, for
    a group that uses `reserved-memory` instead, that many bytes. Rounded to the nearest byte.
    """
    total = node_type_maxmemory(node_type, engine)
    if reserved_memory is not None:
        if reserved_memory < 0:
            raise CatalogueError("InvalidParameterValue", "reserved-memory must be 0 or more.")
        return max(total - int(reserved_memory), 0)
    pct = Fraction(str(reserved_memory_percent))
    if not 0 <= pct <= 100:
        raise CatalogueError("InvalidParameterValue", "reserved-memory-percent must be between 0 and 100.")
    exact = total * (100 - pct) / 100
    return int(exact + Fraction(1, 2))  # half up: 10527885772.5 -> 10527885773


def memcached_item_memory_mb(node_type: str, connections_overhead_mb: int = 100) -> int:
    """Megabytes memcached may use for items: the node's max_cache_memory minus memcached_connections_overhead."""
    _check_node_type(node_type)
    figure = _node_maxmemory().get(node_type, {}).get("memcached_max_cache_memory_mb")
    total = int(figure) if figure else node_type_memory(node_type) // 2**20
    return max(total - connections_overhead_mb, 0)


# --- engine versions -----------------------------------------------------------------------------------------------

def engines() -> list[str]:
    return list(dict.fromkeys(v["Engine"] for v in _versions()))


def engine_versions(engine: str | None = None) -> list[dict[str, str]]:
    """DescribeCacheEngineVersions' `CacheEngineVersions` (all engines, or one), oldest first."""
    return [dict(v) for v in _versions() if engine is None or v["Engine"] == engine.lower()]


def default_engine_version(engine: str) -> str:
    """The newest version of an engine (what AWS uses when EngineVersion is left out)."""
    found = engine_versions(engine)
    if not found:
        raise CatalogueError("InvalidParameterValue", f"Invalid value for Engine: {engine}.")
    return found[-1]["EngineVersion"]


def engine_version(engine: str, version: str | None = None) -> dict[str, str]:
    """One entry of engine_versions(), or AWS's error for a version it does not offer."""
    engine = (engine or "").lower()
    if engine not in engines():
        raise CatalogueError("InvalidParameterValue", f"Invalid value for Engine: {engine}.")
    wanted = version or default_engine_version(engine)
    for v in engine_versions(engine):
        if v["EngineVersion"] == wanted:
            return v
    raise CatalogueError("InvalidParameterCombination", f"Cannot find version {wanted} for {engine}")


def offered_minors(engine: str) -> list[str]:
    """The versions AWS offers for Redis OSS / Valkey (major.minor), oldest first."""
    return [v["EngineVersion"] for v in engine_versions(engine)]


def family_for(engine: str, version: str | None = None) -> str:
    """The parameter-group family of an engine version, e.g. ('valkey', '8.1') -> 'valkey8'."""
    return engine_version(engine, version)["CacheParameterGroupFamily"]
