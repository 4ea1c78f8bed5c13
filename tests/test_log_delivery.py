"""Log delivery: a replication group's slow log and engine log, read back from the local CloudWatch Logs
with boto3's logs client, in the formats AWS documents.

AWS's pages "Log delivery" and "ElastiCache logging destinations" (read 2026-12-07): a slow log entry has
CacheClusterId, CacheNodeId, Id, Timestamp, Duration, Command (the key and value replaced by "(2 more
arguments)"), ClientAddress and ClientName; JSON keys as in its example ("Duration (us)"), TEXT comma-
separated; an engine log entry has CacheClusterId, CacheNodeId, LogLevel, Time ("DD MMM YYYY hh:mm:ss.ms
UTC"), Role (M/S/C/X) and Message; one log stream per node: elasticache/<engine>/<cluster>/<node>/<log type>.
"""

from __future__ import annotations

import json
import re
import time

from support import elasticache_fixture, error_of

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws

ec = elasticache_fixture("ld-")
GROUP, LOG_GROUP = "ld-rg", "ld-logs"
SLOW_KEYS = {"CacheClusterId", "CacheNodeId", "Id", "Timestamp", "Duration (us)", "Command", "ClientAddress",
             "ClientName"}


def cloudwatch(log_type: str, fmt: str, enabled: bool = True) -> dict:
    if not enabled:
        return {"LogType": log_type, "Enabled": False}
    return {"LogType": log_type, "DestinationType": "cloudwatch-logs", "LogFormat": fmt, "Enabled": True,
            "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": LOG_GROUP}}}


def messages(logs, stream: str) -> list[str]:
    try:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events]


def wait_message(logs, stream: str, match, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in messages(logs, stream) if match(m)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"nothing matching in {stream}: {messages(logs, stream)[-5:]}"
        time.sleep(0.2)


def statuses(ec) -> dict[str, str]:
    g = ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]
    return {c["LogType"]: c["Status"] for c in g["LogDeliveryConfigurations"]}


def test_slow_log_and_engine_log_reach_cloudwatch_logs(ec):
    logs = localaws.client("logs")
    ec.create_cache_parameter_group(CacheParameterGroupName="ld-every-command", Description="log every command",
                                    CacheParameterGroupFamily="valkey9")
    ec.modify_cache_parameter_group(CacheParameterGroupName="ld-every-command", ParameterNameValues=[
        {"ParameterName": "slowlog-log-slower-than", "ParameterValue": "0"}])  # 0: every command is "slow"
    out = ec.create_replication_group(
        ReplicationGroupId=GROUP, ReplicationGroupDescription="log delivery", Engine="valkey",
        CacheNodeType="cache.t4g.micro", NumCacheClusters=1, CacheParameterGroupName="ld-every-command",
        LogDeliveryConfigurations=[cloudwatch("slow-log", "json")])["ReplicationGroup"]
    assert [(c["LogType"], c["Status"]) for c in out["LogDeliveryConfigurations"]] == [("slow-log", "enabling")]
    g = cpc.wait_for(ec, replication_group_id=GROUP)
    [conf] = g["LogDeliveryConfigurations"]
    assert conf == {**{k: v for k, v in cloudwatch("slow-log", "json").items() if k != "Enabled"}, "Status": "active"}
    member = g["MemberClusters"][0]
    slow_stream = f"elasticache/valkey/{member}/0001/slow-log"

    r = cpc.redis_at(g["NodeGroups"][0]["PrimaryEndpoint"], client_name="ld-app")
    r.set("ld-secret-key", "ld-secret-value")
    entry = wait_message(logs, slow_stream, lambda m: json.loads(m)["Command"].startswith("SET"))
    assert "ld-secret" not in entry  # the key and the value are hidden
    fields = json.loads(entry)
    assert set(fields) == SLOW_KEYS
    assert (fields["CacheClusterId"], fields["CacheNodeId"], fields["Command"], fields["ClientName"]) == \
        (member, "0001", "SET ... (2 more arguments)", "ld-app")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", fields["ClientAddress"]) and abs(fields["Timestamp"] - time.time()) < 300
    assert isinstance(fields["Id"], int) and isinstance(fields["Duration (us)"], int)

    # The engine log, in TEXT, added by a modify (ApplyImmediately is required for log delivery changes).
    code, _, status = error_of(ec.modify_replication_group, ReplicationGroupId=GROUP,
                               LogDeliveryConfigurations=[cloudwatch("engine-log", "text")])
    assert (code, status) == ("InvalidParameterCombination", 400)
    out = ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True,
                                      LogDeliveryConfigurations=[cloudwatch("engine-log", "text")])["ReplicationGroup"]
    assert {c["LogType"]: c["Status"] for c in out["LogDeliveryConfigurations"]}["engine-log"] in ("enabling", "active")
    cpc.wait_for(ec, replication_group_id=GROUP)
    assert statuses(ec) == {"slow-log": "active", "engine-log": "active"}
    r.bgsave()  # the engine logs "Background saving started by pid ..."
    engine_stream = f"elasticache/valkey/{member}/0001/engine-log"
    line = wait_message(logs, engine_stream, lambda m: "Background saving started" in m)
    assert re.fullmatch(rf"{member},0001,NOTICE,\d\d \w{{3}} \d{{4}} \d\d:\d\d:\d\d\.\d{{3}} UTC,M,"
                        r"Background saving started by pid \d+", line), line

    # Disabling stops delivery: disabling, then gone; a command after it is not shipped.
    out = ec.modify_replication_group(ReplicationGroupId=GROUP, ApplyImmediately=True,
                                      LogDeliveryConfigurations=[cloudwatch("slow-log", "json", enabled=False)])
    assert {c["LogType"]: c["Status"] for c in out["ReplicationGroup"]["LogDeliveryConfigurations"]}.get(
        "slow-log") in ("disabling", None)
    cpc.wait_for(ec, replication_group_id=GROUP)
    assert statuses(ec) == {"engine-log": "active"}
    shipped = len(messages(logs, slow_stream))
    r.set("ld-after", "x")
    r.bgsave(schedule=True)  # a second "Background saving started": shipped means the shipper ran since the SET
    deadline = time.monotonic() + 30
    while sum("Background saving started" in m for m in messages(logs, engine_stream)) < 2:
        assert time.monotonic() < deadline, messages(logs, engine_stream)[-5:]
        time.sleep(0.2)
    assert len(messages(logs, slow_stream)) == shipped


def test_kinesis_firehose_is_refused_with_the_reason(ec):
    firehose = {"LogType": "slow-log", "DestinationType": "kinesis-firehose", "LogFormat": "json",
                "DestinationDetails": {"KinesisFirehoseDetails": {"DeliveryStream": "s"}}, "Enabled": True}
    code, msg, status = error_of(ec.create_replication_group, ReplicationGroupId="ld-fh",
                                 ReplicationGroupDescription="d", Engine="valkey", CacheNodeType="cache.t4g.micro",
                                 NumCacheClusters=1, LogDeliveryConfigurations=[firehose])
    assert (code, status) == ("InvalidParameterValue", 400) and "Firehose" in msg
    assert not [g for g in ec.describe_replication_groups()["ReplicationGroups"] if g["ReplicationGroupId"] == "ld-fh"]
