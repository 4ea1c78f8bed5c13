"""A started service (its nodes and what its topology recorded) and what every topology builds with.

This module sits below the topologies and `helpers.runtime.services` (start, stop, heal): the
topologies use `Service`, the config writers and the client helpers from here, so nothing they
need lives in the module that imports them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import state
from helpers.runtime.engines import LOOPBACK, Node
from helpers.runtime.state import LabError

# Recorded by earlier versions of the lab as "module:function"; a service's client now comes from
# its topology, so the key is dropped when such a record is read.
OLD_CLIENT_FACTORY_KEY = "client_factory"


@dataclass
class Service:
    """A started topology: its nodes plus whatever its factory recorded in `meta`."""

    name: str
    topology: str
    options: dict[str, Any]
    nodes: list[Node]
    meta: dict[str, Any] = field(default_factory=dict)

    # --- lookup ---------------------------------------------------------------------------
    def node(self, name: str | None = None, role: str | None = None) -> Node:
        for n in self.nodes:
            if (name is None or n.name == name) and (role is None or n.role == role):
                return n
        raise LabError(f"{self.name} has no node {name or ''}{' with role ' + role if role else ''}.")

    def nodes_by(self, role: str | None = None, kind: str | None = None) -> list[Node]:
        return [n for n in self.nodes if (role is None or n.role == role) and (kind is None or n.kind == kind)]

    @property
    def host(self) -> str:
        return self.nodes[0].host

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def url(self) -> str:
        """A URL for the first node (redis://, memcached://, http://)."""
        n = self.nodes[0]
        scheme = {"redis": "redis", "memcached": "memcached", "aws": "http"}.get(n.kind, n.kind)
        return f"{scheme}://{n.host}:{n.port}"

    def password(self) -> str | None:
        """The AUTH password of this service, read from its owner-only file (never stored in JSON)."""
        path = self.meta.get("password_file")
        return Path(path).read_text().strip() if path else None

    def client(self, **kwargs: Any) -> Any:
        """A client for the service: the one its topology declares (TLS, ACL user, Memcached
        auth...), else redis.Redis or pymemcache's Client for the first node."""
        from helpers.runtime.topologies import registry  # importing the package registers every topology

        topo = registry.TOPOLOGIES.get(self.topology)
        if topo is not None and topo.client is not None:
            return topo.client(self, **kwargs)
        return default_client(self, **kwargs)

    # --- fault injection --------------------------------------------------------------------
    def kill(self, node: str | Node | None = None) -> Node:
        """SIGKILL one node (the first by default) and return it."""
        target = self._resolve(node)
        target.kill()
        return target

    def pause(self, node: str | Node | None = None) -> Node:
        target = self._resolve(node)
        target.pause()
        return target

    def resume(self, node: str | Node | None = None) -> Node:
        target = self._resolve(node)
        target.resume()
        return target

    def _resolve(self, node: str | Node | None) -> Node:
        if isinstance(node, Node):
            return node
        return self.node(name=node) if node else self.nodes[0]

    # --- records ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "topology": self.topology, "options": self.options,
                "nodes": [n.to_dict() for n in self.nodes], "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Service:
        meta = {k: v for k, v in data.get("meta", {}).items() if k != OLD_CLIENT_FACTORY_KEY}
        return cls(name=data["name"], topology=data["topology"], options=data.get("options", {}),
                   nodes=[Node.from_dict(n) for n in data.get("nodes", [])], meta=meta)

    def summary(self) -> dict[str, Any]:
        """What `start --json` and `status --json` print: no secrets, only endpoints and pids."""
        return {"name": self.name, "topology": self.topology, "url": self.url,
                "nodes": [{"name": n.name, "kind": n.kind, "role": n.role, "host": n.host, "port": n.port,
                           "pid": n.pid, "state": node_state(n)} for n in self.nodes],
                **{k: v for k, v in self.meta.items() if k.startswith("public_") or k in ("engine", "version")}}

    def __repr__(self) -> str:
        nodes = ", ".join(f"{n.role}@{n.host}:{n.port}" for n in self.nodes)
        return f"<Service {self.name} ({self.topology}): {nodes}>"


def node_state(n: Node) -> str:
    proc = n.process()
    if proc is None or not n.alive():
        return "dead"
    try:
        return "paused" if proc.status() == psutil.STATUS_STOPPED else "running"
    except psutil.NoSuchProcess:
        return "dead"


# --- the records in the state directory ------------------------------------------------------

def load(name: str) -> Service | None:
    """The recorded service `name` without starting or healing anything."""
    record = state.load_registry().get(name)
    return Service.from_dict(record) if record else None


def load_all() -> list[Service]:
    return [Service.from_dict(r) for r in state.load_registry().values()]


def record(svc: Service) -> Service:
    """Record a changed service (roles, nodes) unless it was stopped or replaced meanwhile."""
    with state.locked():
        registry = state.load_registry()
        found = registry.get(svc.name)
        if found and found.get("topology") == svc.topology:
            registry[svc.name] = svc.to_dict()
            state.save_registry(registry)
    return svc


# --- clients ---------------------------------------------------------------------------------

def redis_client_for(host: str, port: int, password: str | None = None, **kwargs: Any) -> Any:
    import redis

    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 10)
    return redis.Redis(host=host, port=port, password=password, **kwargs)


