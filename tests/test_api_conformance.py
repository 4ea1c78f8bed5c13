"""The local ElastiCache API against AWS's API reference: every option does what AWS does, or is refused.

Drives the operations through botocore (and a few through the AWS CLI), checks the answers' shapes
against botocore's model of the API and the error codes AWS documents, then looks at the engines to
see that the option really acted (maxmemory after scaling, CONFIG GET after a parameter change,
which AUTH tokens a node accepts). A bounded fuzz test sends malformed and edge values to every
operation botocore knows and expects AWS-style 4xx errors only.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from support import code_of, elasticache_fixture, error_of

import helpers
from helpers.aws import catalogue
from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

AWS_CLI = str(Path(sys.executable).parent / "aws")
MODEL = botocore.session.get_session().get_service_model("elasticache")


ec = elasticache_fixture("c-")


def shape_keys(shape_name: str) -> set[str]:
    return set(MODEL.shape_for(shape_name).members)


def assert_shape(item: dict, shape_name: str) -> None:
    """Every key of an answer is a member of AWS's shape (no invented fields)."""
    extra = set(item) - shape_keys(shape_name)
    assert not extra, f"{shape_name} has no {sorted(extra)}"


# --- parameters ------------------------------------------------------------------------------------

def test_engine_defaults_come_from_the_catalogue_with_paging(ec):
    out = ec.describe_engine_default_parameters(CacheParameterGroupFamily="redis7")["EngineDefaults"]
    names = [p["ParameterName"] for p in out["Parameters"]]
    assert len(names) == len(catalogue.parameters("redis7")) > 25 or "Marker" in out
    first = ec.describe_engine_default_parameters(CacheParameterGroupFamily="redis7", MaxRecords=20)["EngineDefaults"]
    assert len(first["Parameters"]) == 20 and first["Marker"]
    second = ec.describe_engine_default_parameters(CacheParameterGroupFamily="redis7", MaxRecords=20,
                                                   Marker=first["Marker"])["EngineDefaults"]
    assert {p["ParameterName"] for p in first["Parameters"]}.isdisjoint(p["ParameterName"]
                                                                        for p in second["Parameters"])
    for p in out["Parameters"]:
        assert_shape(p, "Parameter")
    timeout = next(p for p in out["Parameters"] if p["ParameterName"] == "timeout")
    assert timeout["AllowedValues"] == "0,20-" and timeout["DataType"] == "integer"
    mc = ec.describe_engine_default_parameters(CacheParameterGroupFamily="memcached1.6")["EngineDefaults"]
    assert len(mc["Parameters"]) > 15
    assert code_of(ec.describe_engine_default_parameters, CacheParameterGroupFamily="redis99") == \
        "InvalidParameterValue"
    assert code_of(ec.describe_engine_default_parameters, CacheParameterGroupFamily="redis7", MaxRecords=5) == \
        "InvalidParameterValue"  # AWS: MaxRecords is 20 to 100


