"""Fault injection from a notebook: one row per node with Kill / Pause / Resume buttons.

Killing (SIGKILL) is a crashed host; pausing (SIGSTOP) is a hung one that still holds its port,
which is the harder case for clients and failure detectors. "Heal" restarts what was killed,
the way ElastiCache replaces a failed node. The same actions exist in Python:
`svc.kill(node)`, `svc.pause(node)`, `svc.resume(node)`, and `start(...)` heals.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
from redis.exceptions import RedisClusterException, RedisError

from helpers.runtime import services
from helpers.runtime.engines import Node
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import Service
from helpers.runtime.state import LabError

log = logging.getLogger(__name__)
_ = translator(__name__)

ACTIONS = ("kill", "pause", "resume")
# What the panel shows for each action and node state, in the learner's language (the code keeps the English words).
BUTTONS = {"kill": N_("Kill"), "pause": N_("Pause"), "resume": N_("Resume")}
TOOLTIPS = {"kill": N_("kill {name}"), "pause": N_("pause {name}"), "resume": N_("resume {name}")}
DONE = {"kill": N_("kill {name} ({role}, port {port}) at {time}"),
        "pause": N_("pause {name} ({role}, port {port}) at {time}"),
        "resume": N_("resume {name} ({role}, port {port}) at {time}")}
FAILED = {"kill": N_("kill {name} failed: {error}"), "pause": N_("pause {name} failed: {error}"),
          "resume": N_("resume {name} failed: {error}")}
STATES = {"running": N_("running"), "paused": N_("paused"), "dead": N_("dead"), "deleted": N_("deleted")}
COLOURS = {"running": "#1a7f37", "paused": "#9a6700", "dead": "#cf222e", "deleted": "#57606a"}
GONE = N_("{name} was stopped and its record deleted: its processes are gone, so these buttons do nothing now. "
          "Start it again (the cell with start(...)) and press Refresh, or build a new panel.")
BACK = N_("{name} runs again: the panel follows its new processes.")
WATCH_EVERY = 2.0  # seconds between two looks at the recorded service while the panel is shown


def heal(svc: Service) -> Service:
    """Restart killed nodes (and resume paused ones) through the topology's own heal logic."""
    for n in svc.nodes:
        if n.paused():
            n.resume()
    return services.start(svc.topology, name=svc.name, **svc.options)


def describe(svc: Service) -> list[dict[str, Any]]:
    """One row per node: name, role, address, pid and state (running, paused, dead)."""
    return [{"name": n.name, "role": n.role, "address": f"{n.host}:{n.port}", "pid": n.pid,
             "state": services.node_state(n)} for n in svc.nodes]


