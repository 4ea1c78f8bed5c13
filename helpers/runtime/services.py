"""Named services (topologies) started on demand, recorded in the state directory, found again.

`start("redis")` returns the running standalone Redis if there is one, heals it if a node was
killed from outside, and starts it otherwise. Other modules add topologies with `@topology`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import engines, process, state
from helpers.runtime.engines import LOOPBACK, Node
from helpers.runtime.state import LabError


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
        """A client for the first node: redis.Redis, or pymemcache's Client for Memcached."""
        factory = self.meta.get("client_factory")  # "module:function" for TLS/ACL/auth topologies
        if factory:
            import importlib

            module, _, fn = factory.partition(":")
            return getattr(importlib.import_module(module), fn)(self, **kwargs)
        n = self.nodes[0]
        if n.kind == "redis":
            return redis_client_for(n.host, n.port, password=self.password(), **kwargs)
        if n.kind == "memcached":
            from pymemcache.client.base import Client

            kwargs.setdefault("connect_timeout", 2)
            kwargs.setdefault("timeout", 5)
            return Client((n.host, n.port), **kwargs)
        raise LabError(f"{self.name} ({n.kind}) has no default client; use its endpoint {self.url}.")

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
        return cls(name=data["name"], topology=data["topology"], options=data.get("options", {}),
                   nodes=[Node.from_dict(n) for n in data.get("nodes", [])], meta=data.get("meta", {}))

    def summary(self) -> dict[str, Any]:
        """What `start --json` and `status --json` print: no secrets, only endpoints and pids."""
        return {"name": self.name, "topology": self.topology, "url": self.url,
                "nodes": [{"name": n.name, "kind": n.kind, "role": n.role, "host": n.host, "port": n.port,
                           "pid": n.pid, "state": node_state(n)} for n in self.nodes],
                **{k: v for k, v in self.meta.items() if k.startswith("public_")}}

    def __repr__(self) -> str:
        nodes = ", ".join(f"{n.role}@{n.host}:{n.port}" for n in self.nodes)
        return f"<Service {self.name} ({self.topology}): {nodes}>"


def node_state(n: Node) -> str:
    proc = n.process()
    if proc is None:
        return "dead"
    try:
        return "paused" if proc.status() == psutil.STATUS_STOPPED else "running"
    except psutil.NoSuchProcess:
        return "dead"


def redis_client_for(host: str, port: int, password: str | None = None, **kwargs: Any) -> Any:
    import redis

    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_connect_timeout", 2)
    kwargs.setdefault("socket_timeout", 10)
    return redis.Redis(host=host, port=port, password=password, **kwargs)


# --- the topology registry ------------------------------------------------------------------

Factory = Callable[..., Service]


@dataclass
class Topology:
    name: str
    description: str
    factory: Callable[..., tuple[list[Node], dict[str, Any]]]
    heal: Callable[[Service], Service] | None = None
    refresh: Callable[[Service], Service] | None = None  # re-read roles of a healthy service (failovers)


TOPOLOGIES: dict[str, Topology] = {}


def topology(name: str, description: str, heal: Callable[[Service], Service] | None = None,
             refresh: Callable[[Service], Service] | None = None):
    """Register a factory `f(name, workdir, **options) -> (nodes, meta)` as a startable topology."""

    def register(fn: Callable[..., tuple[list[Node], dict[str, Any]]]):
        TOPOLOGIES[name] = Topology(name, description, fn, heal, refresh)
        return fn

    return register


def _load_plugins() -> None:
    """Topologies defined in other helpers modules register themselves when imported."""
    from helpers.runtime import secure, topologies  # noqa: F401  (registering is importing)


def start(topology_name: str = "redis", name: str | None = None, **options: Any) -> Service:
    """Return the running service `name` (default: the topology's name), starting or healing it.

    Options are part of a service's identity: asking for the same name with other options
    restarts it with the new ones.
    """
    _load_plugins()
    if topology_name not in TOPOLOGIES:
        known = ", ".join(sorted(TOPOLOGIES))
        raise LabError(f"Unknown service {topology_name!r}. Known: {known}.")
    name = name or topology_name
    options = json.loads(json.dumps(options, default=str))  # normalise for comparison/recording
    with state.locked():
        registry = state.load_registry()
        record = registry.get(name)
        if record:
            svc = Service.from_dict(record)
            if svc.topology == topology_name and svc.options == options:
                healed = _heal(svc)
                if healed is not None:
                    registry[name] = healed.to_dict()
                    state.save_registry(registry)
                    return healed
            _stop_service(svc)
            registry.pop(name, None)
            state.save_registry(registry)
        topo = TOPOLOGIES[topology_name]
        workdir = state.service_dir(name)
        nodes, meta = topo.factory(name, workdir, **options)
        svc = Service(name=name, topology=topology_name, options=options, nodes=nodes, meta=meta)
        registry = state.load_registry()
        registry[name] = svc.to_dict()
        state.save_registry(registry)
        return svc


def _heal(svc: Service) -> Service | None:
    """Restart nodes killed from outside; None when the service must be created afresh."""
    dead = [n for n in svc.nodes if not n.alive()]
    topo = TOPOLOGIES[svc.topology]
    if not dead:
        if topo.refresh:  # roles may have changed since they were recorded (an automatic failover)
            with contextlib.suppress(Exception):
                return topo.refresh(svc)
        return svc
    try:
        if topo.heal:
            return topo.heal(svc)
        for n in dead:
            engines.restart_node(n, engines.PROBES[n.kind], env=_node_env(n))
        return svc
    except LabError:
        return None


