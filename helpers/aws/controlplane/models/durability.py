"""Durability (ElastiCache for Valkey 9.0+): AWS's rules for `--durability`, and its local effect.

On AWS a durable cluster writes every change to a Multi-AZ transaction log: `sync` before it answers
the client, `async` after (up to the last 10 s of writes can be lost). The rules, from the guide's
"Limitations" page (checked 2026-11): Valkey 9.0 or later; node families R7g, R6g, M7g, M6g, C7gn and
the Graviton4 R8g, M8g, C8gn (see FAMILIES); cluster mode enabled; Multi-AZ with at least one replica per shard;
encryption in transit at creation (encryption at rest is turned on automatically); not Serverless,
Global Datastore or data tiering. An existing cluster switches between sync, async and disabled
with ModifyReplicationGroup --durability when it meets the same requirements ("Changing durability on
an existing cluster", October 2026; older pages of the guide still say it is fixed at creation).

Locally every node of a durable group runs with its append-only file on: `appendfsync always` (the
write is on this machine's disk before the reply) for sync, `everysec` for async. One disk on one
machine, not a log in several Availability Zones: docs/local-vs-aws.md says what differs.
"""

from __future__ import annotations

from helpers.aws.controlplane.errors import invalid_combination, invalid_value

VALUES = ("default", "sync", "async", "disabled")
# Node families (checked 2026-11-27). The "Limitations" page
# (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Durability.Limitations.html) differs by copy: the
# English one read here lists R7g, R6g, M7g, M6g, C7gn; its es_es, ja_jp and zh_tw copies list R8g, R7g, R6g,
# M8g, M7g, M6g, C8gn, C7gn. The Graviton4 families are ElastiCache node types (CacheNodes.SupportedTypes.html;
# data/elasticache_node_types.csv) and AWS's Price List API has a durability SKU for them
# ("SyncDurability-NodeUsage:cache.r8g.large"), so durability is sold on them: all eight are accepted.
FAMILIES = ("r7g", "r6g", "m7g", "m6g", "c7gn", "r8g", "m8g", "c8gn")
FSYNC = {"sync": "always", "async": "everysec"}


def _major_minor(version: str) -> tuple[int, int]:
    parts = [int(p) for p in str(version).split(".")[:2] if p.isdigit()]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def check_durability(durability: str | None, engine: str, version: str, node_type: str, clustered: bool,
                     multi_az: bool, replicas: int, tls: bool) -> str:
    """The EffectiveDurability of a new group, or AWS's error for a combination it refuses."""
    if durability is None:
        return "disabled"
    if durability not in VALUES:
        raise invalid_value(f"Invalid value for Durability: {durability}. Valid values: {', '.join(VALUES)}.")
    if durability in ("default", "disabled"):
        return "disabled"  # "default" resolves to disabled on Valkey 9.0 (AWS's table)
    if engine != "valkey" or _major_minor(version) < (9, 0):
        raise invalid_combination(f"Durability is supported on Valkey 9.0 or later, not on {engine} {version}.")
    family = node_type.removeprefix("cache.").split(".")[0]
    if family not in FAMILIES:
        raise invalid_combination(f"Durability is not supported on {node_type}: use a node type of the "
                                  f"{', '.join(f.upper() for f in FAMILIES)} families.")
    if not clustered:
        raise invalid_combination("Durability is not supported for cluster mode disabled clusters: "
                                  "enable cluster mode.")
    if not multi_az or replicas < 1:
        raise invalid_combination("Durability requires Multi-AZ enabled with at least one replica per shard.")
    if not tls:
        raise invalid_combination("Durability requires encryption in transit (TransitEncryptionEnabled) at "
                                  "cluster creation.")
    return durability


def check_change(current: str, asked: str | None, engine: str, version: str, node_type: str, clustered: bool,
                 multi_az: bool, replicas: int, tls: bool, global_member: bool) -> str | None:
    """The new EffectiveDurability for ModifyReplicationGroup --durability, None when nothing changes."""
    if asked is None:
        return None
    if asked not in VALUES:
        raise invalid_value(f"Invalid value for Durability: {asked}. Valid values: {', '.join(VALUES)}.")
    if global_member:
        raise invalid_combination("Durability is not supported for a cluster that is part of a Global Datastore.")
    new = "disabled" if asked == "default" else asked
    if new == current:
        return None
    if new != "disabled":  # the requirements of a durable cluster, checked as at creation
        check_durability(new, engine, version, node_type, clustered, multi_az, replicas, tls)
    return new


def durability_config(effective: str) -> dict[str, str]:
    """The engine settings that stand in for the transaction log on every node of the group."""
    if effective not in FSYNC:
        return {}
    return {"appendonly": "yes", "appendfsync": FSYNC[effective]}
