"""The ElastiCache API actions, answered by the control plane instead of moto's placeholders.

Each handler below becomes a method of moto's ElastiCacheResponse (see install()); moto keeps
parsing requests and serialising answers and errors with botocore's model of the API, and the
functions of responses/ turn the parsed parameters into calls to the model and build the answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import arn
from helpers.aws.controlplane.responses import (
    clusters,
    events,
    parameters,
    replication,
    snapshots,
    tag_dict,
    users,
)


def _p(self: Any) -> dict[str, Any]:
    return self._get_params()


def _result(key: str | None, fn: Callable[[dict[str, Any]], Any]) -> Callable[[Any], ActionResult]:
    def handler(self: Any) -> ActionResult:
        value = fn(_p(self))
        if key is None:
            return EmptyResult() if value is None else ActionResult(value)
        return ActionResult({key: value})

    return handler


def _create_subnet_group(self: Any) -> ActionResult:
    result = _ORIGINAL["create_cache_subnet_group"](self)
    params = _p(self)
    PLANE.add_tags(arn("subnetgroup", str(params.get("CacheSubnetGroupName"))), tag_dict(params))
    return result


def _delete_subnet_group(self: Any) -> EmptyResult:
    from moto.elasticache.models import elasticache_backends

    from helpers.aws.controlplane.errors import ApiError, not_found

    name = _p(self).get("CacheSubnetGroupName")
    backend = elasticache_backends[self.current_account][self.region]
    if name not in backend.cache_subnet_groups:
        raise not_found("CacheSubnetGroup", str(name))
    users = PLANE.subnet_group_users(name)
    if users:
        raise ApiError(f"Cache subnet group {name} is in use by {', '.join(users)}.", "CacheSubnetGroupInUse")
    backend.cache_subnet_groups.pop(name)
    return EmptyResult()


def _not_implemented(action: str) -> Callable[[Any], Any]:
    def handler(self: Any) -> Any:
        from helpers.aws.controlplane.errors import ApiError

        raise ApiError(f"{action} is not available on the local ElastiCache endpoint. It implements cache "
                       "clusters, replication groups, users and user groups, parameter and subnet groups, "
                       "snapshots, tags and events.", "InvalidAction")

    return handler


HANDLERS: dict[str, Callable[[Any], Any]] = {
    "describe_cache_engine_versions": _result("CacheEngineVersions", events.describe_cache_engine_versions),
    "describe_serverless_caches": _result("ServerlessCaches", lambda p: []),
    # cache clusters
    "create_cache_cluster": _result("CacheCluster", clusters.create_cache_cluster),
    "describe_cache_clusters": _result("CacheClusters", clusters.describe_cache_clusters),
    "modify_cache_cluster": _result("CacheCluster", clusters.modify_cache_cluster),
    "delete_cache_cluster": _result("CacheCluster", clusters.delete_cache_cluster),
    "reboot_cache_cluster": _result("CacheCluster", clusters.reboot_cache_cluster),
    # replication groups
    "create_replication_group": _result("ReplicationGroup", replication.create_replication_group),
    "describe_replication_groups": _result("ReplicationGroups", replication.describe_replication_groups),
    "modify_replication_group": _result("ReplicationGroup", replication.modify_replication_group),
    "delete_replication_group": _result("ReplicationGroup", replication.delete_replication_group),
    "test_failover": _result("ReplicationGroup", replication.test_failover),
    "increase_replica_count": _result("ReplicationGroup", replication.increase_replica_count),
    "decrease_replica_count": _result("ReplicationGroup", replication.decrease_replica_count),
    "modify_replication_group_shard_configuration": _result("ReplicationGroup", replication.modify_replication_group_shard_configuration),
    # users and user groups
    "create_user": _result(None, users.create_user),
    "modify_user": _result(None, users.modify_user),
    "delete_user": _result(None, users.delete_user),
    "describe_users": _result("Users", users.describe_users),
    "create_user_group": _result(None, users.create_user_group),
    "modify_user_group": _result(None, users.modify_user_group),
    "delete_user_group": _result(None, users.delete_user_group),
    "describe_user_groups": _result("UserGroups", users.describe_user_groups),
    # parameter groups
    "create_cache_parameter_group": _result("CacheParameterGroup", parameters.create_cache_parameter_group),
    "describe_cache_parameter_groups": _result("CacheParameterGroups", parameters.describe_cache_parameter_groups),
    "describe_cache_parameters": _result("Parameters", parameters.describe_cache_parameters),
    "modify_cache_parameter_group": _result("CacheParameterGroupName", parameters.modify_cache_parameter_group),
    "reset_cache_parameter_group": _result("CacheParameterGroupName", parameters.reset_cache_parameter_group),
    "delete_cache_parameter_group": _result(None, parameters.delete_cache_parameter_group),
    "describe_engine_default_parameters": _result("EngineDefaults", parameters.describe_engine_default_parameters),
    # snapshots
    "create_snapshot": _result("Snapshot", snapshots.create_snapshot),
    "describe_snapshots": _result("Snapshots", snapshots.describe_snapshots),
    "delete_snapshot": _result("Snapshot", snapshots.delete_snapshot),
    "copy_snapshot": _result("Snapshot", snapshots.copy_snapshot),
    # events and tags
    "describe_events": _result("Events", events.describe_events),
    "list_tags_for_resource": _result(None, events.list_tags_for_resource),
    "add_tags_to_resource": _result(None, events.add_tags_to_resource),
    "remove_tags_from_resource": _result(None, events.remove_tags_from_resource),
    # subnet groups: moto's model, plus tags and deletion
    "create_cache_subnet_group": _create_subnet_group,
    "delete_cache_subnet_group": _delete_subnet_group,
}

_ORIGINAL: dict[str, Any] = {}


def unimplemented_handlers() -> dict[str, Callable[[Any], Any]]:
    """Every other action of the API answers InvalidAction with a sentence (not moto's HTTP 500)."""
    import botocore.session
    from moto.core.utils import camelcase_to_underscores
    from moto.elasticache.responses import ElastiCacheResponse

    model = botocore.session.get_session().get_service_model("elasticache")
    out = {}
    for op in model.operation_names:
        name = camelcase_to_underscores(op)
        if name not in HANDLERS and not hasattr(ElastiCacheResponse, name):
            out[name] = _not_implemented(op)
    return out
