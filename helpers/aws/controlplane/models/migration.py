"""Online migration: a replication group's primary replicates from a self-hosted Valkey or Redis OSS server.

As AWS's user guide describes it ("Starting migration", "Completing the data migration"): start-migration
makes the group's primary node a replica of the server named in CustomerNodeEndpointList (its own replicas
keep replicating from it), the group is `migrating` while the data flows and refuses writes;
complete-migration stops the replication and promotes the node to primary again (`available`, the event
"Complete Migration successful for <id>"); without --force it does so only when the node is in sync, and
otherwise stays `migrating` with an event saying why. The target meets AWS's prerequisites: cluster mode
disabled here (AWS also migrates cluster mode enabled groups), Multi-AZ enabled, no in-transit encryption,
not a global datastore member, no data tiering (r6gd). Locally the self-hosted server is any Valkey or
Redis OSS server on this machine's loopback (127.0.0.1, ::1, localhost): no other address is reachable.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import ApiError, invalid_combination, invalid_state, invalid_value
from helpers.aws.controlplane.models.base import Backend
from helpers.aws.controlplane.models.replication_record import ReplicationGroup

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
SYNC_TIMEOUT = 60.0  # seconds for the first full synchronisation from the source


def source_endpoint(endpoints: Any) -> tuple[str, int]:
    """The one CustomerNodeEndpoint (Address, Port) of a cluster-mode-disabled migration, on loopback."""
    items = list(endpoints or [])
    if len(items) != 1:
        raise invalid_value("CustomerNodeEndpointList must have exactly one element (the source's primary, or a "
                            f"replica of it) for a cluster mode disabled replication group; got {len(items)}.")
    host, raw_port = str(items[0].get("Address") or "").strip(), items[0].get("Port")
    if host not in LOOPBACK:
        raise invalid_value(f"CustomerNodeEndpointList: the local endpoint migrates only from a server on this "
                            f"machine's loopback ({', '.join(LOOPBACK)}); {host or '(no address)'} is not reachable "
                            "from here.")
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        raise invalid_value(f"CustomerNodeEndpointList: Port must be a number from 1 to 65535 (got {raw_port}).") from None
    if not 1 <= port <= 65535:
        raise invalid_value(f"CustomerNodeEndpointList: Port must be a number from 1 to 65535 (got {port}).")
    return ("127.0.0.1" if host == "localhost" else host), port


class Migrations(Backend):
    def start_migration(self, gid: Any, endpoints: Any) -> ReplicationGroup:
        g = self.get_group(gid)  # type: ignore[attr-defined]
        host, port = source_endpoint(endpoints)
        if g.migration:
            raise ApiError(f"Replication group {g.group_id} is already migrating from {g.migration}.",
                           "ReplicationGroupAlreadyUnderMigrationFault")
        if g.status != "available":
            raise invalid_state("ReplicationGroup", g.group_id, g.status)
        if g.cluster_mode:
            raise invalid_combination("The local endpoint migrates into cluster mode disabled replication groups only "
                                      "(AWS also migrates cluster mode enabled ones, slot by slot).")
        # AWS's prerequisites for the target ("Preparing your source and target nodes for migration")
        if g.tls:
            raise invalid_combination("Online migration needs in-transit encryption disabled on the target "
                                      "replication group.")
        if not g.multi_az:
            raise invalid_combination(f"Online migration needs Multi-AZ enabled on the target replication group; "
                                      f"{g.group_id} has it disabled (modify-replication-group --multi-az-enabled, "
                                      "with a replica).")
        if g.node_type.startswith("cache.r6gd."):
            raise invalid_combination("Online migration is not supported for clusters on the r6gd node types "
                                      "(data tiering).")
        if g.global_id:
            raise invalid_combination(f"Replication group {g.group_id} is a member of Global datastore {g.global_id}; "
                                      "online migration needs a group of its own.")
        svc = self.group_service(g)  # type: ignore[attr-defined]
        if port in {n.port for n in svc.nodes}:
            raise invalid_value(f"CustomerNodeEndpointList names a node of {g.group_id} itself.")
        source = ops.redis_conn(host, port)
        try:
            source.ping()
        except ops.ENGINE_ERRORS as exc:
            raise invalid_value(f"CustomerNodeEndpointList: no Valkey or Redis OSS server answers at {host}:{port} "
                                f"without authentication ({type(exc).__name__}).") from None
        finally:
            source.close()
        node = self._primary_node(g)  # type: ignore[attr-defined]
        g.status, g.busy, g.migration = "modifying", True, f"{host}:{port}"

        def work() -> None:
            self._follow_source(g, node)
            g.busy = False
            g.status = "migrating"
            self.event(g.group_id, "replication-group",  # type: ignore[attr-defined]
                       f"Migration started for {g.group_id}: its primary node replicates from {g.migration}")

        def failed(msg: str) -> None:
            with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, RuntimeError):
                self._lead_again(g, node)
            g.migration, g.busy, g.status = None, False, "available"
            self.event(g.group_id, "replication-group",  # type: ignore[attr-defined]
                       f"Migration failed for {g.group_id}: {msg}")

        self.background(f"migrate-{g.group_id}", work, failed)
        return g

    def _follow_source(self, g: ReplicationGroup, node: Any, timeout: float = SYNC_TIMEOUT) -> None:
        host, port = str(g.migration).rsplit(":", 1)
        svc = self.group_service(g)  # type: ignore[attr-defined]
        if g.topology == "replicated" and g.automatic_failover:  # no Sentinel promotes a replica meanwhile
            with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, KeyError, StopIteration):
                self._sentinels_monitor(g, False)  # type: ignore[attr-defined]
        conn = self._admin(g, svc, node)  # type: ignore[attr-defined]
        conn.config_set("masterauth", "")
        conn.execute_command("REPLICAOF", host, int(port))
        deadline = time.monotonic() + timeout
        while conn.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the primary node did not synchronise with {host}:{port} within {timeout:.0f} s")
            time.sleep(0.05)
        self.sync_endpoints(g)  # type: ignore[attr-defined]

    def _lead_again(self, g: ReplicationGroup, node: Any) -> None:
        svc = self.group_service(g)  # type: ignore[attr-defined]
        conn = self._admin(g, svc, node)  # type: ignore[attr-defined]
        conn.execute_command("REPLICAOF", "NO", "ONE")
        conn.config_set("masterauth", svc.password() or g.auth_token or "")
        if g.topology == "replicated" and g.automatic_failover:
            with contextlib.suppress(*ops.ENGINE_ERRORS, ApiError, KeyError, StopIteration):
                self._sentinels_monitor(g, True)  # type: ignore[attr-defined]

    def complete_migration(self, gid: Any, force: bool = False) -> ReplicationGroup:
        g = self.get_group(gid)  # type: ignore[attr-defined]
        if not g.migration:
            raise ApiError(f"Replication group {g.group_id} is not migrating.", "ReplicationGroupNotUnderMigrationFault")
        if g.status != "migrating":
            raise invalid_state("ReplicationGroup", g.group_id, g.status, "migrating")
        node = self._primary_node(g)  # type: ignore[attr-defined]
        svc = self.group_service(g)  # type: ignore[attr-defined]
        info = self._admin(g, svc, node).info("replication")  # type: ignore[attr-defined]
        in_sync = info.get("master_link_status") == "up" and not int(info.get("master_sync_in_progress", 0) or 0)
        if not in_sync and not force:  # as on AWS: the promotion fails, the group stays migrating, an event says why
            self.event(g.group_id, "replication-group",  # type: ignore[attr-defined]
                       f"Complete Migration failed for {g.group_id}: the primary node is not in sync with "
                       f"{g.migration} (use --force to stop the migration anyway)")
            return g
        g.status, g.busy = "modifying", True

        def work() -> None:
            self._lead_again(g, node)
            self.sync_endpoints(g)  # type: ignore[attr-defined]
            g.migration, g.busy, g.status = None, False, "available"
            self.event(g.group_id, "replication-group",  # type: ignore[attr-defined]
                       f"Complete Migration successful for {g.group_id}")

        def failed(msg: str) -> None:
            g.busy, g.status = False, "migrating"
            self.event(g.group_id, "replication-group",  # type: ignore[attr-defined]
                       f"Complete Migration failed for {g.group_id}: {msg}")

        self.background(f"complete-migration-{g.group_id}", work, failed)
        return g
