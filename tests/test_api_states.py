"""The states and fields the local ElastiCache API answers, held against AWS's documented examples.

Each oracle is AWS's own text: the AWS CLI's elasticache examples (aws-cli repository,
awscli/examples/elasticache/*.rst) and the ElastiCache User Guide, cited at each test. The tests
send real requests with boto3 to the local endpoint and read the engines with real clients.
"""

from __future__ import annotations

import contextlib
import re
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


# --- users and user groups: the transitional states of AWS's examples -------------------------------

def _user(ec, uid: str) -> dict:
    return ec.describe_users(UserId=uid)["Users"][0]


def _user_group(ec, gid: str) -> dict:
    return ec.describe_user_groups(UserGroupId=gid)["UserGroups"][0]


def test_user_groups_pass_through_creating_and_modifying(ec):
    """create-user-group.rst answers "Status": "creating"; modify-user-group.rst answers "modifying" with
    UserIds as they were and "PendingChanges": {"UserIdsToAdd": ["user1"]}; modify-user.rst answers
    "modifying"; describe-users.rst lists two users with one UserName ("myUser")."""
    ec.create_user(UserId="st-default", UserName="default", Engine="redis", AccessString="off -@all",
                   NoPasswordRequired=True)
    ec.create_user(UserId="st-user1", UserName="myuser", Engine="redis", AccessString="on ~* +@all",
                   Passwords=["user1-password-0123456789"])
    ec.create_user(UserId="st-user2", UserName="myuser", Engine="redis", AccessString="on ~app:* +@read",
                   Passwords=["user2-password-0123456789"])  # the same user name: allowed
    assert {_user(ec, "st-user1")["UserName"], _user(ec, "st-user2")["UserName"]} == {"myuser"}

    created = ec.create_user_group(UserGroupId="st-ug", Engine="redis", UserIds=["st-default"])
    assert created["Status"] == "creating" and created["PendingChanges"] == {}
    until(lambda: _user_group(ec, "st-ug")["Status"] == "active", 20, "the user group to be active")

    out = ec.modify_user_group(UserGroupId="st-ug", UserIdsToAdd=["st-user1"])
    assert out["Status"] == "modifying"
    assert out["UserIds"] == ["st-default"] and out["PendingChanges"] == {"UserIdsToAdd": ["st-user1"]}
    ug = until(lambda: (g := _user_group(ec, "st-ug"))["Status"] == "active" and g, 20, "the change applied")
    assert sorted(ug["UserIds"]) == ["st-default", "st-user1"] and not ug.get("PendingChanges")

    # A user group cannot hold two users with the same user name (DuplicateUserNameFault).
    assert code_of(ec.modify_user_group, UserGroupId="st-ug", UserIdsToAdd=["st-user2"]) == "DuplicateUserName"
    assert code_of(ec.create_user_group, UserGroupId="st-ug2", Engine="redis",
                   UserIds=["st-default", "st-user1", "st-user2"]) == "DuplicateUserName"

    out = ec.modify_user(UserId="st-user1", AppendAccessString="-flushall")
    assert out["Status"] == "modifying"
    until(lambda: _user(ec, "st-user1")["Status"] == "active", 20, "the user to be active")

    out = ec.modify_user_group(UserGroupId="st-ug", UserIdsToRemove=["st-user1"])
    assert out["Status"] == "modifying" and out["PendingChanges"] == {"UserIdsToRemove": ["st-user1"]}
    ug = until(lambda: (g := _user_group(ec, "st-ug"))["Status"] == "active" and g, 20, "the removal applied")
    assert ug["UserIds"] == ["st-default"]


