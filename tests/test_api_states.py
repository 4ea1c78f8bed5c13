"""The states and fields the local ElastiCache API answers, held against AWS's documented examples.

Each oracle is AWS's own text: the AWS CLI's elasticache examples (aws-cli repository,
awscli/examples/elasticache/*.rst) and the ElastiCache User Guide, cited at each test. The tests
send real requests with boto3 to the local endpoint and read the engines with real clients.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws


@pytest.fixture(scope="module")
def ec():
    client = localaws.client("elasticache")
    yield client
    cpc.cleanup(localaws.client("elasticache"), "st-")


def code_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"]


def until(fn, timeout: float = 60.0, what: str = "a state"):
    """Poll fn until it returns something true; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- reboot-cache-cluster of a primary without automatic failover ------------------------------------

def test_reboot_primary_without_failover_restarts_it_in_its_role(ec):
    """reboot-cache-cluster.rst answers "CacheClusterStatus": "rebooting cache cluster nodes" for a member
    (my-cluster-001 of my-cluster); the Rebooting page: the cluster "flushes all its data and restarts its
    engine", so the primary comes back empty, in its role, and its replica resyncs from it."""
    ec.create_replication_group(ReplicationGroupId="st-rb", ReplicationGroupDescription="reboot",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=2, AutomaticFailoverEnabled=False)
    g = cpc.wait_for(ec, replication_group_id="st-rb")
    roles = {m["CacheClusterId"]: m["CurrentRole"] for m in g["NodeGroups"][0]["NodeGroupMembers"]}
    primary_id = next(c for c, r in roles.items() if r == "primary")
    replica_id = next(c for c, r in roles.items() if r == "replica")
    primary = cpc.redis_at(g["NodeGroups"][0]["PrimaryEndpoint"])
    primary.set("before", "reboot")
    primary.wait(1, 2000)

    out = ec.reboot_cache_cluster(CacheClusterId=primary_id, CacheNodeIdsToReboot=["0001"])["CacheCluster"]
    assert out["CacheClusterStatus"] == "rebooting cache cluster nodes"
    assert out["ReplicationGroupId"] == "st-rb"
    g = cpc.wait_for(ec, replication_group_id="st-rb", timeout=60)
    assert g["Status"] == "available"
    members = {m["CacheClusterId"]: m for m in g["NodeGroups"][0]["NodeGroupMembers"]}
    assert members[primary_id]["CurrentRole"] == "primary" and members[replica_id]["CurrentRole"] == "replica"
    messages = [e["Message"] for e in ec.describe_events(SourceIdentifier="st-rb")["Events"]]
    assert not [m for m in messages if "failed" in m.lower()], messages
    rebooted = cpc.redis_at(members[primary_id]["ReadEndpoint"])
    assert rebooted.info("replication")["role"] == "master"
    assert rebooted.get("before") is None  # no persistence: the rebooted node's data is lost
    rebooted.set("after", "reboot")
    rebooted.wait(1, 5000)
    replica = cpc.redis_at(members[replica_id]["ReadEndpoint"])
    until(lambda: replica.get("after") == "reboot", 20, "the replica to follow the rebooted primary")
    assert replica.get("before") is None  # resynced from the restarted primary
    ec.delete_replication_group(ReplicationGroupId="st-rb")
