"""The metrics ElastiCache publishes to CloudWatch: the one definition of each, computed from the engines' counters.

This module is the single source of every node-based cache's metric: name, unit and computation. Lab 12
uses it through `Sampler`; the local control plane's CloudWatch publisher (helpers.aws.controlplane.metrics)
only reads the engines and publishes what `Readings` computes here, so both give the same value for
the same INFO. A serverless cache's metrics (per cache, from its endpoint's counters, not from INFO) are
computed in helpers.aws.controlplane.metrics.serverless_metrics.

ElastiCache reads Valkey/Redis OSS `INFO` and Memcached's `stats` once a minute and publishes them
in the `AWS/ElastiCache` namespace with the dimensions CacheClusterId and CacheNodeId. Counters
(hits, misses, evictions, commands, bytes) are published as the *change over the period*; gauges
(connections, memory, items) as their current value. The definitions follow AWS's pages "Metrics
for Valkey and Redis OSS", "Metrics for Memcached" and "Host-Level Metrics" (Amazon ElastiCache
User Guide); where a local engine cannot give exactly what AWS measures, the metric's description
says so.

CloudWatch alarms in the local endpoint (moto) are stored but never evaluated on their own, so
`evaluate_alarm` does what CloudWatch does: fetch the statistic for the alarm's last periods,
compare with the threshold, set the state and notify the alarm's SNS topics.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime.state import LabError

NAMESPACE = "AWS/ElastiCache"
INFO_SECTION = "everything"   # INFO sections every Redis metric needs (stats, cpu, replication, keyspace, commandstats)

GAUGE = "gauge"       # the value at the end of the period
COUNTER = "counter"   # the change of an engine counter over the period
PERIOD = "period"     # computed from the period's changes (needs two readings)


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric: its name, unit, kind and how it is computed here."""
    name: str
    unit: str
    kind: str
    description: str
    published: bool = True   # False: computed for the labs, but ElastiCache does not publish it for this engine


def _table(*metrics: Metric) -> dict[str, Metric]:
    return {x.name: x for x in metrics}


REDIS = _table(
    Metric("CacheHits", "Count", COUNTER, "Successful read-only key lookups: the change in keyspace_hits."),
    Metric("CacheMisses", "Count", COUNTER, "Unsuccessful read-only key lookups: the change in keyspace_misses."),
    Metric("CacheHitRate", "Percent", PERIOD,
           "100 * hits / (hits + misses) over the period's CacheHits and CacheMisses. AWS documents the formula "
           "cache_hits / (cache_hits + cache_misses) with the unit Percent; it is published here as 0-100, "
           "and as 0 for a period without lookups."),
    Metric("Evictions", "Count", COUNTER, "Keys evicted because of the maxmemory limit: the change in evicted_keys."),
    Metric("Reclaimed", "Count", COUNTER, "Key expiration events: the change in expired_keys."),
    Metric("CurrConnections", "Count", GAUGE,
           "Client connections, excluding replicas: connected_clients. Locally it includes the reader's own "
           "connection (ElastiCache also counts 4 to 6 monitoring connections)."),
    Metric("NewConnections", "Count", COUNTER,
           "Connections accepted during the period: the change in total_connections_received. Locally it includes "
           "the publisher's own connection (ElastiCache for Redis OSS 6+ excludes its monitoring connections)."),
    Metric("BytesUsedForCache", "Bytes", GAUGE, "Bytes allocated by the engine for all purposes: used_memory."),
    Metric("DatabaseMemoryUsagePercentage", "Percent", GAUGE,
           "100 * used_memory / maxmemory. Not computed without a maxmemory (every ElastiCache node has one)."),
    Metric("CurrItems", "Count", GAUGE, "Keys in the whole keyspace: the sum of keys= over db0, db1, ..."),
    Metric("CurrVolatileItems", "Count", GAUGE, "Keys with a TTL: the sum of expires= over db0, db1, ..."),
    Metric("EngineCPUUtilization", "Percent", PERIOD,
           "CPU of the engine's main thread (user + system) over the period, in percent of one core: the change in "
           "used_cpu_user_main_thread + used_cpu_sys_main_thread divided by the elapsed seconds. ElastiCache "
           "measures the engine thread outside INFO; engines older than Redis 6.2 only report the whole process "
           "(used_cpu_user + used_cpu_sys, background and I/O threads included), used then instead."),
    Metric("GetTypeCmds", "Count", COUNTER,
           "Calls of read-only commands (COMMAND flag readonly) in INFO commandstats, over the period."),
    Metric("SetTypeCmds", "Count", COUNTER,
           "Calls of commands that modify data (COMMAND flag write) in INFO commandstats, over the period."),
    Metric("NetworkBytesIn", "Bytes", COUNTER,
           "Bytes read from the network: the change in total_net_input_bytes. AWS's is a host-level metric (the "
           "whole node's interfaces); locally it is the engine's own traffic."),
    Metric("NetworkBytesOut", "Bytes", COUNTER,
           "Bytes written to the network: the change in total_net_output_bytes (host-level on AWS, as above)."),
    Metric("IsMaster", "Count", GAUGE, "1 on the primary of its shard or cluster (role:master), 0 on a replica."),
    Metric("ReplicationBytes", "Bytes", PERIOD,
           "On a primary: bytes sent to its replicas during the period, the change in master_repl_offset (0 "
           "without connected replicas)."),
    Metric("ReplicationLag", "Seconds", GAUGE,
           "On a replica only: how far behind its primary it is, in seconds. Link up: master_last_io_seconds_ago, "
           "whole seconds since the replica last heard from its primary (ElastiCache measures the apply delay "
           "itself, in milliseconds on Redis OSS 5.0.6+; an idle primary pings every repl-ping-replica-period, so "
           "a caught-up replica can read up to that period, 10 s by default). Link down (master_link_status not up): the replica "
           "applies nothing, so its lag grows with the outage: master_link_down_since_seconds, or, for a replica "
           "never in sync since it started, its uptime_in_seconds: a lower bound, never a negative value."),
)

