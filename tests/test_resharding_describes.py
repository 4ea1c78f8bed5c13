"""Removing a node group while clients keep describing the group, as on AWS.

A scale-in (ModifyReplicationGroupShardConfiguration with NodeGroupsToRemove) runs in the background
while describe-replication-groups is called again and again from other threads (bounded in time,
loopback only). AWS's documented behaviour is the oracle: once a group reads `available` the
removed node group is gone (NodeGroups lists only the ones kept, MemberClusters only their members),
and no answer ever shows a node group the group did not have. A removed node group's id (and its
members' cluster ids) is not handed out again: the shard added afterwards is a new node group.
"""

from __future__ import annotations

import threading
import time

from support import elasticache_fixture

from helpers.aws import client as cpc

ec = elasticache_fixture("rd-")

DESCRIBERS = 3
MAX_SECONDS = 90.0


def test_scale_in_under_concurrent_describes(ec):
    ec.create_replication_group(ReplicationGroupId="rd-cl", ReplicationGroupDescription="lab", Engine="redis",
                                CacheNodeType="cache.t3.micro", NumNodeGroups=3, ReplicasPerNodeGroup=1)
    g = cpc.wait_for(ec, replication_group_id="rd-cl")
    assert sorted(ng["NodeGroupId"] for ng in g["NodeGroups"]) == ["0001", "0002", "0003"]
    removed = {m["CacheClusterId"] for ng in g["NodeGroups"] if ng["NodeGroupId"] == "0001"
               for m in ng["NodeGroupMembers"]}
    assert len(removed) == 2

    # (Status, node group ids, member clusters) of each answer to a describe sent after the scale-in was accepted
    seen: list[tuple[str, list[str], list[str]]] = []
    errors: list[BaseException] = []
    done, accepted = threading.Event(), threading.Event()

    def describe() -> None:
        from helpers.aws import endpoint as localaws

        client = localaws.client("elasticache")
        deadline = time.monotonic() + MAX_SECONDS
        try:
            while not done.is_set() and time.monotonic() < deadline:
                after = accepted.is_set()
                rg = client.describe_replication_groups(ReplicationGroupId="rd-cl")["ReplicationGroups"][0]
                if after:
                    seen.append((rg["Status"], sorted(ng["NodeGroupId"] for ng in rg["NodeGroups"]),
                                 list(rg["MemberClusters"])))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=describe, daemon=True) for _ in range(DESCRIBERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        ec.modify_replication_group_shard_configuration(ReplicationGroupId="rd-cl", NodeGroupCount=2,
                                                        NodeGroupsToRemove=["0001"], ApplyImmediately=True)
        accepted.set()
        g = cpc.wait_for(ec, replication_group_id="rd-cl")
        # A few more answers once the group is available again.
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle and not errors:
            time.sleep(0.05)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    failed = [e["Message"] for e in ec.describe_events(SourceIdentifier="rd-cl")["Events"]
              if "failed" in e["Message"].lower()]
    assert not failed, failed
    assert sorted(ng["NodeGroupId"] for ng in g["NodeGroups"]) == ["0002", "0003"]
    assert not removed & set(g["MemberClusters"])
    assert seen  # (how many answers fall inside the operation depends on the machine's speed: not asserted)
    for status, groups, members in seen:
        assert set(groups) <= {"0001", "0002", "0003"}, groups  # never a node group the group did not have
        if status == "available":
            assert groups == ["0002", "0003"], (status, groups, members)
            assert not removed & set(members), (status, members)
    rg = ec.describe_replication_groups(ReplicationGroupId="rd-cl")["ReplicationGroups"][0]
    assert rg["Status"] == "available" and sorted(ng["NodeGroupId"] for ng in rg["NodeGroups"]) == ["0002", "0003"]

    # The removed node group's id is not handed out again: the shard added next is a new node group.
    ec.modify_replication_group_shard_configuration(ReplicationGroupId="rd-cl", NodeGroupCount=3,
                                                    ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="rd-cl")
    assert sorted(ng["NodeGroupId"] for ng in g["NodeGroups"]) == ["0002", "0003", "0004"]
    assert not removed & set(g["MemberClusters"])
    assert all(ng["Slots"] for ng in g["NodeGroups"])

    ec.delete_replication_group(ReplicationGroupId="rd-cl")
    cpc.wait_deleted(ec, replication_group_id="rd-cl")
