"""Redis Cluster: N shards of a primary and R replicas, the 16384 hash slots split between them.

What ElastiCache runs for a cluster-mode-enabled replication group, made of real server
processes on loopback: starting it, reading its view (`cluster_nodes`, `slot_owners`), a
cluster-aware client, and healing killed nodes. Moving slots between shards is in `resharding`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import RedisError

from helpers.runtime import engines
from helpers.runtime.engines import Node
from helpers.runtime.flow import on_failure
from helpers.runtime.service import Service, make_password
from helpers.runtime.state import LabError
from helpers.runtime.topologies.nodes import (
    BUS_OFFSET,
    admin_client,
    in_parallel,
    node_probe,
    probe_for,
    require_tls_between_nodes,
    start_data_node,
    stop_nodes,
    tls_client_kwargs,
    wait_for,
)
from helpers.runtime.topologies.registry import topology

log = logging.getLogger(__name__)

CLUSTER_SLOTS = REDIS_CLUSTER_HASH_SLOTS  # redis-py's constant: one definition of the slot count

CLUSTER_CONF = {"cluster-enabled": "yes", "cluster-node-timeout": "3000",
                "cluster-allow-replica-migration": "no", "cluster-replica-validity-factor": "0"}


def start_cluster_node(name: str, role: str, workdir: Path, binary: str, config: dict[str, Any] | None,
                       secret: str | None, tls: bool) -> Node:
    def extra(port: int) -> dict[str, Any]:
        # A new node must not inherit the identity of a node that used this port before (a removed
        # shard's id stays banned by CLUSTER FORGET for a minute, and its slots would be stale).
        forget_files(workdir, port)
        return {**CLUSTER_CONF, "cluster-config-file": f"nodes-{port}.conf"}

    return start_data_node(name, role, workdir, binary, config, secret, tls, extra, bus=True)


def forget_files(workdir: Path, port: int) -> None:
    for name in (f"nodes-{port}.conf", f"dump-{port}.rdb", f"redis-{port}.conf"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()


def split_slots(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous slot ranges of near-equal size (like redis-cli --cluster create)."""
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


@topology("cluster", "Redis Cluster: N shards (default 3) x R replicas (default 1), all 16384 slots assigned",
          heal=lambda svc: _heal_cluster(svc), refresh=lambda svc: reread_cluster_roles(svc), probe=probe_for)
def _cluster(name: str, workdir: Path, shards: int = 3, replicas: int = 1, password: bool = False,
             tls: bool = False, config: dict[str, Any] | None = None) -> tuple[list[Node], dict]:
    if not 1 <= int(shards) <= 10 or not 0 <= int(replicas) <= 5:
        raise LabError(f"{shards} shards x {replicas} replicas? Choose 1-10 shards and 0-5 replicas per shard.")
    engine = engines.kv_engine()
    if tls:
        require_tls_between_nodes(engine.binary, cluster=True)
    binary = engine.binary
    meta: dict[str, Any] = engine.meta()
    secret = make_password(workdir, meta, password)
    nodes: list[Node] = []
    svc = Service(name=name, topology="cluster", options={"tls": tls}, nodes=nodes, meta=meta)
    with on_failure(lambda: stop_nodes(nodes)):  # no node of a half-made service is left running
        # Every node at once (each start waits on its own process). A primary reports cluster_state:ok
        # no sooner than 2 s after it starts (Redis's CLUSTER_WRITABLE_DELAY), so the sooner they all
        # run, the sooner the cluster is ready; what follows fits inside those 2 s.
        specs: list[tuple[str, str, int | None]] = []
        for s in range(1, int(shards) + 1):
            specs.append((f"{name}-{s}", "primary", None))
            specs += [(f"{name}-{s}-r{r}", "replica", s) for r in range(1, int(replicas) + 1)]
        started = in_parallel([lambda nm=nm, role=role: start_cluster_node(nm, role, workdir, binary, config,
                                                                             secret, tls)
                               for nm, role, _shard in specs])
        for n, (_nm, _role, shard) in zip(started, specs, strict=True):
            if shard is not None:
                n.extra["shard"] = shard
        nodes += started
        clients = {n.name: admin_client(svc, n) for n in nodes}
        for n in nodes:
            n.extra["node_id"] = clients[n.name].execute_command("CLUSTER", "MYID")
        primaries = [n for n in nodes if n.role == "primary"]
        for p, (lo, hi) in zip(primaries, split_slots(CLUSTER_SLOTS, len(primaries)), strict=True):
            clients[p.name].execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
        for epoch, n in enumerate(nodes, start=1):
            clients[n.name].execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        meet_all(svc, nodes)
        wait_for(lambda: all(knows_all(svc, n, nodes) for n in nodes), 30, "the nodes to meet each other")
        for n in nodes:
            if n.role == "replica":
                master = primaries[n.extra.pop("shard") - 1]
                clients[n.name].execute_command("CLUSTER", "REPLICATE", master.extra["node_id"])
        wait_cluster_ok(svc)
        reread_cluster_roles(svc)  # record who replicates whom (healing relies on it)
    meta["public_startup_nodes"] = [f"{n.host}:{n.port}" for n in nodes]
    return nodes, meta