MEMCACHED = _table(
    Metric("GetHits", "Count", COUNTER, "Get requests whose key was found: the change in get_hits."),
    Metric("GetMisses", "Count", COUNTER, "Get requests whose key was not found: the change in get_misses."),
    Metric("CacheHitRate", "Percent", PERIOD,
           "100 * GetHits / (GetHits + GetMisses), 0 without gets. ElastiCache publishes CacheHitRate for "
           "Valkey and Redis OSS, not for Memcached nodes: compute it with CloudWatch metric math there.",
           published=False),
    Metric("CmdGet", "Count", COUNTER, "Get commands received: the change in cmd_get."),
    Metric("CmdSet", "Count", COUNTER, "Set commands received: the change in cmd_set."),
    Metric("Evictions", "Count", COUNTER, "Non-expired items evicted to make room: the change in evictions."),
    Metric("Reclaimed", "Count", COUNTER, "Expired items evicted to make room: the change in reclaimed."),
    Metric("CurrConnections", "Count", GAUGE, "Connections open now: curr_connections."),
    Metric("NewConnections", "Count", COUNTER, "Connections received: the change in total_connections."),
    Metric("CurrItems", "Count", GAUGE, "Items stored now: curr_items."),
    Metric("NewItems", "Count", COUNTER, "Items stored during the period: the change in total_items."),
    Metric("BytesUsedForCacheItems", "Bytes", GAUGE, "Bytes used to store items: bytes."),
    Metric("UnusedMemory", "Bytes", GAUGE, "limit_maxbytes - bytes (memory not used by data, overhead aside)."),
    Metric("DatabaseMemoryUsagePercentage", "Percent", GAUGE,
           "100 * bytes / limit_maxbytes. ElastiCache publishes it for Valkey and Redis OSS, not for Memcached "
           "(which has UnusedMemory).", published=False),
    Metric("BytesReadIntoMemcached", "Bytes", COUNTER, "Bytes read from the network: the change in bytes_read."),
    Metric("BytesWrittenOutFromMemcached", "Bytes", COUNTER,
           "Bytes written to the network: the change in bytes_written."),
    Metric("CPUUtilization", "Percent", PERIOD,
           "Host-level on AWS: the percentage of the whole node's CPU (all vCPUs) in use. Locally the machine is "
           "shared, so it is the memcached process's share of it: the change in rusage_user + rusage_system "
           "divided by the elapsed seconds times the machine's CPU count."),
)

