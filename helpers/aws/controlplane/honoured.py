"""No request parameter is accepted and then ignored.

Each handler of responses/ declares the request parameters it honours, next to itself:
`@honours("CacheClusterId", "Engine", ...)`. api.py refuses, before the handler runs, a request that carries
any other parameter: with the reason in NOT_LOCAL when there is one to give, otherwise with a generic
sentence (InvalidParameterValue, HTTP 400). docs/local-vs-aws.md lists the refusals.

Why a declaration, checked before the handler, and not a record of what the handler reads at run time:
a handler reads its parameters and then calls the model, which creates engines and records; a parameter
found unread only after the handler returned would be refused too late (the cache cluster exists). An
earlier guard read the names from the handlers' source (string constants), and so counted the keys of
the answers too ("NetworkType": "ipv4"): NetworkType ipv6 was accepted and ignored. A declaration can be
wrong as well, so the tests prove it at run time: they call every handler with a `Recording` of a
request that carries one declared parameter (the model stopped at its first call, or answering nothing)
and fail on a declared parameter the handler never read (tests/test_api_parameters.py), and they send
every other parameter of botocore's model to the endpoint and expect its refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
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
_IPV6 = ("The local engines listen on the IPv4 loopback address 127.0.0.1 only: NetworkType and IpDiscovery "
         "are ipv4 on the local endpoint; leave them out.")
_KMS = ("Customer managed KMS keys are not modelled: at-rest encryption on the local endpoint uses one local key "
        "(see docs/local-vs-aws.md); leave KmsKeyId out.")
_ENGINE_FILTER = "Users and user groups on the local endpoint keep the engine they were created with; leave Engine out."
_NETWORK = {"NetworkType": _IPV6, "IpDiscovery": _IPV6}
_SERVERLESS_MIGRATION = ("Online migration into a serverless cache (ServerlessCacheName, AutoCutover, "
                         "ClearTargetCacheData) is not modelled on the local endpoint: migrate into a replication "
                         "group (ReplicationGroupId) and end it with complete-migration.")
NOT_LOCAL: dict[str, dict[str, str]] = {
    "create_cache_cluster": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS,
        "OutpostMode": _OUTPOSTS, "PreferredOutpostArn": _OUTPOSTS, "PreferredOutpostArns": _OUTPOSTS,
        "AZMode": "A local Memcached cluster's nodes share the cluster's one Availability Zone "
                  "(PreferredAvailabilityZone); cross-AZ placement is not modelled.",
        "PreferredAvailabilityZones": "A local Memcached cluster's nodes share the cluster's one Availability "
                                      "Zone: give PreferredAvailabilityZone instead.",
        "AutoMinorVersionUpgrade": _MINOR, **_NETWORK,
    },
    "modify_cache_cluster": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS, "NotificationTopicStatus": _SNS,
        "ScaleConfig": "ScaleConfig (the pace of a Memcached vertical scaling) is not modelled: the local "
                       "endpoint changes the node type at once.",
        "AutoMinorVersionUpgrade": _MINOR, "IpDiscovery": _IPV6,
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
        "Port": "A replication group's nodes listen on free loopback ports the local endpoint picks (describe "
                "shows them); leave Port out.", **_NETWORK,
    },
    "modify_replication_group": {
        "CacheSecurityGroupNames": _CLASSIC, "NotificationTopicArn": _SNS, "NotificationTopicStatus": _SNS,
        "AutoMinorVersionUpgrade": _MINOR,
        "ClusterMode": "Changing a group's cluster mode (to compatible, then enabled) is not modelled on the local "
                       "endpoint: create a cluster mode enabled group and move the data with a snapshot.",
        "IpDiscovery": _IPV6,
        "NodeGroupId": "NodeGroupId is not used on the local endpoint; leave it out.",
        "SnapshottingClusterId": "The local endpoint snapshots a group from its last member; leave "
                                 "SnapshottingClusterId out.",
    },
    "modify_global_replication_group": {
        "Engine": "Changing a global datastore's engine is not modelled on the local endpoint; give EngineVersion "
                  "of the same engine.",
    },
    "modify_user": {"Engine": _ENGINE_FILTER},
    "modify_user_group": {"Engine": _ENGINE_FILTER},
    "create_snapshot": {"KmsKeyId": _KMS},
    "copy_snapshot": {"KmsKeyId": _KMS},
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
        "Engine": "DescribeUsers does not filter by engine on the local endpoint: give UserId, or list every user.",
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
    "start_migration": {
        "ServerlessCacheName": _SERVERLESS_MIGRATION, "AutoCutover": _SERVERLESS_MIGRATION,
        "ClearTargetCacheData": _SERVERLESS_MIGRATION,
    },
    "complete_migration": {"ServerlessCacheName": _SERVERLESS_MIGRATION},
    "create_serverless_cache": {
        "ConnectionType": "Connection types other than the default are not modelled on the local endpoint.",
        "Integrations": "Integrations with other services are not modelled on the local endpoint.",
        "NetworkType": _IPV6,
    },
}

class Recording(dict):  # type: ignore[type-arg]
    """A request's parameters that remember which ones were read (get, [], in)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)


def honours(*names: str) -> Callable[[F], F]:
    """Declare the request parameters a responses/ handler honours (reads and acts on)."""
    def mark(fn: F) -> F:
        fn.honours = frozenset(names)  # type: ignore[attr-defined]
        return fn

    return mark


def honoured(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters `fn` declared with @honours, and the paging ones every Describe* takes."""
    declared = getattr(fn, "honours", None)
    if declared is None:
        raise TypeError(f"{getattr(fn, '__qualname__', fn)} declares no honoured parameters (@honours)")
    return frozenset(declared) | ALWAYS


def check(action: str, fn: Callable[..., Any], params: dict[str, Any]) -> None:
    """Refuse a request that carries a parameter the handler does not honour."""
    from helpers.aws.controlplane.errors import ApiError

    known = honoured(fn)
    extra = [k for k in params if k not in known and params[k] is not None]
    if not extra:
        return
    name = extra[0]
    op = "".join(w.capitalize() for w in action.split("_"))
    reason = NOT_LOCAL.get(action, {}).get(name) or \
        f"{name} of {op} is not implemented on the local endpoint; leave it out (see docs/local-vs-aws.md)."
    raise ApiError(reason, "InvalidParameterValue")