def test_parameter_values_are_validated_in_aws_words_and_applied(ec):
    ec.create_cache_parameter_group(CacheParameterGroupName="c-params", CacheParameterGroupFamily="redis7",
                                    Description="conformance")

    def modify(name: str, value: str):
        return ec.modify_cache_parameter_group(CacheParameterGroupName="c-params",
                                               ParameterNameValues=[{"ParameterName": name, "ParameterValue": value}])

    for name, value in (("timeout", "5"), ("timeout", "-3"), ("maxmemory-samples", "abc"),
                        ("notify-keyspace-events", "QQQ"), ("maxmemory-policy", "sometimes")):
        code, message, status = error_of(modify, name=name, value=value)
        assert (code, status) == ("InvalidParameterValue", 400), (name, value)
        assert name in message
    code, message, _ = error_of(modify, name="no-such-parameter", value="1")
    assert (code, message) == ("InvalidParameterValue", "Parameter no-such-parameter doesn't exist")
    assert code_of(modify, name="maxmemory", value="1000") == "InvalidParameterValue"  # not modifiable
    modify("timeout", "30")  # a rejected value was not stored: later calls still work
    modify("activedefrag", "yes")  # AWS accepts it; an engine built without it refuses CONFIG SET: recorded
    params = ec.describe_cache_parameters(CacheParameterGroupName="c-params", Source="user")["Parameters"]
    assert {p["ParameterName"]: p["ParameterValue"] for p in params} == {"timeout": "30", "activedefrag": "yes"}
    assert all(p["Source"] == "user" for p in params)

    ec.create_cache_cluster(CacheClusterId="c-pcl", Engine="redis", CacheNodeType="cache.t4g.micro",
                            CacheParameterGroupName="c-params")
    cc = cpc.wait_for(ec, cache_cluster_id="c-pcl")
    r = cpc.redis_at(cpc.node_endpoints(cc)[0])
    assert r.config_get("timeout")["timeout"] == "30"  # a new node starts with the group's values
    modify("timeout", "120")  # immediate: CONFIG SET on the running node
    assert r.config_get("timeout")["timeout"] == "120"
    modify("maxmemory-policy", "allkeys-lfu")
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lfu"
    cc = ec.describe_cache_clusters(CacheClusterId="c-pcl")["CacheClusters"][0]
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"  # immediate ones never wait
    messages = [e["Message"] for e in ec.describe_events(SourceIdentifier="c-pcl", Duration=60)["Events"]]
    assert messages
    ec.delete_cache_cluster(CacheClusterId="c-pcl")
    cpc.wait_deleted(ec, cache_cluster_id="c-pcl")
    ec.delete_cache_parameter_group(CacheParameterGroupName="c-params")


def test_requires_reboot_parameters_wait_for_a_reboot(ec):
    ec.create_cache_parameter_group(CacheParameterGroupName="c-mcp", CacheParameterGroupFamily="memcached1.6",
                                    Description="memcached")
    ec.create_cache_cluster(CacheClusterId="c-mc", Engine="memcached", CacheNodeType="cache.t4g.micro",
                            NumCacheNodes=1, CacheParameterGroupName="c-mcp")
    cpc.wait_for(ec, cache_cluster_id="c-mc")
    ec.modify_cache_parameter_group(CacheParameterGroupName="c-mcp", ParameterNameValues=[
        {"ParameterName": "max_item_size", "ParameterValue": "2097152"}])
    cc = ec.describe_cache_clusters(CacheClusterId="c-mc", ShowCacheNodeInfo=True)["CacheClusters"][0]
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "pending-reboot"
    assert cc["CacheParameterGroup"]["CacheNodeIdsToReboot"] == ["0001"]
    assert cc["CacheNodes"][0]["ParameterGroupStatus"] == "pending-reboot"
    ec.reboot_cache_cluster(CacheClusterId="c-mc", CacheNodeIdsToReboot=["0001"])
    cc = cpc.wait_for(ec, cache_cluster_id="c-mc")
    assert cc["CacheParameterGroup"]["ParameterApplyStatus"] == "in-sync"
    assert code_of(ec.modify_cache_parameter_group, CacheParameterGroupName="c-mcp", ParameterNameValues=[
        {"ParameterName": "max_item_size", "ParameterValue": "5"}]) == "InvalidParameterValue"
    ec.delete_cache_cluster(CacheClusterId="c-mc")
    cpc.wait_deleted(ec, cache_cluster_id="c-mc")
    ec.delete_cache_parameter_group(CacheParameterGroupName="c-mcp")


def test_parameter_group_family_and_cluster_mode_must_match(ec):
    base = {"ReplicationGroupDescription": "d", "CacheNodeType": "cache.t4g.micro"}
    assert code_of(ec.create_replication_group, ReplicationGroupId="c-x", NumCacheClusters=2,
                   CacheParameterGroupName="default.redis7.cluster.on", **base) == "InvalidParameterCombination"
    assert code_of(ec.create_replication_group, ReplicationGroupId="c-x", NumNodeGroups=2,
                   CacheParameterGroupName="default.redis7", **base) == "InvalidParameterCombination"
    assert code_of(ec.create_replication_group, ReplicationGroupId="c-x", NumNodeGroups=0, **base) == \
        "InvalidParameterValue"
    code, message, _ = error_of(ec.create_cache_cluster, CacheClusterId="c-x", Engine="redis",
                                CacheNodeType="cache.t4g.micro", CacheParameterGroupName="default.memcached1.6")
    assert code == "InvalidParameterCombination" and "family" in message


