"""Serverless caches and serverless snapshots: requests in, AWS-shaped answers out."""

from __future__ import annotations

import base64
from typing import Any

from helpers.aws.controlplane.errors import invalid_value
from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.serverless import ServerlessCache, ServerlessSnapshot
from helpers.aws.controlplane.responses import tag_dict


def cache_api(sc: ServerlessCache) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ServerlessCacheName": sc.name, "Description": sc.description, "CreateTime": sc.created,
        "Status": sc.status, "Engine": sc.engine, "MajorEngineVersion": sc.major_version,
        "FullEngineVersion": sc.full_version, "SecurityGroupIds": list(sc.security_group_ids), "ARN": sc.arn,
        "SubnetIds": list(sc.subnet_ids), "SnapshotRetentionLimit": sc.snapshot_retention,
        "DailySnapshotTime": sc.daily_snapshot_time, "NetworkType": "ipv4"}
    if sc.limits:
        out["CacheUsageLimits"] = sc.limits
    if sc.kms_key_id:
        out["KmsKeyId"] = sc.kms_key_id
    if sc.user_group_id:
        out["UserGroupId"] = sc.user_group_id
    if sc.port and sc.status not in ("creating",):
        out["Endpoint"] = {"Address": "127.0.0.1", "Port": sc.port}
        if sc.reader_port:  # Valkey and Redis OSS only: a serverless Memcached cache has one endpoint
            out["ReaderEndpoint"] = {"Address": "127.0.0.1", "Port": sc.reader_port}
    return out


def snapshot_api(s: ServerlessSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ServerlessCacheSnapshotName": s.name, "ARN": s.arn, "SnapshotType": s.kind, "Status": s.status,
        "CreateTime": s.created, "BytesUsedForCache": str(s.size),
        "ServerlessCacheConfiguration": {"ServerlessCacheName": s.cache_name, "Engine": s.engine,
                                         "MajorEngineVersion": s.major_version}}
    if s.kms_key_id:
        out["KmsKeyId"] = s.kms_key_id
    expiry = PLANE.serverless_expiry(s)
    if expiry:
        out["ExpiryTime"] = expiry
    return out


def page(items: list[Any], params: dict[str, Any], default: int = 50, top: int = 100) -> tuple[list[Any], str | None]:
    """MaxResults/NextToken paging (the serverless actions page this way, not with Marker)."""
    raw = params.get("MaxResults")
    size = default if raw is None else int(raw)
    if not 1 <= size <= top:
        raise invalid_value(f"MaxResults must be between 1 and {top}.")
    start = 0
    token = params.get("NextToken")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(str(token).encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError):
            raise invalid_value(f"Invalid NextToken: {token}.") from None
    end = start + size
    nxt = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], nxt


@honours(
    "CacheUsageLimits", "DailySnapshotTime", "Description", "Engine", "KmsKeyId", "MajorEngineVersion",
    "SecurityGroupIds", "ServerlessCacheName", "SnapshotArnsToRestore",
    "SnapshotRetentionLimit", "SubnetIds", "Tags", "UserGroupId")
def create_serverless_cache(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCache": cache_api(PLANE.create_serverless_cache(
        p.get("ServerlessCacheName"), p.get("Engine"), major_version=p.get("MajorEngineVersion"),
        description=p.get("Description") or "", limits=p.get("CacheUsageLimits"),
        security_group_ids=p.get("SecurityGroupIds"), user_group_id=p.get("UserGroupId"),
        snapshot_retention=p.get("SnapshotRetentionLimit"), daily_snapshot_time=p.get("DailySnapshotTime"),
        kms_key_id=p.get("KmsKeyId"), subnet_ids=p.get("SubnetIds"), snapshot_arns=p.get("SnapshotArnsToRestore"),
        tags=tag_dict(p)))}


@honours("MaxResults", "NextToken", "ServerlessCacheName")
def describe_serverless_caches(p: dict[str, Any]) -> dict[str, Any]:
    items, nxt = page([cache_api(c) for c in PLANE.describe_serverless_caches(p.get("ServerlessCacheName"))], p)
    return {"ServerlessCaches": items, **({"NextToken": nxt} if nxt else {})}


@honours(
    "CacheUsageLimits", "DailySnapshotTime", "Description", "Engine", "MajorEngineVersion", "RemoveUserGroup",
    "SecurityGroupIds", "ServerlessCacheName", "SnapshotRetentionLimit", "UserGroupId")
def modify_serverless_cache(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCache": cache_api(PLANE.modify_serverless_cache(
        p.get("ServerlessCacheName"), description=p.get("Description"), limits=p.get("CacheUsageLimits"),
        remove_user_group=p.get("RemoveUserGroup"), user_group_id=p.get("UserGroupId"),
        security_group_ids=p.get("SecurityGroupIds"), snapshot_retention=p.get("SnapshotRetentionLimit"),
        daily_snapshot_time=p.get("DailySnapshotTime"), engine=p.get("Engine"),
        major_version=p.get("MajorEngineVersion")))}


@honours("FinalSnapshotName", "ServerlessCacheName")
def delete_serverless_cache(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCache": cache_api(PLANE.delete_serverless_cache(p.get("ServerlessCacheName"), p.get("FinalSnapshotName")))}


@honours("KmsKeyId", "ServerlessCacheName", "ServerlessCacheSnapshotName", "Tags")
def create_serverless_cache_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCacheSnapshot": snapshot_api(PLANE.create_serverless_snapshot(p.get("ServerlessCacheSnapshotName"),
                                                         p.get("ServerlessCacheName"), p.get("KmsKeyId"),
                                                         tag_dict(p)))}


@honours("MaxResults", "NextToken", "ServerlessCacheName", "ServerlessCacheSnapshotName", "SnapshotType")
def describe_serverless_cache_snapshots(p: dict[str, Any]) -> dict[str, Any]:
    snaps = PLANE.describe_serverless_snapshots(p.get("ServerlessCacheName"), p.get("ServerlessCacheSnapshotName"),
                                                p.get("SnapshotType"))
    items, nxt = page([snapshot_api(s) for s in snaps], p)
    return {"ServerlessCacheSnapshots": items, **({"NextToken": nxt} if nxt else {})}


@honours("ServerlessCacheSnapshotName")
def delete_serverless_cache_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCacheSnapshot": snapshot_api(PLANE.delete_serverless_snapshot(p.get("ServerlessCacheSnapshotName")))}


@honours("KmsKeyId", "SourceServerlessCacheSnapshotName", "Tags", "TargetServerlessCacheSnapshotName")
def copy_serverless_cache_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCacheSnapshot": snapshot_api(PLANE.copy_serverless_snapshot(p.get("SourceServerlessCacheSnapshotName"),
                                                       p.get("TargetServerlessCacheSnapshotName"),
                                                       p.get("KmsKeyId"), tag_dict(p)))}


@honours("S3BucketName", "ServerlessCacheSnapshotName")
def export_serverless_cache_snapshot(p: dict[str, Any]) -> dict[str, Any]:
    return {"ServerlessCacheSnapshot": snapshot_api(PLANE.export_serverless_snapshot(p.get("ServerlessCacheSnapshotName"),
                                                         p.get("S3BucketName")))}
