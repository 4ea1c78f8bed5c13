"""Named services (topologies) started on demand, recorded in the state directory, found again.

`start("redis")` returns the running standalone Redis if there is one, heals it if a node was
killed from outside, and starts it otherwise. The topologies themselves are in
`helpers.runtime.topologies` (one registry; importing the package registers them); what a service
is and what topologies build with is in `helpers.runtime.service`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import psutil
from redis.exceptions import RedisClusterException, RedisError

from helpers.runtime import engines, process, state, topologies
from helpers.runtime.engines import Node
from helpers.runtime.i18n import translator
from helpers.runtime.service import Service, load_all, node_state, redis_conf  # noqa: F401 (re-exported)
from helpers.runtime.service import load as get  # noqa: F401 (services.get(name))
from helpers.runtime.state import LabError
from helpers.runtime.topologies.registry import TOPOLOGIES, topology  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)
_ = translator(__name__)

# Importing `topologies` (the package) registers every built-in topology; others (the local
# ElastiCache API's "aws-redis") register when their module is imported.


def start(topology_name: str = "redis", name: str | None = None, **options: Any) -> Service:
    """Return the running service `name` (default: the topology's name), starting or healing it.

    Options are part of a service's identity: asking for the same name with other options
    restarts it with the new ones.
    """
    topo = topologies.registry.get(topology_name)
    name = name or topology_name
    options = json.loads(json.dumps(options, default=str))  # normalise for comparison/recording
    with state.locked():
        records = state.load_registry()
        record = records.get(name)
        if record:
            svc = Service.from_dict(record)
            if svc.topology == topology_name and svc.options == options and _engine_matches(svc):
                healed = _heal(svc)
                if healed is not None:
                    records[name] = healed.to_dict()
                    state.save_registry(records)
                    return healed
                engines.notice(_("{service} had stopped and could not be repaired, so it was started afresh: "
                                 "{lost}.", service=_capital(describe(svc)), lost=lost(svc, every_node=True)))
            _stop_service(svc)
            records.pop(name, None)
            state.save_registry(records)
        workdir = state.service_dir(name)
        nodes, meta = topo.factory(name, workdir, **options)
        svc = Service(name=name, topology=topology_name, options=options, nodes=nodes, meta=meta)
        records = state.load_registry()
        records[name] = svc.to_dict()
        state.save_registry(records)
        return svc


def _engine_matches(svc: Service) -> bool:
    """A key-value service runs the engine now selected (ELASTICACHE_LAB_ENGINE, else the default),
    or the one its options name: one started under another engine is started again, never handed
    back silently."""
    engine = svc.meta.get("engine")
    return engine is None or engine == (svc.options.get("engine") or engines.selected_engine_name())


def _heal(svc: Service) -> Service | None:
    """Restart nodes killed from outside (saying so in one line); None when the service must be
    created afresh."""
    dead = [n for n in svc.nodes if not n.alive()]
    topo = topologies.registry.get(svc.topology)
    if not dead:
        if topo.refresh:  # roles may have changed since they were recorded (an automatic failover)
            try:
                return topo.refresh(svc)
            except (RedisError, RedisClusterException, LabError, psutil.Error) as exc:  # mid-failover
                log.debug("re-reading the roles of %s failed, keeping the recorded ones: %s", svc.name, exc)
        return svc
    try:
        if topo.heal:
            healed = topo.heal(svc)
        else:
            for n in dead:
                engines.restart_node(n, topo.probe(svc, n), env=_node_env(n))
            healed = svc
    except LabError:
        return None
    engines.notice(restart_notice(svc, dead))
    return healed


def describe(svc: Service) -> str:
    if svc.topology == "aws":
        return _("the local AWS endpoint")
    if svc.nodes[0].kind == "memcached":
        return _("the Memcached service {name!r}", name=svc.name)
    return _("the Redis service {name!r}", name=svc.name)


def lost(svc: Service, every_node: bool) -> str:
    """What a restart of `svc` lost, in words."""
    if svc.topology == "aws":
        return _("its resources were read back from the state directory (their data too, after a clean stop)")
    if svc.options.get("persistence"):
        return _("it reloaded what it had saved to disk")
    if not every_node and svc.topology in ("replicated", "cluster", "aws-redis") and len(svc.nodes) > 1:
        return _("the restarted nodes copy their data again from the live ones")
    return _("the data it held in memory is gone")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def restart_notice(svc: Service, dead: list[Node]) -> str:
    """One line: what was restarted after it stopped (kill -9, a crash) and what that lost."""
    data_nodes = [n for n in svc.nodes if n.kind not in ("sentinel",)]
    every = all(n in dead for n in data_nodes)
    service = _capital(describe(svc))
    if len(svc.nodes) == 1 or svc.topology == "aws":
        return _("{service} was restarted after it stopped; {lost}.", service=service, lost=lost(svc, True))
    names = ", ".join(n.name for n in dead)
    if len(dead) == 1:
        return _("{service}: restarted {names} after it stopped; {lost}.", service=service, names=names,
                 lost=lost(svc, every))
    return _("{service}: restarted {names} after they stopped; {lost}.", service=service, names=names,
             lost=lost(svc, every))


def _node_env(n: Node) -> dict[str, str] | None:
    return {**os.environ, **n.extra["env"]} if n.extra.get("env") else None


def status() -> list[Service]:
    """Every recorded service, without starting or healing anything."""
    return load_all()


def stop(name: str | None = None) -> list[str]:
    """Stop one service, or every process of this state directory; returns what was stopped."""
    stopped: list[str] = []
    with state.locked():
        records = state.load_registry()
        # Endpoints first: one may save what the services behind it hold (the local AWS endpoint saves
        # its caches' data when it stops cleanly), which needs them still running.
        names = [name] if name else sorted(records, key=lambda n: not _is_endpoint(records[n]))
        for n in names:
            record = records.pop(n, None)
            if record:
                _stop_service(Service.from_dict(record))
                stopped.append(n)
        state.save_registry(records)
        if name is None:
            stopped += sweep_orphans()
    return stopped


def _is_endpoint(record: dict[str, Any]) -> bool:
    return any(n.get("role") == "endpoint" for n in record.get("nodes", []))


def _stop_service(svc: Service) -> None:
    # Sentinels first (so they do not fail over while we stop), then replicas, then the rest.
    order = {"sentinel": 0, "endpoint": 1, "replica": 2}
    for n in sorted(svc.nodes, key=lambda n: order.get(n.role, 3)):
        n.stop()


def sweep_orphans() -> list[str]:
    """Stop the processes this state directory's lab started that no record holds any more (lost
    records, crashed runs): only those it can prove are its own (see process.state_dir_processes)."""
    found: list[str] = []
    for proc in process.state_dir_processes():
        with contextlib.suppress(psutil.Error):
            found.append(f"{proc.name()}[{proc.pid}]")
            process.stop_tree(proc, timeout=5)
    process.prune_ledger()
    return found


def unrecorded_processes() -> list[psutil.Process]:
    """The lab's own processes that no service records: what `stop` would sweep up. A recorded process's
    children are its service's (a serverless endpoint's shards) and stop with it."""
    recorded = {p.pid for svc in load_all() for n in svc.nodes for p in n.processes()}  # a TLS front too
    found = []
    for proc in process.state_dir_processes():
        with contextlib.suppress(psutil.Error):
            if proc.pid not in recorded and not {p.pid for p in proc.parents()} & recorded:
                found.append(proc)
    return found
