"""What the multi-node Redis topologies share: their data nodes, clients to one node, waiting, roles.

Used by the replicated (Sentinel) and cluster topologies, and by the local ElastiCache API
when it adds replicas to a replication group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from helpers.runtime import engines, state, tls
from helpers.runtime.engines import Node
from helpers.runtime.service import Service, load, record, redis_client_for, redis_conf
from helpers.runtime.state import LabError
from helpers.runtime.topologies.registry import TOPOLOGIES
from helpers.runtime.waiting import poll_until

log = logging.getLogger(__name__)

T = TypeVar("T")
BUS_OFFSET = 10000  # Redis Cluster's bus listens on the data port + 10000


def data_probe(use_tls: bool) -> engines.Probe:
    return tls.probe_redis_tls if use_tls else engines.probe_redis


def node_probe(node: Node) -> engines.Probe:
    """The probe that speaks this node's protocol (TLS or not): a Topology's `probe`."""
    return data_probe(bool(node.extra.get("tls")))


def probe_for(_svc: Service, node: Node) -> engines.Probe:
    return node_probe(node)


def stop_nodes(nodes: list[Node]) -> None:
    """Stop the nodes of a service that could not be made (what `on_failure` undoes)."""
    for n in nodes:
        n.stop()


def tls_client_kwargs(svc: Service) -> dict[str, Any]:
    return dict(tls.redis_tls_client_kwargs()) if svc.options.get("tls") else {}


def node_client(svc: Service, node: Node | str | int, **kwargs: Any) -> Any:
    """A plain redis.Redis client for one node of `svc` (by Node, name or port), with its AUTH/TLS."""
    n = node if isinstance(node, Node) else find_node(svc, node)
    kwargs = {**tls_client_kwargs(svc), **kwargs}
    return redis_client_for(n.host, n.port, password=svc.password(), **kwargs)


def admin_client(svc: Service, node: Node | str | int, **kwargs: Any) -> Any:
    """An operator's connection to one node (cluster set-up, health checks, resharding): the node's
    loopback peer port when a TLS front stands before it (plaintext, the service's password still
    required), else node_client().

    Resharding sends thousands of CLUSTER SETSLOT, each answered only once the node's replicas have
    acknowledged it (Valkey 8+), and health checks open a connection per node per poll: through a TLS
    front each costs an extra process hop and each new connection a TLS handshake. The nodes reach
    each other on the same peer ports."""
    from helpers.runtime import engines

    n = node if isinstance(node, Node) else find_node(svc, node)
    if not (n.extra.get("tls_front") or {}).get("peer_port"):
        return node_client(svc, n, **kwargs)
    return redis_client_for(n.host, engines.peer_port(n), password=svc.password(), **kwargs)


def find_node(svc: Service, node: Node | str | int) -> Node:
    if isinstance(node, Node):  # the same process as recorded in *this* service object
        node = node.name
    for n in svc.nodes:
        if node in (n.name, n.port, n.extra.get("node_id")) or str(node) == str(n.port):
            return n
    raise LabError(f"{svc.name} has no node {node!r}. Its nodes: {', '.join(n.name for n in svc.nodes)}.")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """poll_until for nodes that are starting: any error of a check counts as "not yet" (a node still
    loading, a port not yet open, a reply not yet complete), the last one named in the timeout's message."""
    return poll_until(predicate, timeout, interval, what, ignore=(Exception,))


def data_conf(port: int, workdir: Path, config: dict[str, Any] | None, secret: str | None, use_tls: bool,
              extra: dict[str, Any] | None = None) -> Path:
    """Config of one data node; dump and append-only files are per port because nodes share a directory."""
    # A replica syncs at once (the default waits 5 s for more replicas to share one transfer).
    conf: dict[str, Any] = {"dbfilename": f"dump-{port}.rdb", "appenddirname": f"appendonlydir-{port}",
                            "repl-diskless-sync-delay": "0",
                            **(config or {}), **(extra or {})}
    if secret:
        conf["masterauth"] = secret
    if use_tls:
        conf.update(tls.redis_tls_config(port))
    return redis_conf(port, workdir, conf, secret, filename=f"redis-{port}.conf")


def require_tls_between_nodes(binary: str, cluster: bool = False) -> None:
    """Replicas and Sentinels speak TLS to each other: a replication group with TLS needs TLS in the
    engine itself. A cluster's nodes can sit behind the lab's TLS front (helpers.runtime.tlsfront)
    where the engine tells clients the front's port (Valkey 8+)."""
    if engines.binary_has_tls(binary) or (cluster and engines.front_serves_cluster(binary)):
        return
    what = "cluster" if cluster else "replication and Sentinel"
    raise LabError(f"{engines.binary_version(binary)} ({binary}) was built without TLS: a single node gets "
                   f"TLS through the lab's TLS front, but {what} traffic between nodes needs TLS in the "
                   f"engine itself. {engines.tls_hint()}")


ExtraConf = dict[str, Any] | Callable[[int], dict[str, Any]] | None


def start_data_node(name: str, role: str, workdir: Path, binary: str, config: dict[str, Any] | None,
                    secret: str | None, use_tls: bool, extra_conf: ExtraConf = None, bus: bool = False) -> Node:
    """Start one redis-server of a topology (replicated, cluster, or the control plane's groups) and
    wait for it. `extra_conf` may depend on the port the node gets (a function of it)."""

    if use_tls:
        require_tls_between_nodes(binary, cluster=bus)

    def argv(port: int) -> list[str]:
        extra = extra_conf(port) if callable(extra_conf) else extra_conf
        return [binary, str(data_conf(port, workdir, config, secret, use_tls, extra))]

    node = engines.start_node(name=name, kind="redis", role=role, argv_for_port=argv, workdir=workdir,
                              probe=data_probe(use_tls), bus_offset=BUS_OFFSET if bus else None,
                              extra={"tls": True} if use_tls else {})
    node.extra["config_file"] = node.argv[1]
    return node


def in_parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls at once (starting nodes: each waits on its own process) and return their results
    in order. If any fails, the others are still waited for, the nodes they started are stopped, and
    the first error is raised."""
    if len(calls) <= 1:
        return [c() for c in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(c) for c in calls]
        wait(futures)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        for f in futures:
            result = None if f.exception() is not None else f.result()
            if isinstance(result, Node):
                result.stop()
        raise errors[0]
    return [f.result() for f in futures]


def set_conf_line(path: Path, key: str, value: str | None) -> None:
    """Replace (or drop, when value is None) a directive in an owner-only config file."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(key + " ")]
    if value is not None:
        lines.append(f"{key} {value}")
    state.write_secret(path, "\n".join(lines) + "\n")


# --- roles -------------------------------------------------------------------------------------

def reread_roles(svc: Service) -> Service:
    """Each node's role as the engines say it now (after a failover), by the topology's `refresh`."""
    topo = TOPOLOGIES.get(svc.topology)
    return topo.refresh(svc) if topo is not None and topo.refresh is not None else svc


def refresh_roles(svc: Service) -> Service:
    """Re-read each node's role from the engines (after a failover) and record it."""
    return record(reread_roles(svc))


def current(svc: Service) -> Service:
    """The recorded state of svc (another call may have changed its nodes), roles re-read."""
    return reread_roles(load(svc.name) or svc)
