"""Replication groups: one primary and its replicas (Sentinel-watched), or a Redis Cluster of shards.

A group is one service of the runtime's topologies (aws-redis, replicated, cluster); each data node is
a member cache cluster, named <group>-001 (or <group>-0001-001 in cluster mode) as on AWS.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import psutil

from helpers.aws import catalogue
from helpers.aws.controlplane import atrest
from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.endpoints import Forwarder
from helpers.aws.controlplane.errors import (
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
    not_found,
)
from helpers.aws.controlplane.models.base import (
    ADMIN_USER,
    DEFAULT_MAINTENANCE_WINDOW,
    Backend,
    check_id,
    placement_zones,
    request_region,
)
from helpers.aws.controlplane.models.clusters import network_defaults
from helpers.aws.controlplane.models.durability import check_change, check_durability, durability_config
from helpers.aws.controlplane.models.lifecycle import check_maintenance_window
from helpers.aws.controlplane.models.logdelivery import parse_requests as parse_log_requests
from helpers.aws.controlplane.models.replication_record import Member, ReplicationGroup
from helpers.runtime import services, state
from helpers.runtime.engines import Node

log = logging.getLogger(__name__)

SCRATCH_SUFFIX = re.compile(r"-(?:restore|aof)-\d+")  # what a group's scratch services add to its service name


class ReplicationGroups(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, ReplicationGroup] = {}

    def create_replication_group(
            self, group_id: str | None, description: str | None, engine: str | None = None,
            engine_version: str | None = None, node_type: str | None = None, cluster_mode: str | None = None,
            param_group: str | None = None, num_node_groups: int | None = None, configured_node_groups: int = 0,
            num_cache_clusters: int | None = None, replicas_per_node_group: int | None = None,
            automatic_failover: bool | None = None, multi_az: bool | None = None, tls: bool = False,
            auth_token: str | None = None, user_group_ids: list[str] | None = None, subnet_group: str | None = None,
            snapshot_name: str | None = None, security_group_ids: list[str] | None = None,
            snapshot_retention: int = 0, snapshot_window: str | None = None,
            tags: dict[str, str] | None = None, at_rest_encryption: bool = False,
            preferred_azs: list[str] | None = None, snapshot_arns: list[str] | None = None,
            maintenance_window: str | None = None, durability: str | None = None,
            transit_mode: str | None = None, log_delivery: list[Any] | None = None) -> ReplicationGroup:
        """Cluster mode is on when node groups are asked for, ClusterMode is enabled or the parameter
        group is a .cluster.on one; `configured_node_groups` is the length of NodeGroupConfiguration."""
        gid = check_id(group_id, "ReplicationGroupId", 40)
        if not description:
            raise invalid_value("The parameter ReplicationGroupDescription must be provided and must not be blank.")
        engine, version = self.check_engine(engine, engine_version)
        if engine == "memcached":
            raise invalid_value("Replication groups are for Redis/Valkey; Memcached has no replication.")
        logs = parse_log_requests(log_delivery, engine, version)
        node_type = self.check_node_type(node_type or "cache.t4g.micro")
        for az in preferred_azs or []:
            self.check_az(az)
        security_group_ids = self.check_security_groups(security_group_ids)
        if snapshot_arns:
            raise invalid_value("SnapshotArns (seeding a group from an RDB file in Amazon S3) is not available on "
                                "the local endpoint: restore from a snapshot with --snapshot-name instead "
                                "(see docs/local-vs-aws.md).")
        if not 0 <= int(snapshot_retention or 0) <= 35:
            raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        if num_node_groups is not None and int(num_node_groups) < 1:
            raise invalid_value(f"NumNodeGroups must be at least 1 (got {num_node_groups}).")
        if replicas_per_node_group is not None and int(replicas_per_node_group) < 0:
            raise invalid_value(f"ReplicasPerNodeGroup must be 0 or more (got {replicas_per_node_group}).")
        if (cluster_mode or "").lower() not in ("", "enabled", "disabled", "compatible"):
            raise invalid_value(f"Invalid value for ClusterMode: {cluster_mode}. Valid values: enabled, disabled, "
                                "compatible.")
        pg_name = param_group or ""
        named = self.param_groups.get(pg_name) if pg_name else None
        if num_cache_clusters is not None or (cluster_mode or "").lower() == "disabled":
            clustered = False
        elif num_node_groups or configured_node_groups or (cluster_mode or "").lower() == "enabled":
            clustered = True
        else:  # nothing but the parameter group says: its cluster-enabled decides, as on AWS
            clustered = bool(named and named.cluster_enabled)
        if num_cache_clusters and clustered and int(num_node_groups or 1) > 1:
            raise invalid_combination("NumCacheClusters is for cluster mode disabled; with NumNodeGroups use "
                                      "ReplicasPerNodeGroup.")
        if clustered:
            shards = int(num_node_groups or configured_node_groups or 1)
            replicas = int(replicas_per_node_group or 0)
            if not 1 <= shards <= 10:
                raise invalid_value("NumNodeGroups must be between 1 and 10 on the local endpoint "
                                    "(AWS allows up to 500).")
        else:
            shards = 1
            total = num_cache_clusters
            if total is None and replicas_per_node_group is not None:
                total = int(replicas_per_node_group) + 1
            total = int(total or 1)
            if not 1 <= total <= 6:
                raise invalid_value("NumCacheClusters must be between 1 and 6 (one primary and up to 5 replicas).")
            replicas = total - 1
        if not 0 <= replicas <= 5:
            raise invalid_value("ReplicasPerNodeGroup must be between 0 and 5.")
        failover = bool(automatic_failover) if automatic_failover is not None else clustered
        if failover and not clustered and replicas == 0:
            raise invalid_combination("Automatic failover needs at least one replica: use NumCacheClusters >= 2.")
        if clustered and automatic_failover is False:
            raise invalid_combination("Automatic failover cannot be disabled with cluster mode enabled.")
        if multi_az and not failover:
            raise invalid_combination("Multi-AZ needs automatic failover to be enabled.")
        ugs = list(user_group_ids or [])
        if auth_token is not None:
            self.check_token(auth_token, engine, tls)
        if ugs:
            if auth_token is not None:
                raise invalid_combination("Use either an AUTH token or user groups (RBAC), not both.")
            if not tls:
                raise invalid_combination("User groups (RBAC) need TransitEncryptionEnabled: encryption in transit "
                                          "must be enabled.")
            for ug in ugs:
                self.get_user_group(ug)
        if tls and transit_mode == "preferred":  # TLS and plaintext clients side by side from the start
            self.check_transit_supported(gid, engine, version, clustered, None)  # type: ignore[attr-defined]
        effective = check_durability(durability, engine, version, node_type, clustered, bool(multi_az), replicas,
                                     tls and transit_mode != "preferred")
        if effective != "disabled":
            at_rest_encryption = True  # durability turns encryption at rest on, as on AWS
        pg = self.param_group_for(pg_name or None, engine, clustered, version=version)
        subnet, security_group_ids = network_defaults(self.check_subnet_group(subnet_group), security_group_ids)
        snap = self.snapshot_to_restore(snapshot_name)
        if num_cache_clusters is not None and preferred_azs and len(preferred_azs) != int(num_cache_clusters):
            raise invalid_value("PreferredCacheClusterAZs must name one Availability Zone per cache cluster "
                                f"({num_cache_clusters}).")
        with self.lock:
            if gid in self.groups:
                raise already_exists("ReplicationGroup", gid)
            g = ReplicationGroup(
                group_id=gid, description=description, engine=engine, engine_version=version,
                node_type=node_type, cluster_mode=clustered, shards=shards, replicas=replicas,
                automatic_failover=failover, multi_az=bool(multi_az), param_group=pg.name,
                subnet_group=subnet, security_group_ids=list(security_group_ids or []), auth_token=auth_token,
                tls=tls, user_group_ids=ugs, snapshot_name=snap.name if snap else None,
                snapshot_retention=snapshot_retention, snapshot_window=snapshot_window or "05:00-06:00",
                at_rest_encryption=bool(at_rest_encryption),
                maintenance_window=check_maintenance_window(maintenance_window) or DEFAULT_MAINTENANCE_WINDOW,
                region=request_region(), durability=durability, effective_durability=effective)
            if tls and transit_mode == "preferred":
                g.tls, g.transit_mode = False, "preferred"  # the engines keep their plaintext ports
            self.groups[gid] = g
        self.request_log_delivery(g, [r for r in logs if r["Enabled"]])  # type: ignore[attr-defined]
        self.add_tags(g.arn, tags)
        files = [Path(f) for f in snap.files] if snap else []
        self.background(f"create-rg-{gid}", lambda: self._provision_group(g, files),
                        lambda msg: self._failed_group(g, msg))
        return g

    def _switch_durability(self, g: ReplicationGroup, effective: str, asked: str | None) -> None:
        """sync <-> async on every node at once (CONFIG SET), and in the recorded start-up settings, so a
        replaced node starts with the new mode too."""
        from helpers.runtime.service import record

        settings = durability_config(effective) or {"appendonly": "no", "appendfsync": "everysec"}
        svc = services.get(g.service_name)
        if svc:
            self._config_set(g.group_id, "replication-group",
                             [self._admin(g, svc, n) for n in ops.data_nodes(svc)], settings)
            svc.options["config"] = {**(svc.options.get("config") or {}), **settings}
            record(svc)
        g.durability, g.effective_durability = asked, effective
        if effective != "disabled":
            g.at_rest_encryption = True  # as on AWS: a durable cluster is encrypted at rest
        self.event(g.group_id, "replication-group", f"Durability changed to {effective}")

    def _failed_group(self, g: ReplicationGroup, msg: str) -> None:
        g.status = "create-failed"
        self.event(g.group_id, "replication-group", f"Failed to create replication group: {msg}")

    def _provision_group(self, g: ReplicationGroup, snap_files: list[Path]) -> None:
        from helpers.runtime import engines

        with engines.pinned(self.engine_binary(g.engine, g.engine_version)):  # the engine the request named
            self._provision_group_engines(g, snap_files)

    def _provision_group_engines(self, g: ReplicationGroup, snap_files: list[Path]) -> None:
        pg = self.param_groups.get(g.param_group)
        config = pg.startup_config() if pg else {}
        if pg:
            config["maxmemory"] = str(pg.maxmemory(g.node_type, g.engine))
        config.update(durability_config(g.effective_durability))
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
        if g.transit_mode == "preferred":
            for node in ops.data_nodes(svc):
                self.open_tls_listener(g, svc, node)  # type: ignore[attr-defined]
        if pg is not None and pg.values:
            self.apply_parameters(pg, [n for n in pg.values if catalogue.change_type(pg.family, n) == "immediate"])
        if g.auth_token:  # the learner's token becomes a password of the default user on every node
            for node in ops.data_nodes(svc):
                ops.acl_setuser(self._admin(g, svc, node), "default", [f">{g.auth_token}"])
        if g.user_group_ids:
            self._apply_user_groups(g)
        if snap_files:
            with atrest.plain_files(snap_files) as plain:
                moved = ops.restore_keys(plain, self.group_client(g), name)
            self.event(g.group_id, "replication-group",
                       f"Restored {moved} keys from snapshot {g.snapshot_name}")
        for node in ops.data_nodes(svc):
            self.event(g.member_ids[node.name], "cache-cluster", "Cache cluster created")
        self.open_endpoints(g)
        if g.after_create is not None:  # a global datastore's secondary starts following its primary
            g.after_create()
        self.apply_log_delivery(g)  # type: ignore[attr-defined]
        g.status = "available"
        self.ensure_monitor()
        self.event(g.group_id, "replication-group", f"Replication group {g.group_id} created")  # describe-events.rst

    # --- stable endpoints (see endpoints.py) -------------------------------------------------
    def open_endpoints(self, g: ReplicationGroup) -> None:
        """The group's endpoints: configuration (cluster mode), else primary and reader."""
        for kind in (["configuration"] if g.cluster_mode else ["primary", "reader"]):
            if kind not in g.endpoints:
                g.endpoints[kind] = Forwarder(f"{g.group_id}-{kind}")
        self.sync_endpoints(g)

    def close_endpoints(self, g: ReplicationGroup) -> None:
        for fwd in g.endpoints.values():
            fwd.close()

    def sync_endpoints(self, g: ReplicationGroup, roles: dict[str, str] | None = None) -> None:
        """Point each endpoint at the nodes that serve it now (connections to a demoted node close)."""
        svc = services.get(g.service_name)
        if svc is None or not g.endpoints:
            return
        live = [n for n in ops.data_nodes(svc) if n.alive() and not n.paused()]
        if g.cluster_mode:
            g.endpoints["configuration"].set_targets([(n.host, n.port) for n in live])
            return
        healthy: set[str] = set()  # replicas whose link to the primary is up (ROLE: "connected")
        if roles is None:
            roles = {}
            for n in live:
                with contextlib.suppress(*ops.ENGINE_ERRORS, IndexError):
                    reply = self._admin(g, svc, n).execute_command("ROLE")
                    roles[n.name] = "primary" if self._leads(g, svc, reply) else "replica"
                    if reply[0] == "slave" and reply[3] == "connected" and roles[n.name] == "replica":
                        healthy.add(n.name)
        else:
            healthy = {name for name, role in roles.items() if role == "replica"}
        primaries = [n for n in live if roles.get(n.name) == "primary"]
        if len(primaries) > 1 and g.topology == "replicated":  # a demotion in flight: Sentinel decides
            from helpers.runtime import topologies

            with contextlib.suppress(*ops.ENGINE_ERRORS, KeyError):
                port = topologies.current_primary(svc)[1]
                primaries = [n for n in primaries if n.port == port]
        replicas = [n for n in live if roles.get(n.name) == "replica" and n.name in healthy]
        tls_of = self.tls_listeners(g, live)  # type: ignore[attr-defined]  # TransitEncryptionMode preferred: both kinds of client
        g.endpoints["primary"].set_targets([(n.host, n.port) for n in primaries[:1]], tls_of)
        g.endpoints["reader"].set_targets([(n.host, n.port) for n in (replicas or primaries[:1])], tls_of)

    # --- the engines of a group ---------------------------------------------------------------
    def group_service(self, g: ReplicationGroup) -> services.Service:
        svc = services.get(g.service_name)
        if svc is None:
            raise invalid_state("ReplicationGroup", g.group_id, "without running engines", "provisioned")
        return svc

    def _admin(self, g: ReplicationGroup, svc: services.Service, node: Node) -> Any:
        """A privileged connection to one node (the control plane's own user once RBAC is on).

        A node behind a TLS front is reached on its loopback peer port, as its peers reach it: the
        control plane's many short connections then skip a TLS handshake and the front's extra hop
        each (ElastiCache's control plane also manages its nodes over a path of its own)."""
        from helpers.runtime import engines

        port = engines.peer_port(node)
        tls = g.tls and port == node.port
        if g.admin_password:
            return ops.redis_conn(node.host, port, username=ADMIN_USER, password=g.admin_password, tls=tls)
        return ops.redis_conn(node.host, port, password=svc.password() or g.auth_token, tls=tls)

    def _assign_members(self, g: ReplicationGroup, svc: services.Service) -> None:
        """Give each data node a member cluster id (<group>-001, or <group>-0001-001 in cluster mode).

        Under the group's lock: a describe and a background operation (resharding, replica counts) both
        call it, and the operation removes members under the same lock (see modify_shards)."""
        with g.lock:
            self._assign_members_locked(g, svc)

    def _assign_members_locked(self, g: ReplicationGroup, svc: services.Service) -> None:
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
                    # A new node group gets the next id never used in this group: the id of a removed node group
                    # is not handed out again (a removed 0001 stays gone; the next shard added is 0004, not 0001).
                    used = [int(v) for v in g.node_group_of.values() if v.isdigit()]
                    g.node_groups_made = max([g.node_groups_made, *used]) + 1
                    g.node_group_of[prim.name] = f"{g.node_groups_made:04d}"
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
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError, LookupError):
                    text = self._admin(g, svc, n).execute_command("CLUSTER", "NODES")
                    return topologies.parse_cluster_nodes(text)
        return []

    def _roles(self, g: ReplicationGroup, svc: services.Service) -> dict[str, str]:
        """node name -> 'primary' | 'replica', as the engines say right now."""
        roles: dict[str, str] = {}
        for n in ops.data_nodes(svc):
            role = "replica"
            if n.alive() and not n.paused():
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError, IndexError):
                    role = "primary" if self._leads(g, svc, self._admin(g, svc, n).execute_command("ROLE")) \
                        else "replica"
            roles[n.name] = role
        return roles

    @staticmethod
    def _leads(g: ReplicationGroup, svc: services.Service, role_reply: list[Any]) -> bool:
        """Whether a node is its group's primary: ROLE says master, or (the secondary of a global datastore, a
        group migrating from a self-hosted server) it follows a node outside the group."""
        if role_reply[0] == "master":
            return True
        if (g.global_role != "secondary" and not g.migration) or role_reply[0] != "slave":
            return False
        return int(role_reply[2]) not in {n.port for n in ops.data_nodes(svc)}

    def group_members(self, g: ReplicationGroup) -> list[Member]:
        """Member cache clusters with their live endpoint, role and node group."""
        return self.group_view(g)[1]

    def group_view(self, g: ReplicationGroup) -> tuple[str, list[Member]]:
        """(status, members) as they were at one moment: a describe answers both from the same state.

        The status, the service record (which nodes the group has) and the members' ids and node groups are
        read together under the group's lock; a background operation changes them under it (modify_shards
        retires a node group's nodes, forgets their ids and says `available` there). Read apart, a describe
        that began during a scale-in could list the removed node group's members with the status read after
        the operation ended: `available` with the old node groups. Only the roles are asked of the engines
        afterwards, outside the lock."""
        with g.lock:
            status = g.status
            if status in ("creating", "create-failed"):
                return status, []
            svc = services.get(g.service_name)
            if svc is None:
                return status, []
            if any(n.name not in g.member_ids for n in ops.data_nodes(svc)):
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError, LookupError):
                    self._assign_members(g, svc)  # nodes added by scaling (or left by a failed resharding)
            nodes = ops.data_nodes(svc)
            ids = {n.name: g.member_ids[n.name] for n in nodes if n.name in g.member_ids}
            # In cluster mode a member belongs to the node group it was given; one without (not yet placed) is
            # left out rather than shown in a node group it is not part of.
            groups = {n.name: g.node_group_of.get(n.name, "0001" if not g.cluster_mode else "") for n in nodes}
        roles = self._roles(g, svc)
        zones = placement_zones(g.region)
        out = []
        for n in nodes:
            if n.name not in ids or not groups[n.name]:
                continue
            mid = ids[n.name]
            idx = int(mid.rsplit("-", 1)[-1])
            out.append(Member(g, mid, n, roles.get(n.name, "replica"), groups[n.name], zones[(idx - 1) % len(zones)]))
        out.sort(key=lambda m: m.cluster_id)
        return status, out

    def slots_of(self, g: ReplicationGroup, node: Node) -> list[int]:
        """The hash slots a node serves, as the cluster says right now."""
        svc = services.get(g.service_name)
        if svc is None:
            return []
        for v in self._cluster_view(g, svc):
            if v["port"] == node.port:
                return sorted(v["slots"])
        return []

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

    def describe_replication_groups(self, group_id: str | None = None) -> list[ReplicationGroup]:
        """The request's region's groups (the one asked for: NotFound if it is in another region)."""
        region = request_region()
        found = [g for g in self._describe(group_id, self.get_group, self.groups) if g.region == region]
        if group_id and not found:
            raise not_found("ReplicationGroup", str(group_id))
        return found

    def delete_replication_group(self, group_id: str | None, retain_primary_cluster: bool = False,
                                 final_snapshot: str | None = None) -> tuple[ReplicationGroup, list[Member]]:
        """The group (now deleting) and its members as they were: the engines stop in the background."""
        g = self.get_group(group_id)
        self._check_deletable(g)
        if retain_primary_cluster:
            raise invalid_value("RetainPrimaryCluster is not supported on the local endpoint; delete the whole group.")
        if final_snapshot:
            self._check_new_snapshot(final_snapshot, g.engine)
        members = self.group_members(g)
        # Checked again and said under the group's lock, as the recovery monitor decides under it: a failure it
        # found first makes the group `modifying` (refused here); once `deleting`, nothing starts for it.
        with g.lock:
            self._check_deletable(g)
            g.status = "deleting"

        def work() -> None:
            self.wait_starters(g)  # what was being started for it is stopped with the rest below
            if final_snapshot:
                self._snapshot_group(g, final_snapshot, from_primary=True)  # as DeleteReplicationGroup says
            self.close_endpoints(g)
            services.stop(g.service_name)
            for extra in self._scratch_services(g):
                services.stop(extra)
            self._stop_unrecorded(g)
            shutil.rmtree(state.home() / "services" / g.service_name, ignore_errors=True)
            with self.lock:
                self.groups.pop(g.group_id, None)
                self.tags.pop(g.arn, None)
            self.event(g.group_id, "replication-group", "Replication group deleted")

        self.background(f"delete-rg-{g.group_id}", work,
                        lambda msg: self.event(g.group_id, "replication-group", f"Delete failed: {msg}"))
        return g, members

    @staticmethod
    def _check_deletable(g: ReplicationGroup) -> None:
        if g.status not in ("available", "create-failed"):
            raise invalid_state("ReplicationGroup", g.group_id, g.status)
        if g.global_id:
            raise invalid_value(f"Replication group {g.group_id} is a member of Global datastore {g.global_id}: "
                                "disassociate it (or delete the global datastore) first.")

    def _scratch_services(self, g: ReplicationGroup) -> list[str]:
        """The scratch services named after the group (<service>-restore-N, engineops.restore_keys; <service>-aof-N,
        restart.py). Never another resource's service: a group's id may extend another's (my-cluster and
        my-cluster-grg-secondary), and a prefix match stopped the other group's engines and Sentinels."""
        with self.lock:
            others = {x.service_name for x in self.groups.values()} | {c.service_name() for c in self.clusters.values()}
        return [s.name for s in services.status() if s.name not in others and s.name.startswith(g.service_name)
                and SCRATCH_SUFFIX.fullmatch(s.name[len(g.service_name):])]

    @staticmethod
    def _stop_unrecorded(g: ReplicationGroup) -> None:
        """Stop any process working in the group's service directory that no record holds (none should be)."""
        from helpers.runtime import process

        home = (state.home() / "services" / g.service_name).resolve()
        for proc in services.unrecorded_processes():
            try:
                if Path(proc.cwd()).resolve().is_relative_to(home):
                    log.warning("replication group %s: stopping %s[%d], which no record holds", g.group_id,
                                proc.name(), proc.pid)
                    process.stop_tree(proc, timeout=5)
            except (psutil.Error, OSError) as exc:  # gone meanwhile
                log.debug("replication group %s: %s", g.group_id, exc)

    def modify_replication_group(
            self, group_id: str | None, description: str | None = None, snapshot_retention: int | None = None,
            snapshot_window: str | None = None, node_type: str | None = None,
            automatic_failover: bool | None = None, multi_az: bool | None = None, param_group: str | None = None,
            add_user_groups: list[str] | None = None, remove_user_groups: list[str] | None = None,
            auth_token: str | None = None, auth_token_strategy: str | None = None,
            engine_version: str | None = None, apply_immediately: bool = False,
            security_group_ids: list[str] | None = None, maintenance_window: str | None = None,
            remove_all_user_groups: bool = False, engine: str | None = None,
            durability: str | None = None, primary_cluster_id: str | None = None,
            transit_enabled: bool | None = None, transit_mode: str | None = None,
            log_delivery: list[Any] | None = None) -> ReplicationGroup:
        """Settings, failover, parameter group, RBAC and AUTH; node type (scaling up or down: maxmemory
        follows, data stays) and engine version wait in PendingModifiedValues without `apply_immediately`;
        in-transit encryption in AWS's two steps (transit.py), shown pending while it applies."""
        g = self.get_group(group_id)
        self._require_available(g)
        if snapshot_retention is not None and not 0 <= int(snapshot_retention) <= 35:
            raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        changes: dict[str, Any] = {}
        if node_type and node_type != g.node_type:
            changes["CacheNodeType"] = self.check_node_type(node_type)
        new_pg = None
        if engine_version or (engine and engine.lower() != g.engine):
            new_engine, target = self.check_engine_change(g.engine, g.engine_version, engine_version, engine)
            if (new_engine, target) != (g.engine, g.engine_version):
                changes["EngineVersion"] = target
                changes["Engine"] = new_engine
                new_pg = self.upgrade_param_group(g, new_engine, target, param_group)
                if new_pg is not None:
                    changes["CacheParameterGroup"] = new_pg.name
                    param_group = None
        sgs = self.check_security_groups(security_group_ids) if security_group_ids is not None else None
        new_durability = check_change(g.effective_durability, durability, g.engine, g.engine_version, g.node_type,
                                      g.cluster_mode, g.multi_az, g.replicas, g.tls, bool(g.global_id))
        failover = automatic_failover
        if failover is not None:
            if g.cluster_mode and not failover:
                raise invalid_combination("Automatic failover cannot be disabled with cluster mode enabled.")
            if failover and not g.cluster_mode and g.replicas == 0:
                raise invalid_combination("Automatic failover needs at least one replica.")
        if multi_az and not (failover if failover is not None else g.automatic_failover):
            raise invalid_combination("Multi-AZ needs automatic failover to be enabled.")
        promote = self._check_promotion(g, primary_cluster_id, failover)
        transit = self.check_transit_change(g, transit_enabled, transit_mode)  # type: ignore[attr-defined]
        logs = parse_log_requests(log_delivery, g.engine, g.engine_version)
        if logs and not apply_immediately:
            raise invalid_combination("Log delivery changes must be applied immediately: give ApplyImmediately.")
        pg = self.param_group_for(param_group, g.engine, g.cluster_mode, version=g.engine_version) \
            if param_group else None
        add_ugs = list(add_user_groups or [])
        remove_ugs = list(remove_user_groups or [])
        if remove_all_user_groups:
            remove_ugs = list(dict.fromkeys([*remove_ugs, *g.user_group_ids]))
        for ug in add_ugs + remove_ugs:
            self.get_user_group(ug)
        if add_ugs and not g.tls:
            raise invalid_combination("User groups (RBAC) need encryption in transit on the replication group.")
        if add_ugs and g.global_id:
            raise invalid_combination(f"Replication group {g.group_id} is a member of Global datastore "
                                      f"{g.global_id}: the local endpoint does not put RBAC user groups on global "
                                      "datastores (see docs/local-vs-aws.md).")
        strategy = self.check_auth_change(g.engine, g.tls, g.auth_token, auth_token, auth_token_strategy,
                                          rbac=True, adding_user_groups=bool(add_ugs),
                                          rotating=g.previous_token is not None)
        if add_ugs and g.auth_token and strategy != "DELETE":
            raise invalid_combination("This group uses an AUTH token; to move to RBAC, add the user group with "
                                      "AuthTokenUpdateStrategy DELETE.")
        if strategy and strategy != "DELETE" and g.user_group_ids and not remove_ugs:
            raise invalid_combination("This group uses user groups (RBAC); AUTH tokens and user groups exclude "
                                      "each other.")
        if description:
            g.description = description
        if snapshot_retention is not None:
            g.snapshot_retention = snapshot_retention
        if snapshot_window:
            g.snapshot_window = snapshot_window
        if maintenance_window:
            g.maintenance_window = check_maintenance_window(maintenance_window) or g.maintenance_window
        if sgs is not None:
            g.security_group_ids = sgs
        if changes and not apply_immediately:
            g.pending.update(changes)
            changes = {}
        if transit:  # applied at once, as on AWS: PendingModifiedValues shows it until it is done
            g.pending.update({"TransitEncryptionEnabled": transit != "disabled",
                              "TransitEncryptionMode": None if transit == "disabled" else transit})
        self.request_log_delivery(g, logs)  # type: ignore[attr-defined]
        g.status = "modifying"

        def work() -> None:
            if logs:
                self.apply_log_delivery(g)  # type: ignore[attr-defined]
            if transit:
                try:
                    self.apply_transit_change(g, transit)  # type: ignore[attr-defined]
                finally:
                    g.pending.pop("TransitEncryptionEnabled", None)
                    g.pending.pop("TransitEncryptionMode", None)
            if new_durability:
                self._switch_durability(g, new_durability, durability)
            if failover is not None and bool(failover) != g.automatic_failover:
                g.automatic_failover = bool(failover)
                if g.topology == "replicated":
                    self._sentinels_monitor(g, g.automatic_failover)
                self.event(g.group_id, "replication-group",
                           f"Automatic failover {'enabled' if g.automatic_failover else 'disabled'}")
            if multi_az is not None:
                g.multi_az = bool(multi_az)
            if promote is not None:
                self._promote(g, promote)
            if pg is not None:
                g.param_group = pg.name
                self.apply_parameters(pg)
            if strategy == "DELETE":  # the token goes only once the user groups are on
                g.user_group_ids = [u for u in g.user_group_ids if u not in remove_ugs] + \
                    [u for u in add_ugs if u not in g.user_group_ids]
                self._apply_user_groups(g)
                g.auth_token, g.previous_token = None, None
                self.event(g.group_id, "replication-group", "AUTH token updated (DELETE)")
            else:
                if add_ugs or remove_ugs:
                    g.user_group_ids = [u for u in g.user_group_ids if u not in remove_ugs] + \
                        [u for u in add_ugs if u not in g.user_group_ids]
                    self._apply_user_groups(g)
                if strategy:
                    svc = self.group_service(g)
                    self.apply_auth_change(g, [self._admin(g, svc, n) for n in ops.data_nodes(svc)], auth_token,
                                           strategy, internal=svc.password())
                    if g.global_id:  # a secondary that follows this group may authenticate with its token
                        self.global_credentials_changed(g)
            if changes:
                self._apply_group_changes(g, changes)
            g.status = "available"
            self.event(g.group_id, "replication-group", "Replication group modified")

        self.background(f"modify-rg-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        return g

    def _apply_group_changes(self, g: ReplicationGroup, changes: dict[str, Any]) -> None:
        """Node type: every node's maxmemory follows (data stays); engine version: recorded (same binary)."""
        for key in changes:
            g.pending.pop(key, None)
        if "CacheNodeType" in changes:
            g.node_type = changes["CacheNodeType"]
            pg = self.param_groups.get(g.param_group)
            svc = self.group_service(g)
            if pg:
                ops.config_set([self._admin(g, svc, n) for n in ops.data_nodes(svc)],
                               {"maxmemory": str(pg.maxmemory(g.node_type, g.engine))})
            self.event(g.group_id, "replication-group", f"Cache node type changed to {g.node_type}")
        if "EngineVersion" in changes:
            self.upgrade_group_engine(g, changes.get("Engine", g.engine), changes["EngineVersion"])
            if changes.get("CacheParameterGroup"):
                g.param_group = changes["CacheParameterGroup"]
                pg = self.param_groups.get(g.param_group)
                if pg is not None:
                    self.apply_parameters(pg)

    def upgrade_param_group(self, g: ReplicationGroup, engine: str, version: str, named: str | None) -> Any:
        """The parameter group a group moves to with an engine version of another family (None: same
        family, the group keeps its own). A default group moves to the new family's default; a custom
        one must be replaced by a custom one of the new family, named in the request, as on AWS."""
        family = self.family(engine, version)
        current = self.param_groups.get(g.param_group)
        if current is not None and current.family == family:
            return self.param_group_for(named, engine, g.cluster_mode, version=version) if named else None
        if named:
            return self.param_group_for(named, engine, g.cluster_mode, version=version)
        if current is not None and not current.is_default:
            raise invalid_combination(f"Replication group {g.group_id} uses the custom parameter group "
                                      f"{current.name} ({current.family}): name a custom parameter group of family "
                                      f"{family} with --cache-parameter-group-name for the upgrade.")
        return self.param_group_for(None, engine, g.cluster_mode, version=version)

    def apply_pending_group(self, g: ReplicationGroup) -> list[str]:
        """Apply PendingModifiedValues now (what the maintenance window would do)."""
        changes = dict(g.pending)
        if not changes or g.status != "available":
            return []
        g.status = "modifying"
        if "EngineVersion" in changes:  # node by node, in the background: the group is modifying meanwhile
            def work() -> None:
                self._apply_group_changes(g, changes)
                g.status = "available"
                self.event(g.group_id, "replication-group", "Replication group modified")

            self.background(f"pending-rg-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        else:
            try:
                self._apply_group_changes(g, changes)
            finally:
                g.status = "available"
        return sorted(k for k in changes if k in ("CacheNodeType", "EngineVersion"))

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
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    c.execute_command("SENTINEL", "MONITOR", master, host, port, 2)
                secret = svc.password()
                if secret:
                    c.execute_command("SENTINEL", "SET", master, "auth-pass", secret)
                c.execute_command("SENTINEL", "SET", master, "down-after-milliseconds", 1500)
                c.execute_command("SENTINEL", "SET", master, "failover-timeout", 6000)
            else:
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    c.execute_command("SENTINEL", "REMOVE", master)

    def _primary_addr(self, g: ReplicationGroup, svc: services.Service) -> tuple[str, int]:
        roles = self._roles(g, svc)
        n = next(n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary")
        return n.host, n.port
