"""The topologies the lab can start, one registry for all of them (see `registry`).

Importing this package registers every built-in topology: `standalone` (redis, memcached,
memcached-pool, aws), `replicated` (primary, replicas and Sentinels), `cluster` (Redis Cluster;
moving its slots is in `resharding`) and `secure` (AUTH, ACL users, TLS, Memcached auth).

The labs write `from helpers.runtime import topologies as topo` and call `topo.primary_client(svc)`,
`topo.move_slots(...)` and so on: those functions are re-exported here.
"""

from __future__ import annotations

from helpers.runtime.service import record
from helpers.runtime.topologies import cluster, replicated, resharding, secure, standalone  # noqa: F401 (registering)
from helpers.runtime.topologies.cluster import (
    CLUSTER_SLOTS,
    cluster_client,
    cluster_nodes,
    parse_cluster_nodes,
    slot_owners,
    wait_cluster_ok,
)
from helpers.runtime.topologies.nodes import node_client, refresh_roles, start_data_node
from helpers.runtime.topologies.registry import TOPOLOGIES, Topology, topology
from helpers.runtime.topologies.replicated import (
    current_primary,
    primary_client,
    replica_client,
    sentinel,
    sentinel_node_client,
    wait_replicas_synced,
)
from helpers.runtime.topologies.resharding import (
    add_shard,
    fix_open_slots,
    move_slots,
    open_slots,
    rebalance_slots,
    remove_shard,
    resize,
)
from helpers.runtime.topologies.standalone import pool_client

__all__ = [
    "CLUSTER_SLOTS", "TOPOLOGIES", "Topology", "add_shard", "cluster_client", "cluster_nodes", "current_primary",
    "fix_open_slots", "move_slots", "node_client", "open_slots", "parse_cluster_nodes", "pool_client",
    "primary_client", "rebalance_slots", "record", "refresh_roles", "remove_shard", "replica_client", "resize",
    "sentinel", "sentinel_node_client", "slot_owners", "start_data_node", "topology", "wait_cluster_ok",
    "wait_replicas_synced",
]
