"""Client-side helpers for the local ElastiCache API: wait for a status, connect to what it returns, clean up.

The control plane itself runs inside the moto server (helpers/aws/controlplane/); this module is what
a notebook or a test uses from the outside, with boto3, exactly as against AWS.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from helpers.runtime.i18n import translator
from helpers.runtime.notebook import waiting
from helpers.runtime.state import LabError

_ = translator(__name__)

FAILED = {"create-failed", "incompatible-parameters", "incompatible-network", "restore-failed", "failed"}


def _describe(ec: Any, cache_cluster_id: str | None, replication_group_id: str | None) -> tuple[dict, str]:
    if cache_cluster_id:
        item = ec.describe_cache_clusters(CacheClusterId=cache_cluster_id, ShowCacheNodeInfo=True)["CacheClusters"][0]
        return item, item["CacheClusterStatus"]
    item = ec.describe_replication_groups(ReplicationGroupId=replication_group_id)["ReplicationGroups"][0]
    return item, item["Status"]


def wait_for(ec: Any, *, cache_cluster_id: str | None = None, replication_group_id: str | None = None,
             status: str = "available", timeout: float = 120.0, progress: bool | None = None) -> dict[str, Any]:
    """Poll describe-* until the resource reaches `status`; returns what describe said last.

    Like boto3's waiters (`ec.get_waiter("cache_cluster_available")`), but polling every 0.2 s
    instead of every 15 s, and explaining a failure with the resource's latest events. A wait of more
    than a couple of seconds shows a status line in a notebook (`progress`: True/False to choose).
    """
    ident = cache_cluster_id or replication_group_id
    if not ident:
        raise LabError("Name the resource: wait_for(ec, cache_cluster_id=...) or replication_group_id=...")
    deadline = time.monotonic() + timeout
    with waiting(_("{name} to be {status}", name=ident, status=status), show=progress) as line:
        while True:
            item, current = _describe(ec, cache_cluster_id, replication_group_id)
            line.detail = current
            if current == status:
                return item
            if current in FAILED:
                events = [e["Message"] for e in ec.describe_events(SourceIdentifier=ident)["Events"][:3]]
                raise LabError(f"{ident} is {current}: {'; '.join(events) or 'no events'}")
            if time.monotonic() > deadline:
                raise LabError(_("{name} is still {current} after {timeout:.0f}s (waiting for {status}). The machine "
                                 "may be overloaded; describe it again in a moment.", name=ident, current=current,
                                 timeout=timeout, status=status))
            time.sleep(0.2)


def wait_deleted(ec: Any, *, cache_cluster_id: str | None = None, replication_group_id: str | None = None,
                 timeout: float = 120.0, progress: bool | None = None) -> None:
    """Wait until describe answers NotFound: the engines behind the resource are stopped by then."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    ident = cache_cluster_id or replication_group_id
    with waiting(_("{name} to be deleted", name=ident), show=progress) as line:
        while time.monotonic() < deadline:
            try:
                _item, line.detail = _describe(ec, cache_cluster_id, replication_group_id)
            except ClientError as exc:
                if "NotFound" in exc.response["Error"]["Code"]:
                    return
                raise
            time.sleep(0.2)
    raise LabError(_("{name} was not deleted within {timeout:.0f}s.", name=ident, timeout=timeout))


def node_endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    """(address, port) of each node of a described cache cluster (ShowCacheNodeInfo=True)."""
    return [(n["Endpoint"]["Address"], n["Endpoint"]["Port"]) for n in cluster.get("CacheNodes", [])
            if n.get("Endpoint")]


def redis_at(endpoint: dict[str, Any] | tuple[str, int], *, tls: bool = False, retries: int | None = None,
             **kwargs: Any) -> Any:
    """A redis.Redis for an endpoint the API returned ({"Address", "Port"}), over TLS if asked.

    TLS is verified against the lab's own certificate authority (helpers.runtime.tls), the way a client
    verifies ElastiCache's Amazon-issued certificate. `retries=0` fails at once (redis-py retries
    connection and authentication errors with back-off by default).
    """
    import redis

    if retries is not None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kwargs["retry"] = Retry(NoBackoff(), retries)

    host, port = (endpoint["Address"], endpoint["Port"]) if isinstance(endpoint, dict) else endpoint
    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_connect_timeout", 3)
    kwargs.setdefault("socket_timeout", 10)
    if tls:
        from helpers.runtime import tls as labtls

        kwargs.update(labtls.redis_tls_client_kwargs(client_cert=False))
    return redis.Redis(host=host, port=port, **kwargs)


