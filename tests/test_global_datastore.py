"""Global datastores through boto3: a secondary region replicates for real, refuses writes, fails over,
is disassociated and deleted, and no engine process is left.

Both "regions" are the same local endpoint; the client's region_name is what tells them apart.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
from botocore.exceptions import ClientError
from support import code_of, wait_global

import helpers
from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

NODE = "cache.r7g.large"


@pytest.fixture(scope="module")
def regions():
    east = localaws.client("elasticache", region_name="us-east-1")
    west = localaws.client("elasticache", region_name="us-west-2")
    yield east, west
    for gds in east.describe_global_replication_groups(ShowMemberInfo=True)["GlobalReplicationGroups"]:
        if "-t-gds" in gds["GlobalReplicationGroupId"]:
            for m in gds.get("Members", []):
                if m["Role"] == "SECONDARY":
                    _quiet(east.disassociate_global_replication_group, GlobalReplicationGroupId=gds[
                        "GlobalReplicationGroupId"], ReplicationGroupId=m["ReplicationGroupId"],
                        ReplicationGroupRegion=m["ReplicationGroupRegion"])
            wait_global(east, gds["GlobalReplicationGroupId"], gone_ok=True)
            _quiet(east.delete_global_replication_group, GlobalReplicationGroupId=gds["GlobalReplicationGroupId"],
                   RetainPrimaryReplicationGroup=True)
    for client in (east, west, localaws.client("elasticache", region_name="us-west-1")):
        cpc.cleanup(client, "t-gds")


def _quiet(call, **kwargs):
    try:
        return call(**kwargs)
    except ClientError:
        return None


def _until(fn, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout} s")


def test_preconditions_answer_aws_errors(regions):
    east, west = regions
    assert code_of(east.describe_global_replication_groups, GlobalReplicationGroupId="ldgnf-nope") == \
        "GlobalReplicationGroupNotFoundFault"
    assert code_of(east.create_global_replication_group, GlobalReplicationGroupIdSuffix="x",
                   PrimaryReplicationGroupId="t-gds-missing") == "ReplicationGroupNotFoundFault"
    east.create_replication_group(ReplicationGroupId="t-gds-small", ReplicationGroupDescription="t",
                                  CacheNodeType="cache.t4g.micro", NumCacheClusters=1)
    cpc.wait_for(east, replication_group_id="t-gds-small")
    # AWS: large and above, M5/M6g/M7g/R5/R6g/R6gd/R7g/C7gn only
    assert code_of(east.create_global_replication_group, GlobalReplicationGroupIdSuffix="t-small",
                   PrimaryReplicationGroupId="t-gds-small") == "InvalidParameterValue"
    assert code_of(west.create_replication_group, ReplicationGroupId="t-gds-x", ReplicationGroupDescription="t",
                   GlobalReplicationGroupId="ldgnf-nope") == "GlobalReplicationGroupNotFoundFault"
    east.delete_replication_group(ReplicationGroupId="t-gds-small")


def test_global_datastore_replicates_fails_over_and_is_deleted(regions):
    east, west = regions
    east.create_replication_group(ReplicationGroupId="t-gds-east", ReplicationGroupDescription="primary region",
                                  CacheNodeType=NODE, NumCacheClusters=2, AutomaticFailoverEnabled=True)
    primary = cpc.wait_for(east, replication_group_id="t-gds-east")
    gds = east.create_global_replication_group(GlobalReplicationGroupIdSuffix="t-gds",
                                               PrimaryReplicationGroupId="t-gds-east")["GlobalReplicationGroup"]
    gid = gds["GlobalReplicationGroupId"]
    assert gid == "ldgnf-t-gds"  # AWS's prefix for us-east-1
    assert code_of(east.create_global_replication_group, GlobalReplicationGroupIdSuffix="t-gds",
                   PrimaryReplicationGroupId="t-gds-east") in ("GlobalReplicationGroupAlreadyExistsFault",
                                                               "InvalidParameterValue")
    # the secondary: same endpoint, another region; engine, version and node type come from the datastore
    out = west.create_replication_group(ReplicationGroupId="t-gds-west", ReplicationGroupDescription="second region",
                                        GlobalReplicationGroupId=gid, NumCacheClusters=2)["ReplicationGroup"]
    assert out["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "SECONDARY"
    assert code_of(east.create_replication_group, ReplicationGroupId="t-gds-x", ReplicationGroupDescription="t",
                   GlobalReplicationGroupId=gid) == "InvalidParameterValue"  # a region that already has a member
    secondary = cpc.wait_for(west, replication_group_id="t-gds-west")
    assert secondary["CacheNodeType"] == NODE
    gds = wait_global(east, gid)
    assert [(m["ReplicationGroupId"], m["ReplicationGroupRegion"], m["Role"]) for m in gds["Members"]] == [
        ("t-gds-east", "us-east-1", "PRIMARY"), ("t-gds-west", "us-west-2", "SECONDARY")]
    # regions keep their own groups
    assert [g["ReplicationGroupId"] for g in west.describe_replication_groups()["ReplicationGroups"]] == ["t-gds-west"]
    assert code_of(west.describe_replication_groups, ReplicationGroupId="t-gds-east") == "ReplicationGroupNotFoundFault"

    east_ep = primary["NodeGroups"][0]["PrimaryEndpoint"]
    west_ep = secondary["NodeGroups"][0]["PrimaryEndpoint"]
    west_reader = secondary["NodeGroups"][0]["ReaderEndpoint"]
    r_east, r_west, r_west_reader = cpc.redis_at(east_ep), cpc.redis_at(west_ep), cpc.redis_at(west_reader)
    r_east.set("order:1", "paid")
    _until(lambda: r_west.get("order:1") in ("paid", b"paid"))
    _until(lambda: r_west_reader.get("order:1") in ("paid", b"paid"))  # the secondary's replicas follow it
    with pytest.raises(Exception, match="(?i)read only|readonly"):
        r_west.set("order:2", "x")

    # the lag, published to the secondary region's CloudWatch
    cw = localaws.client("cloudwatch", region_name="us-west-2")
    _until(lambda: cw.list_metrics(MetricName="GlobalDatastoreReplicationLag", Dimensions=[
        {"Name": "CacheClusterId", "Value": "t-gds-west-001"}])["Metrics"], timeout=30)

    # failover: the west region becomes the primary; the endpoints stay the same addresses
    assert code_of(east.failover_global_replication_group, GlobalReplicationGroupId=gid, PrimaryRegion="us-east-1",
                   PrimaryReplicationGroupId="t-gds-east") == "InvalidParameterValue"  # already primary
    east.failover_global_replication_group(GlobalReplicationGroupId=gid, PrimaryRegion="us-west-2",
                                           PrimaryReplicationGroupId="t-gds-west")
    gds = wait_global(east, gid)
    assert {m["ReplicationGroupId"]: m["Role"] for m in gds["Members"]} == {"t-gds-west": "PRIMARY",
                                                                           "t-gds-east": "SECONDARY"}
    _until(lambda: _writes(r_west))
    r_west.set("order:3", "from-west")
    _until(lambda: r_east.get("order:3") in ("from-west", b"from-west"))
    assert r_east.get("order:1") in ("paid", b"paid")
    with pytest.raises(Exception, match="(?i)read only|readonly"):
        r_east.set("order:4", "x")
    messages = [e["Message"] for e in west.describe_events(SourceIdentifier="t-gds-west")["Events"]]
    assert any("Failover" in m and gid in m for m in messages)

    # delete: secondaries go first (disassociate), then the datastore; the groups stay as regional groups
    assert code_of(east.delete_global_replication_group, GlobalReplicationGroupId=gid,
                   RetainPrimaryReplicationGroup=True) == "InvalidGlobalReplicationGroupState"
    assert code_of(east.delete_replication_group, ReplicationGroupId="t-gds-east") == "InvalidParameterValue"
    east.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="t-gds-east",
                                               ReplicationGroupRegion="us-east-1")
    wait_global(east, gid)
    _until(lambda: _writes(r_east))  # a standalone regional group again: writable, data kept
    assert r_east.get("order:3") in ("from-west", b"from-west")
    east.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
    assert code_of(east.describe_global_replication_groups, GlobalReplicationGroupId=gid) == \
        "GlobalReplicationGroupNotFoundFault"
    pids = [n.pid for s in helpers.status() if s.name.startswith("aws-rg-t-gds") for n in s.nodes]
    assert pids
    east.delete_replication_group(ReplicationGroupId="t-gds-east")
    west.delete_replication_group(ReplicationGroupId="t-gds-west")
    cpc.wait_deleted(east, replication_group_id="t-gds-east")
    cpc.wait_deleted(west, replication_group_id="t-gds-west")
    _until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                           for p in pids), timeout=30)
    assert not [s.name for s in helpers.status() if s.name.startswith("aws-rg-t-gds")]


def _writes(r) -> bool:
    try:
        r.set("probe", "1")
        return True
    except Exception:  # noqa: BLE001 - still read-only, or reconnecting
        return False


class Writer(threading.Thread):
    """Writes gw:<i> = i through an endpoint until stopped (at most 20,000 writes, 180 s: a node's
    replacement on a slow machine takes longer than a fixed short run), reconnecting after errors."""

    def __init__(self, endpoint: dict):
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.acked: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        r = cpc.redis_at(self.endpoint)
        deadline = time.monotonic() + 180
        for i in range(20000):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            try:
                r.set(f"gw:{i}", i)
                self.acked.append(i)
            except Exception:  # noqa: BLE001 - a node being replaced: back off and carry on
                time.sleep(0.05)
                r = cpc.redis_at(self.endpoint)
            time.sleep(0.01)

    def finish(self) -> int:
        n = len(self.acked)
        _until(lambda: len(self.acked) >= n + 20)
        self.stop.set()
        self.join(timeout=10)
        return self.acked[-1]


def _primary_port(ec, gid: str) -> int:
    g = ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]
    return next(m["ReadEndpoint"]["Port"] for m in g["NodeGroups"][0]["NodeGroupMembers"]
                if m["CurrentRole"] == "primary")


def _kill(gid: str, port: int) -> str:
    svc = helpers.get(f"aws-rg-{gid}")
    node = next(n for n in svc.nodes if n.port == port)
    os.kill(node.pid, signal.SIGKILL)
    return node.name


def _events(ec, source: str) -> list[str]:
    return [e["Message"] for e in ec.describe_events(SourceIdentifier=source, Duration=60)["Events"]]


def _follows(ec, gid: str) -> dict[int, int]:
    """node port -> the port it replicates from (links up only), for each data node of a group."""
    g = ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]
    out = {}
    for m in g["NodeGroups"][0]["NodeGroupMembers"]:
        try:
            info = cpc.redis_at(m["ReadEndpoint"], retries=0, socket_timeout=2).info("replication")
        except Exception:  # noqa: BLE001 - a node being replaced
            continue
        if info.get("master_link_status") == "up":
            out[m["ReadEndpoint"]["Port"]] = int(info["master_port"])
    return out


def test_a_secondary_clusters_dead_nodes_are_replaced_and_resync_from_the_right_primary(regions):
    """kill -9 of the secondary's primary node, then of the primary cluster's primary node, a writer running."""
    east, west = regions
    east.create_replication_group(ReplicationGroupId="t-gds-e2", ReplicationGroupDescription="primary region",
                                  CacheNodeType=NODE, NumCacheClusters=2, AutomaticFailoverEnabled=True)
    primary = cpc.wait_for(east, replication_group_id="t-gds-e2")
    gid = east.create_global_replication_group(GlobalReplicationGroupIdSuffix="t-gds2", PrimaryReplicationGroupId=
                                               "t-gds-e2")["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    west.create_replication_group(ReplicationGroupId="t-gds-w2", ReplicationGroupDescription="second region",
                                  GlobalReplicationGroupId=gid, NumCacheClusters=2)
    secondary = cpc.wait_for(west, replication_group_id="t-gds-w2")
    wait_global(east, gid)
    west_ep = secondary["NodeGroups"][0]["PrimaryEndpoint"]
    east_ep = primary["NodeGroups"][0]["PrimaryEndpoint"]

    # 1. the secondary's primary node dies: a replica of the secondary takes its place and follows the
    # primary region; the failed node comes back as its replica and resyncs
    writer = Writer(east_ep)
    writer.start()
    _until(lambda: len(writer.acked) >= 30)
    dead_port = _primary_port(west, "t-gds-w2")
    _kill("t-gds-w2", dead_port)
    _until(lambda: any(m.startswith("Failover to replica node") for m in _events(west, "t-gds-w2")), timeout=30)
    killed = next(m for m in secondary["NodeGroups"][0]["NodeGroupMembers"]
                  if m["ReadEndpoint"]["Port"] == dead_port)["CacheClusterId"]
    _until(lambda: "Finished recovery for cache nodes 0001" in _events(west, killed), timeout=60)
    assert "Recovering cache nodes 0001" in _events(west, killed)
    secondary = cpc.wait_for(west, replication_group_id="t-gds-w2")
    assert secondary["NodeGroups"][0]["PrimaryEndpoint"] == west_ep  # the same address
    east_port, lead = _primary_port(east, "t-gds-e2"), _primary_port(west, "t-gds-w2")
    assert lead != dead_port
    _until(lambda: _follows(west, "t-gds-w2") == {lead: east_port, dead_port: lead}, timeout=30)
    last = writer.finish()
    for ep in (west_ep, {"Address": "127.0.0.1", "Port": dead_port}):
        r = cpc.redis_at(ep)
        _until(lambda r=r: r.get(f"gw:{last}") in (str(last), str(last).encode()))
        assert r.dbsize() >= len(writer.acked)
    with pytest.raises(Exception, match="(?i)read only|readonly"):
        cpc.redis_at(west_ep).set("x", "1")
    wait_global(east, gid)

    # 1b. a replica of the secondary dies: it comes back following the secondary's primary node
    _kill("t-gds-w2", dead_port)
    _until(lambda: _events(west, killed).count("Finished recovery for cache nodes 0001") == 2, timeout=60)
    _until(lambda: _follows(west, "t-gds-w2") == {lead: east_port, dead_port: lead}, timeout=30)
    assert _primary_port(west, "t-gds-w2") == lead

    # 2. the primary cluster's primary node dies: its replica is promoted and the secondary follows the new one
    writer = Writer(east_ep)
    writer.start()
    _until(lambda: len(writer.acked) >= 30)
    old_east = _primary_port(east, "t-gds-e2")
    _kill("t-gds-e2", old_east)
    try:
        _until(lambda: any(m.startswith("Failover to replica node") for m in _events(east, "t-gds-e2")), timeout=30)
    except AssertionError:
        raise AssertionError(_events(east, "t-gds-e2") + _events(west, "t-gds-w2")) from None
    primary = cpc.wait_for(east, replication_group_id="t-gds-e2")
    new_east = _primary_port(east, "t-gds-e2")
    assert new_east != old_east
    lead = _primary_port(west, "t-gds-w2")
    _until(lambda: _follows(west, "t-gds-w2").get(lead) == new_east, timeout=30)
    last = writer.finish()
    _until(lambda: cpc.redis_at(west_ep).get(f"gw:{last}") in (str(last), str(last).encode()))

    # the primary region's Sentinels did not take the secondary's nodes (replica-priority 0, forgotten)
    time.sleep(8)  # longer than the Sentinels' failover-timeout, after which they "repair" stray replicas
    follows = _follows(west, "t-gds-w2")
    assert len(follows) == 2 and follows[lead] == new_east
    assert all(up == lead for port, up in follows.items() if port != lead), follows

    pids = [n.pid for s in helpers.status() if s.name in ("aws-rg-t-gds-e2", "aws-rg-t-gds-w2") for n in s.nodes]
    east.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="t-gds-w2",
                                               ReplicationGroupRegion="us-west-2")
    wait_global(east, gid)
    east.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=False)
    west.delete_replication_group(ReplicationGroupId="t-gds-w2")
    cpc.wait_deleted(east, replication_group_id="t-gds-e2")
    cpc.wait_deleted(west, replication_group_id="t-gds-w2")
    _until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                           for p in pids), timeout=30)


def test_a_global_datastore_with_tls_and_auth_tokens(regions):
    """TLS in transit and AUTH: each region's cluster keeps its own token; replication authenticates across."""
    east, west = regions
    east.create_replication_group(ReplicationGroupId="t-gds-ea", ReplicationGroupDescription="primary region",
                                  CacheNodeType=NODE, NumCacheClusters=1, TransitEncryptionEnabled=True,
                                  AuthToken="east-token-0123456789")
    primary = cpc.wait_for(east, replication_group_id="t-gds-ea")
    gds = east.create_global_replication_group(GlobalReplicationGroupIdSuffix="t-gds3",
                                               PrimaryReplicationGroupId="t-gds-ea")["GlobalReplicationGroup"]
    gid = gds["GlobalReplicationGroupId"]
    assert gds["AuthTokenEnabled"] is True and gds["TransitEncryptionEnabled"] is True
    assert code_of(west.create_replication_group, ReplicationGroupId="t-gds-wx", ReplicationGroupDescription="t",
                   GlobalReplicationGroupId=gid, UserGroupIds=["any"]) == "InvalidParameterCombination"
    west.create_replication_group(ReplicationGroupId="t-gds-wa", ReplicationGroupDescription="second region",
                                  GlobalReplicationGroupId=gid, NumCacheClusters=1, AuthToken="west-token-0123456789")
    secondary = cpc.wait_for(west, replication_group_id="t-gds-wa")
    assert secondary["TransitEncryptionEnabled"] is True and secondary["AuthTokenEnabled"] is True
    wait_global(east, gid)
    r_east = cpc.redis_at(primary["NodeGroups"][0]["PrimaryEndpoint"], tls=True, password="east-token-0123456789")
    west_ep = secondary["NodeGroups"][0]["PrimaryEndpoint"]
    r_west = cpc.redis_at(west_ep, tls=True, password="west-token-0123456789")
    r_east.set("k", "from-east")
    _until(lambda: r_west.get("k") in ("from-east", b"from-east"))
    with pytest.raises(Exception, match="(?i)read only|readonly"):
        r_west.set("k2", "x")
    with pytest.raises(Exception, match="(?i)WRONGPASS|invalid|auth"):  # each region's token is its own
        cpc.redis_at(west_ep, tls=True, password="east-token-0123456789", retries=0).get("k")

    # the primary's token is rotated, then the old one dropped: the link to the other region reconnects
    for strategy in ("ROTATE", "SET"):
        east.modify_replication_group(ReplicationGroupId="t-gds-ea", AuthToken="east-token-new-0123456789",
                                      AuthTokenUpdateStrategy=strategy, ApplyImmediately=True)
        cpc.wait_for(east, replication_group_id="t-gds-ea")
    r_east = cpc.redis_at(primary["NodeGroups"][0]["PrimaryEndpoint"], tls=True, password="east-token-new-0123456789")
    r_east.client_kill_filter(_type="replica")
    r_east.set("k1", "after-rotation")
    _until(lambda: r_west.get("k1") in ("after-rotation", b"after-rotation"))

    # a second secondary without a token of its own takes the primary's
    north = localaws.client("elasticache", region_name="us-west-1")
    third = north.create_replication_group(ReplicationGroupId="t-gds-na", ReplicationGroupDescription="third region",
                                           GlobalReplicationGroupId=gid, NumCacheClusters=1)["ReplicationGroup"]
    assert third["AuthTokenEnabled"] is True
    third = cpc.wait_for(north, replication_group_id="t-gds-na")
    wait_global(east, gid)
    r_north = cpc.redis_at(third["NodeGroups"][0]["PrimaryEndpoint"], tls=True, password="east-token-new-0123456789")
    _until(lambda: r_north.get("k1") in ("after-rotation", b"after-rotation"))

    east.failover_global_replication_group(GlobalReplicationGroupId=gid, PrimaryRegion="us-west-2",
                                           PrimaryReplicationGroupId="t-gds-wa")
    wait_global(east, gid)
    _until(lambda: _writes(r_west))
    r_west.set("k3", "from-west")
    _until(lambda: r_east.get("k3") in ("from-west", b"from-west"))
    _until(lambda: r_north.get("k3") in ("from-west", b"from-west"))  # it follows the new primary region
    east.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="t-gds-na",
                                               ReplicationGroupRegion="us-west-1")
    wait_global(east, gid)
    north.delete_replication_group(ReplicationGroupId="t-gds-na")
    with pytest.raises(Exception, match="(?i)read only|readonly"):
        r_east.set("k4", "x")

    east.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="t-gds-ea",
                                               ReplicationGroupRegion="us-east-1")
    wait_global(east, gid)
    _until(lambda: _writes(r_east))
    west.delete_global_replication_group(GlobalReplicationGroupId=gid, RetainPrimaryReplicationGroup=True)
    east.delete_replication_group(ReplicationGroupId="t-gds-ea")
    west.delete_replication_group(ReplicationGroupId="t-gds-wa")
    cpc.wait_deleted(east, replication_group_id="t-gds-ea")
    cpc.wait_deleted(west, replication_group_id="t-gds-wa")
    cpc.wait_deleted(north, replication_group_id="t-gds-na")
