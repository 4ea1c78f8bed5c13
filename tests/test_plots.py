"""The shared plot functions draw without errors on the headless backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from helpers import measure
from helpers.measure import plots  # noqa: E402


def test_latency_bars_with_samples_and_summaries():
    ax = plots.latency_bars({"db": [5.0, 6.0, 9.0], "cache": measure.percentiles([0.2, 0.3, 0.4])})
    assert len(ax.patches) == 6
    assert ax.get_yscale() == "log"


def test_cdf_timeline_compare():
    ax = plots.latency_cdf({"a": [1, 2, 3], "empty": []})
    assert ax.get_xscale() == "log"
    ax = plots.timeline([0, 1, 2], {"hit ratio": [0.1, 0.5, 0.9], "other": [1, 1, 1]}, kind="bar")
    assert len(ax.patches) == 6
    ax = plots.compare_bars({"without fix": 40, "with fix": 1}, log=True)
    assert len(ax.patches) == 2
    import matplotlib.pyplot as plt

    plt.close("all")
