"""What the control plane does to the engines: start nodes, CONFIG SET, ACL SETUSER, BGSAVE, restore.

Everything here talks to real redis-server / memcached processes through real clients; the API
layer (models/) decides *when*, this module knows *how*.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from helpers.runtime import engines, services, state
from helpers.runtime.engines import Node
from helpers.runtime.state import LabError
from helpers.runtime.waiting import poll_until

log = logging.getLogger(__name__)

#: What talking to an engine the control plane runs can raise: an error reply or a lost, refused or timed-out
#: connection (RedisError), a socket or file error (OSError), a node the lab cannot start or find (LabError).
ENGINE_ERRORS = (RedisError, OSError, LabError)

PREFIX = "aws-"  # every engine the local ElastiCache API starts is a service named aws-...


# --- a Redis node with the options the API offers (auth token from a file, TLS) ------------------

def _tls() -> Any:
    try:
        from helpers.runtime import tls
    except ImportError as exc:  # pragma: no cover - depends on the security module being present
        raise LabError("Transit encryption needs helpers/runtime/tls.py (the lab's local certificate authority), "
                       "which is not installed in this checkout.") from exc
    return tls


@services.topology("aws-redis", "a Redis/Valkey node provisioned through the local ElastiCache API")
def _aws_redis(name: str, workdir: Path, config: dict[str, Any] | None = None, password_file: str | None = None,
               tls: bool = False, restore_rdb: str | None = None,
               port: int | None = None) -> tuple[list[Node], dict[str, Any]]:
    """One node; the AUTH token is read from an owner-only file, never from a command line."""
    engine = engines.kv_engine()  # the engine the control plane pinned for this request
    binary = engine.binary
    meta: dict[str, Any] = {**engine.meta(), "tls": tls}
    secret = Path(password_file).read_text().strip() if password_file else None
    if password_file:
        meta["password_file"] = password_file
    if restore_rdb:  # a node seeded from a snapshot loads the RDB file at start, as ElastiCache does
        shutil.copyfile(restore_rdb, workdir / "dump.rdb")
    conf = dict(config or {})
    probe = engines.probe_redis
    if tls:
        probe = _tls().probe_redis_tls

    def argv(port: int) -> list[str]:
        settings = dict(conf)
        if tls:
            settings.update(_tls().redis_tls_config(port, auth_clients="no"))
        return [binary, str(services.redis_conf(port, workdir, settings, secret))]

    node = engines.start_node(name=name, kind="redis", role="primary", argv_for_port=argv, workdir=workdir,
                              probe=probe, port=port)
    return [node], meta


def fresh_dir(name: str) -> None:
    """Remove what a deleted resource of the same name left behind (an old dump.rdb must not load)."""
    if services.get(name) is None:
        shutil.rmtree(state.home() / "services" / name, ignore_errors=True)


# --- clients --------------------------------------------------------------------------------------

def redis_conn(host: str, port: int, *, password: str | None = None, username: str | None = None,
               tls: bool = False, timeout: float = 10.0) -> Any:
    import redis

    kwargs: dict[str, Any] = {"host": host, "port": port, "password": password, "username": username,
                              "decode_responses": True, "socket_connect_timeout": 3, "socket_timeout": timeout}
    if tls:
        kwargs.update(_tls().redis_tls_client_kwargs(client_cert=False))
    return redis.Redis(**kwargs)


def refresh_roles(name: str) -> None:
    """Record the roles the engines of service `name` report now (after a failover). A node that does not
    answer keeps its recorded role: every describe reads the roles from the engines again anyway."""
    from helpers.runtime import topologies

    svc = services.get(name)
    if svc is None:
        return
    try:
        topologies.refresh_roles(svc)
    except ENGINE_ERRORS as exc:
        log.debug("could not re-read the roles of %s: %s", name, exc)


def data_nodes(svc: services.Service) -> list[Node]:
    return [n for n in svc.nodes if n.kind == "redis"]


def wait_ping(conn: Any, timeout: float = 20.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.ping()
            return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_replica_linked(conn: Any, name: str, timeout: float) -> None:
    """Until the node behind `conn` is no replica, or a replica whose link to its primary is up (ROLE):
    after a restart, a replica serves stale data until it has caught up."""

    def linked() -> bool:
        reply = conn.execute_command("ROLE")
        return reply[0] != "slave" or reply[3] == "connected"

    try:
        poll_until(linked, max(timeout, 0.0), what=f"{name}'s link to its primary", ignore=(*ENGINE_ERRORS, IndexError))
    except LabError as exc:
        raise RuntimeError(f"{name} did not catch up with its primary within {timeout:.0f} s") from exc


# --- parameters ----------------------------------------------------------------------------------

def config_set(conns: Iterable[Any], params: dict[str, str]) -> None:
    """Apply parameter values to running nodes (what ElastiCache does for dynamic parameters)."""
    for conn in conns:
        for key, value in params.items():
            conn.config_set(key, value)


# --- ACL users -----------------------------------------------------------------------------------

def acl_rules(access_string: str, passwords: list[str], no_password: bool) -> list[str]:
    """ACL SETUSER arguments for an ElastiCache user: its access string, then its passwords."""
    rules = ["reset", *access_string.split()]
    if no_password:
        rules.append("nopass")
    rules += [f">{p}" for p in passwords]
    return rules


def acl_setuser(conn: Any, name: str, rules: list[str]) -> None:
    conn.execute_command("ACL", "SETUSER", name, *rules)


def acl_deluser(conn: Any, name: str) -> None:
    with contextlib.suppress(RedisError):  # the user is gone already, or the node is: nothing to delete
        conn.execute_command("ACL", "DELUSER", name)


# --- snapshots -----------------------------------------------------------------------------------

def bgsave_to(conn: Any, target: Path, timeout: float = 60.0) -> int:
    """BGSAVE on a node, wait for it, copy its RDB file to `target`; returns the file's size."""
    before = conn.lastsave()
    try:
        conn.bgsave()
    except RedisError as exc:  # a save already running is fine: wait for it and take the next one
        if "in progress" not in str(exc).lower():
            raise
    deadline = time.monotonic() + timeout
    while True:
        info = conn.info("persistence")
        if not info.get("rdb_bgsave_in_progress") and conn.lastsave() != before:
            break
        if not info.get("rdb_bgsave_in_progress") and info.get("rdb_last_bgsave_status") == "ok" and \
                time.monotonic() > deadline - timeout + 1.5:
            # LASTSAVE has a one-second resolution: a save within the same second looks unchanged.
            break
        if time.monotonic() > deadline:
            raise LabError("BGSAVE did not finish in time.")
        time.sleep(0.05)
    if info.get("rdb_last_bgsave_status") != "ok":
        raise LabError("BGSAVE failed on the node; see its log.")
    folder = conn.config_get("dir")["dir"]
    filename = conn.config_get("dbfilename")["dbfilename"]
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(Path(folder) / filename, target)
    return target.stat().st_size


def restore_keys(rdb_files: list[Path], target: Any, scratch: str) -> int:
    """Load RDB files into a scratch node each, then DUMP/RESTORE every key into `target`.

    `target` may be a redis.Redis or a RedisCluster: this is how a snapshot of any shape is
    restored into a group of any shape (ElastiCache redistributes keys the same way).
    """
    moved = 0
    for i, rdb in enumerate(rdb_files):
        name = f"{scratch}-restore-{i}"
        fresh_dir(name)
        svc = services.start("aws-redis", name=name, restore_rdb=str(rdb))
        try:
            import redis

            raw = redis.Redis(host=svc.host, port=svc.port, decode_responses=False)
            for key in raw.scan_iter(count=500):
                dumped = raw.dump(key)
                if dumped is None:
                    continue
                ttl = raw.pttl(key)
                target.restore(key, max(ttl, 0), dumped, replace=True)
                moved += 1
            raw.close()
        finally:
            services.stop(name)
            shutil.rmtree(state.home() / "services" / name, ignore_errors=True)
    return moved
