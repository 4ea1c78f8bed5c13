"""What every part of the control plane shares: names and limits, and the backend's core.

`Backend` holds the records in memory like moto's backends, with the tools every resource's module uses:
a lock, tags, lookups that raise the API's NotFound, background work that reports failures as events,
engine versions. Each resource's record (a plain dataclass) and its table (an attribute the resource's
mixin sets in __init__) live in the resource's own module: users.py, parameters.py, snapshots.py, events.py,
serverless.py, ...; the cache cluster's and the replication group's records, which most modules need, in
cluster_record.py and replication_record.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

from helpers.aws import catalogue
from helpers.aws.controlplane.errors import (
    ApiError,
    from_catalogue,
    invalid_combination,
    invalid_value,
    not_found,
)
from helpers.runtime.state import LabError

_T = TypeVar("_T")
# Called after anything may have changed a record (a request, the end of a background operation): the durable
# store (controlplane/store.py) registers itself here when the endpoint starts.
ON_CHANGE: list[Callable[[], None]] = []

log = logging.getLogger(__name__)

ACCOUNT = "123456789012"
ADMIN_USER = "elasticache-lab-admin"  # the control plane's own ACL user (AWS keeps one too)
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
# The weekly window a resource gets when none is asked for: AWS picks 60 minutes in a block of the region's
# (the AWS CLI's examples show sat:13:00-sat:14:00 in create-cache-cluster.rst and mon:17:30-mon:18:30 in
# describe-cache-clusters.rst); locally always this 60-minute one.
DEFAULT_MAINTENANCE_WINDOW = "sun:08:00-sun:09:00"
ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")

#: What asking for a local engine binary can raise: AWS's error for a version not installed (ApiError), the
#: lab's for an engine not found (LabError), and running `--version` failing (OSError, SubprocessError, or
#: an empty answer: IndexError).
NOT_INSTALLED = (ApiError, LabError, OSError, subprocess.SubprocessError, IndexError)


def availability_zones(region: str | None = None) -> list[str]:
    """A region's zones (the request's region by default), as the local EC2 API (moto's ec2 backend, same
    process) lists them."""
    region = region or request_region()
    fallback = [f"{region}{z[-1]}" for z in AZS]
    try:
        from moto.ec2.models import ec2_backends

        zones = [z.name for z in ec2_backends[ACCOUNT][region].describe_availability_zones()]
        return zones or fallback
    except (KeyError, ValueError):  # no EC2 model (or no such region): the zones the control plane places nodes in
        return fallback


def placement_zones(region: str) -> list[str]:
    """The zones a region's nodes are placed in, in turn: its first three (us-east-1: AZS)."""
    return availability_zones(region)[:len(AZS)]


def now() -> datetime:
    return datetime.now(timezone.utc)


def arn(kind: str, ident: str, region: str = "us-east-1") -> str:
    return f"arn:aws:elasticache:{region}:{ACCOUNT}:{kind}:{ident}"


_REQUEST = threading.local()  # the region of the request being answered (one endpoint serves every region)


def set_request_region(region: str | None) -> None:
    _REQUEST.region = region or "us-east-1"


def request_region() -> str:
    """The region the client named (boto3's region_name, the CLI's --region); us-east-1 by default."""
    return getattr(_REQUEST, "region", "us-east-1")


def check_id(value: Any, what: str, limit: int) -> str:
    """AWS's naming rule: a letter first, then letters/digits/hyphens, no '--', no trailing '-'."""
    if not value or not isinstance(value, str):
        raise invalid_value(f"The parameter {what} must be provided and must not be blank.")
    ident = value.lower()
    if len(ident) > limit or not ID_RE.match(ident) or "--" in ident or ident.endswith("-"):
        raise invalid_value(f"The parameter {what} is not a valid identifier. Identifiers must begin with a "
                            "letter; must contain only ASCII letters, digits, and hyphens; and must not end "
                            f"with a hyphen or contain two consecutive hyphens (at most {limit} characters).")
    return ident


class GroupDeleted(RuntimeError):
    """A process was to be started for a replication group that is being deleted (or is gone)."""