def cluster_at(endpoint: dict[str, Any], *, tls: bool = False, **kwargs: Any) -> Any:
    """A redis.cluster.RedisCluster from a configuration endpoint (cluster mode enabled); it follows
    ASK to a shard added after it started (the lab's subclass, see topologies.cluster)."""
    from helpers.runtime.topologies.cluster import _cluster_class

    kwargs.setdefault("decode_responses", True)
    if tls:
        from helpers.runtime import tls as labtls

        kwargs.update(labtls.redis_tls_client_kwargs(client_cert=False))
    return _cluster_class()(host=endpoint["Address"], port=endpoint["Port"], **kwargs)


def memcached_at(endpoint: dict[str, Any] | tuple[str, int], **kwargs: Any) -> Any:
    from pymemcache.client.base import Client

    host, port = (endpoint["Address"], endpoint["Port"]) if isinstance(endpoint, dict) else endpoint
    kwargs.setdefault("connect_timeout", 3)
    kwargs.setdefault("timeout", 5)
    return Client((host, port), **kwargs)


def discover_memcached(endpoint: dict[str, Any] | tuple[str, int], timeout: float = 5.0) -> tuple[int, list[tuple[str, int]]]:
    """Memcached Auto Discovery: send `config get cluster` to a configuration endpoint.

    Returns (config version, [(ip, port) of every node]). The version grows by one each time a
    node is added or removed; a client polls it (the AWS cluster clients do every 60 s) and
    rebuilds its node list when it changes.
    """
    import socket

    host, port = (endpoint["Address"], endpoint["Port"]) if isinstance(endpoint, dict) else endpoint
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(b"config get cluster\r\n")
        data = b""
        while not data.endswith((b"END\r\n", b"ERROR\r\n")):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"CONFIG cluster"):
        raise LabError(f"{host}:{port} did not answer `config get cluster` ({data[:40]!r}): is it the cluster's "
                       "ConfigurationEndpoint? Plain memcached nodes do not know that command.")
    return parse_config_reply(data)


def parse_config_reply(data: bytes) -> tuple[int, list[tuple[str, int]]]:
    """(version, [(ip, port), ...]) from a `config get cluster` reply:

    CONFIG cluster 0 <bytes>\\r\\n <version>\\n <host>|<ip>|<port> <host>|<ip>|<port> ...\\n \\r\\n END\\r\\n
    """
    lines = data.decode().split("\n")
    if len(lines) < 3 or not lines[0].startswith("CONFIG cluster"):
        raise LabError(f"Not a `config get cluster` reply: {data[:60]!r}")
    nodes = []
    for item in lines[2].split():
        _host, ip, port = item.split("|")
        nodes.append((ip, int(port)))
    return int(lines[1].strip()), nodes


