"""Serverless caches and their snapshots, backed by a real endpoint process and real engines.

Each serverless cache is a service `aws-sl-<name>` of the "serverless" topology
(helpers.runtime.serverless): a TLS endpoint (and reader endpoint on the next port) that presents a
one-shard cluster and spreads the data over engine processes it scales itself. This module keeps
the API's records, validates requests as AWS does, passes CacheUsageLimits and the user group's
users to the endpoint (limits.json, users.json), and turns the endpoint's own events
(scaling, availability) into the API's events. Snapshots are the keys' DUMP payloads, one file per
snapshot under the state directory; restoring loads them through the new cache's engines.
Engine memcached (1.6): the same service with the Memcached endpoint (helpers.runtime.serverless.memcached):
one endpoint, no users, snapshots of every item (key, flags, expiry, value), no export (AWS: Valkey and
Redis OSS only).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value
from helpers.aws.controlplane.models.base import NOT_INSTALLED, Backend, arn, check_id, now
from helpers.runtime import services, state
from helpers.runtime.state import LabError

SERVERLESS_ENGINES = ("valkey", "redis", "memcached")  # memcached: helpers/runtime/serverless/memcached.py
STORAGE_GB = (1, 5000)  # DataStorage Minimum/Maximum, GB (AWS: 1 GB to 5,000 GB)
ECPU_RANGE = (1000, 15_000_000)  # ECPUPerSecond Minimum/Maximum (AWS: 1,000 to 15,000,000)
# How much one local shard holds before the endpoint adds another (the labs watch it scale with a few MB).
BACKEND_BYTES_ENV = "ELASTICACHE_LAB_SERVERLESS_SHARD_BYTES"
GB_BYTES_ENV = "ELASTICACHE_LAB_SERVERLESS_GB_BYTES"  # what one "GB" of DataStorage holds here (tests)


@dataclass
class ServerlessCache:
    name: str
    engine: str
    major_version: str
    full_version: str
    description: str
    limits: dict[str, Any]
    security_group_ids: list[str]
    user_group_id: str | None
    snapshot_retention: int
    daily_snapshot_time: str
    kms_key_id: str | None
    subnet_ids: list[str]
    status: str = "creating"
    created: datetime = field(default_factory=now)
    port: int | None = None
    reader_port: int | None = None
    events_offset: int = 0

    @property
    def arn(self) -> str:
        return arn("serverlesscache", self.name)

    @property
    def service_name(self) -> str:
        return f"{ops.PREFIX}sl-{self.name}"


@dataclass
class ServerlessSnapshot:
    name: str
    cache_name: str
    engine: str
    major_version: str
    file: str
    status: str = "creating"
    size: int = 0
    kind: str = "manual"
    kms_key_id: str | None = None
    created: datetime = field(default_factory=now)

    @property
    def arn(self) -> str:
        return arn("serverlesscachesnapshot", self.name)


def _not_found(name: Any) -> ApiError:
    return ApiError(f"Serverless cache {name} not found.", "ServerlessCacheNotFoundFault")


def _snap_not_found(name: Any) -> ApiError:
    return ApiError(f"Serverless cache snapshot {name} not found.", "ServerlessCacheSnapshotNotFoundFault")



def _bounds(name: str, given: dict[str, Any], allowed: tuple[int, int], unit: str) -> dict[str, int]:
    """CacheUsageLimits.<name>'s Maximum and Minimum, each within AWS's range, the minimum not above the maximum."""
    out: dict[str, int] = {}
    for k in ("Maximum", "Minimum"):
        if given.get(k) is not None:
            v = int(given[k])
            if not allowed[0] <= v <= allowed[1]:
                raise invalid_value(f"CacheUsageLimits.{name}.{k} must be between {allowed[0]} and "
                                    f"{allowed[1]}{unit} (got {v}).")
            out[k] = v
    if "Maximum" in out and "Minimum" in out and out["Minimum"] > out["Maximum"]:
        raise invalid_combination(f"CacheUsageLimits.{name}.Minimum cannot be greater than Maximum.")
    return out


class ServerlessCaches(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.serverless: dict[str, ServerlessCache] = {}
        self.serverless_snapshots: dict[str, ServerlessSnapshot] = {}

    # --- validation ----------------------------------------------------------------------------
    def check_limits(self, limits: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        limits = limits or {}
        ds = limits.get("DataStorage")
        if ds:
            if ds.get("Unit") != "GB":
                raise invalid_value("Invalid value for CacheUsageLimits.DataStorage.Unit: the unit must be GB.")
            out["DataStorage"] = {"Unit": "GB", **_bounds("DataStorage", ds, STORAGE_GB, " GB")}
        if limits.get("ECPUPerSecond"):
            out["ECPUPerSecond"] = _bounds("ECPUPerSecond", limits["ECPUPerSecond"], ECPU_RANGE, "")
        return out

    def check_serverless_engine(self, engine: Any, major: Any) -> tuple[str, str, str]:
        from helpers.runtime import engines

        engine = str(engine or "").lower()
        if engine == "memcached":
            return self.check_serverless_memcached(major)
        if engine not in SERVERLESS_ENGINES:
            raise invalid_value(f"Invalid value for Engine: {engine}. Valid values: valkey, redis, memcached.")
        try:
            found = engines.find_engine(engine)
        except NOT_INSTALLED:  # not installed here
            raise invalid_value(f"Engine {engine} is not installed on this machine.") from None
        local_major = found.version.split(".")[0]
        if major and str(major) != local_major:
            raise invalid_combination(f"Cannot find major version {major} for {engine} on the local endpoint: this "
                                      f"machine runs {engine} {found.version}. Omit --major-engine-version or ask "
                                      f"for {local_major}.")
        return engine, local_major, found.version

    def check_serverless_memcached(self, major: Any) -> tuple[str, str, str]:
        """Serverless Memcached: major version 1.6 (AWS's only one), run by this machine's memcached 1.6.x."""
        from helpers.runtime import engines

        try:
            full = engines.binary_version(engines.find_binary("memcached")).split()[-1]
        except NOT_INSTALLED:  # not installed here
            raise invalid_value("Engine memcached is not installed on this machine.") from None
        local_major = ".".join(full.split(".")[:2])
        if major and str(major) != local_major:
            raise invalid_combination(f"Cannot find major version {major} for memcached: serverless Memcached "
                                      f"caches run Memcached {local_major}.")
        return "memcached", local_major, full

    def _users_for(self, group_id: str | None) -> list[dict[str, Any]]:
        if not group_id:
            return []
        group = self.get_user_group(group_id)  # type: ignore[attr-defined]
        out = []
        for uid in group.user_ids:
            u = self.users.get(uid)
            if u is None:
                continue
            out.append({"name": u.user_name, "passwords": list(u.passwords), "nopass": u.no_password,
                        "access": u.access_string, "on": u.status == "active"})
        return out

    def check_user_group(self, group_id: Any) -> str | None:
        if not group_id:
            return None
        group = self.get_user_group(str(group_id))  # type: ignore[attr-defined]  (UserGroupNotFound)
        if group.status not in ("active",):
            raise ApiError(f"User group {group_id} is {group.status}.", "InvalidUserGroupState")
        return group.group_id

    # --- lookups ---------------------------------------------------------------------------------
    def get_serverless(self, name: Any) -> ServerlessCache:
        with self.lock:
            found = self.serverless.get(str(name or "").lower())
        if found is None:
            raise _not_found(name)
        return found

    def get_serverless_snapshot(self, name: Any) -> ServerlessSnapshot:
        with self.lock:
            found = self.serverless_snapshots.get(str(name or ""))
        if found is None:
            raise _snap_not_found(name)
        return found

    def serverless_arn_checks(self) -> dict[str, Any]:
        return {"serverlesscache": self.get_serverless, "serverlesscachesnapshot": self.get_serverless_snapshot}

    # --- caches ----------------------------------------------------------------------------------
    def create_serverless_cache(self, name: Any, engine: Any, major_version: Any = None, description: str = "",
                                limits: dict[str, Any] | None = None, security_group_ids: list[str] | None = None,
                                user_group_id: Any = None, snapshot_retention: Any = None,
                                daily_snapshot_time: Any = None, kms_key_id: Any = None,
                                subnet_ids: list[str] | None = None, snapshot_arns: list[str] | None = None,
                                tags: dict[str, str] | None = None) -> ServerlessCache:
        ident = check_id(name, "ServerlessCacheName", 40)
        with self.lock:
            if ident in self.serverless:
                raise ApiError(f"Serverless cache {ident} already exists.", "ServerlessCacheAlreadyExistsFault")
        eng, major, full = self.check_serverless_engine(engine, major_version)
        lim = self.check_limits(limits)
        sgs = self.check_security_groups(security_group_ids)
        if eng == "memcached" and user_group_id:
            raise invalid_combination("UserGroupId is available for Valkey and Redis OSS only: a serverless "
                                      "Memcached cache has no users (access is by security group).")
        ug = self.check_user_group(user_group_id)
        retention = 0 if snapshot_retention is None else int(snapshot_retention)
        if not 0 <= retention <= 35:
            raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        restore_files = []
        for a in snapshot_arns or []:
            snap_name = str(a).rsplit(":", 1)[-1]
            snap = self.get_serverless_snapshot(snap_name)
            if snap.status != "available":
                raise ApiError(f"Serverless cache snapshot {snap_name} is {snap.status}.",
                               "InvalidServerlessCacheSnapshotStateFault")
            if (snap.engine == "memcached") != (eng == "memcached"):
                raise invalid_combination(f"Snapshot {snap_name} was taken from a {snap.engine} cache; it cannot "
                                          f"be restored into a {eng} cache.")
            if snap.engine == "valkey" and eng == "redis":
                raise invalid_combination(f"Snapshot {snap_name} was taken from a Valkey cache; it can be restored "
                                          "into a Valkey cache only (Redis OSS cannot read Valkey's format).")
            restore_files.append(snap.file)
        sc = ServerlessCache(ident, eng, major, full, str(description or ""), lim, sgs, ug, retention,
                             str(daily_snapshot_time or "03:00"), kms_key_id, list(subnet_ids or []))
        with self.lock:
            self.serverless[ident] = sc
        self.add_tags(sc.arn, tags)
        self.event(ident, "serverless-cache", f"Serverless cache {ident} is being created")
        self.background(f"create-serverless-{ident}", lambda: self._start_serverless(sc, restore_files),
                        lambda msg: self._serverless_failed(sc, msg))
        return sc

    def _start_serverless(self, sc: ServerlessCache, restore_files: list[str]) -> None:
        import os

        import helpers.runtime.serverless as sl

        workdir = state.service_dir(sc.service_name)
        sl.write_control(workdir, "limits.json", sc.limits)
        sl.write_control(workdir, "users.json", self._users_for(sc.user_group_id))
        opts: dict[str, Any] = {"engine": sc.engine, "restore_from": restore_files}
        if os.environ.get(BACKEND_BYTES_ENV):
            opts["backend_bytes"] = int(os.environ[BACKEND_BYTES_ENV])
        if os.environ.get(GB_BYTES_ENV):
            opts["gb_bytes"] = int(os.environ[GB_BYTES_ENV])
        svc = services.start("serverless", name=sc.service_name, **opts)
        sc.port, sc.reader_port = svc.nodes[0].port, svc.meta.get("reader_port")
        with self.lock:
            if sc.status == "creating":
                sc.status = "available"
        self.event(sc.name, "serverless-cache", f"Serverless cache {sc.name} is available")
        threading.Thread(target=self._watch_serverless, args=(sc,), name=f"serverless-{sc.name}",
                         daemon=True).start()

    def _serverless_failed(self, sc: ServerlessCache, msg: str) -> None:
        with self.lock:
            sc.status = "create-failed"
        self.event(sc.name, "serverless-cache", f"Serverless cache {sc.name} could not be created: {msg}")

    def _watch_serverless(self, sc: ServerlessCache) -> None:
        """The endpoint's own events (scaling) become the API's, while the cache lives."""
        while True:
            with self.lock:
                if self.serverless.get(sc.name) is not sc or sc.status in ("deleting", "deleted"):
                    return
            with contextlib.suppress(OSError, ValueError, LabError):
                svc = services.get(sc.service_name)
                if svc is not None:
                    self.pull_serverless_events(sc, svc)
            time.sleep(1.0)

    def pull_serverless_events(self, sc: ServerlessCache, svc: Any) -> None:
        import helpers.runtime.serverless as sl

        events, sc.events_offset = sl.events(svc, sc.events_offset)
        for e in events:
            msg = e.get("message", "")
            if " is available on " in msg:
                continue  # the API already said "is available"
            # The endpoint knows itself by its service's name (aws-sl-<name>); AWS's events name the cache.
            self.event(sc.name, "serverless-cache", msg.replace(sc.service_name, sc.name))

    def describe_serverless_caches(self, name: Any = None) -> list[ServerlessCache]:
        if name:
            return [self.get_serverless(name)]
        with self.lock:
            return list(self.serverless.values())

    def serverless_status(self, sc: ServerlessCache) -> dict[str, Any]:
        import helpers.runtime.serverless as sl

        svc = services.get(sc.service_name)
        return sl.status(svc) if svc else {}

    def modify_serverless_cache(self, name: Any, description: Any = None, limits: dict[str, Any] | None = None,
                                remove_user_group: Any = None, user_group_id: Any = None,
                                security_group_ids: list[str] | None = None, snapshot_retention: Any = None,
                                daily_snapshot_time: Any = None, engine: Any = None,
                                major_version: Any = None) -> ServerlessCache:
        import helpers.runtime.serverless as sl

        sc = self.get_serverless(name)
        if sc.status != "available":
            raise ApiError(f"Serverless cache {sc.name} is {sc.status}; it must be available to be modified.",
                           "InvalidServerlessCacheStateFault")
        if remove_user_group and user_group_id:
            raise invalid_combination("RemoveUserGroup and UserGroupId cannot be given together.")
        if engine and str(engine).lower() != sc.engine:
            raise invalid_combination(f"Changing the engine from {sc.engine} to {engine} is not available on the "
                                      "local endpoint (see docs/local-vs-aws.md).")
        if major_version and str(major_version) != sc.major_version:
            self.check_serverless_engine(sc.engine, major_version)
        changes = []
        lim = self.check_limits(limits) if limits is not None else None
        sgs = self.check_security_groups(security_group_ids) if security_group_ids is not None else None
        if sc.engine == "memcached" and user_group_id:
            raise invalid_combination("UserGroupId is available for Valkey and Redis OSS only.")
        ug = self.check_user_group(user_group_id) if user_group_id else None
        if snapshot_retention is not None and not 0 <= int(snapshot_retention) <= 35:
            raise invalid_value("SnapshotRetentionLimit must be between 0 and 35 days.")
        with self.lock:
            if description is not None:
                sc.description = str(description)
                changes.append("Description")
            if lim is not None:
                sc.limits = lim
                changes.append("CacheUsageLimits")
            if sgs is not None:
                sc.security_group_ids = sgs
                changes.append("SecurityGroupIds")
            if ug:
                sc.user_group_id = ug
                changes.append("UserGroupId")
            if remove_user_group:
                sc.user_group_id = None
                changes.append("UserGroupId")
            if snapshot_retention is not None:
                sc.snapshot_retention = int(snapshot_retention)
                changes.append("SnapshotRetentionLimit")
            if daily_snapshot_time:
                sc.daily_snapshot_time = str(daily_snapshot_time)
                changes.append("DailySnapshotTime")
        workdir = state.service_dir(sc.service_name)
        if "CacheUsageLimits" in changes:
            sl.write_control(workdir, "limits.json", sc.limits)
        if "UserGroupId" in changes:
            sl.write_control(workdir, "users.json", self._users_for(sc.user_group_id))
        if changes:
            self.event(sc.name, "serverless-cache", f"Serverless cache {sc.name} modified: {', '.join(changes)}")
        return sc

    def delete_serverless_cache(self, name: Any, final_snapshot: Any = None) -> ServerlessCache:
        sc = self.get_serverless(name)
        if sc.status not in ("available", "create-failed"):
            raise ApiError(f"Serverless cache {sc.name} is {sc.status}; it cannot be deleted now.",
                           "InvalidServerlessCacheStateFault")
        if final_snapshot:
            with self.lock:
                if str(final_snapshot) in self.serverless_snapshots:
                    raise ApiError(f"Serverless cache snapshot {final_snapshot} already exists.",
                                   "ServerlessCacheSnapshotAlreadyExistsFault")
            self._take_serverless_snapshot(sc, str(final_snapshot), {}, kind="manual")
        with self.lock:
            sc.status = "deleting"
        self.event(sc.name, "serverless-cache", f"Serverless cache {sc.name} is being deleted")

        def stop() -> None:
            self.stop_serverless_service(sc)
            with self.lock:
                self.serverless.pop(sc.name, None)
                self.tags.pop(sc.arn, None)
            self.event(sc.name, "serverless-cache", f"Serverless cache {sc.name} deleted")

        self.background(f"delete-serverless-{sc.name}", stop, lambda msg: None)
        return sc

    def stop_serverless_service(self, sc: ServerlessCache) -> None:
        import helpers.runtime.serverless as sl

        svc = services.get(sc.service_name)
        status = sl.status(svc) if svc else {}
        services.stop(sc.service_name)
        sl.stop_backends(state.service_dir(sc.service_name), status)

    # --- snapshots -------------------------------------------------------------------------------
    def _snapshot_dir(self) -> Path:
        d = state.home() / "aws-snapshots" / "serverless"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _take_serverless_snapshot(self, sc: ServerlessCache, name: str, tags: dict[str, str],
                                  kind: str = "manual") -> ServerlessSnapshot:
        """Every key's DUMP payload and TTL, read from each engine behind the endpoint."""
        svc = services.get(sc.service_name)
        if svc is None:
            raise ApiError(f"Serverless cache {sc.name} has no running endpoint.", "InvalidServerlessCacheStateFault")
        path = self._snapshot_dir() / f"{name}.jsonl"
        snap = ServerlessSnapshot(name, sc.name, sc.engine, sc.major_version, str(path), kind=kind)
        with self.lock:
            self.serverless_snapshots[name] = snap
        self.add_tags(snap.arn, tags)
        snap.size = self.dump_serverless(sc, svc, path)
        snap.status = "available"
        self.event(name, "serverless-cache-snapshot", f"Snapshot {name} of serverless cache {sc.name} created")
        return snap

    def dump_serverless(self, sc: ServerlessCache, svc: Any, path: Path) -> int:
        """Write every item of the cache to `path` (JSON lines, as snapshots hold them); returns the bytes."""
        import redis

        import helpers.runtime.serverless as sl

        password = Path(svc.meta["password_file"]).read_text().strip()
        size = 0
        with path.open("w") as fh:
            backends = sl.status(svc).get("backends", [])
            if sc.engine == "memcached":  # every item's key, flags, expiry and value (no DUMP in memcached)
                from helpers.runtime.serverless.memcached import dump_items

                for rec in (rec for b in backends for rec in dump_items(int(b["port"]))):
                    fh.write(json.dumps(rec) + "\n")
                    size += len(rec["k"]) + len(rec["v"]) // 2
                backends = []
            for b in backends:
                r = redis.Redis(host="127.0.0.1", port=int(b["port"]), password=password, socket_timeout=30)
                try:
                    for key in r.scan_iter(count=500):
                        payload = r.dump(key)
                        if payload is None:
                            continue
                        ttl = r.pttl(key)
                        fh.write(json.dumps({"k": key.decode("latin-1"), "ttl": ttl if ttl and ttl > 0 else 0,
                                             "v": payload.hex()}) + "\n")
                        size += len(key) + len(payload)
                finally:
                    r.close()
        return size

    def create_serverless_snapshot(self, name: Any, cache_name: Any, kms_key_id: Any = None,
                                   tags: dict[str, str] | None = None) -> ServerlessSnapshot:
        snap_name = check_id(name, "ServerlessCacheSnapshotName", 255)
        sc = self.get_serverless(cache_name)
        with self.lock:
            if snap_name in self.serverless_snapshots:
                raise ApiError(f"Serverless cache snapshot {snap_name} already exists.",
                               "ServerlessCacheSnapshotAlreadyExistsFault")
        if sc.status != "available":
            raise ApiError(f"Serverless cache {sc.name} is {sc.status}.", "InvalidServerlessCacheStateFault")
        snap = self._take_serverless_snapshot(sc, snap_name, tags or {})
        snap.kms_key_id = kms_key_id
        return snap

    def describe_serverless_snapshots(self, cache_name: Any = None, name: Any = None,
                                      kind: Any = None) -> list[ServerlessSnapshot]:
        if cache_name:
            self.get_serverless(cache_name)
        if name:
            snaps = [self.get_serverless_snapshot(name)]
        else:
            with self.lock:
                snaps = list(self.serverless_snapshots.values())
        return [s for s in snaps if (not cache_name or s.cache_name == str(cache_name).lower())
                and (not kind or s.kind == kind)]

    def delete_serverless_snapshot(self, name: Any) -> ServerlessSnapshot:
        snap = self.get_serverless_snapshot(name)
        if snap.status != "available":
            raise ApiError(f"Serverless cache snapshot {name} is {snap.status}.",
                           "InvalidServerlessCacheSnapshotStateFault")
        with self.lock:
            self.serverless_snapshots.pop(snap.name, None)
            self.tags.pop(snap.arn, None)
        with contextlib.suppress(OSError):
            Path(snap.file).unlink()
        snap.status = "deleting"
        self.event(snap.name, "serverless-cache-snapshot", f"Snapshot {snap.name} deleted")
        return snap

    def copy_serverless_snapshot(self, source: Any, target: Any, kms_key_id: Any = None,
                                 tags: dict[str, str] | None = None) -> ServerlessSnapshot:
        src = self.get_serverless_snapshot(source)
        name = check_id(target, "TargetServerlessCacheSnapshotName", 255)
        with self.lock:
            if name in self.serverless_snapshots:
                raise ApiError(f"Serverless cache snapshot {name} already exists.",
                               "ServerlessCacheSnapshotAlreadyExistsFault")
        path = self._snapshot_dir() / f"{name}.jsonl"
        shutil.copyfile(src.file, path)
        snap = ServerlessSnapshot(name, src.cache_name, src.engine, src.major_version, str(path), "available",
                                  src.size, "manual", kms_key_id or src.kms_key_id)
        with self.lock:
            self.serverless_snapshots[name] = snap
        self.add_tags(snap.arn, tags)
        return snap

    def export_serverless_snapshot(self, name: Any, bucket: Any) -> ServerlessSnapshot:
        """The snapshot's file into a bucket of the local S3 (moto's, same process): <name>.jsonl.

        AWS exports RDB files; here the file holds each key's DUMP payload (docs/local-vs-aws.md)."""
        snap = self.get_serverless_snapshot(name)
        if snap.status != "available":
            raise ApiError(f"Serverless cache snapshot {name} is {snap.status}.",
                           "InvalidServerlessCacheSnapshotStateFault")
        if snap.engine == "memcached":
            raise invalid_combination("ExportServerlessCacheSnapshot is available for Valkey and Redis OSS only "
                                      f"(snapshot {name} is of a Memcached cache).")
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import s3_backends

        from helpers.aws.controlplane.models.base import ACCOUNT

        backend = s3_backends[ACCOUNT]["aws"]
        try:
            backend.get_bucket(str(bucket))
        except MissingBucket:  # moto's MissingBucket
            raise invalid_value(f"The S3 bucket {bucket} does not exist (create it with s3 mb first).") from None
        backend.put_object(str(bucket), f"{snap.name}.jsonl", Path(snap.file).read_bytes())
        self.event(snap.name, "serverless-cache-snapshot", f"Snapshot {snap.name} exported to s3://{bucket}")
        return snap

    def serverless_expiry(self, snap: ServerlessSnapshot) -> datetime | None:
        sc = self.serverless.get(snap.cache_name)
        days = sc.snapshot_retention if sc else 0
        return snap.created + timedelta(days=days) if snap.kind == "automated" and days else None
