"""Replication groups, their member clusters, failover and scaling."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.logdelivery import shown as shown_logs
from helpers.aws.controlplane.models.replication_record import Member, ReplicationGroup
from helpers.aws.controlplane.responses import int_or_none, tag_dict


def parameter_status(name: str, pending_reboot: bool, node_ids: list[str]) -> dict[str, Any]:
    """A cluster's CacheParameterGroup: pending-reboot (with the nodes to reboot) until its nodes restart."""
    return {"CacheParameterGroupName": name, "ParameterApplyStatus": "pending-reboot" if pending_reboot else "in-sync",
            "CacheNodeIdsToReboot": list(node_ids) if pending_reboot else []}


# What every cache cluster of the AWS CLI's examples answers (create-, describe-, reboot-cache-cluster.rst).
CLIENT_DOWNLOAD_PAGE = "https://console.aws.amazon.com/elasticache/home#client-download:"


def member_api(m: Member, show_nodes: bool) -> dict[str, Any]:
    """A member of a replication group, as DescribeCacheClusters shows it."""
    g, n = m.group, m.node
    status = "available" if n.alive() else "failed"
    if n.name in g.recovering and n.alive():
        status = "modifying"  # replaced, resyncing from the primary
    if n.name in g.rebooting:
        status = "rebooting cache cluster nodes"  # reboot-cache-cluster.rst's CacheClusterStatus
    out: dict[str, Any] = {
        "CacheClusterId": m.cluster_id, "CacheNodeType": g.node_type, "Engine": g.engine,
        "EngineVersion": g.engine_version, "CacheClusterStatus": status,
        "NumCacheNodes": 1, "PreferredAvailabilityZone": m.az, "CacheClusterCreateTime": g.created,
        "PreferredMaintenanceWindow": g.maintenance_window,
        "PendingModifiedValues": {k: v for k, v in g.pending.items() if v is not None and k in (
            "CacheNodeType", "EngineVersion", "TransitEncryptionEnabled", "TransitEncryptionMode")},
        "CacheSecurityGroups": [],
        "CacheParameterGroup": parameter_status(g.param_group, g.params_pending_reboot, ["0001"]),
        "ReplicationGroupId": g.group_id, "SnapshotRetentionLimit": g.snapshot_retention,
        "AuthTokenEnabled": bool(g.auth_token), "TransitEncryptionEnabled": transit_mode(g) is not None,
        "AtRestEncryptionEnabled": g.at_rest_encryption, "ARN": m.arn,
        "SecurityGroups": [{"SecurityGroupId": s, "Status": "active"} for s in g.security_group_ids],
        "ReplicationGroupLogDeliveryEnabled": any(c.get("Status") == "active" for c in g.log_delivery),
        "LogDeliveryConfigurations": shown_logs(g.log_delivery), "NetworkType": "ipv4", "IpDiscovery": "ipv4",
        "AutoMinorVersionUpgrade": True, "ClientDownloadLandingPage": CLIENT_DOWNLOAD_PAGE}
    if g.snapshot_window:
        out["SnapshotWindow"] = g.snapshot_window
    if transit_mode(g):
        out["TransitEncryptionMode"] = transit_mode(g)
    if g.subnet_group:  # reboot-cache-cluster.rst shows a member's CacheSubnetGroupName and SecurityGroups
        out["CacheSubnetGroupName"] = g.subnet_group
    if show_nodes:
        out["CacheNodes"] = [{"CacheNodeId": "0001", "CacheNodeStatus": status,
                              "CacheNodeCreateTime": g.created, "Endpoint": {"Address": n.host, "Port": n.port},
                              "ParameterGroupStatus": "pending-reboot" if g.params_pending_reboot else "in-sync",
                              "CustomerAvailabilityZone": m.az}]
    return out


