"""In-transit encryption on an existing replication group, in AWS's two steps (TransitEncryptionMode).

ElastiCache turns TLS on for a running group without downtime ("Enabling in-transit encryption", the
ModifyReplicationGroup reference, read 2026-12-07): TransitEncryptionEnabled=true with TransitEncryptionMode
preferred first (clients may connect with or without TLS), then TransitEncryptionMode required in a later
request (plaintext connections dropped); never straight to required. Valkey 7.2+ and Redis OSS 7.0+ only.

Locally, with the engines' own TLS:
- preferred: every data node opens a TLS listener next to its plaintext port (CONFIG SET tls-port, written
  to its config with CONFIG REWRITE; no restart, open connections stay). The group's primary and reader
  endpoints take both kinds of client on one address: they pass a client that opens with a TLS handshake
  to the node's TLS listener, any other to its plaintext port (endpoints.py). A node's own endpoint (its
  port) stays plaintext until required.
- required: every node is restarted TLS-only on its own port, as a group created with TLS runs (its data
  saved by SHUTDOWN SAVE and loaded again, the replicas resynced over TLS), the Sentinels too: plaintext
  connections are dropped and a plaintext client fails its first command.
- back: required -> preferred restarts the nodes with both listeners again; preferred ->
  TransitEncryptionEnabled=false closes the TLS listeners.
Cluster mode enabled groups and members of global datastores are refused, with the reason (docs/local-vs-aws.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import invalid_combination, invalid_value
from helpers.aws.controlplane.models.base import Backend
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import engines, services
from helpers.runtime.engines import Node

log = logging.getLogger(__name__)

MODES = ("preferred", "required")
MIN_VERSION = {"valkey": (7, 2), "redis": (7, 0)}  # online TLS migration, as AWS supports it
TLS_KEYS = ("port", "tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-auth-clients",
            "tls-replication", "tls-cluster")
RESTART_TIMEOUT = 60.0  # a node restarted on its new listeners serves (a replica: in sync) within this


def current_mode(g: ReplicationGroup) -> str | None:
    """The group's TransitEncryptionMode now (None: no encryption in transit)."""
    return g.transit_mode or ("required" if g.tls else None)


def _version(text: str) -> tuple[int, int]:
    parts = [int(p) for p in str(text).split(".")[:2] if p.isdigit()]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