# Published for the primary node of a global datastore's secondary cluster, in the secondary's region.
GLOBAL_DATASTORE = _table(
    Metric("GlobalDatastoreReplicationLag", "Seconds", GAUGE,
           "The lag between the secondary region's primary node and the primary region's primary node (AWS's "
           "definition). Measured here as the time the secondary's primary takes to reach the replication offset "
           "(master_repl_offset) the primary had when asked; while the link is down, at least how long it has "
           "been down."),
)

DEFINITIONS = {"redis": REDIS, "memcached": MEMCACHED}
UNITS = {name: x.unit for table in (MEMCACHED, REDIS, GLOBAL_DATASTORE) for name, x in table.items()}


def describe(name: str, engine: str = "redis") -> str:
    """How this module computes a metric (and where it differs from what AWS measures)."""
    table = DEFINITIONS.get(engine, {})
    if name not in table:
        raise LabError(f"No {engine} metric named {name!r}. Known: {', '.join(sorted(table))}.")
    x = table[name]
    return f"{x.name} ({x.unit}, {x.kind}): {x.description}"


# --- the shared pieces --------------------------------------------------------------------------------

def counter_change(now: float, before: float | None) -> float:
    """The change of an engine counter over a period; after a reset (restart, CONFIG RESETSTAT), its new value."""
    if before is None:
        return now
    return now - before if now >= before else now


def cache_hit_rate(hits: float, misses: float) -> float:
    """CacheHitRate in percent (0-100) from a period's hits and misses; 0.0 when there were no lookups."""
    return 100.0 * hits / (hits + misses) if hits + misses else 0.0


def memory_usage_percentage(used: float, limit: float) -> float | None:
    """DatabaseMemoryUsagePercentage: 100 * used / limit, or None without a limit."""
    return 100.0 * used / limit if limit else None


def cpu_utilization(cpu_seconds: float, seconds: float) -> float:
    """CPU seconds used during `seconds` of CPU time available (wall time x cores), in percent (0-100)."""
    return min(100.0, max(0.0, 100.0 * cpu_seconds / seconds))


def engine_cpu_seconds(info: Mapping[str, Any]) -> float:
    """The engine's main-thread CPU seconds, user + system (the whole process on engines before Redis 6.2)."""
    if "used_cpu_user_main_thread" in info or "used_cpu_sys_main_thread" in info:
        return float(info.get("used_cpu_user_main_thread", 0)) + float(info.get("used_cpu_sys_main_thread", 0))
    return float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0))


# --- Redis ------------------------------------------------------------------------------------

def command_kinds(r: Any) -> dict[str, str]:
    """Each command's kind from COMMAND INFO flags: 'write', 'read' or 'other' (how Get/SetTypeCmds split)."""
    kinds: dict[str, str] = {}
    for name, doc in r.command().items():
        flags = {f.decode() if isinstance(f, bytes) else str(f) for f in doc.get("flags", [])}
        kinds[str(name).lower()] = "write" if "write" in flags else "read" if "readonly" in flags else "other"
    return kinds


def _calls(info: Mapping[str, Any], kinds: Mapping[str, str], kind: str) -> int:
    total = 0
    for key, stats in info.items():
        if key.startswith("cmdstat_") and isinstance(stats, Mapping):
            name = key[len("cmdstat_"):].split("|")[0]
            if kinds.get(name) == kind:
                total += int(stats.get("calls", 0))
    return total


def _keyspace(info: Mapping[str, Any], field_name: str) -> int:
    return sum(int(v.get(field_name, 0)) for k, v in info.items() if k.startswith("db") and isinstance(v, Mapping))


