"""Multi-node topologies: a Memcached pool, a primary with replicas under Redis Sentinel, Redis Cluster.

They are what ElastiCache runs for you (a Memcached cluster of N nodes, a replication group with
Multi-AZ automatic failover, a cluster-mode-enabled replication group), made of real server
processes on loopback. Each is started by name through `helpers.runtime.services.start` and healed when a
node is killed from outside, without losing the data its replicas still hold.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from helpers.runtime import engines, state
from helpers.runtime.engines import LOOPBACK, Node
from helpers.runtime.services import (
    Service,
    memcached_argv,
    new_password,
    redis_client_for,
    redis_conf,
    topology,
)
from helpers.runtime.state import LabError

CLUSTER_SLOTS = 16384
BUS_OFFSET = 10000

# --- shared bits ------------------------------------------------------------------------------


def _tls_module() -> Any:
    try:
        from helpers.runtime import tls  # type: ignore[attr-defined]
    except ModuleNotFoundError:
        raise LabError("TLS is not available yet in this checkout (helpers/tls.py is missing). "
                       "Start the topology without tls=True, or update the lab's code.") from None
    return tls


def _probe(tls: bool) -> engines.Probe:
    return _tls_module().probe_redis_tls if tls else engines.probe_redis


def _node_probe(node: Node) -> engines.Probe:
    return _probe(bool(node.extra.get("tls")))


def _tls_kwargs(svc: Service) -> dict[str, Any]:
    return dict(_tls_module().redis_tls_client_kwargs()) if svc.options.get("tls") else {}


def _make_secret(workdir: Path, password: bool, meta: dict[str, Any]) -> str | None:
    """A generated AUTH password kept in an owner-only file; only its path is recorded."""
    if not password:
        return None
    secret = new_password()
    pw_file = workdir / "password"
    state.write_secret(pw_file, secret)
    meta["password_file"] = str(pw_file)
    return secret


def node_client(svc: Service, node: Node | str | int, **kwargs: Any) -> Any:
    """A plain redis.Redis client for one node of `svc` (by Node, name or port), with its AUTH/TLS."""
    n = node if isinstance(node, Node) else _find_node(svc, node)
    kwargs = {**_tls_kwargs(svc), **kwargs}
    return redis_client_for(n.host, n.port, password=svc.password(), **kwargs)


def _find_node(svc: Service, node: Node | str | int) -> Node:
    if isinstance(node, Node):  # the same process as recorded in *this* service object
        node = node.name
    for n in svc.nodes:
        if node in (n.name, n.port, n.extra.get("node_id")) or str(node) == str(n.port):
            return n
    raise LabError(f"{svc.name} has no node {node!r}. Its nodes: {', '.join(n.name for n in svc.nodes)}.")


def _wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; explain what did not happen otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # an engine still starting or failing over answers errors
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise LabError(f"Timed out after {timeout:.0f}s waiting for {what}{detail}. The machine may be overloaded; "
                   "run `python -m helpers stop` and try again.")


def _data_conf(port: int, workdir: Path, config: dict[str, Any] | None, secret: str | None, tls: bool,
               extra: dict[str, Any] | None = None) -> Path:
    """Config of one data node; dump files are per port because nodes share a directory."""
    # A replica syncs at once (the default waits 5 s for more replicas to share one transfer).
    conf: dict[str, Any] = {"dbfilename": f"dump-{port}.rdb", "repl-diskless-sync-delay": "0",
                            **(config or {}), **(extra or {})}
    if secret:
        conf["masterauth"] = secret
    if tls:
        conf.update(_tls_module().redis_tls_config(port))
    return redis_conf(port, workdir, conf, secret, filename=f"redis-{port}.conf")


def start_data_node(name: str, role: str, workdir: Path, binary: str, config: dict[str, Any] | None,
                     secret: str | None, tls: bool, extra_conf: dict[str, Any] | None = None,
                     bus: bool = False) -> Node:
    """Start one redis-server of a topology (replicated, cluster, or the control plane's groups) and wait for it."""

    def argv(port: int) -> list[str]:
        return [binary, str(_data_conf(port, workdir, config, secret, tls, extra_conf))]

    node = engines.start_node(name=name, kind="redis", role=role, argv_for_port=argv, workdir=workdir,
                              probe=_probe(tls), bus_offset=BUS_OFFSET if bus else None,
                              extra={"tls": True} if tls else {})
    node.extra["config_file"] = node.argv[1]
    return node


def record(svc: Service) -> Service:
    """Record a changed service (roles, nodes) unless it was stopped or replaced meanwhile."""
    with state.locked():
        registry = state.load_registry()
        record = registry.get(svc.name)
        if record and record.get("topology") == svc.topology:
            registry[svc.name] = svc.to_dict()
            state.save_registry(registry)
    return svc


def _set_conf_line(path: Path, key: str, value: str | None) -> None:
    """Replace (or drop, when value is None) a directive in an owner-only config file."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(key + " ")]
    if value is not None:
        lines.append(f"{key} {value}")
    state.write_secret(path, "\n".join(lines) + "\n")


# --- memcached-pool ---------------------------------------------------------------------------


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


# --- replicated: primary + replicas + Sentinel --------------------------------------------------

SENTINELS = 3
QUORUM = 2


def _sentinel_conf(port: int, workdir: Path, master: str, primary_port: int, secret: str | None, tls: bool,
                   down_after_ms: int, failover_timeout_ms: int) -> Path:
    path = workdir / f"sentinel-{port}.conf"
    lines = [f"port {port}", f"bind {LOOPBACK}", "protected-mode yes", "daemonize no", 'logfile ""',
             f"dir {workdir}", f"sentinel monitor {master} {LOOPBACK} {primary_port} {QUORUM}",
             f"sentinel down-after-milliseconds {master} {down_after_ms}",
             f"sentinel failover-timeout {master} {failover_timeout_ms}",
             f"sentinel parallel-syncs {master} 2"]
    if secret:
        lines += [f"sentinel auth-pass {master} {secret}", f"requirepass {secret}"]
    if tls:
        lines = [ln for ln in lines if not ln.startswith("port ")]
        lines += [f"{k} {v}" for k, v in _tls_module().redis_tls_config(port).items()]
    state.write_secret(path, "\n".join(lines) + "\n")
    return path


@topology("replicated", "one primary, N replicas (default 2) and 3 Redis Sentinels: automatic failover",
          heal=lambda svc: _heal_replicated(svc), refresh=lambda svc: _reread_replicated_roles(svc))
def _replicated(name: str, workdir: Path, replicas: int = 2, password: bool = False, tls: bool = False,
                config: dict[str, Any] | None = None, down_after_ms: int = 1500,
                failover_timeout_ms: int = 6000) -> tuple[list[Node], dict]:
    if not 1 <= int(replicas) <= 5:
        raise LabError(f"{replicas} replicas? A replication group has 1 to 5 replicas; choose one of those.")
    binary = engines.find_binary("redis")
    meta: dict[str, Any] = {"binary": binary, "version": engines.binary_version(binary), "master_name": name,
                            "public_master_name": name}
    secret = _make_secret(workdir, password, meta)
    nodes: list[Node] = []
    try:
        primary = start_data_node(f"{name}-1", "primary", workdir, binary, config, secret, tls)
        nodes.append(primary)
        for i in range(2, int(replicas) + 2):
            nodes.append(start_data_node(f"{name}-{i}", "replica", workdir, binary, config, secret, tls,
                                          {"replicaof": f"{LOOPBACK} {primary.port}"}))
        svc = Service(name=name, topology="replicated", options={"tls": tls}, nodes=nodes, meta=meta)
        for n in nodes[1:]:
            c = node_client(svc, n)
            _wait(lambda c=c: c.info("replication").get("master_link_status") == "up", 30,
                  f"replica {n.name} to sync with the primary")
        for i in range(1, SENTINELS + 1):
            nodes.append(engines.start_node(
                name=f"{name}-sentinel-{i}", kind="sentinel", role="sentinel", workdir=workdir, probe=_probe(tls),
                extra={"tls": True} if tls else {},
                argv_for_port=lambda p: [binary, str(_sentinel_conf(p, workdir, name, primary.port, secret, tls,
                                                                      down_after_ms, failover_timeout_ms)),
                                         "--sentinel"]))
        _wait_sentinels_ready(svc, int(replicas))
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    meta["public_sentinels"] = [f"{n.host}:{n.port}" for n in nodes if n.role == "sentinel"]
    return nodes, meta


def sentinel_node_client(svc: Service, node: Node) -> Any:
    """A client for one Sentinel process (SENTINEL commands), with the service's password and TLS."""
    return redis_client_for(node.host, node.port, password=svc.password(), socket_timeout=2,
                            **_tls_kwargs(svc))


def _wait_sentinels_ready(svc: Service, replicas: int, timeout: float = 30) -> None:
    """Every Sentinel knows the primary, all replicas and the other Sentinels: failover can work."""
    master = svc.meta["master_name"]

    def ready() -> bool:
        for s in svc.nodes_by(role="sentinel"):
            info = sentinel_node_client(svc, s).execute_command("SENTINEL", "MASTER", master)
            if isinstance(info, list):  # RESP2 without a response callback: flat list
                info = dict(zip(info[::2], info[1::2], strict=False))
            if (int(info["num-slaves"]) < replicas or int(info["num-other-sentinels"]) < SENTINELS - 1
                    or info["flags"] != "master"):
                return False
        return True

    _wait(ready, timeout, "the Sentinels to discover the replicas and each other", interval=0.2)


def sentinel(svc: Service, **kwargs: Any) -> Any:
    """A redis.sentinel.Sentinel over the service's Sentinels (the way clients discover the primary)."""
    from redis.sentinel import Sentinel

    if svc.topology != "replicated":
        raise LabError(f"{svc.name} is a {svc.topology} service; Sentinel runs only with start('replicated').")
    password = svc.password()
    tls = _tls_kwargs(svc)
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
    others' hello messages reach it, and must not be believed meanwhile.
    """
    best: tuple[int, str, int] | None = None
    for s in svc.nodes_by(role="sentinel"):
        if not s.alive() or s.paused():
            continue
        try:
            info = sentinel_node_client(svc, s).execute_command("SENTINEL", "MASTER", svc.meta["master_name"])
        except Exception:
            continue
        if isinstance(info, list):  # RESP2 without a response callback: flat list
            info = dict(zip(info[::2], info[1::2], strict=False))
        info = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in info.items()}
        flags = str(info.get("flags", "")).split(",")
        if "master" not in flags or "s_down" in flags or "o_down" in flags:
            continue
        answer = (int(info.get("config-epoch", 0)), str(info["ip"]), int(info["port"]))
        if best is None or answer[0] > best[0]:
            best = answer
    if best is not None:
        return best[1], best[2]
    host, port = sentinel(svc).discover_master(svc.meta["master_name"])  # raises MasterNotFoundError
    return host, int(port)


def wait_replicas_synced(svc: Service, timeout: float = 30) -> int:
    """Wait until every live replica is linked to the current primary; returns how many there are."""
    def synced() -> list[int] | None:
        host, port = current_primary(svc)
        info = redis_client_for(host, port, password=svc.password(), socket_timeout=2,
                                **_tls_kwargs(svc)).info("replication")
        live = [n for n in svc.nodes_by(kind="redis") if n.alive() and not n.paused() and n.port != port]
        linked = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                  and v.get("state") == "online"]
        return [len(linked)] if info.get("role") == "master" and len(linked) >= len(live) else None

    return _wait(synced, timeout, f"the replicas of {svc.name} to sync with the primary", interval=0.1)[0]


def _reread_replicated_roles(svc: Service) -> Service:
    live_primary = None
    for n in svc.nodes_by(kind="redis"):
        if not n.alive() or n.paused():
            continue
        with contextlib.suppress(Exception):
            role = node_client(svc, n, socket_timeout=1).execute_command("ROLE")[0]
            role = role.decode() if isinstance(role, bytes) else role
            n.role = "primary" if role == "master" else "replica"
            if n.role == "primary":
                live_primary = n
    with contextlib.suppress(Exception):
        host, port = current_primary(svc)
        for n in svc.nodes_by(kind="redis"):
            if n.port == port and n.alive() and not n.paused():
                live_primary = n
    for n in svc.nodes_by(kind="redis"):
        if live_primary is not None and n is not live_primary:
            n.role = "replica"  # a dead or demoted ex-primary returns as a replica
    if live_primary is not None:
        live_primary.role = "primary"
    order = {"primary": 0, "replica": 1, "sentinel": 2}
    svc.nodes.sort(key=lambda n: (order.get(n.role, 3), n.name))
    return svc


def _reread_roles(svc: Service) -> Service:
    if svc.topology == "replicated":
        return _reread_replicated_roles(svc)
    if svc.topology == "cluster":
        return _reread_cluster_roles(svc)
    return svc


def refresh_roles(svc: Service) -> Service:
    """Re-read each node's role from the engines (after a failover) and record it."""
    return record(_reread_roles(svc))


def _heal_replicated(svc: Service) -> Service:
    """Restart what was killed: Sentinels first, then let them fail over, then old nodes as replicas."""
    for s in svc.nodes_by(role="sentinel"):
        if not s.alive():
            engines.restart_node(s, _node_probe(s))
    data = svc.nodes_by(kind="redis")
    if not any(n.alive() for n in data):
        raise LabError("every data node is gone")  # nothing to keep: start() creates it afresh
    try:
        host, port = current_primary(svc)
    except Exception:
        port = -1
    recorded = next((n for n in data if n.port == port), None)
    if recorded is None or not recorded.alive():
        # The primary died: let the Sentinels promote a replica before anything restarts.
        def promoted() -> int | None:
            _h, p = current_primary(svc)
            n = next((x for x in data if x.port == p), None)
            return p if n is not None and n.alive() else None

        port = _wait(promoted, 30, "the Sentinels to promote a replica", interval=0.2)
    for n in data:
        if not n.alive():
            _set_conf_line(Path(n.extra.get("config_file", n.argv[1])), "replicaof", f"{LOOPBACK} {port}")
            engines.restart_node(n, _node_probe(n))
    return _reread_replicated_roles(svc)


# --- cluster ----------------------------------------------------------------------------------


CLUSTER_CONF = {"cluster-enabled": "yes", "cluster-node-timeout": "3000",
                "cluster-allow-replica-migration": "no", "cluster-replica-validity-factor": "0"}


def _cluster_node(name: str, role: str, workdir: Path, binary: str, config: dict[str, Any] | None,
                  secret: str | None, tls: bool) -> Node:
    def argv(port: int) -> list[str]:
        # A new node must not inherit the identity of a node that used this port before (a removed
        # shard's id stays banned by CLUSTER FORGET for a minute, and its slots would be stale).
        _forget_files(workdir, port)
        extra = {**CLUSTER_CONF, "cluster-config-file": f"nodes-{port}.conf"}
        return [binary, str(_data_conf(port, workdir, config, secret, tls, extra))]

    node = engines.start_node(name=name, kind="redis", role=role, argv_for_port=argv, workdir=workdir,
                              probe=_probe(tls), bus_offset=BUS_OFFSET, extra={"tls": True} if tls else {})
    node.extra["config_file"] = node.argv[1]
    return node


def _forget_files(workdir: Path, port: int) -> None:
    for name in (f"nodes-{port}.conf", f"dump-{port}.rdb", f"redis-{port}.conf"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous slot ranges of near-equal size (like redis-cli --cluster create)."""
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


@topology("cluster", "Redis Cluster: N shards (default 3) x R replicas (default 1), all 16384 slots assigned",
          heal=lambda svc: _heal_cluster(svc), refresh=lambda svc: _reread_cluster_roles(svc))
def _cluster(name: str, workdir: Path, shards: int = 3, replicas: int = 1, password: bool = False,
             tls: bool = False, config: dict[str, Any] | None = None) -> tuple[list[Node], dict]:
    if not 1 <= int(shards) <= 10 or not 0 <= int(replicas) <= 5:
        raise LabError(f"{shards} shards x {replicas} replicas? Choose 1-10 shards and 0-5 replicas per shard.")
    binary = engines.find_binary("redis")
    meta: dict[str, Any] = {"binary": binary, "version": engines.binary_version(binary)}
    secret = _make_secret(workdir, password, meta)
    nodes: list[Node] = []
    svc = Service(name=name, topology="cluster", options={"tls": tls}, nodes=nodes, meta=meta)
    try:
        for s in range(1, int(shards) + 1):
            nodes.append(_cluster_node(f"{name}-{s}", "primary", workdir, binary, config, secret, tls))
            for r in range(1, int(replicas) + 1):
                n = _cluster_node(f"{name}-{s}-r{r}", "replica", workdir, binary, config, secret, tls)
                n.extra["shard"] = s
                nodes.append(n)
        for n in nodes:
            n.extra["node_id"] = node_client(svc, n).execute_command("CLUSTER", "MYID")
        primaries = [n for n in nodes if n.role == "primary"]
        for p, (lo, hi) in zip(primaries, _split(CLUSTER_SLOTS, len(primaries)), strict=True):
            node_client(svc, p).execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
        for epoch, n in enumerate(nodes, start=1):
            node_client(svc, n).execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        _meet(svc, nodes[0], nodes[1:])
        _wait(lambda: all(_knows_all(svc, n, nodes) for n in nodes), 30, "the nodes to meet each other")
        for n in nodes:
            if n.role == "replica":
                master = primaries[n.extra.pop("shard") - 1]
                node_client(svc, n).execute_command("CLUSTER", "REPLICATE", master.extra["node_id"])
        wait_cluster_ok(svc)
        _reread_cluster_roles(svc)  # record who replicates whom (healing relies on it)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    meta["public_startup_nodes"] = [f"{n.host}:{n.port}" for n in nodes]
    return nodes, meta


def _meet(svc: Service, via: Node, others: Iterable[Node]) -> None:
    c = node_client(svc, via)
    for n in others:
        c.execute_command("CLUSTER", "MEET", n.host, n.port, n.port + BUS_OFFSET)


def _knows_all(svc: Service, node: Node, nodes: list[Node]) -> bool:
    view = parse_cluster_nodes(node_client(svc, node, socket_timeout=2).execute_command("CLUSTER", "NODES"))
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
    c = node_client(svc, node, socket_timeout=2)
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
        _wait(agreed, timeout, f"every node of {svc.name} to report cluster_state:ok and agree on the slots",
              interval=0.1)
    except LabError as exc:
        raise LabError(f"{exc}\nWhat each node sees:\n{_describe_views(svc)}") from None


def _describe_views(svc: Service) -> str:
    lines = []
    for n in svc.nodes:
        if not n.alive():
            lines.append(f"  {n.name} :{n.port} is not running")
            continue
        try:
            c = node_client(svc, n, socket_timeout=2)
            state = next(ln for ln in c.execute_command("CLUSTER", "INFO").splitlines() if ln.startswith("cluster_state"))
            view = parse_cluster_nodes(c.execute_command("CLUSTER", "NODES"))
            odd = [f"{v['port']}:{','.join(v['flags'])}" for v in view
                   if {"fail", "fail?", "handshake", "noaddr"} & set(v["flags"])]
            owners = [f"{v['port']}={len(v['slots'])}@{v['epoch']}" for v in view if "master" in v["flags"]]
            lines.append(f"  {n.name} :{n.port} {state.strip()} {'; '.join(odd)} slots@epoch: {' '.join(owners)}")
        except Exception as e:  # a paused or dying node
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
    for k, v in _tls_kwargs(svc).items():
        kwargs.setdefault(k, v)
    startup = [ClusterNode(n.host, n.port) for n in svc.nodes if n.alive() and not n.paused()]
    return _cluster_class()(startup_nodes=startup, **kwargs)


def cluster_nodes(svc: Service) -> list[dict[str, Any]]:
    """The cluster's view (from one live node): id, port, flags, master id, epoch, slots per node."""
    for n in svc.nodes:
        if n.alive() and not n.paused():
            with contextlib.suppress(Exception):
                return parse_cluster_nodes(node_client(svc, n, socket_timeout=2).execute_command("CLUSTER", "NODES"))
    raise LabError(f"No node of {svc.name} answers. `start('cluster', name={svc.name!r})` restarts it.")


def slot_owners(svc: Service) -> dict[int, int]:
    """slot -> port of the primary serving it."""
    return {s: v["port"] for v in cluster_nodes(svc) if "master" in v["flags"] for s in v["slots"]}


def _reread_cluster_roles(svc: Service) -> Service:
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
            _wait(failed_over, 30, "a replica to take over the dead primary's slots", interval=0.2)
    for n in dead:
        engines.restart_node(n, _node_probe(n))
    wait_cluster_ok(svc)
    return _reread_cluster_roles(svc)


# --- resharding --------------------------------------------------------------------------------


def _primary_by_ref(svc: Service, ref: Node | str | int) -> Node:
    n = _find_node(svc, ref)
    view = {v["id"]: v for v in cluster_nodes(svc)}
    v = view.get(n.extra.get("node_id"))
    if not v or "master" not in v["flags"]:
        raise LabError(f"{n.name} (port {n.port}) is not a primary of {svc.name}; name a primary.")
    return n


def _migrate_batch(svc: Service, slots: list[int], source: Node, target: Node, src: Any, tgt: Any,
                   keys_per_call: int = 200) -> int:
    """Move a batch of slots of one source to target, the way redis-cli --cluster reshard does."""
    sid, tid = source.extra["node_id"], target.extra["node_id"]
    p = tgt.pipeline(transaction=False)
    for s in slots:
        p.execute_command("CLUSTER", "SETSLOT", s, "IMPORTING", sid)
    p.execute()
    p = src.pipeline(transaction=False)
    for s in slots:
        p.execute_command("CLUSTER", "SETSLOT", s, "MIGRATING", tid)
    p.execute()
    password = svc.password()
    auth = ["AUTH", password] if password else []
    moved = 0
    pending = list(slots)
    while pending:  # keys still on the source (only existing keys can be written there meanwhile)
        p = src.pipeline(transaction=False)
        for s in pending:
            p.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
        pending = [s for s, count in zip(pending, p.execute(), strict=True) if count]
        if not pending:
            break
        p = src.pipeline(transaction=False)
        for s in pending:
            p.execute_command("CLUSTER", "GETKEYSINSLOT", s, keys_per_call)
        p2 = src.pipeline(transaction=False)  # MIGRATE takes keys of one slot at a time
        for keys in p.execute():
            if keys:
                p2.execute_command("MIGRATE", target.host, target.port, "", 0, 10000, "REPLACE", *auth,
                                   "KEYS", *keys)
                moved += len(keys)
        p2.execute()
    # Closing the slots on the target bumps its config epoch to what it believes is the cluster's
    # highest + 1, without consensus. If it has not heard of another primary's recent bump (or two
    # primaries still share an epoch), the new owner can end up with an epoch no greater than the
    # old owner's: nodes then keep the old owner, send the new one an UPDATE that takes the slots
    # back, and the cluster settles on views that disagree forever while every node says "ok".
    # So close them only once every node agrees on distinct epochs, and tell every primary the
    # new owner directly (as redis-cli does) instead of leaving it to epoch-ordered gossip.
    _wait_epochs_settled(svc)
    for c in (tgt, src):  # the target first (it bumps its epoch), then the source
        p = c.pipeline(transaction=False)
        for s in slots:
            p.execute_command("CLUSTER", "SETSLOT", s, "NODE", tid)
        p.execute()
    masters = {v["id"] for v in cluster_nodes(svc) if "master" in v["flags"]}  # roles may be stale in svc
    for n in svc.nodes:
        if n.extra.get("node_id") in masters - {sid, tid} and n.alive() and not n.paused():
            with contextlib.suppress(Exception):  # best effort: gossip gets there too, epochs now in order
                p = node_client(svc, n, socket_timeout=5).pipeline(transaction=False)
                for s in slots:
                    p.execute_command("CLUSTER", "SETSLOT", s, "NODE", tid)
                p.execute()
    return moved


def _epochs_settled(svc: Service) -> bool:
    """Every live node answers and sees the same primaries with the same config epochs, all distinct."""
    seen = None
    for n in svc.nodes:
        if not n.alive() or n.paused():
            continue
        nodes = parse_cluster_nodes(node_client(svc, n, socket_timeout=2).execute_command("CLUSTER", "NODES"))
        epochs = {v["id"]: v["epoch"] for v in nodes
                  if "master" in v["flags"] and not {"fail", "fail?", "handshake", "noaddr"} & set(v["flags"])}
        used = [e for e in epochs.values() if e]  # epoch 0: a new primary, bumped anyway when it gets slots
        if len(set(used)) != len(used) or (seen is not None and epochs != seen):
            return False
        seen = epochs
    return True


def _wait_epochs_settled(svc: Service, timeout: float = 40) -> None:
    try:
        _wait(lambda: _epochs_settled(svc), timeout, f"the primaries of {svc.name} to agree on distinct "
              "config epochs", interval=0.05)
    except LabError as exc:
        raise LabError(f"{exc}\nWhat each node sees:\n{_describe_views(svc)}") from None


def move_slots(svc: Service, slots: Iterable[int], target: Node | str | int, batch: int = 512,
               wait: bool = True) -> int:
    """Move hash slots to the primary `target` while clients keep working; returns keys moved.

    Keys go over with MIGRATE; while a slot migrates, clients get ASK for keys already gone, and
    MOVED once it is done; a cluster-aware client follows both, so no request fails.
    """
    tnode = _primary_by_ref(svc, target)
    owners = slot_owners(svc)
    wanted = sorted({int(s) for s in slots})
    bad = [s for s in wanted if not 0 <= s < CLUSTER_SLOTS]
    if bad:
        raise LabError(f"Slots are numbered 0..16383; {bad[:3]} are not.")
    by_source: dict[int, list[int]] = {}
    for s in wanted:
        if owners.get(s) != tnode.port:
            by_source.setdefault(owners[s], []).append(s)
    moved = 0
    tgt = node_client(svc, tnode)
    for src_port, src_slots in by_source.items():
        source = _find_node(svc, src_port)
        src = node_client(svc, source)
        for i in range(0, len(src_slots), batch):
            moved += _migrate_batch(svc, src_slots[i:i + batch], source, tnode, src, tgt)
    if wait:
        wait_cluster_ok(svc)
        record(_reread_cluster_roles(svc))
    return moved


def add_shard(svc: Service, replicas: int | None = None, rebalance: bool = True) -> Service:
    """Scale out: start a new primary (+ replicas), join it, and (by default) give it its share of slots."""
    svc = _current(svc)
    if replicas is None:
        primaries = [n for n in svc.nodes if n.role == "primary"]
        replicas = round((len(svc.nodes) - len(primaries)) / max(len(primaries), 1))
    binary = svc.meta["binary"]
    workdir = state.service_dir(svc.name)
    secret = svc.password()
    tls = bool(svc.options.get("tls"))
    existing = {n.name for n in svc.nodes}
    k = 1
    while f"{svc.name}-{k}" in existing:
        k += 1
    new = [_cluster_node(f"{svc.name}-{k}", "primary", workdir, binary, svc.options.get("config"), secret, tls)]
    for r in range(1, int(replicas) + 1):
        new.append(_cluster_node(f"{svc.name}-{k}-r{r}", "replica", workdir, binary, svc.options.get("config"),
                                 secret, tls))
    try:
        for n in new:
            n.extra["node_id"] = node_client(svc, n).execute_command("CLUSTER", "MYID")
        for via in [n for n in svc.nodes if n.alive() and not n.paused()]:
            _meet(svc, via, new)  # every node meets the newcomers at once, without waiting for gossip
        everyone = svc.nodes + new
        _wait(lambda: all(_knows_all(svc, n, everyone) for n in everyone if n.alive()), 30,
              "the new nodes to join the cluster")
        for n in new[1:]:
            node_client(svc, n).execute_command("CLUSTER", "REPLICATE", new[0].extra["node_id"])
    except BaseException:
        for n in new:
            n.stop()
        raise
    svc.nodes.extend(new)
    record(svc)
    wait_cluster_ok(svc)
    if rebalance:
        move_slots(svc, rebalance_slots(svc, new[0]), new[0])
    return refresh_roles(svc)


def rebalance_slots(svc: Service, target: Node | str | int) -> list[int]:
    """The slots to give `target` so every primary ends with about the same number: an equal
    share taken from each of the others (the end of their ranges)."""
    tnode = _find_node(svc, target)
    owners = slot_owners(svc)
    primaries = sorted({p for p in owners.values()} | {tnode.port})
    fair = CLUSTER_SLOTS // len(primaries)
    have = sum(1 for o in owners.values() if o == tnode.port)
    others = [p for p in primaries if p != tnode.port]
    take: list[int] = []
    need = max(0, fair - have)
    for i, p in enumerate(others):
        quota = need // len(others) + (1 if i < need % len(others) else 0)
        mine = sorted(s for s, o in owners.items() if o == p)
        take += mine[len(mine) - quota:] if quota else []
    return take


def open_slots(svc: Service) -> dict[int, tuple[str, str]]:
    """Slots left half-migrated (an interrupted resharding): slot -> (state, other node id)."""
    found: dict[int, tuple[str, str]] = {}
    for n in svc.nodes:
        if not n.alive() or n.paused():
            continue
        for line in node_client(svc, n, socket_timeout=2).execute_command("CLUSTER", "NODES").splitlines():
            if "myself" not in line.split()[2]:
                continue
            for part in line.split()[8:]:
                if part.startswith("["):  # [slot->-target] migrating, [slot-<-source] importing
                    slot, arrow, other = part.strip("[]").partition("->-" if "->-" in part else "-<-")
                    state_ = "migrating" if arrow == "->-" else "importing"
                    if found.get(int(slot), ("",))[0] != "migrating":  # the migrating side says where to
                        found[int(slot)] = (state_, other)
    return found


def fix_open_slots(svc: Service) -> int:
    """Finish any half-done slot migration (what `redis-cli --cluster fix` does); returns how many."""
    svc = _current(svc)
    pending = open_slots(svc)
    by_id = {n.extra.get("node_id"): n for n in svc.nodes}
    for slot, (st, other) in pending.items():
        if st == "migrating" and other in by_id:
            move_slots(svc, [slot], by_id[other], wait=False)
    for n in svc.nodes:  # importing without a migrating side: just close it
        if n.alive() and not n.paused():
            c = node_client(svc, n)
            for slot in open_slots(Service(svc.name, svc.topology, svc.options, [n], svc.meta)):
                c.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    if pending:
        wait_cluster_ok(svc)
    return len(pending)


def resize(svc: Service, shards: int) -> Service:
    """Add or remove shards until the cluster has `shards` primaries (a lab resets its shape)."""
    fix_open_slots(svc)
    svc = _current(svc)
    while len([n for n in svc.nodes if n.role == "primary"]) > shards:
        svc = remove_shard(svc, [n for n in svc.nodes if n.role == "primary"][-1])
    while len([n for n in svc.nodes if n.role == "primary"]) < shards:
        svc = add_shard(svc)
    return svc


def remove_shard(svc: Service, node_id_or_port: Node | str | int) -> Service:
    """Scale in: hand the shard's slots (and keys) to the other primaries, then retire its nodes."""
    svc = _current(svc)
    primary = _primary_by_ref(svc, node_id_or_port)
    pid = primary.extra["node_id"]
    others = [n for n in svc.nodes if n.role == "primary" and n.port != primary.port]
    if not others:
        raise LabError("This is the cluster's only shard; it cannot be removed (stop the service instead).")
    mine = sorted(s for s, p in slot_owners(svc).items() if p == primary.port)
    for i, (lo, hi) in enumerate(_split(len(mine), len(others))):
        if hi >= lo:  # each source/target pair is independent: agree once at the end
            move_slots(svc, mine[lo:hi + 1], others[i], wait=False)
    wait_cluster_ok(svc)
    svc = _current(svc)
    leaving = [n for n in svc.nodes if n.extra.get("master_id") == pid or n.extra.get("node_id") == pid]
    leaving_ids = {n.extra["node_id"] for n in leaving}
    for n in svc.nodes:
        if n.alive() and n.extra.get("node_id") not in leaving_ids:
            c = node_client(svc, n)
            for gone in leaving_ids:
                with contextlib.suppress(Exception):
                    c.execute_command("CLUSTER", "FORGET", gone)
    for n in leaving:
        n.stop()
        _forget_files(Path(n.workdir), n.port)
    svc.nodes = [n for n in svc.nodes if n.extra.get("node_id") not in leaving_ids]
    record(svc)
    wait_cluster_ok(svc)
    return refresh_roles(svc)


def _current(svc: Service) -> Service:
    """The recorded state of svc (another call may have changed its nodes), roles re-read."""
    from helpers.runtime.services import get

    fresh = get(svc.name) or svc
    return _reread_roles(fresh)
