"""The examples' clean-up, in small: a global datastore's secondary (my-cluster-grg-secondary) is disassociated,
then groups are deleted at once, one of them (my-cluster) with an id the secondary's extends. Deleting a
group stops its own processes only; the secondary keeps its engines and Sentinels (the same processes, read
from the operating system) until its own delete, which leaves none of them running.
"""

from __future__ import annotations

import time

import psutil
import pytest
from support import wait_global

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws
from helpers.runtime import process, services, state

NODE = "cache.r7g.large"


@pytest.fixture(scope="module")
def regions():
    west = localaws.client("elasticache", region_name="us-west-2")
    east = localaws.client("elasticache", region_name="us-east-1")
    yield west, east
    for client in (west, east):
        cpc.cleanup(client, "t-gdd")


def _pids_in(service: str) -> set[int]:
    """The live processes (not zombies) working in a service's directory, as the operating system lists them."""
    home = (state.home() / "services" / service).resolve()
    found = set()
    for proc in process.state_dir_processes():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and str(home) in (proc.cwd(), *proc.cmdline()):
                found.add(proc.pid)
            elif proc.status() != psutil.STATUS_ZOMBIE and proc.cwd().startswith(str(home) + "/"):
                found.add(proc.pid)
        except psutil.Error:  # gone meanwhile
            continue
    return found


def test_deleting_a_group_leaves_a_disassociated_secondary_whose_id_extends_its_own_alone(regions):
    west, east = regions
    west.create_replication_group(ReplicationGroupId="t-gdd-primary", ReplicationGroupDescription="primary region",
                                  CacheNodeType=NODE, NumCacheClusters=2, AutomaticFailoverEnabled=True)
    east.create_replication_group(ReplicationGroupId="t-gdd", ReplicationGroupDescription="another group",
                                  CacheNodeType=NODE, NumCacheClusters=1)
    cpc.wait_for(west, replication_group_id="t-gdd-primary")
    gid = west.create_global_replication_group(GlobalReplicationGroupIdSuffix="t-gdd",
                                               PrimaryReplicationGroupId="t-gdd-primary")[
        "GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    east.create_replication_group(ReplicationGroupId="t-gdd-grg-secondary", ReplicationGroupDescription="secondary",
                                  GlobalReplicationGroupId=gid, NumCacheClusters=2)
    secondary = cpc.wait_for(east, replication_group_id="t-gdd-grg-secondary")
    cpc.wait_for(east, replication_group_id="t-gdd")
    wait_global(west, gid, gone_ok=True)
    west.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="t-gdd-grg-secondary",
                                               ReplicationGroupRegion="us-east-1")
    wait_global(west, gid, gone_ok=True)
    west.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
    wait_global(west, gid, gone_ok=True)
    before = _pids_in("aws-rg-t-gdd-grg-secondary")
    assert len(before) == 5  # two data nodes and three Sentinels

    east.delete_replication_group(ReplicationGroupId="t-gdd")
    cpc.wait_deleted(east, replication_group_id="t-gdd", timeout=90)
    time.sleep(1.5)  # a few looks of the recovery monitor
    assert _pids_in("aws-rg-t-gdd-grg-secondary") == before  # not one of them stopped (nor started again)
    assert east.describe_replication_groups(ReplicationGroupId="t-gdd-grg-secondary")[
        "ReplicationGroups"][0]["Status"] == "available"
    r = cpc.redis_at(secondary["NodeGroups"][0]["PrimaryEndpoint"])
    r.set("still", "here")  # a standalone group again: writable
    assert r.get("still") in ("here", b"here")

    # deleted at once, with the primary region's group, as a clean-up does: nothing of it runs afterwards
    east.delete_replication_group(ReplicationGroupId="t-gdd-grg-secondary")
    west.delete_replication_group(ReplicationGroupId="t-gdd-primary")
    cpc.wait_deleted(east, replication_group_id="t-gdd-grg-secondary", timeout=90)
    cpc.wait_deleted(west, replication_group_id="t-gdd-primary", timeout=90)
    deadline = time.monotonic() + 3
    left: set[int] = set()
    while time.monotonic() < deadline:  # something started for it late would show by now
        left |= _pids_in("aws-rg-t-gdd-grg-secondary")
        time.sleep(0.25)
    assert not left, f"t-gdd-grg-secondary was deleted, yet these processes of it run: {sorted(left)}"
    assert not [s.name for s in services.status() if s.name.startswith("aws-rg-t-gdd")]