def redis_metrics(info: Mapping[str, Any], prev: Mapping[str, Any] | None = None, seconds: float | None = None,
                  kinds: Mapping[str, str] | None = None) -> dict[str, float]:
    """The metrics of `REDIS` from INFO (`r.info("everything")`), as ElastiCache computes them.

    With `prev` (an earlier INFO) and `seconds` between them, counters become per-period changes and
    the period metrics (EngineCPUUtilization, ReplicationBytes) are computed. Without `prev`, counters
    are totals since the server started (or since CONFIG RESETSTAT). GetTypeCmds and SetTypeCmds need
    `kinds` (from `command_kinds`).
    """
    def change(key: str) -> float:
        return counter_change(float(info.get(key, 0)), float(prev.get(key, 0)) if prev is not None else None)

    hits, misses = change("keyspace_hits"), change("keyspace_misses")
    out: dict[str, float] = {
        "CacheHits": hits,
        "CacheMisses": misses,
        "CacheHitRate": cache_hit_rate(hits, misses),
        "Evictions": change("evicted_keys"),
        "Reclaimed": change("expired_keys"),
        "CurrConnections": float(info.get("connected_clients", 0)),
        "NewConnections": change("total_connections_received"),
        "BytesUsedForCache": float(info.get("used_memory", 0)),
        "CurrItems": float(_keyspace(info, "keys")),
        "CurrVolatileItems": float(_keyspace(info, "expires")),
        "NetworkBytesIn": change("total_net_input_bytes"),
        "NetworkBytesOut": change("total_net_output_bytes"),
        "IsMaster": 1.0 if info.get("role") == "master" else 0.0,
    }
    usage = memory_usage_percentage(float(info.get("used_memory", 0)), float(info.get("maxmemory", 0) or 0))
    if usage is not None:
        out["DatabaseMemoryUsagePercentage"] = usage
    if prev is not None and seconds:
        cpu = counter_change(engine_cpu_seconds(info), engine_cpu_seconds(prev))
        out["EngineCPUUtilization"] = cpu_utilization(cpu, seconds)
    if kinds is not None:
        for name, kind in (("GetTypeCmds", "read"), ("SetTypeCmds", "write")):
            out[name] = counter_change(float(_calls(info, kinds, kind)),
                                       float(_calls(prev, kinds, kind)) if prev is not None else None)
    lag = replication_lag(info)
    if lag is not None:
        out["ReplicationLag"] = lag
    if info.get("role") == "master" and prev is not None:
        out["ReplicationBytes"] = change("master_repl_offset") if int(info.get("connected_slaves", 0)) else 0.0
    return out


def replication_lag(info: Mapping[str, Any]) -> float | None:
    """ReplicationLag from a replica's INFO, in seconds (None on a primary: AWS publishes it for replicas only).

    Link up: seconds since the replica last heard from its primary (master_last_io_seconds_ago).
    Link down (broken, or a sync in progress): the replica applies nothing, so it is at least as far
    behind as the outage is long: master_link_down_since_seconds, or, when Redis reports -1 (never
    in sync since this replica started), its uptime. The value keeps growing until the link is back.
    """
    if info.get("role") != "slave":
        return None
    if info.get("master_link_status") == "up":
        return max(0.0, float(info.get("master_last_io_seconds_ago", 0)))
    down = float(info.get("master_link_down_since_seconds", -1))
    return down if down >= 0 else max(0.0, float(info.get("uptime_in_seconds", 0)))


