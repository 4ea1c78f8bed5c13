"""The engine a request names, and the engine's life cycle, on the local ElastiCache API.

Driven with boto3 against the local endpoint, checked on the engines themselves (INFO, keys, ports):
--engine valkey starts valkey-server and --engine redis starts redis-server; versions and families are
AWS's; a Redis OSS -> Valkey upgrade keeps every key and the endpoint; service updates restart nodes.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from support import elasticache_fixture

import helpers
from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws
from helpers.runtime import engines

HAVE = {name: bool(engines.installed_engines(name)) for name in engines.KV_ENGINES}
needs_both = pytest.mark.skipif(not all(HAVE.values()), reason="needs both valkey-server and redis-server")
needs_valkey = pytest.mark.skipif(not HAVE["valkey"], reason="needs valkey-server")


ec = elasticache_fixture("lc-")


def code_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def binary_of(cluster_id: str) -> str:
    svc = next(s for s in helpers.status() if s.name == f"aws-{cluster_id}")
    return svc.nodes[0].argv[0]


@needs_both
def test_create_cache_cluster_starts_the_engine_named(ec):
    for engine in ("valkey", "redis"):
        cid = f"lc-{engine}"
        ec.create_cache_cluster(CacheClusterId=cid, Engine=engine, CacheNodeType="cache.t4g.micro")
    for engine in ("valkey", "redis"):
        cc = cpc.wait_for(ec, cache_cluster_id=f"lc-{engine}")
        assert cc["Engine"] == engine
        info = cpc.redis_at(cpc.node_endpoints(cc)[0]).info("server")
        local = engines.installed_engines(engine)[0]
        if engine == "valkey":
            assert info.get("valkey_version") and cc["EngineVersion"] == info["valkey_version"]
            assert cc["CacheParameterGroup"]["CacheParameterGroupName"].startswith("default.valkey")
        else:
            assert "valkey_version" not in info and cc["EngineVersion"] == info["redis_version"]
            assert cc["CacheParameterGroup"]["CacheParameterGroupName"] == "default.redis7"
        assert engines.binary_version(binary_of(f"lc-{engine}")).lower().startswith(engine)
        assert local.version == cc["EngineVersion"]
    code, message = code_of(ec.modify_cache_cluster, CacheClusterId="lc-redis", Engine="valkey", EngineVersion="9.1")
    assert code == "InvalidParameterCombination" and "replication group" in message  # AWS: join a group first
    for engine in ("valkey", "redis"):
        ec.delete_cache_cluster(CacheClusterId=f"lc-{engine}")
    for engine in ("valkey", "redis"):
        cpc.wait_deleted(ec, cache_cluster_id=f"lc-{engine}")


def test_engine_versions_and_families_per_engine(ec):
    for engine, families in (("valkey", {"valkey7", "valkey8", "valkey9"}), ("redis", {"redis7"}),
                             ("memcached", {"memcached1.6"})):
        versions = ec.describe_cache_engine_versions(Engine=engine)["CacheEngineVersions"]
        assert {v["Engine"] for v in versions} == {engine}
        assert {v["CacheParameterGroupFamily"] for v in versions} == families
    valkey = {v["EngineVersion"]: v["CacheParameterGroupFamily"]
              for v in ec.describe_cache_engine_versions(Engine="valkey")["CacheEngineVersions"]}
    assert valkey["7.2"] == "valkey7" and valkey["8.0"] == "valkey8" and valkey["9.1"] == "valkey9"
    groups = {g["CacheParameterGroupName"]: g["CacheParameterGroupFamily"]
              for g in ec.describe_cache_parameter_groups()["CacheParameterGroups"]}
    for name, family in (("default.valkey8", "valkey8"), ("default.valkey8.cluster.on", "valkey8"),
                         ("default.valkey9", "valkey9"), ("default.redis7", "redis7"),
                         ("default.redis7.cluster.on", "redis7"), ("default.memcached1.6", "memcached1.6")):
        assert groups[name] == family


@needs_both
def test_parameter_group_family_must_match_the_engine_version(ec):
    valkey = engines.installed_engines("valkey")[0]
    family = f"valkey{valkey.version.split('.')[0]}"
    code, message = code_of(ec.create_cache_cluster, CacheClusterId="lc-mismatch", Engine="valkey",
                            CacheNodeType="cache.t4g.micro", CacheParameterGroupName="default.redis7")
    assert code == "InvalidParameterCombination" and family in message
    code, _ = code_of(ec.create_cache_cluster, CacheClusterId="lc-mismatch", Engine="redis",
                      CacheNodeType="cache.t4g.micro", CacheParameterGroupName=f"default.{family}")
    assert code == "InvalidParameterCombination"
    missing = next(v for v in ("7.2", "8.0", "8.1", "8.2", "9.0", "9.1")
                   if not any(e.version.startswith(v + ".") for e in engines.installed_engines("valkey")))
    code, message = code_of(ec.create_cache_cluster, CacheClusterId="lc-missing", Engine="valkey",
                            EngineVersion=missing, CacheNodeType="cache.t4g.micro")
    assert code == "InvalidParameterCombination" and "not installed" in message and "install" in message.lower()
    code, _ = code_of(ec.create_cache_cluster, CacheClusterId="lc-missing", Engine="valkey", EngineVersion="6.2",
                      CacheNodeType="cache.t4g.micro")
    assert code == "InvalidParameterCombination"  # AWS: Cannot find version 6.2 for valkey


def test_maintenance_window_is_validated_and_shown(ec):
    for bad in ("sun:23:00", "xyz:01:00-mon:02:00", "sun:01:00-sun:01:30", "sun:01:00-tue:02:00"):
        code, _ = code_of(ec.create_cache_cluster, CacheClusterId="lc-mw", Engine="memcached",
                          CacheNodeType="cache.t4g.micro", PreferredMaintenanceWindow=bad)
        assert code == "InvalidParameterValue", bad
    ec.create_cache_cluster(CacheClusterId="lc-mw", Engine="memcached", CacheNodeType="cache.t4g.micro",
                            PreferredMaintenanceWindow="Tue:03:00-Tue:04:30")
    cc = cpc.wait_for(ec, cache_cluster_id="lc-mw")
    assert cc["PreferredMaintenanceWindow"] == "tue:03:00-tue:04:30"
    ec.modify_cache_cluster(CacheClusterId="lc-mw", PreferredMaintenanceWindow="sat:22:00-sun:01:00")
    cc = cpc.wait_for(ec, cache_cluster_id="lc-mw")
    assert cc["PreferredMaintenanceWindow"] == "sat:22:00-sun:01:00"
    ec.delete_cache_cluster(CacheClusterId="lc-mw")
    cpc.wait_deleted(ec, cache_cluster_id="lc-mw")


def _group_with_keys(ec, group_id: str, engine: str, keys: int, key_format: str):
    """A 1+1 group with automatic failover, `keys` keys written through its primary endpoint:
    (the group, the endpoint, a client on it)."""
    ec.create_replication_group(ReplicationGroupId=group_id, ReplicationGroupDescription=group_id, Engine=engine,
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=2, AutomaticFailoverEnabled=True)
    g = cpc.wait_for(ec, replication_group_id=group_id)
    ep = g["NodeGroups"][0]["PrimaryEndpoint"]
    r = cpc.redis_at((ep["Address"], ep["Port"]))
    with r.pipeline(transaction=False) as pipe:
        for i in range(keys):
            pipe.set(key_format.format(i), i)
        pipe.execute()
    return g, ep, r


@needs_both
def test_redis_to_valkey_upgrade_keeps_every_key_and_the_endpoint(ec):
    g, ep, r = _group_with_keys(ec, "lc-up", "redis", 2000, "key:{}")
    assert "valkey_version" not in r.info("server")
    valkey = engines.installed_engines("valkey")[0]
    minor = ".".join(valkey.version.split(".")[:2])
    ec.modify_replication_group(ReplicationGroupId="lc-up", Engine="valkey", EngineVersion=minor)  # waits
    member = ec.describe_cache_clusters(CacheClusterId=g["MemberClusters"][0])["CacheClusters"][0]
    assert member["PendingModifiedValues"] == {"EngineVersion": valkey.version} and member["Engine"] == "redis"
    assert "valkey_version" not in r.info("server")
    applied = localaws.apply_pending()  # the maintenance window, now
    assert applied.get("lc-up") == ["EngineVersion"]
    g = cpc.wait_for(ec, replication_group_id="lc-up", timeout=180)
    assert g["NodeGroups"][0]["PrimaryEndpoint"] == ep
    r = cpc.redis_at((ep["Address"], ep["Port"]))
    assert r.dbsize() == 2000 and r.get("key:1999") == "1999"
    for cid in g["MemberClusters"]:
        cc = ec.describe_cache_clusters(CacheClusterId=cid, ShowCacheNodeInfo=True)["CacheClusters"][0]
        assert cc["Engine"] == "valkey" and cc["EngineVersion"] == valkey.version
        assert cc["CacheParameterGroup"]["CacheParameterGroupName"] == f"default.{cc['CacheParameterGroup']['CacheParameterGroupName'].split('.')[1]}"
        assert cc["PendingModifiedValues"] == {}
        node = cpc.redis_at(cpc.node_endpoints(cc)[0])
        assert node.info("server")["valkey_version"] == valkey.version and node.dbsize() == 2000
    messages = [e["Message"] for e in ec.describe_events(SourceIdentifier="lc-up")["Events"]]
    assert any(m.startswith("Engine upgraded to Valkey") for m in messages)
    code, message = code_of(ec.modify_replication_group, ReplicationGroupId="lc-up", Engine="redis",
                            EngineVersion="7.0", ApplyImmediately=True)
    # AWS rolls back only Valkey 7.2 to Redis OSS 7.1 (its own build, no local binary): refused here, saying so
    assert code == "InvalidParameterCombination" and "Valkey 7.2 to Redis OSS 7.1" in message
    ec.delete_replication_group(ReplicationGroupId="lc-up")
    cpc.wait_deleted(ec, replication_group_id="lc-up")


@needs_valkey
def test_service_update_restarts_every_node_and_keeps_the_data(ec):
    g, ep, r = _group_with_keys(ec, "lc-su", "valkey", 300, "k{}")
    pids = {n.pid for s in helpers.status() if s.name == "aws-rg-lc-su" for n in s.nodes if n.kind == "redis"}
    updates = ec.describe_service_updates(ServiceUpdateStatus=["available"])["ServiceUpdates"]
    name = next(u["ServiceUpdateName"] for u in updates if u["Engine"] == "valkey"
                and u["ServiceUpdateType"] == "engine-update")
    actions = ec.describe_update_actions(ServiceUpdateName=name, ReplicationGroupIds=["lc-su"])["UpdateActions"]
    assert [a["UpdateActionStatus"] for a in actions] == ["not-applied"]
    out = ec.batch_apply_update_action(ServiceUpdateName=name, ReplicationGroupIds=["lc-su", "lc-none"])
    assert [p["ReplicationGroupId"] for p in out["ProcessedUpdateActions"]] == ["lc-su"]
    assert [u["ReplicationGroupId"] for u in out["UnprocessedUpdateActions"]] == ["lc-none"]
    cpc.wait_for(ec, replication_group_id="lc-su", timeout=180)
    [action] = ec.describe_update_actions(ServiceUpdateName=name, ReplicationGroupIds=["lc-su"])["UpdateActions"]
    assert action["UpdateActionStatus"] == "complete" and action["NodesUpdated"] == "2/2"
    after = {n.pid for s in helpers.status() if s.name == "aws-rg-lc-su" for n in s.nodes if n.kind == "redis"}
    assert pids and not pids & after  # every data node was restarted
    r = cpc.redis_at((ep["Address"], ep["Port"]))
    assert r.dbsize() == 300
    code, _ = code_of(ec.batch_apply_update_action, ServiceUpdateName="no-such-update", ReplicationGroupIds=["lc-su"])
    assert code == "ServiceUpdateNotFoundFault"
    ec.delete_replication_group(ReplicationGroupId="lc-su")
    cpc.wait_deleted(ec, replication_group_id="lc-su")
    # The same id again is a new group, on new processes: the update is not applied to it.
    ec.create_replication_group(ReplicationGroupId="lc-su", ReplicationGroupDescription="again", Engine="valkey",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=1)
    cpc.wait_for(ec, replication_group_id="lc-su")
    [action] = ec.describe_update_actions(ServiceUpdateName=name, ReplicationGroupIds=["lc-su"])["UpdateActions"]
    assert action["UpdateActionStatus"] == "not-applied"
    ec.delete_replication_group(ReplicationGroupId="lc-su")
    cpc.wait_deleted(ec, replication_group_id="lc-su")


@needs_both
def test_cluster_mode_upgrade_keeps_every_key_and_the_configuration_endpoint(ec):
    ec.create_replication_group(ReplicationGroupId="lc-cm", ReplicationGroupDescription="cluster upgrade",
                                Engine="redis", CacheNodeType="cache.t4g.micro", NumNodeGroups=2, ReplicasPerNodeGroup=1)
    g = cpc.wait_for(ec, replication_group_id="lc-cm")
    ep = g["ConfigurationEndpoint"]
    rc = cpc.cluster_at(ep)
    for i in range(500):
        rc.set(f"k{i}", i)
    minor = ".".join(engines.installed_engines("valkey")[0].version.split(".")[:2])
    ec.modify_replication_group(ReplicationGroupId="lc-cm", Engine="valkey", EngineVersion=minor, ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="lc-cm", timeout=240)
    assert g["ConfigurationEndpoint"] == ep
    rc = cpc.cluster_at(ep)
    assert all(rc.get(f"k{i}") == str(i) for i in range(500))
    members = [c for c in ec.describe_cache_clusters()["CacheClusters"] if c.get("ReplicationGroupId") == "lc-cm"]
    assert len(members) == 4 and {c["Engine"] for c in members} == {"valkey"}
    assert {c["CacheParameterGroup"]["CacheParameterGroupName"].endswith(".cluster.on") for c in members} == {True}
    ec.delete_replication_group(ReplicationGroupId="lc-cm")
    cpc.wait_deleted(ec, replication_group_id="lc-cm")
