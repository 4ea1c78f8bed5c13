"""ElastiCache Serverless for Memcached, locally: the API, ONE TLS endpoint in front of real memcached processes,
growing and shrinking behind it, metering, limits and snapshots.

Every test talks to the local API with boto3 and to the cache with pymemcache over verified TLS; the memcached
processes behind the endpoint are real, checked by pid.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timezone

import psutil
import pytest
from pymemcache.exceptions import MemcacheServerError
from support import (  # the same checks as the Valkey/Redis OSS tests
    alive,
    code_of,
    engine_pids,
    memory_kb,
    send_until_refused,
    status_of,
    tls_socket,
)

import helpers
from helpers.aws import endpoint as localaws
from helpers.aws import serverless as sv
from helpers.aws.controlplane.models.serverless import GB_BYTES_ENV
from helpers.runtime import services

GB_HERE = 8 << 20  # one "GB" of DataStorage for these tests: 8 MB (memcached's smallest cache_memlimit)


@pytest.fixture(scope="module")
def ec():
    os.environ[GB_BYTES_ENV] = str(GB_HERE)
    svc = services.get("aws")
    if svc is not None:  # an endpoint started without the small "GB": start it again with it
        try:
            env = psutil.Process(svc.nodes[0].pid).environ()
        except psutil.Error:
            env = {}
        if env.get(GB_BYTES_ENV) != str(GB_HERE):
            services.stop("aws")
    helpers.start("aws")
    client = localaws.client("elasticache")
    yield client
    for c in client.describe_serverless_caches()["ServerlessCaches"]:
        if c["ServerlessCacheName"].startswith("tm-") and c["Status"] == "available":
            client.delete_serverless_cache(ServerlessCacheName=c["ServerlessCacheName"])
    # The next module's endpoint starts again with AWS's own "GB".
    os.environ.pop(GB_BYTES_ENV, None)
    services.stop("aws")


def delete_and_check(ec, name: str) -> None:
    pids = engine_pids(name)
    assert pids and len(alive(pids)) == len(pids)
    ec.delete_serverless_cache(ServerlessCacheName=name)
    sv.wait_serverless_deleted(ec, name)
    deadline = time.monotonic() + 15
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(pids) == [], "delete leaves no process"


def test_memcached_requests_follow_aws_rules(ec):
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="tm-bad", Engine="memcached",
                   MajorEngineVersion="1.4") == "InvalidParameterCombination"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="tm-bad", Engine="memcached",
                   UserGroupId="default") == "InvalidParameterCombination"  # no users: security groups only
    assert all(c["ServerlessCacheName"] != "tm-bad" for c in ec.describe_serverless_caches()["ServerlessCaches"])


def test_lifecycle_over_tls_snapshots_and_restore(ec):
    out = ec.create_serverless_cache(ServerlessCacheName="tm-life", Engine="memcached",
                                     MajorEngineVersion="1.6")["ServerlessCache"]
    assert out["Status"] == "creating" and out["Engine"] == "memcached"
    cache = sv.wait_serverless(ec, "tm-life")
    assert cache["MajorEngineVersion"] == "1.6" and cache["FullEngineVersion"].startswith("1.6.")
    assert "ReaderEndpoint" not in cache  # AWS gives a serverless Memcached cache one endpoint
    ep = cache["Endpoint"]
    mc = sv.memcached_client(cache)
    assert mc.version().startswith(b"1.6")
    assert mc.set("greeting", b"hello", expire=3600) and mc.get("greeting") == b"hello"
    assert mc.set("n", b"5") and mc.incr("n", 3) == 8 and mc.decr("n", 1) == 7
    value, cas = mc.gets("greeting")
    assert mc.cas("greeting", b"bonjour", cas) and not mc.cas("greeting", b"hi", cas)
    assert mc.add("greeting", b"x") is False and mc.append("greeting", b"!") and mc.get("greeting") == b"bonjour!"
    many = {f"m:{i}": str(i).encode() for i in range(50)}
    mc.set_many(many)
    assert mc.get_many(list(many) + ["missing"]) == many
    assert mc.touch("m:1", 100) and mc.delete("m:2") and mc.get("m:2") is None
    assert mc.raw_command(b"mg m:1 v t", b"\r\n").startswith(b"VA 1 t")  # meta commands pass too
    # TLS is always on: a plain TCP client gets no memcached answer.
    with socket.create_connection((ep["Address"], ep["Port"]), timeout=3) as s:
        s.settimeout(3)
        s.sendall(b"version\r\n")
        try:
            data = s.recv(64)
        except OSError:
            data = b""
        assert not data.startswith(b"VERSION"), data
    # Snapshots: create, copy; export is Valkey/Redis OSS only; restore into a new cache.
    snap = ec.create_serverless_cache_snapshot(ServerlessCacheSnapshotName="tm-snap",
                                               ServerlessCacheName="tm-life")["ServerlessCacheSnapshot"]
    assert snap["Status"] == "available" and snap["ServerlessCacheConfiguration"]["Engine"] == "memcached"
    assert int(snap["BytesUsedForCache"]) > 0
    ec.copy_serverless_cache_snapshot(SourceServerlessCacheSnapshotName="tm-snap",
                                      TargetServerlessCacheSnapshotName="tm-snap-copy")
    assert code_of(ec.export_serverless_cache_snapshot, ServerlessCacheSnapshotName="tm-snap",
                   S3BucketName="any") == "InvalidParameterCombination"
    assert code_of(ec.create_serverless_cache, ServerlessCacheName="tm-wrong", Engine="valkey",
                   SnapshotArnsToRestore=[snap["ARN"]]) == "InvalidParameterCombination"
    delete_and_check(ec, "tm-life")
    ec.create_serverless_cache(ServerlessCacheName="tm-restored", Engine="memcached",
                               SnapshotArnsToRestore=[snap["ARN"]])
    restored = sv.memcached_client(sv.wait_serverless(ec, "tm-restored"))
    assert restored.get("greeting") == b"bonjour!" and restored.get("n") == b"7"
    assert restored.get_many(list(many)) == {k: v for k, v in many.items() if k != "m:2"}
    ttl = restored.raw_command(b"mg m:1 t", b"\r\n")  # the expiry came along (touched to 100 s above)
    assert ttl.startswith(b"HD t") and 0 < int(ttl.split()[1][1:]) <= 100, ttl
    delete_and_check(ec, "tm-restored")
    ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="tm-snap")
    ec.delete_serverless_cache_snapshot(ServerlessCacheSnapshotName="tm-snap-copy")


def test_it_grows_behind_one_endpoint_without_losing_a_key(ec):
    ec.create_serverless_cache(ServerlessCacheName="tm-grow", Engine="memcached")
    cache = sv.wait_serverless(ec, "tm-grow")
    sv.local_timings("tm-grow", scale_in_after=1)  # local only: a shard goes after 1 s of low load (10 s default)
    mc = sv.memcached_client(cache)
    assert len(status_of("tm-grow")["backends"]) == 1
    value = b"x" * 1024
    written = 0
    started = time.monotonic()
    # A bounded write load: at most 12,000 items of 1 KB (about 13 MB) or 60 s.
    while written < 12000 and time.monotonic() - started < 60:
        mc.set_many({f"k:{i}": value for i in range(written, written + 200)}, noreply=False)
        written += 200
        if written >= 4000 and len(status_of("tm-grow")["backends"]) >= 2:
            break
    deadline = time.monotonic() + 60
    while len(status_of("tm-grow")["backends"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    st = status_of("tm-grow")
    assert len(st["backends"]) >= 2, st
    while st["scaling"] and time.monotonic() < deadline:
        time.sleep(0.5)
        st = status_of("tm-grow")
    # Every item is still there, read through the same endpoint by the same client; each is on one backend.
    for i in range(0, written, 500):
        keys = [f"k:{j}" for j in range(i, min(i + 500, written))]
        assert len(mc.get_many(keys)) == len(keys)
    assert sum(b["keys"] for b in status_of("tm-grow")["backends"]) == written
    assert sum(1 for b in status_of("tm-grow")["backends"] if b["keys"]) >= 2

    def messages() -> list[str]:
        return [e["Message"] for e in ec.describe_events(SourceType="serverless-cache",
                                                         SourceIdentifier="tm-grow")["Events"]]

    deadline = time.monotonic() + 10
    while not any("scaled out" in m for m in messages()) and time.monotonic() < deadline:
        time.sleep(1)
    assert any("scaled out" in m for m in messages()), messages()
    # The data goes: it shrinks back (bounded wait), still behind the same endpoint.
    for i in range(0, written, 200):
        mc.delete_many([f"k:{j}" for j in range(i, min(i + 200, written))], noreply=False)
    deadline = time.monotonic() + 90
    while len(status_of("tm-grow")["backends"]) > 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(status_of("tm-grow")["backends"]) == 1
    assert mc.set("after", b"1") and mc.get("after") == b"1"
    deadline = time.monotonic() + 10
    while not any("scaled in" in m for m in messages()) and time.monotonic() < deadline:
        time.sleep(1)
    assert any("scaled in" in m for m in messages())
    delete_and_check(ec, "tm-grow")


def test_metering_and_limits(ec):
    ec.create_serverless_cache(ServerlessCacheName="tm-meter", Engine="memcached")
    cache = sv.wait_serverless(ec, "tm-meter")
    sv.local_timings("tm-meter", metric_period=1)  # local only: its metrics every second (5 s default, 60 on AWS)
    mc = sv.memcached_client(cache)
    before = status_of("tm-meter")["ecpu"]
    since = datetime.now(timezone.utc)
    # 200 sets of 3 KB values and 200 gets: each transfers a little over 3 KB, so a little over 3 ECPUs.
    for i in range(200):
        mc.set(f"m:{i}", b"v" * 3072)
    for i in range(200):
        assert mc.get(f"m:{i}") is not None
    time.sleep(1.5)
    used = status_of("tm-meter")["ecpu"] - before
    assert 400 * 3.0 <= used <= 400 * 3.3, used
    cw = localaws.client("cloudwatch")
    deadline = time.monotonic() + 30
    total = 0.0
    while time.monotonic() < deadline:
        total = sv.metric_sum(cw, "tm-meter", "ElastiCacheProcessingUnits", since)
        if total >= 400 * 3.0 and sv.metric_sum(cw, "tm-meter", "CacheHits", since) >= 200:
            break
        time.sleep(1)
    assert total >= 400 * 3.0
    assert sv.metric_sum(cw, "tm-meter", "CacheHits", since) >= 200
    # ECPUPerSecond maximum: above it, commands wait for budget and the cap holds, or are refused.
    ec.modify_serverless_cache(ServerlessCacheName="tm-meter", CacheUsageLimits={"ECPUPerSecond": {"Maximum": 1000}})
    time.sleep(1.5)  # the endpoint reads its limits every half second
    value = b"z" * 65536  # 64 ECPUs a set: 1,000 ECPU/s allows about 15 a second
    started = time.monotonic()
    done = refused = 0
    while time.monotonic() - started < 3:
        try:
            mc.set("big", value)
            done += 1
        except MemcacheServerError as exc:
            assert "Throttled" in str(exc)
            refused += 1
    elapsed = time.monotonic() - started
    assert done * 64 / elapsed <= 1000 * 1.25 + 100 / elapsed
    time.sleep(1.5)
    assert status_of("tm-meter")["throttled"] > 0
    # DataStorage maximum (here 1 "GB" = 8 MB): items with a TTL are evicted first (least recently used),
    # then a write that does not fit gets memcached's out-of-memory error.
    ec.modify_serverless_cache(ServerlessCacheName="tm-meter",
                               CacheUsageLimits={"DataStorage": {"Maximum": 1, "Unit": "GB"}})
    time.sleep(1.5)
    mc.flush_all()
    kb = b"d" * 1000
    for i in range(4000):  # about 4 MB with a TTL
        mc.set(f"ttl:{i}", kb, expire=3600)
    stored = 0
    error = None
    for i in range(12000):  # up to 12 MB without a TTL: more than fits
        try:
            mc.set(f"keep:{i}", kb)
            stored += 1
        except MemcacheServerError as exc:
            error = str(exc)
            break
    assert error is not None and "out of memory" in error, (stored, error)
    assert stored >= 2000
    assert mc.get("keep:0") == kb  # items without a TTL are kept
    assert mc.get_many([f"ttl:{i}" for i in range(200)]) == {}  # the oldest TTL items went first
    time.sleep(1.5)
    assert status_of("tm-meter")["evictions"] > 0 and status_of("tm-meter")["oom"] > 0  # TTL items made room
    delete_and_check(ec, "tm-meter")


def exchange(cache: dict, data: bytes, replies: int = 1) -> bytes:
    """`data` over a raw TLS connection to the endpoint, and its first `replies` reply lines."""
    with tls_socket(cache) as s:
        s.sendall(data)
        out = b""
        s.settimeout(10)
        while out.count(b"\r\n") < replies:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def memcached_reply(port: int, data: bytes, replies: int = 1) -> bytes:
    """What a real memcached behind the endpoint answers (plain TCP on loopback)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while out.count(b"\r\n") < replies:
            out += s.recv(65536)
    return out


