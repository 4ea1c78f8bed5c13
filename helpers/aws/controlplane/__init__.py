"""The local ElastiCache control plane: moto's ElastiCache API, backed by real engines.

Installed by helpers.aws.server inside the moto server process (moto is pinned in pyproject.toml).
Everything that changes moto lives in this package and is applied by `install()`, which only that
process calls: importing the package does nothing, because `install()` also stops engines that
this process's (empty) model does not know, which in any other process would be the live ones.

- api.py: the seam with moto: which function of responses/ answers each ElastiCache action on
  ElastiCacheResponse (replacing moto's handlers, and adding the ones moto lacks: user groups,
  parameter groups, modify/scale, test-failover, events, ...); every other action answers InvalidAction;
- responses/: one module per resource (clusters, replication, global_datastore, serverless, users,
  parameters, snapshots, events, reserved, engines; service for what is around them), each answering
  its own resource's actions: a request's parameters become keyword arguments for the model, and the
  records the model returns become AWS-shaped answers;
- models/: the backend, `PLANE`, one `ControlPlane` mixed from one module per resource (clusters;
  replication groups; scaling and failover; users and user groups; parameter groups; snapshots;
  events and tags; ...), each with its resource's record and table, and the shared tools in
  models/base.py: what each operation does to the engines, the slow work in background threads;
- engineops.py: the engine side (a Redis node topology with AUTH token file and TLS, CONFIG SET,
  ACL SETUSER, BGSAVE + copy, restore with DUMP/RESTORE);
- discovery.py: Memcached Auto Discovery (`config get cluster` on the configuration endpoint);
- metrics.py: engine metrics (INFO / stats) published to the local CloudWatch, AWS/ElastiCache;
- errors.py: AWS's error codes (helpers.aws.catalogue's CatalogueError becomes one of them);
- atrest.py: at-rest encryption of snapshot files with a data key from the local KMS.

Every action answers an AWS-style error rather than HTTP 500 (api.guarded), pages with Marker and
MaxRecords, and the local-only action ApplyPendingModifications (`python -m helpers aws apply-pending`)
applies the changes that wait for a maintenance window. query.py checks what AWS checks before any
action runs (Action, Version, values of the right type). What is real, recorded or refused, option by
option: docs/local-vs-aws.md.

Engines are services named `aws-<cache cluster id>[-<node id>]` or `aws-rg-<replication group id>`
in the learner's state directory, so `python -m helpers stop` stops them; moto's /moto-api/reset
stops them too. The records are kept in a SQLite file of the state directory (store.py) and read back
by the next server, which adopts the engines they name that still run, starts again those that stopped
(with the data a clean stop saved: restart.py) and stops the ones no record names.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)
_INSTALLED = False


def install() -> None:
    """Patch moto's ElastiCache responses and reset hook (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.elasticache.responses import ElastiCacheResponse
    from moto.moto_api._internal.models import MotoAPIBackend

    from helpers.aws.controlplane import api, store
    from helpers.aws.controlplane.models import PLANE, base

    for name, handler in {**api.unimplemented_handlers(), **api.HANDLERS}.items():
        if hasattr(ElastiCacheResponse, name):
            api._ORIGINAL.setdefault(name, getattr(ElastiCacheResponse, name))
        setattr(ElastiCacheResponse, name, handler)
    for name in api.operation_names():  # every action, ours and moto's: AWS-style errors only, never a 500
        setattr(ElastiCacheResponse, name, api.guarded(name, getattr(ElastiCacheResponse, name)))
    _answer_unknown_actions(ElastiCacheResponse)
    # A local-only action (not in AWS's API): apply pending modifications now, as a maintenance window would.
    ElastiCacheResponse.apply_pending_modifications = api.guarded(  # type: ignore[attr-defined]
        "apply_pending_modifications", api.apply_pending_modifications)

    original_reset = MotoAPIBackend.reset

    def reset(self: MotoAPIBackend) -> None:
        PLANE.reset()
        store.forget()
        original_reset(self)
        PLANE.changed()

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]
    _INSTALLED = True
    store.load(PLANE)  # the records of the previous server, before the first request (store.py)
    base.ON_CHANGE.append(lambda: store.save(PLANE))
    store.start_saver(PLANE)
    stop_half_made()  # before the first request: nothing this server starts can be among them
    threading.Thread(target=_reconcile, name="controlplane-reconcile", daemon=True).start()
    from helpers.aws.controlplane.metrics import start_publisher

    start_publisher(PLANE)


def stop_half_made() -> list[str]:
    """Engines a previous server was still starting when it died (kill -9 in the middle of a create): no
    record names them, so no record can adopt them. Stop them, and say so in one line."""
    import psutil

    from helpers.aws.controlplane import engineops as ops
    from helpers.runtime import process, services, state

    base = str(state.home().resolve() / "services" / ops.PREFIX)
    found = []
    for proc in services.unrecorded_processes():
        try:
            where = [*proc.cmdline()[1:], os.path.join(proc.cwd(), "-")]
            if any(w.startswith(base) for w in where):
                found.append(f"{proc.name()}[{proc.pid}]")
                process.stop_tree(proc, timeout=5)
        except (psutil.Error, OSError) as exc:  # psutil.Error, or a process gone meanwhile: the next one still gets looked at
            log.warning("could not check or stop process %s: %s", proc.pid, exc)
    if found:
        log.warning("Stopped %d engine process(es) that a previous local AWS endpoint was still starting when it "
                    "stopped (no resource names them): %s", len(found), ", ".join(found))
    return found


def _reconcile() -> None:
    """The stored records against what runs: engines a record names are adopted or started again (with
    the data a clean stop saved), engines no record names are stopped (restart.py).

    Runs in a thread because the server starts while `services.start("aws")` holds the lock.
    """
    from helpers.aws.controlplane import restart
    from helpers.aws.controlplane.models import PLANE

    try:
        restart.reconcile(PLANE)
    except Exception:  # whatever failed, the endpoint still answers; what failed is in its log
        log.exception("could not reconcile the stored records with the running engines")


def shutdown() -> None:
    """A clean stop of the endpoint (SIGTERM): save each cache's data and the records (restart.py)."""
    from helpers.aws.controlplane import restart
    from helpers.aws.controlplane.models import PLANE

    if _INSTALLED:
        restart.shutdown(PLANE)


def _answer_unknown_actions(cls: type) -> None:
    """Requests refused before any handler runs get AWS's errors instead of moto's 404 or HTTP 500: no
    Action (MissingAction), another API Version or an Action botocore's model lacks (InvalidAction), a
    value not of its parameter's type (InvalidParameterValue); see query.py."""
    from helpers.aws.controlplane import query

    query.install(cls)
    original_call = cls.call_action  # type: ignore[attr-defined]

    def call_action(self):  # type: ignore[no-untyped-def]
        from moto.core.utils import camelcase_to_underscores, method_names_from_class

        action = self._get_action()
        refused = query.refusal(self)
        if refused is None and camelcase_to_underscores(action) not in method_names_from_class(self.__class__):
            refused = "InvalidAction", f"The action {action} is not valid for this web service."
        if refused is not None:
            return 400, {"Content-Type": "text/xml"}, query.error_body(*refused)
        return original_call(self)

    cls.call_action = call_action  # type: ignore[attr-defined]
