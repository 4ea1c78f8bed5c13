"""Fault injection from a notebook: one row per node with Kill / Pause / Resume buttons.

Killing (SIGKILL) is a crashed host; pausing (SIGSTOP) is a hung one that still holds its port,
which is the harder case for clients and failure detectors. "Heal" restarts what was killed,
the way ElastiCache replaces a failed node. The same actions exist in Python:
`svc.kill(node)`, `svc.pause(node)`, `svc.resume(node)`, and `start(...)` heals.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from . import services
from .engines import Node
from .services import Service

ACTIONS = ("kill", "pause", "resume")


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
                b = w.Button(description=action.capitalize(), button_style=style, layout=w.Layout(width="80px"),
                             tooltip=f"{action} {n.name}")
                b.on_click(lambda _b, name=n.name, action=action: self.act(action, name))
                self.buttons[n.name][action] = b
            rows.append(w.HBox([label, *self.buttons[n.name].values()]))
        self.heal_button = w.Button(description="Heal (restart killed nodes)", layout=w.Layout(width="260px"))
        self.heal_button.on_click(lambda _b: self.heal())
        self.refresh_button = w.Button(description="Refresh", layout=w.Layout(width="100px"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.status = w.HTML()
        self.widget = w.VBox([w.HTML(f"<b>{svc.name}</b> ({svc.topology})"), *rows,
                              w.HBox([self.heal_button, self.refresh_button]), self.status])
        self.refresh()

    def _node(self, name: str) -> Node:
        return self.svc.node(name=name)

    def act(self, action: str, name: str) -> None:
        """Apply kill/pause/resume to the node `name` (what the buttons call)."""
        node = self._node(name)
        try:
            getattr(node, action)()
            self._say(f"{action} {name} ({node.role}, port {node.port}) at {time.strftime('%H:%M:%S')}")
        except Exception as exc:  # e.g. pausing a dead node: say so, do not crash the widget
            self._say(f"{action} {name} failed: {exc}")
        if self.on_change:
            self.on_change(action, node)
        self.refresh(reread_roles=False)

    def heal(self) -> None:
        self._say("healing: restarting killed nodes ...")
        try:
            self.svc = heal(self.svc)
            self._say("healed: every node runs again")
        except Exception as exc:
            self._say(f"heal failed: {exc}")
        if self.on_change:
            self.on_change("heal", None)
        self.refresh()

    def refresh(self, reread_roles: bool = True) -> list[dict[str, Any]]:
        """Update the labels (and, for replicated/cluster services, the roles) and return the rows."""
        if reread_roles and self.svc.topology in ("replicated", "cluster"):
            from . import topologies

            with contextlib.suppress(Exception):  # during a failover the engines may not answer
                self.svc = topologies.refresh_roles(self.svc)
        rows = describe(self.svc)
        colours = {"running": "#1a7f37", "paused": "#9a6700", "dead": "#cf222e"}
        for row in rows:
            label = self.labels.get(row["name"])
            if label is not None:
                label.value = (f"<code>{row['name']:<24}</code> {row['role']:<8} {row['address']} "
                               f"pid {row['pid']} <b style='color:{colours[row['state']]}'>{row['state']}</b>")
        return rows

    def _say(self, text: str) -> None:
        self.log.append(text)
        self.status.value = "<br>".join(self.log[-4:])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def fault_panel(svc: Service, on_change: Callable[[str, Node | None], None] | None = None) -> FaultPanel:
    """Build the fault-injection panel for `svc` (display it, or call its methods headless)."""
    return FaultPanel(svc, on_change)
