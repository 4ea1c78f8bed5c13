"""helpers.measure.metrics and helpers.measure.dashboard against real engines and the local CloudWatch."""

from __future__ import annotations

import datetime as dt
import os
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


# --- one definition: lab 12's Sampler and the control plane's publisher give the same values -----------

KINDS_TABLE = {"get": {"flags": ["readonly", "fast"]}, "mget": {"flags": ["readonly", "fast"]},
               "set": {"flags": ["write", "denyoom"]}, "ping": {"flags": ["fast"]}}


def redis_info(t: int, **overrides):
    """A primary's INFO after t seconds of a known workload (the fields the metrics read)."""
    info = {"run_id": "a" * 40, "role": "master", "connected_slaves": 1, "connected_clients": 7 + t // 10,
            "used_memory": 4_000_000 + 1000 * t, "maxmemory": 8_000_000,
            "keyspace_hits": 30 * t, "keyspace_misses": 10 * t, "evicted_keys": 2 * t, "expired_keys": t,
            "total_connections_received": 100 + t, "total_net_input_bytes": 5000 * t,
            "total_net_output_bytes": 9000 * t, "master_repl_offset": 700 * t,
            # the whole process (with background and I/O threads) vs the engine's main thread
            "used_cpu_user": 0.5 * t, "used_cpu_sys": 0.1 * t,
            "used_cpu_user_main_thread": 0.06 * t, "used_cpu_sys_main_thread": 0.04 * t,
            "cmdstat_get": {"calls": 35 * t}, "cmdstat_mget": {"calls": 5 * t}, "cmdstat_set": {"calls": 12 * t},
            "cmdstat_ping": {"calls": 99 * t},
            "db0": {"keys": 50 + t, "expires": 5}, "db3": {"keys": 10, "expires": 1}}
    return {**info, **overrides}


class FakeRedis:
    """A client whose INFO answers are given in advance (what the lab's Sampler reads)."""

    def __init__(self, infos):
        self.infos = list(infos)

    def info(self, section=None):
        return self.infos.pop(0)

    def command(self):
        return KINDS_TABLE


class FakeClock:
    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def both_paths(engine, readings, times, key):
    """(lab 12's Sampler samples, the publisher's datapoints) for the same readings at the same times."""
    from helpers.aws.controlplane import metrics as cpm

    if engine == "redis":
        client = FakeRedis(readings)
        kinds = m.command_kinds(client)
    else:
        client, kinds = FakeMemcached(readings), None
    sampler = m.Sampler(client, engine=engine, clock=FakeClock(*times))
    lab = [sampler.sample() for _ in readings[1:]]
    cpm.forget(key)
    published = [cpm.observe(key, engine, reading, t, kinds) for reading, t in zip(readings, times, strict=True)]
    cpm.forget(key)
    return lab, published


def test_one_definition_for_lab_and_publisher():
    infos = [redis_info(0), redis_info(10), redis_info(20, keyspace_hits=30 * 20 + 5, keyspace_misses=100 + 305)]
    lab, published = both_paths("redis", infos, [100.0, 110.0, 120.0], ("t-one-definition", "0001"))
    gauges = {k for k, x in m.REDIS.items() if x.kind == m.GAUGE}
    # the first reading: gauges only (a counter's first value is a total since start, not a period)
    assert set(published[0]) <= gauges and published[0]["CurrItems"] == 50 + 10
    for period, (sample, datapoints) in enumerate(zip(lab, published[1:], strict=True)):
        assert datapoints == m.published(sample, "redis") == sample   # every Redis metric is an AWS one
        assert sample == m.redis_metrics(infos[period + 1], infos[period], 10.0, m.command_kinds(FakeRedis([])))
    first, second = lab
    assert first["CacheHits"] == 300 and first["CacheMisses"] == 100 and first["CacheHitRate"] == 75.0
    assert second["CacheHitRate"] == 50.0          # 305 hits, 305 misses: the period's rate, not since start
    # the engine's main thread, user + system: (0.6 + 0.4) s in 10 s (user only would say 6%, the process 60%)
    assert first["EngineCPUUtilization"] == pytest.approx(10.0)
    assert first["GetTypeCmds"] == 400 and first["SetTypeCmds"] == 120
    assert first["DatabaseMemoryUsagePercentage"] == pytest.approx(100 * 4_010_000 / 8_000_000)
    assert first["Evictions"] == 20 and first["Reclaimed"] == 10 and first["NewConnections"] == 10
    assert first["ReplicationBytes"] == 7000 and first["IsMaster"] == 1.0 and first["CurrVolatileItems"] == 6
    assert "ReplicationLag" not in first           # published by replicas only
    assert {m.UNITS[k] for k in ("CacheHitRate", "EngineCPUUtilization")} == {"Percent"}


