"""The ElastiCache API actions, answered by the control plane instead of moto's placeholders.

Each handler below becomes a method of moto's ElastiCacheResponse (see install()); moto keeps
parsing requests and serialising answers and errors with botocore's model of the API, and the
functions of responses/ turn the parsed parameters into calls to the model and build the answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from helpers.aws.controlplane import honoured
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import arn
from helpers.aws.controlplane.models.clusters import ensure_default_subnet_group
from helpers.aws.controlplane.responses import (
    clusters,
    engines,
    events,
    global_datastore,
    paginate,
    parameters,
    replication,
    reserved,
    serverless,
    service,
    snapshots,
    tag_dict,
    users,
)

log = logging.getLogger(__name__)


def _p(self: Any) -> dict[str, Any]:
    return self._get_params()


def _result(key: str | None, fn: Callable[[dict[str, Any]], Any]) -> Callable[[Any], ActionResult]:
    def handler(self: Any) -> ActionResult:
        params = _p(self)
        honoured.check(_action_name(self), fn, params)  # nothing accepted and then ignored
        value = fn(params)
        if key is None:
            return EmptyResult() if value is None else ActionResult(value)
        if isinstance(value, list) and _pages(self):
            page, marker = paginate(value, params)
            out: dict[str, Any] = {key: page}
            if marker:
                out["Marker"] = marker
            return ActionResult(out)
        return ActionResult({key: value})

    return handler


def _pages(self: Any) -> bool:
    """Whether the action takes Marker/MaxRecords (every Describe* that lists things)."""
    return _action_name(self) in _paged_actions()


def _action_name(self: Any) -> str:
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(self._get_action())


def _paged_actions() -> set[str]:
    if not _PAGED:
        import botocore.session
        from moto.core.utils import camelcase_to_underscores

        model = botocore.session.get_session().get_service_model("elasticache")
        for op in model.operation_names:
            shape = model.operation_model(op).input_shape
            if shape is not None and "Marker" in shape.members:
                _PAGED.add(camelcase_to_underscores(op))
    return _PAGED


_PAGED: set[str] = set()
READ_ONLY = ("describe_", "list_")  # actions that change no record


def guarded(action: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Every answer is an AWS-style error, never an HTTP 500: the catalogue's errors become the API's,
    and anything unexpected is logged (logs/aws.log in the state directory) and answered as a client error that says so."""
    def call(self: Any) -> Any:
        from moto.core.exceptions import ServiceException

        from helpers.aws.catalogue import CatalogueError
        from helpers.aws.controlplane.errors import ApiError, from_catalogue
        from helpers.aws.controlplane.models.base import set_request_region

        set_request_region(getattr(self, "region", None))  # one endpoint, every region: see models/base.py
        try:
            return handler(self)
        except ServiceException:
            raise
        except CatalogueError as err:
            raise from_catalogue(err) from None
        except Exception as err:  # a defect of ours, answered to the client as AWS answers a bad request
            log.exception("%s failed with an unexpected error", action)
            name = "".join(w.capitalize() for w in action.split("_"))
            raise ApiError(f"{name} could not use the request's values ({type(err).__name__}: {err}). "
                           "Check them against the API reference.", "InvalidParameterValue") from None
        finally:
            if not action.startswith(READ_ONLY):  # what the request changed is written before it is answered
                PLANE.changed()

    call.__name__ = getattr(handler, "__name__", action)
    return call


def _create_subnet_group(self: Any) -> ActionResult:
    params = _p(self)
    service.check_subnets(list(params.get("SubnetIds") or []))
    tags = tag_dict(params)  # refused before the group is made
    from moto.elasticache.models import elasticache_backends

    result = _ORIGINAL["create_cache_subnet_group"](self)
    made = elasticache_backends[self.current_account][self.region].cache_subnet_groups.get(
        params.get("CacheSubnetGroupName"))
    if made is not None:
        service.with_subnet_zones(made)  # serialized after this returns
    PLANE.add_tags(arn("subnetgroup", str(params.get("CacheSubnetGroupName"))), tags)
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


def _describe_subnet_groups(self: Any) -> ActionResult:
    """moto's subnet groups, paged like every other Describe* (moto's own paging answers a bad Marker in JSON)."""
    from moto.elasticache.models import elasticache_backends

    params = _p(self)
    ensure_default_subnet_group()  # every account has a `default` one
    groups = [service.with_subnet_zones(g) for g in elasticache_backends[self.current_account][self.region]
              .describe_cache_subnet_groups(cache_subnet_group_name=params.get("CacheSubnetGroupName"))]
    page, marker = paginate(groups, params)
    out: dict[str, Any] = {"CacheSubnetGroups": page}
    if marker:
        out["Marker"] = marker
    return ActionResult(out)