def test_deleting_a_user_of_a_user_group(ec):
    """delete-user.rst deletes a user that belongs to "myusergroup": "Status": "deleting" with its
    "UserGroupIds"; the user then leaves the group, and its ACL user leaves the engines."""
    ec.create_user(UserId="st-d-default", UserName="default", Engine="redis", AccessString="off -@all",
                   NoPasswordRequired=True)
    ec.create_user(UserId="st-d-app", UserName="st-d-app", Engine="redis", AccessString="on ~* +@all",
                   Passwords=["app-password-0123456789"])
    ec.create_user_group(UserGroupId="st-d-ug", Engine="redis", UserIds=["st-d-default", "st-d-app"])
    until(lambda: _user_group(ec, "st-d-ug")["Status"] == "active", 20, "the user group to be active")
    ec.create_replication_group(ReplicationGroupId="st-d-rg", ReplicationGroupDescription="rbac",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=1,
                                TransitEncryptionEnabled=True, UserGroupIds=["st-d-ug"])
    g = cpc.wait_for(ec, replication_group_id="st-d-rg")
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    assert cpc.redis_at(ep, tls=True, username="st-d-app", password="app-password-0123456789").ping()

    # The group's default user cannot go while it is in the group.
    assert code_of(ec.delete_user, UserId="st-d-default") == "DefaultUserAssociatedToUserGroup"
    out = ec.delete_user(UserId="st-d-app")
    assert out["Status"] == "deleting" and out["UserGroupIds"] == ["st-d-ug"]

    def gone() -> bool:
        try:
            ec.describe_users(UserId="st-d-app")
        except ClientError as err:
            return err.response["Error"]["Code"] == "UserNotFound"
        return False

    until(gone, 30, "the user to be deleted")
    assert _user_group(ec, "st-d-ug")["UserIds"] == ["st-d-default"]
    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        cpc.redis_at(ep, tls=True, username="st-d-app", password="app-password-0123456789", retries=0).ping()
    ec.delete_replication_group(ReplicationGroupId="st-d-rg")
    cpc.wait_deleted(ec, replication_group_id="st-d-rg")


# --- global datastores ---------------------------------------------------------------------------------

def _global(ec, gid: str) -> dict:
    return ec.describe_global_replication_groups(GlobalReplicationGroupId=gid, ShowMemberInfo=True)[
        "GlobalReplicationGroups"][0]


def _settled(ec, gid: str) -> dict | None:
    gds = _global(ec, gid)
    return gds if gds["Status"] == "available" and all(m["Status"] == "associated" for m in gds["Members"]) else None


def test_global_datastore_creating_then_modifying(ec):
    """create-global-replication-group.rst answers "Status": "creating" with its primary member
    "associating"; modify-global-replication-group.rst answers "modifying"; both end available/associated."""
    ec.create_replication_group(ReplicationGroupId="st-gds", ReplicationGroupDescription="global",
                                CacheNodeType="cache.r7g.large", NumCacheClusters=1)
    cpc.wait_for(ec, replication_group_id="st-gds")
    gds = ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="st-gds",
                                             PrimaryReplicationGroupId="st-gds")["GlobalReplicationGroup"]
    gid = gds["GlobalReplicationGroupId"]
    try:
        assert gds["Status"] == "creating"
        assert [(m["ReplicationGroupId"], m["Role"], m["Status"]) for m in gds["Members"]] == \
            [("st-gds", "PRIMARY", "associating")]
        until(lambda: _settled(ec, gid), 30, "the global datastore to be available")

        out = ec.modify_global_replication_group(GlobalReplicationGroupId=gid, ApplyImmediately=True,
                                                 GlobalReplicationGroupDescription="orders")
        assert out["GlobalReplicationGroup"]["Status"] == "modifying"
        gds = until(lambda: _settled(ec, gid), 30, "the modification to finish")
        assert gds["GlobalReplicationGroupDescription"] == "orders"
    finally:
        until(lambda: _settled(ec, gid), 30, "the global datastore to settle")
        ec.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
        ec.delete_replication_group(ReplicationGroupId="st-gds")


# --- snapshots and the default network ------------------------------------------------------------------

