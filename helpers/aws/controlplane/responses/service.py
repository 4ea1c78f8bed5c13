"""Operations a learner meets around the resources: node-type modifications, subnet groups, service updates."""

from __future__ import annotations

from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value, not_found
from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import ACCOUNT, request_region


@honours("CacheClusterId", "ReplicationGroupId")
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

    return elasticache_backends[ACCOUNT][request_region()]


def check_subnets(ids: list[str]) -> None:
    """Every subnet must exist in the local EC2 API, all in one VPC (AWS: InvalidSubnet)."""
    from moto.ec2.models import ec2_backends

    if not ids:
        raise invalid_value("The parameter SubnetIds must be provided and must not be empty.")
    ec2 = ec2_backends[ACCOUNT][request_region()]
    known = {s.id: s for s in ec2.describe_subnets()}
    missing = [s for s in ids if s not in known]
    if missing:
        raise ApiError(f"The subnet ID {', '.join(missing)} does not exist. Create subnets with the local EC2 API "
                       "(ec2 create-subnet) first.", "InvalidSubnet")
    if len({known[s].vpc_id for s in ids}) > 1:
        raise ApiError("All subnets of a cache subnet group must be in the same VPC.", "InvalidSubnet")


@honours("CacheSubnetGroupDescription", "CacheSubnetGroupName", "SubnetIds")
def modify_cache_subnet_group(p: dict[str, Any]) -> Any:
    name, description, subnet_ids = p.get("CacheSubnetGroupName"), p.get("CacheSubnetGroupDescription"), p.get("SubnetIds")
    backend = _subnet_backend(p)
    group = backend.cache_subnet_groups.get(name)
    if group is None:
        raise not_found("CacheSubnetGroup", str(name))
    if description is not None:
        group.cache_subnet_group_description = description
    if subnet_ids is not None:
        ids = list(subnet_ids)
        check_subnets(ids)
        from moto.elasticache.models import CacheSubnetGroup

        fresh = CacheSubnetGroup(ACCOUNT, request_region(), group.cache_subnet_group_name,
                                 group.cache_subnet_group_description, ids, group.tags)
        backend.cache_subnet_groups[name] = fresh
        group = fresh
    return with_subnet_zones(group)


def with_subnet_zones(group: Any) -> Any:
    """moto keeps a subnet's zone as a bare string, which its serializer drops; AWS answers
    `SubnetAvailabilityZone: {Name: ...}` (create-cache-subnet-group.rst)."""
    for subnet in getattr(group, "subnets", []):
        zone = subnet.get("subnet_availability_zone")
        if isinstance(zone, str):
            subnet["subnet_availability_zone"] = {"Name": zone}
    return group


@honours("ServiceUpdateName", "ServiceUpdateStatus")
def describe_service_updates(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The service updates of the local catalogue (data/elasticache_service_updates.csv), AWS's shape."""
    from helpers.aws.controlplane.models.lifecycle import service_updates

    status = p.get("ServiceUpdateStatus") or []
    bad = [s for s in status if s not in ("available", "cancelled", "expired")]
    if bad:
        raise invalid_value(f"Invalid value for ServiceUpdateStatus: {', '.join(bad)}.")
    name = p.get("ServiceUpdateName")
    out = []
    for u in service_updates():
        if name and u["ServiceUpdateName"] != name:
            continue
        if status and u["ServiceUpdateStatus"] not in status:
            continue
        out.append(u)
    if name and not out and not status:
        raise not_found("ServiceUpdate", str(name))
    return out


UPDATE_ACTION_STATUSES = ("not-applied", "waiting-to-start", "in-progress", "stopping", "stopped", "complete",
                          "scheduling", "scheduled", "not-applicable")


@honours(
    "CacheClusterIds", "Engine", "ReplicationGroupIds", "ServiceUpdateName", "ServiceUpdateStatus",
    "ServiceUpdateTimeRange", "UpdateActionStatus")
def describe_update_actions(p: dict[str, Any]) -> list[dict[str, Any]]:
    """One update action per service update and resource it applies to, with its status."""
    statuses = list(p.get("UpdateActionStatus") or [])
    bad = [s for s in statuses if s not in UPDATE_ACTION_STATUSES]
    if bad:
        raise invalid_value(f"Invalid value for UpdateActionStatus: {', '.join(bad)}.")
    engine = p.get("Engine")
    if engine and str(engine).lower() not in catalogue.engines():
        raise invalid_value(f"Invalid value for Engine: {engine}. Valid values: {', '.join(catalogue.engines())}.")
    update_statuses = list(p.get("ServiceUpdateStatus") or [])
    bad = [s for s in update_statuses if s not in ("available", "cancelled", "expired")]
    if bad:
        raise invalid_value(f"Invalid value for ServiceUpdateStatus: {', '.join(bad)}.")
    span = p.get("ServiceUpdateTimeRange") or {}
    name = p.get("ServiceUpdateName")
    actions = PLANE.describe_update_actions([name] if name else None, list(p.get("ReplicationGroupIds") or []),
                                            list(p.get("CacheClusterIds") or []),
                                            str(engine).lower() if engine else None, statuses)
    return [a for a in actions if (not update_statuses or a["ServiceUpdateStatus"] in update_statuses)
            and _within(a["ServiceUpdateReleaseDate"], span.get("StartTime"), span.get("EndTime"))]


def _within(when: Any, start: Any, end: Any) -> bool:
    """ServiceUpdateTimeRange: the release date is on or after StartTime and on or before EndTime."""
    from datetime import datetime, timezone

    def instant(value: Any) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                try:
                    moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
                except ValueError:
                    raise invalid_value(f"Invalid value for ServiceUpdateTimeRange: {value}.") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    moment, first, last = instant(when), instant(start), instant(end)
    return moment is None or ((first is None or moment >= first) and (last is None or moment <= last))


@honours("CacheClusterIds", "ReplicationGroupIds", "ServiceUpdateName")
def batch_apply_update_action(p: dict[str, Any]) -> dict[str, Any]:
    return PLANE.batch_update_action(p.get("ServiceUpdateName"), list(p.get("ReplicationGroupIds") or []),
                                     list(p.get("CacheClusterIds") or []), apply=True)


@honours("CacheClusterIds", "ReplicationGroupIds", "ServiceUpdateName")
def batch_stop_update_action(p: dict[str, Any]) -> dict[str, Any]:
    return PLANE.batch_update_action(p.get("ServiceUpdateName"), list(p.get("ReplicationGroupIds") or []),
                                     list(p.get("CacheClusterIds") or []), apply=False)
