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


def test_offsets_chart_gives_the_catch_up_room_and_labels_inside_the_plot():
    import matplotlib.pyplot as plt

    # A replica frozen for 0.9 s: the primary and the healthy replica advance, the frozen one stays, then
    # catches up at 1.0 s, right after it resumed at 0.95 s.
    samples = [(0.1 * i, {"p": 5e6 + i * 2e4, "a": 5e6 + i * 2e4, "b": 5e6}) for i in range(10)]
    samples.append((1.0, {"p": 5.2e6, "a": 5.2e6, "b": 5.2e6}))
    ax = plots.offsets_chart(samples, [("p", "primary"), ("a", "replica a"), ("b", "replica b (frozen)")],
                             resumed_at=0.95)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    plot_box = ax.get_window_extent(renderer)
    [label] = [t for t in ax.texts if t.get_text() == "resumed"]
    box = label.get_window_extent(renderer)
    assert plot_box.x0 < box.x0 and box.x1 < plot_box.x1 and plot_box.y0 < box.y0 and box.y1 < plot_box.y1
    assert ax.get_xlim()[1] >= 1.0 + 0.1  # room after the catch-up, not the right edge
    assert ax.get_legend().get_window_extent(renderer).x0 >= plot_box.x1  # beside the lines, not over them
    assert len(ax.get_lines()) == 4  # three nodes and the dashed line
    plt.close("all")


def test_the_charts_own_words_follow_the_learners_language(monkeypatch, tmp_path):
    """Titles, axes and labels that the plot functions write themselves (a lab's own titles are the lab's
    text, translated with its notebook) speak Spanish under ELASTICACHE_LAB_LANG=es."""
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # no .lab-lang marker here: the setting decides
    samples = [(0.0, {"p": 1e6, "r": 1e6}), (1.0, {"p": 2e6, "r": 1e6}), (2.0, {"p": 2e6, "r": 2e6})]
    for lang, words in (("es", ("segundos", "reanudada", "Desplazamientos de replicación", "latencia (ms)")),
                        ("en", ("seconds", "resumed", "Replication offsets", "latency (ms)"))):
        monkeypatch.setenv("ELASTICACHE_LAB_LANG", lang)
        ax = plots.offsets_chart(samples, [("p", "primary"), ("r", "replica")], resumed_at=1.5)
        cdf = plots.latency_cdf({"a": [1.0, 2.0, 3.0]}, log=False)
        assert ax.get_xlabel() == words[0] and [t.get_text() for t in ax.texts] == [words[1]]
        assert ax.get_title().startswith(words[2]) and cdf.get_xlabel() == words[3]
        plt.close("all")
