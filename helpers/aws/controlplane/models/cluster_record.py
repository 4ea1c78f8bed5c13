"""The cache cluster's record: what the control plane keeps of a standalone cache cluster.

Its own module, apart from the operations and the table (models/clusters.py): the modules that act on clusters
and groups alike need it (lifecycle, logdelivery, parameters, snapshots), and models/clusters.py imports
lifecycle and logdelivery, so the record there would make an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.discovery import ConfigEndpoint
from helpers.aws.controlplane.models.base import arn, now


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
    at_rest_encryption: bool = False
    pending: dict[str, Any] = field(default_factory=dict)  # PendingModifiedValues until applied
    params_pending_reboot: bool = False  # a requires-reboot parameter changed since the last (re)start
    previous_token: str | None = None  # ROTATE keeps the old AUTH token valid until SET
    region: str = "us-east-1"  # the region it was created in (the client's region name)
    port: int | None = None  # CreateCacheCluster's Port: the node listens there (else a free port)
    log_delivery: list[dict[str, Any]] = field(default_factory=list)  # LogDeliveryConfigurations, logdelivery.py
    log_cursors: dict[str, int] = field(default_factory=dict)  # "<cluster>/<node>/<log type>" -> last shipped

    @property
    def arn(self) -> str:
        return arn("cluster", self.cluster_id, self.region)

    def service_name(self, node_id: str | None = None) -> str:
        if self.engine == "memcached":
            return f"{ops.PREFIX}{self.cluster_id}-{node_id}"
        return f"{ops.PREFIX}{self.cluster_id}"