class Backend:
    """The control plane's shared state; the resource modules in this package add their tables and operations."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tags: dict[str, dict[str, str]] = {}
        self.threads: list[threading.Thread] = []

    # --- engines and versions: which local binary runs an engine version AWS offers ----------------
    # An AWS version (major.minor, e.g. valkey 8.1) runs on a local binary of the same engine and the same
    # major.minor (valkey-server 8.1.x), never on another; with no version asked, on the newest local
    # binary whose major.minor AWS offers. See docs/local-vs-aws.md ("Engines and versions").

    @staticmethod
    def local_engines(engine: str) -> list[Any]:
        """The installed binaries of a key-value engine (helpers.runtime.engines.Engine), newest first."""
        from helpers.runtime import engines

        found = engines.installed_engines(engine)
        return sorted(found, key=lambda e: _version_key(e.version), reverse=True)

    @staticmethod
    def local_version(engine: str) -> str:
        """The version of the binary that runs `engine` when no version is asked for."""
        from helpers.runtime import engines

        if engine == "memcached":
            return engines.binary_version(engines.find_binary("memcached")).split()[-1]
        return Backend.binary_for(engine, None).version

    @staticmethod
    def binary_for(engine: str, version: str | None) -> Any:
        """The local Engine (binary) that runs AWS's `engine` `version` (None: the default), or AWS's
        error shape with a sentence saying what is installed and what to install."""
        from helpers.runtime import engines

        offered = [v["EngineVersion"] for v in catalogue.engine_versions(engine)]
        local = Backend.local_engines(engine)
        if version:
            wanted = _minor(version)
            for e in local:
                if _minor(e.version) == wanted:
                    return e
        else:
            for e in local:
                if _minor(e.version) in offered:
                    return e
        have = ", ".join(f"{engines.TITLES[engine]} {e.version}" for e in local) or "none"
        what = f"{engines.TITLES[engine]} {version}" if version else f"a {engines.TITLES[engine]} version AWS offers"
        hint = _install_hint(engine, version)
        raise invalid_combination(f"{what} is not installed on this machine (installed: {have}). {hint} "
                                  "python -m helpers doctor lists the engines found.")

    def family(self, engine: str, version: str | None = None) -> str:
        """The parameter-group family of an engine version (the default version when None)."""
        if engine == "memcached":
            try:
                local = self.local_version("memcached")
            except NOT_INSTALLED:  # no engine installed: a plausible family keeps the API usable
                local = "1.6.0"
            return f"memcached{'.'.join(local.split('.')[:2])}"
        if version is None:
            try:
                version = self.binary_for(engine, None).version
            except NOT_INSTALLED:  # not installed: AWS's default version names the family
                version = catalogue.default_engine_version(engine)
        return catalogue.family_for(engine, _minor(version))

    def installed(self, engine: str, version: str) -> bool:
        """Whether an engine version AWS offers runs here: a local binary is that version (or a patch of it)."""
        if engine == "memcached":
            try:
                local = self.local_version(engine)
            except NOT_INSTALLED:  # engine not installed
                return False
            return local == version or local.startswith(version + ".")
        try:
            self.binary_for(engine, version)
        except NOT_INSTALLED:
            return False
        return True

    def check_engine(self, engine: Any, version: Any) -> tuple[str, str]:
        """(engine, the version the nodes run) for a create call, with AWS's errors.

        The versions come from the catalogue (catalogue.engine_versions): one AWS does not offer gets
        AWS's InvalidParameterCombination "Cannot find version X for <engine>"; one AWS offers that no
        local binary runs gets the same error shape with what to install. Engine left out: redis, as AWS.
        """
        engine = (engine or "redis").lower()
        if engine not in catalogue.engines():
            raise invalid_value(f"Invalid value for Engine: {engine}. Valid values: {', '.join(catalogue.engines())}.")
        version = str(version) if version else None
        if version:
            try:
                catalogue.engine_version(engine, version if engine == "memcached" else _minor(version))
            except catalogue.CatalogueError as err:
                if err.code == "InvalidParameterCombination":  # AWS names the version asked for, as asked
                    raise invalid_combination(f"Cannot find version {version} for {engine}") from None
                raise from_catalogue(err) from None
        if engine == "memcached":
            local = self.local_version(engine)
            if version and not self.installed(engine, version):
                raise invalid_combination(f"Cannot find version {version} for {engine} on the local endpoint: this "
                                          f"machine runs memcached {local}. Omit --engine-version or ask for "
                                          f"{'.'.join(local.split('.')[:2])}.")
            return engine, local
        return engine, self.binary_for(engine, version).version

    def engine_binary(self, engine: str, version: str) -> Any:
        """The local binary a resource of `engine` `version` (as recorded: the binary's version) runs."""
        for e in self.local_engines(engine):
            if e.version == version:
                return e
        return self.binary_for(engine, version)

    def check_engine_upgrade(self, engine: str, current: str, wanted: str | None) -> str:
        """The version a modify call moves to within an engine (the local binary's), with AWS's errors."""
        return self.check_engine_change(engine, current, wanted)[1]

    def check_engine_change(self, engine: str, current: str, wanted: str | None,
                            new_engine: str | None = None) -> tuple[str, str]:
        """(engine, version) a modify call moves to, with AWS's errors: no downgrades; Redis OSS -> Valkey
        (7.2 and later); back only Valkey 7.2 -> Redis OSS 7.1 on AWS, which no local binary runs."""
        target_engine = (new_engine or engine).lower()
        if target_engine != engine:
            if (engine, target_engine) == ("valkey", "redis"):
                # AWS rolls a Valkey 7.2 cache back to Redis OSS 7.1 only ("How to downgrade from Valkey to
                # Redis OSS", VersionManagement.HowTo.html, read 2026-11-27); 7.1 is ElastiCache's own build,
                # which no local binary runs, so the local API refuses every rollback, and says why.
                raise invalid_combination(f"Cannot change the engine from {engine} {current} to {target_engine}: "
                                          "ElastiCache rolls back only Valkey 7.2 to Redis OSS 7.1, which is "
                                          "ElastiCache's own build and runs on no local binary.")
            if (engine, target_engine) != ("redis", "valkey"):
                raise invalid_combination(f"Cannot change the engine from {engine} to {target_engine}: ElastiCache "
                                          "upgrades Redis OSS to Valkey only.")
            if not wanted:
                raise invalid_value("An upgrade from Redis OSS to Valkey needs EngineVersion (e.g. 8.0).")
        _, local = self.check_engine(target_engine, wanted)
        if target_engine == engine and _version_key(local) < _version_key(current):
            raise invalid_combination(f"Cannot downgrade {engine} from {current} to {wanted}: ElastiCache upgrades "
                                      "engine versions only.")
        return target_engine, local

    def check_node_type(self, node_type: Any) -> str:
        if not node_type:
            raise invalid_value("The parameter CacheNodeType must be provided and must not be null.")
        if not catalogue.is_valid_node_type(str(node_type)):
            raise invalid_value(f"Invalid CacheNodeType: {node_type}. Valid types are AWS's current generation, "
                                "e.g. cache.t4g.micro, cache.m7g.large, cache.r7g.large.")
        return str(node_type)

    def check_az(self, az: Any) -> str | None:
        """An Availability Zone of the request's region, as the local EC2 API lists them."""
        if not az:
            return None
        zones = availability_zones()
        if str(az) not in zones:
            raise invalid_value(f"Invalid Availability Zone: {az}. Zones of {request_region()}: {', '.join(zones)}.")
        return str(az)

    def check_security_groups(self, ids: list[str] | None) -> list[str]:
        """VPC security groups must exist in the local EC2 API (same process, moto's ec2 backend)."""
        ids = list(ids or [])
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[ACCOUNT]["us-east-1"]
        missing = [sg for sg in ids if backend.get_security_group_from_id(sg) is None]
        if missing:
            raise invalid_value(f"Some security group Id(s) are invalid: {', '.join(missing)}. Create them with the "
                                "local EC2 API (ec2 create-security-group) first.")
        return ids

    def add_tags(self, resource_arn: str, tags: dict[str, str] | None) -> None:
        if tags:
            with self.lock:
                self.tags.setdefault(resource_arn, {}).update(tags)

    def background(self, what: str, fn: Any, on_error: Any) -> None:
        """Run fn in a thread; on failure call on_error(message) so the resource shows what went wrong."""

        def run() -> None:
            try:
                fn()
            except Exception as exc:  # any failure is the resource's: its status and events say so
                log.exception("%s failed", what)
                on_error(str(exc) or type(exc).__name__)
            finally:
                self.changed()

        t = threading.Thread(target=run, name=f"controlplane-{what}", daemon=True)
        with self.lock:
            self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()

    @contextlib.contextmanager
    def starting_processes(self, g: Any) -> Iterator[None]:
        """Around code that starts processes for group g (a failed node or Sentinel started again): under the
        group's lock, a group being deleted, or gone, gets none (GroupDeleted); and its delete, which says
        `deleting` under the same lock, waits for the ones already under way (wait_starters) before it stops
        the group's processes, so what they started is stopped with the rest. g is a ReplicationGroup
        (models/replication_record.py imports this module, so it is not named here)."""
        with g.lock:
            if g.status in ("deleting", "deleted") or self.groups.get(g.group_id) is not g:
                raise GroupDeleted(f"replication group {g.group_id} is being deleted: nothing is started for it")
            g.starters += 1
        try:
            yield
        finally:
            with g.lock:
                g.starters -= 1

    @staticmethod
    def wait_starters(g: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while g.starters and time.monotonic() < deadline:
            time.sleep(0.05)
        if g.starters:
            log.warning("replication group %s: %d operation(s) still starting processes after %.0f s; deleting "
                        "it anyway", g.group_id, g.starters, timeout)

    def changed(self) -> None:
        """Records may have changed: tell the durable store (see ON_CHANGE)."""
        for hook in list(ON_CHANGE):
            hook()

    def _lookup(self, table: dict[str, _T], key: Any, kind: str, lower: bool = False) -> _T:
        """table[key] (ids are case-insensitive where AWS lowercases them), or the API's NotFound error."""
        wanted = str(key or "")
        with self.lock:
            found = table.get(wanted.lower() if lower else wanted)
        if found is None:
            raise not_found(kind, str(key))
        return found

    def _describe(self, wanted: Any, get: Callable[[Any], _T], table: dict[str, _T]) -> list[_T]:
        """A Describe* call: the one resource asked for (NotFound if unknown), else every one."""
        if wanted:
            return [get(wanted)]
        with self.lock:
            return list(table.values())

    def check_token(self, token: str, engine: str, tls: bool) -> None:
        if engine == "memcached":
            raise invalid_combination("AuthToken is only for Redis/Valkey.")
        if not tls:
            raise invalid_value("The AUTH token is only supported when encryption-in-transit is enabled "
                                "(add --transit-encryption-enabled).")
        if not 16 <= len(token) <= 128 or not all(32 < ord(c) < 127 for c in token) or set(token) & set("@\"/"):
            raise invalid_value("Invalid AuthToken: 16 to 128 printable characters, without spaces, '@', '\"' "
                                "or '/'.")

    def check_subnet_group(self, name: str | None) -> str | None:
        if not name:
            return None
        from moto.elasticache.models import elasticache_backends

        if name not in elasticache_backends[ACCOUNT]["us-east-1"].cache_subnet_groups:
            raise not_found("CacheSubnetGroup", name)
        return name


def _minor(version: str) -> str:
    """'9.1.2' -> '9.1' (AWS names Redis OSS / Valkey versions by major.minor)."""
    return ".".join(str(version).split(".")[:2])


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in str(version).split(".") if x.isdigit())


def _install_hint(engine: str, version: str | None) -> str:
    """What to install for an engine version AWS offers that no local binary runs."""
    from helpers.runtime import engines

    env = engines.BINARY_ENV[engine]
    if engine == "redis" and version and _minor(version) == "7.1":
        return ("Redis OSS 7.1 is ElastiCache's own build (no open-source release exists): ask for 7.0, or "
                f"set {env} to a Redis OSS 7.0 binary.")
    if engine == "valkey" and version and _minor(version) != "9.1":
        return (f"Install Valkey {_minor(version)} (Debian 12 bookworm-backports has 8.0, Debian 13 has 8.1; "
                f"Homebrew has the newest) and set {env} to its valkey-server (several paths separated by "
                f"'{os.pathsep}' offer several versions).")
    return f"To install it: {engines.install_hint(engine)}."
