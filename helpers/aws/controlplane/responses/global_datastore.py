"""Global datastores (global replication groups)."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.global_datastore import GlobalDatastore
from helpers.aws.controlplane.responses import tag_dict


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