def default_client(svc: Service, **kwargs: Any) -> Any:
    """redis.Redis (with the service's password) or pymemcache's Client, for the first node."""
    n = svc.nodes[0]
    if n.kind == "redis":
        return redis_client_for(n.host, n.port, password=svc.password(), **kwargs)
    if n.kind == "memcached":
        from pymemcache.client.base import Client

        kwargs.setdefault("connect_timeout", 2)
        kwargs.setdefault("timeout", 5)
        return Client((n.host, n.port), **kwargs)
    raise LabError(f"{svc.name} ({n.kind}) has no default client; use its endpoint {svc.url}.")


# --- configs and secrets ---------------------------------------------------------------------

REDIS_BASE = {
    "bind": LOOPBACK,
    "protected-mode": "yes",
    "daemonize": "no",
    "save": '""',
    "appendonly": "no",
    "logfile": '""',
    "pidfile": '""',
    "dbfilename": "dump.rdb",
    "enable-debug-command": "local",
    "latency-monitor-threshold": "0",
    # FLUSHDB/FLUSHALL free memory before they answer, as Redis OSS does by default: Valkey 8+ frees
    # it in the background (lazyfree-lazy-user-flush yes), so a write right after a flush on a
    # small maxmemory was refused with OOM while the old keys were still being freed.
    "lazyfree-lazy-user-flush": "no",
    # Redis OSS's default. Valkey 8+ keeps 10 MB of replication backlog, which counts as used memory:
    # on the labs' small maxmemory (8 MB in lab 12) a primary with a replica refused every write.
    "repl-backlog-size": "1mb",
}


# Directives whose value is one file or directory name: written quoted, so a state directory with
# spaces, quotes or non-ASCII letters in its path is one argument to Redis.
PATH_DIRECTIVES = {"dir", "dbfilename", "appendfilename", "appenddirname", "logfile", "pidfile", "unixsocket",
                   "aclfile", "cluster-config-file", "tls-cert-file", "tls-key-file", "tls-ca-cert-file",
                   "tls-ca-cert-dir", "tls-client-cert-file", "tls-client-key-file", "tls-dh-params-file"}


def conf_quote(value: str | Path) -> str:
    """A value as one argument of a redis.conf line: double quotes, with backslashes, quotes and
    control characters escaped the way Redis's config parser (sdssplitargs) reads them."""
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise LabError(f"The path {text!r} has a line break in it, which no Redis config can hold; "
                       f"point {state.ENV_HOME} at a directory whose path has none.")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


def redis_conf(port: int, workdir: Path, config: dict[str, Any] | None = None, password: str | None = None,
               filename: str = "redis.conf") -> Path:
    """Write a Redis config file (owner-only: it may hold a password) and return its path."""
    settings: dict[str, Any] = {**REDIS_BASE, "port": port, "dir": str(workdir)}
    for key, value in (config or {}).items():
        settings[key.replace("_", "-")] = value
    lines = []
    for key, value in settings.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if key in PATH_DIRECTIVES and v not in ("", '""'):
                v = conf_quote(v)
            v = '""' if v == "" else v
            lines.append(f"{key} {v}")
    if password:
        lines.append(f"requirepass {password}")
    path = workdir / filename
    state.write_secret(path, "\n".join(lines) + "\n")
    return path


def new_password() -> str:
    return secrets.token_urlsafe(24)


def make_password(workdir: Path, meta: dict[str, Any], wanted: bool = True) -> str | None:
    """A generated AUTH password kept in an owner-only file; only its path goes into `meta`."""
    if not wanted:
        return None
    secret = new_password()
    pw_file = workdir / "password"
    state.write_secret(pw_file, secret)
    meta["password_file"] = str(pw_file)
    return secret


def memcached_argv(binary: str, port: int, memory_mb: int = 64, extra: list[str] | None = None) -> list[str]:
    argv = [binary, "-l", LOOPBACK, "-p", str(port), "-U", "0", "-m", str(memory_mb), "-c", "1024", "-t", "2"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without naming a user
    return argv + list(extra or [])