# --- values AWS checks -----------------------------------------------------------------------------

def test_values_are_validated(ec):
    base = {"Engine": "redis", "CacheNodeType": "cache.t4g.micro"}
    for bad in ("cache.bogus.huge", "m5.large"):
        assert code_of(ec.create_cache_cluster, CacheClusterId="c-x", Engine="redis", CacheNodeType=bad) == \
            "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="c-x", PreferredAvailabilityZone="mars-1a", **base) == \
        "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="c-x", SecurityGroupIds=["sg-doesnotexist"], **base) \
        == "InvalidParameterValue"
    assert code_of(ec.create_cache_cluster, CacheClusterId="c-x",
                   SnapshotArns=["arn:aws:s3:::bucket/dump.rdb"], **base) == "InvalidParameterValue"
    code, message, _ = error_of(ec.create_cache_cluster, CacheClusterId="c-x", EngineVersion="99.0", **base)
    assert code == "InvalidParameterCombination" and message.startswith("Cannot find version 99.0 for redis")
    code, message, _ = error_of(ec.create_cache_cluster, CacheClusterId="c-x", EngineVersion="7.1", **base)
    assert code == "InvalidParameterCombination" and "7.1" in message  # AWS offers it; not installed here
    assert code_of(ec.create_user, UserId="c-u", UserName="u", Engine="redis", AccessString="on ~* +bogus",
                   NoPasswordRequired=True) == "InvalidParameterValue"
    assert code_of(ec.create_user, UserId="c-u", UserName="u", Engine="redis", AccessString="on ~* +@nope",
                   NoPasswordRequired=True) == "InvalidParameterValue"
    ec.create_user(UserId="c-u", UserName="c-u", Engine="redis", AccessString="on ~app:* -@all +get +config|get",
                   NoPasswordRequired=True)
    ec.delete_user(UserId="c-u")
    # a security group of the local EC2 API is accepted
    ec2 = localaws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="c-cache", Description="cache", VpcId=vpc)["GroupId"]
    ec.create_cache_cluster(CacheClusterId="c-sg", SecurityGroupIds=[sg], PreferredAvailabilityZone="us-east-1b",
                            **base)
    cc = cpc.wait_for(ec, cache_cluster_id="c-sg")
    assert cc["SecurityGroups"] == [{"SecurityGroupId": sg, "Status": "active"}]
    assert cc["PreferredAvailabilityZone"] == "us-east-1b"
    assert_shape(cc, "CacheCluster")
    ec.delete_cache_cluster(CacheClusterId="c-sg")
    cpc.wait_deleted(ec, cache_cluster_id="c-sg")
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_vpc(VpcId=vpc)


def test_engine_versions_follow_the_catalogue(ec):
    redis = ec.describe_cache_engine_versions(Engine="redis")["CacheEngineVersions"]
    assert [v["EngineVersion"] for v in redis] == [v["EngineVersion"] for v in catalogue.engine_versions("redis")]
    for v in redis:
        assert_shape(v, "CacheEngineVersion")
        assert v["CacheParameterGroupFamily"] == "redis7"
    mc = ec.describe_cache_engine_versions(Engine="memcached", DefaultOnly=True)["CacheEngineVersions"]
    assert len(mc) == 1 and mc[0]["CacheParameterGroupFamily"] == "memcached1.6"
    fam = ec.describe_cache_engine_versions(CacheParameterGroupFamily="valkey8")["CacheEngineVersions"]
    assert fam and {v["Engine"] for v in fam} == {"valkey"}
    assert code_of(ec.describe_cache_engine_versions, Engine="oracle") == "InvalidParameterValue"


# --- scaling, pending changes, engine versions ----------------------------------------------------

