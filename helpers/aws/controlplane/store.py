"""The control plane's durable store: every record of the local ElastiCache API, in one SQLite file.

AWS keeps a resource until it is deleted, so the lab keeps the control plane's records (cache clusters,
replication groups, users and user groups, parameter groups, snapshots, serverless caches, global
datastores, events, tags) in `controlplane.sqlite3` in the state directory (owner-only: users hold
passwords). The file is written as the records change: after every request that may change one
(api.guarded), when a background operation ends (Backend.background), and every few seconds for what
the recovery monitor changes; only the rows whose content changed are written. `install()` reads it back
before the endpoint answers its first request; restart.py then brings the engines back.

Records are dataclasses, written generically (dataclasses.fields, with the class's name and a format
version): a record read back ignores keys its class no longer has and gives fields it has gained their
default, so records written by an older version of the lab still load. What lives only in this process
(loopback forwarders, Auto Discovery listeners, callbacks, threads) is not written; a group's endpoint
ports are, so its endpoints keep their addresses when they can.

A file that is not a SQLite database, or whose rows cannot be read, is moved aside (`*.corrupt-<time>`)
with one warning line, as a damaged services.json is, and the endpoint starts empty.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from helpers.runtime import state

log = logging.getLogger(__name__)

FILENAME = "controlplane.sqlite3"
FORMAT = 1  # the version of the encoding below, written with every record
# The backend's tables (attributes of PLANE) that hold records; a table a backend lacks is skipped.
TABLES = ("param_groups", "users", "user_groups", "clusters", "groups", "snapshots", "events", "tags",
          "update_actions", "serverless", "serverless_snapshots", "global_groups",
          "reserved_nodes")
SAVE_EVERY = 2.0  # seconds between two looks for changes no request made (the recovery monitor's)
# The engines' data saved by a clean stop (one RDB file per shard), reloaded by the next start: see restart.py
SAVED_DATA = "aws-saved-data"

_DROP = object()  # a value that lives only in this process: not written
_LOCK = threading.Lock()
_written: dict[tuple[str, str], str] = {}  # (table, key) -> the body last written
ENDPOINT_PORTS: dict[str, dict[str, int]] = {}  # group id -> endpoint kind -> port, as last saved
DISCOVERY_PORTS: dict[str, int] = {}  # Memcached cluster id -> its configuration endpoint's port, as last saved
_enabled = False


def path() -> Path:
    return state.home() / FILENAME


# --- encoding -----------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """A JSON-able form of a record (or _DROP for what cannot outlive the process)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        out: dict[str, Any] = {"__dc__": f"{cls.__module__}:{cls.__qualname__}", "__v__": FORMAT}
        for f in dataclasses.fields(value):
            enc = encode(getattr(value, f.name))
            if enc is not _DROP:
                out[f.name] = enc
        return out
    if isinstance(value, (set, frozenset)):
        items = [encode(v) for v in value]
        return {"__set__": sorted((v for v in items if v is not _DROP), key=json.dumps)}
    if isinstance(value, tuple):
        return {"__tuple__": [v for v in (encode(x) for x in value) if v is not _DROP]}
    if isinstance(value, list):
        return [v for v in (encode(x) for x in value) if v is not _DROP]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: e for k, v in value.items() for e in [encode(v)] if e is not _DROP}
        return {"__items__": [[encode(k), e] for k, v in value.items() for e in [encode(v)] if e is not _DROP]}
    return _DROP  # forwarders, listeners, callbacks, locks: rebuilt by the process that reads the record


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__dt__" in value:
        return datetime.fromisoformat(value["__dt__"])
    if "__set__" in value:
        return {_hashable(decode(v)) for v in value["__set__"]}
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__items__"]}
    if "__dc__" in value:
        return _record(value)
    return {k: decode(v) for k, v in value.items()}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class UnknownRecord(ValueError):
    """A record whose class is gone (renamed or removed by a newer or older version): skipped, not fatal."""


_MODELS = "helpers.aws.controlplane.models."
# Records that models/base.py held before each moved to its resource's module: a store written then names them
# base:<class>, and they still load as the class of that name.
MOVED_FROM_BASE = ("Event", "User", "UserGroup", "ParameterGroup", "NodeSnapshot", "Snapshot", "CacheCluster",
                   "ReplicationGroup", "Member")


@functools.cache
def record_classes() -> dict[str, type]:
    """Every kind of record the store can read back: the dataclasses of the model's modules, by name."""
    from helpers.aws.controlplane.models import (
        base,
        cluster_record,
        events,
        global_datastore,
        lifecycle,
        parameters,
        replication_record,
        reserved,
        serverless,
        snapshots,
        users,
    )
    from helpers.runtime import engines

    found = {f"{c.__module__}:{c.__qualname__}": c
             for mod in (base, cluster_record, events, global_datastore, lifecycle, parameters, replication_record,
                         reserved, serverless, snapshots, users, engines)
             for c in vars(mod).values() if isinstance(c, type) and dataclasses.is_dataclass(c)}
    by_name = {name.partition(":")[2]: c for name, c in found.items() if name.startswith(_MODELS)}
    found.update({f"{_MODELS}base:{name}": by_name[name] for name in MOVED_FROM_BASE if name in by_name})
    return found


