"""Global datastores: one primary replication group whose data is replicated to groups in other regions.

On AWS a global datastore links a primary (active) cluster to secondary (passive) clusters in up to two
other regions; each secondary's primary node replicates from the primary region's primary node, so a
secondary serves reads only, and `failover-global-replication-group` promotes one of them.

Locally every region is the same endpoint (the client's region name is recorded on each group, see
base.request_region), and the replication is real: the secondary group's primary node is a replica
(REPLICAOF) of the primary group's primary node, its own replicas follow it (chained replication), its
Sentinels stop watching it (a primary that reports itself a replica would be failed over by them), and
its replica-priority is 0 so the primary group's Sentinels never promote it. Its clients get READONLY
on writes, as on AWS. A failover points the old primary at the new one the same way.

With AUTH (a token, TLS in transit) each group's nodes replicate with their own group's internal password;
the node that follows another region presents that region's (masterauth). Cluster mode enabled groups and
RBAC user groups are refused (docs/local-vs-aws.md). A failed node of a secondary is replaced by the control
plane itself (recover_secondary), since no Sentinel watches a secondary.

The lag (GlobalDatastoreReplicationLag, seconds) is measured by `replication_lag()`: how long the
secondary's primary takes to reach the replication offset the primary had when asked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value
from helpers.aws.controlplane.models.base import ACCOUNT, Backend, now, request_region
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import services

# Each region's prefix of global datastore ids, from "Using the AWS CLI with global datastores" (ElastiCache
# User Guide, read 2026-11). Regions that offer global datastores but are not in that table are refused here.
REGION_PREFIX = {
    "us-east-1": "ldgnf", "us-east-2": "fpkhr", "us-west-1": "virxk", "us-west-2": "sgaui",
    "ca-central-1": "bxodz", "ap-south-1": "erpgt", "ap-northeast-1": "quwsw", "ap-northeast-2": "lfqnh",
    "ap-northeast-3": "nlapn", "ap-southeast-1": "vlqxn", "ap-southeast-2": "vbgxd", "eu-central-1": "iudkw",
    "eu-west-1": "gxeiz", "eu-west-2": "okuqm", "eu-west-3": "fgjhi", "sa-east-1": "juxlw",
    "cn-north-1": "emvgo", "cn-northwest-1": "ckbem", "ap-east-1": "knjmp",
}
# "Prerequisites and limitations" (read 2026-11): these families, size large and above.
FAMILIES = ("m5", "m6g", "m7g", "r5", "r6g", "r6gd", "r7g", "c7gn")
SMALL_SIZES = ("nano", "micro", "small", "medium")
MAX_SECONDARIES = 2  # "a secondary cluster in up to two other AWS Regions"
LAG_TIMEOUT = 5.0  # seconds: a secondary further behind than this reads as at least this far behind


@dataclass
class GlobalDatastore:
    global_id: str
    description: str
    primary_id: str
    engine: str
    engine_version: str
    node_type: str
    tls: bool
    at_rest: bool
    members: list[str] = field(default_factory=list)  # replication group ids, the primary first
    associating: set[str] = field(default_factory=set)  # secondaries not yet following the primary
    status: str = "creating"
    created: datetime = field(default_factory=now)

    @property
    def arn(self) -> str:
        return f"arn:aws:elasticache::{ACCOUNT}:globalreplicationgroup:{self.global_id}"


def not_found(gid: Any) -> ApiError:
    return ApiError(f"GlobalReplicationGroup {gid} not found", "GlobalReplicationGroupNotFoundFault")


def invalid_state(gds: GlobalDatastore) -> ApiError:
    return ApiError(f"Global datastore {gds.global_id} is {gds.status}; this operation needs it to be available.",
                    "InvalidGlobalReplicationGroupState")


def check_node_type(node_type: str) -> None:
    parts = node_type.split(".")
    family, size = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    if family not in FAMILIES or size in SMALL_SIZES:
        raise invalid_value(f"Global datastores are not supported for node type {node_type}: use a node of the "
                            f"{', '.join(f.upper() for f in FAMILIES)} families, size large or above "
                            "(e.g. cache.r7g.large).")


class GlobalDatastores(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.global_groups: dict[str, GlobalDatastore] = {}

    # --- lookups --------------------------------------------------------------------------------
    def get_global(self, gid: Any) -> GlobalDatastore:
        with self.lock:
            found = self.global_groups.get(str(gid or ""))
        if found is None:
            raise not_found(gid)
        return found

    @staticmethod
    def _created(gds: GlobalDatastore, timeout: float = 10.0) -> GlobalDatastore:
        """A datastore still `creating` when the next call comes: locally its creation takes milliseconds
        (the primary's role is read), so the call waits for it rather than fail on that race; on AWS it
        takes minutes and the call answers InvalidGlobalReplicationGroupState meanwhile."""
        deadline = time.monotonic() + timeout
        while gds.status == "creating" and time.monotonic() < deadline:
            time.sleep(0.02)
        return gds

    def describe_global_groups(self, gid: Any = None) -> list[GlobalDatastore]:
        if gid:
            return [self.get_global(gid)]
        with self.lock:
            return list(self.global_groups.values())

    def global_members(self, gds: GlobalDatastore) -> list[ReplicationGroup]:
        with self.lock:
            return [self.groups[m] for m in gds.members if m in self.groups]

    # --- create ---------------------------------------------------------------------------------
    def create_global_group(self, suffix: Any, primary_id: Any, description: str | None = None) -> GlobalDatastore:
        if not suffix:
            raise invalid_value("The parameter GlobalReplicationGroupIdSuffix must be provided and must not be blank.")
        region = request_region()
        if region not in REGION_PREFIX:
            raise invalid_value(f"Global datastores are not available in region {region} on the local endpoint "
                                f"(regions: {', '.join(REGION_PREFIX)}).")
        g = self.get_group(primary_id)
        if g.region != region:
            from helpers.aws.controlplane.errors import not_found as rg_not_found

            raise rg_not_found("ReplicationGroup", str(primary_id))
        if g.status != "available":
            raise ApiError(f"Replication group {g.group_id} is {g.status}; it must be available.",
                           "InvalidReplicationGroupState")
        if g.global_id:
            raise invalid_value(f"Replication group {g.group_id} is already a member of Global datastore "
                                f"{g.global_id}.")
        check_node_type(g.node_type)
        if g.effective_durability != "disabled":
            raise invalid_combination("Durability is not supported with Global Datastores.")
        if g.cluster_mode:
            raise invalid_combination("The local endpoint builds global datastores from cluster-mode-disabled "
                                      "replication groups only (AWS also takes cluster mode enabled ones).")
        if g.user_group_ids:
            raise invalid_combination("The local endpoint builds global datastores from replication groups without "
                                      "RBAC user groups only (AUTH tokens are taken; see docs/local-vs-aws.md).")
        gid = f"{REGION_PREFIX[region]}-{str(suffix).strip().replace(' ', '-')}"
        with self.lock:
            if gid in self.global_groups:
                raise ApiError(f"Global datastore {gid} already exists.", "GlobalReplicationGroupAlreadyExistsFault")
            gds = GlobalDatastore(gid, description or "", g.group_id, g.engine, g.engine_version, g.node_type,
                                  g.tls, g.at_rest_encryption, members=[g.group_id], associating={g.group_id})
            self.global_groups[gid] = gds
            g.global_id, g.global_role = gid, "primary"
        answer = dataclasses.replace(gds, members=list(gds.members), associating=set(gds.associating))

        def work() -> None:
            # create-global-replication-group.rst answers "creating", its primary "associating": the
            # datastore is available once the primary's node answers as the primary it will replicate from.
            self._primary_node(g)
            gds.associating.discard(g.group_id)
            gds.status = "available"
            self.event(g.group_id, "replication-group", f"Replication group {g.group_id} added to Global datastore "
                                                        f"{gid} as the primary cluster")

        def failed(msg: str) -> None:
            with self.lock:
                self.global_groups.pop(gid, None)
                g.global_id, g.global_role = None, None
            self.event(g.group_id, "replication-group", f"Creating Global datastore {gid} failed: {msg}")

        self.background(f"global-{gid}", work, failed)
        return answer

    def check_secondary(self, gid: Any, node_type: str | None, engine: str | None, engine_version: str | None,
                        cluster_mode: bool, auth: bool, rbac: bool = False) -> GlobalDatastore:
        """A create-replication-group --global-replication-group-id: AWS's rules for a new secondary."""
        gds = self._created(self.get_global(gid))
        if gds.status != "available":
            raise invalid_state(gds)
        region = request_region()
        if region not in REGION_PREFIX:
            raise invalid_value(f"Global datastores are not available in region {region} on the local endpoint.")
        members = self.global_members(gds)
        if any(m.region == region for m in members):
            raise invalid_value(f"Global datastore {gds.global_id} already has a member in {region}: a secondary "
                                "must be in another region than every other member.")
        if len(members) > MAX_SECONDARIES:
            raise invalid_value(f"Global datastore {gds.global_id} already has {MAX_SECONDARIES} secondary clusters.")
        if node_type and node_type != gds.node_type:
            raise invalid_combination(f"A secondary cluster has the global datastore's node type ({gds.node_type}).")
        if engine and engine.lower() != gds.engine:
            raise invalid_combination(f"A secondary cluster has the global datastore's engine ({gds.engine}).")
        if engine_version and not gds.engine_version.startswith(str(engine_version)):
            raise invalid_combination(f"A secondary cluster has the global datastore's engine version "
                                      f"({gds.engine_version}).")
        if cluster_mode:
            raise invalid_combination("This global datastore is cluster mode disabled.")
        if rbac:
            raise invalid_combination("The local endpoint builds global datastores without RBAC user groups only "
                                      "(AUTH tokens are taken).")
        if auth and not gds.tls:
            raise invalid_combination("AuthToken needs TransitEncryptionEnabled, which this global datastore's "
                                      "clusters do not have.")
        return gds

    def join_as_secondary(self, gds: GlobalDatastore, g: ReplicationGroup) -> None:
        """Record a new group as a secondary; once its engines run it follows the primary (after_create)."""
        with self.lock:
            gds.members.append(g.group_id)
            gds.associating.add(g.group_id)
            g.global_id, g.global_role = gds.global_id, "secondary"

        def follow() -> None:
            self._follow(g, self.get_group(gds.primary_id))
            gds.associating.discard(g.group_id)
            self.event(g.group_id, "replication-group", f"Replication group {g.group_id} added to Global datastore "
                                                        f"{gds.global_id} as a secondary cluster")

        g.after_create = follow

    # --- the engines ------------------------------------------------------------------------------
    def _primary_node(self, g: ReplicationGroup) -> Any:
        svc = self.group_service(g)
        roles = self._roles(g, svc)
        return next(n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary")

    def _sentinels(self, g: ReplicationGroup, on: bool) -> None:
        if g.topology == "replicated" and g.automatic_failover:
            with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, KeyError, StopIteration):
                self._sentinels_monitor(g, on)

    def _follow(self, g: ReplicationGroup, upstream: ReplicationGroup, timeout: float = 30,
                node: Any = None) -> None:
        """Make g's primary node (or `node`, which becomes it) a replica of upstream's primary node, and wait
        for the link."""
        svc = self.group_service(g)
        node = node or self._primary_node(g)
        up = self._primary_node(upstream)
        g.global_role = "secondary"
        self._sentinels(g, False)
        conn = self._admin(g, svc, node)
        with contextlib.suppress(*ops.ENGINE_ERRORS):
            conn.config_set("replica-priority", 0)  # never promoted by the other region's Sentinels
        # With AUTH, each group's nodes replicate with that group's own internal password: the node that
        # follows the other region presents the other region's.
        conn.config_set("masterauth", self.group_service(upstream).password() or upstream.auth_token or "")
        conn.execute_command("REPLICAOF", up.host, up.port)
        deadline = time.monotonic() + timeout
        while conn.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{g.group_id} did not sync with {upstream.group_id} within {timeout:.0f} s")
            time.sleep(0.05)
        self.sync_endpoints(g)

    def recover_secondary(self, g: ReplicationGroup, svc: Any, dead: list[Any]) -> None:
        """Nodes of a secondary cluster died. Its Sentinels do not watch it (it follows another region), so the
        control plane does what AWS's does: if its primary node died, the most up-to-date live replica becomes
        the cluster's primary and follows the primary cluster's primary node (across the regions), the other
        replicas follow it; then every failed node is started again on its port as a replica of it, and resyncs."""
        from helpers.runtime import engines
        from helpers.runtime.topologies.nodes import node_probe, set_conf_line

        gds = self.get_global(g.global_id)
        upstream = self.get_group(gds.primary_id)
        dead_names = {n.name for n in dead}
        roles = self._roles(g, svc)
        live = [n for n in ops.data_nodes(svc) if n.alive() and n.name not in dead_names]
        lead = next((n for n in live if roles.get(n.name) == "primary"), None)
        if lead is None and live:
            fwd = g.endpoints.get("primary")
            if fwd is not None:
                fwd.set_targets([])  # no primary: new connections wait for the promoted replica

            def offset(n: Any) -> int:
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError):
                    return int(self._admin(g, svc, n).info("replication").get("slave_repl_offset", 0))
                return -1

            lead = max(live, key=offset)
            self._follow(g, upstream, node=lead)
            for n in live:
                if n is not lead:
                    self._admin(g, svc, n).execute_command("REPLICAOF", lead.host, lead.port)
            self._failover_done(g, lead)
        if lead is None or lead is not next((n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary"), None):
            self._forget_in_upstream_sentinels(upstream)  # they knew the failed primary node, not its replicas
        for n in ops.data_nodes(svc):
            if n.alive():
                continue
            if lead is not None:
                set_conf_line(Path(n.extra.get("config_file", n.argv[1])), "replicaof", f"{lead.host} {lead.port}")
            engines.restart_node(n, node_probe(n))
        if lead is None:  # every data node had died: they came back empty; one follows the other region again
            first = ops.data_nodes(svc)[0]
            self._follow(g, upstream, node=first)
            for n in ops.data_nodes(svc)[1:]:
                self._admin(g, svc, n).execute_command("REPLICAOF", first.host, first.port)

    def _forget_in_upstream_sentinels(self, upstream: ReplicationGroup) -> None:
        """The primary cluster's Sentinels knew the failed node as a replica of their primary: they would soon
        "repair" it, once it is back, to replicate from their primary instead of its own cluster's. SENTINEL
        RESET makes them forget it; they rediscover the replicas their primary lists (the new lead, not it)."""
        from helpers.runtime import topologies

        with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, KeyError):
            usvc = self.group_service(upstream)
            master = usvc.meta["master_name"]
            for s in usvc.nodes_by(role="sentinel"):  # one at a time, so a quorum always knows the others
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError):
                    c = topologies.sentinel_node_client(usvc, s)
                    c.execute_command("SENTINEL", "RESET", master)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        info = c.execute_command("SENTINEL", "MASTER", master)
                        if isinstance(info, list):
                            info = dict(zip(info[::2], info[1::2], strict=False))
                        if int(info.get("num-other-sentinels", 0)) >= 2 and int(info.get("num-slaves", 0)) >= 1:
                            break
                        time.sleep(0.1)

    def global_credentials_changed(self, g: ReplicationGroup) -> None:
        """g's AUTH token changed: the secondary nodes that follow g present what g now takes."""
        if g.global_role != "primary":
            return
        secret = self.group_service(g).password() or g.auth_token or ""
        with contextlib.suppress(ApiError):
            gds = self.get_global(g.global_id)
            for m in self.global_members(gds):
                if m.group_id != g.group_id:
                    with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, StopIteration):
                        self._admin(m, self.group_service(m), self._primary_node(m)).config_set("masterauth", secret)

    def refollow_secondaries(self, g: ReplicationGroup) -> None:
        """After the primary cluster replaced its primary node, each secondary follows the new one."""
        if not g.global_id or g.global_role != "primary":
            return
        with contextlib.suppress(ApiError):
            gds = self.get_global(g.global_id)
            up = self._primary_node(g)
            for m in self.global_members(gds):
                if m.group_id == g.group_id or m.group_id in gds.associating:
                    continue
                info = self._admin(m, self.group_service(m), self._primary_node(m)).info("replication")
                if int(info.get("master_port", -1)) != up.port or info.get("master_link_status") != "up":
                    self._follow(m, g)

    def _lead(self, g: ReplicationGroup) -> None:
        """Make g's primary node a primary again (failover, disassociation)."""
        svc = self.group_service(g)
        node = self._primary_node(g)
        conn = self._admin(g, svc, node)
        conn.execute_command("REPLICAOF", "NO", "ONE")
        conn.config_set("masterauth", svc.password() or g.auth_token or "")  # its own group's again, should it become a replica
        with contextlib.suppress(*ops.ENGINE_ERRORS):
            conn.config_set("replica-priority", 100)
        g.global_role = "primary" if g.global_id else None
        self._sentinels(g, True)
        self.sync_endpoints(g)

    # --- operations ---------------------------------------------------------------------------------
    def _start(self, gds: GlobalDatastore, status: str, what: str, work: Any) -> None:
        if gds.status != "available" or gds.associating:
            raise invalid_state(gds)
        gds.status = status
        members = self.global_members(gds)
        for m in members:
            m.busy = True

        def run() -> None:
            try:
                work()
            finally:
                for m in members:
                    m.busy = False
                if gds.status == status:
                    gds.status = "available"

        def failed(msg: str) -> None:
            for m in members:
                self.event(m.group_id, "replication-group", f"Global datastore {gds.global_id}: {what} failed: {msg}")

        self.background(f"{what}-{gds.global_id}", run, failed)

    def failover_global_group(self, gid: Any, region: Any, group_id: Any) -> GlobalDatastore:
        gds = self._created(self.get_global(gid))
        if not region or not group_id:
            raise invalid_value("PrimaryRegion and PrimaryReplicationGroupId are required.")
        target = next((m for m in self.global_members(gds) if m.group_id == str(group_id).lower()), None)
        if target is None or target.region != region:
            raise invalid_combination(f"Replication group {group_id} in {region} is not a member of Global "
                                      f"datastore {gds.global_id}.")
        if target.group_id == gds.primary_id:
            raise invalid_value(f"Replication group {target.group_id} is already the primary cluster of "
                                f"{gds.global_id}.")
        old = self.get_group(gds.primary_id)

        def work() -> None:
            self._sentinels(old, False)  # first, or they would fail over a primary that turns replica
            self._lead(target)
            gds.primary_id = target.group_id
            gds.members = [target.group_id] + [m for m in gds.members if m != target.group_id]
            for m in self.global_members(gds)[1:]:
                self._follow(m, target)
            for m in self.global_members(gds):
                self.event(m.group_id, "replication-group",
                           f"Failover of Global datastore {gds.global_id} completed: {target.group_id} "
                           f"({target.region}) is the primary cluster")

        self._start(gds, "modifying", "failover", work)
        return gds

    def disassociate_global_group(self, gid: Any, group_id: Any, region: Any) -> GlobalDatastore:
        gds = self._created(self.get_global(gid))
        g = next((m for m in self.global_members(gds) if m.group_id == str(group_id or "").lower()), None)
        if g is None or g.region != region:
            raise invalid_combination(f"Replication group {group_id} in {region} is not a member of Global "
                                      f"datastore {gds.global_id}.")
        if g.group_id == gds.primary_id:
            raise invalid_value(f"Replication group {g.group_id} is the primary cluster of {gds.global_id}: "
                                "only a secondary cluster can be disassociated (fail over first, or delete the "
                                "global datastore).")

        def work() -> None:
            with self.lock:
                gds.members.remove(g.group_id)
                g.global_id = None
            self._lead(g)  # a standalone regional group again, writable, with the data it had
            self.event(g.group_id, "replication-group",
                       f"Replication group {g.group_id} removed from Global datastore {gds.global_id}")

        self._start(gds, "modifying", "disassociate", work)
        return gds

    def delete_global_group(self, gid: Any, retain_primary: bool) -> GlobalDatastore:
        gds = self._created(self.get_global(gid))
        if gds.status != "available" or gds.associating:
            raise invalid_state(gds)
        if len(gds.members) > 1:
            raise ApiError(f"Global datastore {gds.global_id} still has secondary clusters "
                           f"({', '.join(gds.members[1:])}): disassociate them first.",
                           "InvalidGlobalReplicationGroupState")
        primary = self.get_group(gds.primary_id)
        gds.status = "deleting"
        with self.lock:
            primary.global_id, primary.global_role = None, None
            self.global_groups.pop(gds.global_id, None)
        self.event(primary.group_id, "replication-group", f"Global datastore {gds.global_id} deleted")
        if not retain_primary:
            self.delete_replication_group(primary.group_id)
        return gds

    def modify_global_group(self, gid: Any, apply_immediately: bool, description: str | None = None,
                            node_type: str | None = None, engine_version: str | None = None,
                            automatic_failover: bool | None = None, param_group: str | None = None) -> GlobalDatastore:
        gds = self._created(self.get_global(gid))
        if gds.status != "available" or gds.associating:
            raise invalid_state(gds)
        if not apply_immediately:
            raise invalid_value("Modifications to global datastores cannot wait for the maintenance window: "
                                "set ApplyImmediately.")
        if node_type:
            self.check_node_type(node_type)
            check_node_type(node_type)
        if param_group:
            raise invalid_value("CacheParameterGroupName on a global datastore is not available on the local "
                                "endpoint: modify each member replication group instead.")
        if engine_version:
            gds.engine_version = self.check_engine_upgrade(gds.engine, gds.engine_version, engine_version)
        if description is not None:
            gds.description = description
        changes: dict[str, Any] = {}
        if node_type and node_type != gds.node_type:
            changes["CacheNodeType"] = node_type

        members = self.global_members(gds)
        for m in members:
            if automatic_failover is not None and m.global_role == "primary":  # checked now, applied by its group
                self.modify_replication_group(m.group_id, automatic_failover=automatic_failover)

        def work() -> None:
            for m in members:
                if automatic_failover is not None and m.global_role != "primary":
                    m.automatic_failover = bool(automatic_failover)  # Sentinels stay off while it follows
                if changes:
                    self._apply_group_changes(m, dict(changes))
            if changes:
                gds.node_type = node_type or gds.node_type
            deadline = time.monotonic() + 120
            while any(m.status == "modifying" for m in members) and time.monotonic() < deadline:
                time.sleep(0.05)  # the members' own modifications (automatic failover) finish first

        # modify-global-replication-group.rst answers "modifying"; available once every member has the change
        answer = dataclasses.replace(gds, status="modifying", members=list(gds.members),
                                     associating=set(gds.associating))
        self._start(gds, "modifying", "modify", work)
        return answer

    def resize_global_node_groups(self, gid: Any, action: str) -> GlobalDatastore:
        """Increase/decrease node groups and rebalance slots: cluster mode enabled global datastores only."""
        gds = self._created(self.get_global(gid))
        if gds.status != "available":
            raise invalid_state(gds)
        raise invalid_value(f"{action} applies to cluster mode enabled global datastores; {gds.global_id} is "
                            "cluster mode disabled (one node group).")

    # --- the lag -------------------------------------------------------------------------------------
    def replication_lag(self, gds: GlobalDatastore, g: ReplicationGroup) -> float | None:
        """Seconds the secondary g takes to hold what the primary's primary node held when asked."""
        try:
            primary = self.get_group(gds.primary_id)
            psvc, ssvc = self.group_service(primary), self.group_service(g)
            pconn = self._admin(primary, psvc, self._primary_node(primary))
            sconn = self._admin(g, ssvc, self._primary_node(g))
        except (*ops.ENGINE_ERRORS, ApiError, StopIteration):  # a group being replaced: no datum this period
            return None
        try:
            t0 = time.monotonic()
            target = int(pconn.info("replication").get("master_repl_offset", 0))
            while True:
                info = sconn.info("replication")
                if info.get("master_link_status") != "up":
                    down = float(info.get("master_link_down_since_seconds", -1))
                    return max(down, time.monotonic() - t0)
                if int(info.get("slave_repl_offset", 0)) >= target:
                    return time.monotonic() - t0
                if time.monotonic() - t0 > LAG_TIMEOUT:
                    return time.monotonic() - t0
                time.sleep(0.005)
        finally:
            pconn.close()
            sconn.close()

    def global_lag_rows(self) -> list[tuple[str, str, str, float]]:
        """(region, CacheClusterId, CacheNodeId, lag) for each secondary's primary node."""
        rows = []
        with self.lock:
            datastores = [d for d in self.global_groups.values() if d.status == "available"]
        for gds in datastores:
            for g in self.global_members(gds):
                if g.global_role != "secondary" or g.status != "available" or g.group_id in gds.associating:
                    continue
                lag = self.replication_lag(gds, g)
                svc = services.get(g.service_name)
                if lag is None or svc is None:
                    continue
                with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, KeyError, StopIteration):
                    member = g.member_ids[self._primary_node(g).name]
                    rows.append((g.region, member, "0001", lag))
        return rows