def meet(svc: Service, via: Node, others: Iterable[Node]) -> None:
    c = admin_client(svc, via)
    for n in others:
        c.execute_command("CLUSTER", "MEET", n.host, n.port, n.port + BUS_OFFSET)


def meet_all(svc: Service, nodes: list[Node]) -> None:
    """Introduce every node to every other one (one MEET per pair) instead of one node to all and
    gossip for the rest: gossip carries a few nodes per ping, about one ping a second, so a 6-node
    cluster took a second to see itself whole. Past a dozen nodes, one node meets all (as
    redis-cli --cluster create does) and gossip does the rest."""
    if len(nodes) > 12:
        meet(svc, nodes[0], nodes[1:])
        return
    for i, n in enumerate(nodes[:-1]):
        meet(svc, n, nodes[i + 1:])


def knows_all(svc: Service, node: Node, nodes: list[Node]) -> bool:
    view = parse_cluster_nodes(admin_client(svc, node, socket_timeout=2).execute_command("CLUSTER", "NODES"))
    ids = {v["id"]: v for v in view}
    return all(n.extra["node_id"] in ids and "handshake" not in ids[n.extra["node_id"]]["flags"] for n in nodes)


def parse_cluster_nodes(text: str | bytes) -> list[dict[str, Any]]:
    """CLUSTER NODES as dicts: id, addr, port, flags, master, epoch, link, slots (migrations left out)."""
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):  # redis-py may parse it already
        raise LabError("unexpected parsed CLUSTER NODES reply")
    out = []
    for line in text.strip().splitlines():
        f = line.split()
        slots: list[int] = []
        for part in f[8:]:
            if part.startswith("["):
                continue
            lo, _, hi = part.partition("-")
            slots += range(int(lo), int(hi or lo) + 1)
        out.append({"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]), "flags": f[2].split(","),
                    "master": f[3], "epoch": int(f[6]), "link": f[7], "slots": slots})
    return out


def _cluster_view(svc: Service, node: Node) -> tuple | None:
    """What one node believes: None while it sees a failing or unknown node."""
    c = admin_client(svc, node, socket_timeout=2)
    if "cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
        return None
    view = []
    for v in parse_cluster_nodes(c.execute_command("CLUSTER", "NODES")):
        if {"fail", "fail?", "handshake", "noaddr"} & set(v["flags"]):
            return None
        is_master = "master" in v["flags"]
        # Who is in, who replicates whom and who serves which slots: what clients route by. Config
        # epochs are left out: two primaries may briefly share one until Redis resolves it, which
        # changes no route (_migrate_batch waits for distinct epochs before it relies on them).
        view.append((v["id"], "m" if is_master else "r", "-" if is_master else v["master"], tuple(v["slots"])))
    return tuple(sorted(view))


def wait_cluster_ok(svc: Service, timeout: float = 40) -> None:
    """Every live node says cluster_state:ok and they all see the same nodes, roles and slot owners."""
    def agreed() -> bool:
        views = {_cluster_view(svc, n) for n in svc.nodes if n.alive()}
        return len(views) == 1 and None not in views

    try:
        wait_for(agreed, timeout, f"every node of {svc.name} to report cluster_state:ok and agree on the slots",
                 interval=0.1)
    except LabError as exc:
        raise LabError(f"{exc}\nWhat each node sees:\n{describe_views(svc)}") from None


def describe_views(svc: Service) -> str:
    lines = []
    for n in svc.nodes:
        if not n.alive():
            lines.append(f"  {n.name} :{n.port} is not running")
            continue
        try:
            c = admin_client(svc, n, socket_timeout=2)
            state = next(ln for ln in c.execute_command("CLUSTER", "INFO").splitlines() if ln.startswith("cluster_state"))
            view = parse_cluster_nodes(c.execute_command("CLUSTER", "NODES"))
            odd = [f"{v['port']}:{','.join(v['flags'])}" for v in view
                   if {"fail", "fail?", "handshake", "noaddr"} & set(v["flags"])]
            owners = [f"{v['port']}={len(v['slots'])}@{v['epoch']}" for v in view if "master" in v["flags"]]
            lines.append(f"  {n.name} :{n.port} {state.strip()} {'; '.join(odd)} slots@epoch: {' '.join(owners)}")
        except RedisError as e:  # a paused or dying node
            lines.append(f"  {n.name} :{n.port} does not answer ({e})")
    return "\n".join(lines)


