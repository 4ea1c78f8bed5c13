"""Lab 18's support code: a global datastore's two regions on the local endpoint, its lag, its clean-up.

Every "region" is the same local ElastiCache endpoint; a boto3 client's `region_name` (the CLI's
`--region`) says which region a call is for, and each replication group belongs to the region it was
created in. See helpers.aws.controlplane.models.global_datastore for what is real.
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws
from helpers.runtime.state import LabError
from helpers.runtime.waiting import poll_until

log = logging.getLogger(__name__)

PRIMARY_REGION = "us-east-1"
SECONDARY_REGION = "us-west-2"


def clients(*regions: str) -> list[Any]:
    """One ElastiCache client per region, all bound to the local endpoint."""
    return [localaws.client("elasticache", region_name=r) for r in regions or (PRIMARY_REGION, SECONDARY_REGION)]


def until(fn: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """fn()'s first true value, or a LabError after `timeout` seconds."""
    return poll_until(fn, timeout, interval, what, message="{what}: not reached within {timeout:.0f} s")


def describe(ec: Any, gid: str) -> dict[str, Any]:
    return ec.describe_global_replication_groups(GlobalReplicationGroupId=gid, ShowMemberInfo=True)[
        "GlobalReplicationGroups"][0]


def wait_available(ec: Any, gid: str, timeout: float = 90) -> dict[str, Any]:
    """The global datastore once it is available with every member associated (after create, failover...)."""
    def ready() -> dict[str, Any] | None:
        gds = describe(ec, gid)
        ok = gds["Status"] == "available" and all(m["Status"] == "associated" for m in gds.get("Members", []))
        return gds if ok else None

    return until(ready, timeout, f"global datastore {gid} available", interval=0.1)


def writable(r: Any) -> bool:
    """Whether a write through this client is accepted now (False: READONLY, or reconnecting)."""
    from redis.exceptions import RedisError

    try:
        r.set("lab18:probe", "1")
        return True
    except RedisError:  # the READONLY error, or a connection being re-established
        return False


def lag_samples(primary: Any, secondary: Any, n: int = 20, timeout: float = 5.0) -> list[float]:
    """n measurements (seconds) of the time a write on `primary` takes to be readable on `secondary`."""
    out = []
    for _ in range(n):
        key, value = f"lab18:lag:{uuid.uuid4().hex[:8]}", str(time.time())
        t0 = time.perf_counter()
        primary.set(key, value, ex=60)
        while secondary.get(key) is None:
            if time.perf_counter() - t0 > timeout:
                raise LabError(f"a write on the primary was not on the secondary after {timeout:.0f} s")
            time.sleep(0.0005)
        out.append(time.perf_counter() - t0)
    return out


def summary(samples: list[float]) -> str:
    ms = sorted(x * 1000 for x in samples)
    return f"median {statistics.median(ms):.2f} ms, max {ms[-1]:.2f} ms over {len(ms)} writes"


def cleanup(prefix: str, regions: tuple[str, ...] = (PRIMARY_REGION, SECONDARY_REGION)) -> list[str]:
    """Delete the global datastores whose suffix starts with `prefix` (secondaries disassociated first),
    then every replication group starting with `prefix` in each region; returns what went."""
    from botocore.exceptions import ClientError

    gone: list[str] = []
    ec = localaws.client("elasticache", region_name=regions[0])
    for gds in ec.describe_global_replication_groups(ShowMemberInfo=True)["GlobalReplicationGroups"]:
        gid = gds["GlobalReplicationGroupId"]
        if not gid.split("-", 1)[-1].startswith(prefix):
            continue
        try:
            gds = wait_available(ec, gid)
            for m in gds.get("Members", []):
                if m["Role"] == "SECONDARY":
                    ec.disassociate_global_replication_group(
                        GlobalReplicationGroupId=gid, ReplicationGroupId=m["ReplicationGroupId"],
                        ReplicationGroupRegion=m["ReplicationGroupRegion"])
                    wait_available(ec, gid)
            ec.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
            gone.append(gid)
        except ClientError:
            continue
    for region in regions:
        gone += cpc.cleanup(localaws.client("elasticache", region_name=region), prefix)
    return gone
