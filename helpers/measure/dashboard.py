"""A small live dashboard: sample the engine, publish to CloudWatch, redraw a few charts.

It refreshes a bounded number of times (a notebook cell must end), each refresh being one
"period" in CloudWatch's sense: the metrics of the interval since the previous refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from helpers.measure import metrics as m
from helpers.runtime.i18n import translator

_ = translator(__name__)

PANELS = ("CacheHitRate", "EngineCPUUtilization", "CurrConnections", "DatabaseMemoryUsagePercentage")


class MetricsDashboard:
    """Charts of a few ElastiCache metrics over the last refreshes (matplotlib in an ipywidgets Output)."""

    def __init__(self, sampler: m.Sampler, panels: Sequence[str] = PANELS, cw: Any = None,
                 cluster_id: str | None = None):
        import ipywidgets as w

        self.sampler, self.panels, self.cw, self.cluster_id = sampler, list(panels), cw, cluster_id
        self.history: list[dict[str, float]] = []
        self.times: list[float] = []
        self.t0 = time.monotonic()
        self._fig: Any = None
        self._lines: dict[str, tuple[Any, Any]] = {}
        self.out = w.Output()
        self.status = w.HTML()
        self.widget = w.VBox([self.status, self.out])

    def refresh(self) -> dict[str, float]:
        """Take one sample, publish it (if a CloudWatch client was given) and redraw."""
        sample = self.sampler.sample()
        self.history.append(sample)
        self.times.append(time.monotonic() - self.t0)
        if self.cw is not None and self.cluster_id:
            m.publish(self.cw, self.cluster_id, sample)
        self.draw()
        return sample

    def series(self, name: str) -> list[float]:
        return [h.get(name, 0.0) for h in self.history]

    def figure(self) -> Any:
        """The dashboard's figure, made once; later refreshes only move its lines (cheap)."""
        if self._fig is None:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, len(self.panels), figsize=(3.2 * len(self.panels), 2.6))
            for ax, name in zip(list(getattr(axes, "flat", [axes])), self.panels, strict=True):
                (line,) = ax.plot([], [], marker="o", color="#0969da")
                ax.set_title(f"{name} ({m.UNITS.get(name, '')})", fontsize=9)
                ax.set_xlabel("s", fontsize=8)
                ax.grid(alpha=0.3)
                self._lines[name] = (ax, line)
            fig.tight_layout()
            plt.close(fig)  # shown through the Output widget only, not again at the end of the cell
            self._fig = fig
        for name, (ax, line) in self._lines.items():
            line.set_data(self.times, self.series(name))
            ax.relim()
            ax.autoscale_view()
        return self._fig

    def draw(self) -> None:
        from IPython.display import clear_output, display

        fig = self.figure()
        with self.out:
            clear_output(wait=True)
            display(fig)
        last = self.history[-1] if self.history else {}
        self.status.value = _("refresh {n}: hit rate {hit:.1f}%, CPU {cpu:.1f}%, {connections} connections",
                              n=len(self.history), hit=last.get("CacheHitRate", 0),
                              cpu=last.get("EngineCPUUtilization", 0), connections=int(last.get("CurrConnections", 0)))

    def run(self, steps: int, workload: Callable[[int], Any] | None = None, interval: float = 0.0) -> None:
        """Refresh `steps` times; before each refresh call workload(step) (the traffic of that period)."""
        for step in range(steps):
            if workload is not None:
                workload(step)
            if interval:
                time.sleep(interval)
            self.refresh()