def _cluster_class() -> type:
    from redis.cluster import PRIMARY, ClusterNode, RedisCluster

    class LabRedisCluster(RedisCluster):
        """RedisCluster that follows ASK to a node it has not met yet (a freshly added shard).

        redis-py looks the ASK target up in its node cache and crashes with AttributeError when the
        node is new (redis/redis-py#2432); a client must not fail because the cluster grew.
        """

        def get_node(self, host: str | None = None, port: int | None = None,
                     node_name: str | None = None) -> Any:
            found = super().get_node(host, port, node_name)
            if found is None and (node_name or (host and port)):
                if node_name:
                    host, _, raw_port = node_name.rpartition(":")
                    port = int(raw_port)
                found = ClusterNode(host, int(port), PRIMARY)
                with self.nodes_manager._lock:
                    found = self.nodes_manager.nodes_cache.setdefault(found.name, found)
            return found

    return LabRedisCluster


def cluster_client(svc: Service, **kwargs: Any) -> Any:
    """A redis.cluster.RedisCluster: it learns the slot map and follows MOVED and ASK by itself."""
    from redis.cluster import ClusterNode

    if svc.topology != "cluster":
        raise LabError(f"{svc.name} is a {svc.topology} service, not a cluster; use start('cluster').")
    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_timeout", 5)
    kwargs.setdefault("socket_connect_timeout", 2)
    password = svc.password()
    if password:
        kwargs.setdefault("password", password)
    for k, v in tls_client_kwargs(svc).items():
        kwargs.setdefault(k, v)
    startup = [ClusterNode(n.host, n.port) for n in svc.nodes if n.alive() and not n.paused()]
    return _cluster_class()(startup_nodes=startup, **kwargs)


def cluster_nodes(svc: Service) -> list[dict[str, Any]]:
    """The cluster's view (from one live node): id, port, flags, master id, epoch, slots per node."""
    for n in svc.nodes:
        if n.alive() and not n.paused():
            try:
                return parse_cluster_nodes(admin_client(svc, n, socket_timeout=2).execute_command("CLUSTER", "NODES"))
            except RedisError as exc:  # paused, dying or loading: ask the next one
                log.debug("CLUSTER NODES on %s failed: %s", n.name, exc)
    raise LabError(f"No node of {svc.name} answers. `start('cluster', name={svc.name!r})` restarts it.")


def slot_owners(svc: Service) -> dict[int, int]:
    """slot -> port of the primary serving it."""
    return {s: v["port"] for v in cluster_nodes(svc) if "master" in v["flags"] for s in v["slots"]}


def reread_cluster_roles(svc: Service) -> Service:
    by_id = {v["id"]: v for v in cluster_nodes(svc)}
    for n in svc.nodes:
        v = by_id.get(n.extra.get("node_id"))
        if v:
            n.role = "primary" if "master" in v["flags"] else "replica"
            n.extra["master_id"] = None if n.role == "primary" else v["master"]
            n.extra["slots"] = len(v["slots"])
    svc.nodes.sort(key=lambda n: (n.role != "primary", n.name))
    return svc


def _heal_cluster(svc: Service) -> Service:
    """Restart killed nodes; a dead primary with a replica is first replaced by that replica."""
    dead = [n for n in svc.nodes if not n.alive()]
    live = [n for n in svc.nodes if n.alive()]
    if not live:
        raise LabError("every cluster node is gone")
    dead_ids = {n.extra.get("node_id") for n in dead}
    live_ids = {n.extra.get("node_id") for n in live}
    view = cluster_nodes(svc)  # what the survivors know: which dead node served slots, who copies it
    covered = {v["master"] for v in view if v["id"] in live_ids and "master" not in v["flags"]}
    orphaned = [v for v in view if v["id"] in dead_ids and "master" in v["flags"] and v["slots"]]

    def failed_over() -> bool:
        now = cluster_nodes(svc)
        return all(not (v["id"] in dead_ids and "master" in v["flags"] and v["slots"]) for v in now)

    if any(v["id"] in covered for v in orphaned):  # a replica will take over: let it, then restart
        with contextlib.suppress(LabError):
            wait_for(failed_over, 30, "a replica to take over the dead primary's slots", interval=0.2)
    for n in dead:
        engines.restart_node(n, node_probe(n))
    wait_cluster_ok(svc)
    return reread_cluster_roles(svc)
