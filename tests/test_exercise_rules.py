"""Rules every lab's exercises follow, read from the notebooks themselves:

* each exercise's question is written in the markdown cell directly above its code cell
  (that markdown names it: "q3" or "Exercise 3");
* exercises appear in the notebook in numeric order (q1, q2, ...), and each one the notebook
  checks exists in the lab's module helpers/checks/labNN.py, and the other way round;
* untouched means not started: the notebook's placeholder answer (`...`, a dict of `...`, a stub
  function) gets the neutral "not answered yet", records no progress and shows no red feedback.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest

from helpers.exercises.core import Exercise, progress

LABS = sorted(Path(__file__).resolve().parent.parent.joinpath("labs").glob("*.ipynb"))
CHECK = re.compile(r"\b(q\d+)\.check\(")


def check_cells(path: Path) -> list[tuple[int, str, nbformat.NotebookNode]]:
    """(cell index, qid, cell) for every code cell that calls qN.check(...), in notebook order."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for qid in CHECK.findall(cell.source):
            found.append((i, qid, cell))
    return found


def lab_exercises(path: Path) -> dict[str, Exercise]:
    module = importlib.import_module(f"helpers.checks.lab{path.name[:2]}")
    return {v.qid: v for v in vars(module).values() if isinstance(v, Exercise)}


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_each_question_is_in_the_markdown_cell_above_its_code(path):
    nb = nbformat.read(path, as_version=4)
    for i, qid, _ in check_cells(path):
        above = nb.cells[i - 1]
        number = qid[1:]
        assert above.cell_type == "markdown", f"{path.name}: {qid}'s code cell {i} has no markdown cell above it"
        text = above.source.lower()
        assert re.search(rf"\b{qid}\b", text) or re.search(rf"\bexercise {number}\b", text), (
            f"{path.name}: the markdown above {qid} (cell {i - 1}) does not state the question of {qid}")


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_exercises_appear_in_numeric_order(path):
    order = [qid for _, qid, _ in check_cells(path)]
    numbers = [int(q[1:]) for q in order]
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name} checks its exercises in the order {order}"
    assert set(order) == set(lab_exercises(path)), (
        f"{path.name} checks {sorted(order)}; helpers.checks.lab{path.name[:2]} defines {sorted(lab_exercises(path))}")


class _Capture:
    """Stands in for qN while a notebook's exercise cell runs: keeps the answer it is given."""

    def __init__(self):
        self.answers = []

    def check(self, answer=...):
        self.answers.append(answer)

    def hint(self):
        pass

    def solution(self):
        pass


def placeholder_answers(path: Path) -> list[tuple[str, object]]:
    """Run each exercise cell as it is committed (untouched), with qN replaced by a capture."""
    found = []
    for i, qid, cell in check_cells(path):
        captures = {f"q{n}": _Capture() for n in range(1, 10)}
        namespace = dict(captures)
        exec(compile(cell.source, f"{path.name}[{i}]", "exec"), namespace)  # noqa: S102 (our own notebooks)
        for answer in captures[qid].answers:
            found.append((qid, answer))
    return found


@pytest.mark.parametrize("path", LABS, ids=[p.name for p in LABS])
def test_untouched_means_not_started(path, capsys):
    exercises = lab_exercises(path)
    answers = placeholder_answers(path)
    assert answers, f"{path.name}: no exercise cell found"
    for qid, answer in answers:
        ex = exercises[qid]
        before = progress().get(ex.lab, {}).get(qid)
        result = ex.evaluate(answer)
        assert result.status == "unanswered", f"{path.name} {qid}: the untouched cell is judged {result.status}: " \
                                              f"{result.message}"
        capsys.readouterr()
        ex.check(answer)
        out = capsys.readouterr().out
        assert "Not answered" in out and "Not yet" not in out, out
        assert progress().get(ex.lab, {}).get(qid) == before, f"{path.name} {qid}: an untouched cell was recorded"