def test_item_size_and_the_commands_aws_refuses_on_serverless(ec):
    ec.create_serverless_cache(ServerlessCacheName="tm-bounds", Engine="memcached")
    cache = sv.wait_serverless(ec, "tm-bounds")
    st = status_of("tm-bounds")
    backend, pid = st["backends"][0]["port"], st["pid"]
    # Past memcached's item size (1 MB): memcached's own answer, after it has read and dropped the value.
    too_big = b"set big 0 0 2000000\r\n" + b"x" * 2_000_000 + b"\r\nversion\r\n"
    want = memcached_reply(backend, too_big, 2)
    assert want.startswith(b"SERVER_ERROR object too large for cache\r\nVERSION ")
    assert exchange(cache, too_big, 2).split(b"\r\n")[0] == want.split(b"\r\n")[0]
    quiet = b"set big 0 0 2000000 noreply\r\n" + b"x" * 2_000_000 + b"\r\nversion\r\n"
    assert exchange(cache, quiet).startswith(b"VERSION ") and memcached_reply(backend, quiet).startswith(b"VERSION ")
    assert exchange(cache, b"ms big 2000000\r\n" + b"x" * 2_000_000 + b"\r\nmn\r\n", 2) \
        == b"SERVER_ERROR object too large for cache\r\nMN\r\n"
    # ... and a claimed huge value is never held: 64 MB sent leave the endpoint's peak memory (VmHWM, however
    # fast it read) well below what was sent.
    peak = memory_kb(pid, "VmHWM")
    with tls_socket(cache) as s:
        assert send_until_refused(s, b"set big 0 0 999999999\r\n", 64 << 20) == 64 << 20  # memcached reads on
    assert memory_kb(pid, "VmHWM") - peak < 16 << 10, "the endpoint buffered a value it refuses"
    # AWS's "Supported Memcached commands" for serverless: delayed flush_all -> CLIENT_ERROR; stats other than
    # `stats` and `stats reset` -> ERROR; verbosity, lru_crawler, watch, me: not supported; get/gets up to 16 KB.
    assert exchange(cache, b"flush_all 10\r\n").startswith(b"CLIENT_ERROR ")
    assert exchange(cache, b"flush_all 10 noreply\r\n").startswith(b"CLIENT_ERROR ")
    assert exchange(cache, b"flush_all\r\nflush_all 0\r\n", 2) == b"OK\r\nOK\r\n"
    for line in (b"stats slabs", b"stats items", b"stats settings", b"stats detail dump", b"verbosity 1",
                 b"lru_crawler metadump all", b"lru mode flat", b"watch", b"me big"):
        assert exchange(cache, line + b"\r\n") == b"ERROR\r\n", line
    assert exchange(cache, b"stats reset\r\n") == b"RESET\r\n"
    assert exchange(cache, b"stats\r\n").startswith(b"STAT pid ")
    keys = b" ".join(b"k%05d" % i for i in range(2900))  # 17,400 bytes of get
    assert exchange(cache, b"get " + keys + b"\r\n").startswith(b"CLIENT_ERROR ")
    assert exchange(cache, b"gets " + keys + b"\r\n").startswith(b"CLIENT_ERROR ")
    assert exchange(cache, b"get " + keys[:15_000] + b"\r\n") == b"END\r\n"
    delete_and_check(ec, "tm-bounds")