def _node_env(n: Node) -> dict[str, str] | None:
    return {**os.environ, **n.extra["env"]} if n.extra.get("env") else None


def get(name: str) -> Service | None:
    """The recorded service `name` without starting or healing anything."""
    record = state.load_registry().get(name)
    return Service.from_dict(record) if record else None


def status() -> list[Service]:
    return [Service.from_dict(r) for r in state.load_registry().values()]


def stop(name: str | None = None) -> list[str]:
    """Stop one service, or every process of this state directory; returns what was stopped."""
    stopped: list[str] = []
    with state.locked():
        registry = state.load_registry()
        names = [name] if name else list(registry)
        for n in names:
            record = registry.pop(n, None)
            if record:
                _stop_service(Service.from_dict(record))
                stopped.append(n)
        state.save_registry(registry)
        if name is None:
            stopped += sweep_orphans()
    return stopped


def _stop_service(svc: Service) -> None:
    # Sentinels first (so they do not fail over while we stop), then replicas, then the rest.
    order = {"sentinel": 0, "endpoint": 1, "replica": 2}
    for n in sorted(svc.nodes, key=lambda n: order.get(n.role, 3)):
        n.stop()


def sweep_orphans() -> list[str]:
    """Stop any process still running inside this state directory (lost records, crashed runs)."""
    found: list[str] = []
    for proc in process.state_dir_processes():
        with contextlib.suppress(psutil.Error):
            found.append(f"{proc.name()}[{proc.pid}]")
            process.stop_tree(proc, timeout=5)
    return found


# --- the built-in topologies ------------------------------------------------------------------

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
}


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
            v = '""' if v == "" else v
            lines.append(f"{key} {v}")
    if password:
        lines.append(f"requirepass {password}")
    path = workdir / filename
    state.write_secret(path, "\n".join(lines) + "\n")
    return path


def new_password() -> str:
    import secrets

    return secrets.token_urlsafe(24)


@topology("redis", "a standalone Redis/Valkey server (persistence off)")
def _standalone_redis(name: str, workdir: Path, config: dict[str, Any] | None = None,
                      password: bool = False, persistence: bool = False) -> tuple[list[Node], dict]:
    binary = engines.find_binary("redis")
    meta: dict[str, Any] = {"binary": binary, "version": engines.binary_version(binary)}
    secret = None
    if password:
        secret = new_password()
        pw_file = workdir / "password"
        state.write_secret(pw_file, secret)
        meta["password_file"] = str(pw_file)
    conf = dict(config or {})
    if persistence:
        conf.setdefault("save", "3600 1 300 100 60 10000")
        conf.setdefault("appendonly", "yes")
        # `always`: the reply comes after the write and its fsync, so every acknowledged write
        # survives a kill -9 even on a busy disk (everysec may hold writes back for up to 2 s).
        conf.setdefault("appendfsync", "always")

    def argv(port: int) -> list[str]:
        return [binary, str(redis_conf(port, workdir, conf, secret))]

    node = engines.start_node(name=name, kind="redis", role="standalone", argv_for_port=argv,
                              workdir=workdir, probe=engines.probe_redis)
    return [node], meta


def memcached_argv(binary: str, port: int, memory_mb: int = 64, extra: list[str] | None = None) -> list[str]:
    argv = [binary, "-l", LOOPBACK, "-p", str(port), "-U", "0", "-m", str(memory_mb), "-c", "1024", "-t", "2"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without naming a user
    return argv + list(extra or [])


@topology("memcached", "a single Memcached node")
def _memcached(name: str, workdir: Path, memory_mb: int = 64, args: list[str] | None = None) -> tuple[list[Node], dict]:
    binary = engines.find_binary("memcached")
    node = engines.start_node(name=name, kind="memcached", role="node",
                              argv_for_port=lambda p: memcached_argv(binary, p, memory_mb, args),
                              workdir=workdir, probe=engines.probe_memcached)
    return [node], {"binary": binary, "version": engines.binary_version(binary)}


@topology("aws", "the local AWS API endpoint (moto server: ElastiCache, EC2, CloudWatch, KMS, Secrets Manager, SNS)")
def _aws(name: str, workdir: Path) -> tuple[list[Node], dict]:
    env = {**os.environ, state.ENV_HOME: str(state.home()), "PYTHONUNBUFFERED": "1"}
    for key in [k for k in env if k.startswith("AWS_")]:
        env.pop(key)
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "MOTO_ALLOW_NONEXISTENT_REGION": "false"})

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "helpers.aws.server", "--port", str(port)]

    started = time.monotonic()
    node = engines.start_node(name=name, kind="aws", role="endpoint", argv_for_port=argv, workdir=workdir,
                              probe=_probe_moto, env=env, timeout=90,
                              extra={"env": {state.ENV_HOME: str(state.home())}})
    return [node], {"startup_seconds": round(time.monotonic() - started, 2),
                    "public_endpoint_url": f"http://{node.host}:{node.port}"}


def _probe_moto(host: str, port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection(host, port, timeout=1)
        conn.request("GET", "/moto-api/data.json")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


engines.PROBES["aws"] = _probe_moto
