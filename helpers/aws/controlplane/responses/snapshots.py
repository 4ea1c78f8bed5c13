"""Snapshots."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.clusters import subnet_group_vpc
from helpers.aws.controlplane.models.snapshots import NodeSnapshot, Snapshot
from helpers.aws.controlplane.responses import tag_dict


def _size(n: int | None) -> str:
    """CacheSize as AWS writes it: whole megabytes ("5 MB" in describe-snapshots.rst), "" while the
    snapshot is being taken (create-snapshot.rst)."""
    return "" if n is None else f"{round(n / 1024 / 1024)} MB"


def _network(subnet_group: str | None) -> dict[str, Any]:
    """CacheSubnetGroupName and VpcId, as describe-snapshots.rst shows them."""
    if not subnet_group:
        return {}
    out = {"CacheSubnetGroupName": subnet_group}
    vpc = subnet_group_vpc(subnet_group)
    if vpc:
        out["VpcId"] = vpc
    return out


def _source(s: Snapshot) -> dict[str, Any]:
    """What describe shows of the cluster or group the snapshot was taken from."""
    if s.group is not None:
        g = s.group
        return {"ReplicationGroupId": g.group_id, "ReplicationGroupDescription": g.description,
                "CacheNodeType": g.node_type, "Engine": g.engine, "EngineVersion": g.engine_version,
                "Port": 6379, "CacheParameterGroupName": g.param_group, "AutoMinorVersionUpgrade": True,
                "SnapshotRetentionLimit": g.snapshot_retention, "SnapshotWindow": g.snapshot_window,
                "NumNodeGroups": g.shards, "AutomaticFailover": "enabled" if g.automatic_failover else "disabled",
                "DataTiering": "disabled", "PreferredMaintenanceWindow": g.maintenance_window,
                **_network(g.subnet_group)}
    cc = s.cluster
    if cc is None:
        return {}
    return {"CacheClusterId": cc.cluster_id, "CacheNodeType": cc.node_type, "Engine": cc.engine,
            "EngineVersion": cc.engine_version, "NumCacheNodes": 1, "PreferredAvailabilityZone": cc.az,
            "CacheClusterCreateTime": cc.created, "PreferredMaintenanceWindow": cc.maintenance_window,
            "Port": 6379, "CacheParameterGroupName": cc.param_group, "AutoMinorVersionUpgrade": True,
            "SnapshotRetentionLimit": cc.snapshot_retention, "SnapshotWindow": cc.snapshot_window,
            **_network(cc.subnet_group)}


def _node_snapshot_api(n: NodeSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if n.cluster_id:
        out.update(CacheClusterId=n.cluster_id, NodeGroupId=n.node_group_id)
    out.update(CacheNodeId=n.node_id, CacheSize=_size(n.size), CacheNodeCreateTime=n.node_created)
    if n.created is not None:  # not before it is taken (create-snapshot.rst)
        out["SnapshotCreateTime"] = n.created
    return out


def snapshot_api(s: Snapshot) -> dict[str, Any]:
    out = {"SnapshotName": s.name, "SnapshotStatus": s.status, "SnapshotSource": "manual", "ARN": s.arn,
           "NodeSnapshots": [_node_snapshot_api(n) for n in s.node_snapshots], **_source(s)}
    if s.group is not None and s.group.at_rest_encryption:  # its files are encrypted under this key
        from helpers.aws.controlplane import atrest

        out["KmsKeyId"] = atrest.key_arn()
    return out


@honours("CacheClusterId", "ReplicationGroupId", "SnapshotName", "Tags")
def create_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return snapshot_api(PLANE.create_snapshot(p.get("SnapshotName"), cluster_id=p.get("CacheClusterId"),
                                              group_id=p.get("ReplicationGroupId"), tags=tag_dict(p)))


@honours("CacheClusterId", "ReplicationGroupId", "SnapshotName", "SnapshotSource")
def describe_snapshots(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [snapshot_api(s) for s in PLANE.describe_snapshots(
        p.get("SnapshotName"), cluster_id=p.get("CacheClusterId"), group_id=p.get("ReplicationGroupId"),
        source=p.get("SnapshotSource"))]


@honours("SnapshotName")
def delete_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return snapshot_api(PLANE.delete_snapshot(p.get("SnapshotName")))


@honours("SourceSnapshotName", "Tags", "TargetBucket", "TargetSnapshotName")
def copy_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return snapshot_api(PLANE.copy_snapshot(p.get("SourceSnapshotName"), p.get("TargetSnapshotName"),
                                            target_bucket=p.get("TargetBucket"), tags=tag_dict(p)))
