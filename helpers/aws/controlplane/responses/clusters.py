"""Cache clusters (standalone ones, and the members of replication groups as DescribeCacheClusters lists them)."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.logdelivery import shown as shown_logs
from helpers.aws.controlplane.models.replication_record import Member
from helpers.aws.controlplane.responses import int_or_none, tag_dict
from helpers.aws.controlplane.responses.replication import CLIENT_DOWNLOAD_PAGE, member_api, parameter_status


def cluster_api(cc: CacheCluster, show_nodes: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CacheClusterId": cc.cluster_id, "CacheNodeType": cc.node_type, "Engine": cc.engine,
        "EngineVersion": cc.engine_version, "CacheClusterStatus": cc.status, "NumCacheNodes": len(cc.nodes),
        "PreferredAvailabilityZone": cc.az, "CacheClusterCreateTime": cc.created,
        "PreferredMaintenanceWindow": cc.maintenance_window, "PendingModifiedValues": dict(cc.pending),
        "CacheSecurityGroups": [],
        "CacheParameterGroup": parameter_status(cc.param_group, cc.params_pending_reboot,
                                                [n["id"] for n in cc.nodes]),
        "SecurityGroups": [{"SecurityGroupId": s, "Status": "active"} for s in cc.security_group_ids],
        "AutoMinorVersionUpgrade": True, "AuthTokenEnabled": bool(cc.auth_token),
        "TransitEncryptionEnabled": cc.tls, "AtRestEncryptionEnabled": cc.at_rest_encryption, "ARN": cc.arn,
        "ReplicationGroupLogDeliveryEnabled": False, "LogDeliveryConfigurations": shown_logs(cc.log_delivery),
        "NetworkType": "ipv4",
        "IpDiscovery": "ipv4", "ClientDownloadLandingPage": CLIENT_DOWNLOAD_PAGE,
    }
    if cc.subnet_group:
        out["CacheSubnetGroupName"] = cc.subnet_group
    if cc.engine != "memcached":
        out["SnapshotRetentionLimit"] = cc.snapshot_retention
        out["SnapshotWindow"] = cc.snapshot_window
    if cc.tls:
        out["TransitEncryptionMode"] = "required"
    if cc.engine == "memcached":
        if cc.discovery is not None:  # answers `config get cluster`; other commands reach node 0001
            out["ConfigurationEndpoint"] = {"Address": cc.discovery.host, "Port": cc.discovery.port}
    if show_nodes:
        out["CacheNodes"] = []
        for n in list(cc.nodes):
            item: dict[str, Any] = {"CacheNodeId": n["id"], "CacheNodeStatus": n["status"],
                                    "CacheNodeCreateTime": n["created"],
                                    "ParameterGroupStatus": "pending-reboot" if cc.params_pending_reboot else "in-sync",
                                    "CustomerAvailabilityZone": cc.az}
            ep = PLANE.node_endpoint(cc, n)
            if ep:
                item["Endpoint"] = {"Address": ep[0], "Port": ep[1]}
            out["CacheNodes"].append(item)
    return out


def _api(item: CacheCluster | Member, show_nodes: bool) -> dict[str, Any]:
    return member_api(item, show_nodes) if isinstance(item, Member) else cluster_api(item, show_nodes)


@honours(
    "AuthToken", "CacheClusterId", "CacheNodeType", "CacheParameterGroupName",
    "CacheSubnetGroupName", "Engine", "EngineVersion", "LogDeliveryConfigurations", "NumCacheNodes", "Port",
    "PreferredAvailabilityZone", "PreferredMaintenanceWindow",
    "ReplicationGroupId", "SecurityGroupIds", "SnapshotArns", "SnapshotName", "SnapshotRetentionLimit",
    "SnapshotWindow", "Tags", "TransitEncryptionEnabled")
def create_cache_cluster(p: dict[str, Any]) -> dict[str, Any]:
    return cluster_api(PLANE.create_cache_cluster(
        p.get("CacheClusterId"), p.get("CacheNodeType"), engine=p.get("Engine"),
        engine_version=p.get("EngineVersion"), num_nodes=int_or_none(p.get("NumCacheNodes")),
        replication_group_id=p.get("ReplicationGroupId"), auth_token=p.get("AuthToken"),
        tls=bool(p.get("TransitEncryptionEnabled")), snapshot_name=p.get("SnapshotName"),
        snapshot_arns=list(p.get("SnapshotArns") or []), param_group=p.get("CacheParameterGroupName"),
        subnet_group=p.get("CacheSubnetGroupName"), az=p.get("PreferredAvailabilityZone"),
        security_group_ids=list(p.get("SecurityGroupIds") or []),
        snapshot_retention=int(p.get("SnapshotRetentionLimit") or 0), snapshot_window=p.get("SnapshotWindow"),
        maintenance_window=p.get("PreferredMaintenanceWindow"), tags=tag_dict(p), port=p.get("Port"),
        log_delivery=p.get("LogDeliveryConfigurations")))


@honours("CacheClusterId", "ShowCacheClustersNotInReplicationGroups", "ShowCacheNodeInfo")
def describe_cache_clusters(p: dict[str, Any]) -> list[dict[str, Any]]:
    show = bool(p.get("ShowCacheNodeInfo"))
    items = PLANE.describe_cache_clusters(
        p.get("CacheClusterId"), only_not_in_groups=bool(p.get("ShowCacheClustersNotInReplicationGroups")))
    return [_api(item, show) for item in items]


@honours(
    "AZMode", "ApplyImmediately", "AuthToken", "AuthTokenUpdateStrategy", "CacheClusterId", "CacheNodeIdsToRemove", "CacheNodeType", "CacheParameterGroupName", "Engine",
    "EngineVersion", "LogDeliveryConfigurations", "NewAvailabilityZones", "NumCacheNodes",
    "PreferredMaintenanceWindow", "SecurityGroupIds", "SnapshotRetentionLimit", "SnapshotWindow")
def modify_cache_cluster(p: dict[str, Any]) -> dict[str, Any]:
    sgs = p.get("SecurityGroupIds")
    return cluster_api(PLANE.modify_cache_cluster(
        p.get("CacheClusterId"), num_nodes=int_or_none(p.get("NumCacheNodes")),
        node_ids_to_remove=list(p.get("CacheNodeIdsToRemove") or []), param_group=p.get("CacheParameterGroupName"),
        auth_token=p.get("AuthToken"), auth_token_strategy=p.get("AuthTokenUpdateStrategy"),
        snapshot_retention=int_or_none(p.get("SnapshotRetentionLimit")), snapshot_window=p.get("SnapshotWindow"),
        maintenance_window=p.get("PreferredMaintenanceWindow"),
        security_group_ids=None if sgs is None else list(sgs), node_type=p.get("CacheNodeType"),
        engine_version=p.get("EngineVersion"), apply_immediately=bool(p.get("ApplyImmediately")),
        az_mode=p.get("AZMode"), new_azs=list(p.get("NewAvailabilityZones") or []), engine=p.get("Engine"),
        log_delivery=p.get("LogDeliveryConfigurations")))


@honours("CacheClusterId", "CacheNodeIdsToReboot")
def reboot_cache_cluster(p: dict[str, Any]) -> dict[str, Any]:
    return _api(PLANE.reboot_cache_cluster(p.get("CacheClusterId"), list(p.get("CacheNodeIdsToReboot") or [])),
                False)


@honours("CacheClusterId", "FinalSnapshotIdentifier")
def delete_cache_cluster(p: dict[str, Any]) -> dict[str, Any]:
    cluster_id, final = p.get("CacheClusterId"), p.get("FinalSnapshotIdentifier")
    replica = PLANE.delete_member_replica(cluster_id) if not final else None
    if replica is not None:  # a replica of a replication group goes, as with decrease-replica-count
        return {**member_api(replica, show_nodes=False), "CacheClusterStatus": "deleting"}
    return cluster_api(PLANE.delete_cache_cluster(cluster_id, final))
