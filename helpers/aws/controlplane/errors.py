"""The ElastiCache API's error codes, as AWS names them, raised by the local control plane."""

from __future__ import annotations

from moto.elasticache.exceptions import ElastiCacheException


class ApiError(ElastiCacheException):
    """An error answered to the client with AWS's code (`code`) and a message for people."""

    code = "InvalidParameterValue"

    def __init__(self, message: str, code: str | None = None):
        if code:
            self.code = code
        super().__init__(message)


def from_catalogue(err: Exception) -> ApiError:
    """helpers.aws.catalogue's CatalogueError(code, message) as the API's error."""
    return ApiError(getattr(err, "message", str(err)), getattr(err, "code", "InvalidParameterValue"))


def invalid_value(message: str) -> ApiError:
    return ApiError(message, "InvalidParameterValue")


def invalid_combination(message: str) -> ApiError:
    return ApiError(message, "InvalidParameterCombination")


def not_found(kind: str, ident: str) -> ApiError:
    """AWS's *NotFound codes, e.g. not_found("CacheCluster", "x") -> CacheClusterNotFound.

    The messages follow AWS's wording where it is on record ("CacheCluster not found: x",
    "CacheParameterGroup not found: x", "ReplicationGroup x not found"); the others use the first form.
    """
    codes = {"CacheCluster": "CacheClusterNotFound", "ReplicationGroup": "ReplicationGroupNotFoundFault",
             "Snapshot": "SnapshotNotFoundFault", "User": "UserNotFound", "UserGroup": "UserGroupNotFound",
             "CacheParameterGroup": "CacheParameterGroupNotFound",
             "CacheSubnetGroup": "CacheSubnetGroupNotFoundFault", "NodeGroup": "NodeGroupNotFoundFault",
             "ServiceUpdate": "ServiceUpdateNotFoundFault"}
    if kind == "ReplicationGroup":
        return ApiError(f"ReplicationGroup {ident} not found", codes[kind])
    return ApiError(f"{kind} not found: {ident}", codes[kind])


def already_exists(kind: str, ident: str) -> ApiError:
    codes = {"CacheCluster": "CacheClusterAlreadyExists", "ReplicationGroup": "ReplicationGroupAlreadyExists",
             "Snapshot": "SnapshotAlreadyExistsFault", "User": "UserAlreadyExists",
             "UserGroup": "UserGroupAlreadyExists", "CacheParameterGroup": "CacheParameterGroupAlreadyExists"}
    names = {"CacheCluster": "Cache cluster", "ReplicationGroup": "Replication group", "Snapshot": "Snapshot",
             "User": "User", "UserGroup": "User group", "CacheParameterGroup": "Parameter group"}
    return ApiError(f"{names[kind]} {ident} already exists.", codes[kind])


def invalid_state(kind: str, ident: str, status: str, wanted: str = "available") -> ApiError:
    codes = {"CacheCluster": "InvalidCacheClusterState", "ReplicationGroup": "InvalidReplicationGroupState",
             "Snapshot": "InvalidSnapshotState", "User": "InvalidUserState", "UserGroup": "InvalidUserGroupState",
             "CacheParameterGroup": "InvalidCacheParameterGroupState"}
    return ApiError(f"{kind} {ident} is {status}; this operation needs it to be {wanted}.", codes[kind])


def node_quota(n: int) -> ApiError:
    """A Memcached cluster has 1 to 40 nodes; above 40 AWS answers with its quota error."""
    return ApiError(f"NumCacheNodes must be between 1 and 40 for Memcached (got {n}).",
                    "NodeQuotaForClusterExceeded" if n > 40 else "InvalidParameterValue")
