"""A learner's progress across the labs: what `python -m helpers progress` prints, as a widget.

Progress is what `q.check(...)` records in the state directory (helpers.exercises.core). The widget
reads it again on "Refresh", so a learner can keep it open in a side panel while working.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS_WORDS = {"correct": "done", "attempted": "tried", "unanswered": "not started"}
STATUS_MARKS = {"correct": "✔", "attempted": "…", "unanswered": "·"}


@dataclass
class LabProgress:
    lab: str  # "03"
    title: str  # "03_database_caching"
    exercises: list[tuple[str, str, str]] = field(default_factory=list)  # (qid, title, status)

    @property
    def total(self) -> int:
        return len(self.exercises)

    @property
    def solved(self) -> int:
        return sum(status == "correct" for _q, _t, status in self.exercises)

    @property
    def attempted(self) -> int:
        return sum(status == "attempted" for _q, _t, status in self.exercises)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.solved == self.total


def lab_titles(labs_dir: Path | None = None) -> dict[str, str]:
    """{"03": "03_database_caching", ...} from the notebooks' file names."""
    if labs_dir is None:
        from helpers.runtime.state import repo_root

        labs_dir = repo_root() / "labs"
    return {p.stem[:2]: p.stem for p in sorted(Path(labs_dir).glob("[0-9][0-9]_*.ipynb"))}


def summary(done: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
            exercises: Sequence[Any] | None = None, titles: Mapping[str, str] | None = None) -> list[LabProgress]:
    """Each lab's exercises with the learner's status, in lab order (every lab, even untouched ones)."""
    from helpers.checks import all_exercises
    from helpers.exercises import core as ex_mod

    done = ex_mod.progress() if done is None else done
    exercises = all_exercises() if exercises is None else exercises
    titles = lab_titles() if titles is None else titles
    labs: dict[str, LabProgress] = {}
    for ex in exercises:
        lab = labs.setdefault(ex.lab, LabProgress(ex.lab, titles.get(ex.lab, f"lab {ex.lab}")))
        status = done.get(ex.lab, {}).get(ex.qid, {}).get("status", "unanswered")
        lab.exercises.append((ex.qid, ex.title, status if status in STATUS_WORDS else "attempted"))
    return [labs[k] for k in sorted(labs)]


def totals(rows: Sequence[LabProgress]) -> tuple[int, int]:
    """(solved, total) over every lab."""
    return sum(r.solved for r in rows), sum(r.total for r in rows)


def render_html(rows: Sequence[LabProgress]) -> str:
    """One table row per lab: a bar, the count, and each exercise marked done/tried/not started."""
    solved, total = totals(rows)
    out = [f"<div><b>{solved} of {total} exercises solved</b> across {len(rows)} labs</div>",
           '<table style="border-collapse:collapse;font-size:13px">']
    for r in rows:
        pct = 100 * r.solved / r.total if r.total else 0
        bar = (f'<div style="width:120px;height:10px;background:#eaeef2;border-radius:3px">'
               f'<div style="width:{pct:.0f}%;height:10px;background:#1a7f37;border-radius:3px"></div></div>')
        marks = " ".join(
            f'<span title="{html.escape(title)}: {STATUS_WORDS[st]}">{html.escape(q)}{STATUS_MARKS[st]}</span>'
            for q, title, st in r.exercises)
        out.append(f'<tr><td style="padding:2px 8px">{html.escape(r.title)}</td><td>{bar}</td>'
                   f'<td style="padding:2px 8px">{r.solved}/{r.total}</td><td>{marks}</td></tr>')
    out.append("</table>")
    out.append('<div style="color:#57606a;font-size:12px">✔ done · … tried, not yet right · '
               '· not started</div>')
    return "\n".join(out)


def render_text(rows: Sequence[LabProgress]) -> str:
    lines = []
    for r in rows:
        items = "  ".join(f"{q}:{STATUS_WORDS[st]}" for q, _t, st in r.exercises)
        lines.append(f"{r.title:<30} {r.solved}/{r.total}  {items}")
    solved, total = totals(rows)
    lines.append(f"{'total':<30} {solved}/{total}")
    return "\n".join(lines)


class ProgressView:
    """The progress table with a Refresh button; `update()` re-reads the recorded progress."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.html = w.HTML()
        self.bar = w.IntProgress(min=0, max=1, value=0, description="Solved", bar_style="success")
        self.button = w.Button(description="Refresh", icon="refresh")
        self.button.on_click(lambda _b: self.update())
        self.widget = w.VBox([w.HBox([self.bar, self.button]), self.html])
        self.rows: list[LabProgress] = []

    def update(self) -> list[LabProgress]:
        self.rows = summary()
        solved, total = totals(self.rows)
        self.bar.max, self.bar.value = max(total, 1), solved
        self.html.value = render_html(self.rows)
        return self.rows

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return render_text(self.rows) if self.rows else "<ProgressView (call update())>"


def progress_widget() -> ProgressView:
    """A live view of every lab's exercises and which are solved (already filled in)."""
    view = ProgressView()
    view.update()
    return view
