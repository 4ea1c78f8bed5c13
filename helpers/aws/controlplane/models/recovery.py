"""Unplanned failures: the control plane's monitor detects a failed node, fails over and replaces it.

On ElastiCache the managed control plane watches every node. When a primary fails it promotes a
replica (Multi-AZ automatic failover), then replaces the failed node with a new one that resyncs from
the new primary, and tells the story in events, in this order:

    Failover to replica node <cluster id> completed        (replication group and cache cluster)
    Recovering cache nodes 0001                             (the failed member)
    Finished recovery for cache nodes 0001

Locally a monitor thread of the AWS endpoint process polls each group's processes a few times a
second. In cluster mode disabled the Sentinels promote the replica (as they do without the API);
in cluster mode the control plane itself promotes the replica with CLUSTER FAILOVER TAKEOVER, so a
shard recovers even when the surviving primaries are too few for a Redis Cluster vote (one or two
shards). The failed process is then started again on its port, as a replica that resyncs.
While a node group has no primary the group is `modifying`, never `available`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.models.base import Backend
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import services
from helpers.runtime.engines import Node

log = logging.getLogger(__name__)

MONITOR_INTERVAL = 0.25  # seconds between two looks at every group's processes
ROLES_EVERY = 4  # ask the engines for their roles every 4th look (once a second)
STALLED_WAIT = 30.0  # seconds a takeover waits for stalled (SIGSTOP) nodes of the group to answer again


class Recovery(Backend):
    _monitor: threading.Thread | None = None
    _monitor_stop: threading.Event | None = None

    def ensure_monitor(self) -> None:
        """Start the monitor thread (once per process; reset() stops it)."""
        with self.lock:
            if self._monitor is not None and self._monitor.is_alive():
                return
            stop = threading.Event()
            self._monitor_stop = stop
            self._monitor = threading.Thread(target=self._watch, args=(stop,), name="controlplane-monitor",
                                             daemon=True)
            self._monitor.start()

    def stop_monitor(self) -> None:
        with self.lock:
            monitor, stop = self._monitor, self._monitor_stop
            self._monitor = self._monitor_stop = None
        if stop is not None:
            stop.set()
        if monitor is not None:
            monitor.join(timeout=5)

    def _watch(self, stop: threading.Event) -> None:
        tick = 0
        while not stop.wait(MONITOR_INTERVAL):
            tick += 1
            with self.lock:
                groups = list(self.groups.values())
            for g in groups:
                if stop.is_set():
                    return
                if g.status == "available" and not g.busy:
                    try:
                        self._check_group(g, sync=tick % ROLES_EVERY == 0)
                    except ops.ENGINE_ERRORS as exc:  # a node going away mid-check: the next tick sees it
                        log.debug("checking replication group %s: %s", g.group_id, exc)
                    except Exception as exc:  # the monitor must outlive any one group's failure
                        log.warning("checking replication group %s failed: %s", g.group_id, exc, exc_info=True)

    def _check_group(self, g: ReplicationGroup, sync: bool = True) -> None:
        # Under the group's lock: the record read, the processes found dead and the group found idle belong
        # to one moment. Read apart, a record read before a scale-in retired a node group (modify_shards),
        # with the group found available after it ended, would make its stopped nodes look failed.
        with g.lock:
            if g.busy or g.status != "available":
                return
            svc = services.get(g.service_name)
            if svc is None:
                return
            dead = [n for n in svc.nodes if not n.alive()]
            if dead:
                g.busy = True
                g.status = "modifying"
        if not dead:
            if sync:  # roles may have moved without a crash (Sentinel failing over a stalled primary)
                self.sync_endpoints(g)
            return
        self.background(f"recover-{g.group_id}", lambda: self._recover(g, dead),
                        lambda msg: self._recovery_failed(g, msg))

    def _recovery_failed(self, g: ReplicationGroup, msg: str) -> None:
        self._recovery_over(g)
        self.event(g.group_id, "replication-group", f"Recovery failed: {msg}")

    @staticmethod
    def _recovery_over(g: ReplicationGroup) -> None:
        with g.lock:
            g.busy = False
            g.recovering.clear()
            if g.status != "deleting":  # never over a delete
                g.status = "available"

    # --- recovery ------------------------------------------------------------------------------
    def _recover(self, g: ReplicationGroup, dead: list[Node]) -> None:
        with self.starting_processes(g):  # none for a group being deleted; its delete waits for this one
            self._recover_nodes(g, dead)
        self._recovery_over(g)

    def _recover_nodes(self, g: ReplicationGroup, dead: list[Node]) -> None:
        svc = self.group_service(g)
        data_dead = [n for n in dead if n.kind == "redis"]
        g.recovering |= {n.name for n in data_dead}
        secondary = g.global_role == "secondary" and not g.cluster_mode
        if secondary:  # a global datastore's secondary cluster: no Sentinel watches it
            self.recover_secondary(g, svc, data_dead)
        elif g.cluster_mode:
            self._cluster_takeover(g, svc, data_dead)
        elif g.topology == "replicated":
            self._sentinel_failover(g, svc, data_dead)
        for n in data_dead:
            if n.name in g.member_ids:
                self.event(g.member_ids[n.name], "cache-cluster", "Recovering cache nodes 0001")
        if not secondary:
            svc = self._restart(g, svc)
        from helpers.runtime import topologies

        topologies.record(svc)
        if g.auth_token or g.user_group_ids:
            self._secure_new_nodes(g)
        pg = self.param_groups.get(g.param_group)
        if pg is not None:  # values changed after creation were CONFIG SET: the new process needs them
            self.apply_parameters(pg)
        self.sync_endpoints(g)
        self.wait_sentinels_settled(g, svc)
        self.refollow_secondaries(g)
        for n in data_dead:
            if n.name in g.member_ids:
                self.event(g.member_ids[n.name], "cache-cluster", "Finished recovery for cache nodes 0001")

    def _restart(self, g: ReplicationGroup, svc: services.Service) -> services.Service:
        """Start every dead process again on its port; data nodes come back as replicas and resync."""
        from helpers.runtime import engines
        from helpers.runtime.topologies.nodes import node_probe

        topo = services.TOPOLOGIES[svc.topology]
        if g.topology == "replicated" and not g.automatic_failover:
            # No Sentinel watches the primary: the failed node comes back in place (its cache is empty).
            for n in svc.nodes:
                if not n.alive():
                    engines.restart_node(n, node_probe(n))
            return svc
        if topo.heal is not None:
            return topo.heal(svc)
        for n in svc.nodes:
            if not n.alive():
                engines.restart_node(n, topo.probe(svc, n))
        return svc

    def wait_sentinels_settled(self, g: ReplicationGroup, svc: services.Service, timeout: float = 20) -> None:
        """Every Sentinel names the current primary and has no failover in progress: a new failure can
        be handled at once (a Sentinel still finishing the last failover would not start another)."""
        from helpers.runtime import topologies

        if g.topology != "replicated" or not g.automatic_failover or g.global_role == "secondary":
            return
        roles = self._roles(g, svc)
        port = next((n.port for n in ops.data_nodes(svc) if roles.get(n.name) == "primary" and n.alive()), None)
        master = svc.meta["master_name"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            settled = True
            for s in svc.nodes_by(role="sentinel"):
                try:
                    info = topologies.sentinel_node_client(svc, s).execute_command("SENTINEL", "MASTER", master)
                except ops.ENGINE_ERRORS:  # a Sentinel restarting
                    settled = False
                    break
                if isinstance(info, list):
                    info = dict(zip(info[::2], info[1::2], strict=False))
                if (int(info.get("port", 0)) != port or info.get("flags") != "master"
                        or int(info.get("num-other-sentinels", 0)) < 2):
                    settled = False
                    break
            if settled:
                return
            time.sleep(0.05)

    def _failover_done(self, g: ReplicationGroup, new: Node) -> None:
        member = g.member_ids.get(new.name, new.name)
        self.event(g.group_id, "replication-group", f"Failover to replica node {member} completed")
        self.event(member, "cache-cluster", f"Failover to replica node {member} completed")

    def _sentinel_failover(self, g: ReplicationGroup, svc: services.Service, dead: list[Node]) -> None:
        """The primary died: the Sentinels promote a replica; the primary endpoint waits for it."""
        fwd = g.endpoints.get("primary")
        from helpers.runtime import topologies

        sentinel_port = None  # the Sentinels still name the dead primary until they fail over
        with contextlib.suppress(*ops.ENGINE_ERRORS, KeyError):
            sentinel_port = topologies.current_primary(svc)[1]
        was_primary = [n for n in dead
                       if (fwd is not None and (n.host, n.port) in fwd.targets) or n.port == sentinel_port]
        if not was_primary or not g.automatic_failover:
            return
        if fwd is not None:
            fwd.set_targets([])  # no primary: new connections wait for the promoted replica
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(*ops.ENGINE_ERRORS, KeyError, IndexError):
                _host, port = topologies.current_primary(svc)
                new = next((n for n in ops.data_nodes(svc) if n.port == port and n.alive()), None)
                if new is not None and self._admin(g, svc, new).execute_command("ROLE")[0] == "master":
                    self.sync_endpoints(g)
                    self._failover_done(g, new)
                    return
            time.sleep(0.05)
        raise RuntimeError("no replica was promoted within 30 s")

    def _cluster_takeover(self, g: ReplicationGroup, svc: services.Service, dead: list[Node]) -> None:
        """Promote the most up-to-date replica of each failed primary (CLUSTER FAILOVER TAKEOVER).

        A stalled node (paused, SIGSTOP) is not a failed one: while a live node of the group is stalled, the
        takeover waits for it (at most STALLED_WAIT seconds) before choosing, so a shard whose replica was
        paused when its primary died still fails over to that replica, instead of its primary restarting
        empty because no node could be asked."""
        dead_ports = {n.port for n in dead}
        deadline = time.monotonic() + STALLED_WAIT
        while (any(n.alive() and n.paused() for n in ops.data_nodes(svc) if n.port not in dead_ports)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        view = self._cluster_view(g, svc)
        by_port = {n.port: n for n in ops.data_nodes(svc)}
        for v in view:
            if v["port"] not in dead_ports or "master" not in v["flags"] or not v["slots"]:
                continue
            candidates = [by_port[r["port"]] for r in view if r["master"] == v["id"] and r["port"] in by_port
                          and r["port"] not in dead_ports and by_port[r["port"]].alive()]
            if not candidates:
                continue  # a shard without replicas: the node restarts empty, as on AWS

            def offset(n: Node) -> int:
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError):
                    return int(self._admin(g, svc, n).info("replication").get("slave_repl_offset", 0))
                return -1

            best = max(candidates, key=offset)
            conn = self._admin(g, svc, best)
            with contextlib.suppress(*ops.ENGINE_ERRORS):  # Redis may have promoted it already
                conn.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
            deadline = time.monotonic() + 15
            while conn.execute_command("ROLE")[0] != "master":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica {best.name} did not take over")
                time.sleep(0.05)
            self._failover_done(g, best)
