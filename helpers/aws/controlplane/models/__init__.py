"""The local ElastiCache control plane's model: API resources backed by real engines.

Resources live in memory like moto's, but every create/modify/delete also acts on real
redis-server and memcached processes, started as services named `aws-...` in the learner's state
directory. Slow work runs in a background thread, so statuses move creating -> available as on AWS.

One module per resource, mixed into one backend like moto's EC2 (`ec2/models/*.py`); each holds its
resource's record (a dataclass) and table (set in its mixin's __init__) with the operations:
base (names, limits and shared tools), clusters, replication (groups and their engines), global_datastore
(replication groups of several regions), scaling (failover, replicas, shards), recovery (the monitor
that detects failed nodes and replaces them), users (and user groups, as ACL users), parameters,
snapshots, events (and tags), serverless, reserved, lifecycle (engine upgrades, service updates). The
cache cluster's and replication group's records, which most modules need, are in cluster_record and
replication_record. The models take keyword arguments and return records; responses/ speaks AWS.
"""

from __future__ import annotations

import shutil

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.models.base import Backend
from helpers.aws.controlplane.models.clusters import CacheClusters
from helpers.aws.controlplane.models.events import EventsAndTags
from helpers.aws.controlplane.models.global_datastore import GlobalDatastores
from helpers.aws.controlplane.models.lifecycle import EngineLifecycle
from helpers.aws.controlplane.models.logdelivery import LogDelivery
from helpers.aws.controlplane.models.migration import Migrations
from helpers.aws.controlplane.models.parameters import ParameterGroups
from helpers.aws.controlplane.models.recovery import Recovery
from helpers.aws.controlplane.models.replication import ReplicationGroups
from helpers.aws.controlplane.models.reserved import ReservedNodes
from helpers.aws.controlplane.models.scaling import Scaling
from helpers.aws.controlplane.models.serverless import ServerlessCaches
from helpers.aws.controlplane.models.snapshots import Snapshots
from helpers.aws.controlplane.models.transit import TransitEncryption
from helpers.aws.controlplane.models.users import Users
from helpers.runtime import services, state

__all__ = ["PLANE", "ControlPlane", "stop_aws_services"]


class ControlPlane(ServerlessCaches, CacheClusters, GlobalDatastores, ReplicationGroups, TransitEncryption, LogDelivery,
                   Scaling, Migrations, Recovery, Users, ParameterGroups, ReservedNodes, Snapshots, EventsAndTags, EngineLifecycle,
                   Backend):
    """All ElastiCache resources of the local endpoint, and the engines behind them."""

    def reset(self) -> None:
        """Forget everything and stop every engine this control plane started (moto's reset)."""
        self.stop_monitor()
        for t in list(self.threads):
            t.join(timeout=60)
        for g in list(self.groups.values()):
            self.close_endpoints(g)
        for cc in list(self.clusters.values()):
            if cc.discovery is not None:
                cc.discovery.close()
        for sc in list(self.serverless.values()):
            self.stop_serverless_service(sc)
        stop_aws_services(keep=set())
        shutil.rmtree(state.home() / "aws-snapshots", ignore_errors=True)
        self.__init__()

    def apply_pending(self) -> dict[str, list[str]]:
        """Apply every PendingModifiedValues now, standing in for the maintenance window.

        Returns resource id -> the fields applied. Reached by `python -m helpers aws apply-pending`
        (the local-only action ApplyPendingModifications of the endpoint).
        """
        done: dict[str, list[str]] = {}
        for cc in list(self.clusters.values()):
            applied = self.apply_pending_cluster(cc)
            if applied:
                done[cc.cluster_id] = applied
        for g in list(self.groups.values()):
            applied = self.apply_pending_group(g)
            if applied:
                done[g.group_id] = applied
        for ident, fields in done.items():
            self.event(ident, "replication-group" if ident in self.groups else "cache-cluster",
                       f"Pending modifications applied (maintenance window): {', '.join(fields)}")
        return done

    def known_services(self) -> set[str]:
        with self.lock:
            names = {cc.service_name(n["id"]) for cc in self.clusters.values() for n in cc.nodes}
            names |= {g.service_name for g in self.groups.values()}
            names |= {sc.service_name for sc in self.serverless.values()}
        return names


def stop_aws_services(keep: set[str]) -> list[str]:
    """Stop recorded services named aws-... (engines of the API) except those in `keep`."""
    stopped = []
    for svc in services.status():
        if svc.name.startswith(ops.PREFIX) and svc.name not in keep and not any(
                svc.name.startswith(k + "-") for k in keep):
            services.stop(svc.name)
            stopped.append(svc.name)
    return stopped


PLANE = ControlPlane()
