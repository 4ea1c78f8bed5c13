"""Cache clusters: one Redis node, or 1-40 Memcached nodes behind an Auto Discovery endpoint."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
    AZS,
    Backend,
    CacheCluster,
    Member,
    ReplicationGroup,
    check_id,
    maxmemory_for,
    now,
)
from helpers.runtime import services, state
from helpers.runtime.engines import Node


class CacheClusters(Backend):
    def create_cache_cluster(
            self, cluster_id: str | None, node_type: str | None, engine: str | None = None,
            engine_version: str | None = None, num_nodes: int | None = None, replication_group_id: str | None = None,
            auth_token: str | None = None, tls: bool = False, snapshot_name: str | None = None,
            snapshot_arns: list[str] | None = None, param_group: str | None = None, subnet_group: str | None = None,
            az: str | None = None, security_group_ids: list[str] | None = None, snapshot_retention: int = 0,
            snapshot_window: str | None = None, maintenance_window: str | None = None,
            tags: dict[str, str] | None = None) -> CacheCluster:
        cid = check_id(cluster_id, "CacheClusterId", 50)
        if replication_group_id:
            raise invalid_value("Adding a cache cluster to a replication group is done with "
                                "increase-replica-count on the local endpoint.")
        if not node_type:
            raise invalid_value("The parameter CacheNodeType must be provided and must not be null.")
        engine, version = self.check_engine(engine, engine_version)
        n = 1 if num_nodes is None else int(num_nodes)
        if engine != "memcached" and n != 1:
            raise invalid_value(f"Cannot create a {engine} cluster with a NumCacheNodes parameter greater than 1; "
                                "use a replication group for replicas.")
        if engine == "memcached" and not 1 <= n <= 40:
            raise node_quota(n)
        token = auth_token
        if token is not None:
            self.check_token(token, engine, tls)
        if engine == "memcached" and (snapshot_name or snapshot_arns):
            raise invalid_combination("Snapshots are not supported for memcached clusters.")
        if tls and engine == "memcached":
            raise invalid_combination("Transit encryption for memcached is not available on the local endpoint.")
        pg = self.param_group_for(param_group, engine)
        subnet = self.check_subnet_group(subnet_group)
        snap = self.snapshot_to_restore(snapshot_name)
        with self.lock:
            if cid in self.clusters or any(cid in g.member_ids.values() for g in self.groups.values()):
                raise already_exists("CacheCluster", cid)
            cc = CacheCluster(
                cluster_id=cid, engine=engine, engine_version=version, node_type=node_type, num_nodes=n,
                az=az or AZS[0], param_group=pg.name, subnet_group=subnet,
                security_group_ids=list(security_group_ids or []), auth_token=token, tls=tls,
                snapshot_name=snap.name if snap else None, snapshot_retention=snapshot_retention,
                snapshot_window=snapshot_window or "05:00-06:00",
                maintenance_window=maintenance_window or "sun:23:00-mon:01:30")
            for _ in range(n):
                cc.nodes.append({"id": f"{cc.next_node:04d}", "created": now(), "status": "creating"})
                cc.next_node += 1
            self.clusters[cid] = cc
        self.add_tags(cc.arn, tags)
        snap_files = [Path(f) for f in snap.files] if snap else []
        self.background(f"create-{cid}", lambda: self._provision_cluster(cc, snap_files),
                        lambda msg: self._failed_cluster(cc, msg))
        return cc

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
            node_type: str | None = None) -> CacheCluster:
        """Memcached scales out and in (naming the nodes to remove); the rest is settings and AUTH."""
        cc = self.get_cluster(cluster_id)
        if cc.status != "available":
            raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
        new_n = num_nodes
        remove = list(node_ids_to_remove or [])
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
        pg = self.param_group_for(param_group, cc.engine) if param_group else None
        if auth_token is not None:
            if cc.engine == "memcached" or not cc.tls:
                raise invalid_combination("An AUTH token can only be set on a Redis cluster with transit encryption.")
            self.check_token(auth_token, cc.engine, True)
        if snapshot_retention is not None:
            cc.snapshot_retention = snapshot_retention
        if snapshot_window:
            cc.snapshot_window = snapshot_window
        if maintenance_window:
            cc.maintenance_window = maintenance_window
        if security_group_ids is not None:
            cc.security_group_ids = list(security_group_ids)
        if node_type:
            cc.node_type = node_type
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
            if auth_token is not None:
                strategy = (auth_token_strategy or "ROTATE").upper()
                svc = services.get(cc.service_name())
                conn = self._cluster_conn(cc, svc.nodes[0])
                rules = ["resetpass", f">{auth_token}"] if strategy == "SET" else [f">{auth_token}"]
                ops.acl_setuser(conn, "default", rules)
                cc.auth_token = auth_token
                self.event(cc.cluster_id, "cache-cluster", f"AUTH token updated ({strategy})")
            cc.status = "available"
            self.event(cc.cluster_id, "cache-cluster", "Cache cluster modified")

        self.background(f"modify-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return cc

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
            pg = self.param_groups.get(cc.param_group)
            cc.status = "available"
            if pg is not None:  # values changed after creation were CONFIG SET: set them again
                self.apply_parameters(pg)

        self.background(f"reboot-{cc.cluster_id}", work, lambda msg: self._modify_failed(cc, msg))
        return cc

    def _reboot_member(self, g: ReplicationGroup, member_id: str, node_ids: list[str]) -> Member:
        """Restart one node of a replication group (a primary's restart makes Sentinel fail over)."""
        self._require_available(g)
        if node_ids != ["0001"]:
            raise invalid_value("A member cache cluster of a replication group has one node: CacheNodeIdsToReboot "
                                "must be ['0001'].")
        name = next(n for n, m in g.member_ids.items() if m == member_id)
        m = next(x for x in self.group_members(g) if x.cluster_id == member_id)
        g.status = "modifying"

        def work() -> None:
            from helpers.runtime import engines, topologies

            svc = self.group_service(g)
            node = next(n for n in svc.nodes if n.name == name)
            node.stop()
            topo = services.TOPOLOGIES[svc.topology]
            if topo.heal is not None:
                svc = topo.heal(svc)
            else:
                probe = ops._tls().probe_redis_tls if g.tls else engines.probe_redis
                engines.restart_node(node, probe)
            topologies.record(svc)
            if g.auth_token or g.user_group_ids:
                self._secure_new_nodes(g)
            pg = self.param_groups.get(g.param_group)
            self.sync_endpoints(g)
            g.status = "available"
            if pg is not None:
                self.apply_parameters(pg)
            self.event(member_id, "cache-cluster", "Cache node 0001 restarted")

        self.background(f"reboot-{member_id}", work, lambda msg: self._group_op_failed(g, msg))
        return m

    def delete_cache_cluster(self, cluster_id: str | None, final_snapshot: str | None = None) -> CacheCluster:
        cid = str(cluster_id or "").lower()
        for g in self.groups.values():
            if cid in g.member_ids.values():
                raise invalid_value(f"Cache cluster {cid} is a member of replication group {g.group_id}; use "
                                    "decrease-replica-count or delete-replication-group.")
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