def _record(data: dict[str, Any]) -> Any:
    """A dataclass from its written form: unknown keys ignored, missing fields given their default
    (None when the field has none)."""
    cls = record_classes().get(str(data["__dc__"]))
    if cls is None:
        raise UnknownRecord(f"a record of a kind this version does not have ({data['__dc__']})")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            kwargs[f.name] = decode(data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None
    return cls(**kwargs)


# --- the file -----------------------------------------------------------------------------------

def _connect() -> sqlite3.Connection:
    p = path()
    if not p.exists():
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only before the first byte
    conn = sqlite3.connect(p, timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS records (tbl TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
                 "PRIMARY KEY (tbl, key))")
    return conn


def _rows(plane: Any) -> dict[tuple[str, str], str]:
    """Every record of the backend as (table, key) -> JSON body."""
    rows: dict[tuple[str, str], str] = {}
    with plane.lock:
        for tbl in TABLES:
            table = getattr(plane, tbl, None)
            if isinstance(table, list):
                items = [(json.dumps(i), v) for i, v in enumerate(table)]
            elif isinstance(table, dict):
                items = [(json.dumps(encode(k)), v) for k, v in table.items()]
                rows[("order", tbl)] = json.dumps([k for k, _ in items])  # describe lists them in this order
            else:
                continue
            for key, v in items:
                body = encode(v)
                if body is not _DROP:
                    rows[(tbl, key)] = json.dumps(body, sort_keys=True)
        for gid, g in getattr(plane, "groups", {}).items():
            ports = {kind: fwd.port for kind, fwd in getattr(g, "endpoints", {}).items() if getattr(fwd, "port", 0)}
            if ports:
                rows[("endpoint_ports", json.dumps(gid))] = json.dumps(ports, sort_keys=True)
        for cid, cc in getattr(plane, "clusters", {}).items():
            if getattr(getattr(cc, "discovery", None), "port", 0):
                rows[("discovery_ports", json.dumps(cid))] = json.dumps(cc.discovery.port)
    return rows


def save(plane: Any) -> None:
    """Write the records that changed since the last save (never raises: a failure is logged)."""
    if not _enabled:
        return
    try:
        with _LOCK:  # read and written in one go: a save never writes rows older than the last one's
            rows = _rows(plane)
            changed = {k: v for k, v in rows.items() if _written.get(k) != v}
            gone = [k for k in _written if k not in rows]
            if not changed and not gone:
                return
            conn = _connect()
            try:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO records (tbl, key, body) VALUES (?, ?, ?)",
                                     [(t, k, body) for (t, k), body in changed.items()])
                    conn.executemany("DELETE FROM records WHERE tbl = ? AND key = ?", gone)
            finally:
                conn.close()
            _written.update(changed)
            for k in gone:
                _written.pop(k, None)
    except (sqlite3.Error, OSError, TypeError, ValueError) as exc:  # the API keeps answering; the next change tries again
        log.warning("could not write the control plane's records to %s: %s", path(), exc)


def load(plane: Any) -> int:
    """Read the store into the backend (before the first request); returns how many records were read.

    A damaged file is moved aside with one warning line and the backend stays empty."""
    global _enabled
    _enabled = True
    p = path()
    if not p.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT tbl, key, body FROM records ORDER BY tbl, key").fetchall()
        finally:
            conn.close()
        tables: dict[str, list[tuple[Any, Any]]] = {}
        ports: dict[str, dict[str, int]] = {}
        discovery: dict[str, int] = {}
        order = {key: {k: i for i, k in enumerate(json.loads(body))} for tbl, key, body in rows if tbl == "order"}
        rows.sort(key=lambda row: (row[0], order.get(row[0], {}).get(row[1], len(rows)), row[1]))
        for tbl, key, body in rows:
            if tbl == "order":
                continue
            if tbl == "endpoint_ports":
                ports[json.loads(key)] = {str(k): int(v) for k, v in json.loads(body).items()}
            elif tbl == "discovery_ports":
                discovery[json.loads(key)] = int(json.loads(body))
            elif tbl in TABLES:
                try:
                    item = decode(json.loads(body))
                except UnknownRecord as exc:
                    log.warning("skipped %s %s of the store: %s", tbl, key, exc)
                    continue
                tables.setdefault(tbl, []).append((_hashable(decode(json.loads(key))), item))
    except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
        _set_aside(p, exc)
        return 0
    with plane.lock:
        for tbl, items in tables.items():
            table = getattr(plane, tbl, None)
            if isinstance(table, list):  # a list's keys are its positions
                table[:] = [v for _, v in sorted(items, key=lambda kv: int(kv[0]))]
            elif isinstance(table, dict):
                table.update(items)
    ENDPOINT_PORTS.clear()
    ENDPOINT_PORTS.update(ports)
    DISCOVERY_PORTS.clear()
    DISCOVERY_PORTS.update(discovery)
    with _LOCK:
        _written.clear()
        _written.update({(t, k): b for t, k, b in rows})
    return len(rows)


def _set_aside(p: Path, exc: Exception) -> None:
    why = "not a SQLite database" if isinstance(exc, sqlite3.DatabaseError) else f"a record could not be read: {exc}"
    with _LOCK:
        _written.clear()
    try:
        state.set_aside(p, why, "The local ElastiCache API started with no resources; engines its records named "
                                "are stopped (`python -m helpers status` lists what runs).")
    except (state.LabError, OSError) as err:  # a LabError sentence: the endpoint still starts, empty
        log.warning("%s", err)


def forget() -> None:
    """moto's reset: the records are gone, so is the file's content (the next save writes what is left)."""
    with _LOCK:
        _written.clear()
    with contextlib.suppress(FileNotFoundError):
        path().unlink()


def start_saver(plane: Any) -> None:
    """Save every few seconds what no request changed (the recovery monitor's failovers and events)."""
    def run() -> None:
        stop = threading.Event()
        while not stop.wait(SAVE_EVERY):
            save(plane)

    threading.Thread(target=run, name="controlplane-store", daemon=True).start()
