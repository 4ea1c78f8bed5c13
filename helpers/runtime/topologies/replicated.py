"""Replication with automatic failover: one primary, N replicas and three Redis Sentinels.

What ElastiCache runs for a replication group with Multi-AZ automatic failover, made of real
server processes on loopback. Clients ask the Sentinels where the primary is (`primary_client`),
and healing restarts killed nodes without losing the data the replicas still hold.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any

import psutil
from redis.exceptions import RedisError

from helpers.runtime import engines, state
from helpers.runtime import tls as tls_mod
from helpers.runtime.engines import LOOPBACK, Node
from helpers.runtime.flow import on_failure
from helpers.runtime.service import Service, conf_quote, make_password, redis_client_for
from helpers.runtime.state import LabError
from helpers.runtime.topologies.nodes import (
    data_probe,
    in_parallel,
    node_client,
    node_probe,
    probe_for,
    require_tls_between_nodes,
    set_conf_line,
    start_data_node,
    stop_nodes,
    tls_client_kwargs,
    wait_for,
)
from helpers.runtime.topologies.registry import topology

log = logging.getLogger(__name__)

SENTINELS = 3
QUORUM = 2


def _sentinel_conf(port: int, workdir: Path, master: str, primary_port: int, secret: str | None, tls: bool,
                   down_after_ms: int, failover_timeout_ms: int, myid: str | None = None,
                   replicas: list[int] | None = None, peers: list[tuple[int, str]] | None = None) -> Path:
    """A Sentinel's config. `myid`, `replicas` (ports) and `peers` (port, id) say at start what a Sentinel
    otherwise learns by itself: the replicas from the primary's INFO (every 10 s) and the other
    Sentinels from their hello messages (every 2 s), which took about 2 s after every start. They are
    the lines Sentinel itself writes into its config (known-replica, known-sentinel) to remember them."""
    path = workdir / f"sentinel-{port}.conf"
    lines = [f"port {port}", f"bind {LOOPBACK}", "protected-mode yes", "daemonize no", 'logfile ""',
             f"dir {conf_quote(workdir)}", f"sentinel monitor {master} {LOOPBACK} {primary_port} {QUORUM}",
             f"sentinel down-after-milliseconds {master} {down_after_ms}",
             f"sentinel failover-timeout {master} {failover_timeout_ms}",
             f"sentinel parallel-syncs {master} 2"]
    if myid:
        lines.append(f"sentinel myid {myid}")
    lines += [f"sentinel known-replica {master} {LOOPBACK} {p}" for p in replicas or []]
    lines += [f"sentinel known-sentinel {master} {LOOPBACK} {p} {i}" for p, i in peers or [] if p != port]
    if secret:
        lines += [f"sentinel auth-pass {master} {secret}", f"requirepass {secret}"]
    if tls:
        lines = [ln for ln in lines if not ln.startswith("port ")]
        lines += [f"{k} {v}" for k, v in tls_mod.redis_tls_config(port).items()]
    state.write_secret(path, "\n".join(lines) + "\n")
    return path


@topology("replicated", "one primary, N replicas (default 2) and 3 Redis Sentinels: automatic failover",
          heal=lambda svc: _heal_replicated(svc), refresh=lambda svc: _reread_replicated_roles(svc), probe=probe_for)
def _replicated(name: str, workdir: Path, replicas: int = 2, password: bool = False, tls: bool = False,
                config: dict[str, Any] | None = None, down_after_ms: int = 1500,
                failover_timeout_ms: int = 6000) -> tuple[list[Node], dict]:
    if not 1 <= int(replicas) <= 5:
        raise LabError(f"{replicas} replicas? A replication group has 1 to 5 replicas; choose one of those.")
    engine = engines.kv_engine()
    if tls:
        require_tls_between_nodes(engine.binary)
    binary = engine.binary
    meta: dict[str, Any] = {**engine.meta(), "master_name": name, "public_master_name": name}
    secret = make_password(workdir, meta, password)
    nodes: list[Node] = []
    with on_failure(lambda: stop_nodes(nodes)):  # no node of a half-made service is left running
        # The primary first (the replicas' config names its port), then the replicas and the Sentinels
        # at once: each start waits on its own process.
        primary = start_data_node(f"{name}-1", "primary", workdir, binary, config, secret, tls)
        nodes.append(primary)
        nodes += in_parallel([
            lambda i=i: start_data_node(f"{name}-{i}", "replica", workdir, binary, config, secret, tls,
                                        {"replicaof": f"{LOOPBACK} {primary.port}"})
            for i in range(2, int(replicas) + 2)])
        svc = Service(name=name, topology="replicated", options={"tls": tls}, nodes=nodes, meta=meta)
        replica_ports = [n.port for n in nodes[1:]]
        peers = [(engines.free_port(), secrets.token_hex(20)) for _ in range(SENTINELS)]

        def start_sentinel(i: int) -> Node:
            port, myid = peers[i - 1]

            def argv(p: int) -> list[str]:
                return [binary, str(_sentinel_conf(p, workdir, name, primary.port, secret, tls, down_after_ms,
                                                   failover_timeout_ms, myid, replica_ports, peers)), "--sentinel"]

            kwargs = dict(name=f"{name}-sentinel-{i}", kind="sentinel", role="sentinel", workdir=workdir,
                          probe=data_probe(tls), extra={"tls": True} if tls else {}, argv_for_port=argv)
            try:
                return engines.start_node(port=port, **kwargs)
            except engines.PortInUse:  # taken meanwhile: another port (the others learn it from its hellos)
                return engines.start_node(**kwargs)

        nodes += in_parallel([lambda i=i: start_sentinel(i) for i in range(1, SENTINELS + 1)])
        for n in nodes[1:1 + int(replicas)]:
            c = node_client(svc, n)
            wait_for(lambda c=c: c.info("replication").get("master_link_status") == "up", 30,
                     f"replica {n.name} to sync with the primary")
        _wait_sentinels_ready(svc, int(replicas))
    meta["public_sentinels"] = [f"{n.host}:{n.port}" for n in nodes if n.role == "sentinel"]
    return nodes, meta


def sentinel_node_client(svc: Service, node: Node) -> Any:
    """A client for one Sentinel process (SENTINEL commands), with the service's password and TLS."""
    return redis_client_for(node.host, node.port, password=svc.password(), socket_timeout=2,
                            **tls_client_kwargs(svc))