def test_node_type_change_waits_for_the_maintenance_window_and_keeps_data(ec):
    ec.create_cache_cluster(CacheClusterId="c-scale", Engine="redis", CacheNodeType="cache.t4g.micro")
    cc = cpc.wait_for(ec, cache_cluster_id="c-scale")
    r = cpc.redis_at(cpc.node_endpoints(cc)[0])
    assert int(r.config_get("maxmemory")["maxmemory"]) == catalogue.maxmemory_for("cache.t4g.micro")
    r.set("kept", "yes")
    out = ec.modify_cache_cluster(CacheClusterId="c-scale", CacheNodeType="cache.r7g.large")["CacheCluster"]
    assert out["PendingModifiedValues"] == {"CacheNodeType": "cache.r7g.large"}
    assert out["CacheNodeType"] == "cache.t4g.micro"
    assert int(r.config_get("maxmemory")["maxmemory"]) == catalogue.maxmemory_for("cache.t4g.micro")
    assert code_of(ec.modify_cache_cluster, CacheClusterId="c-scale", CacheNodeType="cache.bogus.huge") == \
        "InvalidParameterValue"
    assert code_of(ec.modify_cache_cluster, CacheClusterId="c-scale", EngineVersion="99.0") == \
        "InvalidParameterCombination"
    assert code_of(ec.modify_cache_cluster, CacheClusterId="c-scale", EngineVersion="7.1") == \
        "InvalidParameterCombination"
    applied = localaws.apply_pending()  # the maintenance window, now
    assert applied == {"c-scale": ["CacheNodeType"]}
    cc = cpc.wait_for(ec, cache_cluster_id="c-scale")
    assert cc["CacheNodeType"] == "cache.r7g.large" and cc["PendingModifiedValues"] == {}
    assert int(r.config_get("maxmemory")["maxmemory"]) == catalogue.maxmemory_for("cache.r7g.large")
    assert r.get("kept") == "yes"
    ec.modify_cache_cluster(CacheClusterId="c-scale", CacheNodeType="cache.t4g.small", ApplyImmediately=True)
    cc = cpc.wait_for(ec, cache_cluster_id="c-scale")
    assert cc["CacheNodeType"] == "cache.t4g.small"
    assert int(r.config_get("maxmemory")["maxmemory"]) == catalogue.maxmemory_for("cache.t4g.small")
    assert r.get("kept") == "yes"
    ec.delete_cache_cluster(CacheClusterId="c-scale")
    cpc.wait_deleted(ec, cache_cluster_id="c-scale")


