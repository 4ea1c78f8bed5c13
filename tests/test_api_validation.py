"""The local ElastiCache API refuses what AWS refuses, before any action runs, and answers in AWS's shapes.

Requests go over HTTP to the running local endpoint: through boto3, and, for what botocore would refuse
on the client side (MaxRecords=abc, no Action, another API Version), as raw query requests signed with
botocore's SigV4Auth. The expected answers come from AWS's documents: the API Reference's Common
Errors (MissingAction, InvalidAction, InvalidParameterValue: 400), the API's faults
(TagQuotaPerResourceExceeded, InvalidARN) and the AWS CLI's elasticache examples (aws/aws-cli,
awscli/examples/elasticache/*.rst), each cited where it is used.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

MODEL = botocore.session.get_session().get_service_model("elasticache")
VERSION = "2015-02-02"  # ElastiCache's API version (botocore's model: metadata.apiVersion)
WEST = "us-west-2"


@pytest.fixture(scope="module")
def ec():
    client = localaws.client("elasticache")
    yield client
    cpc.cleanup(client, "v-")
    cpc.cleanup(localaws.client("elasticache", region_name=WEST), "v-")


def send(params: dict[str, str], region: str = "us-east-1") -> tuple[int, str]:
    """A query request signed with the learner's key (SigV4, as botocore signs), as (status, body)."""
    url = localaws.endpoint() + "/"
    body = urllib.parse.urlencode(params)
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(*localaws.credentials()), "elasticache", region).add_auth(req)
    http = urllib.request.Request(url, data=body.encode(), method="POST", headers=dict(req.headers))
    try:
        with urllib.request.urlopen(http, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def error_in(body: str) -> tuple[str, str]:
    """(Code, Message) of an AWS query-API error document."""
    root = ET.fromstring(body)
    ns = {"e": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    find = (lambda t: root.find(f".//e:{t}", ns)) if ns else (lambda t: root.find(f".//{t}"))
    return find("Code").text, find("Message").text


def error_of(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"].get("Message", ""), err["ResponseMetadata"]["HTTPStatusCode"]


def paged_operations() -> list[str]:
    return [op for op in MODEL.operation_names
            if MODEL.operation_model(op).input_shape is not None
            and "MaxRecords" in MODEL.operation_model(op).input_shape.members]


# --- values of the wrong type: 400 InvalidParameterValue, never an HTTP 500 -----------------------------------

@pytest.mark.parametrize("value", ["abc", "1e3", "20.0", "", "0x14"])
def test_max_records_that_is_no_integer_is_invalid_parameter_value(ec, value):
    """MaxRecords is an Integer (API Reference, DescribeCacheClusters). A value that is not one is an "invalid
    or out-of-range value ... for the input parameter": InvalidParameterValue, HTTP 400 (Common Errors)."""
    status, body = send({"Action": "DescribeCacheClusters", "Version": VERSION, "MaxRecords": value})
    assert status == 400, body
    code, message = error_in(body)
    assert code == "InvalidParameterValue" and "MaxRecords" in message


def test_every_paged_action_refuses_max_records_out_of_range_and_malformed(ec):
    """Every action that takes MaxRecords: minimum 20, maximum 100; AWS's message for 1 is "Invalid value for
    max records. Must be between 20 and 100" (aws/aws-sdk-js-v3 issue 5727, DescribeServerlessCaches)."""
    required = {"DescribeCacheParameters": {"CacheParameterGroupName": "default.redis7"},
                "DescribeEngineDefaultParameters": {"CacheParameterGroupFamily": "redis7"}}
    ops = paged_operations()
    assert len(ops) > 10
    for op in ops:
        base = {"Action": op, "Version": VERSION, **required.get(op, {})}
        status, body = send({**base, "MaxRecords": "abc"})
        assert status == 400 and error_in(body)[0] == "InvalidParameterValue", (op, status, body[:300])
        status, body = send({**base, "MaxRecords": "5"})
        assert status == 400, (op, body[:300])
        code, message = error_in(body)
        if code == "InvalidAction":  # an action the local endpoint does not implement (docs/local-vs-aws.md)
            continue
        assert code == "InvalidParameterValue" and "20 and 100" in message, (op, body[:300])


def test_boto3_without_client_validation_gets_aws_errors_for_bad_types(ec):
    """botocore checks types on the client; with parameter_validation off it sends what it is given, as
    another SDK or a hand-made request would (a boolean it always writes as true/false, a timestamp it parses itself)."""
    raw = localaws.client("elasticache", config=Config(parameter_validation=False))
    for call, kwargs, name in ((raw.describe_cache_clusters, {"MaxRecords": "lots"}, "MaxRecords"),
                               (raw.describe_events, {"Duration": "1.5"}, "Duration")):
        code, message, status = error_of(call, **kwargs)
        assert (code, status) == ("InvalidParameterValue", 400) and name in message, (kwargs, message)
    # a well-typed request still works, and true/false are read as such
    assert raw.describe_cache_clusters(MaxRecords=20, ShowCacheNodeInfo=True)["CacheClusters"] is not None


def test_no_malformed_number_or_boolean_gets_http_500_in_any_action(ec):
    """Every action, every Integer/Boolean/Timestamp parameter of its input, sent malformed: a 4xx each time."""
    bad = {"integer": "x1", "long": "1.5", "boolean": "yes", "timestamp": "not-a-date", "double": "1,5"}
    for op in MODEL.operation_names:
        shape = MODEL.operation_model(op).input_shape
        if shape is None:
            continue
        for name, member in shape.members.items():
            if member.type_name in bad:
                status, body = send({"Action": op, "Version": VERSION, name: bad[member.type_name]})
                assert status == 400, (op, name, status, body[:200])
                assert error_in(body)[0] in ("InvalidParameterValue", "InvalidAction"), (op, name, body[:200])


# --- Action and Version ---------------------------------------------------------------------------------------

def test_a_request_without_action_is_missing_action(ec):
    """Common Errors: MissingAction, "The request is missing an action or a required parameter", HTTP 400."""
    status, body = send({"Version": VERSION})
    assert status == 400 and body
    assert error_in(body)[0] == "MissingAction"


def test_another_api_version_is_refused(ec):
    """ElastiCache's only API version is 2015-02-02; for another, AWS's query APIs find no such operation:
    InvalidAction ("Could not find operation DescribeCacheClusters for version 2010-01-01"), HTTP 400."""
    status, body = send({"Action": "DescribeCacheClusters", "Version": "2010-01-01"})
    assert status == 400
    code, message = error_in(body)
    assert code == "InvalidAction" and "2010-01-01" in message
    assert send({"Action": "DescribeCacheClusters", "Version": VERSION})[0] == 200


# --- tags -----------------------------------------------------------------------------------------------------

def tags(n: int, key_len: int = 8, value: str = "v") -> list[dict[str, str]]:
    return [{"Key": f"k{i:0{key_len - 1}d}", "Value": value} for i in range(n)]


def test_tag_limits_on_create_refuse_before_anything_is_made(ec):
    """AWS: at most 50 tags a resource (TagQuotaPerResourceExceeded), keys of at most 128 characters, values of
    at most 256, no aws: prefix (InvalidParameterValue). A refused create makes nothing."""
    for bad, code in ((tags(51), "TagQuotaPerResourceExceeded"),
                      (tags(1, key_len=129), "InvalidParameterValue"),
                      ([{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
                      ([{"Key": "aws:owner", "Value": "me"}], "InvalidParameterValue")):
        got, _, status = error_of(ec.create_cache_cluster, CacheClusterId="v-tagged", Engine="redis",
                                  CacheNodeType="cache.t4g.micro", NumCacheNodes=1, Tags=bad)
        assert (got, status) == (code, 400), bad[0]
        assert error_of(ec.describe_cache_clusters, CacheClusterId="v-tagged")[0] == "CacheClusterNotFound"
    got, _, _ = error_of(ec.create_cache_parameter_group, CacheParameterGroupName="v-tagged-pg",
                         CacheParameterGroupFamily="redis7", Description="tags", Tags=tags(51))
    assert got == "TagQuotaPerResourceExceeded"
    assert error_of(ec.describe_cache_parameter_groups,
                    CacheParameterGroupName="v-tagged-pg")[0] == "CacheParameterGroupNotFound"


def test_add_tags_counts_the_resource_tags_and_refuses_other_accounts(ec):
    """add-tags-to-resource.rst: tags added by the resource's ARN, answered with the whole TagList. The 50 count
    what the resource has plus what is added; an ARN of another account refers to no resource here
    (InvalidARN: "The requested Amazon Resource Name (ARN) does not refer to an existing resource")."""
    pg = ec.create_cache_parameter_group(CacheParameterGroupName="v-tags", CacheParameterGroupFamily="redis7",
                                         Description="tags", Tags=tags(30))["CacheParameterGroup"]
    arn = pg["ARN"]
    assert len(ec.add_tags_to_resource(ResourceName=arn, Tags=tags(20))["TagList"]) == 30  # same keys: replaced
    more = [{"Key": f"m{i}", "Value": "v"} for i in range(21)]
    code, _, status = error_of(ec.add_tags_to_resource, ResourceName=arn, Tags=more)
    assert (code, status) == ("TagQuotaPerResourceExceeded", 400)
    assert len(ec.list_tags_for_resource(ResourceName=arn)["TagList"]) == 30  # nothing of the refused call kept
    assert len(ec.add_tags_to_resource(ResourceName=arn, Tags=more[:20])["TagList"]) == 50
    for bad in (tags(1, key_len=129), [{"Key": "AWS:x", "Value": "1"}], [{"Key": "k", "Value": "v" * 257}]):
        assert error_of(ec.add_tags_to_resource, ResourceName=arn, Tags=bad)[0] == "InvalidParameterValue"
    account = arn.split(":")[4]
    other = arn.replace(f":{account}:", ":999999999999:")
    code, _, status = error_of(ec.add_tags_to_resource, ResourceName=other, Tags=[{"Key": "x", "Value": "y"}])
    assert (code, status) == ("InvalidARN", 400)
    assert error_of(ec.list_tags_for_resource, ResourceName=other)[0] == "InvalidARN"
    assert "x" not in {t["Key"] for t in ec.list_tags_for_resource(ResourceName=arn)["TagList"]}
    ec.delete_cache_parameter_group(CacheParameterGroupName="v-tags")


# --- engine versions ------------------------------------------------------------------------------------------

def test_an_engine_version_not_offered_is_named_as_asked(ec):
    """AWS: InvalidParameterCombination "Cannot find version 4.0.13 for redis" (the version as the request gave
    it; seen in ministryofjustice/cloud-platform-environments pull 5753)."""
    code, message, status = error_of(ec.create_replication_group, ReplicationGroupId="v-old",
                                     ReplicationGroupDescription="old", Engine="redis", EngineVersion="5.0.6",
                                     CacheNodeType="cache.t4g.micro")
    assert (code, status) == ("InvalidParameterCombination", 400)
    assert message == "Cannot find version 5.0.6 for redis"


# --- a group in another region: its members, zones, ARNs and maintenance window ---------------------------------

WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):(\d\d):(\d\d)-(mon|tue|wed|thu|fri|sat|sun):(\d\d):(\d\d)$")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def minutes(window: str) -> int:
    d1, h1, m1, d2, h2, m2 = WINDOW.match(window).groups()
    start = datetime(2024, 1, 1 + DAYS.index(d1), int(h1), int(m1))
    end = datetime(2024, 1, 1 + DAYS.index(d2), int(h2), int(m2))
    return int((end - start if end > start else end + timedelta(days=7) - start).total_seconds() // 60)


def test_create_replication_group_answers_as_the_cli_example_in_the_client_region(ec):
    """create-replication-group.rst: the create answer lists the member clusters it will make at once
    ("MemberClusters": ["mygroup-001"], "Status": "creating"). describe-cache-clusters.rst: a cluster of a
    us-west-2 group is in "PreferredAvailabilityZone": "us-west-2a" with an ARN of us-west-2, and its default
    "PreferredMaintenanceWindow" is 60 minutes ("mon:17:30-mon:18:30")."""
    west = localaws.client("elasticache", region_name=WEST)
    g = west.create_replication_group(ReplicationGroupId="v-west", ReplicationGroupDescription="my group",
                                      Engine="redis", CacheNodeType="cache.t4g.micro",
                                      NumCacheClusters=2)["ReplicationGroup"]
    assert g["Status"] == "creating"
    assert g["MemberClusters"] == ["v-west-001", "v-west-002"]
    assert g["ARN"].startswith(f"arn:aws:elasticache:{WEST}:")
    cpc.wait_for(west, replication_group_id="v-west")
    members = west.describe_cache_clusters(ShowCacheNodeInfo=True)["CacheClusters"]
    mine = [c for c in members if c.get("ReplicationGroupId") == "v-west"]
    assert sorted(c["CacheClusterId"] for c in mine) == ["v-west-001", "v-west-002"]
    for c in mine:
        assert c["PreferredAvailabilityZone"].startswith(WEST), c["PreferredAvailabilityZone"]
        assert c["CacheNodes"][0]["CustomerAvailabilityZone"].startswith(WEST)
        assert c["ARN"] == f"arn:aws:elasticache:{WEST}:{g['ARN'].split(':')[4]}:cluster:{c['CacheClusterId']}"
        assert minutes(c["PreferredMaintenanceWindow"]) == 60, c["PreferredMaintenanceWindow"]
        # the member's ARN is the one tags are read by, in its region
        assert west.list_tags_for_resource(ResourceName=c["ARN"])["TagList"] == []
    described = west.describe_replication_groups(ReplicationGroupId="v-west")["ReplicationGroups"][0]
    zones = {m["PreferredAvailabilityZone"] for ng in described["NodeGroups"] for m in ng["NodeGroupMembers"]}
    assert zones and all(z.startswith(WEST) for z in zones)
    west.delete_replication_group(ReplicationGroupId="v-west")


def test_default_maintenance_window_is_sixty_minutes(ec):
    """create-cache-cluster.rst shows "PreferredMaintenanceWindow": "sat:13:00-sat:14:00": 60 minutes."""
    cc = ec.create_cache_cluster(CacheClusterId="v-window", Engine="memcached", CacheNodeType="cache.t4g.micro",
                                 NumCacheNodes=1)["CacheCluster"]
    assert minutes(cc["PreferredMaintenanceWindow"]) == 60
    assert cc["PreferredAvailabilityZone"].startswith("us-east-1")
    cpc.wait_for(ec, cache_cluster_id="v-window")
    ec.delete_cache_cluster(CacheClusterId="v-window")


def test_cluster_enabled_cannot_change_on_a_parameter_group_in_use(ec):
    """AWS refuses to switch cluster mode through a parameter group that a cache uses."""
    ec.create_cache_parameter_group(CacheParameterGroupName="v-inuse", CacheParameterGroupFamily="redis7",
                                    Description="in use")
    try:
        ec.modify_cache_parameter_group(CacheParameterGroupName="v-inuse", ParameterNameValues=[
            {"ParameterName": "cluster-enabled", "ParameterValue": "no"}])  # nobody uses it yet: allowed
        ec.create_cache_cluster(CacheClusterId="v-inuse", Engine="redis", CacheNodeType="cache.t3.micro",
                                NumCacheNodes=1, CacheParameterGroupName="v-inuse")
        cpc.wait_for(ec, cache_cluster_id="v-inuse")
        with pytest.raises(ClientError) as info:
            ec.modify_cache_parameter_group(CacheParameterGroupName="v-inuse", ParameterNameValues=[
                {"ParameterName": "cluster-enabled", "ParameterValue": "yes"}])
        assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert "in use" in info.value.response["Error"]["Message"]
    finally:
        ec.delete_cache_cluster(CacheClusterId="v-inuse")
        cpc.wait_deleted(ec, cache_cluster_id="v-inuse")
        ec.delete_cache_parameter_group(CacheParameterGroupName="v-inuse")
