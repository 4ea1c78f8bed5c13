"""ElastiCache Serverless, locally: one endpoint process per cache (proxy.py) in front of real engines.

The "serverless" topology starts the endpoint: a Python asyncio process that terminates TLS on two
loopback ports (the Endpoint, and the ReaderEndpoint on the next port, as on AWS), presents a
one-shard cluster to clients, and starts, scales and stops the engine processes behind it itself
(each recorded in the state directory's ledger, so `python -m helpers stop` ends them too).
Its directory holds config.json, status.json (what it serves and its counters), events.jsonl,
and the files the control plane writes for it: limits.json (CacheUsageLimits) and users.json; and
tuning.json (tune()): local-only timings a lab or test may shorten, which are not AWS parameters.
For engine memcached the endpoint is memcached.py (the text protocol, one endpoint, memcached processes).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import engines, state, tls
from helpers.runtime.engines import Node
from helpers.runtime.topologies.registry import topology


def _probe(svc: Any, _node: Node) -> engines.Probe:
    return _memcached_probe() if svc.meta.get("engine") == "memcached" else tls.probe_redis_tls


def _memcached_probe() -> engines.Probe:
    from helpers.runtime.topologies.secure import probe_memcached_tls

    return probe_memcached_tls


def client(svc: Any, **kwargs: Any) -> Any:
    """A redis.Redis to the endpoint over verified TLS (a plain client: the endpoint routes by slot), or for
    Memcached a pymemcache Client over verified TLS."""
    import redis

    node = svc.nodes[0]
    if svc.meta.get("engine") == "memcached":
        from pymemcache.client.base import Client

        return Client((node.host, node.port), tls_context=tls.client_context(client_cert=False), **kwargs)
    return redis.Redis(host=node.host, port=node.port, **{**tls.redis_tls_client_kwargs(client_cert=False),
                                                          **kwargs})


@topology("serverless", "an ElastiCache Serverless endpoint (TLS proxy) and the engines it scales behind it",
          client=client, probe=_probe)
def _serverless(name: str, workdir: Path, engine: str = "redis", min_backends: int = 1, max_backends: int = 4,
                backend_bytes: int = 4 << 20, backend_ecpu: float = 4000.0, scale_in_after: float = 10.0,
                gb_bytes: int = 1 << 30, restore_from: list[str] | None = None) -> tuple[list[Node], dict]:
    if engine == "memcached":
        binary = engines.find_binary("memcached")
        version = engines.binary_version(binary).split()[-1]
        meta: dict[str, Any] = {"engine": "memcached", "binary": binary, "version": f"memcached {version}"}
    else:
        eng = engines.find_engine(engine)
        binary, version, meta = eng.binary, eng.version, eng.meta()
    material = tls.tls_material()
    secret_file = workdir / "password"
    from helpers.runtime.service import new_password

    state.write_secret(secret_file, new_password())
    config_path = workdir / "config.json"

    def argv(port: int) -> list[str]:
        config = {"name": name, "workdir": str(workdir), "host": engines.LOOPBACK, "port": port,
                  "reader_port": port + 1, "binary": binary, "engine": engine, "version": version,
                  "password_file": str(secret_file), "cert_file": str(material.cert_file),
                  "key_file": str(material.key_file), "min_backends": min_backends, "max_backends": max_backends,
                  "backend_bytes": backend_bytes, "backend_ecpu": backend_ecpu, "scale_in_after": scale_in_after,
                  "gb_bytes": gb_bytes, "restore_from": restore_from or []}
        state.write_secret(config_path, json.dumps(config))
        return [sys.executable, "-m", module, str(config_path)]

    # Memcached: the text-protocol endpoint (memcached.py), one endpoint (AWS gives Memcached no reader endpoint).
    memcached = engine == "memcached"
    module = "helpers.runtime.serverless.memcached" if memcached else "helpers.runtime.serverless.proxy"
    node = engines.start_node(name=name, kind="serverless", role="endpoint", argv_for_port=argv, workdir=workdir,
                              probe=_memcached_probe() if memcached else tls.probe_redis_tls, bus_offset=1,
                              timeout=60)
    return [node], {**meta, "reader_port": None if memcached else node.port + 1,
                    "password_file": str(secret_file)}


def status(svc: Any) -> dict[str, Any]:
    """What the endpoint last wrote about itself (status.json), or {}."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((Path(svc.nodes[0].workdir) / "status.json").read_text())
    return {}


def events(svc: Any, after: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The endpoint's events after byte offset `after` of events.jsonl, and the new offset."""
    path = Path(svc.nodes[0].workdir) / "events.jsonl"
    try:
        with path.open() as fh:
            fh.seek(after)
            text = fh.read()
            end = fh.tell()
    except OSError:
        return [], after
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out, end


def write_control(svc_or_dir: Any, name: str, value: Any) -> None:
    """limits.json / users.json for the endpoint (owner-only: users.json holds passwords)."""
    d = Path(svc_or_dir.nodes[0].workdir) if hasattr(svc_or_dir, "nodes") else Path(svc_or_dir)
    tmp = d / f".{name}.tmp"
    state.write_secret(tmp, json.dumps(value))
    tmp.replace(d / name)


TUNING_RANGES = {"scale_in_after": (1.0, 600.0), "metric_period": (1.0, 60.0)}


def tune(svc_or_dir: Any, **timings: float) -> dict[str, float]:
    """Local-only timings of one endpoint (tuning.json, read every half second), for labs and tests that
    cannot wait AWS-like times: scale_in_after (s the load must stay low before a shard goes; default 10)
    and metric_period (s between the control plane's metric publications for this cache; default its
    ELASTICACHE_LAB_METRICS_INTERVAL, 5). Neither is an AWS parameter (AWS publishes neither timing)."""
    out: dict[str, float] = {}
    for key, value in timings.items():
        if key not in TUNING_RANGES:
            raise ValueError(f"{key}: not a local timing of the serverless endpoint ({', '.join(TUNING_RANGES)})")
        lo, hi = TUNING_RANGES[key]
        if not lo <= float(value) <= hi:
            raise ValueError(f"{key} must be between {lo:g} and {hi:g} s (got {value})")
        out[key] = float(value)
    write_control(svc_or_dir, "tuning.json", out)
    return out


def stop_backends(workdir: Path | str, status_data: dict[str, Any]) -> None:
    """Engines an endpoint left running (killed before it could stop them): their configs are in `workdir`."""
    pids = [b[k] for b in status_data.get("backends", []) for k in ("pid", "replica_pid") if b.get(k)]
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(int(pid))
            if any(str(workdir) in arg for arg in proc.cmdline()):
                proc.terminate()
                with contextlib.suppress(psutil.TimeoutExpired):
                    proc.wait(5)
                    continue
                proc.kill()
