"""The instructor's view of a class: `python -m helpers class-progress`.

Reads the summaries learners chose to share (`python -m helpers progress --share`, see
helpers/exercises/share.py) from the class's progress directory and prints one row per learner:
exercises solved of the course's total, those tried and not yet right, each lab's solved count, the exercise they are on, and
when they last checked one. Learners who did not opt in are not there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers.exercises import share
from helpers.tools.progress import next_step, summary, totals


def read_class(where: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    where = where or share.class_dir()
    out = []
    for path in sorted(where.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("labs"), dict):
            out.append((path.stem, data))
    return out


def rows(where: Path | None = None) -> list[dict[str, Any]]:
    table = []
    for user, data in read_class(where):
        labs = summary(data["labs"])
        solved, total = totals(labs)
        step = next_step(labs)
        table.append({"user": user, "solved": solved, "total": total, "attempted": sum(r.attempted for r in labs),
                      "updated": data.get("updated", ""),
                      "labs": {r.lab: (r.solved, r.total) for r in labs},
                      "next": f"lab {step.lab.lab} {step.qid}" if step else "finished"})
    return table


def render(table: list[dict[str, Any]], where: Path) -> str:
    if not table:
        return (f"No learner has shared progress in {where} yet (each learner opts in with "
                "`python -m helpers progress --share`).")
    lab_ids = sorted({lab for r in table for lab in r["labs"]})
    head = (f"{'learner':<16} {'solved':>9} {'tried':>5}  " + " ".join(f"{lab:>5}" for lab in lab_ids)
            + "  next         updated")
    lines = [head, "-" * len(head)]
    for r in sorted(table, key=lambda r: (-r["solved"], r["user"])):
        cells = " ".join(f"{r['labs'].get(lab, (0, 0))[0]:>2}/{r['labs'].get(lab, (0, 0))[1]:<2}" for lab in lab_ids)
        lines.append(f"{r['user']:<16} {r['solved']:>4}/{r['total']:<4} {r['attempted']:>5}  {cells}  {r['next']:<12} {r['updated']}")
    solved = sum(r["solved"] for r in table)
    total = sum(r["total"] for r in table)
    lines.append(f"{len(table)} learner(s) sharing; {solved} of {total} exercises solved across them "
                 f"({100 * solved / total:.0f}%).")
    return "\n".join(lines)