def replica_offset_lag(primary_info: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per replica, as the primary sees it: bytes not yet acknowledged and seconds since the last ACK."""
    out = {}
    for key, value in primary_info.items():
        if key.startswith("slave") and isinstance(value, Mapping):
            out[f"{value.get('ip')}:{value.get('port')}"] = {
                "bytes_behind": int(primary_info.get("master_repl_offset", 0)) - int(value.get("offset", 0)),
                "seconds_since_ack": int(value.get("lag", 0)),
            }
    return out


# --- Memcached ------------------------------------------------------------------------------------

def _stat(stats: Mapping[Any, Any], key: str) -> float:
    for k in (key, key.encode()):
        if k in stats:
            v = stats[k]
            return float(v.decode() if isinstance(v, bytes) else v)
    return 0.0


def memcached_metrics(stats: Mapping[Any, Any], prev: Mapping[Any, Any] | None = None,
                      seconds: float | None = None) -> dict[str, float]:
    """The metrics of `MEMCACHED` from the `stats` command (pymemcache's `client.stats()`)."""
    def change(key: str) -> float:
        return counter_change(_stat(stats, key), _stat(prev, key) if prev is not None else None)

    hits, misses = change("get_hits"), change("get_misses")
    used, limit = _stat(stats, "bytes"), _stat(stats, "limit_maxbytes")
    out = {
        "GetHits": hits, "GetMisses": misses, "CacheHitRate": cache_hit_rate(hits, misses),
        "CmdGet": change("cmd_get"), "CmdSet": change("cmd_set"), "Evictions": change("evictions"),
        "Reclaimed": change("reclaimed"),
        "CurrConnections": _stat(stats, "curr_connections"), "NewConnections": change("total_connections"),
        "CurrItems": _stat(stats, "curr_items"), "NewItems": change("total_items"),
        "BytesUsedForCacheItems": used,
        "BytesReadIntoMemcached": change("bytes_read"), "BytesWrittenOutFromMemcached": change("bytes_written"),
    }
    if limit:
        out["UnusedMemory"] = limit - used
    usage = memory_usage_percentage(used, limit)
    if usage is not None:
        out["DatabaseMemoryUsagePercentage"] = usage
    if prev is not None and seconds:
        cpu = counter_change(_stat(stats, "rusage_user") + _stat(stats, "rusage_system"),
                             _stat(prev, "rusage_user") + _stat(prev, "rusage_system"))
        out["CPUUtilization"] = cpu_utilization(cpu, seconds * (os.cpu_count() or 1))
    return out


# --- sampling ----------------------------------------------------------------------------------------

def restarted(before: Mapping[Any, Any], now: Mapping[Any, Any]) -> bool:
    """Is `now` from another engine process than `before` (restart, or a new node behind the same name)?"""
    if "run_id" in now or "run_id" in before:
        return before.get("run_id") != now.get("run_id")
    return _stat(before, "pid") != _stat(now, "pid") or _stat(now, "uptime") < _stat(before, "uptime")


class Readings:
    """Successive readings of one node (INFO or stats) -> the metrics of each period since the previous one.

    What `Sampler` and the control plane's CloudWatch publisher share: the first reading gives the
    gauges only (a counter's first value is a total since start, not a period's change).
    """

    def __init__(self, engine: str = "redis", kinds: Mapping[str, str] | None = None):
        if engine not in DEFINITIONS:
            raise LabError("engine must be 'redis' or 'memcached'.")
        self.engine, self.kinds = engine, kinds
        self.prev: Mapping[Any, Any] | None = None
        self.prev_t: float | None = None

    def add(self, reading: Mapping[Any, Any], t: float) -> dict[str, float]:
        """The metrics of the period that ends with this reading, taken at time `t` (seconds, monotonic)."""
        prev, seconds = self.prev, (max(t - self.prev_t, 1e-6) if self.prev_t is not None else None)
        if prev is not None and restarted(prev, reading):
            prev, seconds = None, None   # a new process: its counters start again, there is no period yet
        if self.engine == "redis":
            out = redis_metrics(reading, prev, seconds, self.kinds)
        else:
            out = memcached_metrics(reading, prev, seconds)
        if prev is None:
            table = DEFINITIONS[self.engine]
            out = {k: v for k, v in out.items() if table[k].kind == GAUGE}
        self.prev, self.prev_t = reading, t
        return out


def published(metrics: Mapping[str, float], engine: str = "redis") -> dict[str, float]:
    """The metrics ElastiCache publishes for this engine (drops those computed for the labs only)."""
    table = DEFINITIONS[engine]
    return {k: v for k, v in metrics.items() if k in table and table[k].published}


class Sampler:
    """Read INFO (or stats) now and again; each `sample()` returns the metrics of the interval since."""

    def __init__(self, client: Any, engine: str = "redis", clock: Callable[[], float] = time.monotonic):
        if engine not in DEFINITIONS:
            raise LabError("engine must be 'redis' or 'memcached'.")
        self.client, self.engine, self.clock = client, engine, clock
        self.kinds = command_kinds(client) if engine == "redis" else None
        self.readings = Readings(engine, self.kinds)
        self.readings.add(self._read(), self.clock())

    def _read(self) -> Mapping[str, Any]:
        if self.engine == "redis":
            return self.client.info(INFO_SECTION)
        return self.client.stats()

    def sample(self) -> dict[str, float]:
        return self.readings.add(self._read(), self.clock())


# --- CloudWatch --------------------------------------------------------------------------------------

def dimensions(cluster_id: str, node_id: str | None = "0001") -> list[dict[str, str]]:
    dims = [{"Name": "CacheClusterId", "Value": cluster_id}]
    if node_id:
        dims.append({"Name": "CacheNodeId", "Value": node_id})
    return dims


def publish(cw: Any, cluster_id: str, metrics: Mapping[str, float], node_id: str | None = "0001",
            timestamp: dt.datetime | None = None, namespace: str = NAMESPACE, high_resolution: bool = True) -> int:
    """put_metric_data for every metric (20 per call, the API's limit); returns how many were sent."""
    when = timestamp or dt.datetime.now(dt.timezone.utc)
    data = [{"MetricName": name, "Dimensions": dimensions(cluster_id, node_id), "Value": float(value),
             "Unit": UNITS.get(name, "None"), "Timestamp": when, **({"StorageResolution": 1} if high_resolution else {})}
            for name, value in metrics.items()]
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + 20])
    return len(data)


COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass
class Evaluation:
    alarm: str
    state: str
    reason: str
    values: list[float] = field(default_factory=list)
    breaching: int = 0
    notified: list[str] = field(default_factory=list)


def evaluate_alarm(cw: Any, name: str, now: dt.datetime | None = None, sns: Any = None) -> Evaluation:
    """Evaluate a metric alarm the way CloudWatch does, then set its state (and notify on change).

    The alarm goes to ALARM when at least DatapointsToAlarm of its last EvaluationPeriods periods
    breach the threshold, to OK when it has data that does not, and to INSUFFICIENT_DATA without data.
    """
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    if not alarms:
        raise LabError(f"No alarm named {name!r}. Create it with put_metric_alarm first.")
    a = alarms[0]
    period, n = int(a["Period"]), int(a["EvaluationPeriods"])
    needed = int(a.get("DatapointsToAlarm") or n)
    end = now or dt.datetime.now(dt.timezone.utc)
    start = end - dt.timedelta(seconds=period * n)
    stats = cw.get_metric_statistics(Namespace=a["Namespace"], MetricName=a["MetricName"],
                                     Dimensions=a.get("Dimensions", []), StartTime=start,
                                     EndTime=end + dt.timedelta(seconds=1), Period=period,
                                     Statistics=[a["Statistic"]])
    points = sorted(stats["Datapoints"], key=lambda p: p["Timestamp"])[-n:]
    values = [float(p[a["Statistic"]]) for p in points]
    compare = COMPARE.get(a["ComparisonOperator"])
    if compare is None:
        raise LabError(f"Comparison {a['ComparisonOperator']} is not supported by this evaluator.")
    breaching = sum(1 for v in values if compare(v, float(a["Threshold"])))
    if not values:
        state, reason = "INSUFFICIENT_DATA", f"No datapoints in the last {n} period(s) of {period} s."
    elif breaching >= needed:
        state = "ALARM"
        reason = (f"Threshold Crossed: {breaching} of the last {len(values)} datapoint(s) {values} "
                  f"{a['ComparisonOperator']} {a['Threshold']}.")
    else:
        state = "OK"
        reason = f"{breaching} of {len(values)} datapoint(s) {values} breach {a['Threshold']}; {needed} needed."
    result = Evaluation(alarm=name, state=state, reason=reason, values=values, breaching=breaching)
    if state != a["StateValue"]:
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason[:1023],
                           StateReasonData=json.dumps({"values": values, "threshold": a["Threshold"]}))
        actions = {"ALARM": a.get("AlarmActions", []), "OK": a.get("OKActions", []),
                   "INSUFFICIENT_DATA": a.get("InsufficientDataActions", [])}[state]
        for arn in actions:
            if ":sns:" in arn and sns is not None:
                sns.publish(TopicArn=arn, Subject=f'{state}: "{name}"',
                            Message=json.dumps({"AlarmName": name, "NewStateValue": state, "OldStateValue":
                                                a["StateValue"], "NewStateReason": reason}))
                result.notified.append(arn)
    return result


