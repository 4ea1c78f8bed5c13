"""The local ElastiCache API drives real engines: every endpoint it returns answers.

These tests talk to the moto server (started in this run's own state directory) with boto3 and
the AWS CLI, then to the engines with real Redis/Memcached clients, and check the processes.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import code_of, elasticache_fixture

import helpers
from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

AWS_CLI = str(Path(sys.executable).parent / "aws")


ec = elasticache_fixture("t-")


def aws_services() -> dict[str, helpers.Service]:
    return {s.name: s for s in helpers.status() if s.name.startswith("aws-")}


def settled(ec, group_id: str, since) -> dict:
    """wait_for(available), and say why when the operation failed (a failed change leaves the group
    available with its old shape, as on AWS: only the events tell)."""
    g = cpc.wait_for(ec, replication_group_id=group_id)
    failed = [e["Message"] for e in ec.describe_events(SourceIdentifier=group_id, StartTime=since)["Events"]
              if "failed" in e["Message"].lower()]
    assert not failed, f"{group_id}: {failed}"
    return g


def pids_of(prefix: str) -> list[int]:
    return [n.pid for name, s in aws_services().items() if name.startswith(prefix) for n in s.nodes]


def gone(pids: list[int]) -> bool:
    import psutil

    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


# --- cache clusters --------------------------------------------------------------------------------

def test_redis_cache_cluster_lifecycle(ec):
    out = ec.create_cache_cluster(CacheClusterId="t-redis", Engine="redis", CacheNodeType="cache.t3.micro",
                                  NumCacheNodes=1, Tags=[{"Key": "team", "Value": "lab"}])
    assert out["CacheCluster"]["CacheClusterStatus"] == "creating"
    cc = cpc.wait_for(ec, cache_cluster_id="t-redis")
    [(host, port)] = cpc.node_endpoints(cc)
    assert host == "127.0.0.1"
    r = cpc.redis_at((host, port))
    assert r.ping() and r.set("k", "v") and r.get("k") == "v"
    assert "aws-t-redis" in aws_services()
    arn = cc["ARN"]
    assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "team", "Value": "lab"}]
    ec.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "env", "Value": "dev"}])
    ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["team"])
    assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "env", "Value": "dev"}]
    pids = pids_of("aws-t-redis")
    assert ec.delete_cache_cluster(CacheClusterId="t-redis")["CacheCluster"]["CacheClusterStatus"] == "deleting"
    cpc.wait_deleted(ec, cache_cluster_id="t-redis")
    assert gone(pids) and "aws-t-redis" not in aws_services()
    messages = [e["Message"] for e in ec.describe_events(SourceIdentifier="t-redis")["Events"]]
    assert "Cache cluster created" in messages and "Cache cluster deleted" in messages


def test_memcached_nodes_scale_out_and_in(ec):
    ec.create_cache_cluster(CacheClusterId="t-mc", Engine="memcached", CacheNodeType="cache.t3.micro",
                            NumCacheNodes=2, PreferredAvailabilityZone="us-east-1a")
    cc = cpc.wait_for(ec, cache_cluster_id="t-mc")
    eps = cpc.node_endpoints(cc)
    assert len(eps) == 2 and len(set(eps)) == 2
    for ep in eps:
        assert cpc.memcached_at(ep).version()
    cfg = cc["ConfigurationEndpoint"]
    assert cfg["Address"] == "127.0.0.1" and (cfg["Address"], cfg["Port"]) not in eps
    version, found = cpc.discover_memcached(cfg)        # Auto Discovery: every node from one address
    assert version == 1 and found == eps
    via_cfg = cpc.memcached_at(cfg, default_noreply=False)  # other commands reach node 0001, as on AWS
    assert via_cfg.version() and via_cfg.set("t-mc:k", b"v") and cpc.memcached_at(eps[0]).get("t-mc:k") == b"v"
    ec.modify_cache_cluster(CacheClusterId="t-mc", NumCacheNodes=3, ApplyImmediately=True)
    cc = cpc.wait_for(ec, cache_cluster_id="t-mc")
    assert [n["CacheNodeId"] for n in cc["CacheNodes"]] == ["0001", "0002", "0003"]
    assert all(cpc.memcached_at(ep).version() for ep in cpc.node_endpoints(cc))
    assert cpc.discover_memcached(cfg) == (2, cpc.node_endpoints(cc))   # the new node shows up, version + 1
    with pytest.raises(helpers.LabError, match="config get cluster"):
        cpc.discover_memcached(eps[0])                   # a plain node does not know the command
    assert code_of(ec.modify_cache_cluster, CacheClusterId="t-mc", NumCacheNodes=1,
                   CacheNodeIdsToRemove=["0002"], ApplyImmediately=True) == "InvalidParameterValue"
    pid_0002 = pids_of("aws-t-mc-0002")
    ec.modify_cache_cluster(CacheClusterId="t-mc", NumCacheNodes=2, CacheNodeIdsToRemove=["0002"],
                            ApplyImmediately=True)
    cc = cpc.wait_for(ec, cache_cluster_id="t-mc")
    assert [n["CacheNodeId"] for n in cc["CacheNodes"]] == ["0001", "0003"] and gone(pid_0002)
    assert cpc.discover_memcached(cfg) == (3, cpc.node_endpoints(cc))
    pids = pids_of("aws-t-mc")
    ec.delete_cache_cluster(CacheClusterId="t-mc")
    cpc.wait_deleted(ec, cache_cluster_id="t-mc")
    assert gone(pids) and not [n for n in aws_services() if n.startswith("aws-t-mc")]
    with pytest.raises(OSError):
        cpc.discover_memcached(cfg, timeout=2)          # the configuration endpoint went with the cluster


def test_error_codes(ec):
    base = {"CacheNodeType": "cache.t3.micro", "Engine": "redis"}
    assert code_of(ec.describe_cache_clusters, CacheClusterId="t-nope") == "CacheClusterNotFound"
    assert code_of(ec.delete_cache_cluster, CacheClusterId="t-nope") == "CacheClusterNotFound"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", Engine="redis") == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="1bad", **base) == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t--x", **base) == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", NumCacheNodes=2, **base) == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", Engine="mongodb",
                   CacheNodeType="cache.t3.micro") == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", EngineVersion="5.0", **base) == \
        "InvalidParameterCombination"  # AWS: "Cannot find version 5.0 for redis"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", AuthToken="a" * 20, **base) == \
        "InvalidParameterValue"  # an AUTH token needs encryption in transit
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", SnapshotName="t-none", **base) == \
        "SnapshotNotFoundFault"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", CacheParameterGroupName="t-none", **base) == \
        "CacheParameterGroupNotFound"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", CacheSubnetGroupName="t-none", **base) == \
        "CacheSubnetGroupNotFoundFault"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-x", Engine="memcached",
                   CacheNodeType="cache.t3.micro", NumCacheNodes=41) == "NodeQuotaForClusterExceeded"
    assert code_of(ec.describe_replication_groups, ReplicationGroupId="t-nope") == "ReplicationGroupNotFoundFault"
    assert code_of(ec.test_failover, ReplicationGroupId="t-nope", NodeGroupId="0001") == \
        "ReplicationGroupNotFoundFault"
    assert code_of(ec.create_replication_group, ReplicationGroupId="t-x", ReplicationGroupDescription="d",
                   NumCacheClusters=1, AutomaticFailoverEnabled=True) == "InvalidParameterCombination"
    assert code_of(ec.create_replication_group, ReplicationGroupId="t-x", ReplicationGroupDescription="d",
                   NumCacheClusters=2, UserGroupIds=["t-none"]) == "InvalidParameterCombination"
    assert code_of(ec.describe_snapshots, SnapshotName="t-none") == "SnapshotNotFoundFault"
    assert code_of(ec.describe_users, UserId="t-none") == "UserNotFound"
    assert code_of(ec.describe_user_groups, UserGroupId="t-none") == "UserGroupNotFound"
    assert code_of(ec.create_user, UserId="t-u", UserName="u", Engine="redis", AccessString="on ~* +@all",
                   Passwords=["short"]) == "InvalidParameterValue"
    assert code_of(ec.create_user_group, UserGroupId="t-g", Engine="redis", UserIds=["t-none"]) == "UserNotFound"
    assert code_of(ec.modify_cache_parameter_group, CacheParameterGroupName="default.redis7",
                   ParameterNameValues=[{"ParameterName": "timeout", "ParameterValue": "30"}]) == \
        "InvalidCacheParameterGroupState"
    assert code_of(ec.list_tags_for_resource, ResourceName="arn:aws:elasticache:us-east-1:123456789012:cluster:t-no") \
        == "CacheClusterNotFound"
    assert not [n for n in aws_services() if n.startswith("aws-t-x")]


def test_busy_cluster_answers_invalid_state(ec):
    # Ten nodes start one after the other: long enough to catch the cluster while it is creating.
    ec.create_cache_cluster(CacheClusterId="t-busy", Engine="memcached", CacheNodeType="cache.t3.micro",
                            NumCacheNodes=10)
    assert code_of(ec.delete_cache_cluster, CacheClusterId="t-busy") == "InvalidCacheClusterState"
    assert code_of(ec.create_cache_cluster, CacheClusterId="t-busy", Engine="redis",
                   CacheNodeType="cache.t3.micro") == "CacheClusterAlreadyExists"
    cc = cpc.wait_for(ec, cache_cluster_id="t-busy")
    assert len(cpc.node_endpoints(cc)) == 10
    ec.delete_cache_cluster(CacheClusterId="t-busy")
    cpc.wait_deleted(ec, cache_cluster_id="t-busy")


# --- parameter groups and snapshots ----------------------------------------------------------------

def test_parameter_group_applies_with_config_set(ec):
    ec.create_cache_parameter_group(CacheParameterGroupName="t-params", CacheParameterGroupFamily="redis7",
                                    Description="lab")
    ec.modify_cache_parameter_group(CacheParameterGroupName="t-params", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lfu"}])
    assert code_of(ec.modify_cache_parameter_group, CacheParameterGroupName="t-params", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "sometimes"}]) == "InvalidParameterValue"
    params = {p["ParameterName"]: p for p in ec.describe_cache_parameters(
        CacheParameterGroupName="t-params")["Parameters"]}
    assert params["maxmemory-policy"]["ParameterValue"] == "allkeys-lfu" and params["maxmemory-policy"][
        "Source"] == "user"
    ec.create_cache_cluster(CacheClusterId="t-pg", Engine="redis", CacheNodeType="cache.t3.micro",
                            CacheParameterGroupName="t-params")
    r = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="t-pg"))[0])
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lfu"
    ec.modify_cache_parameter_group(CacheParameterGroupName="t-params", ParameterNameValues=[
        {"ParameterName": "timeout", "ParameterValue": "120"}])
    assert r.config_get("timeout")["timeout"] == "120"  # applied to the running node
    ec.reboot_cache_cluster(CacheClusterId="t-pg", CacheNodeIdsToReboot=["0001"])
    r = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="t-pg"))[0])
    assert r.config_get("timeout")["timeout"] == "120"  # still there after a restart
    ec.reset_cache_parameter_group(CacheParameterGroupName="t-params", ResetAllParameters=True)
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"
    assert code_of(ec.delete_cache_parameter_group, CacheParameterGroupName="t-params") == \
        "InvalidCacheParameterGroupState"  # still in use
    ec.delete_cache_cluster(CacheClusterId="t-pg")
    cpc.wait_deleted(ec, cache_cluster_id="t-pg")
    ec.delete_cache_parameter_group(CacheParameterGroupName="t-params")


def test_snapshot_is_a_real_rdb_and_restores(ec):
    ec.create_cache_cluster(CacheClusterId="t-src", Engine="redis", CacheNodeType="cache.t3.micro")
    r = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="t-src"))[0])
    r.set("greeting", "hola")
    r.set("session", "s", ex=600)
    ec.create_snapshot(CacheClusterId="t-src", SnapshotName="t-snap")
    assert ec.describe_cache_clusters(CacheClusterId="t-src")["CacheClusters"][0]["CacheClusterStatus"] in (
        "snapshotting", "available")
    cpc.wait_for(ec, cache_cluster_id="t-src")
    snap = ec.describe_snapshots(SnapshotName="t-snap")["Snapshots"][0]
    assert snap["SnapshotStatus"] == "available" and snap["CacheClusterId"] == "t-src"
    rdb = helpers.home() / "aws-snapshots" / "t-snap" / "0001.rdb"
    assert rdb.read_bytes()[:5] == b"REDIS"
    assert code_of(ec.create_snapshot, CacheClusterId="t-src", SnapshotName="t-snap") == "SnapshotAlreadyExistsFault"
    ec.create_cache_cluster(CacheClusterId="t-restored", Engine="redis", CacheNodeType="cache.t3.micro",
                            SnapshotName="t-snap")
    r2 = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="t-restored"))[0])
    assert r2.get("greeting") == "hola" and 0 < r2.ttl("session") <= 600
    for cid in ("t-src", "t-restored"):
        ec.delete_cache_cluster(CacheClusterId=cid)
    for cid in ("t-src", "t-restored"):
        cpc.wait_deleted(ec, cache_cluster_id=cid)
    ec.delete_snapshot(SnapshotName="t-snap")
    assert not rdb.exists()


# --- replication groups ----------------------------------------------------------------------------

def test_cluster_mode_disabled_failover_and_replicas(ec):
    ec.create_replication_group(ReplicationGroupId="t-rg", ReplicationGroupDescription="lab", Engine="redis",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=2, AutomaticFailoverEnabled=True)
    g = cpc.wait_for(ec, replication_group_id="t-rg")
    ng = g["NodeGroups"][0]
    primary = cpc.redis_at(ng["PrimaryEndpoint"])
    primary.set("k", "v")
    primary.wait(1, 2000)
    assert cpc.redis_at(ng["ReaderEndpoint"]).get("k") == "v"
    assert g["MemberClusters"] == ["t-rg-001", "t-rg-002"]
    roles = {m["CacheClusterId"]: m["CurrentRole"] for m in ng["NodeGroupMembers"]}
    assert roles == {"t-rg-001": "primary", "t-rg-002": "replica"}
    for m in ng["NodeGroupMembers"]:
        assert cpc.redis_at(m["ReadEndpoint"]).ping()
    member = ec.describe_cache_clusters(CacheClusterId="t-rg-002", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert member["ReplicationGroupId"] == "t-rg" and cpc.redis_at(cpc.node_endpoints(member)[0]).ping()

    ec.test_failover(ReplicationGroupId="t-rg", NodeGroupId="0001")
    g = cpc.wait_for(ec, replication_group_id="t-rg")
    roles = {m["CacheClusterId"]: m["CurrentRole"] for m in g["NodeGroups"][0]["NodeGroupMembers"]}
    assert roles == {"t-rg-001": "replica", "t-rg-002": "primary"}
    new_primary = cpc.redis_at(g["NodeGroups"][0]["PrimaryEndpoint"])
    assert new_primary.get("k") == "v" and new_primary.info("replication")["role"] == "master"
    assert code_of(ec.test_failover, ReplicationGroupId="t-rg", NodeGroupId="0009") == "NodeGroupNotFoundFault"

    ec.reboot_cache_cluster(CacheClusterId="t-rg-001", CacheNodeIdsToReboot=["0001"])  # now a replica
    g = cpc.wait_for(ec, replication_group_id="t-rg")
    rebooted = next(m for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CacheClusterId"] == "t-rg-001")
    assert cpc.redis_at(rebooted["ReadEndpoint"]).get("k") == "v"  # restarted and synced again

    ec.increase_replica_count(ReplicationGroupId="t-rg", NewReplicaCount=2, ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="t-rg")
    assert len(g["MemberClusters"]) == 3
    for m in g["NodeGroups"][0]["NodeGroupMembers"]:
        assert cpc.redis_at(m["ReadEndpoint"]).ping()
    ec.decrease_replica_count(ReplicationGroupId="t-rg", NewReplicaCount=1, ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="t-rg")
    assert len(g["MemberClusters"]) == 2
    assert code_of(ec.decrease_replica_count, ReplicationGroupId="t-rg", NewReplicaCount=0,
                   ApplyImmediately=True) == "InvalidParameterCombination"  # failover needs a replica
    messages = [e["Message"] for e in ec.describe_events(SourceIdentifier="t-rg")["Events"]]
    assert any("to replica node" in m and "completed" in m for m in messages)
    assert any("replica count" in m for m in messages)

    pids = pids_of("aws-rg-t-rg")
    assert len(pids) == 2 + 3  # two data nodes and three Sentinels
    ec.delete_replication_group(ReplicationGroupId="t-rg")
    cpc.wait_deleted(ec, replication_group_id="t-rg")
    assert gone(pids)


def test_cluster_mode_enabled_snapshot_restore(ec):
    ec.create_replication_group(ReplicationGroupId="t-cl", ReplicationGroupDescription="lab", Engine="redis",
                                CacheNodeType="cache.t3.micro", NumNodeGroups=2, ReplicasPerNodeGroup=1)
    g = cpc.wait_for(ec, replication_group_id="t-cl")
    assert g["ClusterEnabled"] and len(g["NodeGroups"]) == 2
    assert sorted(ng["Slots"] for ng in g["NodeGroups"]) == ["0-8191", "8192-16383"]
    rc = cpc.cluster_at(g["ConfigurationEndpoint"])
    for i in range(50):
        rc.set(f"user:{i}", i)
    assert rc.get("user:7") == "7"
    for m in ec.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]:
        if m.get("ReplicationGroupId") == "t-cl":
            assert cpc.redis_at(cpc.node_endpoints(m)[0]).ping()

    ec.test_failover(ReplicationGroupId="t-cl", NodeGroupId="0002")
    g = cpc.wait_for(ec, replication_group_id="t-cl")
    rc = cpc.cluster_at(g["ConfigurationEndpoint"])
    assert rc.get("user:7") == "7"

    ec.create_snapshot(ReplicationGroupId="t-cl", SnapshotName="t-cl-snap")
    cpc.wait_for(ec, replication_group_id="t-cl")
    snap = ec.describe_snapshots(SnapshotName="t-cl-snap")["Snapshots"][0]
    assert snap["SnapshotStatus"] == "available" and len(snap["NodeSnapshots"]) == 2
    # A cluster-mode snapshot restored into a cluster-mode-disabled group: keys are redistributed.
    ec.create_replication_group(ReplicationGroupId="t-cl-copy", ReplicationGroupDescription="restored",
                                Engine="redis", CacheNodeType="cache.t3.micro", SnapshotName="t-cl-snap")
    copy = cpc.wait_for(ec, replication_group_id="t-cl-copy")
    r = cpc.redis_at(copy["NodeGroups"][0]["PrimaryEndpoint"])
    assert r.dbsize() == 50 and r.get("user:42") == "42"

    # Online resharding: add a node group, then remove another one; every key stays readable.
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    ec.modify_replication_group_shard_configuration(ReplicationGroupId="t-cl", NodeGroupCount=3,
                                                    ApplyImmediately=True)
    g = settled(ec, "t-cl", since)
    assert len(g["NodeGroups"]) == 3 and all(ng["Slots"] for ng in g["NodeGroups"])
    rc = cpc.cluster_at(g["ConfigurationEndpoint"])
    assert all(rc.get(f"user:{i}") == str(i) for i in range(50))
    assert code_of(ec.modify_replication_group_shard_configuration, ReplicationGroupId="t-cl", NodeGroupCount=2,
                   ApplyImmediately=True) == "InvalidParameterValue"  # which node group goes?
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    ec.modify_replication_group_shard_configuration(ReplicationGroupId="t-cl", NodeGroupCount=2,
                                                    NodeGroupsToRemove=["0001"], ApplyImmediately=True)
    assert ec.describe_replication_groups(ReplicationGroupId="t-cl")["ReplicationGroups"][0]["Status"] == "modifying"
    g = settled(ec, "t-cl", since)
    assert sorted(ng["NodeGroupId"] for ng in g["NodeGroups"]) == ["0002", "0003"]
    rc = cpc.cluster_at(g["ConfigurationEndpoint"])
    assert all(rc.get(f"user:{i}") == str(i) for i in range(50))

    pids = pids_of("aws-rg-t-cl")
    for gid in ("t-cl", "t-cl-copy"):
        ec.delete_replication_group(ReplicationGroupId=gid)
    for gid in ("t-cl", "t-cl-copy"):
        cpc.wait_deleted(ec, replication_group_id=gid)
    assert gone(pids)
    ec.delete_snapshot(SnapshotName="t-cl-snap")


def test_users_and_user_groups_are_real_acl_users(ec):
    ec.create_user(UserId="t-default", UserName="default", Engine="redis", AccessString="off -@all",
                   NoPasswordRequired=True)
    ec.create_user(UserId="t-app", UserName="t-app", Engine="redis", AccessString="on ~app:* +@all",
                   Passwords=["app-password-0123456789"])
    ec.create_user(UserId="t-ro", UserName="t-ro", Engine="redis", AccessString="on ~* +@read",
                   Passwords=["ro-password-0123456789"])
    ec.create_user(UserId="t-app2", UserName="t-app", Engine="redis", AccessString="on",  # a user name twice:
                   NoPasswordRequired=True)  # allowed (describe-users.rst), though not in one user group
    assert code_of(ec.create_user_group, UserGroupId="t-ug", Engine="redis",
                   UserIds=["t-default", "t-app", "t-app2"]) == "DuplicateUserName"
    assert code_of(ec.create_user_group, UserGroupId="t-ug", Engine="redis", UserIds=["t-app"]) == \
        "DefaultUserRequired"
    ec.create_user_group(UserGroupId="t-ug", Engine="redis", UserIds=["t-default", "t-app"])
    ec.create_replication_group(ReplicationGroupId="t-rbac", ReplicationGroupDescription="rbac", Engine="redis",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=1,
                                TransitEncryptionEnabled=True, UserGroupIds=["t-ug"])
    g = cpc.wait_for(ec, replication_group_id="t-rbac")
    assert g["UserGroupIds"] == ["t-ug"] and g["TransitEncryptionEnabled"]
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    app = cpc.redis_at(ep, tls=True, username="t-app", password="app-password-0123456789")
    assert app.set("app:1", "x") and app.get("app:1") == "x"
    import redis

    with pytest.raises(redis.exceptions.NoPermissionError):
        app.set("other", "x")
    with pytest.raises(redis.exceptions.AuthenticationError):
        cpc.redis_at(ep, tls=True, retries=0).ping()  # the default user is off
    with pytest.raises(redis.exceptions.ConnectionError):
        cpc.redis_at(ep, socket_timeout=1, retries=0).ping()  # plaintext is refused: the node only speaks TLS

    ec.modify_user_group(UserGroupId="t-ug", UserIdsToAdd=["t-ro"])
    time.sleep(0.5)
    ro = cpc.redis_at(ep, tls=True, username="t-ro", password="ro-password-0123456789")
    assert ro.get("app:1") == "x"
    with pytest.raises(redis.exceptions.NoPermissionError):
        ro.set("app:1", "y")
    ec.modify_user(UserId="t-ro", AccessString="on ~* +@read +@write")
    deadline = time.monotonic() + 20  # modifying until the engines have the new rules, then active
    while ec.describe_users(UserId="t-ro")["Users"][0]["Status"] != "active" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ro.set("app:2", "y")
    assert code_of(ec.delete_user_group, UserGroupId="t-ug") == "InvalidUserGroupState"
    assert ec.describe_user_groups(UserGroupId="t-ug")["UserGroups"][0]["ReplicationGroups"] == ["t-rbac"]
    ec.delete_replication_group(ReplicationGroupId="t-rbac")
    cpc.wait_deleted(ec, replication_group_id="t-rbac")
    ec.delete_user_group(UserGroupId="t-ug")
    for uid in ("t-default", "t-app", "t-app2", "t-ro"):
        ec.delete_user(UserId=uid)


def test_auth_token_with_tls(ec):
    token = "lab-token-0123456789abcdef"
    ec.create_cache_cluster(CacheClusterId="t-tok", Engine="redis", CacheNodeType="cache.t3.micro",
                            TransitEncryptionEnabled=True, AuthToken=token)
    cc = cpc.wait_for(ec, cache_cluster_id="t-tok")
    assert cc["AuthTokenEnabled"] and cc["TransitEncryptionEnabled"]
    ep = cpc.node_endpoints(cc)[0]
    assert cpc.redis_at(ep, tls=True, password=token).ping()
    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        cpc.redis_at(ep, tls=True, retries=0).set("k", "v")
    svc = aws_services()["aws-t-tok"]
    assert all(token not in " ".join(n.argv) for n in svc.nodes)  # never on a command line
    ec.delete_cache_cluster(CacheClusterId="t-tok")
    cpc.wait_deleted(ec, cache_cluster_id="t-tok")


# --- the AWS CLI, reset and stop -------------------------------------------------------------------

def _cli_env() -> dict[str, str]:
    env = {**os.environ, **localaws.env(localaws.endpoint())}
    out = subprocess.run([sys.executable, "-m", "helpers", "env"], capture_output=True, text=True, env=env,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value.strip("'\"")
    return env


def aws(*args: str, env: dict[str, str]) -> dict:
    out = subprocess.run([AWS_CLI, "elasticache", *args], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_aws_cli_seed_commands(ec):
    env = _cli_env()
    aws("create-cache-cluster", "--cache-cluster-id", "t-cli-redis", "--engine", "redis",
        "--cache-node-type", "cache.t3.micro", "--num-cache-nodes", "1",
        "--preferred-availability-zone", "us-east-1a", env=env)
    aws("create-cache-cluster", "--cache-cluster-id", "t-cli-mc", "--engine", "memcached",
        "--cache-node-type", "cache.t3.micro", "--num-cache-nodes", "2",
        "--preferred-availability-zone", "us-east-1a", env=env)
    # (`aws elasticache wait cache-cluster-available` works too, but polls only every 15 s)
    cpc.wait_for(ec, cache_cluster_id="t-cli-redis")
    cpc.wait_for(ec, cache_cluster_id="t-cli-mc")
    found = aws("describe-cache-clusters", "--show-cache-node-info", env=env)["CacheClusters"]
    by_id = {c["CacheClusterId"]: c for c in found}
    for ep in cpc.node_endpoints(by_id["t-cli-redis"]):
        assert cpc.redis_at(ep).ping()
    for ep in cpc.node_endpoints(by_id["t-cli-mc"]):
        assert cpc.memcached_at(ep).version()
    assert len(cpc.node_endpoints(by_id["t-cli-mc"])) == 2
    bad = subprocess.run([AWS_CLI, "elasticache", "describe-cache-clusters", "--cache-cluster-id", "t-cli-none"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "CacheClusterNotFound" in bad.stderr
    aws("delete-cache-cluster", "--cache-cluster-id", "t-cli-redis", env=env)
    aws("delete-cache-cluster", "--cache-cluster-id", "t-cli-mc", env=env)
    cpc.wait_deleted(ec, cache_cluster_id="t-cli-redis")
    cpc.wait_deleted(ec, cache_cluster_id="t-cli-mc")
    assert not [n for n in aws_services() if n.startswith("aws-t-cli")]


def test_metrics_published_to_cloudwatch(ec):
    import datetime as dt

    ec.create_cache_cluster(CacheClusterId="t-metrics", Engine="redis", CacheNodeType="cache.t3.micro")
    r = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="t-metrics"))[0])
    for i in range(42):
        r.set(f"m:{i}", i)
    cw = localaws.client("cloudwatch")
    dims = [{"Name": "CacheClusterId", "Value": "t-metrics"}, {"Name": "CacheNodeId", "Value": "0001"}]
    deadline = time.monotonic() + 30
    points: list = []
    while time.monotonic() < deadline:
        now = dt.datetime.now(dt.timezone.utc)
        points = cw.get_metric_statistics(Namespace="AWS/ElastiCache", MetricName="CurrItems", Dimensions=dims,
                                          StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(
                                              minutes=1), Period=60, Statistics=["Maximum"])["Datapoints"]
        if points and max(p["Maximum"] for p in points) == 42:
            break
        time.sleep(0.5)
    assert points and max(p["Maximum"] for p in points) == 42
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/ElastiCache", Dimensions=dims)["Metrics"]}
    assert {"CurrConnections", "BytesUsedForCache", "IsMaster"} <= names
    ec.delete_cache_cluster(CacheClusterId="t-metrics")
    cpc.wait_deleted(ec, cache_cluster_id="t-metrics")


def test_other_actions_answer_in_aws_terms(ec):
    versions = ec.describe_cache_engine_versions(Engine="redis")["CacheEngineVersions"]
    assert versions and versions[0]["CacheParameterGroupFamily"] == "redis7"
    assert ec.describe_serverless_caches()["ServerlessCaches"] == []
    assert ec.describe_global_replication_groups()["GlobalReplicationGroups"] == []  # none made in this module


def test_a_new_server_adopts_what_its_records_name_and_stops_the_rest(ec):
    from helpers.aws.controlplane import engineops  # noqa: F401 - registers the aws-redis topology

    ec.create_cache_cluster(CacheClusterId="t-kept", Engine="redis", CacheNodeType="cache.t3.micro")
    cpc.wait_for(ec, cache_cluster_id="t-kept")
    pids = pids_of("aws-t-kept")
    helpers.start("aws-redis", name="aws-t-orphan")  # an engine named like the API's that no resource names
    orphan = pids_of("aws-t-orphan")
    helpers.stop("aws")  # the engines keep running; the cluster's record is kept in the state directory
    assert not gone(pids) and not gone(orphan)
    fresh = localaws.client("elasticache")
    deadline = time.monotonic() + 60  # the new server cleans up in the background
    while not (gone(orphan) and "aws-t-orphan" not in aws_services()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(orphan) and "aws-t-orphan" not in aws_services()
    assert not gone(pids) and pids_of("aws-t-kept") == pids  # adopted: the same process, still recorded
    kept = fresh.describe_cache_clusters(CacheClusterId="t-kept")["CacheClusters"][0]
    assert kept["CacheClusterStatus"] == "available"
    fresh.delete_cache_cluster(CacheClusterId="t-kept")
    cpc.wait_deleted(fresh, cache_cluster_id="t-kept")


def test_moto_reset_stops_the_engines(ec):
    ec = localaws.client("elasticache")  # the endpoint was restarted by the test before
    ec.create_cache_cluster(CacheClusterId="t-reset", Engine="memcached", CacheNodeType="cache.t3.micro",
                            NumCacheNodes=2)
    cpc.wait_for(ec, cache_cluster_id="t-reset")
    pids = pids_of("aws-t-reset")
    assert len(pids) == 2
    localaws.reset()
    assert gone(pids) and not aws_services()
    assert ec.describe_cache_clusters()["CacheClusters"] == []



STOP_SCRIPT = """
import subprocess, sys, psutil
from helpers import status
from helpers.aws import endpoint as localaws
from helpers.aws import client as cpc
ec = localaws.client("elasticache")
ec.create_cache_cluster(CacheClusterId="t-stop", Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=2)
cpc.wait_for(ec, cache_cluster_id="t-stop")
pids = [n.pid for s in status() if s.name.startswith("aws-t-stop") for n in s.nodes]
assert len(pids) == 2
out = subprocess.run([sys.executable, "-m", "helpers", "stop"], capture_output=True, text=True, check=True).stdout
assert "aws-t-stop-0001" in out, out
assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
print("ok")
"""


def test_helpers_stop_stops_the_engines(tmp_path):
    # In a state directory of its own: `helpers stop` stops everything there, other tests' services too.
    env = {**os.environ, "ELASTICACHE_LAB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", STOP_SCRIPT], capture_output=True, text=True, env=env, timeout=180)
    subprocess.run([sys.executable, "-m", "helpers", "stop"], capture_output=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_importing_the_control_plane_package_changes_nothing():
    """Only the local AWS server installs it: install() stops engines its own model does not know."""
    import threading

    import helpers.aws.controlplane as plane

    assert not plane._INSTALLED
    assert not any(t.name == "controlplane-leftovers" for t in threading.enumerate())
