"""Cache clusters: one Redis node, or 1-40 Memcached nodes behind an Auto Discovery endpoint."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from moto.core.exceptions import ServiceException

from helpers.aws import catalogue
from helpers.aws.controlplane import atrest
from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.discovery import ConfigEndpoint
from helpers.aws.controlplane.errors import (
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
    node_quota,
)
from helpers.aws.controlplane.models.base import (
    ACCOUNT,
    DEFAULT_MAINTENANCE_WINDOW,
    Backend,
    check_id,
    now,
    placement_zones,
    request_region,
)
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.lifecycle import check_maintenance_window
from helpers.aws.controlplane.models.logdelivery import parse_requests as parse_log_requests
from helpers.aws.controlplane.models.replication_record import Member, ReplicationGroup
from helpers.runtime import ports, services, state
from helpers.runtime.engines import Node

log = logging.getLogger(__name__)

DEFAULT_SUBNET_GROUP = "default"  # every AWS account has one: the default VPC's default subnets
MEMCACHED_MEMORY_CAP_MB = 1024  # a local memcached never takes more than this, whatever the node type


def _network_backends() -> tuple[Any, Any]:
    """The local EC2 and ElastiCache (subnet groups) models of moto for the request's region, same process."""
    from moto.ec2.models import ec2_backends
    from moto.elasticache.models import elasticache_backends

    region = request_region()
    return ec2_backends[ACCOUNT][region], elasticache_backends[ACCOUNT][region]


def ensure_default_subnet_group() -> None:
    """Create the `default` cache subnet group (the default VPC's subnets) if it is not there yet, as in
    every AWS account (create-snapshot.rst and copy-snapshot.rst show "CacheSubnetGroupName": "default")."""
    try:
        ec2, ec = _network_backends()
        if DEFAULT_SUBNET_GROUP in ec.cache_subnet_groups:
            return
        vpc = ec2.get_default_vpc()
        if vpc is None:
            return
        subnets = [s.id for s in ec2.describe_subnets(filters={"vpc-id": [vpc.id]})]
        ec.create_cache_subnet_group(DEFAULT_SUBNET_GROUP, "Default CacheSubnetGroup", subnets, None)  # its AWS description
    except (KeyError, ServiceException):  # no EC2 model: resources are then placed in no subnet group
        log.exception("could not create the default cache subnet group")


def subnet_group_vpc(name: str | None) -> str | None:
    """The VPC of a cache subnet group (None when unknown)."""
    try:
        _, ec = _network_backends()
        group = ec.cache_subnet_groups.get(name or "")
        return getattr(group, "vpc_id", None)
    except KeyError:  # no EC2 model
        log.exception("could not read the VPC of cache subnet group %s", name)
        return None


def network_defaults(subnet_group: str | None, security_group_ids: list[str]) -> tuple[str | None, list[str]]:
    """The subnet group and security groups of a new cluster: `default` when none is named, and the
    default security group of the subnet group's VPC when none is given (as AWS places it)."""
    if not subnet_group:
        ensure_default_subnet_group()
        _, ec = _network_backends()
        subnet_group = DEFAULT_SUBNET_GROUP if DEFAULT_SUBNET_GROUP in ec.cache_subnet_groups else None
    if security_group_ids:
        return subnet_group, list(security_group_ids)
    try:
        ec2, _ = _network_backends()
        vpc = subnet_group_vpc(subnet_group) or getattr(ec2.get_default_vpc(), "id", None)
        sg = ec2.get_default_security_group(vpc) if vpc else None
    except (KeyError, ServiceException):  # no EC2 model: no security group to show
        log.exception("could not find the default security group")
        sg = None
    return subnet_group, [sg.id] if sg is not None else []


PORTS = (1024, 65535)  # a local engine cannot listen below 1024 without root


