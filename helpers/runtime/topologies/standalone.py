"""Single servers, and Memcached nodes side by side: "redis", "memcached", "memcached-pool", "aws".

A standalone Redis is an ElastiCache node without replicas; a Memcached pool is an ElastiCache
for Memcached cluster (independent nodes: the client decides which node holds a key); "aws" is
the local AWS API endpoint the control-plane labs talk to.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from pathlib import Path
from typing import Any

from helpers.runtime import engines, state
from helpers.runtime.engines import Node
from helpers.runtime.service import Service, make_password, memcached_argv, redis_conf
from helpers.runtime.state import LabError
from helpers.runtime.topologies.registry import topology


@topology("redis", "a standalone Redis/Valkey server (persistence off)")
def _standalone_redis(name: str, workdir: Path, config: dict[str, Any] | None = None,
                      password: bool = False, persistence: bool = False,
                      engine: str | None = None) -> tuple[list[Node], dict]:
    """`engine` ("valkey" or "redis") runs that engine whatever ELASTICACHE_LAB_ENGINE says (lab 16 runs one
    node of each side by side); without it, the engine the lab runs."""
    kv = engines.find_engine(engine) if engine else engines.kv_engine()
    binary = kv.binary
    meta: dict[str, Any] = kv.meta()
    secret = make_password(workdir, meta, password)
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


@topology("memcached", "a single Memcached node")
def _memcached(name: str, workdir: Path, memory_mb: int = 64, args: list[str] | None = None) -> tuple[list[Node], dict]:
    binary = engines.find_binary("memcached")
    node = engines.start_node(name=name, kind="memcached", role="node",
                              argv_for_port=lambda p: memcached_argv(binary, p, memory_mb, args),
                              workdir=workdir, probe=engines.probe_memcached)
    return [node], {"binary": binary, "version": engines.binary_version(binary)}


# --- memcached-pool ---------------------------------------------------------------------------

def pool_client(svc: Service, **kwargs: Any) -> Any:
    """A pymemcache HashClient over every node: a dead node costs misses, not exceptions."""
    from pymemcache.client.hash import HashClient

    kwargs.setdefault("connect_timeout", 0.5)
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("ignore_exc", True)
    kwargs.setdefault("retry_attempts", 1)
    kwargs.setdefault("retry_timeout", 0.5)
    kwargs.setdefault("dead_timeout", 30)
    servers = [(n.host, n.port) for n in svc.nodes if n.kind == "memcached"]
    return HashClient(servers, **kwargs)


@topology("memcached-pool", "N Memcached nodes for client-side distribution (default 3)")
def _memcached_pool(name: str, workdir: Path, nodes: int = 3, memory_mb: int = 64) -> tuple[list[Node], dict]:
    if not 1 <= int(nodes) <= 16:
        raise LabError(f"A Memcached pool of {nodes} nodes? Choose between 1 and 16.")
    binary = engines.find_binary("memcached")
    started: list[Node] = []
    try:
        for i in range(1, int(nodes) + 1):
            started.append(engines.start_node(
                name=f"{name}-{i}", kind="memcached", role="node", workdir=workdir, probe=engines.probe_memcached,
                argv_for_port=lambda p: memcached_argv(binary, p, int(memory_mb))))
    except LabError:
        for n in started:
            n.stop()
        raise
    return started, {"binary": binary, "version": engines.binary_version(binary),
                     "public_servers": [f"{n.host}:{n.port}" for n in started]}


# --- aws --------------------------------------------------------------------------------------

def probe_moto(host: str, port: int) -> bool:
    """The moto server answers its own API (a bare TCP accept comes before it can serve)."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=1)
        conn.request("GET", "/moto-api/data.json")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@topology("aws", "the local AWS API endpoint (moto server: ElastiCache, EC2, CloudWatch, KMS, Secrets Manager, SNS)",
          probe=lambda _svc, _node: probe_moto)
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
                              probe=probe_moto, env=env, timeout=90,
                              extra={"env": {state.ENV_HOME: str(state.home())}})
    return [node], {"startup_seconds": round(time.monotonic() - started, 2),
                    "public_endpoint_url": f"http://{node.host}:{node.port}"}
