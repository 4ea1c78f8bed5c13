"""helpers.measure.metrics and helpers.measure.dashboard against real engines and the local CloudWatch."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from helpers.measure import metrics as m
from helpers.runtime.services import start
from helpers.runtime.state import LabError

CONFIG = {"maxmemory": "8mb", "maxmemory-policy": "allkeys-lfu"}


def primary():
    return start("redis", name="test-metrics", config=dict(CONFIG))


@pytest.fixture(scope="module")
def r():
    client = primary().client()
    client.flushall()
    return client


def test_redis_metrics_from_info_deltas(r):
    sampler = m.Sampler(r)
    m.lookups(r, "t:", hits=300, misses=100, keys=100)
    r.eval("local x = 0 for i = 1, 500000 do x = x + i end return x", 0)
    s = sampler.sample()
    assert s["CacheHits"] == 300 and s["CacheMisses"] == 100 and s["CacheHitRate"] == 75.0
    assert s["SetTypeCmds"] >= 100 and s["GetTypeCmds"] >= 400
    assert s["CurrItems"] == r.dbsize()
    assert s["EngineCPUUtilization"] > 0
    assert 0 < s["DatabaseMemoryUsagePercentage"] < 100 and s["BytesUsedForCache"] > 0
    assert s["NetworkBytesIn"] > 0 and s["NetworkBytesOut"] > 0


def test_zero_lookups_and_totals():
    assert m.redis_metrics({"keyspace_hits": 0, "keyspace_misses": 0})["CacheHitRate"] == 0.0
    info = {"keyspace_hits": 9, "keyspace_misses": 1, "maxmemory": 0, "used_memory": 10,
            "db0": {"keys": 3, "expires": 0}, "db2": {"keys": 4, "expires": 1}}
    out = m.redis_metrics(info)
    assert out["CacheHitRate"] == 90.0 and out["CurrItems"] == 7
    assert "DatabaseMemoryUsagePercentage" not in out  # no maxmemory: no percentage


def test_replication_lag_views():
    assert m.replication_lag({"role": "master"}) is None
    assert m.replication_lag({"role": "slave", "master_link_status": "up", "master_last_io_seconds_ago": 2}) == 2.0
    assert m.replication_lag({"role": "slave", "master_link_status": "down",
                              "master_link_down_since_seconds": 7}) == 7.0
    lag = m.replica_offset_lag({"master_repl_offset": 500,
                                "slave0": {"ip": "127.0.0.1", "port": 1, "offset": 200, "lag": 3}})
    assert lag == {"127.0.0.1:1": {"bytes_behind": 300, "seconds_since_ack": 3}}


def test_replica_lag_measured_on_a_real_replica(r):
    replica_svc = start("redis", name="test-metrics-replica", config={"replicaof": f"127.0.0.1 {primary().port}"})
    replica = replica_svc.client()
    deadline = time.monotonic() + 15
    while replica.info("replication")["master_link_status"] != "up" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert m.redis_metrics(replica.info("everything"))["ReplicationLag"] >= 0
    replica_svc.pause()
    try:
        r.set("lag:test", "x" * 1000)
        time.sleep(1.3)
        behind = m.replica_offset_lag(r.info("replication"))
    finally:
        replica_svc.resume()
    assert max(v["bytes_behind"] for v in behind.values()) > 0


def test_memcached_metrics():
    mc = start("memcached", name="test-metrics-mc").client()
    sampler = m.Sampler(mc, engine="memcached")
    mc.set("a", b"1")
    mc.get("a")
    mc.get("missing")
    s = sampler.sample()
    assert s["GetHits"] == 1 and s["GetMisses"] == 1 and s["CacheHitRate"] == 50.0 and s["CmdSet"] == 1
    with pytest.raises(LabError):
        m.Sampler(mc, engine="mongodb")


def test_publish_alarm_and_notification():
    from helpers import aws_client

    cw, sns, sqs = aws_client("cloudwatch"), aws_client("sns"), aws_client("sqs")
    cluster = f"test-{time.time_ns()}"
    topic = sns.create_topic(Name="test-metrics-topic")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"test-metrics-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    name = f"{cluster}-alarm"
    cw.put_metric_alarm(AlarmName=name, Namespace=m.NAMESPACE, MetricName="CacheHitRate",
                        Dimensions=m.dimensions(cluster), Statistic="Average", Period=10, EvaluationPeriods=1,
                        Threshold=80.0, ComparisonOperator="LessThanThreshold", AlarmActions=[topic])
    assert m.evaluate_alarm(cw, name, sns=sns).state == "INSUFFICIENT_DATA"
    assert m.publish(cw, cluster, {"CacheHitRate": 95.0, "CacheHits": 10}) == 2
    assert m.evaluate_alarm(cw, name, sns=sns).state == "OK"
    m.publish(cw, cluster, {"CacheHitRate": 5.0})
    result = m.evaluate_alarm(cw, name, sns=sns)
    assert result.state == "ALARM" and result.values == [50.0] and result.notified == [topic]
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM"
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
    assert any(name in msg["Body"] for msg in msgs)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert m.evaluate_alarm(cw, name, now=later).state == "INSUFFICIENT_DATA"  # no data in that window
    assert m.statistics(cw, cluster, "CacheHits", stat="Maximum")[-1][1] == 10.0
    with pytest.raises(LabError, match="No alarm"):
        m.evaluate_alarm(cw, "no-such-alarm")


def test_slowlog_latency_big_and_hot_keys(r):
    r.flushdb()
    r.config_set("slowlog-log-slower-than", 10_000)
    r.config_set("latency-monitor-threshold", 20)
    r.slowlog_reset()
    r.execute_command("LATENCY", "RESET")
    r.execute_command("DEBUG", "SLEEP", "0.05")
    assert any("DEBUG" in e["command"].upper() for e in m.slowlog_entries(r))
    assert m.latency_latest(r)["command"]["max_ms"] >= 50
    assert m.latency_history(r, "command")
    r.hset("big", mapping={f"f{i}": "x" * 20 for i in range(2000)})
    for i in range(50):
        r.set(f"small{i}", "v")
    for _ in range(500):
        r.get("small7")
    assert m.big_keys(r, top=1)[0][0] == "big"
    assert m.hot_keys(r, top=1)[0][0] == "small7"
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(LabError, match="LFU"):
            m.hot_keys(r)
    finally:
        r.config_set("maxmemory-policy", "allkeys-lfu")
    out = m.redis_cli(primary(), "--bigkeys")
    assert out is None or "big" in out


def test_dashboard_refreshes_headless(r):
    from helpers import aws_client
    from helpers.measure.dashboard import MetricsDashboard

    dash = MetricsDashboard(m.Sampler(r), cw=aws_client("cloudwatch"), cluster_id="test-dash")
    dash.run(3, workload=lambda step: m.lookups(r, "d:", hits=10 * (step + 1), misses=10, keys=10))
    assert len(dash.history) == 3 and dash.series("CacheHitRate")[-1] == 75.0
    assert "refresh 3" in dash.status.value
