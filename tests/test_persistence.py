"""What AWS keeps, the lab keeps across `python -m helpers stop` and the next start.

AWS keeps a replication group, its data, a user, a parameter group and a snapshot until they are
deleted; stopping and starting the lab (the local endpoint and every engine) must not lose them. The
oracle is the API itself, asked through boto3 as a learner would, and the engines asked through a plain
Redis client at the endpoint `describe-replication-groups` returns. A damaged store is set aside with
one warning line, and the endpoint starts with no resources, as a damaged services.json is.
"""

from __future__ import annotations

import pytest
import redis

from helpers.aws import endpoint as localaws
from helpers.runtime import engines, services


def _wait(ec, waiter: str, **kwargs) -> None:
    ec.get_waiter(waiter).wait(**kwargs, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def test_resources_and_data_survive_a_stop_and_start(isolated_home):
    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_cache_parameter_group(CacheParameterGroupName="kept-params", CacheParameterGroupFamily="redis7",
                                    Description="kept across a restart")
    ec.modify_cache_parameter_group(CacheParameterGroupName="kept-params", ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"}])
    ec.create_user(UserId="kept-user", UserName="kept-user", Engine="redis", AccessString="on ~app:* +@read",
                   Passwords=["a-long-password-1234"])
    ec.create_replication_group(ReplicationGroupId="kept", ReplicationGroupDescription="kept across a restart",
                                Engine="redis", CacheNodeType="cache.t3.micro", NumCacheClusters=2,
                                CacheParameterGroupName="kept-params")
    _wait(ec, "replication_group_available", ReplicationGroupId="kept")
    ep = ec.describe_replication_groups(ReplicationGroupId="kept")["ReplicationGroups"][0]["NodeGroups"][0][
        "PrimaryEndpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], decode_responses=True)
    r.set("before-snapshot", "1")
    ec.create_snapshot(ReplicationGroupId="kept", SnapshotName="kept-snap")
    _wait(ec, "replication_group_available", ReplicationGroupId="kept")
    r.mset({f"key:{i}": str(i) for i in range(100)})
    r.set("ttl-key", "v", ex=3600)
    r.close()

    stopped = services.stop()  # `python -m helpers stop`
    assert "aws" in stopped and "aws-rg-kept" in stopped
    services.start("aws")  # `python -m helpers start aws`
    ec = localaws.client("elasticache")

    _wait(ec, "replication_group_available", ReplicationGroupId="kept")
    group = ec.describe_replication_groups(ReplicationGroupId="kept")["ReplicationGroups"][0]
    assert len(group["MemberClusters"]) == 2
    assert group["NodeGroups"][0]["PrimaryEndpoint"] == ep  # the same address, as a DNS name stays
    member = ec.describe_cache_clusters(CacheClusterId=group["MemberClusters"][0])["CacheClusters"][0]
    assert member["CacheParameterGroup"]["CacheParameterGroupName"] == "kept-params"
    r = redis.Redis(host=ep["Address"], port=ep["Port"], decode_responses=True, socket_timeout=10)
    assert r.get("key:42") == "42" and r.get("before-snapshot") == "1"
    assert len(r.keys("key:*")) == 100
    assert 0 < r.ttl("ttl-key") <= 3600
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    r.close()

    users = {u["UserId"]: u for u in ec.describe_users()["Users"]}
    assert users["kept-user"]["AccessString"] == "on ~app:* +@read"
    values = {p["ParameterName"]: p.get("ParameterValue") for p in ec.describe_cache_parameters(
        CacheParameterGroupName="kept-params", Source="user")["Parameters"]}
    assert values == {"maxmemory-policy": "allkeys-lru"}
    snaps = ec.describe_snapshots(SnapshotName="kept-snap")["Snapshots"]
    assert [s["SnapshotStatus"] for s in snaps] == ["available"]
    events = [e["Message"] for e in ec.describe_events(SourceIdentifier="kept", SourceType="replication-group",
                                                      Duration=60)["Events"]]
    assert "Replication group kept created" in events  # the history is kept too

    # The snapshot taken before the stop still restores (its file was kept, and so is its record).
    ec.create_replication_group(ReplicationGroupId="from-snap", ReplicationGroupDescription="restored",
                                Engine="redis", CacheNodeType="cache.t3.micro", SnapshotName="kept-snap")
    _wait(ec, "replication_group_available", ReplicationGroupId="from-snap")
    ep = ec.describe_replication_groups(ReplicationGroupId="from-snap")["ReplicationGroups"][0]["NodeGroups"][0][
        "PrimaryEndpoint"]
    r = redis.Redis(host=ep["Address"], port=ep["Port"], decode_responses=True, socket_timeout=10)
    assert r.get("before-snapshot") == "1" and r.get("key:1") is None
    r.close()


def test_a_crash_loses_the_data_as_every_node_failing_would(isolated_home):
    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_cache_cluster(CacheClusterId="crashed", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    _wait(ec, "cache_cluster_available", CacheClusterId="crashed")
    node = ec.describe_cache_clusters(CacheClusterId="crashed", ShowCacheNodeInfo=True)["CacheClusters"][0][
        "CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=node["Address"], port=node["Port"], decode_responses=True)
    r.set("k", "v")
    r.close()
    for svc in services.status():  # the machine goes down: every process dies at once, nothing is saved
        for n in svc.nodes:
            n.kill()

    services.start("aws")
    ec = localaws.client("elasticache")
    _wait(ec, "cache_cluster_available", CacheClusterId="crashed")
    node = ec.describe_cache_clusters(CacheClusterId="crashed", ShowCacheNodeInfo=True)["CacheClusters"][0][
        "CacheNodes"][0]["Endpoint"]
    r = redis.Redis(host=node["Address"], port=node["Port"], decode_responses=True, socket_timeout=10)
    assert r.get("k") is None  # ElastiCache keeps no data through every node failing (no snapshot was taken)
    r.close()
    events = [e["Message"] for e in ec.describe_events(SourceIdentifier="crashed", SourceType="cache-cluster",
                                                      Duration=60)["Events"]]
    assert [m for m in events if "restarted with no data" in m]


def test_a_damaged_store_is_set_aside_and_the_endpoint_starts_empty(isolated_home):
    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_user(UserId="lost-user", UserName="lost-user", Engine="redis", AccessString="on ~* +@all",
                   NoPasswordRequired=True)
    services.stop()
    store = isolated_home / "controlplane.sqlite3"
    assert store.exists()
    store.write_bytes(b"this is not a SQLite database" * 100)

    services.start("aws")
    ec = localaws.client("elasticache")
    assert "lost-user" not in {u["UserId"] for u in ec.describe_users()["Users"]}
    aside = list(isolated_home.glob("controlplane.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    log = "".join(p.read_text() for p in (isolated_home / "services" / "aws").glob("*.log"))
    warned = [line for line in log.splitlines() if "controlplane.sqlite3" in line and "damaged" in line]
    assert len(warned) == 1, log[-2000:]
    ec.create_user(UserId="new-user", UserName="new-user", Engine="redis", AccessString="on ~* +@all",
                   NoPasswordRequired=True)  # and the endpoint writes a fresh store
    assert "new-user" in {u["UserId"] for u in ec.describe_users()["Users"]}


def test_records_written_by_another_version_still_load(isolated_home):
    """A store written by hand (sqlite3), as an older or newer version of the lab would have written it: a
    key this version's record has no field for is ignored, a field missing from it gets its default."""
    import json
    import sqlite3
    from datetime import datetime, timezone

    isolated_home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(isolated_home / "controlplane.sqlite3")
    conn.execute("CREATE TABLE records (tbl TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
                 "PRIMARY KEY (tbl, key))")
    user = {"__dc__": "helpers.aws.controlplane.models.base:User", "__v__": 1, "user_id": "old-user",
            "user_name": "old-user", "engine": "redis", "access_string": "on ~cache:* +get", "passwords": [],
            "no_password": True, "a_field_this_version_lacks": {"x": 1}}  # and no "status"
    gone = {"__dc__": "helpers.aws.controlplane.models.base:AKindThisVersionLacks", "__v__": 1, "name": "x"}
    # Records were once all in models/base.py: one written then still loads (events now live in models/events.py)
    event = {"__dc__": "helpers.aws.controlplane.models.base:Event", "__v__": 1, "source_id": "old-user",
             "source_type": "user", "message": "written by an older version",
             "date": {"__dt__": datetime.now(timezone.utc).isoformat()}}
    with conn:
        conn.execute("INSERT INTO records VALUES ('users', ?, ?)", (json.dumps("old-user"), json.dumps(user)))
        conn.execute("INSERT INTO records VALUES ('users', ?, ?)", (json.dumps("other"), json.dumps(gone)))
        conn.execute("INSERT INTO records VALUES ('events', ?, ?)", (json.dumps(0), json.dumps(event)))
    conn.close()

    services.start("aws")
    ec = localaws.client("elasticache")
    users = {u["UserId"]: u for u in ec.describe_users()["Users"]}
    assert users["old-user"]["AccessString"] == "on ~cache:* +get"
    assert users["old-user"]["Status"] == "active"  # the field's default
    assert "other" not in users and "default" in users
    assert "written by an older version" in [e["Message"] for e in ec.describe_events(SourceIdentifier="old-user")["Events"]]


@pytest.mark.skipif(not any(e.version.split(".")[0].isdigit() and int(e.version.split(".")[0]) >= 9
                            for e in engines.installed_engines("valkey")), reason="needs valkey-server 9 or later")
def test_a_durable_group_keeps_its_writes_through_a_crash(isolated_home):
    """Valkey 9's durability on AWS: a write answered OK is not lost when nodes fail; so here, after every
    process of the lab was killed, the group comes back with its data from the nodes' append-only files."""
    from redis.cluster import RedisCluster

    from helpers.aws.controlplane import engineops as ops

    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_replication_group(ReplicationGroupId="dur", ReplicationGroupDescription="durable", Engine="valkey",
                                CacheNodeType="cache.r7g.large", NumNodeGroups=1, ReplicasPerNodeGroup=1,
                                MultiAZEnabled=True, AutomaticFailoverEnabled=True, TransitEncryptionEnabled=True,
                                Durability="sync")
    _wait(ec, "replication_group_available", ReplicationGroupId="dur")
    cfg = ec.describe_replication_groups(ReplicationGroupId="dur")["ReplicationGroups"][0]["ConfigurationEndpoint"]
    tls = ops._tls().redis_tls_client_kwargs(client_cert=False)
    rc = RedisCluster(host=cfg["Address"], port=cfg["Port"], decode_responses=True, **tls)
    rc.mset_nonatomic({f"k{i}": str(i) for i in range(50)})
    rc.close()
    for svc in services.status():  # the machine goes down
        for n in svc.nodes:
            n.kill()

    services.start("aws")
    ec = localaws.client("elasticache")
    _wait(ec, "replication_group_available", ReplicationGroupId="dur")
    cfg = ec.describe_replication_groups(ReplicationGroupId="dur")["ReplicationGroups"][0]["ConfigurationEndpoint"]
    rc = RedisCluster(host=cfg["Address"], port=cfg["Port"], decode_responses=True, **tls)
    assert [rc.get(f"k{i}") for i in range(50)] == [str(i) for i in range(50)]
    rc.close()


def test_every_table_of_the_backend_is_kept():
    """A table added to the backend (a new kind of resource) must be added to the store's list, or its
    records would vanish at the next start without a word."""
    from helpers.aws.controlplane import store
    from helpers.aws.controlplane.models import ControlPlane

    plane = ControlPlane()
    tables = {k for k, v in vars(plane).items() if isinstance(v, (dict, list)) and not k.startswith("_")}
    assert tables - {"threads"} == set(store.TABLES)
