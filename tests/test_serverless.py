"""ElastiCache Serverless, locally: the API, the TLS endpoints, scaling behind one endpoint, metering and limits.

Every test talks to the local API with boto3 and to the cache with redis-py over TLS; the engines behind
the endpoint are real processes, checked by pid.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
from support import (
    alive,
    code_of,
    engine_pids,
    memory_kb,
    send_until_refused,
    status_of,
    tls_socket,
    until_closed,
)

import helpers
from helpers.aws import endpoint as localaws
from helpers.aws import serverless as sv


@pytest.fixture(scope="module")
def ec():
    helpers.start("aws")
    client = localaws.client("elasticache")
    yield client
    for c in client.describe_serverless_caches()["ServerlessCaches"]:
        if c["ServerlessCacheName"].startswith("t-") and c["Status"] == "available":
            client.delete_serverless_cache(ServerlessCacheName=c["ServerlessCacheName"])


def eventually(read, want, timeout: float = 5.0):
    """What `read()` returns once it equals `want` (replicas may lag a little), or its last value."""
    deadline = time.monotonic() + timeout
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = read()
    return got


def test_errors_follow_the_api_reference(ec):
    assert code_of(ec.describe_serverless_caches, ServerlessCacheName="t-none") == "ServerlessCacheNotFoundFault"
    assert code_of(ec.delete_serverless_cache, ServerlessCacheName="t-none") == "ServerlessCacheNotFoundFault"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="t-bad", Engine="valkey",
                   CacheUsageLimits={"ECPUPerSecond": {"Maximum": 10}}) == "InvalidParameterValue"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="t-bad", Engine="valkey",
                   CacheUsageLimits={"DataStorage": {"Maximum": 1, "Minimum": 2, "Unit": "GB"}}) \
        == "InvalidParameterCombination"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="t-bad", Engine="valkey",
                   UserGroupId="t-no-such-group") == "UserGroupNotFound"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="t-bad", Engine="memcache") \
        == "InvalidParameterValue"  # (memcached is served: tests/test_serverless_memcached.py)
    assert code_of(ec.describe_serverless_cache_snapshots, ServerlessCacheSnapshotName="t-none") \
        == "ServerlessCacheSnapshotNotFoundFault"
    assert ec.describe_serverless_caches()["ServerlessCaches"] == []


def test_serverless_cache_lifecycle_over_tls(ec):
    out = ec.create_serverless_cache(ServerlessCacheName="t-life", Engine="valkey", Description="lab",
                                     Tags=[{"Key": "team", "Value": "lab"}])["ServerlessCache"]
    assert out["Status"] == "creating" and "Endpoint" not in out
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="t-life", Engine="valkey") \
        == "ServerlessCacheAlreadyExistsFault"
    cache = sv.wait_serverless(ec, "t-life")
    ep, rd = cache["Endpoint"], cache["ReaderEndpoint"]
    assert rd["Address"] == ep["Address"] and rd["Port"] == ep["Port"] + 1
    r = sv.client(cache)
    assert r.set("greeting", "hello") and r.get("greeting") == b"hello"
    reader = sv.client(cache, reader=True)
    assert eventually(lambda: reader.get("greeting"), b"hello") == b"hello"
    # The reader endpoint reads each shard's replica: a real engine replicating the shard's primary.
    import redis

    from helpers.runtime import services

    password = (Path(services.get("aws-sl-t-life").nodes[0].workdir) / "password").read_text().strip()
    [shard] = status_of("t-life")["backends"]
    replica = redis.Redis(host="127.0.0.1", port=shard["replica_port"], password=password)
    assert replica.info("replication")["role"] == "slave" and shard["replica_pid"] != shard["pid"]
    gets = replica.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    assert reader.get("greeting") == b"hello"
    assert replica.info("commandstats")["cmdstat_get"]["calls"] == gets + 1
    # A plain TCP client without TLS gets nothing: TLS is always on.
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host=ep["Address"], port=ep["Port"], socket_timeout=2).ping()
    # To clients it is a cluster of one shard whose address is the endpoint.
    [[lo, hi, primary, replica]] = r.execute_command("CLUSTER", "SLOTS")
    assert (lo, hi) == (0, 16383) and primary[1] == ep["Port"] and replica[1] == rd["Port"]
    rc = sv.client(cache, cluster=True)
    assert rc.get("greeting") == b"hello"
    with pytest.raises(redis.exceptions.ResponseError, match="same slot"):  # redis-py drops the CROSSSLOT prefix
        r.mset({"a": 1, "b": 2})
    assert r.mset({"{u1}a": 1, "{u1}b": 2}) and r.mget("{u1}a", "{u1}b") == [b"1", b"2"]
    # RESP3 and the reader endpoint: reads served, writes redirected to the primary endpoint.
    r3 = sv.client(cache, protocol=3)
    assert r3.hset("h", mapping={"f": "v"}) == 1 and r3.hgetall("h") == {b"f": b"v"}
    with pytest.raises(redis.exceptions.ResponseError):
        sv.client(cache, reader=True).set("greeting", "no")
    tags = ec.list_tags_for_resource(ResourceName=cache["ARN"])["TagList"]
    assert {"Key": "team", "Value": "lab"} in tags
    # Snapshots: create, copy, restore into a new cache.
    snap = ec.create_serverless_cache_snapshot(ServerlessCacheSnapshotName="t-snap",
                                               ServerlessCacheName="t-life")["ServerlessCacheSnapshot"]
    assert snap["Status"] == "available" and snap["ServerlessCacheConfiguration"]["ServerlessCacheName"] == "t-life"
    ec.copy_serverless_cache_snapshot(SourceServerlessCacheSnapshotName="t-snap",
                                      TargetServerlessCacheSnapshotName="t-snap-copy")
    names = {s["ServerlessCacheSnapshotName"] for s in
             ec.describe_serverless_cache_snapshots(ServerlessCacheName="t-life")["ServerlessCacheSnapshots"]}
    assert {"t-snap", "t-snap-copy"} <= names
    pids = engine_pids("t-life")
    assert len(alive(pids)) == len(pids) >= 2
    ec.delete_serverless_cache(ServerlessCacheName="t-life")
    sv.wait_serverless_deleted(ec, "t-life")
    deadline = time.monotonic() + 15
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(pids) == [], "delete leaves no process"
    ec.create_serverless_cache(ServerlessCacheName="t-restored", Engine="valkey",
                               SnapshotArnsToRestore=[snap["ARN"]])
    restored = sv.wait_serverless(ec, "t-restored")
    assert sv.client(restored).get("greeting") == b"hello"
    ec.delete_serverless_cache(ServerlessCacheName="t-restored")
    ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="t-snap")
    ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="t-snap-copy")
    sv.wait_serverless_deleted(ec, "t-restored")


def test_it_grows_behind_the_same_endpoint_without_losing_a_key(ec):
    ec.create_serverless_cache(ServerlessCacheName="t-grow", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-grow")
    sv.local_timings("t-grow", scale_in_after=1)  # local only: a shard goes after 1 s of low load (10 s default)
    r = sv.client(cache)
    assert len(status_of("t-grow")["backends"]) == 1
    value = b"x" * 1024
    written = 0
    started = time.monotonic()
    # A bounded write load: 5,000 keys of 1 KB (about 5.5 MB: two or three local shards) or 60 s.
    while written < 5000 and time.monotonic() - started < 60:
        pipe = r.pipeline(transaction=False)
        for i in range(written, written + 500):
            pipe.set(f"k:{i}", value)
        pipe.execute()
        written += 500
    deadline = time.monotonic() + 60
    while len(status_of("t-grow")["backends"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    st = status_of("t-grow")
    assert len(st["backends"]) >= 2, st
    calm_since = time.monotonic()  # settled: no scaling for 2 s (one scale-out may follow another)
    while time.monotonic() - calm_since < 2 and time.monotonic() < deadline:
        time.sleep(0.25)
        st = status_of("t-grow")
        if st["scaling"]:
            calm_since = time.monotonic()
    # Every key is still there, read through the same endpoint by the same client.
    for i in range(0, written, 500):
        keys = [f"k:{j}" for j in range(i, min(i + 500, written))]
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        assert sum(pipe.execute()) == len(keys)
    assert r.dbsize() == written
    reader = sv.client(cache, reader=True)  # the replicas followed the keys' moves
    missing = []
    for i in range(0, written, 500):
        pipe = reader.pipeline(transaction=False)
        for j in range(i, min(i + 500, written)):
            pipe.exists(f"k:{j}")
        missing += [j for j, n in zip(range(i, written), pipe.execute(), strict=False) if not n]
    assert eventually(lambda: [j for j in missing if not reader.exists(f"k:{j}")], []) == []
    assert sum(b["keys"] for b in status_of("t-grow")["backends"]) <= written
    messages = [e["Message"] for e in ec.describe_events(SourceType="serverless-cache",
                                                         SourceIdentifier="t-grow")["Events"]]
    deadline = time.monotonic() + 10
    while not any("scaled out" in m for m in messages) and time.monotonic() < deadline:
        time.sleep(1)
        messages = [e["Message"] for e in ec.describe_events(SourceType="serverless-cache",
                                                             SourceIdentifier="t-grow")["Events"]]
    assert any("scaled out" in m for m in messages), messages
    # As AWS's events do, they name the cache (the lab's service behind it, aws-sl-t-grow, is not AWS's).
    assert all(m.startswith("Serverless cache t-grow ") for m in messages), messages
    # The load drops: it shrinks back (bounded wait), still without a client change.
    r.flushall()
    deadline = time.monotonic() + 60
    while len(status_of("t-grow")["backends"]) > 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(status_of("t-grow")["backends"]) == 1
    assert r.set("after", "1") and r.get("after") == b"1"
    pids = engine_pids("t-grow")
    ec.delete_serverless_cache(ServerlessCacheName="t-grow")
    sv.wait_serverless_deleted(ec, "t-grow")
    deadline = time.monotonic() + 15
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(pids) == []


def test_metering_and_the_ecpu_limit(ec):
    ec.create_serverless_cache(ServerlessCacheName="t-meter", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-meter")
    sv.local_timings("t-meter", metric_period=1)  # local only: its metrics every second (5 s default, 60 on AWS)
    r = sv.client(cache)
    before = status_of("t-meter")["ecpu"]
    since = datetime.now(timezone.utc)  # before the workload: a publication may fall between it and any later time
    # 200 SETs of 3 KB values: each transfers a little over 3 KB, so a little over 3 ECPUs.
    for i in range(200):
        r.set(f"m:{i}", b"v" * 3072)
    for i in range(200):
        r.get(f"m:{i}")
    used = status_of_after("t-meter", before)
    assert 400 * 3.0 <= used <= 400 * 3.3, used
    # The metering is published to the local CloudWatch under AWS's names.
    cw = localaws.client("cloudwatch")
    deadline = time.monotonic() + 30
    total = 0.0
    while time.monotonic() < deadline:
        total = sv.metric_sum(cw, "t-meter", "ElastiCacheProcessingUnits", since)
        if total >= 400 * 3.0 and sv.metric_sum(cw, "t-meter", "BytesUsedForCache", since, "Maximum") > 0:
            break
        time.sleep(1)
    assert total >= 400 * 3.0
    # ECPUPerSecond maximum: above it, commands wait for budget (throttled, counted) and the cap holds.
    ec.modify_serverless_cache(ServerlessCacheName="t-meter", CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1000}})
    described = ec.describe_serverless_caches(ServerlessCacheName="t-meter")["ServerlessCaches"][0]
    assert described["CacheUsageLimits"]["ECPUPerSecond"]["Maximum"] == 1000
    time.sleep(1.5)  # the endpoint reads its limits every half second
    import redis

    value = b"z" * 65536  # 64 KB: 64 ECPUs a SET, so 1,000 ECPU/s allows about 15 a second
    started = time.monotonic()
    done = 0
    while time.monotonic() - started < 3:
        try:
            r.set("big", value)
            done += 1
        except redis.exceptions.ResponseError as exc:
            assert "Throttled" in str(exc)
    elapsed = time.monotonic() - started
    rate = done * 64 / elapsed
    assert rate <= 1000 * 1.25 + 100 / elapsed, rate  # the cap holds (plus a 0.1 s burst)
    assert status_of_after("t-meter", 0, wait=1.0) > 0 and status_of("t-meter")["throttled"] > 0
    # One command far above the budget (1 MB = 1,024 ECPUs) leaves a debt: the next one is refused.
    time.sleep(1.5)
    r.set("huge", b"h" * (1 << 20))
    with pytest.raises(redis.exceptions.ResponseError, match="Throttled"):
        r.get("greeting")
    time.sleep(1.5)
    assert r.get("huge") is not None  # after the debt is paid back, commands pass again
    ec.delete_serverless_cache(ServerlessCacheName="t-meter")
    sv.wait_serverless_deleted(ec, "t-meter")


def status_of_after(name: str, before: float, wait: float = 3.0) -> float:
    """ECPUs the endpoint counted since `before` (its status file is rewritten every half second)."""
    time.sleep(wait)
    return status_of(name)["ecpu"] - before


def test_pub_sub_through_the_endpoint_as_aws_lists_it(ec):
    """SUBSCRIBE/SSUBSCRIBE/PUBLISH/SPUBLISH and PUBSUB's channel subcommands work (RESP2 and RESP3), through the
    real engines behind the endpoint, also across a scale-out; pattern subscriptions are restricted, as on AWS."""
    import redis

    ec.create_serverless_cache(ServerlessCacheName="t-pubsub", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-pubsub")
    for proto in (2, 3):
        r = sv.client(cache, protocol=proto)
        ps = sv.client(cache, protocol=proto).pubsub()
        ps.subscribe("news")
        ps.ssubscribe("{shop}orders")
        acks = [ps.get_message(timeout=5) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in acks] == [("subscribe", b"news", 1),
                                                                        ("ssubscribe", b"{shop}orders", 1)]
        assert r.publish("news", "hello") == 1 and r.spublish("{shop}orders", "o-1") == 1
        got = [ps.get_message(timeout=5) for _ in range(2)]
        assert [(m["type"], m["channel"], m["data"]) for m in got] == [("message", b"news", b"hello"),
                                                                       ("smessage", b"{shop}orders", b"o-1")]
        assert r.pubsub_channels() == [b"news"] and r.pubsub_numsub("news") == [(b"news", 1)]
        assert r.execute_command("PUBSUB", "SHARDCHANNELS") == [b"{shop}orders"]
        for restricted in (("PSUBSCRIBE", "n*"), ("PUNSUBSCRIBE",), ("PUBSUB", "NUMPAT"), ("KEYS", "*"),
                           ("WAIT", "0", "0")):
            with pytest.raises(redis.exceptions.ResponseError, match="restricted"):
                r.execute_command(*restricted)
        if proto == 2:  # a RESP2 connection in subscribed mode takes only (un)subscribe, PING, QUIT, RESET
            ps.execute_command("GET", "x")
            with pytest.raises(redis.exceptions.ResponseError, match="only"):
                ps.get_message(timeout=5)
        ps.unsubscribe("news")
        ps.sunsubscribe("{shop}orders")
        assert [ps.get_message(timeout=5)["type"] for _ in range(2)] == ["unsubscribe", "sunsubscribe"]
        assert r.publish("news", "nobody") == 0
        ps.close()
    # A subscriber keeps receiving when the data grows and the channel's slot moves to another engine.
    sv.local_timings("t-pubsub", scale_in_after=600)
    ps = sv.client(cache).pubsub()
    ps.subscribe("alerts")
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    r = sv.client(cache)
    value = b"x" * 1024
    for start in range(0, 6000, 500):
        pipe = r.pipeline(transaction=False)
        for i in range(start, start + 500):
            pipe.set(f"fill:{i}", value)
        pipe.execute()
    deadline = time.monotonic() + 60
    while (len(status_of("t-pubsub")["backends"]) < 2 or status_of("t-pubsub")["scaling"]) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(status_of("t-pubsub")["backends"]) >= 2
    received = []
    for i in range(20):  # channels whose slots now belong to different engines
        channel = "alerts" if i == 0 else f"{{c{i}}}alerts"
        if i:
            ps.subscribe(channel)
            assert ps.get_message(timeout=5)["type"] == "subscribe"
        assert r.publish(channel, f"m{i}") == 1
        msg = ps.get_message(timeout=5)
        received.append((msg["channel"], msg["data"]))
    assert received == [(b"alerts" if i == 0 else f"{{c{i}}}alerts".encode(), f"m{i}".encode()) for i in range(20)]
    ps.close()
    ec.delete_serverless_cache(ServerlessCacheName="t-pubsub")
    sv.wait_serverless_deleted(ec, "t-pubsub")


# --- what a client may send: the engines' protocol bounds, and the serverless item size ---------------------
def engine_reply(port: int, password: str, data: bytes) -> tuple[bytes, bool]:
    """What the real engine behind the endpoint answers `data` with, after AUTH (plain TCP on loopback)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password.encode()) + data)
        out, closed = until_closed(s)
    assert out.startswith(b"+OK\r\n"), out
    return out[5:], closed


