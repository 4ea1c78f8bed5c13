"""Log delivery: the slow log and the engine log of every node, shipped to CloudWatch Logs.

As AWS documents it ("Log delivery", "ElastiCache logging destinations", LogDeliveryConfiguration in the
API Reference; read 2026-12-07): LogDeliveryConfigurations on CreateReplicationGroup, ModifyReplicationGroup,
CreateCacheCluster and ModifyCacheCluster turn on delivery of the slow log (`slow-log`, SLOWLOG entries) or
the engine log (`engine-log`) of every node, in JSON or TEXT, to a CloudWatch Logs log group, one log stream
per node named `elasticache/${engine-name}/${cache-cluster-id}/${cache-node-id}/${log-type}`. Describe shows
each configuration's Status: enabling, then active; disabling once turned off, then gone. Every change
needs ApplyImmediately.

Locally the log group is moto's CloudWatch Logs in this same process, so `aws logs get-log-events` (or
boto3's logs client) against the local endpoint reads what was shipped. A shipper thread reads every
interval() seconds (ELASTICACHE_LAB_LOG_INTERVAL, default 1; AWS: "periodically") each node's new
SLOWLOG entries (by their id) and the new lines of its engine log file, formats them as AWS does, and puts
them into the node's log stream. A Kinesis Data Firehose destination is refused (docs/local-vs-aws.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import invalid_combination, invalid_value
from helpers.aws.controlplane.models.base import ACCOUNT, Backend
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import services

log = logging.getLogger(__name__)

LOG_TYPES = ("slow-log", "engine-log")
FORMATS = ("text", "json")
DESTINATIONS = ("cloudwatch-logs", "kinesis-firehose")
INTERVAL_ENV = "ELASTICACHE_LAB_LOG_INTERVAL"
SLOWLOG_FETCH = 128  # entries read per node and pass (AWS: "a fixed number ... retrieved periodically")
FIREHOSE = ("Log delivery to Kinesis Data Firehose is not modelled on the local endpoint; deliver to CloudWatch "
            "Logs (DestinationType cloudwatch-logs), which the local endpoint serves (see docs/local-vs-aws.md).")
# An engine log line: "<pid>:<role> 07 Dec 2026 06:40:01.123 <level> <message>"
ENGINE_LINE = re.compile(r"^\d+:([MSCX]) (\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) ([.\-*#]) (.*)$")
LEVELS = {"-": "VERBOSE", "*": "NOTICE", "#": "WARNING"}  # "." (debug) is never delivered


def interval() -> float:
    try:
        return max(0.1, float(os.environ.get(INTERVAL_ENV, "1")))
    except ValueError:
        return 1.0


def parse_requests(raw: Any, engine: str, version: str) -> list[dict[str, Any]]:
    """LogDeliveryConfigurationRequest items, checked as AWS checks them; each as {LogType, DestinationType,
    DestinationDetails, LogFormat, Enabled}."""
    if not raw:
        return []
    if engine == "memcached":
        raise invalid_combination("Log delivery is for Valkey and Redis OSS; Memcached has no slow or engine log.")
    out: list[dict[str, Any]] = []
    for item in raw if isinstance(raw, list) else [raw]:
        item = dict(item or {})
        kind = item.get("LogType")
        if kind not in LOG_TYPES:
            raise invalid_value(f"Invalid value for LogType: {kind}. Valid values: slow-log, engine-log.")
        if any(o["LogType"] == kind for o in out):
            raise invalid_combination(f"LogType {kind} is given more than once.")
        enabled = str(item.get("Enabled", True)).lower() not in ("false", "0")
        if engine == "redis" and _version(version) < ((6, 0) if kind == "slow-log" else (6, 2)):
            raise invalid_combination(f"{'Slow' if kind == 'slow-log' else 'Engine'} log delivery needs Redis OSS "
                                      f"{'6.0' if kind == 'slow-log' else '6.2'} or later (this is {version}).")
        req: dict[str, Any] = {"LogType": kind, "Enabled": enabled}
        if enabled:
            dest, fmt = item.get("DestinationType"), item.get("LogFormat")
            if dest not in DESTINATIONS:
                raise invalid_value(f"Invalid value for DestinationType: {dest}. Valid values: cloudwatch-logs, "
                                    "kinesis-firehose.")
            if dest == "kinesis-firehose":
                raise invalid_value(FIREHOSE)
            if fmt not in FORMATS:
                raise invalid_value(f"Invalid value for LogFormat: {fmt}. Valid values: text, json.")
            group = ((item.get("DestinationDetails") or {}).get("CloudWatchLogsDetails") or {}).get("LogGroup")
            if not group:
                raise invalid_value("DestinationDetails.CloudWatchLogsDetails.LogGroup is required for the "
                                    "cloudwatch-logs destination.")
            req.update(DestinationType=dest, LogFormat=fmt,
                       DestinationDetails={"CloudWatchLogsDetails": {"LogGroup": str(group)}})
        out.append(req)
    return out


def _version(text: str) -> tuple[int, int]:
    parts = [int(p) for p in str(text).split(".")[:2] if p.isdigit()]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def shown(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LogDeliveryConfigurations as describe shows them."""
    keys = ("LogType", "DestinationType", "DestinationDetails", "LogFormat", "Status", "Message")
    return [{k: c[k] for k in keys if c.get(k) is not None} for c in configs]