def check_port(port: Any, nodes: int) -> None:
    """CreateCacheCluster's Port: an unprivileged port that no process on this machine listens on."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise invalid_value(f"Invalid value for Port: {port}.") from None
    if not PORTS[0] <= value <= PORTS[1]:
        raise invalid_value(f"Invalid value for Port: {port}. The local endpoint takes ports {PORTS[0]} to "
                            f"{PORTS[1]} (lower ones need root).")
    if nodes > 1:
        raise invalid_combination("Port with more than one node is not available on the local endpoint: its nodes "
                                  "share one host (127.0.0.1), so each needs its own port; leave Port out.")
    if not ports.port_is_free(value):
        raise invalid_value(f"Port {value} is in use on this machine (127.0.0.1); choose another or leave Port out.")


class CacheClusters(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.clusters: dict[str, CacheCluster] = {}

    def create_cache_cluster(
            self, cluster_id: str | None, node_type: str | None, engine: str | None = None,
            engine_version: str | None = None, num_nodes: int | None = None, replication_group_id: str | None = None,
            auth_token: str | None = None, tls: bool = False, snapshot_name: str | None = None,
            snapshot_arns: list[str] | None = None, param_group: str | None = None, subnet_group: str | None = None,
            az: str | None = None, security_group_ids: list[str] | None = None, snapshot_retention: int = 0,
            snapshot_window: str | None = None, maintenance_window: str | None = None,
            tags: dict[str, str] | None = None, port: int | None = None,
            log_delivery: list[Any] | None = None) -> CacheCluster:
        cid = check_id(cluster_id, "CacheClusterId", 50)
        if replication_group_id:
            raise invalid_value("Adding a cache cluster to a replication group is done with "
                                "increase-replica-count on the local endpoint.")
        node_type = self.check_node_type(node_type)
        engine, version = self.check_engine(engine, engine_version)
        logs = parse_log_requests(log_delivery, engine, version)
        az = self.check_az(az)
        security_group_ids = self.check_security_groups(security_group_ids)
        if snapshot_retention and engine == "memcached":
            raise invalid_combination("SnapshotRetentionLimit is not supported for memcached clusters.")
        if not 0 <= int(snapshot_retention or 0) <= 35:
            raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        if snapshot_arns and engine != "memcached":
            raise invalid_value("SnapshotArns (seeding a cluster from an RDB file in Amazon S3) is not available on "
                                "the local endpoint: restore from a snapshot with --snapshot-name instead "
                                "(see docs/local-vs-aws.md).")
        n = 1 if num_nodes is None else int(num_nodes)
        if engine != "memcached" and n != 1:
            raise invalid_value(f"Cannot create a {engine} cluster with a NumCacheNodes parameter greater than 1; "
                                "use a replication group for replicas.")
        if engine == "memcached" and not 1 <= n <= 40:
            raise node_quota(n)
        token = auth_token
        if token is not None:
            self.check_token(token, engine, tls)
        if port is not None:
            check_port(port, n)
        if engine == "memcached" and (snapshot_name or snapshot_arns):
            raise invalid_combination("Snapshots are not supported for memcached clusters.")
        if tls and engine == "memcached":
            raise invalid_combination("Transit encryption for memcached is not available on the local endpoint.")
        pg = self.param_group_for(param_group, engine, version=version)
        subnet, security_group_ids = network_defaults(self.check_subnet_group(subnet_group), security_group_ids)
        snap = self.snapshot_to_restore(snapshot_name)
        with self.lock:
            if cid in self.clusters or any(cid in g.member_ids.values() for g in self.groups.values()):
                raise already_exists("CacheCluster", cid)
            cc = CacheCluster(
                cluster_id=cid, engine=engine, engine_version=version, node_type=node_type, num_nodes=n,
                az=az or placement_zones(request_region())[0], param_group=pg.name, subnet_group=subnet,
                security_group_ids=list(security_group_ids or []), auth_token=token, tls=tls,
                snapshot_name=snap.name if snap else None, snapshot_retention=snapshot_retention,
                snapshot_window=snapshot_window or "05:00-06:00",
                maintenance_window=check_maintenance_window(maintenance_window) or DEFAULT_MAINTENANCE_WINDOW,
                region=request_region(), port=port)
            for _ in range(n):
                cc.nodes.append({"id": f"{cc.next_node:04d}", "created": now(), "status": "creating"})
                cc.next_node += 1
            self.clusters[cid] = cc
        self.request_log_delivery(cc, [r for r in logs if r["Enabled"]])  # type: ignore[attr-defined]
        self.add_tags(cc.arn, tags)
        snap_files = [Path(f) for f in snap.files] if snap else []
        self.background(f"create-{cid}", lambda: self._provision_from(cc, snap_files),
                        lambda msg: self._failed_cluster(cc, msg))
        return cc

    def _provision_from(self, cc: CacheCluster, snap_files: list[Path]) -> None:
        with atrest.plain_files(snap_files) as plain:  # a snapshot of an encrypted group is decrypted first
            self._provision_cluster(cc, plain)

    def _failed_cluster(self, cc: CacheCluster, msg: str) -> None:
        cc.status = "incompatible-parameters"
        self.event(cc.cluster_id, "cache-cluster", f"Failed to create cache cluster: {msg}")

    def _provision_cluster(self, cc: CacheCluster, snap_files: list[Path]) -> None:
        if cc.engine == "memcached":
            self._provision_cluster_engines(cc, snap_files)
            return
        from helpers.runtime import engines

        with engines.pinned(self.engine_binary(cc.engine, cc.engine_version)):  # the engine the request named
            self._provision_cluster_engines(cc, snap_files)

    def _provision_cluster_engines(self, cc: CacheCluster, snap_files: list[Path]) -> None:
        pg = self.param_groups.get(cc.param_group)
        if cc.engine == "memcached":
            for node in list(cc.nodes):
                self._start_memcached_node(cc, node)
            cc.discovery = ConfigEndpoint(lambda: self._memcached_endpoints(cc))
        else:
            name = cc.service_name()
            ops.fresh_dir(name)
            workdir = state.service_dir(name)
            config = pg.startup_config() if pg else {}
            if pg:
                config["maxmemory"] = str(pg.maxmemory(cc.node_type, cc.engine))
            opts: dict[str, Any] = {"config": config, "tls": cc.tls, "port": cc.port}
            if cc.auth_token:
                token_file = workdir / "auth-token"
                state.write_secret(token_file, cc.auth_token)
                opts["password_file"] = str(token_file)
            if len(snap_files) == 1:
                opts["restore_rdb"] = str(snap_files[0])
            svc = services.start("aws-redis", name=name, **opts)
            if len(snap_files) > 1:
                ops.restore_keys(snap_files, self._cluster_conn(cc, svc.nodes[0]), name)
            cc.nodes[0]["status"] = "available"
            if pg is not None and pg.values:
                self.apply_parameters(pg, [n for n in pg.values if catalogue.change_type(pg.family, n) == "immediate"])
            self.event(cc.cluster_id, "cache-cluster",
                       f"Added cache node {cc.nodes[0]['id']} in availability zone {cc.az}")
            if cc.snapshot_name:
                self.event(cc.cluster_id, "cache-cluster", f"Restored cache cluster from snapshot {cc.snapshot_name}")
        if cc.status == "creating":
            self.apply_log_delivery(cc)  # type: ignore[attr-defined]
            cc.status = "available"
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster created")

    def _start_memcached_node(self, cc: CacheCluster, node: dict[str, Any]) -> None:
        pg = self.param_groups.get(cc.param_group)
        args = pg.memcached_args() if pg else []
        overhead = int(pg.value("memcached_connections_overhead")) if pg else 100
        name = cc.service_name(node["id"])
        ops.fresh_dir(name)
        mem = catalogue.memcached_item_memory_mb(cc.node_type, overhead)
        with ports.preferred_ports([cc.port] if cc.port and node["id"] == "0001" else []):
            services.start("memcached", name=name, memory_mb=max(min(mem, MEMCACHED_MEMORY_CAP_MB), 16), args=args)
        node["status"] = "available"
        self.event(cc.cluster_id, "cache-cluster", f"Added cache node {node['id']} in availability zone {cc.az}")

    def _memcached_endpoints(self, cc: CacheCluster) -> list[tuple[str, int]]:
        """The nodes Auto Discovery lists: every node that is up, in node-id order."""
        return [ep for ep in (self.node_endpoint(cc, n) for n in list(cc.nodes)) if ep]

    def _cluster_conn(self, cc: CacheCluster, node: Node) -> Any:
        return ops.redis_conn(node.host, node.port, password=cc.auth_token, tls=cc.tls)



    def get_cluster(self, cid: Any) -> CacheCluster:
        return self._lookup(self.clusters, cid, "CacheCluster", lower=True)

    def node_endpoint(self, cc: CacheCluster, node: dict[str, Any]) -> tuple[str, int] | None:
        if node["status"] == "creating":
            return None
        svc = services.get(cc.service_name(node["id"]))
        return (svc.host, svc.port) if svc else None

    def describe_cache_clusters(self, cluster_id: str | None = None,
                                only_not_in_groups: bool = False) -> list[CacheCluster | Member]:
        """Standalone clusters and (unless `only_not_in_groups`) the member clusters of replication groups."""
        if cluster_id:
            cid = str(cluster_id).lower()
            for g in list(self.groups.values()):
                for m in self.group_members(g):
                    if m.cluster_id == cid:
                        return [m]
            return [self.get_cluster(cid)]
        with self.lock:
            items: list[CacheCluster | Member] = list(self.clusters.values())
            groups = list(self.groups.values())
        if only_not_in_groups:
            return items
        for g in groups:
            items += self.group_members(g)
        return items

    def modify_cache_cluster(
            self, cluster_id: str | None, num_nodes: int | None = None, node_ids_to_remove: list[str] | None = None,
            param_group: str | None = None, auth_token: str | None = None, auth_token_strategy: str | None = None,
            snapshot_retention: int | None = None, snapshot_window: str | None = None,
            maintenance_window: str | None = None, security_group_ids: list[str] | None = None,
            node_type: str | None = None, engine_version: str | None = None,
            apply_immediately: bool = False, az_mode: str | None = None,
            new_azs: list[str] | None = None, engine: str | None = None,
            log_delivery: list[Any] | None = None) -> CacheCluster:
        """Memcached scales out and in (naming the nodes to remove); Redis scales its node type up or down
        and changes engine version; the rest is settings and AUTH. Without `apply_immediately`, node
        type and engine version changes wait in PendingModifiedValues (the maintenance window;
        `python -m helpers aws apply-pending` stands in for it)."""
        cc = self.get_cluster(cluster_id)
        if cc.status != "available":
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        new_n = num_nodes
        remove = list(node_ids_to_remove or [])
        if new_n is not None and cc.engine != "memcached" and int(new_n) != 1:
            raise invalid_value("A Redis cache cluster has exactly one node; use a replication group to add "
                                "replicas.")
        for az in new_azs or []:
            self.check_az(az)
        if az_mode and az_mode not in ("single-az", "cross-az"):
            raise invalid_value(f"Invalid value for AZMode: {az_mode}. Valid values: single-az, cross-az.")
        add_nodes: list[dict[str, Any]] = []
        drop_nodes: list[dict[str, Any]] = []
        if new_n is not None and cc.engine == "memcached":
            new_n = int(new_n)
            if not 1 <= new_n <= 40:
                raise node_quota(new_n)
            current = len(cc.nodes)
            if new_n < current:
                if len(remove) != current - new_n:
                    raise invalid_value(f"To go from {current} to {new_n} nodes, name exactly {current - new_n} "
                                        "node(s) in CacheNodeIdsToRemove.")
                known = {n["id"] for n in cc.nodes}
                unknown = [r for r in remove if r not in known]
                if unknown:
                    raise invalid_value(f"Cache node(s) {', '.join(unknown)} are not in {cc.cluster_id}.")
                drop_nodes = [n for n in cc.nodes if n["id"] in remove]
            elif new_n > current:
                if remove:
                    raise invalid_combination("CacheNodeIdsToRemove is only for decreasing the number of nodes.")
                for _ in range(new_n - current):
                    add_nodes.append({"id": f"{cc.next_node:04d}", "created": now(), "status": "creating"})
                    cc.next_node += 1
        elif remove:
            raise invalid_combination("CacheNodeIdsToRemove needs NumCacheNodes (fewer than the current count).")
        pg = self.param_group_for(param_group, cc.engine, version=cc.engine_version) if param_group else None
        if snapshot_retention is not None:
            if cc.engine == "memcached":
                raise invalid_combination("SnapshotRetentionLimit is not supported for memcached clusters.")
            if not 0 <= int(snapshot_retention) <= 35:
                raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        sgs = self.check_security_groups(security_group_ids) if security_group_ids is not None else None
        changes: dict[str, Any] = {}
        if node_type and node_type != cc.node_type:
            self.check_node_type(node_type)
            if cc.engine == "memcached":
                raise invalid_combination("Changing the node type of a Memcached cluster is not available on the "
                                          "local endpoint: create a new cluster of the new type (see "
                                          "docs/local-vs-aws.md).")
            changes["CacheNodeType"] = node_type
        if engine and str(engine).lower() != cc.engine:
            raise invalid_combination(f"Cannot change the engine of cache cluster {cc.cluster_id} from {cc.engine} to "
                                      f"{engine}: to move a single-node Redis OSS cluster to Valkey, first create a "
                                      "replication group with it as primary, then upgrade the replication group.")
        if engine_version:
            if cc.engine == "memcached":
                raise invalid_combination("Memcached engine upgrades are not available on the local endpoint (one "
                                          "memcached binary is installed).")
            target = self.check_engine_upgrade(cc.engine, cc.engine_version, engine_version)
            if target != cc.engine_version:
                changes["EngineVersion"] = target
        strategy = self.check_auth_change(cc.engine, cc.tls, cc.auth_token, auth_token, auth_token_strategy,
                                          rbac=False, rotating=cc.previous_token is not None)
        logs = parse_log_requests(log_delivery, cc.engine, cc.engine_version)
        if logs and not apply_immediately:
            raise invalid_combination("Log delivery changes must be applied immediately: give ApplyImmediately.")
        if snapshot_retention is not None:
            cc.snapshot_retention = snapshot_retention
        if snapshot_window:
            cc.snapshot_window = snapshot_window
        if maintenance_window:
            cc.maintenance_window = check_maintenance_window(maintenance_window) or cc.maintenance_window
        if sgs is not None:
            cc.security_group_ids = sgs
        if changes and not apply_immediately:
            cc.pending.update(changes)
            changes = {}
        if not (add_nodes or drop_nodes or pg or strategy or changes or logs):
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster modified")
            return cc
        self.request_log_delivery(cc, logs)  # type: ignore[attr-defined]
        cc.status = "modifying"
        cc.nodes += add_nodes

        def work() -> None:
            if logs:
                self.apply_log_delivery(cc)  # type: ignore[attr-defined]
            for node in add_nodes:
                self._start_memcached_node(cc, node)
            for node in drop_nodes:
                services.stop(cc.service_name(node["id"]))
                cc.nodes.remove(node)
                self.event(cc.cluster_id, "cache-cluster", f"Removed cache node {node['id']}")
            if (add_nodes or drop_nodes) and cc.discovery is not None:
                cc.discovery.bump()  # Auto Discovery clients see the new node list
            if pg is not None:
                cc.param_group = pg.name
                self.apply_parameters(pg)
            if strategy:
                svc = services.get(cc.service_name())
                conn = self._cluster_conn(cc, svc.nodes[0])
                self.apply_auth_change(cc, [conn], auth_token, strategy)
                if cc.auth_token:  # a restarted node reads its token from this file
                    state.write_secret(state.service_dir(cc.service_name()) / "auth-token", cc.auth_token)
            if changes:
                self._apply_cluster_changes(cc, changes)
            cc.status = "available"
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster modified")

        self.background(f"modify-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return cc

    def _apply_cluster_changes(self, cc: CacheCluster, changes: dict[str, Any]) -> None:
        """Node type (maxmemory follows, data stays) and engine version (restart onto it, data kept)."""
        for key in changes:
            cc.pending.pop(key, None)
        svc = services.get(cc.service_name())
        if "CacheNodeType" in changes:
            pg = self.param_groups.get(cc.param_group)
            cc.node_type = changes["CacheNodeType"]
            if svc and pg:
                conn = self._cluster_conn(cc, svc.nodes[0])
                conn.config_set("maxmemory", str(pg.maxmemory(cc.node_type, cc.engine)))
            self.event(cc.cluster_id, "cache-cluster", f"Cache node type changed to {cc.node_type}")
        if "EngineVersion" in changes:
            old = cc.engine_version
            if changes["EngineVersion"] != old:  # restart onto the other binary; the node reloads its data
                self.roll_cluster(cc, self.engine_binary(cc.engine, changes["EngineVersion"]))
            cc.engine_version = changes["EngineVersion"]
            self.event(cc.cluster_id, "cache-cluster", f"Engine upgraded from {old} to {cc.engine_version}")

    def apply_pending_cluster(self, cc: CacheCluster) -> list[str]:
        """Apply PendingModifiedValues now (what the maintenance window would do)."""
        changes = dict(cc.pending)
        if not changes or cc.status != "available":
            return []
        cc.status = "modifying"
        try:
            self._apply_cluster_changes(cc, changes)
        finally:
            cc.status = "available"
        return sorted(changes)

    def _modify_failed(self, cc: CacheCluster, msg: str) -> None:
        cc.status = "available"
        self.event(cc.cluster_id, "cache-cluster", f"Modification failed: {msg}")

    def reboot_cache_cluster(self, cluster_id: str | None, node_ids: list[str] | None = None) -> CacheCluster | Member:
        cid = str(cluster_id or "").lower()
        ids = list(node_ids or [])
        group = next((g for g in self.groups.values() if cid in g.member_ids.values()), None)
        if group is not None:
            return self._reboot_member(group, cid, ids)
        cc = self.get_cluster(cluster_id)
        if cc.status != "available":
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        nodes = [n for n in cc.nodes if n["id"] in ids]
        if not ids or len(nodes) != len(ids):
            raise invalid_value("CacheNodeIdsToReboot must name nodes of the cluster.")
        cc.status = "rebooting cache cluster nodes"

        def work() -> None:
            from helpers.runtime import engines, topologies

            for n in nodes:
                svc = services.get(cc.service_name(n["id"]))
                if svc:
                    node = svc.nodes[0]
                    node.stop()
                    if node.kind == "redis":
                        _drop_cache_files(node)  # "The reboot causes the contents of the cache ... to be lost."
                    probe = engines.probe_memcached if node.kind == "memcached" else (
                        ops._tls().probe_redis_tls if cc.tls else engines.probe_redis)
                    engines.restart_node(node, probe)
                    topologies.record(svc)
                self.event(cc.cluster_id, "cache-cluster", f"Cache node {n['id']} restarted")
            cc.status = "available"
            self.reboot_applied(cc)  # values changed after creation are set again; pending-reboot ends

        self.background(f"reboot-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return cc

    def _reboot_member(self, g: ReplicationGroup, member_id: str, node_ids: list[str]) -> Member:
        """Restart one node of a replication group, as the Rebooting page says: the node flushes its data
        and restarts its engine (a node without persistence comes back empty), in its role; the
        replicas of a rebooted primary resync from it. With automatic failover on, Sentinel promotes a
        replica while the primary is down and the rebooted node returns as a replica."""
        self._require_available(g)
        if node_ids != ["0001"]:
            raise invalid_value("A member cache cluster of a replication group has one node: CacheNodeIdsToReboot "
                                "must be ['0001'].")
        name = next(n for n, m in g.member_ids.items() if m == member_id)
        m = next(x for x in self.group_members(g) if x.cluster_id == member_id)
        g.status = "modifying"
        g.busy = True  # the recovery monitor must not take the stopped node for a failure
        g.rebooting.add(name)
        failover = g.topology == "replicated" and g.automatic_failover and g.global_role != "secondary"

        def work() -> None:
            from helpers.runtime import engines, topologies

            svc = self.group_service(g)
            node = next(n for n in svc.nodes if n.name == name)
            node.stop()
            if g.effective_durability == "disabled":  # no persistence: the node's data is lost
                _drop_cache_files(node)
            topo = services.TOPOLOGIES[svc.topology]
            if failover and topo.heal is not None:
                svc = topo.heal(svc)
            else:  # in place, in its role: no Sentinel promotes a replica
                probe = ops._tls().probe_redis_tls if g.tls else engines.probe_redis
                engines.restart_node(node, probe)
            topologies.record(svc)
            if g.auth_token or g.user_group_ids:
                self._secure_new_nodes(g)
            gds = self.global_groups.get(g.global_id or "")  # type: ignore[attr-defined]
            if g.global_role == "secondary" and gds is not None and name == self._primary_node(g).name:
                self._follow(g, self.get_group(gds.primary_id), node=node)  # type: ignore[attr-defined]
            pg = self.param_groups.get(g.param_group)
            if pg is not None:  # values changed after creation were CONFIG SET: the new process needs them
                self.apply_parameters(pg)
            self.sync_endpoints(g)
            g.rebooting.discard(name)
            g.busy = False
            g.status = "available"
            self.reboot_applied(g)
            self.event(member_id, "cache-cluster", "Cache node 0001 restarted")

        def failed(msg: str) -> None:
            g.rebooting.discard(name)
            g.busy = False
            self._group_op_failed(g, msg)

        self.background(f"reboot-{member_id}", work, failed)
        return m

    def delete_member_replica(self, cluster_id: str | None) -> Member | None:
        """DeleteCacheCluster of a read replica's cluster in a replication group (delete-cache-cluster.rst): AWS
        removes that replica, answering it `deleting`; not the primary, and not the last replica of a group
        with automatic failover. None when `cluster_id` is no replica of a group."""
        cid = str(cluster_id or "").lower()
        for g in list(self.groups.values()):
            member = next((m for m in self.group_members(g) if m.cluster_id == cid), None)
            if member is None or member.role != "replica":
                continue
            if g.cluster_mode:
                raise invalid_value(f"Cache cluster {cid} is in a cluster-mode-enabled group: remove replicas with "
                                    "decrease-replica-count --replica-configuration.")
            if g.automatic_failover and g.replicas <= 1:
                raise invalid_value(f"Cache cluster {cid} is the last replica of {g.group_id}, which has automatic "
                                    "failover enabled: it needs a replica.")
            self.change_replica_count(g.group_id, False, None, apply_immediately=True, replicas_to_remove=[cid])
            return member
        return None

    def delete_cache_cluster(self, cluster_id: str | None, final_snapshot: str | None = None) -> CacheCluster:
        cid = str(cluster_id or "").lower()
        for g in self.groups.values():
            if cid in g.member_ids.values():
                raise invalid_value(f"Cache cluster {cid} is the primary of replication group {g.group_id}; "
                                    "fail over first, or delete the replication group.")
        cc = self.get_cluster(cid)
        if cc.status not in ("available", "incompatible-parameters", "incompatible-network"):
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        final = final_snapshot
        if final:
            self._check_new_snapshot(final, cc.engine)
        cc.status = "deleting"

        def work() -> None:
            if final:
                self._snapshot_cluster(cc, final)
            if cc.discovery is not None:
                cc.discovery.close()
            for n in cc.nodes:
                services.stop(cc.service_name(n["id"]))
                shutil.rmtree(state.home() / "services" / cc.service_name(n["id"]), ignore_errors=True)
            with self.lock:
                self.clusters.pop(cc.cluster_id, None)
                self.tags.pop(cc.arn, None)
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster deleted")

        self.background(f"delete-{cid}", work, lambda msg: self.event(cid, "cache-cluster", f"Delete failed: {msg}"))
        return cc


def _drop_cache_files(node: Node) -> None:
    """Remove what a stopped Redis node would load at start (its RDB and AOF files): a rebooted
    node of a cache cluster starts empty, as the RebootCacheCluster reference says."""
    conf = Path(node.argv[1]) if len(node.argv) > 1 else None
    settings: dict[str, str] = {}
    if conf is not None and conf.exists():
        for line in conf.read_text().splitlines():
            key, _, value = line.partition(" ")
            settings[key] = value.strip().strip('"')
    workdir = Path(settings.get("dir") or node.workdir)
    (workdir / (settings.get("dbfilename") or "dump.rdb")).unlink(missing_ok=True)
    shutil.rmtree(workdir / (settings.get("appenddirname") or "appendonlydir"), ignore_errors=True)