PROTOCOL_ERRORS = [  # the same bytes to the endpoint and to the engine behind it: the same answer, then closed
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999\r\n",  # a bulk past proto-max-bulk-len
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-7\r\n",  # a negative bulk length
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1_0\r\nxxxxxxxxxx\r\n",  # not a number to the engine (Python's int() takes it)
    b"*2147483648\r\n",  # more arguments than an int holds
    b"*1\r\n+PING\r\n",
    b"PING " + b"a" * 70_000,  # an inline request past 64 KB
    b"*1\r\n$" + b"1" * 70_000,  # a bulk length line past 64 KB
    b"PING\r\n*1\r\n$-1\r\n",  # a good command, then a bad one: the good one is answered first
]


def test_the_endpoint_bounds_what_a_client_sends_as_the_engines_do(ec):
    ec.create_serverless_cache(ServerlessCacheName="t-bounds", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-bounds")
    from helpers.runtime import services

    password = (Path(services.get("aws-sl-t-bounds").nodes[0].workdir) / "password").read_text().strip()
    st = status_of("t-bounds")
    engine_port, pid = st["backends"][0]["port"], st["pid"]
    for data in PROTOCOL_ERRORS:
        want, engine_closed = engine_reply(engine_port, password, data)
        assert engine_closed and b"Protocol error" in want, (data[:40], want)
        with tls_socket(cache) as s:
            s.sendall(data)
            assert until_closed(s) == (want, True), data[:40]
    # Past AWS's item size for serverless (32 MiB), refused as an engine whose proto-max-bulk-len is 32 MiB:
    # at the length line, before the value is read.
    with tls_socket(cache) as s:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % ((32 << 20) + 1))
        assert until_closed(s) == (b"-ERR Protocol error: invalid bulk length\r\n", True)
    # A huge value is never buffered: 64 MB sent after a $999999999 leaves the endpoint's peak memory
    # (VmHWM, so however fast it read) well below what was sent.
    peak = memory_kb(pid, "VmHWM")
    with tls_socket(cache) as s:
        send_until_refused(s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999\r\n", 64 << 20)
    assert memory_kb(pid, "VmHWM") - peak < 16 << 10, "the endpoint buffered what it refused"
    # What a connection buffered (a value within bounds, cut short) is given back when it ends.
    rss = memory_kb(pid, "VmRSS")
    with tls_socket(cache) as s:
        sent = send_until_refused(s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (30 << 20), 24 << 20)
        assert sent == 24 << 20
    assert eventually(lambda: memory_kb(pid, "VmRSS") - rss < 16 << 10, True, timeout=10), \
        "the endpoint held a closed connection's buffer"
    assert sv.client(cache).ping()  # and it still serves
    ec.delete_serverless_cache(ServerlessCacheName="t-bounds")


def served_again(call, timeout: float = 30.0):
    """What `call()` returns once the cache serves it again (bounded wait), or its last error raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Exception:  # noqa: BLE001 - the cache is recovering: ask again until the deadline
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def event_messages(ec, name: str) -> list[str]:
    return [e["Message"] for e in ec.describe_events(SourceType="serverless-cache", SourceIdentifier=name,
                                                     Duration=60)["Events"]]


def test_a_killed_engine_behind_the_endpoint_is_replaced_by_its_replica(ec):
    """kill -9 of the engine behind the endpoint: its replica takes the slots over (the data with it), a new
    replica follows, clients are served again at the same endpoint, and describe-events says so (as AWS
    reports a failover: "Failover to replica node ... completed")."""
    ec.create_serverless_cache(ServerlessCacheName="t-kill", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-kill")
    r = sv.client(cache)
    for i in range(50):
        r.set(f"k:{i}", i)
    r.rpush("list", "a", "b")
    before = status_of("t-kill")["backends"][0]
    reader = sv.client(cache, reader=True)
    assert eventually(lambda: reader.get("k:49"), b"49") == b"49"  # the replica has the data
    psutil.Process(before["pid"]).kill()
    assert served_again(lambda: r.get("k:7")) == b"7"  # the promoted replica answers, with the data
    assert [r.get(f"k:{i}") for i in range(50)] == [str(i).encode() for i in range(50)]
    assert r.lrange("list", 0, -1) == [b"a", b"b"]
    assert r.set("after", "1") and r.get("after") == b"1"
    assert r.execute_command("CLUSTER", "COUNTKEYSINSLOT", r.execute_command("CLUSTER", "KEYSLOT", "k:7")) >= 1

    def settled():
        st = status_of("t-kill")["backends"][0]
        return st["pid"] == before["replica_pid"] and bool(st["replica_pid"]) and bool(alive([st["replica_pid"]]))

    assert eventually(settled, True, timeout=30), status_of("t-kill")
    assert served_again(lambda: reader.get("after")) == b"1"  # a new replica follows the new primary
    assert ec.describe_serverless_caches(ServerlessCacheName="t-kill")["ServerlessCaches"][0]["Status"] == "available"
    def recovery_events():
        return sorted({m.split()[0] for m in event_messages(ec, "t-kill")
                       if m.startswith(("Failover to replica node", "Finished recovery for cache nodes"))})

    assert eventually(recovery_events, ["Failover", "Finished"], timeout=15) == ["Failover", "Finished"], \
        event_messages(ec, "t-kill")
    # The replica dies too: a new one replaces it, and the reader endpoint reads again.
    psutil.Process(status_of("t-kill")["backends"][0]["replica_pid"]).kill()
    r.set("later", "2")
    assert eventually(lambda: served_again(lambda: reader.get("later")), b"2", timeout=30) == b"2"
    pids = engine_pids("t-kill")
    ec.delete_serverless_cache(ServerlessCacheName="t-kill")
    sv.wait_serverless_deleted(ec, "t-kill")
    deadline = time.monotonic() + 15
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(pids) == []


def test_clients_blocked_in_blpop_are_woken_after_their_slot_moves(ec):
    """Eight clients in BLPOP on eight keys while the cache grows from one shard to two: the LPUSH that follows
    wakes every one of them (their slot's new engine serves them), and no element stays behind."""
    import threading

    from redis.crc import key_slot as crc_slot  # redis-py's own CRC16 (not the endpoint's)

    ec.create_serverless_cache(ServerlessCacheName="t-block", Engine="valkey")
    cache = sv.wait_serverless(ec, "t-block")
    r = sv.client(cache)
    low = [k for k in (f"q:{i}" for i in range(200)) if crc_slot(k.encode()) < 8192][:4]
    high = [k for k in (f"q:{i}" for i in range(200)) if crc_slot(k.encode()) >= 8192][:4]  # the half that moves
    keys = low + high
    got: dict[str, object] = {}

    def wait_on(key: str) -> None:
        got[key] = sv.client(cache).blpop([key], timeout=30)

    threads = [threading.Thread(target=wait_on, args=(k,), daemon=True) for k in keys]
    for t in threads:
        t.start()
    assert eventually(lambda: r.info("clients")["blocked_clients"], 8, timeout=10) == 8
    # ECPUPerSecond.Minimum above one local shard's capacity: the cache grows to two shards, slots move.
    ec.modify_serverless_cache(ServerlessCacheName="t-block", CacheUsageLimits={"ECPUPerSecond": {"Minimum": 5000}})
    assert eventually(lambda: (len(status_of("t-block")["backends"]), status_of("t-block")["scaling"]),
                      (2, False), timeout=30) == (2, False)
    for k in keys:
        r.lpush(k, f"v-{k}")
    for t in threads:
        t.join(15)
    assert got == {k: (k.encode(), f"v-{k}".encode()) for k in keys}
    assert [r.llen(k) for k in keys] == [0] * 8
    ec.delete_serverless_cache(ServerlessCacheName="t-block")
    sv.wait_serverless_deleted(ec, "t-block")