def _wait_sentinels_ready(svc: Service, replicas: int, timeout: float = 30) -> None:
    """Every Sentinel knows the primary, all replicas and the other Sentinels, is connected to each of
    them and has read each replica's INFO (a replica never read is not a failover candidate): failover
    can work."""
    master = svc.meta["master_name"]

    def as_dict(info: Any) -> dict[str, Any]:
        if isinstance(info, list):  # RESP2 without a response callback: flat list
            info = dict(zip(info[::2], info[1::2], strict=False))
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in info.items()}

    def ready() -> bool:
        for s in svc.nodes_by(role="sentinel"):
            c = sentinel_node_client(svc, s)
            info = as_dict(c.execute_command("SENTINEL", "MASTER", master))
            if (int(info["num-slaves"]) < replicas or int(info["num-other-sentinels"]) < SENTINELS - 1
                    or info["flags"] != "master"):
                return False
            for r in c.execute_command("SENTINEL", "REPLICAS", master):
                r = as_dict(r)
                if r["flags"] != "slave" or int(r["info-refresh"]) > 5000:
                    return False
            for other in c.execute_command("SENTINEL", "SENTINELS", master):
                if as_dict(other)["flags"] != "sentinel":
                    return False
        return True

    wait_for(ready, timeout, "the Sentinels to discover the replicas and each other", interval=0.1)


def sentinel(svc: Service, **kwargs: Any) -> Any:
    """A redis.sentinel.Sentinel over the service's Sentinels (the way clients discover the primary)."""
    from redis.sentinel import Sentinel

    if svc.topology != "replicated":
        raise LabError(f"{svc.name} is a {svc.topology} service; Sentinel runs only with start('replicated').")
    password = svc.password()
    tls = tls_client_kwargs(svc)
    skw = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, **tls}
    if password:
        skw["password"] = password
    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_timeout", 2.0)
    kwargs.setdefault("socket_connect_timeout", 1.0)
    if password:
        kwargs.setdefault("password", password)
    for k, v in tls.items():
        kwargs.setdefault(k, v)
    hosts = [(n.host, n.port) for n in svc.nodes_by(role="sentinel")]
    return Sentinel(hosts, sentinel_kwargs=skw, **kwargs)


def primary_client(svc: Service, **kwargs: Any) -> Any:
    """A client that asks Sentinel where the primary is, and asks again after a failover."""
    return sentinel(svc).master_for(svc.meta["master_name"], **kwargs)


def replica_client(svc: Service, **kwargs: Any) -> Any:
    """A client that reads from the replicas (round robin, as Sentinel lists them)."""
    return sentinel(svc).slave_for(svc.meta["master_name"], **kwargs)


