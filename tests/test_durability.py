"""Durability (ElastiCache for Valkey 9.0+) on the local API: AWS's rules, and the local stand-in.

The rules come from the guide's "Limitations" page; locally every node of a durable group runs its
append-only file with `appendfsync always` (sync) or `everysec` (async), checked on the engines.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from support import elasticache_fixture

from helpers.aws import client as cpc
from helpers.runtime import engines

HAVE_VALKEY9 = any(e.version.split(".")[0].isdigit() and int(e.version.split(".")[0]) >= 9
                   for e in engines.installed_engines("valkey"))
needs_valkey9 = pytest.mark.skipif(not HAVE_VALKEY9, reason="needs valkey-server 9 or later")

DURABLE = dict(ReplicationGroupDescription="durable", Engine="valkey", CacheNodeType="cache.r7g.large",
               NumNodeGroups=1, ReplicasPerNodeGroup=1, MultiAZEnabled=True, AutomaticFailoverEnabled=True,
               TransitEncryptionEnabled=True, Durability="sync")


ec = elasticache_fixture("dur-")


def refused(ec, **changes) -> tuple[str, str]:
    request = {**DURABLE, "ReplicationGroupId": "dur-refused", **changes}
    with pytest.raises(ClientError) as info:
        ec.create_replication_group(**{k: v for k, v in request.items() if v is not None})
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_durability_node_families():
    """R7g, R6g, M7g, M6g, C7gn and the Graviton4 R8g, M8g, C8gn (Durability.Limitations.html and its
    translations, AWS's Price List durability SKUs; read 2026-11-27); nothing else."""
    from helpers.aws.controlplane.models import durability

    def effective(node_type: str) -> str:
        return durability.check_durability("sync", "valkey", "9.0", node_type, clustered=True, multi_az=True,
                                           replicas=1, tls=True)

    for node_type in ("cache.r7g.large", "cache.r6g.xlarge", "cache.m7g.large", "cache.m6g.large", "cache.c7gn.large",
                      "cache.r8g.large", "cache.m8g.xlarge", "cache.c8gn.large"):
        assert effective(node_type) == "sync"
    for node_type in ("cache.r5.large", "cache.m5.large", "cache.r6gd.xlarge", "cache.t4g.small", "cache.t3.medium"):
        with pytest.raises(Exception, match="node type"):
            effective(node_type)


@needs_valkey9
def test_durability_rules_are_aws_limitations(ec):
    assert refused(ec, Durability="always")[0] == "InvalidParameterValue"
    assert "Valkey 9.0" in refused(ec, Engine="redis")[1]
    assert "node type" in refused(ec, CacheNodeType="cache.t4g.micro")[1]
    assert "node type" in refused(ec, CacheNodeType="cache.r6gd.xlarge")[1]  # data tiering
    code, message = refused(ec, NumNodeGroups=None, ReplicasPerNodeGroup=None, NumCacheClusters=2,
                            **{"ClusterMode": "disabled"})
    assert code == "InvalidParameterCombination" and "cluster mode disabled" in message
    assert "at least one replica" in refused(ec, ReplicasPerNodeGroup=0, MultiAZEnabled=False,
                                             AutomaticFailoverEnabled=True)[1]
    assert "encryption in transit" in refused(ec, TransitEncryptionEnabled=False)[1]
    assert "dur-refused" not in {g["ReplicationGroupId"] for g in ec.describe_replication_groups()["ReplicationGroups"]}


@needs_valkey9
def test_a_durable_group_logs_every_write_and_switches_between_sync_and_async(ec):
    ec.create_replication_group(ReplicationGroupId="dur-a", **DURABLE)
    g = cpc.wait_for(ec, replication_group_id="dur-a")
    assert (g["Durability"], g["EffectiveDurability"]) == ("sync", "sync")
    assert g["AtRestEncryptionEnabled"] is True  # turned on by durability, as on AWS
    members = [cpc.wait_for(ec, cache_cluster_id=m) for m in g["MemberClusters"]]

    def fsync_modes() -> set[str]:
        modes = set()
        for cc in members:
            r = cpc.redis_at(cpc.node_endpoints(cc)[0], tls=True)
            assert r.config_get("appendonly")["appendonly"] == "yes"
            modes.add(r.config_get("appendfsync")["appendfsync"])
        return modes

    assert fsync_modes() == {"always"}
    ec.modify_replication_group(ReplicationGroupId="dur-a", Durability="async", ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="dur-a")
    assert g["EffectiveDurability"] == "async" and fsync_modes() == {"everysec"}
    ec.modify_replication_group(ReplicationGroupId="dur-a", Durability="disabled", ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="dur-a")
    assert g["EffectiveDurability"] == "disabled"  # "Changing durability on an existing cluster" (2026-10)
    r = cpc.redis_at(cpc.node_endpoints(members[0])[0], tls=True)
    assert r.config_get("appendonly")["appendonly"] == "no"


@needs_valkey9
def test_durability_is_turned_on_later_only_where_a_durable_cluster_could_be_made(ec):
    ec.create_replication_group(ReplicationGroupId="dur-plain", ReplicationGroupDescription="plain", Engine="valkey",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=1)
    g = cpc.wait_for(ec, replication_group_id="dur-plain")
    assert g.get("EffectiveDurability", "disabled") == "disabled"
    with pytest.raises(ClientError) as info:
        ec.modify_replication_group(ReplicationGroupId="dur-plain", Durability="sync", ApplyImmediately=True)
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "node type" in info.value.response["Error"]["Message"]  # the requirements of a new durable cluster
