"""Operations a learner meets around the resources: node-type modifications, subnet groups, service updates."""

from __future__ import annotations

from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value, not_found
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import ACCOUNT


def list_allowed_node_type_modifications(p: dict[str, Any]) -> dict[str, Any]:
    """The node types a cluster or group can scale up to (more memory) and down to (less memory, but
    still more maxmemory than the data it holds now, as AWS checks before a scale-down)."""
    cid, gid = p.get("CacheClusterId"), p.get("ReplicationGroupId")
    if bool(cid) == bool(gid):
        raise invalid_combination("Give exactly one of CacheClusterId and ReplicationGroupId.")
    if gid:
        g = PLANE.get_group(gid)
        current, engine = g.node_type, g.engine
    else:
        cc = PLANE.get_cluster(cid)
        current, engine = cc.node_type, cc.engine
    if engine == "memcached":
        return {"ScaleUpModifications": [], "ScaleDownModifications": []}
    here = catalogue.node_type_memory(current)
    up, down = [], []
    for t in catalogue.node_types():
        if t == current:
            continue
        (up if catalogue.node_type_memory(t) > here else down).append(t)
    return {"ScaleUpModifications": sorted(up), "ScaleDownModifications": sorted(down)}


def _subnet_backend(p: dict[str, Any]) -> Any:
    from moto.elasticache.models import elasticache_backends

    return elasticache_backends[ACCOUNT]["us-east-1"]


def check_subnets(ids: list[str]) -> None:
    """Every subnet must exist in the local EC2 API, all in one VPC (AWS: InvalidSubnet)."""
    from moto.ec2.models import ec2_backends

    if not ids:
        raise invalid_value("The parameter SubnetIds must be provided and must not be empty.")
    ec2 = ec2_backends[ACCOUNT]["us-east-1"]
    known = {s.id: s for s in ec2.describe_subnets()}
    missing = [s for s in ids if s not in known]
    if missing:
        raise ApiError(f"The subnet ID {', '.join(missing)} does not exist. Create subnets with the local EC2 API "
                       "(ec2 create-subnet) first.", "InvalidSubnet")
    if len({known[s].vpc_id for s in ids}) > 1:
        raise ApiError("All subnets of a cache subnet group must be in the same VPC.", "InvalidSubnet")


def modify_cache_subnet_group(p: dict[str, Any]) -> Any:
    name = p.get("CacheSubnetGroupName")
    backend = _subnet_backend(p)
    group = backend.cache_subnet_groups.get(name)
    if group is None:
        raise not_found("CacheSubnetGroup", str(name))
    if p.get("CacheSubnetGroupDescription") is not None:
        group.cache_subnet_group_description = p["CacheSubnetGroupDescription"]
    if p.get("SubnetIds") is not None:
        ids = list(p["SubnetIds"])
        check_subnets(ids)
        from moto.elasticache.models import CacheSubnetGroup

        fresh = CacheSubnetGroup(ACCOUNT, "us-east-1", group.cache_subnet_group_name,
                                 group.cache_subnet_group_description, ids, group.tags)
        backend.cache_subnet_groups[name] = fresh
        group = fresh
    return group


def describe_service_updates(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Service updates: none locally (the engines are the machine's packages; see docs/local-vs-aws.md)."""
    status = p.get("ServiceUpdateStatus") or []
    bad = [s for s in status if s not in ("available", "cancelled", "expired")]
    if bad:
        raise invalid_value(f"Invalid value for ServiceUpdateStatus: {', '.join(bad)}.")
    return []


def describe_update_actions(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Update actions: none locally (no service update is ever published to the local endpoint)."""
    for gid in p.get("ReplicationGroupIds") or []:
        PLANE.get_group(gid)
    for cid in p.get("CacheClusterIds") or []:
        PLANE.get_cluster(cid)
    return []