class FaultPanel:
    """ipywidgets controls for one service; `refresh()` re-reads states and roles from the engines."""

    def __init__(self, svc: Service, on_change: Callable[[str, Node | None], None] | None = None):
        import ipywidgets as w

        self.svc = svc
        self.on_change = on_change
        self.log: list[str] = []
        self.labels: dict[str, Any] = {}
        self.buttons: dict[str, dict[str, Any]] = {}
        rows = []
        for n in svc.nodes:
            label = w.HTML(layout=w.Layout(width="430px"))
            self.labels[n.name] = label
            self.buttons[n.name] = {}
            for action, style in zip(ACTIONS, ("danger", "warning", "success"), strict=True):
                b = w.Button(description=_(BUTTONS[action]), button_style=style, layout=w.Layout(width="80px"),
                             tooltip=_(TOOLTIPS[action], name=n.name))
                b.on_click(lambda _b, name=n.name, action=action: self.act(action, name))
                self.buttons[n.name][action] = b
            rows.append(w.HBox([label, *self.buttons[n.name].values()]))
        self.heal_button = w.Button(description=_("Heal (restart killed nodes)"), layout=w.Layout(width="260px"))
        self.heal_button.on_click(lambda _b: self.heal())
        self.refresh_button = w.Button(description=_("Refresh"), layout=w.Layout(width="100px"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.status = w.HTML()
        self.widget = w.VBox([w.HTML(f"<b>{svc.name}</b> ({svc.topology})"), *rows,
                              w.HBox([self.heal_button, self.refresh_button]), self.status])
        self._gone = False
        self._lock = threading.RLock()
        self._watching = threading.Event()
        self._closed = threading.Event()
        self.refresh()

    def _node(self, name: str) -> Node:
        return self.svc.node(name=name)

    def act(self, action: str, name: str) -> None:
        """Apply kill/pause/resume to the node `name` (what the buttons call)."""
        if not self.follow():  # stopped meanwhile: nothing to act on (the panel says so)
            self.refresh(reread_roles=False)
            return
        node = self._node(name)
        try:
            getattr(node, action)()
            self._say(_(DONE[action], name=name, role=node.role, port=node.port, time=time.strftime("%H:%M:%S")))
        except (LabError, psutil.Error) as exc:  # e.g. pausing a dead node: say so, do not crash the widget
            self._say(_(FAILED[action], name=name, error=exc))
        if self.on_change:
            self.on_change(action, node)
        self.refresh(reread_roles=False)

    def heal(self) -> None:
        if not self.follow():
            self.refresh(reread_roles=False)
            return
        self._say(_("healing: restarting killed nodes ..."))
        try:
            self.svc = heal(self.svc)
            self._say(_("healed: every node runs again"))
        except Exception as exc:  # a button's callback: say so in the panel, never raise into the widget
            log.warning("healing %s failed: %s", self.svc.name, exc, exc_info=True)
            self._say(_("heal failed: {error}", error=exc))
        if self.on_change:
            self.on_change("heal", None)
        self.refresh()

    def follow(self) -> bool:
        """Take the service as the state directory records it now (a restart gives new pids, a failover new
        roles); False once it was stopped (its record deleted): the panel then says so and its buttons are
        off, since there is nothing left to kill, pause or heal. A service started again is followed again."""
        with self._lock:
            recorded = services.get(self.svc.name)
            if recorded is None:
                if not self._gone:
                    self._gone = True
                    self._enable(False)
                    self._say(_(GONE, name=self.svc.name))
                return False
            self.svc = recorded
            if self._gone:
                self._gone = False
                self._enable(True)
                self._say(_(BACK, name=self.svc.name))
            return True

    @property
    def gone(self) -> bool:
        """True once the service was stopped. Read under the panel's lock: a refresh under way (which may
        find the service gone) finishes its labels first, so `gone` is never seen before they say so."""
        with self._lock:
            return self._gone

    def _enable(self, on: bool) -> None:
        for buttons in self.buttons.values():
            for b in buttons.values():
                b.disabled = not on
        self.heal_button.disabled = not on

    def refresh(self, reread_roles: bool = True) -> list[dict[str, Any]]:
        """Update the labels (and, for replicated/cluster services, the roles) and return the rows."""
        with self._lock:
            if not self.follow():
                rows = [{**row, "state": "deleted"} for row in describe(self.svc)]
            else:
                if reread_roles and self.svc.topology in ("replicated", "cluster"):
                    from helpers.runtime import topologies

                    with contextlib.suppress(RedisError, RedisClusterException, LabError, psutil.Error, OSError):
                        # during a failover the engines may not answer: the recorded roles stay
                        self.svc = topologies.refresh_roles(self.svc)
                rows = describe(self.svc)
            for row in rows:
                label = self.labels.get(row["name"])
                if label is not None:
                    label.value = (f"<code>{row['name']:<24}</code> {row['role']:<8} {row['address']} "
                                   f"pid {row['pid']} <b style='color:{COLOURS[row['state']]}'>"
                                   f"{_(STATES[row['state']])}</b>")
            return rows

    def watch(self, every: float = WATCH_EVERY) -> None:
        """Follow the service while the panel is shown: every `every` seconds its processes' states (from the
        recorded pids, no engine is asked) are shown, so a kill, a restart or a stop by another cell (Run All
        runs the lab's clean-up after this panel) shows without pressing Refresh. Ends once it was stopped."""
        if self._watching.is_set():
            return
        self._watching.set()

        def loop() -> None:
            try:
                while not self.gone and not self._closed.wait(every):
                    self.refresh(reread_roles=False)
            except (OSError, ValueError, LabError, psutil.Error):  # the record or a process could not be read
                log.warning("the fault panel of %s stopped following it", self.svc.name, exc_info=True)
            finally:
                self._watching.clear()

        threading.Thread(target=loop, name=f"fault-panel-{self.svc.name}", daemon=True).start()

    def close(self) -> None:
        """Stop following the service and remove the panel's widgets."""
        self._closed.set()
        self.widget.close()

    def _say(self, text: str) -> None:
        self.log.append(text)
        self.status.value = "<br>".join(self.log[-4:])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        self.watch()


def fault_panel(svc: Service, on_change: Callable[[str, Node | None], None] | None = None) -> FaultPanel:
    """Build the fault-injection panel for `svc` (display it, or call its methods headless)."""
    return FaultPanel(svc, on_change)


# --- a measured failover ---------------------------------------------------------------------------


@dataclass
class FailoverReport:
    """What a client saw while the primary failed: every write, when, and whether it survived."""

    fault: str
    old_primary: tuple[str, int]
    new_primary: tuple[str, int]
    window_s: float  # from the fault to the first write accepted after it (the unavailability window)
    ack_window_s: float = float("nan")  # ... to the first write a replica acknowledged again
    events: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, outcome)
    fault_at: float = 0.0
    acked: list[str] = field(default_factory=list)  # written and acknowledged by >= min_replicas
    unacked: list[str] = field(default_factory=list)  # written, but no replica confirmed in time
    failed: int = 0  # attempts that raised (the primary was gone)
    lost_acked: list[str] = field(default_factory=list)
    lost_unacked: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"fault": self.fault, "old_primary": f"{self.old_primary[0]}:{self.old_primary[1]}",
                "new_primary": f"{self.new_primary[0]}:{self.new_primary[1]}",
                "unavailable_s": round(self.window_s, 2), "until_acknowledged_s": round(self.ack_window_s, 2),
                "acknowledged_writes": len(self.acked),
                "acknowledged_lost": len(self.lost_acked), "unacknowledged_writes": len(self.unacked),
                "unacknowledged_lost": len(self.lost_unacked), "failed_attempts": self.failed}