def test_replication_group_scaling_at_rest_and_auth_strategies(ec):
    import redis

    a, b, c = "token-A-0123456789abcdef", "token-B-0123456789abcdef", "token-C-0123456789abcdef"
    ec.create_replication_group(ReplicationGroupId="c-rg", ReplicationGroupDescription="conformance",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=2, AtRestEncryptionEnabled=True,
                                TransitEncryptionEnabled=True, AuthToken=a)
    g = cpc.wait_for(ec, replication_group_id="c-rg")
    assert g["AtRestEncryptionEnabled"] is True and g["AuthTokenEnabled"]
    assert_shape(g, "ReplicationGroup")
    eps = [(m["ReadEndpoint"]["Address"], m["ReadEndpoint"]["Port"]) for m in g["NodeGroups"][0]["NodeGroupMembers"]]

    def accepts(token: str) -> list[bool]:
        out = []
        for ep in eps:
            try:
                out.append(bool(cpc.redis_at(ep, tls=True, password=token, retries=0).ping()))
            except redis.exceptions.AuthenticationError:
                out.append(False)
        return out

    assert accepts(a) == [True, True]
    assert code_of(ec.modify_replication_group, ReplicationGroupId="c-rg", AuthToken=b,
                   AuthTokenUpdateStrategy="SET", ApplyImmediately=True) == "InvalidParameterCombination"
    assert code_of(ec.modify_replication_group, ReplicationGroupId="c-rg", AuthTokenUpdateStrategy="DELETE",
                   ApplyImmediately=True) == "InvalidParameterCombination"  # only when moving to RBAC
    ec.modify_replication_group(ReplicationGroupId="c-rg", AuthToken=b, AuthTokenUpdateStrategy="ROTATE",
                                ApplyImmediately=True)
    cpc.wait_for(ec, replication_group_id="c-rg")
    assert accepts(a) == [True, True] and accepts(b) == [True, True]  # both during a rotation
    ec.modify_replication_group(ReplicationGroupId="c-rg", AuthToken=b, AuthTokenUpdateStrategy="SET",
                                ApplyImmediately=True)
    cpc.wait_for(ec, replication_group_id="c-rg")
    assert accepts(a) == [False, False] and accepts(b) == [True, True]
    ec.modify_replication_group(ReplicationGroupId="c-rg", AuthToken=c, AuthTokenUpdateStrategy="ROTATE",
                                ApplyImmediately=True)
    cpc.wait_for(ec, replication_group_id="c-rg")
    ec.modify_replication_group(ReplicationGroupId="c-rg", AuthToken=c, AuthTokenUpdateStrategy="SET",
                                ApplyImmediately=True)
    cpc.wait_for(ec, replication_group_id="c-rg")
    assert accepts(a) == [False, False] and accepts(b) == [False, False] and accepts(c) == [True, True]
    primary = cpc.redis_at(eps[0], tls=True, password=c)
    primary.set("kept", "yes")
    ec.modify_replication_group(ReplicationGroupId="c-rg", CacheNodeType="cache.r7g.large", ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="c-rg")
    assert g["CacheNodeType"] == "cache.r7g.large"
    for ep in eps:
        node = cpc.redis_at(ep, tls=True, password=c)
        assert int(node.config_get("maxmemory")["maxmemory"]) == catalogue.maxmemory_for("cache.r7g.large")
    assert primary.get("kept") == "yes"
    ec.modify_replication_group(ReplicationGroupId="c-rg", CacheNodeType="cache.t4g.small")
    members = ec.describe_cache_clusters(CacheClusterId=g["MemberClusters"][0])["CacheClusters"]
    assert members[0]["PendingModifiedValues"] == {"CacheNodeType": "cache.t4g.small"}
    cpc.wait_for(ec, replication_group_id="c-rg")

    # at rest: the snapshot's file is encrypted under a data key of the local KMS, and still restores
    ec.create_snapshot(ReplicationGroupId="c-rg", SnapshotName="c-enc")
    deadline = time.monotonic() + 60
    while ec.describe_snapshots(SnapshotName="c-enc")["Snapshots"][0]["SnapshotStatus"] != "available":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    snap = ec.describe_snapshots(SnapshotName="c-enc")["Snapshots"][0]
    assert snap["KmsKeyId"].startswith("arn:aws:kms:")
    rdb = helpers.home() / "aws-snapshots" / "c-enc" / "0001.rdb"
    assert rdb.read_bytes().startswith(b"ELASTICACHE-LAB-KMS-v1") and b"kept" not in rdb.read_bytes()
    ec.create_cache_cluster(CacheClusterId="c-from-enc", Engine="redis", CacheNodeType="cache.t4g.micro",
                            SnapshotName="c-enc")
    restored = cpc.redis_at(cpc.node_endpoints(cpc.wait_for(ec, cache_cluster_id="c-from-enc"))[0])
    assert restored.get("kept") == "yes"
    ec.delete_cache_cluster(CacheClusterId="c-from-enc")
    ec.delete_replication_group(ReplicationGroupId="c-rg")
    cpc.wait_deleted(ec, replication_group_id="c-rg")
    cpc.wait_deleted(ec, cache_cluster_id="c-from-enc")
    ec.delete_snapshot(SnapshotName="c-enc")


# --- events and paging -------------------------------------------------------------------------------

def test_describe_events_time_filters_and_marker(ec):
    ec.create_cache_parameter_group(CacheParameterGroupName="c-ev", CacheParameterGroupFamily="redis7",
                                    Description="events")
    for i in range(25):
        ec.modify_cache_parameter_group(CacheParameterGroupName="c-ev", ParameterNameValues=[
            {"ParameterName": "timeout", "ParameterValue": str(100 + i)}])
    now = datetime.now(timezone.utc)
    window = ec.describe_events(SourceIdentifier="c-ev", StartTime=now - timedelta(minutes=5),
                                EndTime=now + timedelta(minutes=1))["Events"]
    assert len(window) >= 25
    naive = ec.describe_events(SourceIdentifier="c-ev", StartTime=datetime.utcnow() - timedelta(minutes=5))
    assert len(naive["Events"]) >= 25
    assert ec.describe_events(SourceIdentifier="c-ev", EndTime=now - timedelta(days=1))["Events"] == []
    page = ec.describe_events(SourceIdentifier="c-ev", MaxRecords=20)
    assert len(page["Events"]) == 20 and page["Marker"]
    rest = ec.describe_events(SourceIdentifier="c-ev", MaxRecords=20, Marker=page["Marker"])
    assert len(rest["Events"]) >= 5
    paginator = ec.get_paginator("describe_events")
    total = sum(len(p["Events"]) for p in paginator.paginate(SourceIdentifier="c-ev", PaginationConfig={
        "PageSize": 20}))
    assert total == len(window)
    assert code_of(ec.describe_events, Marker="not-a-marker") == "InvalidParameterValue"
    assert code_of(ec.describe_events, StartTime=now, EndTime=now - timedelta(hours=1)) == "InvalidParameterValue"
    ec.delete_cache_parameter_group(CacheParameterGroupName="c-ev")