def test_broken_replication_link_same_in_both_paths():
    replica = {"run_id": "b" * 40, "role": "slave", "connected_clients": 2, "used_memory": 10, "maxmemory": 100,
               "uptime_in_seconds": 40}
    up = {**replica, "master_link_status": "up", "master_last_io_seconds_ago": 1}
    broken = {**replica, "master_link_status": "down", "master_last_io_seconds_ago": -1,
              "master_link_down_since_seconds": 7}
    later = {**broken, "master_link_down_since_seconds": 17, "uptime_in_seconds": 50}
    never = {**replica, "master_link_status": "down", "master_last_io_seconds_ago": -1,
             "master_link_down_since_seconds": -1}
    lab, published = both_paths("redis", [up, broken, later, never], [0.0, 10.0, 20.0, 30.0], ("t-lag", "0002"))
    assert published[0]["ReplicationLag"] == 1.0 and published[0]["IsMaster"] == 0.0
    assert [s["ReplicationLag"] for s in lab] == [p["ReplicationLag"] for p in published[1:]] == [7.0, 17.0, 40.0]
    assert m.replication_lag(up) == 1.0 and m.replication_lag(broken) == 7.0   # never -1, never stale
    assert m.replication_lag(never) == 40.0                                      # never in sync: since it started


class FakeMemcached:
    def __init__(self, stats):
        self.stats_list = list(stats)

    def stats(self):
        return self.stats_list.pop(0)


def memcached_stats(t: int, **overrides):
    stats = {b"pid": 42, b"uptime": 100 + t, b"get_hits": 20 * t, b"get_misses": 5 * t, b"cmd_get": 25 * t,
             b"cmd_set": 8 * t, b"evictions": 0, b"reclaimed": t, b"curr_connections": 3,
             b"total_connections": 10 + t, b"curr_items": 30, b"total_items": 8 * t, b"bytes": 6000,
             b"limit_maxbytes": 64 * 2**20, b"bytes_read": 900 * t, b"bytes_written": 1200 * t,
             b"rusage_user": 0.01 * t, b"rusage_system": 0.02 * t}
    return {**stats, **overrides}


def test_memcached_one_definition_and_what_aws_publishes():
    stats = [memcached_stats(0), memcached_stats(10)]
    lab, published = both_paths("memcached", stats, [0.0, 10.0], ("t-mc-definition", "0001"))
    sample = lab[0]
    assert sample["GetHits"] == 200 and sample["CacheHitRate"] == 80.0 and sample["NewItems"] == 80
    assert sample["CPUUtilization"] == pytest.approx(3.0 / (os.cpu_count() or 1)) and sample["UnusedMemory"] == 64 * 2**20 - 6000
    # ElastiCache publishes no CacheHitRate nor DatabaseMemoryUsagePercentage for Memcached nodes
    assert published[1] == m.published(sample, "memcached")
    assert set(sample) - set(published[1]) == {"CacheHitRate", "DatabaseMemoryUsagePercentage"}


def test_counter_reset_and_restart():
    readings = m.Readings("redis")
    readings.add(redis_info(10), 0.0)
    after_reset = readings.add(redis_info(10, keyspace_hits=4, keyspace_misses=0), 10.0)   # CONFIG RESETSTAT
    assert after_reset["CacheHits"] == 4 and after_reset["CacheHitRate"] == 100.0
    restarted = readings.add(redis_info(1, run_id="c" * 40), 20.0)                        # another process
    assert "CacheHits" not in restarted and "EngineCPUUtilization" not in restarted and "CurrItems" in restarted
    assert "used_cpu_user_main_thread" in redis_info(0)
    old_engine = {k: v for k, v in redis_info(10).items() if not k.endswith("_main_thread")}
    assert m.redis_metrics(old_engine, redis_info(0), 10.0)["EngineCPUUtilization"] == pytest.approx(60.0)
    assert "main thread" in m.describe("EngineCPUUtilization") and "link down" in m.describe("ReplicationLag").lower()
    with pytest.raises(LabError):
        m.describe("FreeableMemory")


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


def test_real_broken_link_grows_in_both_paths():
    from helpers.aws.controlplane import metrics as cpm
    from helpers.runtime import services

    lonely = start("redis", name="test-metrics-lonely")
    replica_svc = start("redis", name="test-metrics-orphan", config={"replicaof": f"127.0.0.1 {lonely.port}"})
    replica = replica_svc.client()
    deadline = time.monotonic() + 15
    while replica.info("replication")["master_link_status"] != "up" and time.monotonic() < deadline:
        time.sleep(0.1)
    key = ("t-orphan", "0001")
    cpm.forget(key)
    try:
        assert cpm.observe(key, "redis", replica.info("everything"), time.monotonic())["ReplicationLag"] >= 0
        services.stop("test-metrics-lonely")      # the primary dies: the link breaks
        time.sleep(2.2)
        info = replica.info("everything")
        assert info["master_link_status"] == "down" and info["master_last_io_seconds_ago"] == -1
        lab_lag = m.redis_metrics(info)["ReplicationLag"]
        assert lab_lag == cpm.observe(key, "redis", info, time.monotonic())["ReplicationLag"] >= 2
    finally:
        cpm.forget(key)
        services.stop("test-metrics-orphan")


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
