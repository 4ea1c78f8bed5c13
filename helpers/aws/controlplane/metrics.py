"""Engine metrics published to the local CloudWatch under AWS/ElastiCache, with AWS's dimensions.

Every few seconds (ELASTICACHE_LAB_METRICS_INTERVAL, default 5; AWS publishes every 60 s) each
node of an available cluster is asked for INFO (Redis) or stats (Memcached); the values go to
moto's CloudWatch in this same process, per CacheClusterId and CacheNodeId, under the metric
names AWS uses. This module only collects and publishes: every metric's definition (name, unit,
computation from INFO or stats) is helpers.measure.metrics, the one lab 12 teaches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from pymemcache.exceptions import MemcacheError

from helpers.aws.controlplane import engineops as ops
from helpers.measure import metrics as m
from helpers.runtime import services

log = logging.getLogger(__name__)

INTERVAL_ENV = "ELASTICACHE_LAB_METRICS_INTERVAL"
# moto's CloudWatch keeps every datum for ever: at one datum per metric per node every 5 s, a course's
# clusters fill the AWS server with hundreds of MB. AWS keeps these for 15 days; the labs ask for the
# last 10 minutes at most, so the local CloudWatch keeps ours for 15 (ELASTICACHE_LAB_METRICS_RETENTION, s).
RETENTION_ENV = "ELASTICACHE_LAB_METRICS_RETENTION"

_readings: dict[tuple[str, str], m.Readings] = {}


def observe(key: tuple[str, str], engine: str, reading: Mapping[Any, Any], t: float,
            kinds: Mapping[str, str] | None = None) -> dict[str, float]:
    """The metrics ElastiCache would publish for this node's period ending with `reading` (taken at `t`).

    One `Readings` per (CacheClusterId, CacheNodeId) remembers the previous reading; a node whose
    engine changed starts over. `kinds` (command kinds, for Get/SetTypeCmds) is used by the first call.
    """
    readings = _readings.get(key)
    if readings is None or readings.engine != engine:
        readings = _readings[key] = m.Readings(engine, kinds)
    return m.published(readings.add(reading, t), engine)


def forget(key: tuple[str, str]) -> None:
    _readings.pop(key, None)


def redis_metrics(key: tuple[str, str], conn: Any) -> dict[str, float]:
    try:
        kinds = None
        if key not in _readings:
            with contextlib.suppress(*ops.ENGINE_ERRORS):
                kinds = m.command_kinds(conn)
        return observe(key, "redis", conn.info(m.INFO_SECTION), time.monotonic(), kinds)
    finally:
        conn.close()


def memcached_metrics(key: tuple[str, str], host: str, port: int) -> dict[str, float]:
    from pymemcache.client.base import Client

    client = Client((host, port), connect_timeout=2, timeout=2)
    try:
        stats = {k.decode() if isinstance(k, bytes) else k: v for k, v in client.stats().items()}
    finally:
        client.close()
    return observe(key, "memcached", stats, time.monotonic())


def collect(plane: Any) -> list[tuple[str, str, dict[str, float]]]:
    """(CacheClusterId, CacheNodeId, metrics) for every node of every available resource."""
    rows, seen = [], set()
    with plane.lock:
        clusters = [c for c in plane.clusters.values() if c.status == "available"]
        groups = [g for g in plane.groups.values() if g.status == "available"]
    for cc in clusters:
        for node in cc.nodes:
            svc = services.get(cc.service_name(node["id"]))
            if not svc:
                continue
            key = (cc.cluster_id, node["id"])
            seen.add(key)
            with contextlib.suppress(*ops.ENGINE_ERRORS, MemcacheError, ValueError, KeyError):  # a node restarting
                if cc.engine == "memcached":
                    rows.append((*key, memcached_metrics(key, svc.host, svc.port)))
                else:
                    rows.append((*key, redis_metrics(key, plane._cluster_conn(cc, svc.nodes[0]))))
    for g in groups:
        svc = services.get(g.service_name)
        if not svc:
            continue
        for n in ops.data_nodes(svc):
            member = g.member_ids.get(n.name)
            if member:
                key = (member, "0001")
                seen.add(key)
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError, KeyError):
                    rows.append((*key, redis_metrics(key, plane._admin(g, svc, n))))
    for gone in set(_readings) - seen:
        forget(gone)
    return rows


def publish(rows: list[tuple[str, str, dict[str, float]]]) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    from helpers.aws.controlplane.models.base import ACCOUNT

    data = []
    for cluster_id, node_id, metrics in rows:
        dims = [{"Name": "CacheClusterId", "Value": cluster_id}, {"Name": "CacheNodeId", "Value": node_id}]
        for name, value in metrics.items():
            data.append({"MetricName": name, "Dimensions": dims, "Value": value,
                         "Unit": m.UNITS.get(name, "None")})
    if data:
        backend = cloudwatch_backends[ACCOUNT]["us-east-1"]
        for i in range(0, len(data), 500):
            backend.put_metric_data(m.NAMESPACE, data[i:i + 500])
        expire(backend, float(os.environ.get(RETENTION_ENV, "900")))
    return len(data)


def publish_global_lag(rows: list[tuple[str, str, str, float]]) -> int:
    """GlobalDatastoreReplicationLag of each secondary cluster, to the CloudWatch of its own region."""
    from moto.cloudwatch.models import cloudwatch_backends

    from helpers.aws.controlplane.models.base import ACCOUNT

    for region, cluster_id, node_id, lag in rows:
        backend = cloudwatch_backends[ACCOUNT][region]
        backend.put_metric_data(m.NAMESPACE, [{
            "MetricName": "GlobalDatastoreReplicationLag", "Value": lag, "Unit": "Seconds",
            "Dimensions": [{"Name": "CacheClusterId", "Value": cluster_id}, {"Name": "CacheNodeId", "Value": node_id}]}])
        expire(backend, float(os.environ.get(RETENTION_ENV, "900")))
    return len(rows)


def expire(backend: Any, retention: float) -> int:
    """Drop our namespace's datums older than `retention` seconds (others' are left alone); how many went."""
    from moto.core.utils import utcnow

    cutoff = utcnow() - dt.timedelta(seconds=retention)
    data = backend.metric_data
    kept = [d for d in data if d.namespace != m.NAMESPACE or not _older(d.timestamp, cutoff)]
    dropped = len(data) - len(kept)
    if dropped:
        data[:] = kept
    return dropped


def _older(ts: Any, cutoff: dt.datetime) -> bool:
    with contextlib.suppress(TypeError):  # a datum put with an aware timestamp by someone else
        return ts < cutoff
    return ts.replace(tzinfo=None) < cutoff


# --- serverless caches -----------------------------------------------------------------------------
# AWS publishes a serverless cache's metrics per cache, with the dimension clusterId (the cache's name).
SERVERLESS_DIMENSION = "clusterId"
_serverless_last: dict[str, dict[str, float]] = {}
SERVERLESS_COUNTS = {"ElastiCacheProcessingUnits": "ecpu", "ThrottledCmds": "throttled", "TotalCmdsCount": "cmds",
                     "NetworkBytesIn": "bytes_in", "NetworkBytesOut": "bytes_out", "CacheHits": "hits",
                     "CacheMisses": "misses", "NewConnections": "new_connections"}
SERVERLESS_UNITS = {"BytesUsedForCache": "Bytes", "NetworkBytesIn": "Bytes", "NetworkBytesOut": "Bytes",
                    "SuccessfulReadRequestLatency": "Microseconds", "SuccessfulWriteRequestLatency": "Microseconds",
                    "CacheHitRate": "Percent"}


def serverless_metrics(name: str, status: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of one serverless cache for the period since the last call, from its endpoint's counters
    (helpers.runtime.serverless.proxy): counts are the period's increase, gauges the current value."""
    last = _serverless_last.get(name)
    now_vals = {k: float(status.get(v, 0)) for k, v in SERVERLESS_COUNTS.items()}
    now_vals.update(read_cmds=float(status.get("read_cmds", 0)), write_cmds=float(status.get("write_cmds", 0)),
                    read_usec=float(status.get("read_usec", 0)), write_usec=float(status.get("write_usec", 0)))
    _serverless_last[name] = now_vals
    if last is None:
        last = {}  # an endpoint's counters start at zero with the cache
    elif any(now_vals[k] < last.get(k, 0) for k in now_vals):  # a new endpoint process: start over
        return {}
    d = {k: now_vals[k] - last.get(k, 0) for k in now_vals}
    out = {k: d[k] for k in SERVERLESS_COUNTS}
    out["BytesUsedForCache"] = float(status.get("bytes_used", 0))
    out["CurrConnections"] = float(status.get("curr_connections", 0))
    out["CurrItems"] = float(status.get("items", 0))
    out["CurrVolatileItems"] = float(status.get("volatile_items", 0))
    out["Evictions"] = float(status.get("evictions", 0))
    lookups = d["CacheHits"] + d["CacheMisses"]
    if lookups:
        out["CacheHitRate"] = 100.0 * d["CacheHits"] / lookups
    if d["read_cmds"]:
        out["SuccessfulReadRequestLatency"] = d["read_usec"] / d["read_cmds"]
    if d["write_cmds"]:
        out["SuccessfulWriteRequestLatency"] = d["write_usec"] / d["write_cmds"]
    return out