def measure_failover(svc: Service, *, prefix: str = "failover", fault: str = "kill", before_s: float = 0.5,
                     writes_after: int = 20, timeout: float = 30.0, min_replicas: int = 1,
                     wait_ms: int = 500) -> FailoverReport:
    """Write (SET + WAIT) through a primary that gets killed or paused; measure and verify.

    The client finds the primary through Sentinel, so after the failover it writes to the
    promoted replica without any change of configuration, like an application using the
    primary endpoint of an ElastiCache replication group.
    """
    from helpers.runtime import topologies

    if fault not in ("kill", "pause"):
        raise ValueError("fault must be 'kill' or 'pause'")
    c = topologies.primary_client(svc, socket_timeout=1.0)
    for key in c.scan_iter(f"{prefix}:*", count=1000):
        c.delete(key)
    old = topologies.current_primary(svc)
    victim = next(n for n in svc.nodes if (n.host, n.port) == old)
    report = FailoverReport(fault=fault, old_primary=old, new_primary=old, window_s=float("nan"))
    t0 = time.monotonic()
    i, ok_after, faulted, accepted_at, recovered_at = 0, 0, False, None, None
    values: dict[str, str] = {}
    try:
        while ok_after < writes_after:
            now = time.monotonic() - t0
            if not faulted and now >= before_s:
                getattr(victim, fault)()
                report.fault_at, faulted = time.monotonic() - t0, True
            if faulted and now - report.fault_at > timeout:
                break
            key, i = f"{prefix}:{i}", i + 1
            values[key] = str(i)
            try:
                c.set(key, str(i))
            except RedisError:  # the primary is gone and no replica promoted yet
                report.failed += 1
                report.events.append((time.monotonic() - t0, "failed"))
                time.sleep(0.02)
                continue
            try:
                acks = c.wait(min_replicas, wait_ms)
            except RedisError:
                acks = 0
            outcome = "acknowledged" if acks >= min_replicas else "unacknowledged"
            (report.acked if acks >= min_replicas else report.unacked).append(key)
            report.events.append((time.monotonic() - t0, outcome))
            if faulted:
                accepted_at = accepted_at or time.monotonic() - t0
            if faulted and outcome == "acknowledged":
                recovered_at = recovered_at or time.monotonic() - t0
                ok_after += 1
    finally:
        if fault == "pause":
            victim.resume()
    if accepted_at is not None:
        report.window_s = accepted_at - report.fault_at
    if recovered_at is not None:
        report.ack_window_s = recovered_at - report.fault_at
    report.new_primary = topologies.current_primary(svc)
    check = topologies.primary_client(svc)
    got = dict(zip(report.acked + report.unacked, check.mget(report.acked + report.unacked) if values else [],
                   strict=False))
    report.lost_acked = [k for k in report.acked if got.get(k) != values[k]]
    report.lost_unacked = [k for k in report.unacked if got.get(k) != values[k]]
    topologies.refresh_roles(svc)
    return report