# --- the entries, in AWS's formats ---------------------------------------------------------------

def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


MORE_ARGS = re.compile(r"^\.\.\. \((\d+) more arguments\)$")  # the engine's own cut after 32 arguments


def slow_command(args: list[Any]) -> str:
    """A slow log entry's command with its arguments hidden, as ElastiCache shows it: "GET ... (1 more arguments)"."""
    words = [_text(a) for a in args]
    if not words:
        return ""
    more = len(words) - 1
    cut = MORE_ARGS.match(words[-1]) if len(words) > 1 else None
    if cut:
        more += int(cut.group(1)) - 1
    return words[0] if more == 0 else f"{words[0]} ... ({more} more arguments)"


def slowlog(conn: Any, count: int) -> list[dict[str, Any]]:
    """SLOWLOG GET, unparsed by the client: [{id, start_time, duration, args, client_address, client_name}]."""
    out = []
    for item in conn.execute_command("SLOWLOG", "GET", count):
        out.append({"id": int(item[0]), "start_time": int(item[1]), "duration": int(item[2]),
                    "args": list(item[3]), "client_address": _text(item[4]) if len(item) > 4 else "",
                    "client_name": _text(item[5]) if len(item) > 5 else ""})
    return out


def slow_entry(cluster_id: str, node_id: str, entry: dict[str, Any], fmt: str) -> str:
    """One SLOWLOG entry in AWS's JSON or TEXT format (the Log delivery page's example)."""
    command = slow_command(entry["args"])
    if fmt == "json":
        return json.dumps({"CacheClusterId": cluster_id, "CacheNodeId": node_id, "Id": entry["id"],
                           "Timestamp": entry["start_time"], "Duration (us)": entry["duration"],
                           "Command": command, "ClientAddress": entry["client_address"],
                           "ClientName": entry["client_name"]})
    return ",".join([cluster_id, node_id, str(entry["start_time"]), str(entry["duration"]), command,
                     entry["client_address"], entry["client_name"]])


def engine_entry(cluster_id: str, node_id: str, line: str, fmt: str) -> tuple[float, str] | None:
    """(time, entry) of one engine log line in AWS's format, or None for a line that is no entry (a banner,
    a debug line)."""
    m = ENGINE_LINE.match(line.rstrip("\n"))
    if not m or m.group(3) not in LEVELS:
        return None
    role, stamp, level, message = m.group(1), m.group(2), LEVELS[m.group(3)], m.group(4)
    when = dt.datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f")
    if fmt == "json":
        text = json.dumps({"CacheClusterId": cluster_id, "CacheNodeId": node_id, "LogLevel": level,
                           "Role": role, "Timestamp": f"{stamp} UTC", "Message": message})
    else:
        text = ",".join([cluster_id, node_id, level, f"{stamp} UTC", role, message])
    return when.replace(tzinfo=dt.timezone.utc).timestamp(), text


