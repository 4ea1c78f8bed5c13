"""The engine's life cycle: engine upgrades (Redis OSS -> Valkey, a version within an engine),
maintenance windows, and service updates (a dated catalogue in data/, applied node by node).

An upgrade or a service update restarts every node of a resource on its new (or the same) binary,
one at a time, as ElastiCache does: replicas first, then a planned failover, then the old primary.
A node saves its data (SHUTDOWN SAVE) and loads it again, and its replicas copy the primary, so a
replicated group keeps every key; the endpoints (loopback forwarders) keep their addresses.
"""

from __future__ import annotations

import contextlib
import csv
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_value, not_found
from helpers.aws.controlplane.models.base import Backend, now
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import engines, services
from helpers.runtime.engines import Node
from helpers.runtime.service import record as record_service

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
WINDOW_RE = re.compile(r"^(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):([0-5]\d)-"
                       r"(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):([0-5]\d)$")


def check_maintenance_window(value: Any) -> str | None:
    """AWS's PreferredMaintenanceWindow: ddd:hh24:mi-ddd:hh24:mi (UTC), at least 60 minutes, at most 24 h."""
    if value is None or value == "":
        return None
    text = str(value).lower()
    m = WINDOW_RE.match(text)
    if not m:
        raise invalid_value(f"Invalid PreferredMaintenanceWindow: {value}. Use the format ddd:hh24:mi-ddd:hh24:mi "
                            "(UTC, e.g. sun:23:00-mon:01:30).")
    start = DAYS.index(m.group(1)) * 1440 + int(m.group(2)) * 60 + int(m.group(3))
    end = DAYS.index(m.group(4)) * 1440 + int(m.group(5)) * 60 + int(m.group(6))
    length = (end - start) % (7 * 1440)
    if length < 60:
        raise invalid_value(f"Invalid PreferredMaintenanceWindow: {value}. The window must be at least 60 minutes.")
    if length > 24 * 60:
        raise invalid_value(f"Invalid PreferredMaintenanceWindow: {value}. The window must be at most 24 hours.")
    return text


# --- the service-update catalogue -------------------------------------------------------------------

def service_updates_file() -> Path:
    return catalogue.data_dir() / "elasticache_service_updates.csv"


def service_updates() -> list[dict[str, Any]]:
    """The catalogue's service updates, as DescribeServiceUpdates' ServiceUpdate entries (plus "Engines")."""
    out = []
    with service_updates_file().open(newline="") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            out.append({
                "ServiceUpdateName": row["ServiceUpdateName"],
                "ServiceUpdateReleaseDate": _date(row["ServiceUpdateReleaseDate"]),
                "ServiceUpdateEndDate": _date(row["ServiceUpdateEndDate"]),
                "ServiceUpdateSeverity": row["ServiceUpdateSeverity"],
                "ServiceUpdateRecommendedApplyByDate": _date(row["ServiceUpdateRecommendedApplyByDate"]),
                "ServiceUpdateStatus": row["ServiceUpdateStatus"],
                "ServiceUpdateDescription": row["ServiceUpdateDescription"],
                "ServiceUpdateType": row["ServiceUpdateType"],
                "Engine": row["Engine"],
                "EngineVersion": row["EngineVersion"],
                "AutoUpdateAfterRecommendedApplyByDate": row["AutoUpdateAfterRecommendedApplyByDate"] == "true",
                "EstimatedUpdateTime": row["EstimatedUpdateTime"],
            })
    return out


def _date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


def applies_to(update: dict[str, Any], engine: str, version: str) -> bool:
    """An update applies to an engine version it names (comma-separated major.minor, or 'all')."""
    if update["Engine"] != engine:
        return False
    wanted = [v.strip() for v in update["EngineVersion"].split(",")]
    return "all" in wanted or ".".join(version.split(".")[:2]) in wanted


