"""Resharding a Redis Cluster while clients keep working: moving slots, adding and removing shards.

The same steps `redis-cli --cluster reshard / add-node / del-node` take (what ElastiCache's online
resharding does for you), on the "cluster" topology.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from helpers.runtime import engines, state
from helpers.runtime.engines import Node
from helpers.runtime.flow import on_failure
from helpers.runtime.service import Service, record
from helpers.runtime.state import LabError
from helpers.runtime.topologies.cluster import (
    CLUSTER_SLOTS,
    cluster_nodes,
    describe_views,
    forget_files,
    knows_all,
    meet,
    parse_cluster_nodes,
    reread_cluster_roles,
    slot_owners,
    split_slots,
    start_cluster_node,
    wait_cluster_ok,
)
from helpers.runtime.topologies.nodes import admin_client as node_client
from helpers.runtime.topologies.nodes import current, find_node, refresh_roles, stop_nodes, wait_for

log = logging.getLogger(__name__)


def _primary_by_ref(svc: Service, ref: Node | str | int) -> Node:
    n = find_node(svc, ref)
    view = {v["id"]: v for v in cluster_nodes(svc)}
    v = view.get(n.extra.get("node_id"))
    if not v or "master" not in v["flags"]:
        raise LabError(f"{n.name} (port {n.port}) is not a primary of {svc.name}; name a primary.")
    return n


SETSLOT_LANES = 64


def _setslots(client: Any, slots: list[int], *args: Any) -> None:
    """CLUSTER SETSLOT <slot> *args for every slot, pipelined over several connections at once.

    Valkey 8+ answers a SETSLOT only once the node's replicas have acknowledged it (a few ms each,
    even pipelined: the connection waits); Redis OSS answers at once. Parallel lanes make both fast.
    """
    if not slots:
        return
    from concurrent.futures import ThreadPoolExecutor

    def lane(part: list[int]) -> None:
        p = client.pipeline(transaction=False)
        for s in part:
            p.execute_command("CLUSTER", "SETSLOT", s, *args)
        p.execute()

    lanes = [slots[i::SETSLOT_LANES] for i in range(min(SETSLOT_LANES, len(slots)))]
    with ThreadPoolExecutor(len(lanes)) as pool:
        for future in [pool.submit(lane, part) for part in lanes]:
            future.result()


def _migrate_batch(svc: Service, slots: list[int], source: Node, target: Node, src: Any, tgt: Any,
                   keys_per_call: int = 200) -> int:
    """Move a batch of slots of one source to target, the way redis-cli --cluster reshard does."""
    sid, tid = source.extra["node_id"], target.extra["node_id"]
    _setslots(tgt, slots, "IMPORTING", sid)
    _setslots(src, slots, "MIGRATING", tid)
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
                p2.execute_command("MIGRATE", target.host, engines.peer_port(target), "", 0, 10000, "REPLACE", *auth,
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
        _setslots(c, slots, "NODE", tid)
    masters = {v["id"] for v in cluster_nodes(svc) if "master" in v["flags"]}  # roles may be stale in svc
    for n in svc.nodes:
        if n.extra.get("node_id") in masters - {sid, tid} and n.alive() and not n.paused():
            with contextlib.suppress(RedisError):  # best effort: gossip gets there too, epochs now in order
                _setslots(node_client(svc, n, socket_timeout=5), slots, "NODE", tid)
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
        wait_for(lambda: _epochs_settled(svc), timeout, f"the primaries of {svc.name} to agree on distinct "
                 "config epochs", interval=0.05)
    except LabError as exc:
        raise LabError(f"{exc}\nWhat each node sees:\n{describe_views(svc)}") from None


def move_slots(svc: Service, slots: Iterable[int], target: Node | str | int, batch: int = 2048,
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
        source = find_node(svc, src_port)
        src = node_client(svc, source)
        for i in range(0, len(src_slots), batch):
            moved += _migrate_batch(svc, src_slots[i:i + batch], source, tnode, src, tgt)
    if wait:
        wait_cluster_ok(svc)
        record(reread_cluster_roles(svc))
    return moved


def add_shard(svc: Service, replicas: int | None = None, rebalance: bool = True) -> Service:
    """Scale out: start a new primary (+ replicas), join it, and (by default) give it its share of slots."""
    svc = current(svc)
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
    new = [start_cluster_node(f"{svc.name}-{k}", "primary", workdir, binary, svc.options.get("config"), secret, tls)]
    for r in range(1, int(replicas) + 1):
        new.append(start_cluster_node(f"{svc.name}-{k}-r{r}", "replica", workdir, binary, svc.options.get("config"),
                                      secret, tls))
    with on_failure(lambda: stop_nodes(new)):  # no node of a shard that could not join is left running
        for n in new:
            n.extra["node_id"] = node_client(svc, n).execute_command("CLUSTER", "MYID")
        for via in [n for n in svc.nodes if n.alive() and not n.paused()]:
            meet(svc, via, new)  # every node meets the newcomers at once, without waiting for gossip
        everyone = svc.nodes + new
        wait_for(lambda: all(knows_all(svc, n, everyone) for n in everyone if n.alive()), 30,
                 "the new nodes to join the cluster")
        for n in new[1:]:
            node_client(svc, n).execute_command("CLUSTER", "REPLICATE", new[0].extra["node_id"])
    svc.nodes.extend(new)
    record(svc)
    wait_cluster_ok(svc)
    if rebalance:
        move_slots(svc, rebalance_slots(svc, new[0]), new[0])
    return refresh_roles(svc)


def rebalance_slots(svc: Service, target: Node | str | int) -> list[int]:
    """The slots to give `target` so every primary ends with about the same number: an equal
    share taken from each of the others (the end of their ranges)."""
    tnode = find_node(svc, target)
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
    svc = current(svc)
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
    svc = current(svc)
    while len([n for n in svc.nodes if n.role == "primary"]) > shards:
        svc = remove_shard(svc, [n for n in svc.nodes if n.role == "primary"][-1])
    while len([n for n in svc.nodes if n.role == "primary"]) < shards:
        svc = add_shard(svc)
    return svc


def remove_shard(svc: Service, node_id_or_port: Node | str | int) -> Service:
    """Scale in: hand the shard's slots (and keys) to the other primaries, then retire its nodes."""
    svc = current(svc)
    primary = _primary_by_ref(svc, node_id_or_port)
    pid = primary.extra["node_id"]
    others = [n for n in svc.nodes if n.role == "primary" and n.port != primary.port]
    if not others:
        raise LabError("This is the cluster's only shard; it cannot be removed (stop the service instead).")
    mine = sorted(s for s, p in slot_owners(svc).items() if p == primary.port)
    for i, (lo, hi) in enumerate(split_slots(len(mine), len(others))):
        if hi >= lo:  # each source/target pair is independent: agree once at the end
            move_slots(svc, mine[lo:hi + 1], others[i], wait=False)
    wait_cluster_ok(svc)
    svc = current(svc)
    leaving = [n for n in svc.nodes if n.extra.get("master_id") == pid or n.extra.get("node_id") == pid]
    leaving_ids = {n.extra["node_id"] for n in leaving}
    for n in svc.nodes:
        if n.alive() and n.extra.get("node_id") not in leaving_ids:
            c = node_client(svc, n)
            for gone in leaving_ids:
                with contextlib.suppress(RedisError):  # a node that already forgot it (or never knew it)
                    c.execute_command("CLUSTER", "FORGET", gone)
    for n in leaving:
        n.stop()
        forget_files(Path(n.workdir), n.port)
    svc.nodes = [n for n in svc.nodes if n.extra.get("node_id") not in leaving_ids]
    record(svc)
    wait_cluster_ok(svc)
    return refresh_roles(svc)