def test_every_describe_takes_marker_and_max_records(ec):
    for op in MODEL.operation_names:
        shape = MODEL.operation_model(op).input_shape
        if not op.startswith("Describe") or shape is None or "MaxRecords" not in shape.members:
            continue
        kwargs = {"CacheParameterGroupFamily": "redis7"} if op == "DescribeEngineDefaultParameters" else {}
        if op == "DescribeCacheParameters":
            kwargs = {"CacheParameterGroupName": "default.redis7"}
        method = getattr(ec, botocore.xform_name(op))
        try:
            method(MaxRecords=20, **kwargs)
        except ClientError as err:
            assert err.response["Error"]["Code"] == "InvalidAction", op  # unsupported, said so


# --- no HTTP 500 ------------------------------------------------------------------------------------

EDGE_STRINGS = ["", " ", "-", "x" * 300, "ünïcödé", "'; DROP", "0", "-1", "99999999999", "cache.bogus.huge",
                "arn:aws:elasticache:us-east-1:123456789012:cluster:none", "default.redis7", "redis", "../../etc"]


def fuzz_value(shape, rng: random.Random, depth: int = 0):
    kind = shape.type_name
    if kind == "string":
        if shape.enum and rng.random() < 0.3:
            return rng.choice(shape.enum)
        return rng.choice(EDGE_STRINGS)
    if kind == "integer":
        return rng.choice([0, -1, 1, 2, 41, 501, 2**31 - 1])
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "timestamp":
        return rng.choice([datetime(1970, 1, 1), datetime(2100, 1, 1), datetime.now(timezone.utc)])
    if kind == "list":
        return [fuzz_value(shape.member, rng, depth + 1) for _ in range(rng.choice([0, 1, 3]))] if depth < 3 else []
    if kind == "structure":
        if depth >= 3:
            return {}
        return {k: fuzz_value(v, rng, depth + 1) for k, v in shape.members.items() if rng.random() < 0.7}
    if kind == "double":
        return rng.choice([0.0, -1.0, 1e308])
    return None


def test_fuzz_every_operation_answers_4xx_never_5xx(ec):
    """Malformed and edge values for every operation botocore knows: AWS-style errors only (bounded)."""
    rng = random.Random(20261127)
    raw = localaws.client("elasticache", config=botocore.config.Config(retries={"max_attempts": 0},
                                                                      parameter_validation=False))
    deadline = time.monotonic() + 240
    calls = 0
    for op in MODEL.operation_names:
        shape = MODEL.operation_model(op).input_shape
        method = getattr(raw, botocore.xform_name(op))
        for _ in range(4):
            if time.monotonic() > deadline:
                break
            kwargs = {} if shape is None else {k: fuzz_value(v, rng) for k, v in shape.members.items()
                                               if k in shape.required_members or rng.random() < 0.5}
            # Never create real engines in the fuzz: ids get a prefix cleaned up below.
            for key in ("CacheClusterId", "ReplicationGroupId", "UserId", "UserGroupId", "SnapshotName"):
                if key in kwargs and isinstance(kwargs[key], str) and op.startswith("Create"):
                    kwargs[key] = "c-fz" + kwargs[key][:10].replace(" ", "")
            calls += 1
            try:
                method(**kwargs)
            except ClientError as err:
                status = err.response["ResponseMetadata"]["HTTPStatusCode"]
                assert 400 <= status < 500, (op, kwargs, err.response["Error"])
                assert err.response["Error"]["Code"], (op, kwargs)
            except ParamValidationError:
                pass  # botocore itself refused to serialise the value
    assert calls > 200
    cpc.cleanup(localaws.client("elasticache"), "c-fz")


