"""The one registry of startable topologies: what each is called, how it starts, heals and answers.

A topology module declares a factory with `@topology(...)`; `helpers.runtime.services.start()`
finds it here by name. The record says everything the rest of the lab needs to know about a
topology, so nothing is looked up by a name held in a string or patched in from outside:

- `factory(name, workdir, **options) -> (nodes, meta)` starts it;
- `heal(svc) -> svc` restarts what was killed (default: restart each dead node, using `probe`);
- `refresh(svc) -> svc` re-reads the roles of a healthy service (after an automatic failover);
- `client(svc, **kwargs)` is what `svc.client()` returns (default: redis.Redis or pymemcache);
- `probe(svc, node) -> Probe` says how to tell that one of its nodes answers (default: by kind).

This module imports no topology and not `helpers.runtime.service` (services are typed `Any`
here), so every module can import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from helpers.runtime import engines
from helpers.runtime.engines import Node
from helpers.runtime.state import LabError

Factory = Callable[..., tuple[list[Node], dict[str, Any]]]
ServiceFn = Callable[[Any], Any]  # takes (and for heal/refresh returns) a helpers.runtime.service.Service
ProbeFor = Callable[[Any, Node], engines.Probe]


def probe_by_kind(_svc: Any, node: Node) -> engines.Probe:
    return engines.PROBES.get(node.kind, engines.probe_tcp)


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    factory: Factory
    heal: ServiceFn | None = None
    refresh: ServiceFn | None = None
    client: Callable[..., Any] | None = None
    probe: ProbeFor = probe_by_kind


TOPOLOGIES: dict[str, Topology] = {}


def topology(name: str, description: str, *, heal: ServiceFn | None = None, refresh: ServiceFn | None = None,
             client: Callable[..., Any] | None = None,
             probe: ProbeFor | None = None) -> Callable[[Factory], Factory]:
    """Register a factory `f(name, workdir, **options) -> (nodes, meta)` as a startable topology."""

    def register(fn: Factory) -> Factory:
        TOPOLOGIES[name] = Topology(name, description, fn, heal, refresh, client, probe or probe_by_kind)
        return fn

    return register


def get(name: str) -> Topology:
    """The topology called `name`, or a LabError listing the known ones."""
    if name not in TOPOLOGIES:
        raise LabError(f"Unknown service {name!r}. Known: {', '.join(sorted(TOPOLOGIES))}.")
    return TOPOLOGIES[name]