def test_a_killed_memcached_behind_the_endpoint_is_replaced_empty(ec):
    """kill -9 of the memcached behind the endpoint: a new, empty one takes its place (its items are lost, as
    when ElastiCache replaces a failed Memcached node: Memcached has no replicas), the endpoint serves again,
    and describe-events says a recovery finished."""
    from test_serverless import event_messages, eventually, served_again

    ec.create_serverless_cache(ServerlessCacheName="tm-kill", Engine="memcached")
    cache = sv.wait_serverless(ec, "tm-kill")
    mc = sv.memcached_client(cache)
    mc.set_many({f"k:{i}": b"v" for i in range(20)})
    before = status_of("tm-kill")["backends"][0]
    psutil.Process(before["pid"]).kill()
    assert served_again(lambda: mc.set("after", b"1")) is True
    assert mc.get("after") == b"1"
    assert mc.get_many([f"k:{i}" for i in range(20)]) == {}  # lost with the failed node
    now = eventually(lambda: status_of("tm-kill")["backends"][0]["pid"] != before["pid"], True)  # status.json
    assert now and alive([status_of("tm-kill")["backends"][0]["pid"]])
    deadline = time.monotonic() + 15
    while not any(m.startswith("Finished recovery for cache nodes") for m in event_messages(ec, "tm-kill")) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert any(m.startswith("Finished recovery for cache nodes") for m in event_messages(ec, "tm-kill"))
    assert ec.describe_serverless_caches(ServerlessCacheName="tm-kill")["ServerlessCaches"][0]["Status"] == \
        "available"
    delete_and_check(ec, "tm-kill")