# --- the AWS CLI ------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **localaws.env(localaws.endpoint())}
    return subprocess.run([AWS_CLI, "elasticache", *args], capture_output=True, text=True, env=env, timeout=120)


def test_aws_cli_gets_aws_errors(ec):
    out = _cli("describe-cache-clusters", "--cache-cluster-id", "c-none")
    assert out.returncode != 0 and "CacheClusterNotFound" in out.stderr and "CacheCluster not found: c-none" in \
        out.stderr
    out = _cli("create-cache-cluster", "--cache-cluster-id", "c-x", "--engine", "redis", "--cache-node-type",
               "cache.t4g.micro", "--engine-version", "99.0")
    assert "InvalidParameterCombination" in out.stderr and "Cannot find version 99.0 for redis" in out.stderr
    out = _cli("describe-events", "--start-time", "2020-01-01T00:00:00Z", "--end-time", "2020-01-02T00:00:00Z")
    assert out.returncode == 0 and json.loads(out.stdout)["Events"] == []
    out = _cli("describe-cache-engine-versions", "--engine", "redis")
    assert out.returncode == 0 and json.loads(out.stdout)["CacheEngineVersions"]


# --- operations around the resources ---------------------------------------------------------------

def test_subnet_groups_node_type_modifications_and_service_updates(ec):
    ec2 = localaws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in enumerate(("us-east-1a", "us-east-1b"))]
    assert code_of(ec.create_cache_subnet_group, CacheSubnetGroupName="c-sn", CacheSubnetGroupDescription="d",
                   SubnetIds=["subnet-doesnotexist"]) == "InvalidSubnet"
    ec.create_cache_subnet_group(CacheSubnetGroupName="c-sn", CacheSubnetGroupDescription="d", SubnetIds=subnets[:1])
    out = ec.modify_cache_subnet_group(CacheSubnetGroupName="c-sn", CacheSubnetGroupDescription="two",
                                       SubnetIds=subnets)["CacheSubnetGroup"]
    assert out["CacheSubnetGroupDescription"] == "two"
    assert {s["SubnetIdentifier"] for s in out["Subnets"]} == set(subnets)
    assert code_of(ec.modify_cache_subnet_group, CacheSubnetGroupName="c-none", SubnetIds=subnets) == \
        "CacheSubnetGroupNotFoundFault"
    ec.delete_cache_subnet_group(CacheSubnetGroupName="c-sn")

    ec.create_cache_cluster(CacheClusterId="c-nt", Engine="redis", CacheNodeType="cache.m7g.large")
    cpc.wait_for(ec, cache_cluster_id="c-nt")
    mods = ec.list_allowed_node_type_modifications(CacheClusterId="c-nt")
    assert "cache.r7g.xlarge" in mods["ScaleUpModifications"] and "cache.t4g.micro" in mods["ScaleDownModifications"]
    assert "cache.m7g.large" not in mods["ScaleUpModifications"] + mods["ScaleDownModifications"]
    assert code_of(ec.list_allowed_node_type_modifications, CacheClusterId="c-none") == "CacheClusterNotFound"
    updates = ec.describe_service_updates()["ServiceUpdates"]
    assert updates and all(u["ServiceUpdateType"] in ("security-update", "engine-update", "engine-major-version-update")
                           for u in updates)
    actions = ec.describe_update_actions(CacheClusterIds=["c-nt"])["UpdateActions"]
    assert actions and {a["CacheClusterId"] for a in actions} == {"c-nt"}
    assert {a["UpdateActionStatus"] for a in actions} == {"not-applied"} and {a["Engine"] for a in actions} == {"redis"}
    ec.delete_cache_cluster(CacheClusterId="c-nt")
    cpc.wait_deleted(ec, cache_cluster_id="c-nt")
    code, message, _ = error_of(ec.create_serverless_cache, ServerlessCacheName="c-sl", Engine="memcached",
                                MajorEngineVersion="1.4")
    assert code == "InvalidParameterCombination" and "memcached" in message.lower()  # serverless Memcached: 1.6 only


