"""Durability (ElastiCache for Valkey 9.0+): AWS's rules for `--durability`, and its local effect.

On AWS a durable cluster writes every change to a Multi-AZ transaction log: `sync` before it answers
the client, `async` after (up to the last 10 s of writes can be lost). The rules, from the guide's
"Limitations" page (checked 2026-11): Valkey 9.0 or later; node families R7g, R6g, M7g, M6g, C7gn;
cluster mode enabled; Multi-AZ with at least one replica per shard;
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
# The English "Limitations" page (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Durability.Limitations.html,
# read 2026-11-27) lists R7g, R6g, M7g, M6g and C7gn. Machine-translated copies of it (es_es, ja_jp, zh_tw) add
# R8g, M8g and C8gn, but AWS says the English page prevails, the same translations still lack its newer TLS
# requirement (so they are the older text), and ElastiCache's node-type list (API reference, CacheNode) has no
# 8th-generation Graviton types at all.
FAMILIES = ("r7g", "r6g", "m7g", "m6g", "c7gn")
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