def _default_network() -> tuple[str, str]:
    """(the default VPC, its default security group), as the local EC2 API lists them."""
    ec2 = localaws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                               {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    return vpc, sg["GroupId"]


def _snapshot(ec, name: str) -> dict:
    return ec.describe_snapshots(SnapshotName=name)["Snapshots"][0]


def test_default_subnet_group_and_security_group(ec):
    """Every account has a `default` cache subnet group in its default VPC (create-snapshot.rst shows
    "CacheSubnetGroupName": "default"); a cluster created without one is placed there, with the VPC's
    default security group (reboot-cache-cluster.rst: "SecurityGroups": [{"SecurityGroupId", "Status":
    "active"}])."""
    vpc, sg = _default_network()
    [group] = ec.describe_cache_subnet_groups(CacheSubnetGroupName="default")["CacheSubnetGroups"]
    assert group["VpcId"] == vpc and group["Subnets"]
    cc = ec.create_cache_cluster(CacheClusterId="st-net", Engine="memcached", CacheNodeType="cache.t3.micro",
                                 NumCacheNodes=1)["CacheCluster"]
    assert cc["CacheSubnetGroupName"] == "default"
    assert cc["SecurityGroups"] == [{"SecurityGroupId": sg, "Status": "active"}]
    cpc.wait_for(ec, cache_cluster_id="st-net")
    ec.delete_cache_cluster(CacheClusterId="st-net")


def test_snapshots_show_node_snapshots_sizes_and_network(ec):
    """create-snapshot.rst: "creating" with NodeSnapshots [{CacheNodeId, CacheSize: "", CacheNodeCreateTime}];
    describe-snapshots.rst: CacheSize in whole MB ("5 MB"), SnapshotCreateTime, VpcId; a group's snapshot
    names the member and node group each RDB comes from; copy-snapshot.rst answers "creating"."""
    import os

    vpc, _ = _default_network()
    ec.create_cache_cluster(CacheClusterId="st-snap", Engine="redis", CacheNodeType="cache.t3.micro")
    ec.create_replication_group(ReplicationGroupId="st-snaprg", ReplicationGroupDescription="snapshots",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=1)
    cc = cpc.wait_for(ec, cache_cluster_id="st-snap")
    r = cpc.redis_at(cpc.node_endpoints(cc)[0])
    for i in range(3):  # 3 MiB the RDB cannot compress
        r.set(f"blob:{i}", os.urandom(1024 * 1024))

    snap = ec.create_snapshot(CacheClusterId="st-snap", SnapshotName="st-snap-1")["Snapshot"]
    assert snap["SnapshotStatus"] == "creating" and snap["CacheSubnetGroupName"] == "default"
    assert snap["VpcId"] == vpc
    [node] = snap["NodeSnapshots"]
    assert node["CacheNodeId"] == "0001" and node["CacheSize"] == "" and "CacheNodeCreateTime" in node
    assert "SnapshotCreateTime" not in node
    snap = until(lambda: (s := _snapshot(ec, "st-snap-1"))["SnapshotStatus"] == "available" and s, 60,
                 "the snapshot")
    [node] = snap["NodeSnapshots"]
    assert node["CacheSize"] == "3 MB" and "SnapshotCreateTime" in node

    copied = ec.copy_snapshot(SourceSnapshotName="st-snap-1", TargetSnapshotName="st-snap-copy")["Snapshot"]
    assert copied["SnapshotStatus"] == "creating"
    copied = until(lambda: (s := _snapshot(ec, "st-snap-copy"))["SnapshotStatus"] == "available" and s, 60,
                   "the copy")
    assert copied["NodeSnapshots"][0]["CacheSize"] == "3 MB"

    g = cpc.wait_for(ec, replication_group_id="st-snaprg")
    ec.create_snapshot(ReplicationGroupId="st-snaprg", SnapshotName="st-snap-rg")
    snap = until(lambda: (s := _snapshot(ec, "st-snap-rg"))["SnapshotStatus"] == "available" and s, 60,
                 "the group's snapshot")
    [node] = snap["NodeSnapshots"]
    assert node["CacheClusterId"] == g["MemberClusters"][0] and node["NodeGroupId"] == "0001"
    assert node["CacheNodeId"] == "0001" and re.fullmatch(r"\d+ MB", node["CacheSize"])
    assert {"CacheNodeCreateTime", "SnapshotCreateTime"} <= node.keys()
    assert snap["PreferredMaintenanceWindow"] and snap["VpcId"] == vpc
    cpc.wait_for(ec, replication_group_id="st-snaprg")
    for name in ("st-snap-1", "st-snap-copy", "st-snap-rg"):
        ec.delete_snapshot(SnapshotName=name)
    ec.delete_cache_cluster(CacheClusterId="st-snap")
    ec.delete_replication_group(ReplicationGroupId="st-snaprg")


# --- service updates ----------------------------------------------------------------------------------

def test_batch_apply_update_action_waits_to_start(ec):
    """batch-apply-update-action.rst answers "UpdateActionStatus": "waiting-to-start"; the update then
    runs (every node restarted) and ends complete."""
    ec.create_replication_group(ReplicationGroupId="st-su", ReplicationGroupDescription="update",
                                CacheNodeType="cache.t3.micro", NumCacheClusters=1)
    cpc.wait_for(ec, replication_group_id="st-su")
    actions = ec.describe_update_actions(ReplicationGroupIds=["st-su"])["UpdateActions"]
    name = next(a["ServiceUpdateName"] for a in actions if a["ServiceUpdateType"] == "engine-update")
    out = ec.batch_apply_update_action(ServiceUpdateName=name, ReplicationGroupIds=["st-su"])
    assert [(a["ReplicationGroupId"], a["UpdateActionStatus"]) for a in out["ProcessedUpdateActions"]] == \
        [("st-su", "waiting-to-start")]
    cpc.wait_for(ec, replication_group_id="st-su", timeout=120)
    [action] = ec.describe_update_actions(ServiceUpdateName=name, ReplicationGroupIds=["st-su"])["UpdateActions"]
    assert action["UpdateActionStatus"] == "complete"
    ec.delete_replication_group(ReplicationGroupId="st-su")


def test_reboot_of_a_secondary_clusters_primary_follows_the_primary_region_again(ec):
    """The rebooted node of a global datastore's secondary cluster comes back empty (no persistence) and
    resyncs from the primary region, read-only as before (a secondary cluster only replicates)."""
    west = localaws.client("elasticache", region_name="us-west-2")
    ec.create_replication_group(ReplicationGroupId="st-rbg-e", ReplicationGroupDescription="primary region",
                                CacheNodeType="cache.r7g.large", NumCacheClusters=1)
    east = cpc.wait_for(ec, replication_group_id="st-rbg-e")
    gid = ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="st-rbg", PrimaryReplicationGroupId=
                                             "st-rbg-e")["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    try:
        west.create_replication_group(ReplicationGroupId="st-rbg-w", ReplicationGroupDescription="second region",
                                      GlobalReplicationGroupId=gid, NumCacheClusters=1)
        w = cpc.wait_for(west, replication_group_id="st-rbg-w")
        until(lambda: _settled(ec, gid), 60, "the secondary to be associated")
        cpc.redis_at(east["NodeGroups"][0]["PrimaryEndpoint"]).set("order", "paid")
        node = cpc.redis_at(w["NodeGroups"][0]["NodeGroupMembers"][0]["ReadEndpoint"])
        until(lambda: node.get("order") == "paid", 20, "the secondary to replicate")
        out = west.reboot_cache_cluster(CacheClusterId="st-rbg-w-001", CacheNodeIdsToReboot=["0001"])
        assert out["CacheCluster"]["CacheClusterStatus"] == "rebooting cache cluster nodes"
        cpc.wait_for(west, replication_group_id="st-rbg-w", timeout=60)
        until(lambda: node.get("order") == "paid", 20, "the rebooted node to resync from the primary region")
        assert node.info("replication")["role"] == "slave"
    finally:
        with contextlib.suppress(ClientError, AssertionError):
            cpc.wait_for(west, replication_group_id="st-rbg-w", timeout=60)
            ec.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="st-rbg-w",
                                                     ReplicationGroupRegion="us-west-2")
            until(lambda: _settled(ec, gid), 60, "the disassociation")
        ec.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
        cpc.cleanup(west, "st-")
