"""Global datastores (global replication groups), and create-replication-group's --global-replication-group-id."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.global_datastore import GlobalDatastore
from helpers.aws.controlplane.responses import int_or_none, replication, tag_dict


def global_api(gds: GlobalDatastore, show_members: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "GlobalReplicationGroupId": gds.global_id, "GlobalReplicationGroupDescription": gds.description,
        "Status": gds.status, "CacheNodeType": gds.node_type, "Engine": gds.engine,
        "EngineVersion": gds.engine_version, "ClusterEnabled": False,
        "AuthTokenEnabled": bool(PLANE.groups.get(gds.primary_id) and PLANE.groups[gds.primary_id].auth_token),
        "TransitEncryptionEnabled": gds.tls, "AtRestEncryptionEnabled": gds.at_rest, "ARN": gds.arn}
    if show_members:
        out["Members"] = [
            {"ReplicationGroupId": g.group_id, "ReplicationGroupRegion": g.region,
             "Role": "PRIMARY" if g.group_id == gds.primary_id else "SECONDARY",
             "AutomaticFailover": "enabled" if g.automatic_failover else "disabled",
             "Status": "associating" if g.group_id in gds.associating else "associated"}
            for g in PLANE.global_members(gds)]
    return out


@honours(
    "GlobalReplicationGroupDescription", "GlobalReplicationGroupIdSuffix", "PrimaryReplicationGroupId", "Tags")
def create_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    tags = tag_dict(p)  # refused before the datastore is made
    gds = PLANE.create_global_group(p.get("GlobalReplicationGroupIdSuffix"), p.get("PrimaryReplicationGroupId"),
                                    p.get("GlobalReplicationGroupDescription"))
    PLANE.add_tags(gds.arn, tags)
    return global_api(gds)


@honours("GlobalReplicationGroupId", "ShowMemberInfo")
def describe_global_replication_groups(p: dict[str, Any]) -> list[dict[str, Any]]:
    show = bool(p.get("ShowMemberInfo"))
    return [global_api(g, show) for g in PLANE.describe_global_groups(p.get("GlobalReplicationGroupId"))]


@honours(
    "ApplyImmediately", "AutomaticFailoverEnabled", "CacheNodeType", "CacheParameterGroupName", "EngineVersion", "GlobalReplicationGroupDescription", "GlobalReplicationGroupId")
def modify_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return global_api(PLANE.modify_global_group(
        p.get("GlobalReplicationGroupId"), bool(p.get("ApplyImmediately")),
        description=p.get("GlobalReplicationGroupDescription"), node_type=p.get("CacheNodeType"),
        engine_version=p.get("EngineVersion"), automatic_failover=p.get("AutomaticFailoverEnabled"),
        param_group=p.get("CacheParameterGroupName")))


@honours("GlobalReplicationGroupId", "PrimaryRegion", "PrimaryReplicationGroupId")
def failover_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return global_api(PLANE.failover_global_group(p.get("GlobalReplicationGroupId"), p.get("PrimaryRegion"),
                                                  p.get("PrimaryReplicationGroupId")))


@honours("GlobalReplicationGroupId", "ReplicationGroupId", "ReplicationGroupRegion")
def disassociate_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    gid, group_id, region = p.get("GlobalReplicationGroupId"), p.get("ReplicationGroupId"), p.get("ReplicationGroupRegion")
    before = global_api(PLANE.get_global(gid))["Members"]
    out = global_api(PLANE.disassociate_global_group(gid, group_id, region))
    # AWS answers with the members as they were, the datastore `modifying` (disassociate-...rst)
    out["Members"] = before
    return out


@honours("GlobalReplicationGroupId", "RetainPrimaryReplicationGroup")
def delete_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    gid, retain = p.get("GlobalReplicationGroupId"), bool(p.get("RetainPrimaryReplicationGroup"))
    before = global_api(PLANE.get_global(gid))["Members"]
    out = global_api(PLANE.delete_global_group(gid, retain), show_members=False)
    out["Members"] = before  # the primary, still `associated`, with the datastore `deleting` (delete-...rst)
    return out


@honours("GlobalReplicationGroupId")
def increase_node_groups_in_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return global_api(PLANE.resize_global_node_groups(p.get("GlobalReplicationGroupId"),
                                                      "IncreaseNodeGroupsInGlobalReplicationGroup"))


@honours("GlobalReplicationGroupId")
def decrease_node_groups_in_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return global_api(PLANE.resize_global_node_groups(p.get("GlobalReplicationGroupId"),
                                                      "DecreaseNodeGroupsInGlobalReplicationGroup"))


@honours("GlobalReplicationGroupId")
def rebalance_slots_in_global_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    return global_api(PLANE.resize_global_node_groups(p.get("GlobalReplicationGroupId"),
                                                      "RebalanceSlotsInGlobalReplicationGroup"))


@honours(
    "AtRestEncryptionEnabled", "AuthToken", "AutomaticFailoverEnabled", "CacheNodeType",
    "CacheParameterGroupName", "CacheSubnetGroupName", "ClusterMode", "Durability", "Engine", "EngineVersion",
    "GlobalReplicationGroupId", "LogDeliveryConfigurations", "MultiAZEnabled", "NodeGroupConfiguration", "NumCacheClusters", "NumNodeGroups", "PreferredCacheClusterAZs",
    "PreferredMaintenanceWindow", "ReplicasPerNodeGroup", "ReplicationGroupDescription", "ReplicationGroupId",
    "SecurityGroupIds", "SnapshotArns", "SnapshotName", "SnapshotRetentionLimit", "SnapshotWindow", "Tags",
    "TransitEncryptionEnabled", "TransitEncryptionMode", "UserGroupIds")
def create_replication_group(p: dict[str, Any]) -> dict[str, Any]:
    """create-replication-group; with GlobalReplicationGroupId, a secondary cluster of that global datastore
    (engine, version, node type and encryption come from it)."""
    gid = p.get("GlobalReplicationGroupId")
    if not gid:
        return replication.create_replication_group(p)
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
    out = replication.create_replication_group(q)
    g = PLANE.get_group(out["ReplicationGroupId"])
    PLANE.join_as_secondary(gds, g)
    return {**out, "GlobalReplicationGroupInfo": {"GlobalReplicationGroupId": gds.global_id,
                                                  "GlobalReplicationGroupMemberRole": "SECONDARY"}}