def stream_name(engine: str, cluster_id: str, node_id: str, log_type: str) -> str:
    return f"elasticache/{engine}/{cluster_id}/{node_id}/{log_type}"


class LogDelivery(Backend):
    _shipper: threading.Thread | None = None

    # --- configuration -----------------------------------------------------------------------------
    def request_log_delivery(self, res: ReplicationGroup | CacheCluster, requests: list[dict[str, Any]],
                             apply_immediately: bool = True) -> None:
        """Record a create or modify request's configurations: enabling (or disabling) until applied."""
        if not requests:
            return
        if not apply_immediately:
            raise invalid_combination("Log delivery changes must be applied immediately: give ApplyImmediately.")
        by_type = {c["LogType"]: c for c in res.log_delivery}
        for req in requests:
            now = by_type.get(req["LogType"])
            if not req["Enabled"]:
                if now is not None:
                    now["Status"] = "disabling"
                continue
            new = {k: v for k, v in req.items() if k != "Enabled"}
            new["Status"] = "modifying" if now is not None else "enabling"
            by_type[req["LogType"]] = new
        res.log_delivery = [by_type[t] for t in LOG_TYPES if t in by_type]

    def apply_log_delivery(self, res: ReplicationGroup | CacheCluster) -> None:
        """The configurations take effect: delivery starts from the nodes' present state (entries already in
        a node's slow log or engine log are not sent), or stops."""
        for c in list(res.log_delivery):
            if c["Status"] == "disabling":
                res.log_delivery.remove(c)
                for key in [k for k in res.log_cursors if k.endswith("/" + c["LogType"])]:
                    res.log_cursors.pop(key, None)
                continue
            if c["Status"] in ("enabling", "modifying"):
                try:
                    self._log_group(res, c)
                    for ident, node_id, conn, path in self._log_nodes(res):
                        self._start_cursor(res, c["LogType"], ident, node_id, conn, path)
                    c["Status"] = "active"
                    c.pop("Message", None)
                except ops.ENGINE_ERRORS as exc:
                    c["Status"], c["Message"] = "error", str(exc)
        if any(c["Status"] == "active" for c in res.log_delivery):
            self.ensure_log_shipper()

    def _log_group(self, res: ReplicationGroup | CacheCluster, c: dict[str, Any]) -> Any:
        """The destination log group in moto's CloudWatch Logs (made when missing)."""
        from moto.logs.models import logs_backends

        backend = logs_backends[ACCOUNT][res.region]
        name = c["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"]
        if name not in backend.groups:
            backend.create_log_group(name, {})
        return backend

    def _log_nodes(self, res: ReplicationGroup | CacheCluster) -> list[tuple[str, str, Any, Path]]:
        """(cache cluster id, cache node id, admin connection, engine log file) of each data node."""
        out = []
        if isinstance(res, ReplicationGroup):
            svc = services.get(res.service_name)
            for n in ops.data_nodes(svc) if svc else []:
                member = res.member_ids.get(n.name)
                if member and n.alive():
                    out.append((member, "0001", self._admin(res, svc, n), Path(n.log)))  # type: ignore[attr-defined]
        else:
            svc = services.get(res.service_name())
            if svc and svc.nodes and svc.nodes[0].alive():
                node = svc.nodes[0]
                out.append((res.cluster_id, "0001", self._cluster_conn(res, node), Path(node.log)))  # type: ignore[attr-defined]
        return out

    @staticmethod
    def _start_cursor(res: Any, kind: str, ident: str, node_id: str, conn: Any, path: Path) -> None:
        key = f"{ident}/{node_id}/{kind}"
        if key in res.log_cursors:
            return
        if kind == "slow-log":
            entries = slowlog(conn, 1)
            res.log_cursors[key] = entries[0]["id"] if entries else -1
        else:
            res.log_cursors[key] = path.stat().st_size if path.exists() else 0

    # --- shipping ------------------------------------------------------------------------------------
    def ensure_log_shipper(self) -> None:
        with self.lock:
            if self._shipper is not None and self._shipper.is_alive():
                return
            self._shipper = threading.Thread(target=self._ship_forever, name="controlplane-logs", daemon=True)
            self._shipper.start()

    def _ship_forever(self) -> None:
        stop = threading.Event()
        while not stop.wait(interval()):
            with self.lock:
                resources = [r for r in [*self.groups.values(), *self.clusters.values()]
                             if any(c.get("Status") == "active" for c in getattr(r, "log_delivery", []))]
            if not resources and not self._pending_delivery():
                with self.lock:
                    self._shipper = None
                return
            for res in resources:
                try:
                    self.ship_logs(res)
                except Exception as exc:  # the shipper must outlive any one resource's failure
                    log.warning("log delivery of %s failed: %s", getattr(res, "group_id", None) or res.cluster_id,
                                exc, exc_info=True)

    def _pending_delivery(self) -> bool:
        with self.lock:
            return any(c.get("Status") in ("enabling", "modifying") for r in [*self.groups.values(),
                       *self.clusters.values()] for c in getattr(r, "log_delivery", []))

    def ship_logs(self, res: ReplicationGroup | CacheCluster) -> int:
        """Put each node's new entries into its log streams; returns how many were put."""
        if res.status not in ("available", "modifying"):
            return 0
        sent = 0
        for c in [c for c in res.log_delivery if c.get("Status") == "active"]:
            backend = self._log_group(res, c)
            group = c["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"]
            for ident, node_id, conn, path in self._log_nodes(res):
                key = f"{ident}/{node_id}/{c['LogType']}"
                with contextlib.suppress(*ops.ENGINE_ERRORS, OSError):
                    self._start_cursor(res, c["LogType"], ident, node_id, conn, path)  # a node added since
                    events = self._new_events(res, c, key, ident, node_id, conn, path)
                    if events:
                        stream = stream_name(res.engine, ident, node_id, c["LogType"])
                        if stream not in backend.groups[group].streams:
                            backend.create_log_stream(group, stream)
                        backend.put_log_events(group, stream, events)
                        sent += len(events)
        return sent

    @staticmethod
    def _new_events(res: Any, c: dict[str, Any], key: str, ident: str, node_id: str, conn: Any,
                    path: Path) -> list[dict[str, Any]]:
        """The entries of one node since its cursor, as CloudWatch Logs events (time-ordered); moves the cursor."""
        events: list[tuple[float, str]] = []
        if c["LogType"] == "slow-log":
            last = int(res.log_cursors.get(key, -1))
            entries = [e for e in slowlog(conn, SLOWLOG_FETCH) if e["id"] > last]
            for e in sorted(entries, key=lambda e: e["id"]):
                events.append((float(e["start_time"]), slow_entry(ident, node_id, e, c["LogFormat"])))
                last = max(last, e["id"])
            res.log_cursors[key] = last
        else:
            offset = int(res.log_cursors.get(key, 0))
            size = path.stat().st_size if path.exists() else 0
            if size < offset:  # a new log file (the node restarted with a fresh one)
                offset = 0
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(size - offset)
            whole = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next pass
            for line in whole.decode(errors="replace").splitlines():
                entry = engine_entry(ident, node_id, line, c["LogFormat"])
                if entry:
                    events.append(entry)
            res.log_cursors[key] = offset + len(whole)
        return [{"timestamp": int(t * 1000), "message": text} for t, text in sorted(events, key=lambda e: e[0])]