def plot_failover(report: FailoverReport, ax: Any = None) -> Any:
    """Each write as a dot on a time line: acknowledged, unacknowledged or failed."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    rows = {"acknowledged": 2, "unacknowledged": 1, "failed": 0}
    colours = {"acknowledged": "#1a7f37", "unacknowledged": "#9a6700", "failed": "#cf222e"}
    for outcome, y in rows.items():
        xs = [t for t, o in report.events if o == outcome]
        ax.scatter(xs, [y] * len(xs), s=8, color=colours[outcome], label=f"{outcome} ({len(xs)})")
    ax.axvline(report.fault_at, color="#57606a", linestyle="--")
    ax.text(report.fault_at, 2.35, f" primary {'killed' if report.fault == 'kill' else 'paused'}", color="#57606a", fontsize=8)
    if report.window_s == report.window_s:  # not NaN
        ax.axvspan(report.fault_at, report.fault_at + report.window_s, color="#cf222e", alpha=0.08)
    ax.set_yticks(list(rows.values()), list(rows))
    ax.set_ylim(-0.5, 2.7)
    ax.set_xlabel("seconds")
    ax.set_title(f"Writes during a failover: unavailable for {report.window_s:.1f} s")
    ax.legend(loc="lower right", fontsize=7)
    return ax


# --- background traffic ----------------------------------------------------------------------------


class Traffic:
    """A client that keeps writing and reading back in a thread while you operate on the service.

    Every request is counted: `ok`, `failed` (an exception reached the application) and `wrong`
    (a read returned something other than what was just written). Use as a context manager::

        with Traffic(lambda: topo.cluster_client(svc), prefix="lab10:live") as t:
            topo.add_shard(svc)
        assert t.failed == 0
    """

    def __init__(self, make_client: Callable[[], Any], prefix: str = "traffic", keys: int = 1000,
                 pause_s: float = 0.002):
        import threading

        self.make_client = make_client
        self.prefix = prefix
        self.keys = keys
        self.pause_s = pause_s  # a steady client, not a busy loop that starves the notebook's own work
        self.ok = self.failed = self.wrong = 0
        self.errors: list[str] = []
        self.done_at: list[float] = []  # completion time of each successful request pair
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"traffic-{prefix}")
        self.t0 = time.monotonic()

    def _run(self) -> None:
        client = self.make_client()
        i = 0
        while not self._stop.is_set():
            key, value = f"{self.prefix}:{i % self.keys}", str(i)
            try:
                client.set(key, value)
                got = client.get(key)
                got = got.decode() if isinstance(got, bytes) else got
                if got == value:
                    self.ok += 1
                    self.done_at.append(time.monotonic() - self.t0)
                else:
                    self.wrong += 1
                    self.errors.append(f"{key}: wrote {value!r}, read {got!r}")
            except Exception as exc:  # whatever the application would have seen counts: the thread carries on
                log.debug("traffic %s: request failed: %s", self.prefix, exc, exc_info=True)
                self.failed += 1
                self.errors.append(f"{type(exc).__name__}: {exc}")
            i += 1
            if self.pause_s:
                time.sleep(self.pause_s)

    def mark(self, label: str) -> None:
        """Note the moment something happened (for the plot)."""
        self.marks.append((time.monotonic() - self.t0, label))

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __enter__(self) -> Traffic:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def summary(self) -> dict[str, Any]:
        return {"requests_ok": self.ok, "requests_failed": self.failed, "wrong_reads": self.wrong,
                "seconds": round(self.elapsed(), 2), "first_errors": self.errors[:3]}

    def plot(self, ax: Any = None, bucket_s: float = 0.25, title: str = "") -> Any:
        """Throughput over time (successful write+read pairs per second), with the marks."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 2.8))
        end = max(self.done_at[-1] if self.done_at else 0, self.elapsed())
        n = max(1, int(end / bucket_s))  # whole buckets only: a partial last one would look like a drop
        counts = [0] * n
        for t in self.done_at:
            counts[min(int(t / bucket_s), n - 1)] += 1
        ax.plot([i * bucket_s for i in range(n)], [c / bucket_s for c in counts], color="#0969da")
        for t, label in self.marks:
            ax.axvline(t, color="#57606a", linestyle="--")
            ax.text(t, 0, f" {label}", rotation=90, va="bottom", fontsize=8, color="#57606a")
        ax.set_xlabel("seconds")
        ax.set_ylabel("requests/s")
        ax.set_title(title or f"{self.ok} requests ok, {self.failed} failed, {self.wrong} wrong")
        return ax
