"""Online migration from a self-hosted Redis OSS server, as AWS's user guide describes it.

"Starting migration": start-migration makes the group's primary node a replica of the server named in
--customer-node-endpoint-list; the group goes `migrating`, the data flows from the source, writes to the
group are refused, and the group's replicas follow its primary. "Completing the data migration":
complete-migration stops the replication and promotes the node (`available`, the event "Complete Migration
successful for <id>"). Errors as the API reference lists them. The oracle is the engines themselves,
asked with a plain Redis client; the self-hosted server is a real redis-server on loopback (a cache
cluster of the local endpoint, used only as a server at an address).
"""

from __future__ import annotations

import time

import pytest
import redis
from support import elasticache_fixture, error_of

from helpers.aws import client as cpc

ec = elasticache_fixture("mig-")


def _wait_status(ec, gid: str, status: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        g = ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]
        if g["Status"] == status:
            return g
        assert time.monotonic() < deadline, f"{gid} is {g['Status']}, not {status}"
        time.sleep(0.2)


def _eventually(probe, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.fixture(scope="module")
def made(ec):
    ec.create_cache_cluster(CacheClusterId="mig-source", Engine="redis", CacheNodeType="cache.t4g.micro",
                            NumCacheNodes=1)
    ec.create_replication_group(ReplicationGroupId="mig-target", ReplicationGroupDescription="migration target",
                                Engine="redis", CacheNodeType="cache.t4g.micro", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True, MultiAZEnabled=True)
    ec.create_replication_group(ReplicationGroupId="mig-single", ReplicationGroupDescription="no Multi-AZ",
                                Engine="redis", CacheNodeType="cache.t4g.micro", NumCacheClusters=1)
    cpc.wait_for(ec, cache_cluster_id="mig-source")
    cpc.wait_for(ec, replication_group_id="mig-target")
    cpc.wait_for(ec, replication_group_id="mig-single")
    cc = ec.describe_cache_clusters(CacheClusterId="mig-source", ShowCacheNodeInfo=True)["CacheClusters"][0]
    host, port = cpc.node_endpoints(cc)[0]
    return port, cpc.redis_at((host, port))


def test_refusals(ec, made):
    port, _ = made
    good = [{"Address": "127.0.0.1", "Port": port}]
    for endpoints in ([{"Address": "10.0.0.241", "Port": 6379}], good * 2, []):
        assert error_of(ec.start_migration, ReplicationGroupId="mig-target",
                        CustomerNodeEndpointList=endpoints)[0] == "InvalidParameterValue"
    with __import__("socket").socket() as s:  # a loopback port where nothing answers
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    code, msg, _ = error_of(ec.start_migration, ReplicationGroupId="mig-target",
                            CustomerNodeEndpointList=[{"Address": "127.0.0.1", "Port": free}])
    assert code == "InvalidParameterValue" and str(free) in msg
    assert error_of(ec.start_migration, ReplicationGroupId="mig-none",
                    CustomerNodeEndpointList=good)[0] == "ReplicationGroupNotFoundFault"
    assert error_of(ec.complete_migration, ReplicationGroupId="mig-target")[0] == "ReplicationGroupNotUnderMigrationFault"
    code, msg, _ = error_of(ec.start_migration, ReplicationGroupId="mig-single", CustomerNodeEndpointList=good)
    assert code == "InvalidParameterCombination" and "Multi-AZ" in msg  # AWS's prerequisite for the target
    assert _wait_status(ec, "mig-target", "available")  # nothing was started


def test_start_replicates_from_the_source_and_complete_promotes(ec, made):
    port, source = made
    source.mset({f"k:{i}": str(i) for i in range(200)})
    answer = ec.start_migration(ReplicationGroupId="mig-target",
                                CustomerNodeEndpointList=[{"Address": "127.0.0.1", "Port": port}])["ReplicationGroup"]
    assert answer["Status"] == "modifying" and answer["ReplicationGroupId"] == "mig-target"
    assert error_of(ec.start_migration, ReplicationGroupId="mig-target", CustomerNodeEndpointList=[
        {"Address": "127.0.0.1", "Port": port}])[0] == "ReplicationGroupAlreadyUnderMigrationFault"
    group = _wait_status(ec, "mig-target", "migrating")
    primary = cpc.redis_at(group["NodeGroups"][0]["PrimaryEndpoint"])
    assert primary.info("replication")["master_port"] == port  # the group's primary follows the source
    assert primary.get("k:42") == "42" and primary.dbsize() == 200
    with pytest.raises(redis.ReadOnlyError):  # "you can't write to the ElastiCache cluster"
        primary.set("x", "1")
    source.set("after-start", "flows")
    _eventually(lambda: primary.get("after-start") == "flows")
    reader = cpc.redis_at(group["NodeGroups"][0]["ReaderEndpoint"])  # the replica follows the group's primary
    _eventually(lambda: reader.get("after-start") == "flows")
    assert error_of(ec.delete_replication_group, ReplicationGroupId="mig-target")[0] == "InvalidReplicationGroupState"

    ec.complete_migration(ReplicationGroupId="mig-target")
    group = _wait_status(ec, "mig-target", "available")
    primary = cpc.redis_at(group["NodeGroups"][0]["PrimaryEndpoint"])
    assert primary.info("replication")["role"] == "master"
    assert primary.set("written-after", "1") and primary.get("k:7") == "7"
    source.set("after-complete", "stays")
    time.sleep(0.5)
    assert primary.get("after-complete") is None  # no longer replicating from the source
    events = [e["Message"] for e in ec.describe_events(SourceIdentifier="mig-target",
                                                       SourceType="replication-group")["Events"]]
    assert "Complete Migration successful for mig-target" in events
    assert error_of(ec.complete_migration, ReplicationGroupId="mig-target")[0] == "ReplicationGroupNotUnderMigrationFault"
    # the Sentinels watch the group again: a test failover promotes the replica
    before = next(m["CacheClusterId"] for m in group["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "primary")
    ec.test_failover(ReplicationGroupId="mig-target", NodeGroupId="0001")
    deadline = time.monotonic() + 90
    while True:
        group = ec.describe_replication_groups(ReplicationGroupId="mig-target")["ReplicationGroups"][0]
        now = [m["CacheClusterId"] for m in group["NodeGroups"][0]["NodeGroupMembers"] if m.get("CurrentRole") == "primary"]
        if group["Status"] == "available" and now and now[0] != before:
            break
        assert time.monotonic() < deadline, group["Status"]
        time.sleep(0.3)


def test_a_migration_resumes_after_a_stop_and_start(isolated_home):
    """The group's record says it migrates from the source: after `helpers stop`/`start` its primary follows the
    source again (the engines were restarted from the clean stop's files)."""
    from helpers.aws import endpoint as localaws
    from helpers.runtime import services

    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_cache_cluster(CacheClusterId="src", Engine="redis", CacheNodeType="cache.t4g.micro", NumCacheNodes=1)
    ec.create_replication_group(ReplicationGroupId="dst", ReplicationGroupDescription="d", Engine="redis",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=2, AutomaticFailoverEnabled=True,
                                MultiAZEnabled=True)
    cpc.wait_for(ec, cache_cluster_id="src")
    cpc.wait_for(ec, replication_group_id="dst")
    cc = ec.describe_cache_clusters(CacheClusterId="src", ShowCacheNodeInfo=True)["CacheClusters"][0]
    host, port = cpc.node_endpoints(cc)[0]
    cpc.redis_at((host, port)).set("seed", "1")
    ec.start_migration(ReplicationGroupId="dst", CustomerNodeEndpointList=[{"Address": host, "Port": port}])
    _wait_status(ec, "dst", "migrating")
    services.stop()
    services.start("aws")
    ec = localaws.client("elasticache")
    group = _wait_status(ec, "dst", "migrating", timeout=120)
    primary = cpc.redis_at(group["NodeGroups"][0]["PrimaryEndpoint"])
    cc = ec.describe_cache_clusters(CacheClusterId="src", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert primary.info("replication")["master_port"] == cpc.node_endpoints(cc)[0][1]
    _eventually(lambda: primary.get("seed") == "1", timeout=60)
