"""The engines behind the stored records: saved by a clean stop, adopted or restarted by the next start.

AWS keeps a cache and its data until it is deleted. Locally the engines stop with the lab
(`python -m helpers stop`, a reboot), so:

- a clean stop (SIGTERM to the local AWS endpoint, which `helpers stop` stops before the engines)
  saves each Redis OSS / Valkey cache's data: a BGSAVE of every primary (one RDB file per shard),
  copied to `aws-saved-data/<service>/` in the state directory (`save_data`);
- the next start reads the store (store.py) and reconciles it with what runs (`reconcile`): a
  record whose engines still run is adopted (its stable endpoints reopen, on their old ports when
  free); one whose engines are gone is started again by the code that created it, and the saved
  data is loaded back (as a snapshot is restored); what no record names is stopped;
- the saved files are deleted once loaded (or once live engines were adopted: their data is newer).
  So a crash of the machine, or kill -9 of the endpoint and its engines, is every node failing at
  once: ElastiCache's node-based caches keep no data through that (only backups), and neither does
  the lab; the restarted cache is empty, and one line (and an event) says so. Memcached keeps no data
  on AWS either: its nodes restart empty.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane import store
from helpers.aws.controlplane.endpoints import Forwarder
from helpers.aws.controlplane.errors import ApiError
from helpers.runtime import engines, services, state

log = logging.getLogger(__name__)

SAVE_DEADLINE = 8.0  # seconds a clean stop gives every cache's BGSAVE (the runtime waits 10 s, then kills)
# What a (re)start emits that the first creation already said; a restart says one line of its own instead.
_CREATION_EVENTS = ("Restored ", "Cache cluster created", "Added cache node")
_GROUP_CREATED = re.compile(r"Replication group \S+ created")
TRANSIENT = ("creating", "modifying", "snapshotting", "rebooting cache cluster nodes")


_RESTARTS = threading.Lock()  # one resource's engines start at a time: each gets its own old ports back


def saved_dir(service: str) -> Path:
    return state.home() / store.SAVED_DATA / service


def _ports_file() -> Path:
    return state.home() / store.SAVED_DATA / "ports.json"


def save_ports(plane: Any) -> None:
    """Each resource's node ports (services.json forgets them when the lab stops), to be asked for again."""
    ports = {}
    for name in plane.known_services():
        svc = services.get(name)
        if svc is not None:
            ports[name] = [n.port for n in svc.nodes]
    _ports_file().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.write_json(_ports_file(), ports)


def _old_ports(names: list[str]) -> list[int]:
    """The ports the services had: from their records (after a crash), else from the clean stop's list."""
    saved = state.read_json(_ports_file(), {}, lambda d: None if isinstance(d, dict) else "not an object")
    found: list[int] = []
    for name in names:
        svc = services.get(name)
        found += [n.port for n in svc.nodes] if svc is not None else [int(p) for p in saved.get(name, [])]
    return found


def _alive(service: str) -> bool:
    """Whether a recorded service still has a live data node (the monitor heals the rest)."""
    svc = services.get(service)
    return svc is not None and any(n.alive() for n in svc.nodes if n.kind in ("redis", "memcached"))


# --- a clean stop ------------------------------------------------------------------------------