def test_decrease_replica_count_by_naming_replicas(ec):
    ec.create_replication_group(ReplicationGroupId="c-dec", ReplicationGroupDescription="d",
                                CacheNodeType="cache.t4g.micro", NumCacheClusters=3)
    g = cpc.wait_for(ec, replication_group_id="c-dec")
    members = g["NodeGroups"][0]["NodeGroupMembers"]
    primary = next(m["CacheClusterId"] for m in members if m["CurrentRole"] == "primary")
    replica = next(m["CacheClusterId"] for m in members if m["CurrentRole"] == "replica")
    assert code_of(ec.decrease_replica_count, ReplicationGroupId="c-dec", ReplicasToRemove=[primary],
                   ApplyImmediately=True) == "InvalidParameterValue"
    assert code_of(ec.decrease_replica_count, ReplicationGroupId="c-dec", ReplicasToRemove=["c-none-001"],
                   ApplyImmediately=True) == "InvalidParameterValue"
    ec.decrease_replica_count(ReplicationGroupId="c-dec", ReplicasToRemove=[replica], ApplyImmediately=True)
    g = cpc.wait_for(ec, replication_group_id="c-dec")
    assert replica not in g["MemberClusters"] and len(g["MemberClusters"]) == 2
    ec.delete_replication_group(ReplicationGroupId="c-dec")
    cpc.wait_deleted(ec, replication_group_id="c-dec")


def test_apply_pending_from_the_command_line(ec):
    env = {**os.environ, **localaws.env(localaws.endpoint())}
    out = subprocess.run([sys.executable, "-m", "helpers", "aws", "apply-pending"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no pending modifications" in out.stdout or "applied" in out.stdout


def test_no_parameter_is_accepted_and_then_ignored(ec):
    """Every parameter of every action the control plane implements is either declared honoured by its
    handler (@honours; tests/test_api_parameters.py proves the handler reads it) or refused with a reason;
    a refused one gets InvalidParameterValue before anything is created."""
    from helpers.aws.controlplane import api, honoured

    for action, handler in api.HANDLERS.items():
        fn = next((c.cell_contents for c in handler.__closure__ or () if callable(c.cell_contents)
                   and getattr(c.cell_contents, "__module__", "").startswith("helpers.aws.controlplane.responses")),
                  None)
        if fn is None:
            continue
        op = MODEL.operation_model("".join(w.capitalize() for w in action.split("_")))
        members = set(op.input_shape.members) if op.input_shape else set()
        assert honoured.honoured(fn) - honoured.ALWAYS <= members, f"{action} declares names the API does not have"
        unread = members - honoured.honoured(fn)
        unexplained = unread - set(honoured.NOT_LOCAL.get(action, {}))
        assert not unexplained, f"{action} neither honours nor explains {sorted(unexplained)}"
        stale = set(honoured.NOT_LOCAL.get(action, {})) - unread
        assert not stale, f"{action} honours {sorted(stale)}, which NOT_LOCAL still calls refused"
    code, msg, status = error_of(ec.create_cache_cluster, CacheClusterId="c-sns", Engine="memcached",
                                 CacheNodeType="cache.t4g.micro", NumCacheNodes=1,
                                 NotificationTopicArn="arn:aws:sns:us-east-1:123456789012:events")
    assert (code, status) == ("InvalidParameterValue", 400) and "describe-events" in msg
    assert not ec.describe_cache_clusters()["CacheClusters"] or all(
        c["CacheClusterId"] != "c-sns" for c in ec.describe_cache_clusters()["CacheClusters"])
    code, msg, _ = error_of(ec.describe_users, Filters=[{"Name": "user-id", "Values": ["default"]}])
    assert code == "InvalidParameterValue" and "Filters" in msg
    # honoured: ServiceUpdateStatus and ServiceUpdateTimeRange filter the update actions
    everything = ec.describe_update_actions()["UpdateActions"]
    none = ec.describe_update_actions(ServiceUpdateStatus=["cancelled"])["UpdateActions"]
    assert all(a["ServiceUpdateStatus"] == "cancelled" for a in none)
    later = ec.describe_update_actions(ServiceUpdateTimeRange={"StartTime": datetime(2100, 1, 1, tzinfo=timezone.utc)})
    assert later["UpdateActions"] == [] and len(everything) >= len(none)
