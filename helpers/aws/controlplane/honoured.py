"""No request parameter is accepted and then ignored.

Every handler of responses/ reads the parameters it honours from the request's dict
(`p.get("Name")`, `p["Name"]`, or through a helper of responses/ it passes the dict to). Which ones
those are is read from the handlers' own source, once, so the list cannot drift from the code. A
request that carries any other parameter of botocore's model of the action is refused before the
model is called: with the reason in NOT_LOCAL when there is one to give, otherwise with a generic
sentence. docs/local-vs-aws.md lists the refusals, and tests/test_api_conformance.py checks that every
parameter of every implemented action is either honoured or listed here.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

RESPONSES = "helpers.aws.controlplane.responses"
ALWAYS = frozenset({"Marker", "MaxRecords"})  # paging, for every Describe* (api._result pages the answer)

# Parameters of implemented actions that the local endpoint refuses, and why (the error's sentence).
_CLASSIC = ("Cache security groups are EC2-Classic only; give VPC security groups with SecurityGroupIds "
            "(the local EC2 API has them).")
_OUTPOSTS = "AWS Outposts are not modelled on the local endpoint; leave the Outpost parameters out."
_SNS = ("The local endpoint does not send events to Amazon SNS; read them with describe-events "
        "(see docs/local-vs-aws.md).")
_MINOR = ("Minor version upgrades are applied locally with batch-apply-update-action (no maintenance "
          "window passes on the local endpoint); leave AutoMinorVersionUpgrade out.")
_GLOBAL_SHARDS = ("Global datastores on the local endpoint are cluster-mode disabled: they have no node groups "
                  "to add, remove or rebalance.")
NOT_LOCAL: dict[str, dict[str, str]] = {
    "create_cache_cluster": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS,
        "OutpostMode": _OUTPOSTS, "PreferredOutpostArn": _OUTPOSTS, "PreferredOutpostArns": _OUTPOSTS,
        "AZMode": "A local Memcached cluster's nodes share the cluster's one Availability Zone "
                  "(PreferredAvailabilityZone); cross-AZ placement is not modelled.",
        "PreferredAvailabilityZones": "A local Memcached cluster's nodes share the cluster's one Availability "
                                      "Zone: give PreferredAvailabilityZone instead.",
    },
    "modify_cache_cluster": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS, "NotificationTopicStatus": _SNS,
        "ScaleConfig": "ScaleConfig (the pace of a Memcached vertical scaling) is not modelled: the local "
                       "endpoint changes the node type at once.",
    },
    "create_replication_group": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS, "AutoMinorVersionUpgrade": _MINOR,
        "PrimaryClusterId": "Creating a replication group around an existing cache cluster is not supported on "
                            "the local endpoint: create the group, then load the data from a snapshot "
                            "(--snapshot-name).",
        "DataTieringEnabled": "Data tiering (r6gd nodes, SSD behind memory) is not modelled on the local endpoint: "
                              "every item stays in memory.",
        "KmsKeyId": "Customer managed KMS keys are not modelled: at-rest encryption on the local endpoint "
                    "uses one local key (AtRestEncryptionEnabled alone).",
        "ServerlessCacheSnapshotName": "Restoring a serverless snapshot into a node-based group is not supported on "
                                       "the local endpoint; restore it into a serverless cache.",
    },
    "modify_replication_group": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS, "NotificationTopicStatus": _SNS,
        "AutoMinorVersionUpgrade": _MINOR,
    },
    "increase_replica_count": {
        "ReplicaConfiguration": "Per-shard replica counts are not supported on the local endpoint: give "
                                "NewReplicaCount, the same count for every shard.",
    },
    "decrease_replica_count": {
        "ReplicaConfiguration": "Per-shard replica counts are not supported on the local endpoint: give "
                                "NewReplicaCount (the same count for every shard) or ReplicasToRemove.",
    },
    "modify_replication_group_shard_configuration": {
        "ReshardingConfiguration": "Placing new shards in chosen Availability Zones, or moving given slot ranges, "
                                   "is not modelled: the local endpoint spreads the slots evenly. Leave "
                                   "ReshardingConfiguration out.",
    },
    "describe_users": {
        "Filters": "Filters are not implemented for DescribeUsers on the local endpoint: give UserId, or list "
                   "every user.",
    },
    "describe_snapshots": {
        "ShowNodeGroupConfig": "The local endpoint does not record a snapshot's node-group configuration (slots "
                               "and replicas per shard); leave ShowNodeGroupConfig out.",
    },
    "describe_update_actions": {
        "ShowNodeLevelUpdateStatus": "Node-level update status is not modelled: an update action's status "
                                     "covers the whole cluster or group on the local endpoint.",
    },
    **{action: {name: _GLOBAL_SHARDS for name in names} for action, names in {
        "increase_node_groups_in_global_replication_group": ("ApplyImmediately", "NodeGroupCount",
                                                             "RegionalConfigurations"),
        "decrease_node_groups_in_global_replication_group": ("ApplyImmediately", "GlobalNodeGroupsToRemove",
                                                             "GlobalNodeGroupsToRetain", "NodeGroupCount"),
        "rebalance_slots_in_global_replication_group": ("ApplyImmediately",)}.items()},
    "create_serverless_cache": {
        "ConnectionType": "Connection types other than the default are not modelled on the local endpoint.",
        "Integrations": "Integrations with other services are not modelled on the local endpoint.",
    },
}

# Read by moto's own handler, which the control plane wraps.
HONOURED_ELSEWHERE: dict[str, frozenset[str]] = {
    "create_cache_subnet_group": frozenset({"CacheSubnetGroupDescription"}),
}


def _keys_in(fn: Callable[..., Any], seen: set[Any]) -> set[str]:
    if fn in seen or not isinstance(fn, types.FunctionType):
        return set()
    seen.add(fn)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return set()
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier() \
                and node.value[:1].isupper():
            keys.add(node.value)  # a parameter name: "CacheNodeType"
        if not isinstance(node, ast.Call):
            continue
        callee = None
        if isinstance(node.func, ast.Name):
            callee = fn.__globals__.get(node.func.id)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            module = fn.__globals__.get(node.func.value.id)
            if isinstance(module, types.ModuleType):
                callee = getattr(module, node.func.attr, None)
        if isinstance(callee, types.FunctionType) and callee.__module__.startswith(RESPONSES):
            keys |= _keys_in(callee, seen)
    return keys


@functools.cache
def honoured(fn: Callable[..., Any]) -> frozenset[str]:
    """The request parameters a responses/ handler reads (string constants shaped like parameter names,
    in it and in the responses/ helpers it calls)."""
    return frozenset(_keys_in(fn, set()) | ALWAYS)


def check(action: str, fn: Callable[..., Any], params: dict[str, Any]) -> None:
    """Refuse a request that carries a parameter the handler does not honour."""
    from helpers.aws.controlplane.errors import ApiError

    known = honoured(fn) | HONOURED_ELSEWHERE.get(action, frozenset())
    extra = [k for k in params if k not in known and params[k] is not None]
    if not extra:
        return
    name = extra[0]
    op = "".join(w.capitalize() for w in action.split("_"))
    reason = NOT_LOCAL.get(action, {}).get(name) or \
        f"{name} of {op} is not implemented on the local endpoint; leave it out (see docs/local-vs-aws.md)."
    raise ApiError(reason, "InvalidParameterValue")
