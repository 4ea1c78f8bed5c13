"""Engine metrics published to the local CloudWatch under AWS/ElastiCache, with AWS's dimensions.

Every few seconds (ELASTICACHE_LAB_METRICS_INTERVAL, default 5; AWS publishes every 60 s) each
node of an available cluster is asked for INFO (Redis) or stats (Memcached); the values go to
moto's CloudWatch in this same process, per CacheClusterId and CacheNodeId, under the metric
names AWS uses. Counters (hits, misses, evictions, bytes) are published as per-interval deltas.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.runtime import services

INTERVAL_ENV = "ELASTICACHE_LAB_METRICS_INTERVAL"
REDIS_GAUGES = {"CurrConnections": "connected_clients", "BytesUsedForCache": "used_memory"}
REDIS_COUNTERS = {"CacheHits": "keyspace_hits", "CacheMisses": "keyspace_misses", "Evictions": "evicted_keys",
                  "Reclaimed": "expired_keys", "NetworkBytesIn": "total_net_input_bytes",
                  "NetworkBytesOut": "total_net_output_bytes"}
MEMCACHED_GAUGES = {"CurrConnections": "curr_connections", "CurrItems": "curr_items",
                    "BytesUsedForCacheItems": "bytes"}
MEMCACHED_COUNTERS = {"GetHits": "get_hits", "GetMisses": "get_misses", "Evictions": "evictions",
                      "CmdGet": "cmd_get", "CmdSet": "cmd_set", "BytesReadIntoMemcached": "bytes_read",
                      "BytesWrittenOutFromMemcached": "bytes_written"}
UNITS = {"BytesUsedForCache": "Bytes", "BytesUsedForCacheItems": "Bytes", "NetworkBytesIn": "Bytes",
         "NetworkBytesOut": "Bytes", "BytesReadIntoMemcached": "Bytes", "BytesWrittenOutFromMemcached": "Bytes",
         "EngineCPUUtilization": "Percent", "DatabaseMemoryUsagePercentage": "Percent", "ReplicationLag": "Seconds"}

_previous: dict[tuple[str, str, str], float] = {}


def _deltas(key: tuple[str, str], counters: dict[str, str], raw: dict[str, Any]) -> dict[str, float]:
    out = {}
    for metric, field in counters.items():
        if field in raw:
            value = float(raw[field])
            before = _previous.get((*key, metric))
            _previous[(*key, metric)] = value
            if before is not None:
                out[metric] = max(value - before, 0.0)
    return out


def redis_metrics(key: tuple[str, str], conn: Any, interval: float) -> dict[str, float]:
    info = conn.info()
    out = {m: float(info[f]) for m, f in REDIS_GAUGES.items() if f in info}
    out["CurrItems"] = float(sum(v.get("keys", 0) for k, v in info.items() if k.startswith("db")
                                 and isinstance(v, dict)))
    out["IsPrimary"] = 1.0 if info.get("role") == "master" else 0.0
    if info.get("maxmemory"):
        out["DatabaseMemoryUsagePercentage"] = 100.0 * info["used_memory"] / info["maxmemory"]
    if info.get("role") == "slave":
        out["ReplicationLag"] = float(info.get("master_last_io_seconds_ago", 0))
    out.update(_deltas(key, REDIS_COUNTERS, info))
    cpu = _deltas(key, {"cpu": "used_cpu_user"}, info).get("cpu")
    if cpu is not None:
        out["EngineCPUUtilization"] = min(100.0, 100.0 * cpu / max(interval, 0.001))
    return out


def memcached_metrics(key: tuple[str, str], host: str, port: int) -> dict[str, float]:
    from pymemcache.client.base import Client

    client = Client((host, port), connect_timeout=2, timeout=2)
    try:
        stats = {k.decode(): v for k, v in client.stats().items()}
    finally:
        client.close()
    out = {m: float(stats[f]) for m, f in MEMCACHED_GAUGES.items() if f in stats}
    out.update(_deltas(key, MEMCACHED_COUNTERS, stats))
    return out


def collect(plane: Any, interval: float) -> list[tuple[str, str, dict[str, float]]]:
    """(CacheClusterId, CacheNodeId, metrics) for every node of every available resource."""
    rows = []
    with plane.lock:
        clusters = [c for c in plane.clusters.values() if c.status == "available"]
        groups = [g for g in plane.groups.values() if g.status == "available"]
    for cc in clusters:
        for node in cc.nodes:
            svc = services.get(cc.service_name(node["id"]))
            if not svc:
                continue
            key = (cc.cluster_id, node["id"])
            with contextlib.suppress(Exception):
                if cc.engine == "memcached":
                    rows.append((*key, memcached_metrics(key, svc.host, svc.port)))
                else:
                    rows.append((*key, redis_metrics(key, plane._cluster_conn(cc, svc.nodes[0]), interval)))
    for g in groups:
        svc = services.get(g.service_name)
        if not svc:
            continue
        for n in ops.data_nodes(svc):
            member = g.member_ids.get(n.name)
            if member:
                key = (member, "0001")
                with contextlib.suppress(Exception):
                    rows.append((*key, redis_metrics(key, plane._admin(g, svc, n), interval)))
    return rows


def publish(rows: list[tuple[str, str, dict[str, float]]]) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    from helpers.aws.controlplane.models.base import ACCOUNT

    data = []
    for cluster_id, node_id, metrics in rows:
        dims = [{"Name": "CacheClusterId", "Value": cluster_id}, {"Name": "CacheNodeId", "Value": node_id}]
        for name, value in metrics.items():
            data.append({"MetricName": name, "Dimensions": dims, "Value": value,
                         "Unit": UNITS.get(name, "Count")})
    if data:
        backend = cloudwatch_backends[ACCOUNT]["us-east-1"]
        for i in range(0, len(data), 500):
            backend.put_metric_data("AWS/ElastiCache", data[i:i + 500])
    return len(data)


def start_publisher(plane: Any) -> threading.Thread:
    interval = float(os.environ.get(INTERVAL_ENV, "5"))

    def loop() -> None:
        while True:
            time.sleep(interval)
            with contextlib.suppress(Exception):
                publish(collect(plane, interval))

    t = threading.Thread(target=loop, name="controlplane-metrics", daemon=True)
    t.start()
    return t