def save_data(plane: Any) -> list[str]:
    """BGSAVE every primary of every Redis OSS / Valkey cache into aws-saved-data/ (a clean stop).
    Returns the services saved; never raises (what fails is logged)."""
    jobs: list[tuple[str, Any]] = []
    with plane.lock:
        groups = list(plane.groups.values())
        clusters = [cc for cc in plane.clusters.values() if cc.engine != "memcached"]
        serverless = list(getattr(plane, "serverless", {}).values())
    for g in groups:
        jobs.append((g.service_name, lambda g=g: _save_group(plane, g)))
    for cc in clusters:
        jobs.append((cc.service_name(), lambda cc=cc: _save_cluster(plane, cc)))
    for sc in serverless:
        jobs.append((sc.service_name, lambda sc=sc: _save_serverless(plane, sc)))
    done: list[str] = []

    def run(name: str, fn: Any) -> None:
        try:
            if fn():
                done.append(name)
        except Exception as exc:  # whatever failed, one cache's failure must not cost the others their data
            log.warning("could not save the data of %s at stop: %s", name, exc, exc_info=True)

    threads = [threading.Thread(target=run, args=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + SAVE_DEADLINE
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return done


def _fresh(service: str) -> Path:
    d = saved_dir(service)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, mode=0o700)
    return d


def _save_group(plane: Any, g: Any) -> bool:
    svc = services.get(g.service_name)
    if svc is None or g.status in ("creating", "create-failed", "deleting"):
        return False
    roles = plane._roles(g, svc)
    primaries = [n for n in ops.data_nodes(svc) if roles.get(n.name) == "primary" and n.alive()]
    if not primaries:
        return False
    d = _fresh(g.service_name)
    for i, n in enumerate(primaries, start=1):
        ops.bgsave_to(plane._admin(g, svc, n), d / f"{i:04d}.rdb", timeout=SAVE_DEADLINE)
    return True


def _save_cluster(plane: Any, cc: Any) -> bool:
    svc = services.get(cc.service_name())
    if svc is None or cc.status in ("creating", "deleting") or not svc.nodes[0].alive():
        return False
    d = _fresh(cc.service_name())
    ops.bgsave_to(plane._cluster_conn(cc, svc.nodes[0]), d / "0001.rdb", timeout=SAVE_DEADLINE)
    return True


def _save_serverless(plane: Any, sc: Any) -> bool:
    svc = services.get(sc.service_name)
    if svc is None or sc.status != "available" or not svc.nodes[0].alive():
        return False
    plane.dump_serverless(sc, svc, _fresh(sc.service_name) / "data.jsonl")
    return True


# --- the next start ----------------------------------------------------------------------------

def reconcile(plane: Any) -> None:
    """Adopt or restart what the records name, stop what they do not (a thread of install(): the
    server starts while `services.start("aws")` holds the state directory's lock)."""
    from helpers.aws.controlplane.models import stop_aws_services

    stopped = stop_aws_services(keep=plane.known_services())
    if stopped:
        log.warning("Stopped engines no resource of the local ElastiCache API names: %s", ", ".join(stopped))
    with plane.lock:
        snapshots = list(plane.snapshots.values())
        clusters = list(plane.clusters.values())
        groups = list(plane.groups.values())
        serverless = list(getattr(plane, "serverless", {}).values())
    for snap in snapshots:  # a snapshot the endpoint was still taking when it stopped
        if snap.status != "creating":
            continue
        if snap.files and all(Path(f).exists() for f in snap.files):
            snap.status = "available"
        else:  # AWS has no failed snapshot status: the snapshot is not kept, and an event says why
            with plane.lock:
                plane.snapshots.pop(snap.name, None)
            source = (snap.cluster.cluster_id, "cache-cluster") if snap.cluster is not None else \
                (snap.group.group_id if snap.group is not None else snap.name, "replication-group")
            plane.event(*source, f"Snapshot {snap.name} was not completed: the local endpoint stopped while taking it")
    jobs: list[tuple[str, Any]] = [
        *((f"cache cluster {cc.cluster_id}", lambda cc=cc: _reconcile_cluster(plane, cc)) for cc in clusters),
        *((f"replication group {g.group_id}", lambda g=g: _reconcile_group(plane, g)) for g in groups),
        *((f"serverless cache {sc.name}", lambda sc=sc: _reconcile_serverless(plane, sc)) for sc in serverless)]
    for what, bring_back in jobs:
        try:
            bring_back()
        except Exception as exc:  # whatever one record's engines met, the next record still gets its own
            log.warning("could not bring back the engines of %s: %s", what, exc, exc_info=True)
    if any(c.get("Status") == "active" for r in [*clusters, *groups] for c in getattr(r, "log_delivery", [])):
        plane.ensure_log_shipper()  # log delivery goes on where it stopped (each node's cursor is in its record)
    plane.changed()


def _reconcile_serverless(plane: Any, sc: Any) -> None:
    if sc.status == "deleting":
        plane.stop_serverless_service(sc)
        with plane.lock:
            plane.serverless.pop(sc.name, None)
        return
    if sc.status == "create-failed":
        return
    if _alive(sc.service_name):
        shutil.rmtree(saved_dir(sc.service_name), ignore_errors=True)
        if sc.status in TRANSIENT:
            sc.status = "available"
        threading.Thread(target=plane._watch_serverless, args=(sc,), name=f"serverless-{sc.name}",
                         daemon=True).start()
        return
    files = [str(p) for p in saved_dir(sc.service_name).glob("*.jsonl")]
    ports = _old_ports([sc.service_name])
    if services.get(sc.service_name) is not None:
        plane.stop_serverless_service(sc)
    sc.status, sc.events_offset = "modifying", 0

    def work() -> None:
        before = len(plane.events)
        with _RESTARTS, engines.preferred_ports(ports):
            plane._start_serverless(sc, files)
        with plane.lock:  # it said so when it was created
            plane.events[before:] = [e for e in plane.events[before:]
                                     if e.message != f"Serverless cache {sc.name} is available"]
        sc.status = "available"
        if not files:
            line = _lost_line("serverless cache", sc.name)
            engines.notice(line)
            plane.event(sc.name, "serverless-cache", line)
        shutil.rmtree(saved_dir(sc.service_name), ignore_errors=True)

    plane.background(f"restart-serverless-{sc.name}", work, lambda msg: plane._serverless_failed(sc, msg))


def _lost_line(kind: str, ident: str) -> str:
    return (f"The {kind} {ident} was restarted with no data: its engines had stopped without a clean "
            "`python -m helpers stop` (a crash, a reboot or kill -9), which is every node failing at once, and "
            "ElastiCache keeps no data through that either (restore a snapshot to get data back).")


def _reconcile_group(plane: Any, g: Any) -> None:
    if g.status == "deleting":  # the endpoint stopped in the middle of a delete: finish it
        services.stop(g.service_name)
        with plane.lock:
            plane.groups.pop(g.group_id, None)
        return
    if g.status in ("create-failed",):
        return
    for kind, port in store.ENDPOINT_PORTS.get(g.group_id, {}).items():  # the same addresses, where free
        if kind not in g.endpoints:
            g.endpoints[kind] = Forwarder(f"{g.group_id}-{kind}", port=port)
    g.busy, g.resharding = False, False
    g.recovering.clear()
    if _alive(g.service_name):
        shutil.rmtree(saved_dir(g.service_name), ignore_errors=True)  # the live data is newer
        plane.open_endpoints(g)
        if g.status in TRANSIENT:
            g.status = "available"
        plane.ensure_monitor()
        return
    files = sorted(saved_dir(g.service_name).glob("*.rdb"))
    ports = _old_ports([g.service_name])
    durable = not files and g.effective_durability not in (None, "disabled")
    if durable and services.get(g.service_name) is not None:  # a crash: the append-only files kept every write
        try:
            files = _from_append_only_files(plane, g, services.get(g.service_name))
        except (*ops.ENGINE_ERRORS, ApiError) as exc:  # the group still comes back, empty, and says so
            log.warning("could not read the append-only files of %s: %s", g.group_id, exc)
    if services.get(g.service_name) is not None:
        services.stop(g.service_name)
    g.status = "modifying"
    g.member_ids.clear()
    g.node_group_of.clear()
    g.node_groups_made = 0  # the group is made again from its files: its node groups are numbered from 0001
    g.applied_users.clear()
    g.admin_password = None  # the new nodes have no control-plane user yet: the user groups' code makes one
    upstream = _global_primary(plane, g)

    def work() -> None:
        if upstream is not None:  # a global datastore's secondary follows its primary again, once that one runs
            _wait_available(upstream)
            g.after_create = lambda: plane._follow(g, upstream)
        before = len(plane.events)
        with _RESTARTS, engines.preferred_ports(ports):
            plane._provision_group(g, files)
        _drop_creation_events(plane, before)
        if g.migration:  # a group migrating from a self-hosted server follows it again (models/migration.py)
            _resume_migration(plane, g)
        if files and durable:
            plane.event(g.group_id, "replication-group", "Replication group restarted after its nodes failed; its "
                                                         "data was reloaded from the nodes' append-only files "
                                                         "(durability)")
        elif files:
            plane.event(g.group_id, "replication-group", "Replication group restarted with the lab; its data "
                                                         "was reloaded from the clean stop")
        else:
            line = _lost_line("replication group", g.group_id)
            engines.notice(line)
            plane.event(g.group_id, "replication-group", line)
        shutil.rmtree(saved_dir(g.service_name), ignore_errors=True)

    plane.background(f"restart-rg-{g.group_id}", work, lambda msg: _restart_failed(plane, g, msg))


def _from_append_only_files(plane: Any, g: Any, svc: Any) -> list[Path]:
    """A durable group's data after every node failed: each shard's append-only files (what Valkey 9's
    durability keeps on AWS), loaded by a scratch node of the same engine and saved as one RDB file."""
    shards: dict[str, list[Any]] = {}
    for n in ops.data_nodes(svc):
        shards.setdefault(g.node_group_of.get(n.name, "0001"), []).append(n)
    out = _fresh(g.service_name)
    files = []
    for i, (_, nodes) in enumerate(sorted(shards.items()), start=1):
        nodes.sort(key=lambda n: n.role != "primary")  # the recorded primary first (sync: every node has it all)
        source = next((Path(n.workdir) / f"appendonlydir-{n.port}" for n in nodes
                       if (Path(n.workdir) / f"appendonlydir-{n.port}").is_dir()), None)
        if source is None:
            continue
        scratch = f"{g.service_name}-aof-{i}"
        ops.fresh_dir(scratch)
        shutil.copytree(source, state.service_dir(scratch) / "appendonlydir")
        try:
            with engines.pinned(plane.engine_binary(g.engine, g.engine_version)):
                node = services.start("aws-redis", name=scratch, config={
                    "appendonly": "yes", "appenddirname": "appendonlydir"}).nodes[0]
            conn = ops.redis_conn(node.host, node.port)
            ops.wait_ping(conn)
            ops.bgsave_to(conn, out / f"{i:04d}.rdb")
            files.append(out / f"{i:04d}.rdb")
        finally:
            services.stop(scratch)
            shutil.rmtree(state.home() / "services" / scratch, ignore_errors=True)
    return files


def _resume_migration(plane: Any, g: Any) -> None:
    try:
        plane._follow_source(g, plane._primary_node(g))
    except (*ops.ENGINE_ERRORS, ApiError, RuntimeError, StopIteration) as exc:  # the source did not come back
        log.warning("%s: the migration from %s did not resume: %s", g.group_id, g.migration, exc)
        plane.event(g.group_id, "replication-group", f"Migration from {g.migration} ended with the restart: "
                                                     f"the source did not answer ({exc})")
        g.migration = None
        return
    g.status = "migrating"


def _global_primary(plane: Any, g: Any) -> Any:
    """The primary group a global datastore's secondary follows (None for any other group)."""
    if g.global_role != "secondary" or not g.global_id:
        return None
    gds = getattr(plane, "global_groups", {}).get(g.global_id)
    return plane.groups.get(gds.primary_id) if gds is not None else None


def _wait_available(g: Any, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while g.status != "available" and time.monotonic() < deadline:
        time.sleep(0.2)


def _restart_failed(plane: Any, g: Any, msg: str) -> None:
    g.status = "create-failed"
    plane.event(g.group_id, "replication-group", f"Could not restart the engines after the lab stopped: {msg}")


def _reconcile_cluster(plane: Any, cc: Any) -> None:
    names = [cc.service_name(n["id"]) for n in cc.nodes] if cc.engine == "memcached" else [cc.service_name()]
    if cc.status == "deleting":
        for name in names:
            services.stop(name)
        with plane.lock:
            plane.clusters.pop(cc.cluster_id, None)
        return
    if cc.status in ("incompatible-parameters", "create-failed"):
        return
    kept = None
    if cc.engine == "memcached":  # the configuration endpoint keeps its address, where the port is free
        from helpers.aws.controlplane.discovery import ConfigEndpoint

        kept = ConfigEndpoint(lambda: plane._memcached_endpoints(cc), port=store.DISCOVERY_PORTS.get(cc.cluster_id, 0))
    if all(_alive(name) for name in names):
        if kept is not None:
            cc.discovery = kept
        for name in names:
            shutil.rmtree(saved_dir(name), ignore_errors=True)
        if cc.status in TRANSIENT:
            cc.status = "available"
        return
    files = sorted(saved_dir(names[0]).glob("*.rdb")) if cc.engine != "memcached" else []
    ports = _old_ports(names)
    for name in names:
        if services.get(name) is not None:
            services.stop(name)
    cc.status = "rebooting cache cluster nodes"

    def work() -> None:
        before = len(plane.events)
        for n in cc.nodes:
            n["status"] = "rebooting"
        with _RESTARTS, engines.preferred_ports(ports):
            plane._provision_cluster(cc, files)
        if kept is not None and cc.discovery is not kept:  # the creation code opened one of its own
            if cc.discovery is not None:
                cc.discovery.close()
            cc.discovery = kept
        _drop_creation_events(plane, before)
        cc.status = "available"
        if files or cc.engine == "memcached":
            plane.event(cc.cluster_id, "cache-cluster", "Cache cluster restarted with the lab" +
                        ("; its data was reloaded from the clean stop" if files else
                         " (its Memcached nodes start empty, as a rebooted ElastiCache Memcached node does)"))
        else:
            line = _lost_line("cache cluster", cc.cluster_id)
            engines.notice(line)
            plane.event(cc.cluster_id, "cache-cluster", line)
        for name in names:
            shutil.rmtree(saved_dir(name), ignore_errors=True)

    def failed(msg: str) -> None:
        if kept is not None and cc.discovery is not kept:
            kept.close()
        cc.status = "incompatible-parameters"
        plane.event(cc.cluster_id, "cache-cluster", f"Could not restart the engines after the lab stopped: {msg}")

    plane.background(f"restart-{cc.cluster_id}", work, failed)


def _drop_creation_events(plane: Any, before: int) -> None:
    """The events the creation code emits again on a restart (the resource was created once)."""
    with plane.lock:
        new = plane.events[before:]
        plane.events[before:] = [e for e in new if not e.message.startswith(_CREATION_EVENTS)
                                 and not _GROUP_CREATED.fullmatch(e.message)]


def shutdown(plane: Any) -> None:
    """A clean stop of the endpoint: the engines' data, then the records (never raises)."""
    try:
        save_ports(plane)
    except (OSError, state.LabError) as exc:  # the resources come back on other ports
        log.warning("could not save the resources' ports: %s", exc)
    saved = save_data(plane)  # never raises: each cache's failure is logged there
    if saved:
        log.info("saved the data of %s", ", ".join(saved))
    store.save(plane)
