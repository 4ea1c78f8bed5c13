"""Plot functions the labs share, so every latency chart in the course reads the same way.

Each function draws on an Axes you pass (or a new figure) and returns the Axes, so a notebook
can write `_ = plots.latency_bars(...)` and a widget can redraw into the same Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from helpers import measure
from helpers.runtime.i18n import translator

_ = translator(__name__)

PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#9a6700", "#57606a")


def _axes(ax: Any = None, figsize: tuple[float, float] = (7, 3.5)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _summary(value: Sequence[float] | Mapping[str, float], ps: Sequence[float]) -> Mapping[str, float]:
    return value if isinstance(value, Mapping) else measure.percentiles(value, ps)


def latency_bars(series: Mapping[str, Sequence[float] | Mapping[str, float]], ps: Sequence[float] = (50, 95, 99),
                 ax: Any = None, title: str | None = None, log: bool = True, unit: str = "ms") -> Any:
    """Grouped bars: one group per percentile, one bar per series (raw samples or percentiles() dicts).

    A log scale is the default because a cache hit and a database query differ by orders of
    magnitude; on a linear scale the fast bars would be invisible.
    """
    ax = _axes(ax)
    names = list(series)
    keys = [f"p{p:g}".replace(".", "_") for p in ps]
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        summary = _summary(series[name], ps)
        xs = [k + (i - (len(names) - 1) / 2) * width for k in range(len(keys))]
        values = [summary[k] for k in keys]
        bars = ax.bar(xs, values, width, label=name, color=PALETTE[i % len(PALETTE)])
        ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=8, padding=2)
    ax.set_xticks(range(len(keys)), keys)
    ax.set_ylabel(_("latency ({unit}, log scale)", unit=unit) if log else _("latency ({unit})", unit=unit))
    if log:
        ax.set_yscale("log")
    ax.set_title(_("Latency percentiles") if title is None else title)
    ax.legend(loc="upper left", fontsize=8)
    ax.margins(y=0.2)
    return ax


def latency_cdf(series: Mapping[str, Sequence[float]], ax: Any = None, title: str | None = None,
                log: bool = True, unit: str = "ms") -> Any:
    """Empirical CDF of each series: where the tail starts is visible at a glance."""
    ax = _axes(ax)
    for i, (name, samples) in enumerate(series.items()):
        data = sorted(samples)
        if not data:
            continue
        ys = [(k + 1) / len(data) for k in range(len(data))]
        ax.step(data, ys, where="post", label=name, color=PALETTE[i % len(PALETTE)])
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(_("latency ({unit})", unit=unit))
    ax.set_ylabel(_("fraction of requests"))
    ax.set_title(_("Latency distribution") if title is None else title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def timeline(x: Sequence[float], series: Mapping[str, Sequence[float]], ax: Any = None, title: str = "",
             xlabel: str | None = None, ylabel: str = "", kind: str = "line") -> Any:
    """Several series over a shared x axis (hit ratio over time, queries per second, ...)."""
    ax = _axes(ax)
    for i, (name, ys) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        if kind == "bar":
            ax.bar(x, ys, width=(x[1] - x[0]) * 0.9 if len(x) > 1 else 0.8, label=name, color=colour, alpha=0.7)
        else:
            ax.plot(x, ys, label=name, color=colour)
    ax.set_xlabel(_("time (s)") if xlabel is None else xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return ax


def compare_bars(values: Mapping[str, float], ax: Any = None, title: str = "", ylabel: str = "",
                 log: bool = False) -> Any:
    """One bar per label with its value written on it (e.g. database queries with and without a fix)."""
    ax = _axes(ax, figsize=(6, 3))
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color=[PALETTE[i % len(PALETTE)] for i in range(len(names))])
    ax.bar_label(bars, labels=[_fmt(values[n]) for n in names], padding=2)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.2)
    return ax


def offsets_chart(samples: Sequence[tuple[float, Mapping[Any, float]]], series: Sequence[tuple[Any, str]],
                  resumed_at: float | None = None, ax: Any = None,
                  title: str | None = None) -> Any:
    """Replication offsets (MB) over time, one step line per node: `samples` are (seconds, {node: offset}),
    `series` (node, label) pairs, the first drawn as the primary. A dashed line marks `resumed_at`, labelled
    inside the plot; the x axis runs on past the last sample, so the catch-up is not drawn against the edge."""
    ax = _axes(ax, figsize=(7, 3))
    ts = [t for t, _ in samples]
    for i, (node, label) in enumerate(series):
        style = {"lw": 5, "alpha": 0.35} if i == 0 else {"marker": "o", "ms": 3}
        ax.plot(ts, [s[node] / 1e6 for _, s in samples], drawstyle="steps-post", label=label,
                color=PALETTE[i % len(PALETTE)], **style)
    span = (max(ts) - min(ts)) or 1.0
    ax.set_xlim(min(ts) - 0.02 * span, max(ts) + 0.15 * span)
    if resumed_at is not None:
        ax.axvline(resumed_at, color=PALETTE[-1], linestyle="--", lw=1)
        # Halfway up, just left of the line (x in data, y in axes fractions): inside the plot whatever the data.
        ax.annotate(_("resumed"), xy=(resumed_at, 0.5), xycoords=ax.get_xaxis_transform(), xytext=(-3, 0),
                    textcoords="offset points", rotation=90, ha="right", va="center", fontsize=8,
                    color=PALETTE[-1])
    ax.set_xlabel(_("seconds"))
    ax.set_ylabel(_("replication offset (MB)"))
    ax.set_title(_("Replication offsets: a frozen replica falls behind, then catches up") if title is None else title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the plot: never over a line
    return ax


def _fmt(v: float) -> str:
    if float(v).is_integer():
        return f"{int(v)}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class Interactive:
    """Controls plus a redrawn figure: `w = Interactive(...)`, `display(w.ui)`, then `w.update()`.

    Every slider change re-runs `draw(ax, **values)` (a real experiment, not a lookup table), so
    the figure always shows what the engines just did. `update()` is also what a headless test
    calls once. `draw` may return a short text shown under the figure.
    """

    def __init__(self, controls: Mapping[str, Any], draw: Any, figsize: tuple[float, float] = (8, 3.5)):
        import ipywidgets as widgets

        self.controls = dict(controls)
        self.draw = draw
        self.figsize = figsize
        self.output = widgets.Output()
        self.caption = widgets.HTML()
        self.last: Any = None
        for control in self.controls.values():
            control.continuous_update = False
            control.observe(lambda _change: self.update(), names="value")
        self.ui = widgets.VBox([widgets.HBox(list(self.controls.values())), self.output, self.caption])

    def values(self) -> dict[str, Any]:
        return {name: c.value for name, c in self.controls.items()}

    def update(self) -> Any:
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        fig, ax = plt.subplots(figsize=self.figsize)
        try:
            self.last = self.draw(ax, **self.values())
            fig.tight_layout()
            with self.output:
                clear_output(wait=True)
                display(fig)
        finally:
            plt.close(fig)
        self.caption.value = f"<small>{self.last}</small>" if isinstance(self.last, str) else ""
        return self.last