def current_primary(svc: Service) -> tuple[str, int]:
    """(host, port) of the primary the Sentinels agree on right now.

    Every live Sentinel is asked and the answer with the highest config epoch wins: a Sentinel that
    was down during a failover (and was just restarted) still names the old primary until the
    others' hello messages reach it, and must not be believed meanwhile. Nor is a Sentinel in the
    middle of a failover (flag failover_in_progress): the leader names the old primary until every
    replica has been re-pointed (it reads their INFO once a second), and when the old primary has
    meanwhile come back as a replica, that answer names a replica.
    """
    best: tuple[int, str, int] | None = None
    in_flux = False
    for s in svc.nodes_by(role="sentinel"):
        if not s.alive() or s.paused():
            continue
        try:
            info = sentinel_node_client(svc, s).execute_command("SENTINEL", "MASTER", svc.meta["master_name"])
        except RedisError as exc:  # a Sentinel paused, restarting or not yet monitoring: ask the others
            log.debug("SENTINEL MASTER on %s failed: %s", s.name, exc)
            continue
        if isinstance(info, list):  # RESP2 without a response callback: flat list
            info = dict(zip(info[::2], info[1::2], strict=False))
        info = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in info.items()}
        flags = str(info.get("flags", "")).split(",")
        if "failover_in_progress" in flags:
            in_flux = True
            continue
        if "master" not in flags or "s_down" in flags or "o_down" in flags:
            continue
        answer = (int(info.get("config-epoch", 0)), str(info["ip"]), int(info["port"]))
        if best is None or answer[0] > best[0]:
            best = answer
    if best is not None:
        return best[1], best[2]
    if in_flux:
        from redis.sentinel import MasterNotFoundError

        raise MasterNotFoundError(f"a failover of {svc.meta['master_name']} is in progress")
    host, port = sentinel(svc).discover_master(svc.meta["master_name"])  # raises MasterNotFoundError
    return host, int(port)


def wait_replicas_synced(svc: Service, timeout: float = 30) -> int:
    """Wait until every live replica is linked to the current primary; returns how many there are."""
    def synced() -> list[int] | None:
        host, port = current_primary(svc)
        info = redis_client_for(host, port, password=svc.password(), socket_timeout=2,
                                **tls_client_kwargs(svc)).info("replication")
        live = [n for n in svc.nodes_by(kind="redis") if n.alive() and not n.paused() and n.port != port]
        linked = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                  and v.get("state") == "online"]
        if info.get("role") != "master" or len(linked) < len(live):
            return None
        # Asked of each replica too: after a failover on Valkey 9, the new primary listed every replica
        # online while the returning old primary still said its link was down (and had no data yet);
        # a read there must find the data.
        for n in live:
            mine = node_client(svc, n, socket_timeout=2).info("replication")
            if (mine.get("role") != "slave" or int(mine.get("master_port", -1)) != port
                    or mine.get("master_link_status") != "up" or int(mine.get("master_sync_in_progress", 1))):
                return None
        return [len(linked)]

    return wait_for(synced, timeout, f"the replicas of {svc.name} to sync with the primary", interval=0.1)[0]


def _reread_replicated_roles(svc: Service) -> Service:
    live_primary = None
    for n in svc.nodes_by(kind="redis"):
        if not n.alive() or n.paused():
            continue
        with contextlib.suppress(RedisError):  # a node not answering keeps its recorded role
            role = node_client(svc, n, socket_timeout=1).execute_command("ROLE")[0]
            role = role.decode() if isinstance(role, bytes) else role
            n.role = "primary" if role == "master" else "replica"
            if n.role == "primary":
                live_primary = n
    with contextlib.suppress(RedisError, psutil.Error):  # two saying master (a demotion in flight): Sentinel decides
        host, port = current_primary(svc)
        for n in svc.nodes_by(kind="redis"):
            if n.port == port and n.alive() and not n.paused() and (live_primary is None or n.role == "primary"):
                live_primary = n
    for n in svc.nodes_by(kind="redis"):
        if live_primary is not None and n is not live_primary:
            n.role = "replica"  # a dead or demoted ex-primary returns as a replica
    if live_primary is not None:
        live_primary.role = "primary"
    order = {"primary": 0, "replica": 1, "sentinel": 2}
    svc.nodes.sort(key=lambda n: (order.get(n.role, 3), n.name))
    return svc


def _heal_replicated(svc: Service) -> Service:
    """Restart what was killed: Sentinels first, then let them fail over, then old nodes as replicas."""
    for s in svc.nodes_by(role="sentinel"):
        if not s.alive():
            engines.restart_node(s, node_probe(s))
    data = svc.nodes_by(kind="redis")
    if not any(n.alive() for n in data):
        raise LabError("every data node is gone")  # nothing to keep: start() creates it afresh
    try:
        host, port = current_primary(svc)
    except (RedisError, psutil.Error):  # MasterNotFoundError included: no Sentinel names a primary now
        port = -1
    recorded = next((n for n in data if n.port == port), None)
    if recorded is None or not recorded.alive():
        # The primary died: let the Sentinels promote a replica before anything restarts.
        def promoted() -> int | None:
            _h, p = current_primary(svc)
            n = next((x for x in data if x.port == p), None)
            return p if n is not None and n.alive() else None

        port = wait_for(promoted, 30, "the Sentinels to promote a replica", interval=0.2)
    for n in data:
        if not n.alive():
            set_conf_line(Path(n.extra.get("config_file", n.argv[1])), "replicaof", f"{LOOPBACK} {port}")
            engines.restart_node(n, node_probe(n))
    return _reread_replicated_roles(svc)
