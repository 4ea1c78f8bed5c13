"""Failover and scaling of replication groups: test failover, replica counts, resharding."""

from __future__ import annotations

import contextlib
import itertools
import time

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value, not_found
from helpers.aws.controlplane.models.base import Backend
from helpers.aws.controlplane.models.replication_record import Member, ReplicationGroup
from helpers.runtime import services, state
from helpers.runtime.engines import Node


class Scaling(Backend):
    def test_failover(self, group_id: str | None, node_group_id: str | None) -> ReplicationGroup:
        g = self.get_group(group_id)
        ng = node_group_id or ""
        self._require_available(g)
        members = self.group_members(g)
        if ng not in {m.node_group for m in members}:
            raise not_found("NodeGroup", ng)
        if not g.automatic_failover or not any(m.node_group == ng and m.role == "replica" for m in members):
            raise ApiError("Test failover needs automatic failover enabled and at least one replica in the node "
                           "group.", "TestFailoverNotAvailableFault")
        old = next(m for m in members if m.node_group == ng and m.role == "primary")
        g.status = "modifying"
        g.busy = True
        self.event(g.group_id, "replication-group", f"Test Failover API called for node group {ng}")

        def work() -> None:
            svc = self.group_service(g)
            if g.cluster_mode:
                # CLUSTER FAILOVER (no FORCE) is coordinated by Redis: the primary pauses its clients,
                # the replica catches up, then takes over; paused writes are answered MOVED.
                replica = next(m.node for m in members if m.node_group == ng and m.role == "replica")
                self._admin(g, svc, replica).execute_command("CLUSTER", "FAILOVER")
                new = self._wait_promoted(g, svc, old.node, ng)
            else:
                new = self._planned_failover(g, svc, old.node)
            ops.refresh_roles(g.service_name)
            self.sync_endpoints(g)
            self.wait_sentinels_settled(g, self.group_service(g))
            new_id = g.member_ids[new.name]
            msg = f"Failover from primary node {old.cluster_id} to replica node {new_id} completed"
            self.event(new_id, "cache-cluster", msg)
            self.event(g.group_id, "replication-group", msg)
            # AWS replaces the old primary; locally it rejoins as a replica of the new one.
            self.event(old.cluster_id, "cache-cluster", "Recovering cache nodes 0001")
            self.event(old.cluster_id, "cache-cluster", "Finished recovery for cache nodes 0001")
            g.busy = False
            g.status = "available"

        def failed(msg: str) -> None:
            g.busy = False
            self._group_op_failed(g, msg)

        self.background(f"failover-{g.group_id}", work, failed)
        return g

    def _wait_promoted(self, g: ReplicationGroup, svc: services.Service, old: Node, ng: str,
                       timeout: float = 45) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            roles = self._roles(g, svc)
            new = [n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary"
                   and g.node_group_of.get(n.name) == ng and n.name != old.name]
            if new and roles.get(old.name) == "replica":
                return new[0]
            time.sleep(0.05)
        raise RuntimeError(f"the failover did not complete within {timeout:.0f} s")

    def _planned_failover(self, g: ReplicationGroup, svc: services.Service, old: Node) -> Node:
        """Switch primaries without losing a write that was answered OK.

        Writes pause on the old primary (CLIENT PAUSE WRITE: they wait, unanswered), the replicas
        catch up (equal replication offsets), the Sentinels promote one, the old primary is pointed
        at it, and only then are writes released: on the old primary they now meet a replica and are
        refused (READONLY), and the primary endpoint has already closed its connections to it.
        """
        from helpers.runtime import topologies

        fwd = g.endpoints.get("primary")
        with self._writes_paused(g, svc, old) as (old_conn, target):
            replicas = [n for n in ops.data_nodes(svc) if n.name != old.name and n.alive()]
            deadline = time.monotonic() + 10
            while True:
                offsets = [int(self._admin(g, svc, n).info("replication").get("slave_repl_offset", -1))
                           for n in replicas]
                if offsets and max(offsets) >= target:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("no replica caught up with the primary within 10 s")
                time.sleep(0.01)
            # Only replicas that hold every write may win: the others get priority 0 for the switch.
            behind = [n for n, off in zip(replicas, offsets, strict=True) if off < target]
            for n in behind:
                self._admin(g, svc, n).config_set("replica-priority", 0)
            s = svc.nodes_by(role="sentinel")[0]
            topologies.sentinel_node_client(svc, s).execute_command("SENTINEL", "FAILOVER", svc.meta["master_name"])
            deadline = time.monotonic() + 30
            new = None
            while new is None:
                for n in replicas:
                    with contextlib.suppress(*ops.ENGINE_ERRORS, IndexError):
                        if self._admin(g, svc, n).execute_command("ROLE")[0] == "master":
                            new = n
                if new is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the Sentinels did not promote a replica within 30 s")
                    time.sleep(0.02)
            old_conn.execute_command("REPLICAOF", new.host, new.port)
            for n in behind:
                self._admin(g, svc, n).config_set("replica-priority", 100)
            if fwd is not None:
                fwd.set_targets([(new.host, new.port)])
            return new

    @contextlib.contextmanager
    def _writes_paused(self, g: ReplicationGroup, svc: services.Service, old: Node):
        """While a primary changes: writes wait on the old primary (CLIENT PAUSE WRITE: unanswered,
        so never acknowledged and then lost) and new connections to the primary endpoint wait for a
        target. Yields a connection to the old primary and its replication offset at the pause."""
        old_conn = self._admin(g, svc, old)
        fwd = g.endpoints.get("primary")
        # Longer than every wait of a switch (catch-up 10 s, promotion 30 s): a pause that ran out first would let
        # the old primary acknowledge writes it then discards (UNPAUSE below ends it as soon as the switch is done).
        old_conn.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
        try:
            if fwd is not None:
                fwd.set_targets([])  # new connections wait for the new primary
            yield old_conn, int(old_conn.info("replication")["master_repl_offset"])
        finally:
            with contextlib.suppress(*ops.ENGINE_ERRORS):
                old_conn.execute_command("CLIENT", "UNPAUSE")
            if fwd is not None and not fwd.targets:
                self.sync_endpoints(g)

    def _check_promotion(self, g: ReplicationGroup, cluster_id: str | None, failover: bool | None) -> Member | None:
        """PrimaryClusterId of ModifyReplicationGroup: the member to promote, or None (already primary).
        AWS: "You can't promote a read replica to primary while Multi-AZ with Automatic Failover is
        enabled" (Replication.PromoteReplica.html); cluster mode disabled only."""
        if not cluster_id:
            return None
        if g.cluster_mode:
            raise invalid_combination("PrimaryClusterId applies to replication groups with cluster mode disabled; "
                                      "use test-failover for a shard of a cluster-mode group.")
        if failover if failover is not None else g.automatic_failover:
            raise invalid_combination("You can't promote a read replica to primary while Multi-AZ with Automatic "
                                      "Failover is enabled: disable automatic failover (and Multi-AZ) first.")
        member = next((m for m in self.group_members(g) if m.cluster_id == cluster_id), None)
        if member is None:
            raise invalid_value(f"Cache cluster {cluster_id} is not a member of replication group {g.group_id}.")
        return None if member.role == "primary" else member

    def _promote(self, g: ReplicationGroup, member: Member) -> None:
        """Make one replica the primary without losing a write answered OK. No Sentinel acts (automatic
        failover is off): writes pause on the old primary, the chosen replica catches up and becomes
        primary, every other node follows it, and the primary endpoint moves before writes resume
        (on the old primary they now meet a replica: READONLY)."""

        svc = self.group_service(g)
        new = member.node
        old = next(m for m in self.group_members(g) if m.role == "primary")
        new_conn = self._admin(g, svc, new)
        fwd = g.endpoints.get("primary")
        with self._writes_paused(g, svc, old.node) as (_old_conn, target):
            deadline = time.monotonic() + 10
            while int(new_conn.info("replication").get("slave_repl_offset", -1)) < target:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{member.cluster_id} did not catch up with the primary within 10 s")
                time.sleep(0.01)
            new_conn.execute_command("REPLICAOF", "NO", "ONE")
            for n in ops.data_nodes(svc):
                if n.name != new.name and n.alive():
                    self._admin(g, svc, n).execute_command("REPLICAOF", new.host, new.port)
            if fwd is not None:
                fwd.set_targets([(new.host, new.port)])
        ops.refresh_roles(g.service_name)
        self.sync_endpoints(g)
        msg = f"Promoted cache cluster {member.cluster_id} to primary (replacing {old.cluster_id})"
        self.event(member.cluster_id, "cache-cluster", msg)
        self.event(g.group_id, "replication-group", msg)

    def change_replica_count(self, group_id: str | None, increase: bool, new_replica_count: int | None,
                             apply_immediately: bool = False,
                             replicas_to_remove: list[str] | None = None) -> ReplicationGroup:
        """IncreaseReplicaCount and DecreaseReplicaCount (cluster mode disabled)."""
        g = self.get_group(group_id)
        self._require_available(g)
        if not apply_immediately:  # AWS: "ApplyImmediately=False is not currently supported"
            raise invalid_value("ApplyImmediately=False is not currently supported.")
        remove_ids = list(replicas_to_remove or [])
        if increase and remove_ids:
            raise invalid_value("ReplicasToRemove is only for decrease-replica-count.")
        if new_replica_count is None and not remove_ids:
            raise invalid_value("Give NewReplicaCount" + ("" if increase else " or ReplicasToRemove") + ".")
        if remove_ids:
            members = {m.cluster_id: m for m in self.group_members(g)}
            unknown = [r for r in remove_ids if r not in members]
            if unknown:
                raise invalid_value(f"ReplicasToRemove names cache clusters not in {g.group_id}: {', '.join(unknown)}.")
            if any(members[r].role == "primary" for r in remove_ids):
                raise invalid_value("ReplicasToRemove cannot name the primary node.")
            if new_replica_count is not None and int(new_replica_count) != g.replicas - len(remove_ids):
                raise invalid_combination("NewReplicaCount does not match the number of ReplicasToRemove.")
        target = int(new_replica_count) if new_replica_count is not None else g.replicas - len(remove_ids)
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
            self.sync_endpoints(g)
            g.status = "available"
            self.event(g.group_id, "replication-group",
                       f"{'Increased' if increase else 'Decreased'} replica count to {target}")

        self.background(f"replicas-{g.group_id}", work, lambda msg: self._group_op_failed(g, msg))
        return g

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
        from helpers.runtime import topologies

        with g.lock:  # the record and the ids change together (see group_view)
            topologies.record(svc)
            for name in names:
                g.member_ids.pop(name, None)
        for s in svc.nodes_by(role="sentinel"):
            with contextlib.suppress(*ops.ENGINE_ERRORS, KeyError):
                topologies.sentinel_node_client(svc, s).execute_command("SENTINEL", "RESET", svc.meta["master_name"])

    def modify_shards(self, group_id: str | None, node_group_count: int | None, apply_immediately: bool = False,
                      to_remove: list[str] | None = None, to_retain: list[str] | None = None) -> ReplicationGroup:
        """ModifyReplicationGroupShardConfiguration: add shards, or remove the ones named (or not retained)."""
        g = self.get_group(group_id)
        self._require_available(g)
        if not g.cluster_mode:
            raise invalid_value("Shard configuration changes need a replication group with cluster mode enabled.")
        if not apply_immediately:
            raise invalid_value("ApplyImmediately must be true.")
        if node_group_count is None:
            raise invalid_value("NodeGroupCount is required.")
        count = int(node_group_count)
        members = self.group_members(g)
        current = sorted({m.node_group for m in members})
        if not 1 <= count <= 10:
            raise invalid_value("NodeGroupCount must be between 1 and 10 on the local endpoint.")
        to_remove = list(to_remove or [])
        to_retain = list(to_retain or [])
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
        with g.lock:
            self._require_available(g)  # still: no other operation (nor the recovery monitor) began meanwhile
            g.status = "modifying"
            g.resharding = True

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
                    prim = next(m.node for m in fresh if m.node_group == ng and m.role == "primary")
                    # The shard's slots move away and its nodes stop; the service record no longer lists them
                    # when remove_shard returns. Their ids are forgotten under the group's lock, so a describe
                    # sees the nodes and their ids both before or both after.
                    svc = topologies.remove_shard(self.group_service(g), prim.port)
                    with g.lock:
                        for name in [n for n, x in g.node_group_of.items() if x == ng]:
                            g.node_group_of.pop(name, None)
                            g.member_ids.pop(name, None)
            g.shards = count
            if g.user_group_ids or g.auth_token:
                self._secure_new_nodes(g)
            self.sync_endpoints(g)
            with g.lock:
                g.resharding = False
                g.status = "available"
            self.event(g.group_id, "replication-group", f"Resharding complete: {count} node groups")

        def failed(msg: str) -> None:
            with g.lock:
                g.resharding = False
                self._group_op_failed(g, msg)

        self.background(f"reshard-{g.group_id}", work, failed)
        return g
