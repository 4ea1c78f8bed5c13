"""A learner's progress across the labs: `python -m helpers progress`, and the same as a widget.

Progress is what `q.check(...)` records in the state directory (helpers.exercises.core). Both views
show each lab's title and count, the exercises by title, the totals and the exercise to do next.
The widget reads the progress again on "Refresh", so it can stay open in a side panel.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.runtime import i18n
from helpers.runtime.i18n import N_, translator

_ = translator(__name__)

STATUS_WORDS = {"correct": N_("done"), "attempted": N_("tried, not yet right"), "unanswered": N_("not started")}
STATUS_MARKS = {"correct": "✔", "attempted": "✗", "unanswered": "·"}
STATUS_COLOURS = {"correct": "#1a7f37", "attempted": "#9a6700", "unanswered": "#8c959f"}


@dataclass
class LabProgress:
    lab: str  # "03"
    title: str  # "Database caching"
    notebook: str = ""  # "labs/03_database_caching.ipynb" (empty when unknown)
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

    @property
    def short_title(self) -> str:
        """"Messaging: work queues, pub/sub and streams" -> "Messaging"."""
        return self.title.split(": ", 1)[0]

    @property
    def started(self) -> bool:
        return any(status != "unanswered" for _q, _t, status in self.exercises)


@dataclass
class NextStep:
    lab: LabProgress
    qid: str
    title: str
    status: str

    def sentence(self) -> str:
        where = _(" in {notebook}", notebook=self.lab.notebook) if self.lab.notebook else ""
        tried = " (" + _(STATUS_WORDS["attempted"]) + ")" if self.status == "attempted" else ""
        return _("lab {lab} ({title}), {qid}: {exercise}{tried}{where}", lab=self.lab.lab, title=self.lab.short_title,
                 qid=self.qid, exercise=self.title, tried=tried, where=where)


def _title_from_notebook(path: Path) -> str:
    """The lab's title from its first heading ("# Lab 03 — Database caching" -> "Database caching")."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        cells = []
    for cell in cells[:1]:
        source = cell.get("source", "")
        first = ("".join(source) if isinstance(source, list) else source).strip().splitlines()[:1]
        if first and first[0].startswith("#"):
            heading = first[0].lstrip("#").strip()
            for dash in (" — ", " – ", " - ", ": "):
                if dash in heading:
                    return heading.split(dash, 1)[1].strip()
            return heading
    return path.stem[3:].replace("_", " ").capitalize() or path.stem


def lab_titles(labs_dir: Path | None = None) -> dict[str, tuple[str, str]]:
    """{"03": ("Database caching", "labs/03_database_caching.ipynb"), ...} from the notebooks; in the
    learner's language, the titles and notebooks of its edition (labs/es/) where it has them."""
    if labs_dir is None:
        from helpers.runtime.state import repo_root

        labs_dir = repo_root() / "labs"
        titles = lab_titles(labs_dir)
        lang = i18n.lang()
        if lang != i18n.DEFAULT and (labs_dir / lang).is_dir():
            titles.update({lab: (title, f"{labs_dir.name}/{notebook}")
                           for lab, (title, notebook) in lab_titles(labs_dir / lang).items()})
        return titles
    labs_dir = Path(labs_dir)
    return {p.stem[:2]: (_title_from_notebook(p), f"{labs_dir.name}/{p.name}")
            for p in sorted(labs_dir.glob("[0-9][0-9]_*.ipynb"))}


def summary(done: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
            exercises: Sequence[Any] | None = None,
            titles: Mapping[str, tuple[str, str] | str] | None = None) -> list[LabProgress]:
    """Each lab's exercises with the learner's status, in lab order (every lab, even untouched ones)."""
    from helpers.checks import all_exercises
    from helpers.exercises import core as ex_mod

    done = ex_mod.progress() if done is None else done
    exercises = all_exercises() if exercises is None else exercises
    titles = lab_titles() if titles is None else titles
    labs: dict[str, LabProgress] = {}
    for ex in exercises:
        if ex.lab not in labs:
            known = titles.get(ex.lab, _("lab {lab}", lab=ex.lab))
            title, notebook = (known, "") if isinstance(known, str) else known
            labs[ex.lab] = LabProgress(ex.lab, title, notebook)
        status = done.get(ex.lab, {}).get(ex.qid, {}).get("status", "unanswered")
        title = getattr(ex, "shown_title", ex.title)  # in the learner's language
        labs[ex.lab].exercises.append((ex.qid, title, status if status in STATUS_WORDS else "attempted"))
    return [labs[k] for k in sorted(labs)]


def totals(rows: Sequence[LabProgress]) -> tuple[int, int]:
    """(solved, total) over every lab."""
    return sum(r.solved for r in rows), sum(r.total for r in rows)


def next_step(rows: Sequence[LabProgress]) -> NextStep | None:
    """What to do next: the first open exercise of the first lab begun and not finished, else of the first
    lab not finished; None when everything is solved."""
    begun = [r for r in rows if r.started and not r.complete]
    for lab in begun or [r for r in rows if not r.complete]:
        for qid, title, status in lab.exercises:
            if status != "correct":
                return NextStep(lab, qid, title, status)
    return None


def _bar(done: int, total: int, width: int = 12) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


ALL_SOLVED = N_("Every exercise is solved. Well done!")


