"""The replication group's records: the group, and each member cache cluster as DescribeCacheClusters lists it.

Their own module, apart from the operations and the table (models/replication.py): every module that acts on
groups needs them (scaling, recovery, transit, migration, global_datastore, lifecycle, logdelivery, parameters,
snapshots, users), and models/replication.py imports lifecycle and logdelivery, so the records there would make
an import cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.endpoints import Forwarder
from helpers.aws.controlplane.models.base import DEFAULT_MAINTENANCE_WINDOW, arn, now
from helpers.runtime.engines import Node


@dataclass
class ReplicationGroup:
    """A replication group: one primary and its replicas, or a Redis Cluster of shards (models/replication.py)."""

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
    # The highest node-group number handed out so far: a removed node group's id is never given again
    node_groups_made: int = 0
    applied_users: set[str] = field(default_factory=set)
    admin_password: str | None = None
    resharding: bool = False  # shown as PendingModifiedValues while node groups are added or removed
    at_rest_encryption: bool = False
    pending: dict[str, Any] = field(default_factory=dict)  # PendingModifiedValues until applied
    params_pending_reboot: bool = False
    previous_token: str | None = None  # ROTATE keeps the old AUTH token valid until SET
    maintenance_window: str = DEFAULT_MAINTENANCE_WINDOW
    durability: str | None = None  # Durability as asked (default | sync | async | disabled); None: not asked
    effective_durability: str = "disabled"  # sync | async: every node logs each write before (or after) answering
    # The stable endpoints (primary, reader, configuration): loopback forwarders, see endpoints.py
    endpoints: dict[str, Forwarder] = field(default_factory=dict)
    recovering: set[str] = field(default_factory=set)  # node names the monitor is replacing
    rebooting: set[str] = field(default_factory=set)  # node names a RebootCacheCluster is restarting
    busy: bool = False  # an operation is switching nodes: the recovery monitor leaves the group alone
    region: str = "us-east-1"  # the region it was created in (see global_datastore.py)
    global_id: str | None = None  # the global datastore it belongs to, and its role there (primary | secondary)
    global_role: str | None = None
    migration: str | None = None  # host:port of the self-hosted server it migrates from (models/migration.py)
    after_create: Callable[[], None] | None = None  # run once the engines are up, before `available`
    # TransitEncryptionMode: None (no TLS, or TLS made at creation: `tls`), "preferred" (each node has a
    # plaintext and a TLS listener: `tls_ports`, node name -> port) or "required" (TLS only), see transit.py
    transit_mode: str | None = None
    tls_ports: dict[str, int] = field(default_factory=dict)
    log_delivery: list[dict[str, Any]] = field(default_factory=list)  # LogDeliveryConfigurations, logdelivery.py
    log_cursors: dict[str, int] = field(default_factory=dict)  # "<cluster>/<node>/<log type>" -> last shipped
    # The group's lock: its members (member_ids, node_group_of) and its status change under it, and a describe
    # reads them under it, together with the service record, so an answer never mixes two states of the group.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    # Operations starting processes for the group right now (Backend.starting_processes): a delete waits for them
    starters: int = field(default=0, init=False, repr=False, compare=False)

    @property
    def arn(self) -> str:
        return arn("replicationgroup", self.group_id, self.region)

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
        return arn("cluster", self.cluster_id, self.group.region)