def _not_implemented(action: str) -> Callable[[Any], Any]:
    def handler(self: Any) -> Any:
        from helpers.aws.controlplane.errors import ApiError

        hint = UNSUPPORTED_HINTS.get(action, "")
        raise ApiError(f"{action} is not available on the local ElastiCache endpoint (see docs/local-vs-aws.md). "
                       "It implements cache clusters, replication groups, users and user groups, parameter and "
                       f"subnet groups, snapshots, tags and events.{' ' + hint if hint else ''}", "InvalidAction")

    return handler


# What to do instead, for the unsupported actions a learner is most likely to try.
UNSUPPORTED_HINTS: dict[str, str] = {
    "CreateCacheSecurityGroup": "Cache security groups are EC2-Classic only; use VPC security groups "
                                "(--security-group-ids) from the local EC2 API.",
}

HANDLERS: dict[str, Callable[[Any], Any]] = {
    # reserved cache nodes (responses/reserved.py)
    "describe_reserved_cache_nodes": _result("ReservedCacheNodes", reserved.describe_reserved_cache_nodes),
    "describe_reserved_cache_nodes_offerings": _result("ReservedCacheNodesOfferings",
                                                       reserved.describe_reserved_cache_nodes_offerings),
    "purchase_reserved_cache_nodes_offering": _result(None, reserved.purchase_reserved_cache_nodes_offering),
    # serverless caches and their snapshots (responses/serverless.py)
    **{name: _result(None, getattr(serverless, name)) for name in (
        "create_serverless_cache", "describe_serverless_caches", "modify_serverless_cache", "delete_serverless_cache",
        "create_serverless_cache_snapshot", "describe_serverless_cache_snapshots", "delete_serverless_cache_snapshot",
        "copy_serverless_cache_snapshot", "export_serverless_cache_snapshot")},
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
    "start_migration": _result("ReplicationGroup", replication.start_migration),
    "complete_migration": _result("ReplicationGroup", replication.complete_migration),
    "increase_replica_count": _result("ReplicationGroup", replication.increase_replica_count),
    "decrease_replica_count": _result("ReplicationGroup", replication.decrease_replica_count),
    "modify_replication_group_shard_configuration": _result("ReplicationGroup", replication.modify_replication_group_shard_configuration),
    # global datastores (responses/global_datastore.py)
    **{name: _result(key, getattr(global_datastore, name)) for name, key in {
        "create_global_replication_group": "GlobalReplicationGroup",
        "describe_global_replication_groups": "GlobalReplicationGroups",
        "modify_global_replication_group": "GlobalReplicationGroup",
        "failover_global_replication_group": "GlobalReplicationGroup",
        "disassociate_global_replication_group": "GlobalReplicationGroup",
        "delete_global_replication_group": "GlobalReplicationGroup",
        "increase_node_groups_in_global_replication_group": "GlobalReplicationGroup",
        "decrease_node_groups_in_global_replication_group": "GlobalReplicationGroup",
        "rebalance_slots_in_global_replication_group": "GlobalReplicationGroup"}.items()},
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
    # engine versions
    "describe_cache_engine_versions": _result("CacheEngineVersions", engines.describe_cache_engine_versions),
    # events and tags
    "describe_events": _result("Events", events.describe_events),
    "list_tags_for_resource": _result(None, events.list_tags_for_resource),
    "add_tags_to_resource": _result(None, events.add_tags_to_resource),
    "remove_tags_from_resource": _result(None, events.remove_tags_from_resource),
    # subnet groups: moto's model, plus tags and deletion
    "create_cache_subnet_group": _create_subnet_group,
    "delete_cache_subnet_group": _delete_subnet_group,
    "describe_cache_subnet_groups": _describe_subnet_groups,
    "modify_cache_subnet_group": _result("CacheSubnetGroup", service.modify_cache_subnet_group),
    # around the resources
    "list_allowed_node_type_modifications": _result(None, service.list_allowed_node_type_modifications),
    "describe_service_updates": _result("ServiceUpdates", service.describe_service_updates),
    "describe_update_actions": _result("UpdateActions", service.describe_update_actions),
    "batch_apply_update_action": _result(None, service.batch_apply_update_action),
    "batch_stop_update_action": _result(None, service.batch_stop_update_action),
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


def operation_names() -> list[str]:
    """Every action of botocore's model of the ElastiCache API, as moto's handler names."""
    import botocore.session
    from moto.core.utils import camelcase_to_underscores

    model = botocore.session.get_session().get_service_model("elasticache")
    return [camelcase_to_underscores(op) for op in model.operation_names]


def apply_pending_modifications(self: Any) -> str:
    """The local-only action ApplyPendingModifications: a JSON object, resource id -> fields applied."""
    import json

    return json.dumps(PLANE.apply_pending())