def _slot_ranges(slots: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5", as NodeGroups' Slots shows them."""
    ranges, start = [], None
    for i, s in enumerate(slots):
        if start is None:
            start = s
        if i + 1 == len(slots) or slots[i + 1] != s + 1:
            ranges.append(f"{start}-{s}" if s != start else str(s))
            start = None
    return ",".join(ranges)


def _endpoint(m: Member) -> dict[str, Any]:
    return {"Address": m.node.host, "Port": m.node.port}


def _stable(g: ReplicationGroup, kind: str) -> dict[str, Any]:
    fwd = g.endpoints[kind]
    return {"Address": fwd.host, "Port": fwd.port}


def planned_members(g: ReplicationGroup) -> list[str]:
    """The member clusters a group being created will have, named as AWS names them at once in the create
    answer (create-replication-group.rst: "MemberClusters": ["mygroup-001"] while "Status": "creating")."""
    if g.status != "creating":
        return []
    per_group = range(1, g.replicas + 2)
    if g.cluster_mode:
        return [f"{g.group_id}-{ng:04d}-{i:03d}" for ng in range(1, g.shards + 1) for i in per_group]
    return [f"{g.group_id}-{i:03d}" for i in per_group]


def group_api(g: ReplicationGroup, members: list[Member] | None = None) -> dict[str, Any]:
    """The group with its node groups, endpoints and roles (`members`: the live ones unless given).

    The status shown is the one the members were read with (group_view): a status read afterwards could
    be that of an operation that ended meanwhile, with the members from before it."""
    if members is None:
        status, members = PLANE.group_view(g)
    else:
        status = g.status
    node_groups: list[dict[str, Any]] = []
    for ng in sorted({m.node_group for m in members}) or (["0001"] if not g.cluster_mode else []):
        mine = [m for m in members if m.node_group == ng]
        item: dict[str, Any] = {"NodeGroupId": ng, "Status": status,
                                "NodeGroupMembers": []}
        for m in mine:
            member: dict[str, Any] = {"CacheClusterId": m.cluster_id, "CacheNodeId": "0001",
                                      "PreferredAvailabilityZone": m.az}
            if not g.cluster_mode:
                member["ReadEndpoint"] = _endpoint(m)
                member["CurrentRole"] = m.role
            item["NodeGroupMembers"].append(member)
        primary = next((m for m in mine if m.role == "primary"), None)
        replicas = [m for m in mine if m.role == "replica"]
        if not g.cluster_mode and {"primary", "reader"} <= g.endpoints.keys():  # both open (open_endpoints)
            # AWS: DNS names that follow failovers; locally loopback forwarders (endpoints.py)
            item["PrimaryEndpoint"] = _stable(g, "primary")
            item["ReaderEndpoint"] = _stable(g, "reader")
        elif not g.cluster_mode and primary:
            item["PrimaryEndpoint"] = _endpoint(primary)
            item["ReaderEndpoint"] = _endpoint((replicas or [primary])[0])
        if g.cluster_mode and primary:
            item["Slots"] = _slot_ranges(PLANE.slots_of(g, primary.node))
        node_groups.append(item)
    out: dict[str, Any] = {
        "ReplicationGroupId": g.group_id, "Description": g.description, "Status": status,
        "PendingModifiedValues": pending_api(g),
        "MemberClusters": [m.cluster_id for m in members] or planned_members(g),
        "NodeGroups": node_groups, "AutomaticFailover": "enabled" if g.automatic_failover else "disabled",
        "MultiAZ": "enabled" if g.multi_az else "disabled", "SnapshotRetentionLimit": g.snapshot_retention,
        "SnapshotWindow": g.snapshot_window, "ClusterEnabled": g.cluster_mode, "CacheNodeType": g.node_type,
        "AuthTokenEnabled": bool(g.auth_token), "TransitEncryptionEnabled": transit_mode(g) is not None,
        "AtRestEncryptionEnabled": g.at_rest_encryption, "ARN": g.arn,
        "UserGroupIds": list(g.user_group_ids), "LogDeliveryConfigurations": shown_logs(g.log_delivery),
        "ReplicationGroupCreateTime": g.created, "DataTiering": "disabled", "NetworkType": "ipv4",
        "IpDiscovery": "ipv4", "ClusterMode": "enabled" if g.cluster_mode else "disabled", "Engine": g.engine}
    if g.durability is not None or g.effective_durability != "disabled":
        out["Durability"] = g.durability or g.effective_durability
        out["EffectiveDurability"] = g.effective_durability
    if g.global_id:
        out["GlobalReplicationGroupInfo"] = {"GlobalReplicationGroupId": g.global_id,
                                             "GlobalReplicationGroupMemberRole": str(g.global_role).upper()}
    if transit_mode(g):
        out["TransitEncryptionMode"] = transit_mode(g)
    if g.snapshot_retention and members:
        out["SnapshottingClusterId"] = members[-1].cluster_id
    if g.cluster_mode and "configuration" in g.endpoints:
        # AWS: a DNS name over all nodes; any node of a Redis Cluster serves as entry point.
        out["ConfigurationEndpoint"] = _stable(g, "configuration")
    elif g.cluster_mode and members:
        out["ConfigurationEndpoint"] = _endpoint(members[0])
    return out


def pending_api(g: ReplicationGroup) -> dict[str, Any]:
    """ReplicationGroupPendingModifiedValues while resharding or changing in-transit encryption (a pending
    node type or engine version shows on the member clusters' PendingModifiedValues, as on AWS)."""
    out: dict[str, Any] = {"Resharding": {"SlotMigration": {"ProgressPercentage": 0.0}}} if g.resharding else {}
    for key in ("TransitEncryptionEnabled", "TransitEncryptionMode"):
        if g.pending.get(key) is not None:
            out[key] = g.pending[key]
    changing = [c for c in g.log_delivery if c.get("Status") in ("enabling", "modifying") and g.status != "creating"]
    if changing:  # PendingLogDeliveryConfiguration
        keys = ("LogType", "DestinationType", "DestinationDetails", "LogFormat")
        out["LogDeliveryConfigurations"] = [{k: c[k] for k in keys if k in c} for c in changing]
    return out


def transit_mode(g: ReplicationGroup) -> str | None:
    """TransitEncryptionMode as describe shows it (None: in-transit encryption disabled)."""
    return g.transit_mode or ("required" if g.tls else None)


def check_create_modes(p: dict[str, Any]) -> None:
    """TransitEncryptionMode (preferred or required, with TransitEncryptionEnabled) and ClusterMode as far as the
    local engines carry them: a group is cluster mode enabled or disabled, never compatible (both at once)."""
    from helpers.aws.controlplane.errors import invalid_combination, invalid_value

    mode = p.get("TransitEncryptionMode")
    if mode is not None and str(mode) not in ("preferred", "required"):
        raise invalid_value(f"Invalid value for TransitEncryptionMode: {mode}. Valid values: preferred, required.")
    if mode is not None and not p.get("TransitEncryptionEnabled"):
        raise invalid_combination("TransitEncryptionMode requires TransitEncryptionEnabled=true.")
    if str(p.get("ClusterMode") or "").lower() == "compatible":
        raise invalid_value(CLUSTER_COMPATIBLE)


CLUSTER_COMPATIBLE = ("ClusterMode compatible (cluster-mode clients and plain ones at once, before a migration to "
                      "enabled) is not modelled on the local endpoint: give enabled or disabled.")


def _create_group(p: dict[str, Any]) -> dict[str, Any]:
    check_create_modes(p)
    return group_api(PLANE.create_replication_group(
        p.get("ReplicationGroupId"), p.get("ReplicationGroupDescription"), engine=p.get("Engine"),
        engine_version=p.get("EngineVersion"), node_type=p.get("CacheNodeType"), cluster_mode=p.get("ClusterMode"),
        param_group=p.get("CacheParameterGroupName"), num_node_groups=int_or_none(p.get("NumNodeGroups")),
        configured_node_groups=len(p.get("NodeGroupConfiguration") or []),
        num_cache_clusters=int_or_none(p.get("NumCacheClusters")),
        replicas_per_node_group=int_or_none(p.get("ReplicasPerNodeGroup")),
        automatic_failover=p.get("AutomaticFailoverEnabled"), multi_az=p.get("MultiAZEnabled"),
        tls=bool(p.get("TransitEncryptionEnabled")), auth_token=p.get("AuthToken"),
        user_group_ids=list(p.get("UserGroupIds") or []), subnet_group=p.get("CacheSubnetGroupName"),
        snapshot_name=p.get("SnapshotName"), security_group_ids=list(p.get("SecurityGroupIds") or []),
        snapshot_retention=int(p.get("SnapshotRetentionLimit") or 0), snapshot_window=p.get("SnapshotWindow"),
        tags=tag_dict(p), at_rest_encryption=bool(p.get("AtRestEncryptionEnabled")),
        preferred_azs=list(p.get("PreferredCacheClusterAZs") or []), snapshot_arns=list(p.get("SnapshotArns") or []),
        maintenance_window=p.get("PreferredMaintenanceWindow"), durability=p.get("Durability"),
        transit_mode=p.get("TransitEncryptionMode"), log_delivery=p.get("LogDeliveryConfigurations")))


@honours(
    "AtRestEncryptionEnabled", "AuthToken", "AutomaticFailoverEnabled", "CacheNodeType",
    "CacheParameterGroupName", "CacheSubnetGroupName", "ClusterMode", "Durability", "Engine", "EngineVersion",
    "GlobalReplicationGroupId", "LogDeliveryConfigurations", "MultiAZEnabled", "NodeGroupConfiguration", "NumCacheClusters", "NumNodeGroups", "PreferredCacheClusterAZs",
    "PreferredMaintenanceWindow", "ReplicasPerNodeGroup", "ReplicationGroupDescription", "ReplicationGroupId",
    "SecurityGroupIds", "SnapshotArns", "SnapshotName", "SnapshotRetentionLimit", "SnapshotWindow", "Tags",
    "TransitEncryptionEnabled", "TransitEncryptionMode", "UserGroupIds")
def create_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    """create-replication-group; with GlobalReplicationGroupId, a secondary cluster of that global datastore
    (engine, version, node type and encryption come from it, models/global_datastore.py)."""
    gid = p.get("GlobalReplicationGroupId")
    if not gid:
        return _create_group(p)
    clustered = bool(p.get("NumNodeGroups") or p.get("NodeGroupConfiguration")
                     or str(p.get("ClusterMode") or "").lower() == "enabled")
    gds = PLANE.check_secondary(gid, p.get("CacheNodeType"), p.get("Engine"), p.get("EngineVersion"), clustered,
                                bool(p.get("AuthToken")), bool(p.get("UserGroupIds")))
    primary = PLANE.get_group(gds.primary_id)
    q = {**p, "AuthToken": p.get("AuthToken") or primary.auth_token, "Engine": gds.engine, "CacheNodeType": gds.node_type, "EngineVersion": None,
         "TransitEncryptionEnabled": gds.tls, "AtRestEncryptionEnabled": gds.at_rest,
         "AutomaticFailoverEnabled": p.get("AutomaticFailoverEnabled", primary.automatic_failover),
         "MultiAZEnabled": p.get("MultiAZEnabled", primary.multi_az)}
    if int_or_none(q.get("NumCacheClusters")) is None and q.get("ReplicasPerNodeGroup") is None:
        q["NumCacheClusters"] = primary.replicas + 1
    out = _create_group(q)
    g = PLANE.get_group(out["ReplicationGroupId"])
    PLANE.join_as_secondary(gds, g)
    return {**out, "GlobalReplicationGroupInfo": {"GlobalReplicationGroupId": gds.global_id,
                                                  "GlobalReplicationGroupMemberRole": "SECONDARY"}}


@honours("ReplicationGroupId")
def describe_replication_groups(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [group_api(g) for g in PLANE.describe_replication_groups(p.get("ReplicationGroupId"))]


@honours(
    "ApplyImmediately", "AuthToken", "AuthTokenUpdateStrategy", "AutomaticFailoverEnabled", "CacheNodeType",
    "CacheParameterGroupName", "Durability", "Engine", "EngineVersion", "MultiAZEnabled", "PreferredMaintenanceWindow",
    "PrimaryClusterId", "RemoveUserGroups", "ReplicationGroupDescription", "ReplicationGroupId",
    "SecurityGroupIds", "SnapshotRetentionLimit", "SnapshotWindow", "TransitEncryptionEnabled",
    "TransitEncryptionMode", "UserGroupIdsToAdd", "UserGroupIdsToRemove", "LogDeliveryConfigurations")
def modify_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    sgs = None if p.get("SecurityGroupIds") is None else list(p["SecurityGroupIds"])
    return group_api(PLANE.modify_replication_group(
        p.get("ReplicationGroupId"), description=p.get("ReplicationGroupDescription"),
        snapshot_retention=int_or_none(p.get("SnapshotRetentionLimit")), snapshot_window=p.get("SnapshotWindow"),
        node_type=p.get("CacheNodeType"), automatic_failover=p.get("AutomaticFailoverEnabled"),
        multi_az=p.get("MultiAZEnabled"), param_group=p.get("CacheParameterGroupName"),
        add_user_groups=list(p.get("UserGroupIdsToAdd") or []),
        remove_user_groups=list(p.get("UserGroupIdsToRemove") or []), auth_token=p.get("AuthToken"),
        auth_token_strategy=p.get("AuthTokenUpdateStrategy"), engine_version=p.get("EngineVersion"),
        apply_immediately=bool(p.get("ApplyImmediately")), security_group_ids=sgs,
        maintenance_window=p.get("PreferredMaintenanceWindow"),
        remove_all_user_groups=bool(p.get("RemoveUserGroups")), engine=p.get("Engine"),
        durability=p.get("Durability"), primary_cluster_id=p.get("PrimaryClusterId"),
        transit_enabled=p.get("TransitEncryptionEnabled"), transit_mode=p.get("TransitEncryptionMode"),
        log_delivery=p.get("LogDeliveryConfigurations")))


@honours("FinalSnapshotIdentifier", "ReplicationGroupId", "RetainPrimaryCluster")
def delete_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return group_api(*PLANE.delete_replication_group(
        p.get("ReplicationGroupId"), retain_primary_cluster=bool(p.get("RetainPrimaryCluster")),
        final_snapshot=p.get("FinalSnapshotIdentifier")))


@honours("NodeGroupId", "ReplicationGroupId")
def test_failover(p: dict[str, Any]) -> dict[str, Any]:
    return group_api(PLANE.test_failover(p.get("ReplicationGroupId"), p.get("NodeGroupId")))


def _replica_count(p: dict[str, Any], increase: bool) -> dict[str, Any]:
    target = int_or_none(p.get("NewReplicaCount"))
    g = PLANE.change_replica_count(
        p.get("ReplicationGroupId"), increase, target,
        apply_immediately=bool(p.get("ApplyImmediately")), replicas_to_remove=list(p.get("ReplicasToRemove") or []))
    out = group_api(g)
    if increase and target is not None and not g.cluster_mode:
        # AWS lists the member clusters being added at once (increase-replica-count.rst: my-cluster-004 while
        # the group is modifying); they take the first free <group>-NNN ids, as the new nodes will.
        members = list(out["MemberClusters"])
        fresh = (f"{g.group_id}-{i:03d}" for i in range(1, 1000) if f"{g.group_id}-{i:03d}" not in members)
        while len(members) < target + 1:
            members.append(next(fresh))
        out["MemberClusters"] = members
    return out


@honours("ApplyImmediately", "NewReplicaCount", "ReplicationGroupId")
def increase_replica_count(p: dict[str, Any]) -> dict[str, Any]:
    return _replica_count(p, True)


@honours("ApplyImmediately", "NewReplicaCount", "ReplicasToRemove", "ReplicationGroupId")
def decrease_replica_count(p: dict[str, Any]) -> dict[str, Any]:
    return _replica_count(p, False)


@honours("ApplyImmediately", "NodeGroupCount", "NodeGroupsToRemove", "NodeGroupsToRetain", "ReplicationGroupId")
def modify_replication_group_shard_configuration(p: dict[str, Any]) -> dict[str, Any]:
    out = group_api(PLANE.modify_shards(
        p.get("ReplicationGroupId"), int_or_none(p.get("NodeGroupCount")), apply_immediately=bool(p.get("ApplyImmediately")),
        to_remove=list(p.get("NodeGroupsToRemove") or []), to_retain=list(p.get("NodeGroupsToRetain") or [])))
    # The answer is the group as the request left it: modifying, no slot moved yet, so no Resharding progress
    # (modify-replication-group-shard-configuration.rst: "PendingModifiedValues": {}); describe shows it
    # while the slots move.
    out["PendingModifiedValues"].pop("Resharding", None)
    return out


@honours("CustomerNodeEndpointList", "ReplicationGroupId")
def start_migration(p: dict[str, Any]) -> dict[str, Any]:
    """The group's primary node becomes a replica of the self-hosted server (models/migration.py); the answer
    shows the group as the call leaves it, `modifying` (start-migration.rst), `migrating` once in sync."""
    endpoints = [dict(e) for e in p.get("CustomerNodeEndpointList") or []]
    g = PLANE.start_migration(p.get("ReplicationGroupId"), endpoints)
    return {**group_api(g), "Status": "modifying"}


@honours("Force", "ReplicationGroupId")
def complete_migration(p: dict[str, Any]) -> dict[str, Any]:
    """The primary node stops replicating from the self-hosted server and leads again (`available`)."""
    force = bool(p.get("Force"))
    return group_api(PLANE.complete_migration(p.get("ReplicationGroupId"), force))