def render_text(rows: Sequence[LabProgress], details: bool = False) -> str:
    """The terminal view: totals, one line per lab, the exercises of labs begun (or of all, with details)."""
    solved, total = totals(rows)
    tried = sum(r.attempted for r in rows)
    pct = 100 * solved / total if total else 0
    lines = [_("Your progress: {solved} of {total} exercises solved ({pct:.0f}%)", solved=solved, total=total, pct=pct)
             + (_(", {tried} tried and not yet right", tried=tried) if tried else "")
             + _(", {complete} of {labs} labs complete", complete=sum(r.complete for r in rows), labs=len(rows)), ""]
    width = max((len(r.short_title) for r in rows), default=10)
    for r in rows:
        mark = "✔" if r.complete else " "
        lines.append(f"{mark} {r.lab}  {r.short_title:<{width}}  {_bar(r.solved, r.total)} {r.solved}/{r.total}")
        if details or (r.started and not r.complete):
            for qid, title, status in r.exercises:
                lines.append(f"      {STATUS_MARKS[status]} {qid:<4} {title}"
                             + ("" if status != "attempted" else "  (" + _(STATUS_WORDS["attempted"]) + ")"))
    step = next_step(rows)
    lines.append("")
    lines.append(_("Next: {step}", step=step.sentence()) if step else _(ALL_SOLVED))
    lines.append("   ".join(f"{STATUS_MARKS[st]} {_(STATUS_WORDS[st])}" for st in STATUS_MARKS)
                 + ("" if details else "   " + _("(--all lists every exercise)")))
    return "\n".join(lines)


def render_html(rows: Sequence[LabProgress]) -> str:
    """The same as a table: one row per lab (bar, count), its exercises by title, totals and what is next."""
    solved, total = totals(rows)
    step = next_step(rows)
    out = ['<div style="font-size:14px;margin-bottom:4px"><b>'
           + _("{solved} of {total} exercises solved", solved=solved, total=total) + "</b> "
           + _("across {labs} labs ({complete} complete)", labs=len(rows), complete=sum(r.complete for r in rows))
           + "</div>"]
    if step:
        out.append('<div style="margin-bottom:6px">' + html.escape(_("Next:"))
                   + f' <b>{html.escape(step.sentence())}</b></div>')
    else:
        out.append(f'<div style="margin-bottom:6px"><b>{html.escape(_(ALL_SOLVED))}</b></div>')
    out.append('<table style="border-collapse:collapse;font-size:13px">')
    for r in rows:
        pct = 100 * r.solved / r.total if r.total else 0
        bar = (f'<div style="width:120px;height:10px;background:#eaeef2;border-radius:3px">'
               f'<div style="width:{pct:.0f}%;height:10px;background:#1a7f37;border-radius:3px"></div></div>')
        marks = "<br>".join(
            f'<span style="color:{STATUS_COLOURS[st]}" title="{html.escape(_(STATUS_WORDS[st]))}">{STATUS_MARKS[st]}</span> '
            f'{html.escape(q)} {html.escape(title)}'
            for q, title, st in r.exercises)
        count = html.escape(_("{count} exercises", count=r.total))
        items = (f"<details{' open' if r.started and not r.complete else ''}>"
                 f"<summary>{count}</summary>{marks}</details>")
        out.append(f'<tr style="vertical-align:top"><td style="padding:2px 8px">{html.escape(r.lab)}</td>'
                   f'<td style="padding:2px 8px" title="{html.escape(r.title)}">{html.escape(r.short_title)}</td>'
                   f'<td style="padding:6px 0">{bar}</td>'
                   f'<td style="padding:2px 8px">{r.solved}/{r.total}</td><td style="padding:2px 8px">{items}</td></tr>')
    out.append("</table>")
    legend = " · ".join(f"{STATUS_MARKS[st]} {html.escape(_(STATUS_WORDS[st]))}" for st in STATUS_MARKS)
    terminal = html.escape(_("in a terminal:"))
    out.append(f'<div style="color:#57606a;font-size:12px">{legend} · {terminal} <code>python -m helpers progress</code></div>')
    return "\n".join(out)


class ProgressView:
    """The progress table with a Refresh button; `update()` re-reads the recorded progress."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.html = w.HTML()
        self.bar = w.IntProgress(min=0, max=1, value=0, description=_("Solved"), bar_style="success")
        self.count = w.Label()
        self.button = w.Button(description=_("Refresh"), icon="refresh", tooltip=_("Read your progress again"))
        self.button.on_click(lambda _b: self.update())
        self.widget = w.VBox([w.HBox([self.bar, self.count, self.button]), self.html])
        self.rows: list[LabProgress] = []

    def update(self) -> list[LabProgress]:
        self.rows = summary()
        solved, total = totals(self.rows)
        self.bar.max, self.bar.value = max(total, 1), solved
        self.count.value = f"{solved} / {total}"
        self.html.value = render_html(self.rows)
        return self.rows

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict) and self.rows:  # a readable fallback where widgets do not render
            bundle["text/plain"] = render_text(self.rows)
        return bundle

    def __repr__(self) -> str:
        return render_text(self.rows) if self.rows else "<ProgressView (call update())>"


def progress_widget() -> ProgressView:
    """A live view of every lab's exercises and which are solved (already filled in)."""
    view = ProgressView()
    view.update()
    return view