def statistics(cw: Any, cluster_id: str, metric: str, seconds: int = 300, period: int = 10,
               stat: str = "Average", node_id: str | None = "0001", namespace: str = NAMESPACE) -> list[tuple[Any, float]]:
    """(timestamp, value) pairs of one metric over the last `seconds`, read back from CloudWatch."""
    end = dt.datetime.now(dt.timezone.utc)
    res = cw.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions(cluster_id, node_id),
                                   StartTime=end - dt.timedelta(seconds=seconds), EndTime=end + dt.timedelta(seconds=1),
                                   Period=period, Statistics=[stat])
    return [(p["Timestamp"], float(p[stat])) for p in sorted(res["Datapoints"], key=lambda p: p["Timestamp"])]


# --- slow commands, latency, big and hot keys --------------------------------------------------------

def big_keys(r: Any, top: int = 5, match: str | None = None) -> list[tuple[str, int, str]]:
    """The `top` keys by MEMORY USAGE, found with SCAN (never KEYS): (key, bytes, type)."""
    sizes = []
    for key in r.scan_iter(match=match, count=500):
        size = r.memory_usage(key, samples=0)
        if size is not None:
            sizes.append((key, int(size)))
    sizes.sort(key=lambda kv: kv[1], reverse=True)
    return [(k, s, r.type(k)) for k, s in sizes[:top]]


def hot_keys(r: Any, top: int = 5, match: str | None = None) -> list[tuple[str, int]]:
    """The `top` keys by OBJECT FREQ (the LFU counter): needs an LFU maxmemory-policy."""
    policy = r.config_get("maxmemory-policy")["maxmemory-policy"]
    if "lfu" not in policy:
        raise LabError(f"OBJECT FREQ needs an LFU eviction policy (this server uses {policy}). "
                       "CONFIG SET maxmemory-policy allkeys-lfu, or use redis-cli --hotkeys on such a server.")
    freqs = [(k, int(r.object("freq", k))) for k in r.scan_iter(match=match, count=500)]
    freqs.sort(key=lambda kv: kv[1], reverse=True)
    return freqs[:top]


def redis_cli(svc: Any, *args: str, timeout: float = 60) -> str | None:
    """Run redis-cli against a lab service (no password on the command line); None if not installed."""
    import os
    import shutil
    import subprocess

    exe = shutil.which("redis-cli") or shutil.which("valkey-cli")
    if not exe:
        return None
    env = dict(os.environ)
    password = svc.password() if hasattr(svc, "password") else None
    if password:
        env["REDISCLI_AUTH"] = password  # read from the environment, never shown in `ps`
    proc = subprocess.run([exe, "-h", svc.host, "-p", str(svc.port), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    return proc.stdout + proc.stderr


def slowlog_entries(r: Any, n: int = 10) -> list[dict[str, Any]]:
    """SLOWLOG GET as plain rows: id, when, microseconds, command."""
    rows = []
    for e in r.slowlog_get(n):
        cmd = e.get("command", "")
        cmd = cmd.decode(errors="replace") if isinstance(cmd, bytes) else str(cmd)
        rows.append({"id": e["id"], "start_time": e["start_time"], "duration_us": int(e["duration"]), "command": cmd})
    return rows


def latency_latest(r: Any) -> dict[str, dict[str, int]]:
    """LATENCY LATEST: per event, the latest and the all-time max latency in ms."""
    out = {}
    for row in r.execute_command("LATENCY", "LATEST"):
        event = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
        out[event] = {"time": int(row[1]), "latest_ms": int(row[2]), "max_ms": int(row[3])}
    return out


def latency_history(r: Any, event: str) -> list[tuple[int, int]]:
    return [(int(t), int(ms)) for t, ms in r.execute_command("LATENCY", "HISTORY", event)]



def lookups(r: Any, prefix: str, hits: int, misses: int, keys: int = 1000) -> None:
    """Exactly `hits` GETs of keys that exist and `misses` GETs of keys that do not (pipelined).

    The `keys` keys prefix0..prefix{keys-1} are (re)written first, so the hits are guaranteed.
    """
    pipe = r.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(f"{prefix}{i}", i)
    for i in range(hits):
        pipe.get(f"{prefix}{i % keys}")
    for i in range(misses):
        pipe.get(f"{prefix}absent:{i}")
    pipe.execute()