_serverless_due: dict[str, float] = {}  # cache -> monotonic time of its next publication


def collect_serverless(plane: Any, interval: float | None = None) -> list[tuple[str, dict[str, float]]]:
    """The metrics of every available serverless cache whose period is over: `interval` s, or the shorter
    local-only metric_period its endpoint reports (helpers.runtime.serverless.tune); None: every cache now."""
    rows = []
    with plane.lock:
        caches = [c for c in getattr(plane, "serverless", {}).values() if c.status == "available"]
    now = time.monotonic()
    for sc in caches:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):  # a status.json half written
            if interval is not None and now < _serverless_due.get(sc.name, 0.0):
                continue
            status = plane.serverless_status(sc)
            if interval is not None:
                _serverless_due[sc.name] = now + float(status.get("metric_period") or interval)
            metrics = serverless_metrics(sc.name, status)
            if metrics:
                rows.append((sc.name, metrics))
    for gone in set(_serverless_due) - {c.name for c in caches}:
        _serverless_due.pop(gone, None)
    for gone in set(_serverless_last) - {c.name for c in caches}:
        _serverless_last.pop(gone, None)
    return rows


def publish_serverless(rows: list[tuple[str, dict[str, float]]]) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    from helpers.aws.controlplane.models.base import ACCOUNT

    data = [{"MetricName": k, "Dimensions": [{"Name": SERVERLESS_DIMENSION, "Value": name}], "Value": v,
             "Unit": SERVERLESS_UNITS.get(k, "Count")} for name, metrics in rows for k, v in metrics.items()]
    if data:
        backend = cloudwatch_backends[ACCOUNT]["us-east-1"]
        for i in range(0, len(data), 500):
            backend.put_metric_data(m.NAMESPACE, data[i:i + 500])
    return len(data)


def _each_period(what: str, publish_once: Any) -> None:
    """One period's metrics; a failure is logged and the next period tries again."""
    try:
        publish_once()
    except Exception as exc:  # the publisher threads must outlive any one period's failure
        log.warning("publishing %s failed: %s", what, exc, exc_info=True)


def start_publisher(plane: Any) -> threading.Thread:
    interval = float(os.environ.get(INTERVAL_ENV, "5"))

    def loop() -> None:
        while True:
            time.sleep(interval)
            _each_period("the nodes' metrics", lambda: publish(collect(plane)))
            _each_period("the global datastores' replication lag",
                         lambda: publish_global_lag(plane.global_lag_rows()))

    def serverless_loop() -> None:  # each cache on its own period (a lab may shorten its cache's)
        while True:
            time.sleep(0.25)
            _each_period("the serverless caches' metrics",
                         lambda: publish_serverless(collect_serverless(plane, interval)))

    t = threading.Thread(target=loop, name="controlplane-metrics", daemon=True)
    t.start()
    threading.Thread(target=serverless_loop, name="controlplane-metrics-serverless", daemon=True).start()
    return t