class TransitEncryption(Backend):
    def check_transit_change(self, g: ReplicationGroup, enabled: bool | None, mode: str | None) -> str | None:
        """The mode a ModifyReplicationGroup moves the group to ("preferred", "required", "disabled"), or None
        for no change, with AWS's errors for what it refuses."""
        if enabled is None and mode is None:
            return None
        if mode is not None and mode not in MODES:
            raise invalid_value(f"Invalid value for TransitEncryptionMode: {mode}. Valid values: preferred, required.")
        now = current_mode(g)
        if enabled is False:
            if mode is not None:
                raise invalid_combination("TransitEncryptionMode cannot be given with TransitEncryptionEnabled=false.")
            if now is None:
                return None
            if now == "required":
                raise invalid_combination("To disable in-transit encryption, first set TransitEncryptionMode to "
                                          "preferred, then set TransitEncryptionEnabled to false in a later request.")
            if g.auth_token or g.user_group_ids:
                raise invalid_combination("In-transit encryption cannot be disabled on a replication group with an "
                                          "AUTH token or user groups (RBAC): both need it.")
            target = "disabled"
        elif now is None:
            if enabled is not True:
                raise invalid_combination("TransitEncryptionMode requires TransitEncryptionEnabled=true: to enable "
                                          "in-transit encryption on an existing replication group, set "
                                          "TransitEncryptionEnabled to true and TransitEncryptionMode to preferred.")
            if mode != "preferred":
                raise invalid_combination("To enable in-transit encryption on an existing replication group, you must "
                                          "set TransitEncryptionMode to preferred in the same request; once every "
                                          "client uses TLS, set it to required in a later request.")
            target = "preferred"
        else:
            target = mode or now
            if target == now:
                return None
        self.check_transit_supported(g.group_id, g.engine, g.engine_version, g.cluster_mode, g.global_id)
        return target

    def check_transit_supported(self, group_id: str, engine: str, version: str, cluster_mode: bool,
                                global_id: str | None) -> None:
        """TransitEncryptionMode preferred (and the steps from and to it): AWS's engine versions, and what
        the local engines can do."""
        if _version(version) < MIN_VERSION.get(engine, (7, 0)):
            title = engines.TITLES.get(engine, engine)
            raise invalid_combination(f"TransitEncryptionMode preferred (the online migration to in-transit "
                                      f"encryption) is supported for Valkey 7.2 and later and Redis OSS 7.0 and "
                                      f"later; {group_id} runs {title} {version}. Upgrade the engine first.")
        if cluster_mode:
            raise invalid_combination("Changing in-transit encryption of a cluster mode enabled group is not modelled "
                                      "on the local endpoint (its nodes would announce new TLS endpoints to cluster "
                                      "clients): create a group with TransitEncryptionEnabled and move the data with "
                                      "a snapshot (see docs/local-vs-aws.md).")
        if global_id:
            raise invalid_combination(f"Replication group {group_id} is a member of Global datastore {global_id}: "
                                      "its in-transit encryption is the global datastore's.")
        binary = self.engine_binary(engine, version)
        if not getattr(binary, "tls", False):
            raise invalid_combination(f"{binary.label} here was built without TLS, which a node needs to take TLS and "
                                      f"plaintext clients side by side. {engines.tls_hint()}")

    # --- applying a change (in the modify request's background work) ---------------------------------
    def apply_transit_change(self, g: ReplicationGroup, target: str) -> None:
        now = current_mode(g)
        g.busy = True  # the recovery monitor leaves the nodes alone while they change listeners
        try:
            if target == "preferred" and now is None:
                self._open_tls_listeners(g)
            elif target == "disabled":
                self._close_tls_listeners(g)
            else:  # preferred -> required, or back: every node restarts on its new listeners
                self._restart_listeners(g, target)
        finally:
            g.busy = False
        self.sync_endpoints(g)  # type: ignore[attr-defined]
        words = {"preferred": "In-transit encryption enabled (mode preferred): TLS and plaintext clients accepted",
                 "required": "In-transit encryption mode changed to required: plaintext connections dropped",
                 "disabled": "In-transit encryption disabled"}
        self.event(g.group_id, "replication-group", words[target])

    def _open_tls_listeners(self, g: ReplicationGroup) -> None:
        svc = self.group_service(g)  # type: ignore[attr-defined]
        for node in ops.data_nodes(svc):
            self.open_tls_listener(g, svc, node)
        g.transit_mode = "preferred"

    def open_tls_listener(self, g: ReplicationGroup, svc: services.Service, node: Node) -> None:
        """A TLS listener on a fresh port next to the node's plaintext one (the certificate files first)."""
        conn = self._admin(g, svc, node)  # type: ignore[attr-defined]
        port = engines.free_port()
        settings = _tls_settings(port, both=True)
        for key in [k for k in settings if k not in ("port", "tls-port")] + ["tls-port"]:
            conn.config_set(key, settings[key])  # one at a time, the files before the port opens
        with contextlib.suppress(*ops.ENGINE_ERRORS):
            conn.execute_command("CONFIG", "REWRITE")  # a restarted node keeps its TLS listener
        g.tls_ports[node.name] = port

    def tls_listeners(self, g: ReplicationGroup, live: list[Node]) -> dict[tuple[str, int], tuple[str, int]]:
        """(host, plaintext port) -> (host, TLS port) of each live node while the group is `preferred`; a node
        that joined since (a replica added or replaced) gets its TLS listener now."""
        if g.transit_mode != "preferred":
            return {}
        out = {}
        for n in live:
            if n.name not in g.tls_ports and not g.busy:
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    self.open_tls_listener(g, self.group_service(g), n)  # type: ignore[attr-defined]
            if n.name in g.tls_ports:
                out[(n.host, n.port)] = (n.host, g.tls_ports[n.name])
        return out

    def _close_tls_listeners(self, g: ReplicationGroup) -> None:
        svc = self.group_service(g)  # type: ignore[attr-defined]
        for node in ops.data_nodes(svc):
            conn = self._admin(g, svc, node)  # type: ignore[attr-defined]
            conn.config_set("tls-port", "0")
            with contextlib.suppress(*ops.ENGINE_ERRORS):
                conn.execute_command("CONFIG", "REWRITE")
        g.transit_mode, g.tls_ports = None, {}

    def _restart_listeners(self, g: ReplicationGroup, target: str) -> None:
        """Every node (and Sentinel) restarted with the listeners of `target`: data saved and reloaded."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from helpers.runtime import tls as tls_mod
        from helpers.runtime.service import record

        required = target == "required"
        svc = self.group_service(g)  # type: ignore[attr-defined]
        data = ops.data_nodes(svc)
        sentinels = svc.nodes_by(role="sentinel")
        roles = self._roles(g, svc)  # type: ignore[attr-defined]
        conns = {n.name: self._admin(g, svc, n) for n in data}  # type: ignore[attr-defined]
        for c in conns.values():
            with contextlib.suppress(*ops.ENGINE_ERRORS):
                c.execute_command("CONFIG", "REWRITE")  # each node's role (REPLICAOF) survives the restart
        for s in sentinels:  # no failover while the nodes restart
            s.stop()
        order = [n for n in data if roles.get(n.name) != "primary"] + [n for n in data if roles.get(n.name) == "primary"]
        for n in order:
            with contextlib.suppress(*ops.ENGINE_ERRORS):
                conns[n.name].set_retry(Retry(NoBackoff(), 0))  # the connection closing is the answer
                conns[n.name].execute_command("SHUTDOWN", "SAVE")
            deadline = time.monotonic() + 20
            while n.process() is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            n.stop()
        ports: dict[str, int] = {}
        for n in data:
            ports[n.name] = engines.free_port() if not required else n.port
            tls_port = n.port if required else ports[n.name]
            _rewrite(_config_of(n), _tls_settings(tls_port, both=not required, plain_port=n.port,
                                                  auth_clients="no" if g.topology == "aws-redis" else "optional"))
            if required:
                n.extra["tls"] = True
            else:
                n.extra.pop("tls", None)
        for s in sentinels:
            _rewrite(_config_of(s), _tls_settings(s.port, both=False) if required else {"port": str(s.port)},
                     keys=TLS_KEYS)
            if required:
                s.extra["tls"] = True
            else:
                s.extra.pop("tls", None)
        svc.options["tls"] = required
        svc.meta["tls"] = required
        probe = tls_mod.probe_redis_tls if required else engines.probe_redis
        for n in [n for n in data if roles.get(n.name) == "primary"] + [n for n in data if roles.get(n.name) != "primary"]:
            engines.restart_node(n, probe, timeout=RESTART_TIMEOUT)
        for s in sentinels:
            engines.restart_node(s, probe, timeout=RESTART_TIMEOUT)
        record(svc)
        g.tls = required
        g.transit_mode = target
        g.tls_ports = {} if required else ports
        self._wait_serving(g, svc, roles)

    def _wait_serving(self, g: ReplicationGroup, svc: services.Service, roles: dict[str, str]) -> None:
        deadline = time.monotonic() + RESTART_TIMEOUT
        for n in ops.data_nodes(svc):
            conn = self._admin(g, svc, n)  # type: ignore[attr-defined]
            ops.wait_ping(conn, timeout=RESTART_TIMEOUT)
            if roles.get(n.name) != "primary":
                ops.wait_replica_linked(conn, n.name, deadline - time.monotonic())
        if g.topology == "replicated":
            self.wait_sentinels_settled(g, svc)  # type: ignore[attr-defined]


def _tls_settings(tls_port: int, *, both: bool, plain_port: int | None = None,
                  auth_clients: str = "no") -> dict[str, str]:
    """A node's listener directives: TLS only on `tls_port` (plaintext closed, replication over TLS), or
    (`both`) a TLS listener next to the plaintext `plain_port` (replication stays plaintext)."""
    from helpers.runtime import tls as tls_mod

    settings = tls_mod.redis_tls_config(tls_port, auth_clients=auth_clients)
    if both:
        settings.update({"tls-auth-clients": "no", "tls-replication": "no", "tls-cluster": "no"})
        if plain_port is not None:
            settings["port"] = str(plain_port)
        else:
            settings.pop("port")
    return settings


def _config_of(node: Node) -> Path:
    return Path(node.extra.get("config_file") or node.argv[1])


def _rewrite(conf: Path, settings: dict[str, str], keys: tuple[str, ...] = TLS_KEYS) -> None:
    """Replace the listener directives of an owner-only config file (the engine's CONFIG REWRITE may have
    written them in any order, quoted)."""
    from helpers.runtime import state
    from helpers.runtime.service import PATH_DIRECTIVES, conf_quote

    lines = [ln for ln in conf.read_text().splitlines()
             if ln.strip().split(" ", 1)[0].lower() not in keys]
    lines += [f"{k} {conf_quote(v) if k in PATH_DIRECTIVES else v}" for k, v in settings.items()]
    state.write_secret(conf, "\n".join(lines) + "\n")
