"""The local ElastiCache control plane: API resources backed by real engines.

Resources (cache clusters, replication groups, users, user groups, parameter groups, snapshots,
events, tags) live in memory like moto's, but every create/modify/delete also acts on real
redis-server and memcached processes, started as services named `aws-...` in the learner's state
directory. Slow work runs in a background thread, so statuses move creating -> available as on AWS.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import time
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.discovery import ConfigEndpoint
from helpers.aws.controlplane.errors import (
    ApiError,
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
    node_quota,
    not_found,
)
from helpers.aws.controlplane.models.base import (
    ADMIN_USER,
    AZS,
    Backend,
    CacheCluster,
    ReplicationGroup,
    arn,
    check_id,
    maxmemory_for,
    now,
)
from helpers.aws.controlplane.models.events import EventsAndTags
from helpers.aws.controlplane.models.parameters import ParameterGroups
from helpers.aws.controlplane.models.snapshots import Snapshots
from helpers.aws.controlplane.models.users import Users
from helpers.runtime import services, state
from helpers.runtime.engines import Node

__all__ = ["PLANE", "ControlPlane", "stop_aws_services"]


class ControlPlane(Snapshots, Users, ParameterGroups, EventsAndTags, Backend):
    """All ElastiCache resources of the local endpoint, and the engines behind them."""

    # ==========================================================================================
    # cache clusters
    # ==========================================================================================
    def create_cache_cluster(self, p: dict[str, Any]) -> dict[str, Any]:
        cid = check_id(p.get("CacheClusterId"), "CacheClusterId", 50)
        if p.get("ReplicationGroupId"):
            raise invalid_value("Adding a cache cluster to a replication group is done with "
                                "increase-replica-count on the local endpoint.")
        node_type = p.get("CacheNodeType")
        if not node_type:
            raise invalid_value("The parameter CacheNodeType must be provided and must not be null.")
        engine, version = self.check_engine(p.get("Engine"), p.get("EngineVersion"))
        n = p.get("NumCacheNodes")
        n = 1 if n is None else int(n)
        if engine != "memcached" and n != 1:
            raise invalid_value(f"Cannot create a {engine} cluster with a NumCacheNodes parameter greater than 1; "
                                "use a replication group for replicas.")
        if engine == "memcached" and not 1 <= n <= 40:
            raise node_quota(n)
        token = p.get("AuthToken")
        tls = bool(p.get("TransitEncryptionEnabled"))
        if token is not None:
            self.check_token(token, engine, tls)
        if engine == "memcached" and (p.get("SnapshotName") or p.get("SnapshotArns")):
            raise invalid_combination("Snapshots are not supported for memcached clusters.")
        if tls and engine == "memcached":
            raise invalid_combination("Transit encryption for memcached is not available on the local endpoint.")
        pg = self.param_group_for(p.get("CacheParameterGroupName"), engine)
        subnet = self.check_subnet_group(p.get("CacheSubnetGroupName"))
        snap = None
        if p.get("SnapshotName"):
            snap = self.get_snapshot(p["SnapshotName"])
            if snap.status != "available":
                raise invalid_state("Snapshot", snap.name, snap.status)
        with self.lock:
            if cid in self.clusters or any(cid in g.member_ids.values() for g in self.groups.values()):
                raise already_exists("CacheCluster", cid)
            cc = CacheCluster(
                cluster_id=cid, engine=engine, engine_version=version, node_type=node_type, num_nodes=n,
                az=p.get("PreferredAvailabilityZone") or AZS[0], param_group=pg.name, subnet_group=subnet,
                security_group_ids=list(p.get("SecurityGroupIds") or []), auth_token=token, tls=tls,
                snapshot_name=snap.name if snap else None,
                snapshot_retention=int(p.get("SnapshotRetentionLimit") or 0),
                snapshot_window=p.get("SnapshotWindow") or "05:00-06:00",
                maintenance_window=p.get("PreferredMaintenanceWindow") or "sun:23:00-mon:01:30")
            for _ in range(n):
                cc.nodes.append({"id": f"{cc.next_node:04d}", "created": now(), "status": "creating"})
                cc.next_node += 1
            self.clusters[cid] = cc
        self.add_tags(arn("cluster", cid), _tag_dict(p.get("Tags")))
        snap_files = [Path(f) for f in snap.files] if snap else []
        self.background(f"create-{cid}", lambda: self._provision_cluster(cc, snap_files),
                        lambda msg: self._failed_cluster(cc, msg))
        return self.cluster_api(cc, show_nodes=False)

    def _failed_cluster(self, cc: CacheCluster, msg: str) -> None:
        cc.status = "incompatible-parameters"
        self.event(cc.cluster_id, "cache-cluster", f"Failed to create cache cluster: {msg}")

    def _provision_cluster(self, cc: CacheCluster, snap_files: list[Path]) -> None:
        pg = self.param_groups.get(cc.param_group)
        if cc.engine == "memcached":
            for node in list(cc.nodes):
                self._start_memcached_node(cc, node)
            cc.discovery = ConfigEndpoint(lambda: self._memcached_endpoints(cc))
        else:
            name = cc.service_name()
            ops.fresh_dir(name)
            workdir = state.service_dir(name)
            opts: dict[str, Any] = {"config": {**(pg.effective() if pg else {}),
                                               "maxmemory": maxmemory_for(cc.node_type)}, "tls": cc.tls}
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
            self.event(cc.cluster_id, "cache-cluster",
                       f"Added cache node {cc.nodes[0]['id']} in availability zone {cc.az}")
            if cc.snapshot_name:
                self.event(cc.cluster_id, "cache-cluster", f"Restored cache cluster from snapshot {cc.snapshot_name}")
        if cc.status == "creating":
            cc.status = "available"
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster created")

    def _start_memcached_node(self, cc: CacheCluster, node: dict[str, Any]) -> None:
        pg = self.param_groups.get(cc.param_group)
        values = pg.effective() if pg else {}
        args = ["-I", values.get("max_item_size", "1048576"), "-f", values.get("chunk_size_growth_factor", "1.25")]
        name = cc.service_name(node["id"])
        ops.fresh_dir(name)
        mem = int(maxmemory_for(cc.node_type)[:-2])
        services.start("memcached", name=name, memory_mb=min(mem, 1024), args=args)
        node["status"] = "available"
        self.event(cc.cluster_id, "cache-cluster", f"Added cache node {node['id']} in availability zone {cc.az}")

    def _memcached_endpoints(self, cc: CacheCluster) -> list[tuple[str, int]]:
        """The nodes Auto Discovery lists: every node that is up, in node-id order."""
        return [ep for ep in (self._node_endpoint(cc, n) for n in list(cc.nodes)) if ep]

    def _cluster_conn(self, cc: CacheCluster, node: Node) -> Any:
        return ops.redis_conn(node.host, node.port, password=cc.auth_token, tls=cc.tls)



    def get_cluster(self, cid: Any) -> CacheCluster:
        return self._lookup(self.clusters, cid, "CacheCluster", lower=True)

    def cluster_api(self, cc: CacheCluster, show_nodes: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CacheClusterId": cc.cluster_id, "CacheNodeType": cc.node_type, "Engine": cc.engine,
            "EngineVersion": cc.engine_version, "CacheClusterStatus": cc.status, "NumCacheNodes": len(cc.nodes),
            "PreferredAvailabilityZone": cc.az, "CacheClusterCreateTime": cc.created,
            "PreferredMaintenanceWindow": cc.maintenance_window, "PendingModifiedValues": {},
            "CacheSecurityGroups": [],
            "CacheParameterGroup": {"CacheParameterGroupName": cc.param_group, "ParameterApplyStatus": "in-sync",
                                    "CacheNodeIdsToReboot": []},
            "SecurityGroups": [{"SecurityGroupId": s, "Status": "active"} for s in cc.security_group_ids],
            "AutoMinorVersionUpgrade": True, "AuthTokenEnabled": bool(cc.auth_token),
            "TransitEncryptionEnabled": cc.tls, "AtRestEncryptionEnabled": False, "ARN": arn("cluster", cc.cluster_id),
            "ReplicationGroupLogDeliveryEnabled": False, "LogDeliveryConfigurations": [], "NetworkType": "ipv4",
            "IpDiscovery": "ipv4",
        }
        if cc.subnet_group:
            out["CacheSubnetGroupName"] = cc.subnet_group
        if cc.engine != "memcached":
            out["SnapshotRetentionLimit"] = cc.snapshot_retention
            out["SnapshotWindow"] = cc.snapshot_window
        if cc.tls:
            out["TransitEncryptionMode"] = "required"
        endpoints = [(n, self._node_endpoint(cc, n)) for n in cc.nodes]
        if cc.engine == "memcached":
            if cc.discovery is not None:  # answers `config get cluster`; other commands reach node 0001
                out["ConfigurationEndpoint"] = {"Address": cc.discovery.host, "Port": cc.discovery.port}
            out["ClientDownloadLandingPage"] = "https://console.aws.amazon.com/elasticache/home#client-download:"
        if show_nodes:
            out["CacheNodes"] = []
            for n, ep in endpoints:
                item: dict[str, Any] = {"CacheNodeId": n["id"], "CacheNodeStatus": n["status"],
                                        "CacheNodeCreateTime": n["created"], "ParameterGroupStatus": "in-sync",
                                        "CustomerAvailabilityZone": cc.az}
                if ep:
                    item["Endpoint"] = {"Address": ep[0], "Port": ep[1]}
                out["CacheNodes"].append(item)
        return out

    def _node_endpoint(self, cc: CacheCluster, node: dict[str, Any]) -> tuple[str, int] | None:
        if node["status"] == "creating":
            return None
        svc = services.get(cc.service_name(node["id"]))
        return (svc.host, svc.port) if svc else None

    def describe_cache_clusters(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        show = bool(p.get("ShowCacheNodeInfo"))
        if p.get("CacheClusterId"):
            cid = str(p["CacheClusterId"]).lower()
            for g in list(self.groups.values()):
                for m in self.group_members(g):
                    if m["CacheClusterId"] == cid:
                        return [self._member_api(g, m, show)]
            return [self.cluster_api(self.get_cluster(cid), show)]
        with self.lock:
            items = [self.cluster_api(c, show) for c in self.clusters.values()]
            groups = list(self.groups.values())
        if p.get("ShowCacheClustersNotInReplicationGroups"):
            return items
        for g in groups:
            items += [self._member_api(g, m, show) for m in self.group_members(g)]
        return items

    def modify_cache_cluster(self, p: dict[str, Any]) -> dict[str, Any]:
        cc = self.get_cluster(p.get("CacheClusterId"))
        if cc.status != "available":
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        new_n = p.get("NumCacheNodes")
        remove = list(p.get("CacheNodeIdsToRemove") or [])
        if new_n is not None and cc.engine != "memcached" and int(new_n) != 1:
            raise invalid_value("A Redis cache cluster has exactly one node; use a replication group to add "
                                "replicas.")
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
        pg_name = p.get("CacheParameterGroupName")
        pg = self.param_group_for(pg_name, cc.engine) if pg_name else None
        if p.get("AuthToken") is not None:
            if cc.engine == "memcached" or not cc.tls:
                raise invalid_combination("An AUTH token can only be set on a Redis cluster with transit encryption.")
            self.check_token(p["AuthToken"], cc.engine, True)
        if p.get("SnapshotRetentionLimit") is not None:
            cc.snapshot_retention = int(p["SnapshotRetentionLimit"])
        if p.get("SnapshotWindow"):
            cc.snapshot_window = p["SnapshotWindow"]
        if p.get("PreferredMaintenanceWindow"):
            cc.maintenance_window = p["PreferredMaintenanceWindow"]
        if p.get("SecurityGroupIds") is not None:
            cc.security_group_ids = list(p["SecurityGroupIds"])
        if p.get("CacheNodeType"):
            cc.node_type = p["CacheNodeType"]
        cc.status = "modifying"
        cc.nodes += add_nodes

        def work() -> None:
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
            if p.get("AuthToken") is not None:
                strategy = (p.get("AuthTokenUpdateStrategy") or "ROTATE").upper()
                svc = services.get(cc.service_name())
                conn = self._cluster_conn(cc, svc.nodes[0])
                rules = ["resetpass", f">{p['AuthToken']}"] if strategy == "SET" else [f">{p['AuthToken']}"]
                ops.acl_setuser(conn, "default", rules)
                if strategy == "SET":
                    cc.auth_token = p["AuthToken"]
                else:
                    cc.auth_token = p["AuthToken"]
                self.event(cc.cluster_id, "cache-cluster", f"AUTH token updated ({strategy})")
            cc.status = "available"
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster modified")

        self.background(f"modify-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return self.cluster_api(cc, show_nodes=False)

    def _modify_failed(self, cc: CacheCluster, msg: str) -> None:
        cc.status = "available"
        self.event(cc.cluster_id, "cache-cluster", f"Modification failed: {msg}")

    def reboot_cache_cluster(self, p: dict[str, Any]) -> dict[str, Any]:
        cid = str(p.get("CacheClusterId") or "").lower()
        group = next((g for g in self.groups.values() if cid in g.member_ids.values()), None)
        if group is not None:
            return self._reboot_member(group, cid, list(p.get("CacheNodeIdsToReboot") or []))
        cc = self.get_cluster(p.get("CacheClusterId"))
        if cc.status != "available":
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        ids = list(p.get("CacheNodeIdsToReboot") or [])
        nodes = [n for n in cc.nodes if n["id"] in ids]
        if not ids or len(nodes) != len(ids):
            raise invalid_value("CacheNodeIdsToReboot must name nodes of the cluster.")
        cc.status = "rebooting cache cluster nodes"

        def work() -> None:
            from helpers.runtime import engines

            for n in nodes:
                svc = services.get(cc.service_name(n["id"]))
                if svc:
                    node = svc.nodes[0]
                    node.stop()
                    probe = engines.probe_memcached if node.kind == "memcached" else (
                        ops._tls().probe_redis_tls if cc.tls else engines.probe_redis)
                    engines.restart_node(node, probe)
                    with state.locked():
                        reg = state.load_registry()
                        if svc.name in reg:
                            reg[svc.name] = svc.to_dict()
                            state.save_registry(reg)
                self.event(cc.cluster_id, "cache-cluster", f"Cache node {n['id']} restarted")
            pg = self.param_groups.get(cc.param_group)
            cc.status = "available"
            if pg is not None:  # values changed after creation were CONFIG SET: set them again
                self.apply_parameters(pg)

        self.background(f"reboot-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return self.cluster_api(cc, show_nodes=False)

    def _reboot_member(self, g: ReplicationGroup, member_id: str, node_ids: list[str]) -> dict[str, Any]:
        """Restart one node of a replication group (a primary's restart makes Sentinel fail over)."""
        self._require_available(g)
        if node_ids != ["0001"]:
            raise invalid_value("A member cache cluster of a replication group has one node: CacheNodeIdsToReboot "
                                "must be ['0001'].")
        name = next(n for n, m in g.member_ids.items() if m == member_id)
        m = next(x for x in self.group_members(g) if x["CacheClusterId"] == member_id)
        g.status = "modifying"

        def work() -> None:
            from helpers.runtime import engines

            svc = self.group_service(g)
            node = next(n for n in svc.nodes if n.name == name)
            node.stop()
            topo = services.TOPOLOGIES[svc.topology]
            if topo.heal is not None:
                svc = topo.heal(svc)
            else:
                probe = ops._tls().probe_redis_tls if g.tls else engines.probe_redis
                engines.restart_node(node, probe)
            with state.locked():
                reg = state.load_registry()
                if svc.name in reg:
                    reg[svc.name] = svc.to_dict()
                    state.save_registry(reg)
            if g.auth_token or g.user_group_ids:
                self._secure_new_nodes(g)
            pg = self.param_groups.get(g.param_group)
            g.status = "available"
            if pg is not None:
                self.apply_parameters(pg)
            self.event(member_id, "cache-cluster", "Cache node 0001 restarted")

        self.background(f"reboot-{member_id}", work, lambda msg: self._group_op_failed(g, msg))
        return self._member_api(g, m, False)

    def delete_cache_cluster(self, p: dict[str, Any]) -> dict[str, Any]:
        cid = str(p.get("CacheClusterId") or "").lower()
        for g in self.groups.values():
            if cid in g.member_ids.values():
                raise invalid_value(f"Cache cluster {cid} is a member of replication group {g.group_id}; use "
                                    "decrease-replica-count or delete-replication-group.")
        cc = self.get_cluster(cid)
        if cc.status not in ("available", "incompatible-parameters", "incompatible-network"):
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        final = p.get("FinalSnapshotIdentifier")
        if final:
            self._check_new_snapshot(final, cc.engine)
        cc.status = "deleting"
        answer = self.cluster_api(cc, show_nodes=False)

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
                self.tags.pop(arn("cluster", cc.cluster_id), None)
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster deleted")

        self.background(f"delete-{cid}", work, lambda msg: self.event(cid, "cache-cluster", f"Delete failed: {msg}"))
        return answer

    # ==========================================================================================
    # replication groups
    # ==========================================================================================
    def create_replication_group(self, p: dict[str, Any]) -> dict[str, Any]:
        gid = check_id(p.get("ReplicationGroupId"), "ReplicationGroupId", 40)
        if not p.get("ReplicationGroupDescription"):
            raise invalid_value("The parameter ReplicationGroupDescription must be provided and must not be blank.")
        engine, version = self.check_engine(p.get("Engine"), p.get("EngineVersion"))
        if engine == "memcached":
            raise invalid_value("Replication groups are for Redis/Valkey; Memcached has no replication.")
        node_type = p.get("CacheNodeType") or "cache.t4g.micro"
        mode = (p.get("ClusterMode") or "").lower()
        pg_name = p.get("CacheParameterGroupName") or ""
        cluster_mode = bool(p.get("NumNodeGroups") or p.get("NodeGroupConfiguration")) or mode == "enabled" \
            or pg_name.endswith(".cluster.on")
        if p.get("NumCacheClusters") and cluster_mode and int(p.get("NumNodeGroups") or 1) > 1:
            raise invalid_combination("NumCacheClusters is for cluster mode disabled; with NumNodeGroups use "
                                      "ReplicasPerNodeGroup.")
        if cluster_mode:
            shards = int(p.get("NumNodeGroups") or len(p.get("NodeGroupConfiguration") or []) or 1)
            replicas = int(p.get("ReplicasPerNodeGroup") or 0)
            if not 1 <= shards <= 10:
                raise invalid_value("NumNodeGroups must be between 1 and 10 on the local endpoint "
                                    "(AWS allows up to 500).")
        else:
            shards = 1
            total = p.get("NumCacheClusters")
            if total is None and p.get("ReplicasPerNodeGroup") is not None:
                total = int(p["ReplicasPerNodeGroup"]) + 1
            total = int(total or 1)
            if not 1 <= total <= 6:
                raise invalid_value("NumCacheClusters must be between 1 and 6 (one primary and up to 5 replicas).")
            replicas = total - 1
        if not 0 <= replicas <= 5:
            raise invalid_value("ReplicasPerNodeGroup must be between 0 and 5.")
        failover = p.get("AutomaticFailoverEnabled")
        failover = bool(failover) if failover is not None else cluster_mode
        if failover and not cluster_mode and replicas == 0:
            raise invalid_combination("Automatic failover needs at least one replica: use NumCacheClusters >= 2.")
        if cluster_mode and p.get("AutomaticFailoverEnabled") is False:
            raise invalid_combination("Automatic failover cannot be disabled with cluster mode enabled.")
        if p.get("MultiAZEnabled") and not failover:
            raise invalid_combination("Multi-AZ needs automatic failover to be enabled.")
        tls = bool(p.get("TransitEncryptionEnabled"))
        token = p.get("AuthToken")
        ugs = list(p.get("UserGroupIds") or [])
        if token is not None:
            self.check_token(token, engine, tls)
        if ugs:
            if token is not None:
                raise invalid_combination("Use either an AUTH token or user groups (RBAC), not both.")
            if not tls:
                raise invalid_combination("User groups (RBAC) need TransitEncryptionEnabled: encryption in transit "
                                          "must be enabled.")
            for ug in ugs:
                self.get_user_group(ug)
        pg = self.param_group_for(pg_name or None, engine, cluster_mode)
        subnet = self.check_subnet_group(p.get("CacheSubnetGroupName"))
        snap = None
        if p.get("SnapshotName"):
            snap = self.get_snapshot(p["SnapshotName"])
            if snap.status != "available":
                raise invalid_state("Snapshot", snap.name, snap.status)
        with self.lock:
            if gid in self.groups:
                raise already_exists("ReplicationGroup", gid)
            g = ReplicationGroup(
                group_id=gid, description=p["ReplicationGroupDescription"], engine=engine, engine_version=version,
                node_type=node_type, cluster_mode=cluster_mode, shards=shards, replicas=replicas,
                automatic_failover=failover, multi_az=bool(p.get("MultiAZEnabled")), param_group=pg.name,
                subnet_group=subnet, security_group_ids=list(p.get("SecurityGroupIds") or []), auth_token=token,
                tls=tls, user_group_ids=ugs, snapshot_name=snap.name if snap else None,
                snapshot_retention=int(p.get("SnapshotRetentionLimit") or 0),
                snapshot_window=p.get("SnapshotWindow") or "05:00-06:00")
            self.groups[gid] = g
        self.add_tags(arn("replicationgroup", gid), _tag_dict(p.get("Tags")))
        files = [Path(f) for f in snap.files] if snap else []
        self.background(f"create-rg-{gid}", lambda: self._provision_group(g, files),
                        lambda msg: self._failed_group(g, msg))
        return self.group_api(g)

    def _failed_group(self, g: ReplicationGroup, msg: str) -> None:
        g.status = "create-failed"
        self.event(g.group_id, "replication-group", f"Failed to create replication group: {msg}")

    def _provision_group(self, g: ReplicationGroup, snap_files: list[Path]) -> None:
        pg = self.param_groups.get(g.param_group)
        config = {**(pg.effective() if pg else {}), "maxmemory": maxmemory_for(g.node_type)}
        name = g.service_name
        ops.fresh_dir(name)
        internal = bool(g.auth_token or g.user_group_ids)
        if g.topology == "aws-redis":
            svc = services.start("aws-redis", name=name, config=config, tls=g.tls)
        elif g.topology == "replicated":
            svc = services.start("replicated", name=name, replicas=g.replicas, password=internal, tls=g.tls,
                                 config=config)
            if not g.automatic_failover:
                self._sentinels_monitor(g, False)
        else:
            svc = services.start("cluster", name=name, shards=g.shards, replicas=g.replicas, password=internal,
                                 tls=g.tls, config=config)
        self._assign_members(g, svc)
        if g.auth_token:  # the learner's token becomes a password of the default user on every node
            for node in ops.data_nodes(svc):
                ops.acl_setuser(self._admin(g, svc, node), "default", [f">{g.auth_token}"])
        if g.user_group_ids:
            self._apply_user_groups(g)
        if snap_files:
            moved = ops.restore_keys(snap_files, self.group_client(g), name)
            self.event(g.group_id, "replication-group",
                       f"Restored {moved} keys from snapshot {g.snapshot_name}")
        for node in ops.data_nodes(svc):
            self.event(g.member_ids[node.name], "cache-cluster", "Cache cluster created")
        g.status = "available"
        self.event(g.group_id, "replication-group", "Replication group created")

    # --- the engines of a group ---------------------------------------------------------------
    def group_service(self, g: ReplicationGroup) -> services.Service:
        svc = services.get(g.service_name)
        if svc is None:
            raise invalid_state("ReplicationGroup", g.group_id, "without running engines", "provisioned")
        return svc

    def _admin(self, g: ReplicationGroup, svc: services.Service, node: Node) -> Any:
        """A privileged connection to one node (the control plane's own user once RBAC is on)."""
        if g.admin_password:
            return ops.redis_conn(node.host, node.port, username=ADMIN_USER, password=g.admin_password, tls=g.tls)
        return ops.redis_conn(node.host, node.port, password=svc.password() or g.auth_token, tls=g.tls)

    def _assign_members(self, g: ReplicationGroup, svc: services.Service) -> None:
        """Give each data node a member cluster id (<group>-001, or <group>-0001-001 in cluster mode)."""
        nodes = ops.data_nodes(svc)
        if g.cluster_mode:
            view = self._cluster_view(g, svc)
            by_port = {v["port"]: v for v in view}
            by_id = {v["id"]: n for n in nodes for v in [by_port.get(n.port, {})] if v}
            # A node group is a primary that serves slots, with the replicas that follow it; a node
            # that just joined (no slots, no master yet) waits for the next describe.
            primaries = [n for n in nodes if "master" in by_port.get(n.port, {}).get("flags", "")
                         and by_port[n.port].get("slots")]
            for prim in primaries:
                if prim.name not in g.node_group_of:
                    used = set(g.node_group_of.values())
                    g.node_group_of[prim.name] = next(f"{i:04d}" for i in itertools.count(1)
                                                      if f"{i:04d}" not in used)
            for n in nodes:
                master = by_id.get(by_port.get(n.port, {}).get("master", "-"))
                if master is not None and master.name in g.node_group_of:
                    g.node_group_of[n.name] = g.node_group_of[master.name]  # follows failovers too
            for n in nodes:
                ng = g.node_group_of.get(n.name)
                if ng and n.name not in g.member_ids:
                    used = set(g.member_ids.values())
                    g.member_ids[n.name] = next(f"{g.group_id}-{ng}-{i:03d}" for i in itertools.count(1)
                                                if f"{g.group_id}-{ng}-{i:03d}" not in used)
        else:
            for n in nodes:
                g.node_group_of.setdefault(n.name, "0001")
                if n.name not in g.member_ids:
                    used = set(g.member_ids.values())
                    g.member_ids[n.name] = next(f"{g.group_id}-{i:03d}" for i in itertools.count(1)
                                                if f"{g.group_id}-{i:03d}" not in used)

    def _cluster_view(self, g: ReplicationGroup, svc: services.Service) -> list[dict[str, Any]]:
        from helpers.runtime import topologies

        for n in ops.data_nodes(svc):
            if n.alive() and not n.paused():
                with contextlib.suppress(Exception):
                    text = self._admin(g, svc, n).execute_command("CLUSTER", "NODES")
                    return topologies.parse_cluster_nodes(text)
        return []

    def _roles(self, g: ReplicationGroup, svc: services.Service) -> dict[str, str]:
        """node name -> 'primary' | 'replica', as the engines say right now."""
        roles: dict[str, str] = {}
        for n in ops.data_nodes(svc):
            role = "replica"
            if n.alive() and not n.paused():
                with contextlib.suppress(Exception):
                    r = self._admin(g, svc, n).execute_command("ROLE")[0]
                    role = "primary" if r == "master" else "replica"
            roles[n.name] = role
        return roles

    def group_members(self, g: ReplicationGroup) -> list[dict[str, Any]]:
        """Member cache clusters with their live endpoint, role and node group."""
        if g.status in ("creating", "create-failed"):
            return []
        svc = services.get(g.service_name)
        if svc is None:
            return []
        if any(n.name not in g.member_ids for n in ops.data_nodes(svc)):
            with contextlib.suppress(Exception):
                self._assign_members(g, svc)  # nodes added by scaling (or left by a failed resharding)
        roles = self._roles(g, svc)
        out = []
        for n in ops.data_nodes(svc):
            if n.name not in g.member_ids:
                continue
            mid = g.member_ids[n.name]
            idx = int(mid.rsplit("-", 1)[-1])
            out.append({"CacheClusterId": mid, "node": n, "role": roles.get(n.name, "replica"),
                        "ng": g.node_group_of.get(n.name, "0001"), "az": AZS[(idx - 1) % len(AZS)]})
        out.sort(key=lambda m: m["CacheClusterId"])
        return out

    def _member_api(self, g: ReplicationGroup, m: dict[str, Any], show: bool) -> dict[str, Any]:
        n: Node = m["node"]
        out: dict[str, Any] = {
            "CacheClusterId": m["CacheClusterId"], "CacheNodeType": g.node_type, "Engine": g.engine,
            "EngineVersion": g.engine_version, "CacheClusterStatus": "available" if n.alive() else "failed",
            "NumCacheNodes": 1, "PreferredAvailabilityZone": m["az"], "CacheClusterCreateTime": g.created,
            "PendingModifiedValues": {}, "CacheSecurityGroups": [],
            "CacheParameterGroup": {"CacheParameterGroupName": g.param_group, "ParameterApplyStatus": "in-sync",
                                    "CacheNodeIdsToReboot": []},
            "ReplicationGroupId": g.group_id, "SnapshotRetentionLimit": g.snapshot_retention,
            "AuthTokenEnabled": bool(g.auth_token), "TransitEncryptionEnabled": g.tls,
            "AtRestEncryptionEnabled": False, "ARN": arn("cluster", m["CacheClusterId"]),
            "ReplicationGroupLogDeliveryEnabled": False, "NetworkType": "ipv4", "IpDiscovery": "ipv4"}
        if show:
            out["CacheNodes"] = [{"CacheNodeId": "0001", "CacheNodeStatus": "available" if n.alive() else "failed",
                                  "CacheNodeCreateTime": g.created, "Endpoint": {"Address": n.host, "Port": n.port},
                                  "ParameterGroupStatus": "in-sync", "CustomerAvailabilityZone": m["az"]}]
        return out

    def group_api(self, g: ReplicationGroup) -> dict[str, Any]:
        members = self.group_members(g)
        node_groups: list[dict[str, Any]] = []
        for ng in sorted({m["ng"] for m in members}) or (["0001"] if not g.cluster_mode else []):
            mine = [m for m in members if m["ng"] == ng]
            item: dict[str, Any] = {"NodeGroupId": ng, "Status": g.status if g.status != "creating" else "creating",
                                    "NodeGroupMembers": []}
            for m in mine:
                member: dict[str, Any] = {"CacheClusterId": m["CacheClusterId"], "CacheNodeId": "0001",
                                          "PreferredAvailabilityZone": m["az"]}
                if not g.cluster_mode:
                    member["ReadEndpoint"] = {"Address": m["node"].host, "Port": m["node"].port}
                    member["CurrentRole"] = m["role"]
                item["NodeGroupMembers"].append(member)
            primary = next((m for m in mine if m["role"] == "primary"), None)
            replicas = [m for m in mine if m["role"] == "replica"]
            if not g.cluster_mode and primary:
                item["PrimaryEndpoint"] = {"Address": primary["node"].host, "Port": primary["node"].port}
                reader = (replicas or [primary])[0]  # AWS: one DNS name over the replicas; locally the first
                item["ReaderEndpoint"] = {"Address": reader["node"].host, "Port": reader["node"].port}
            if g.cluster_mode and primary:
                item["Slots"] = self._slots_of(g, primary["node"])
            node_groups.append(item)
        out: dict[str, Any] = {
            "ReplicationGroupId": g.group_id, "Description": g.description, "Status": g.status,
            "PendingModifiedValues": g.pending, "MemberClusters": [m["CacheClusterId"] for m in members],
            "NodeGroups": node_groups, "AutomaticFailover": "enabled" if g.automatic_failover else "disabled",
            "MultiAZ": "enabled" if g.multi_az else "disabled", "SnapshotRetentionLimit": g.snapshot_retention,
            "SnapshotWindow": g.snapshot_window, "ClusterEnabled": g.cluster_mode, "CacheNodeType": g.node_type,
            "AuthTokenEnabled": bool(g.auth_token), "TransitEncryptionEnabled": g.tls,
            "AtRestEncryptionEnabled": False, "ARN": arn("replicationgroup", g.group_id),
            "UserGroupIds": list(g.user_group_ids), "LogDeliveryConfigurations": [],
            "ReplicationGroupCreateTime": g.created, "DataTiering": "disabled", "NetworkType": "ipv4",
            "IpDiscovery": "ipv4", "ClusterMode": "enabled" if g.cluster_mode else "disabled", "Engine": g.engine}
        if g.tls:
            out["TransitEncryptionMode"] = "required"
        if g.snapshot_retention and members:
            out["SnapshottingClusterId"] = members[-1]["CacheClusterId"]
        if g.cluster_mode and members:
            # AWS: a DNS name over all nodes; any node of a Redis Cluster serves as entry point.
            first = members[0]["node"]
            out["ConfigurationEndpoint"] = {"Address": first.host, "Port": first.port}
        return out

    def _slots_of(self, g: ReplicationGroup, node: Node) -> str:
        svc = services.get(g.service_name)
        if svc is None:
            return ""
        for v in self._cluster_view(g, svc):
            if v["port"] == node.port:
                slots = sorted(v["slots"])
                ranges, start = [], None
                for i, s in enumerate(slots):
                    if start is None:
                        start = s
                    if i + 1 == len(slots) or slots[i + 1] != s + 1:
                        ranges.append(f"{start}-{s}" if s != start else str(s))
                        start = None
                return ",".join(ranges)
        return ""

    def group_client(self, g: ReplicationGroup) -> Any:
        """A privileged client for the whole group: RedisCluster in cluster mode, else the primary."""
        svc = self.group_service(g)
        if g.cluster_mode:
            from redis.cluster import ClusterNode, RedisCluster

            kwargs: dict[str, Any] = {"decode_responses": False}
            if g.admin_password:
                kwargs.update(username=ADMIN_USER, password=g.admin_password)
            elif svc.password() or g.auth_token:
                kwargs["password"] = svc.password() or g.auth_token
            if g.tls:
                kwargs.update(ops._tls().redis_tls_client_kwargs(client_cert=False))
            nodes = [ClusterNode(n.host, n.port) for n in ops.data_nodes(svc)]
            return RedisCluster(startup_nodes=nodes, **kwargs)
        roles = self._roles(g, svc)
        primary = next(n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary")
        conn = self._admin(g, svc, primary)
        conn.connection_pool.connection_kwargs["decode_responses"] = False
        conn.connection_pool.reset()
        return conn

    def get_group(self, gid: Any) -> ReplicationGroup:
        return self._lookup(self.groups, gid, "ReplicationGroup", lower=True)

    def _require_available(self, g: ReplicationGroup) -> None:
        if g.status != "available":
            raise invalid_state("ReplicationGroup", g.group_id, g.status)

    def describe_replication_groups(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.group_api(g) for g in self._describe(p.get("ReplicationGroupId"), self.get_group, self.groups)]

    def delete_replication_group(self, p: dict[str, Any]) -> dict[str, Any]:
        g = self.get_group(p.get("ReplicationGroupId"))
        if g.status not in ("available", "create-failed"):
            raise invalid_state("ReplicationGroup", g.group_id, g.status)
        if p.get("RetainPrimaryCluster"):
            raise invalid_value("RetainPrimaryCluster is not supported on the local endpoint; delete the whole group.")
        final = p.get("FinalSnapshotIdentifier")
        if final:
            self._check_new_snapshot(final, g.engine)
        answer = self.group_api(g)
        g.status = "deleting"
        answer["Status"] = "deleting"

        def work() -> None:
            if final:
                self._snapshot_group(g, final)
            services.stop(g.service_name)
            for extra in [s.name for s in services.status() if s.name.startswith(g.service_name + "-")]:
                services.stop(extra)
            shutil.rmtree(state.home() / "services" / g.service_name, ignore_errors=True)
            with self.lock:
                self.groups.pop(g.group_id, None)
                self.tags.pop(arn("replicationgroup", g.group_id), None)
            self.event(g.group_id, "replication-group", "Replication group deleted")

        self.background(f"delete-rg-{g.group_id}", work,
                        lambda msg: self.event(g.group_id, "replication-group", f"Delete failed: {msg}"))
        return answer

    def modify_replication_group(self, p: dict[str, Any]) -> dict[str, Any]:
        g = self.get_group(p.get("ReplicationGroupId"))
        self._require_available(g)
        if p.get("ReplicationGroupDescription"):
            g.description = p["ReplicationGroupDescription"]
        if p.get("SnapshotRetentionLimit") is not None:
            g.snapshot_retention = int(p["SnapshotRetentionLimit"])
        if p.get("SnapshotWindow"):
            g.snapshot_window = p["SnapshotWindow"]
        if p.get("CacheNodeType"):
            g.node_type = p["CacheNodeType"]
        failover = p.get("AutomaticFailoverEnabled")
        if failover is not None:
            if g.cluster_mode and not failover:
                raise invalid_combination("Automatic failover cannot be disabled with cluster mode enabled.")
            if failover and not g.cluster_mode and g.replicas == 0:
                raise invalid_combination("Automatic failover needs at least one replica.")
        if p.get("MultiAZEnabled") and not (failover if failover is not None else g.automatic_failover):
            raise invalid_combination("Multi-AZ needs automatic failover to be enabled.")
        pg = self.param_group_for(p["CacheParameterGroupName"], g.engine, g.cluster_mode) \
            if p.get("CacheParameterGroupName") else None
        add_ugs = list(p.get("UserGroupIdsToAdd") or [])
        remove_ugs = list(p.get("UserGroupIdsToRemove") or [])
        for ug in add_ugs + remove_ugs:
            self.get_user_group(ug)
        if add_ugs and not g.tls:
            raise invalid_combination("User groups (RBAC) need encryption in transit on the replication group.")
        if add_ugs and g.auth_token:
            raise invalid_combination("This group uses an AUTH token; user groups and AUTH tokens exclude each other.")
        token = p.get("AuthToken")
        if token is not None:
            if not g.tls:
                raise invalid_combination("An AUTH token needs encryption in transit on the replication group.")
            self.check_token(token, g.engine, True)
        g.status = "modifying"

        def work() -> None:
            if failover is not None and bool(failover) != g.automatic_failover:
                g.automatic_failover = bool(failover)
                if g.topology == "replicated":
                    self._sentinels_monitor(g, g.automatic_failover)
                self.event(g.group_id, "replication-group",
                           f"Automatic failover {'enabled' if g.automatic_failover else 'disabled'}")
            if p.get("MultiAZEnabled") is not None:
                g.multi_az = bool(p["MultiAZEnabled"])
            if pg is not None:
                g.param_group = pg.name
                self.apply_parameters(pg)
            if add_ugs or remove_ugs:
                g.user_group_ids = [u for u in g.user_group_ids if u not in remove_ugs] + \
                    [u for u in add_ugs if u not in g.user_group_ids]
                self._apply_user_groups(g)
            if token is not None:
                strategy = (p.get("AuthTokenUpdateStrategy") or "ROTATE").upper()
                svc = self.group_service(g)
                for node in ops.data_nodes(svc):
                    conn = self._admin(g, svc, node)
                    if strategy == "SET" and g.auth_token:
                        ops.acl_setuser(conn, "default", [f"<{g.auth_token}", f">{token}"])
                    else:
                        ops.acl_setuser(conn, "default", [f">{token}"])
                g.auth_token = token
                self.event(g.group_id, "replication-group", f"AUTH token updated ({strategy})")
            g.status = "available"
            self.event(g.group_id, "replication-group", "Replication group modified")

        self.background(f"modify-rg-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        return self.group_api(g)

    def _group_op_failed(self, g: ReplicationGroup, msg: str) -> None:
        g.status = "available"
        self.event(g.group_id, "replication-group", f"Operation failed: {msg}")

    def _sentinels_monitor(self, g: ReplicationGroup, on: bool) -> None:
        """Automatic failover off = the Sentinels stop watching the primary (and on = watch again)."""
        from helpers.runtime import topologies

        svc = self.group_service(g)
        master = svc.meta["master_name"]
        host, port = (topologies.current_primary(svc) if on is False else self._primary_addr(g, svc))
        for s in svc.nodes_by(role="sentinel"):
            c = topologies.sentinel_node_client(svc, s)
            if on:
                with contextlib.suppress(Exception):
                    c.execute_command("SENTINEL", "MONITOR", master, host, port, 2)
                secret = svc.password()
                if secret:
                    c.execute_command("SENTINEL", "SET", master, "auth-pass", secret)
                c.execute_command("SENTINEL", "SET", master, "down-after-milliseconds", 1500)
                c.execute_command("SENTINEL", "SET", master, "failover-timeout", 6000)
            else:
                with contextlib.suppress(Exception):
                    c.execute_command("SENTINEL", "REMOVE", master)

    def _primary_addr(self, g: ReplicationGroup, svc: services.Service) -> tuple[str, int]:
        roles = self._roles(g, svc)
        n = next(n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary")
        return n.host, n.port

    # --- failover and scaling ------------------------------------------------------------------
    def test_failover(self, p: dict[str, Any]) -> dict[str, Any]:
        g = self.get_group(p.get("ReplicationGroupId"))
        ng = p.get("NodeGroupId") or ""
        self._require_available(g)
        members = self.group_members(g)
        if ng not in {m["ng"] for m in members}:
            raise not_found("NodeGroup", ng)
        if not g.automatic_failover or not any(m["ng"] == ng and m["role"] == "replica" for m in members):
            raise ApiError("Test failover needs automatic failover enabled and at least one replica in the node group.", "TestFailoverNotAvailableFault")
        old = next(m for m in members if m["ng"] == ng and m["role"] == "primary")
        g.status = "modifying"
        self.event(g.group_id, "replication-group", f"Test Failover API called for node group {ng}")

        def work() -> None:
            svc = self.group_service(g)
            old_node: Node = old["node"]
            if g.cluster_mode:
                replica = next(m["node"] for m in members if m["ng"] == ng and m["role"] == "replica")
                self._admin(g, svc, replica).execute_command("CLUSTER", "FAILOVER")
            else:
                from helpers.runtime import topologies

                s = svc.nodes_by(role="sentinel")[0]
                topologies.sentinel_node_client(svc, s).execute_command("SENTINEL", "FAILOVER", svc.meta["master_name"])
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                if not g.cluster_mode:
                    self._demote_old_primary(g, svc, old_node)
                roles = self._roles(g, svc)
                new = [n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary"
                       and g.node_group_of.get(n.name) == ng and n.name != old_node.name]
                if new and roles.get(old_node.name) == "replica":
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the failover did not complete within 45 s")
            with contextlib.suppress(Exception):
                from helpers.runtime import topologies

                topologies.refresh_roles(services.get(g.service_name))
            self.event(g.member_ids[new[0].name], "cache-cluster",
                       f"Failover from primary node {old['CacheClusterId']} to replica node "
                       f"{g.member_ids[new[0].name]} completed")
            self.event(g.group_id, "replication-group", f"Failover to replica node {g.member_ids[new[0].name]} "
                       "completed")
            g.status = "available"

        self.background(f"failover-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        return self.group_api(g)

    def _demote_old_primary(self, g: ReplicationGroup, svc: services.Service, old: Node) -> None:
        """Once Sentinel has promoted a replica, point the old primary at it right away.

        Sentinel would do the same, but only at its next INFO round (up to 10 s later).
        """
        from helpers.runtime import topologies

        with contextlib.suppress(Exception):
            host, port = topologies.current_primary(svc)
            if port == old.port:
                return
            conn = self._admin(g, svc, old)
            if conn.execute_command("ROLE")[0] == "master":
                conn.execute_command("REPLICAOF", host, port)

    def change_replica_count(self, p: dict[str, Any], increase: bool) -> dict[str, Any]:
        g = self.get_group(p.get("ReplicationGroupId"))
        self._require_available(g)
        if not p.get("ApplyImmediately"):
            raise invalid_value("ApplyImmediately must be true (the local endpoint has no maintenance window).")
        target = p.get("NewReplicaCount")
        if target is None:
            raise invalid_value("NewReplicaCount is required on the local endpoint.")
        target = int(target)
        if increase and target <= g.replicas:
            raise invalid_value(f"NewReplicaCount ({target}) must be greater than the current {g.replicas}.")
        if not increase and target >= g.replicas:
            raise invalid_value(f"NewReplicaCount ({target}) must be less than the current {g.replicas}.")
        if not 0 <= target <= 5:
            raise invalid_value("NewReplicaCount must be between 0 and 5.")
        if not increase and g.automatic_failover and target < 1:
            raise invalid_combination("A group with automatic failover needs at least one replica per node group.")
        if g.topology == "aws-redis" or g.cluster_mode:
            raise invalid_value("On the local endpoint, replica counts change for cluster-mode-disabled groups "
                                "created with at least one replica.")
        g.status = "modifying"
        remove_ids = list(p.get("ReplicasToRemove") or [])

        def work() -> None:
            svc = self.group_service(g)
            if increase:
                self._add_replicas(g, svc, target - g.replicas)
            else:
                self._remove_replicas(g, svc, g.replicas - target, remove_ids)
            g.replicas = target
            self._assign_members(g, self.group_service(g))
            if g.user_group_ids or g.auth_token:
                self._secure_new_nodes(g)
            g.status = "available"
            self.event(g.group_id, "replication-group",
                       f"{'Increased' if increase else 'Decreased'} replica count to {target}")

        self.background(f"replicas-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        return self.group_api(g)

    def _add_replicas(self, g: ReplicationGroup, svc: services.Service, count: int) -> None:
        from helpers.runtime import topologies

        host, port = self._primary_addr(g, svc)
        workdir = state.service_dir(svc.name)
        existing = {n.name for n in svc.nodes}
        for _ in range(count):
            k = next(i for i in itertools.count(1) if f"{svc.name}-{i}" not in existing)
            node = topologies.start_data_node(f"{svc.name}-{k}", "replica", workdir, svc.meta["binary"],
                                               svc.options.get("config"), svc.password(), g.tls,
                                               {"replicaof": f"{host} {port}"})
            existing.add(node.name)
            svc.nodes.append(node)
            topologies.record(svc)
            conn = self._admin(g, svc, node)
            deadline = time.monotonic() + 30
            while conn.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica {node.name} did not sync with the primary")
                time.sleep(0.1)

    def _remove_replicas(self, g: ReplicationGroup, svc: services.Service, count: int, ids: list[str]) -> None:
        roles = self._roles(g, svc)
        by_member = {mid: name for name, mid in g.member_ids.items()}
        if ids:
            names = [by_member[i] for i in ids if i in by_member and roles.get(by_member[i]) == "replica"]
        else:
            names = [n.name for n in reversed(ops.data_nodes(svc)) if roles.get(n.name) == "replica"]
        names = names[:count]
        for n in [n for n in svc.nodes if n.name in names]:
            n.stop()
            svc.nodes.remove(n)
            g.member_ids.pop(n.name, None)
        from helpers.runtime import topologies

        topologies.record(svc)
        for s in svc.nodes_by(role="sentinel"):
            with contextlib.suppress(Exception):
                topologies.sentinel_node_client(svc, s).execute_command("SENTINEL", "RESET", svc.meta["master_name"])

    def modify_shards(self, p: dict[str, Any]) -> dict[str, Any]:
        g = self.get_group(p.get("ReplicationGroupId"))
        self._require_available(g)
        if not g.cluster_mode:
            raise invalid_value("Shard configuration changes need a replication group with cluster mode enabled.")
        if not p.get("ApplyImmediately"):
            raise invalid_value("ApplyImmediately must be true.")
        count = p.get("NodeGroupCount")
        if count is None:
            raise invalid_value("NodeGroupCount is required.")
        count = int(count)
        members = self.group_members(g)
        current = sorted({m["ng"] for m in members})
        if not 1 <= count <= 10:
            raise invalid_value("NodeGroupCount must be between 1 and 10 on the local endpoint.")
        to_remove = list(p.get("NodeGroupsToRemove") or [])
        to_retain = list(p.get("NodeGroupsToRetain") or [])
        if count < len(current):
            if to_retain and not to_remove:
                to_remove = [ng for ng in current if ng not in to_retain]
            if len(to_remove) != len(current) - count:
                raise invalid_value(f"To go from {len(current)} to {count} node groups, name "
                                    f"{len(current) - count} in NodeGroupsToRemove (or the ones to keep in "
                                    "NodeGroupsToRetain).")
            for ng in to_remove:
                if ng not in current:
                    raise not_found("NodeGroup", ng)
        elif count == len(current):
            raise invalid_value(f"The group already has {count} node groups.")
        g.status = "modifying"
        g.pending = {"Resharding": {"SlotMigration": {"ProgressPercentage": 0.0}}}

        def work() -> None:
            from helpers.runtime import topologies

            svc = self.group_service(g)
            if count > len(current):
                for _ in range(count - len(current)):
                    svc = topologies.add_shard(svc, replicas=g.replicas)
                    self._assign_members(g, svc)
            else:
                for ng in to_remove:
                    fresh = self.group_members(g)
                    prim = next(m["node"] for m in fresh if m["ng"] == ng and m["role"] == "primary")
                    svc = topologies.remove_shard(self.group_service(g), prim.port)
                    for name in [n for n, x in g.node_group_of.items() if x == ng]:
                        g.node_group_of.pop(name, None)
                        g.member_ids.pop(name, None)
            g.shards = count
            if g.user_group_ids or g.auth_token:
                self._secure_new_nodes(g)
            g.pending = {}
            g.status = "available"
            self.event(g.group_id, "replication-group", f"Resharding complete: {count} node groups")

        def failed(msg: str) -> None:
            g.pending = {}
            self._group_op_failed(g, msg)

        self.background(f"reshard-{g.group_id}", work, failed)
        return self.group_api(g)

    # ==========================================================================================
    # events, tags, subnet groups, reset
    # ==========================================================================================
    def reset(self) -> None:
        """Forget everything and stop every engine this control plane started (moto's reset)."""
        for t in list(self.threads):
            t.join(timeout=60)
        for cc in list(self.clusters.values()):
            if cc.discovery is not None:
                cc.discovery.close()
        stop_aws_services(keep=set())
        shutil.rmtree(state.home() / "aws-snapshots", ignore_errors=True)
        self.__init__()

    def known_services(self) -> set[str]:
        with self.lock:
            names = {cc.service_name(n["id"]) for cc in self.clusters.values() for n in cc.nodes}
            names |= {g.service_name for g in self.groups.values()}
        return names


def _tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


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