def run_cli(command: str, timeout: float = 120.0) -> dict[str, Any]:
    """Run an `aws ...` command line (as printed in AWS's docs) against the local endpoint; its JSON.

    The command runs in bash with the lab's AWS environment (local endpoint, fake credentials), and
    with this Python's bin directory first on PATH, where pip installed the AWS CLI.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    from helpers.aws import endpoint as localaws

    env = {**os.environ, **localaws.env(localaws.endpoint())}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise LabError(f"The AWS CLI failed: {out.stderr.strip() or out.stdout.strip()}")
    import json

    return json.loads(out.stdout) if out.stdout.strip() else {}


def cleanup(ec: Any, prefix: str, names: tuple[str, ...] = (), timeout: float = 120.0,
            progress: bool | None = None) -> list[str]:
    """Delete every resource whose id starts with `prefix` (a crashed run's leftovers too); returns them.

    Replication groups and cache clusters first (waiting until they are gone, which stops their
    engines), then snapshots, user groups, users and parameter groups. `names` adds exact ids.
    A long clean-up shows one status line in a notebook (`progress`, as for wait_for).
    """
    with waiting(_("the deletion of {prefix}* resources", prefix=prefix), show=progress) as line:
        return _cleanup(ec, prefix, names, timeout, line)


def _cleanup(ec: Any, prefix: str, names: tuple[str, ...], timeout: float, line: waiting) -> list[str]:
    from botocore.exceptions import ClientError

    gone: list[str] = []

    def quiet(fn: Any, **kw: Any) -> bool:
        try:
            fn(**kw)
            return True
        except ClientError:
            return False

    groups = [g["ReplicationGroupId"] for g in ec.describe_replication_groups()["ReplicationGroups"]
              if g["ReplicationGroupId"].startswith(prefix) or g["ReplicationGroupId"] in names]
    clusters = [c["CacheClusterId"] for c in ec.describe_cache_clusters(
        ShowCacheClustersNotInReplicationGroups=True)["CacheClusters"]
        if c["CacheClusterId"].startswith(prefix) or c["CacheClusterId"] in names]
    for gid in groups:
        line.detail = gid
        with contextlib.suppress(LabError, ClientError):
            wait_until_settled(ec, replication_group_id=gid, timeout=timeout)
        quiet(ec.delete_replication_group, ReplicationGroupId=gid)
    for cid in clusters:
        line.detail = cid
        with contextlib.suppress(LabError, ClientError):
            wait_until_settled(ec, cache_cluster_id=cid, timeout=timeout)
        quiet(ec.delete_cache_cluster, CacheClusterId=cid)
    for gid in groups:
        line.detail = gid
        wait_deleted(ec, replication_group_id=gid, timeout=timeout, progress=False)
        gone.append(gid)
    for cid in clusters:
        line.detail = cid
        wait_deleted(ec, cache_cluster_id=cid, timeout=timeout, progress=False)
        gone.append(cid)
    line.detail = "snapshots, users, parameter and subnet groups"
    for s in ec.describe_snapshots()["Snapshots"]:
        if s["SnapshotName"].startswith(prefix) and quiet(ec.delete_snapshot, SnapshotName=s["SnapshotName"]):
            gone.append(s["SnapshotName"])
    for ug in ec.describe_user_groups()["UserGroups"]:
        if ug["UserGroupId"].startswith(prefix) and quiet(ec.delete_user_group, UserGroupId=ug["UserGroupId"]):
            gone.append(ug["UserGroupId"])
    for u in ec.describe_users()["Users"]:
        if u["UserId"].startswith(prefix) and quiet(ec.delete_user, UserId=u["UserId"]):
            gone.append(u["UserId"])
    for pg in ec.describe_cache_parameter_groups()["CacheParameterGroups"]:
        name = pg["CacheParameterGroupName"]
        if name.startswith(prefix) and quiet(ec.delete_cache_parameter_group, CacheParameterGroupName=name):
            gone.append(name)
    for sg in ec.describe_cache_subnet_groups()["CacheSubnetGroups"]:
        name = sg["CacheSubnetGroupName"]
        if name.startswith(prefix) and quiet(ec.delete_cache_subnet_group, CacheSubnetGroupName=name):
            gone.append(name)
    return gone


def wait_until_settled(ec: Any, *, cache_cluster_id: str | None = None, replication_group_id: str | None = None,
                       timeout: float = 120.0) -> str:
    """Wait while the resource is busy (creating, modifying, snapshotting...); returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        _item, current = _describe(ec, cache_cluster_id, replication_group_id)
        if current in ("available", "deleting") or current in FAILED or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


# --- which engine a lab asks the API for ------------------------------------------------------------

def lab_engine() -> str:
    """The key-value engine the labs name in API calls (`Engine=`): the one the lab runs
    (ELASTICACHE_LAB_ENGINE, else Valkey where installed, else Redis OSS)."""
    from helpers.runtime import engines

    return engines.selected_engine_name()


def engine_family(engine: str | None = None) -> str:
    """The parameter-group family of the version the local API runs for `engine` (default: lab_engine()),
    e.g. 'valkey9' for valkey-server 9.1.2, 'redis7' for redis-server 7.0.15."""
    from helpers.aws import catalogue
    from helpers.runtime import engines

    engine = engine or lab_engine()
    offered = catalogue.offered_minors(engine)
    for e in sorted(engines.installed_engines(engine), key=lambda e: [int(x) for x in e.version.split(".")
                                                                       if x.isdigit()], reverse=True):
        minor = ".".join(e.version.split(".")[:2])
        if minor in offered:
            return catalogue.family_for(engine, minor)
    raise LabError(f"No {engines.TITLES[engine]} version that ElastiCache offers is installed here: "
                   f"{engines.install_hint(engine)}.")


def installed_engines() -> dict[str, str]:
    """engine -> the version the local API runs when a request names no version (installed engines only)."""
    from helpers.runtime import engines

    out = {}
    for name in engines.KV_ENGINES:
        with contextlib.suppress(LabError):
            family = engine_family(name)
            found = [e.version for e in engines.installed_engines(name)
                     if family == engine_family_of(name, e.version)]
            if found:
                out[name] = found[0]
    return out


def engine_family_of(engine: str, version: str) -> str | None:
    from helpers.aws import catalogue

    minor = ".".join(version.split(".")[:2])
    return catalogue.family_for(engine, minor) if minor in catalogue.offered_minors(engine) else None


def apply_pending() -> dict[str, list[str]]:
    """Apply every pending modification now: the local stand-in for the maintenance window
    (helpers.aws.endpoint.apply_pending; `python -m helpers aws apply-pending` on the command line)."""
    from helpers.aws.endpoint import apply_pending as apply

    return apply()
