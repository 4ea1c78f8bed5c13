"""The metrics ElastiCache publishes to CloudWatch, computed from the engines' own counters.

ElastiCache reads Redis's `INFO` and Memcached's `stats` once a minute and publishes them in the
`AWS/ElastiCache` namespace with the dimensions CacheClusterId and CacheNodeId. Counters (hits,
misses, evictions, commands, bytes) are published as the *change over the period*; gauges
(connections, memory, items) as their current value. `Sampler` does the same from two readings.

CloudWatch alarms in the local endpoint (moto) are stored but never evaluated on their own, so
`evaluate_alarm` does what CloudWatch does: fetch the statistic for the alarm's last periods,
compare with the threshold, set the state and notify the alarm's SNS topics.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime.state import LabError

NAMESPACE = "AWS/ElastiCache"

UNITS = {
    "CacheHits": "Count", "CacheMisses": "Count", "CacheHitRate": "Percent", "Evictions": "Count",
    "CurrConnections": "Count", "NewConnections": "Count", "DatabaseMemoryUsagePercentage": "Percent",
    "BytesUsedForCache": "Bytes", "ReplicationLag": "Seconds", "ReplicationBytes": "Bytes",
    "EngineCPUUtilization": "Percent", "CurrItems": "Count", "NetworkBytesIn": "Bytes",
    "NetworkBytesOut": "Bytes", "GetTypeCmds": "Count", "SetTypeCmds": "Count",
    # Memcached names
    "GetHits": "Count", "GetMisses": "Count", "CmdGet": "Count", "CmdSet": "Count",
    "BytesUsedForCacheItems": "Bytes", "BytesReadIntoMemcached": "Bytes", "BytesWrittenOutFromMemcached": "Bytes",
}


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


def _items(info: Mapping[str, Any]) -> int:
    return sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db") and isinstance(v, Mapping))


def redis_metrics(info: Mapping[str, Any], prev: Mapping[str, Any] | None = None, seconds: float | None = None,
                  kinds: Mapping[str, str] | None = None) -> dict[str, float]:
    """CloudWatch-style metrics from INFO ALL (`r.info("everything")`), as ElastiCache computes them.

    With `prev` (an earlier INFO) and `seconds` between them, counters become per-period deltas and
    EngineCPUUtilization is CPU seconds used / wall seconds. Without `prev`, counters are totals
    since the server started (or since CONFIG RESETSTAT).
    """
    def delta(key: str) -> float:
        now = float(info.get(key, 0))
        return now - float(prev.get(key, 0)) if prev is not None else now

    hits, misses = delta("keyspace_hits"), delta("keyspace_misses")
    out: dict[str, float] = {
        "CacheHits": hits,
        "CacheMisses": misses,
        "CacheHitRate": 100.0 * hits / (hits + misses) if hits + misses else 0.0,
        "Evictions": delta("evicted_keys"),
        "CurrConnections": float(info.get("connected_clients", 0)),
        "NewConnections": delta("total_connections_received"),
        "BytesUsedForCache": float(info.get("used_memory", 0)),
        "CurrItems": float(_items(info)),
        "NetworkBytesIn": delta("total_net_input_bytes"),
        "NetworkBytesOut": delta("total_net_output_bytes"),
    }
    maxmemory = float(info.get("maxmemory", 0))
    if maxmemory:
        out["DatabaseMemoryUsagePercentage"] = 100.0 * float(info.get("used_memory", 0)) / maxmemory
    if prev is not None and seconds:
        cpu = delta("used_cpu_sys") + delta("used_cpu_user")
        out["EngineCPUUtilization"] = max(0.0, 100.0 * cpu / seconds)
    if kinds is not None:
        for name, kind in (("GetTypeCmds", "read"), ("SetTypeCmds", "write")):
            now = _calls(info, kinds, kind)
            out[name] = float(now - (_calls(prev, kinds, kind) if prev is not None else 0))
    lag = replication_lag(info)
    if lag is not None:
        out["ReplicationLag"] = lag
    if info.get("role") == "master" and prev is not None:
        out["ReplicationBytes"] = delta("master_repl_offset") if int(info.get("connected_slaves", 0)) else 0.0
    return out


def replication_lag(info: Mapping[str, Any]) -> float | None:
    """Seconds a replica is behind, from a replica's INFO (None on a primary).

    ElastiCache's ReplicationLag is published for replicas only. A replica that hears nothing from
    its primary for N seconds is at least N seconds behind (master_last_io_seconds_ago); a broken link
    counts from when it went down.
    """
    if info.get("role") != "slave":
        return None
    if info.get("master_link_status") != "up":
        return float(info.get("master_link_down_since_seconds", -1))
    return float(info.get("master_last_io_seconds_ago", 0))


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
    """ElastiCache's Memcached metrics from the `stats` command (pymemcache's `client.stats()`)."""
    def delta(key: str) -> float:
        return _stat(stats, key) - (_stat(prev, key) if prev is not None else 0.0)

    hits, misses = delta("get_hits"), delta("get_misses")
    out = {
        "GetHits": hits, "GetMisses": misses,
        "CacheHitRate": 100.0 * hits / (hits + misses) if hits + misses else 0.0,
        "CmdGet": delta("cmd_get"), "CmdSet": delta("cmd_set"), "Evictions": delta("evictions"),
        "CurrConnections": _stat(stats, "curr_connections"), "NewConnections": delta("total_connections"),
        "CurrItems": _stat(stats, "curr_items"), "BytesUsedForCacheItems": _stat(stats, "bytes"),
        "BytesReadIntoMemcached": delta("bytes_read"), "BytesWrittenOutFromMemcached": delta("bytes_written"),
    }
    if _stat(stats, "limit_maxbytes"):
        out["DatabaseMemoryUsagePercentage"] = 100.0 * _stat(stats, "bytes") / _stat(stats, "limit_maxbytes")
    if prev is not None and seconds:
        cpu = delta("rusage_user") + delta("rusage_system")
        out["CPUUtilization"] = max(0.0, 100.0 * cpu / seconds)
    return out


# --- sampling ----------------------------------------------------------------------------------------

class Sampler:
    """Read INFO (or stats) now and again; each `sample()` returns the metrics of the interval since."""

    def __init__(self, client: Any, engine: str = "redis"):
        if engine not in ("redis", "memcached"):
            raise LabError("engine must be 'redis' or 'memcached'.")
        self.client, self.engine = client, engine
        self.kinds = command_kinds(client) if engine == "redis" else None
        self.prev, self.prev_t = self._read(), time.monotonic()

    def _read(self) -> Mapping[str, Any]:
        if self.engine == "redis":
            return self.client.info("everything")
        return self.client.stats()

    def sample(self) -> dict[str, float]:
        now, t = self._read(), time.monotonic()
        seconds = max(t - self.prev_t, 1e-6)
        if self.engine == "redis":
            out = redis_metrics(now, self.prev, seconds, self.kinds)
        else:
            out = memcached_metrics(now, self.prev, seconds)
        self.prev, self.prev_t = now, t
        return out


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