class EngineLifecycle(Backend):
    """Upgrades and service updates, node by node, on real engines."""

    def __init__(self) -> None:
        super().__init__()
        # (service update, resource id) -> its update action's status
        self.update_actions: dict[tuple[str, str], dict[str, Any]] = {}

    # --- service updates ---------------------------------------------------------------------
    def update_status(self, name: str, ident: str) -> dict[str, Any]:
        """The update action's record for a resource: status and dates (created on first look).

        Kept per resource *instance*: a group deleted and created again under the same id is a new
        resource, to which the update has not been applied (its nodes are new processes)."""
        res = self.groups.get(ident) or self.clusters.get(ident)
        born = getattr(res, "created", None)
        st = self.update_actions.get((name, ident))
        if st is None or st.get("born") != born:
            st = self.update_actions[(name, ident)] = {"UpdateActionStatus": "not-applied",
                                                       "UpdateActionAvailableDate": None, "born": born}
        return st

    def describe_update_actions(self, names: list[str] | None, group_ids: list[str] | None,
                                cluster_ids: list[str] | None, engine: str | None,
                                statuses: list[str] | None) -> list[dict[str, Any]]:
        for gid in group_ids or []:
            self.get_group(gid)
        for cid in cluster_ids or []:
            self.get_cluster(cid)
        updates = [u for u in service_updates() if not names or u["ServiceUpdateName"] in names]
        out = []
        with self.lock:
            resources: list[tuple[str, str, str, str]] = []
            if not cluster_ids or group_ids:
                resources += [("ReplicationGroupId", g.group_id, g.engine, g.engine_version)
                              for g in self.groups.values()]
            if not group_ids or cluster_ids:
                resources += [("CacheClusterId", cc.cluster_id, cc.engine, cc.engine_version)
                              for cc in self.clusters.values()]
        for u in updates:
            for key, ident, eng, version in resources:
                if group_ids and key == "ReplicationGroupId" and ident not in group_ids:
                    continue
                if cluster_ids and key == "CacheClusterId" and ident not in cluster_ids:
                    continue
                if engine and eng != engine:
                    continue
                if not applies_to(u, eng, version):
                    continue
                st = self.update_status(u["ServiceUpdateName"], ident)
                if statuses and st["UpdateActionStatus"] not in statuses:
                    continue
                entry = {key: ident, "ServiceUpdateName": u["ServiceUpdateName"],
                         "ServiceUpdateReleaseDate": u["ServiceUpdateReleaseDate"],
                         "ServiceUpdateSeverity": u["ServiceUpdateSeverity"],
                         "ServiceUpdateStatus": u["ServiceUpdateStatus"],
                         "ServiceUpdateRecommendedApplyByDate": u["ServiceUpdateRecommendedApplyByDate"],
                         "ServiceUpdateType": u["ServiceUpdateType"],
                         "UpdateActionAvailableDate": st["UpdateActionAvailableDate"] or u["ServiceUpdateReleaseDate"],
                         "UpdateActionStatus": st["UpdateActionStatus"],
                         "NodesUpdated": st.get("NodesUpdated", "0/0"),
                         "SlaMet": "n/a" if st["UpdateActionStatus"] == "not-applied" else "yes",
                         "Engine": eng, "EstimatedUpdateTime": u["EstimatedUpdateTime"]}
                if st.get("UpdateActionStatusModifiedDate"):
                    entry["UpdateActionStatusModifiedDate"] = st["UpdateActionStatusModifiedDate"]
                out.append(entry)
        return out

    def batch_update_action(self, name: str | None, group_ids: list[str] | None, cluster_ids: list[str] | None,
                            apply: bool) -> dict[str, Any]:
        """BatchApplyUpdateAction / BatchStopUpdateAction: ProcessedUpdateActions and UnprocessedUpdateActions."""
        if not name:
            raise invalid_value("The parameter ServiceUpdateName must be provided.")
        update = next((u for u in service_updates() if u["ServiceUpdateName"] == name), None)
        if update is None:
            raise not_found("ServiceUpdate", name)
        if not group_ids and not cluster_ids:
            raise invalid_value("Give ReplicationGroupIds or CacheClusterIds.")
        processed, unprocessed = [], []
        for key, ids in (("ReplicationGroupId", group_ids or []), ("CacheClusterId", cluster_ids or [])):
            for ident in ids:
                try:
                    res: ReplicationGroup | CacheCluster = (self.get_group(ident) if key == "ReplicationGroupId"
                                                            else self.get_cluster(ident))
                except ApiError:
                    unprocessed.append({key: ident, "ServiceUpdateName": name, "ErrorType": "CacheClusterNotFound"
                                        if key == "CacheClusterId" else "ReplicationGroupNotFoundFault",
                                        "ErrorMessage": f"{ident} not found."})
                    continue
                if not applies_to(update, res.engine, res.engine_version):
                    unprocessed.append({key: ident, "ServiceUpdateName": name, "ErrorType": "InvalidParameterValue",
                                        "ErrorMessage": f"Service update {name} does not apply to {res.engine} "
                                                        f"{res.engine_version}."})
                    continue
                st = self.update_status(name, ident)
                if apply:
                    if st["UpdateActionStatus"] in ("complete", "in-progress", "waiting-to-start"):
                        unprocessed.append({key: ident, "ServiceUpdateName": name, "ErrorType": "InvalidStateFault",
                                            "ErrorMessage": f"The update is {st['UpdateActionStatus']} on {ident}."})
                        continue
                    if res.status != "available":
                        unprocessed.append({key: ident, "ServiceUpdateName": name, "ErrorType": "InvalidStateFault",
                                            "ErrorMessage": f"{ident} is {res.status}, not available."})
                        continue
                    processed.append({key: ident, "ServiceUpdateName": name,
                                      "UpdateActionStatus": self._start_update(name, res, st)})
                    continue
                else:
                    if st["UpdateActionStatus"] in ("in-progress", "waiting-to-start", "scheduled"):
                        st["stop"] = True
                        st["UpdateActionStatus"] = "stopping"
                        st["UpdateActionStatusModifiedDate"] = now()
                processed.append({key: ident, "ServiceUpdateName": name,
                                  "UpdateActionStatus": st["UpdateActionStatus"]})
        return {"ProcessedUpdateActions": processed, "UnprocessedUpdateActions": unprocessed}

    def _start_update(self, name: str, res: ReplicationGroup | CacheCluster, st: dict[str, Any]) -> str:
        """Start applying a service update; returns the status the call answers: waiting-to-start
        (batch-apply-update-action.rst), in-progress once the first node restarts, then complete."""
        st.update(UpdateActionStatus="waiting-to-start", UpdateActionStatusModifiedDate=now(), stop=False)
        grouped = isinstance(res, ReplicationGroup)
        ident = res.group_id if grouped else res.cluster_id
        kind = "replication-group" if grouped else "cache-cluster"
        res.status = "modifying"
        self.event(ident, kind, f"Service update {name} started")

        def work() -> None:
            if st.get("stop"):  # stopped before it started
                st.update(UpdateActionStatus="stopped", UpdateActionStatusModifiedDate=now())
                res.status = "available"
                self.event(ident, kind, f"Service update {name} stopped")
                return
            st.update(UpdateActionStatus="in-progress", UpdateActionStatusModifiedDate=now())
            target = self.engine_binary(res.engine, res.engine_version)  # same engine, same binary: a patch restart
            if grouped:
                done = self.roll_group(res, target, st)  # type: ignore[arg-type]
            else:
                done = self.roll_cluster(res, target, st)  # type: ignore[arg-type]
            stopped = st.get("stop") and not done
            st.update(UpdateActionStatus="stopped" if stopped else "complete", UpdateActionStatusModifiedDate=now())
            res.status = "available"
            self.event(ident, kind, f"Service update {name} {'stopped' if stopped else 'completed'}")

        def failed(msg: str) -> None:
            st.update(UpdateActionStatus="stopped", UpdateActionStatusModifiedDate=now())
            if grouped:
                res.busy = False  # type: ignore[union-attr]
            res.status = "available"
            self.event(ident, kind, f"Service update {name} failed: {msg}")

        self.background(f"update-{ident}", work, failed)
        return "waiting-to-start"

    # --- rolling restarts -----------------------------------------------------------------------
    def roll_group(self, g: ReplicationGroup, target: Any, progress: dict[str, Any] | None = None) -> bool:
        """Restart every node of a group on `target` (an engines.Engine): replicas first, then each node
        group's primary after a planned failover (or, with no replica to take over, saved and reloaded).
        Returns False when a stop request (BatchStopUpdateAction) ended it early."""

        svc = self.group_service(g)
        g.busy = True
        try:
            roles = self._roles(g, svc)
            nodes = ops.data_nodes(svc)
            order = [n for n in nodes if roles.get(n.name) == "replica"] + \
                [n for n in nodes if roles.get(n.name) == "primary"]
            done = 0
            for node in order:
                if progress is not None:
                    progress["NodesUpdated"] = f"{done}/{len(order)}"
                    if progress.get("stop"):
                        return False
                svc = self.group_service(g)
                node = next(n for n in ops.data_nodes(svc) if n.name == node.name)
                if self._roles(g, svc).get(node.name) == "primary":
                    self._hand_over(g, svc, node)
                    svc = self.group_service(g)
                    node = next(n for n in ops.data_nodes(svc) if n.name == node.name)
                self._restart_on(g, svc, node, target)
                record_service(svc)
                mid = g.member_ids.get(node.name, node.name)
                self.event(mid, "cache-cluster", "Cache node 0001 restarted")
                self.sync_endpoints(g)
                done += 1
            svc = self.group_service(g)
            svc.meta.update(target.meta())  # Sentinels keep their binary: they hold no data
            record_service(svc)
            ops.refresh_roles(g.service_name)
            self.sync_endpoints(g)
            if progress is not None:
                progress["NodesUpdated"] = f"{done}/{len(order)}"
            return True
        finally:
            g.busy = False

    def _hand_over(self, g: ReplicationGroup, svc: services.Service, primary: Node) -> None:
        """Before a primary restarts: a planned failover to a replica, where there is one to take over."""
        members = {m.node.name: m for m in self.group_members(g)}
        ng = members[primary.name].node_group if primary.name in members else "0001"
        replicas = [m.node for m in members.values() if m.node_group == ng and m.role == "replica"]
        if not replicas:
            return
        if g.cluster_mode:
            self._admin(g, svc, replicas[0]).execute_command("CLUSTER", "FAILOVER")
            self._wait_promoted(g, svc, primary, ng)  # type: ignore[attr-defined]
        elif g.topology == "replicated" and g.automatic_failover:
            self._wait_sentinels_see_replicas(svc)
            self._planned_failover(g, svc, primary)  # type: ignore[attr-defined]
            self.wait_sentinels_settled(g, self.group_service(g))  # type: ignore[attr-defined]
        else:
            return
        self.event(g.group_id, "replication-group",
                   f"Failover to replica node {members[replicas[0].name].cluster_id} completed")

    @staticmethod
    def _wait_sentinels_see_replicas(svc: services.Service, timeout: float = 30.0) -> None:
        """Wait until every Sentinel has fresh news of every replica (a replica restarted a moment ago is
        one they would not promote: NOGOODSLAVE)."""
        from helpers.runtime import topologies

        master = svc.meta["master_name"]
        deadline = time.monotonic() + timeout
        for s in svc.nodes_by(role="sentinel"):
            c = topologies.sentinel_node_client(svc, s)
            while True:
                ok = False
                with contextlib.suppress(*ops.ENGINE_ERRORS, ValueError):
                    replicas = c.execute_command("SENTINEL", "REPLICAS", master)
                    infos = [dict(zip(r[::2], r[1::2], strict=False)) if isinstance(r, list) else r for r in replicas]
                    ok = bool(infos) and any(
                        not {"s_down", "o_down", "disconnected"} & set(str(i.get("flags", "")).split(","))
                        and int(i.get("info-refresh", 10**9)) < 3000 and i.get("master-link-status") == "ok"
                        for i in infos)
                if ok or time.monotonic() > deadline:
                    break
                time.sleep(0.2)

    def _restart_on(self, g: ReplicationGroup | None, svc: services.Service, node: Node, target: Any,
                    conn: Any = None) -> None:
        """Stop one node after it saved its data and its role (SHUTDOWN SAVE, CONFIG REWRITE), start it
        again on `target`'s binary, same port and files; wait until it serves (a replica: in sync)."""
        from helpers.runtime.topologies.nodes import node_probe

        conn = conn or self._admin(g, svc, node)  # type: ignore[arg-type]
        with contextlib.suppress(*ops.ENGINE_ERRORS):
            conn.execute_command("CONFIG", "REWRITE")  # the node's current role (REPLICAOF) survives
        role = "replica"
        with contextlib.suppress(*ops.ENGINE_ERRORS, IndexError):
            role = "primary" if conn.execute_command("ROLE")[0] == "master" else "replica"
        with contextlib.suppress(*ops.ENGINE_ERRORS):
            conn.execute_command("SHUTDOWN", "SAVE")
        deadline = time.monotonic() + 20
        while node.process() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        node.stop()
        node.argv = [target.binary, *node.argv[1:]]
        engines.restart_node(node, node_probe(node))
        fresh = self._admin(g, svc, node) if g is not None else conn
        if g is None:
            fresh.connection_pool.disconnect()
        ops.wait_ping(fresh, timeout=30)
        if role == "replica":
            ops.wait_replica_linked(fresh, node.name, 60)

    def roll_cluster(self, cc: CacheCluster, target: Any, progress: dict[str, Any] | None = None) -> bool:
        """A single-node cache cluster: saved, restarted on `target`, reloaded (it is down meanwhile)."""
        svc = services.get(cc.service_name())
        if svc is None:
            raise RuntimeError(f"{cc.cluster_id} has no running engine")
        node = svc.nodes[0]
        self._restart_on(None, svc, node, target, conn=self._cluster_conn(cc, node))  # type: ignore[attr-defined]
        svc.meta.update(target.meta())
        record_service(svc)
        self.event(cc.cluster_id, "cache-cluster", "Cache node 0001 restarted")
        if progress is not None:
            progress["NodesUpdated"] = "1/1"
        return True

    # --- engine upgrades --------------------------------------------------------------------------
    def upgrade_group_engine(self, g: ReplicationGroup, engine: str, version: str) -> None:
        """Move a group onto another engine or version in place (node by node): data and endpoints stay."""
        old = (g.engine, g.engine_version)
        target = self.engine_binary(engine, version)
        if g.tls and not target.tls and not g.cluster_mode and g.replicas:
            raise invalid_combination(f"{target.label} here has no TLS built in, which replicas with encryption in "
                                      f"transit need. {engines.tls_hint()}")
        self.event(g.group_id, "replication-group",
                   f"Upgrading engine from {engines.TITLES[old[0]]} {old[1]} to {engines.TITLES[engine]} {version}")
        self.roll_group(g, target)
        g.engine, g.engine_version = engine, target.version
        self.event(g.group_id, "replication-group",
                   f"Engine upgraded to {engines.TITLES[engine]} {target.version} (was {engines.TITLES[old[0]]} "
                   f"{old[1]}); endpoints unchanged")
