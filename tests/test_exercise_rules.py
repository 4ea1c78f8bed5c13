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

from helpers.exercises import core
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


# --- the time budget covers every use of the learner's value, and ends what the learner's code started ---------
SPIN = 8.0  # s a misbehaving learner value takes (bounded, so an abandoned check does not spin for ever)


def _exercise(checker) -> core.Exercise:
    return core.Exercise(lab="99", qid="q1", title="t", checker=checker, hint_text="", solution_text="")


def _busy(seconds: float = SPIN) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class _SpinningRepr:
    def __repr__(self):
        _busy()
        return "spun"


class _SlowEquality:
    def __eq__(self, other):
        import time

        time.sleep(SPIN)
        return False

    __ne__ = lambda self, other: not self.__eq__(other)  # noqa: E731
    __hash__ = None


class _SleepyError(Exception):
    def __str__(self):
        import time

        time.sleep(SPIN)
        return "slept"


def _timed(fn):
    import time

    started = time.monotonic()
    out = fn()
    return out, time.monotonic() - started


def test_a_learner_value_that_spins_in_repr_or_eq_is_cut_off_by_the_budget(monkeypatch):
    monkeypatch.setattr(core, "TIME_BUDGET", 0.5)
    for value in (_SpinningRepr(), _SlowEquality()):
        result, took = _timed(lambda v=value: _exercise(lambda a: core.expect_equal(a, 5)).evaluate(v))
        assert took < SPIN / 2, f"{type(value).__name__}: the check took {took:.1f} s"
        assert result.status == "incorrect" and "took more than 0.5 s" in result.message, result.message


def test_an_exception_whose_str_sleeps_is_cut_off_by_the_budget(monkeypatch):
    monkeypatch.setattr(core, "TIME_BUDGET", 0.5)

    def learner(_x):
        raise _SleepyError()

    for checker in (lambda fn: core.call_learner(fn, 1), lambda fn: fn(1)):
        result, took = _timed(lambda c=checker: _exercise(c).evaluate(learner))
        assert took < SPIN / 2, f"the check took {took:.1f} s"
        assert "took more than 0.5 s" in result.message, result.message


def _forking_learner(pids: list, then_sleep: float = 0.0):
    import os
    import time

    def learner(_x):
        pid = os.fork()
        if pid == 0:  # the child: lingers (bounded), as a learner's forgotten worker would
            time.sleep(30)
            os._exit(0)
        pids.append(pid)
        time.sleep(then_sleep)
        return 1

    return learner


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_processes_a_learner_function_forks_end_with_the_check(monkeypatch):
    import os

    monkeypatch.setattr(core, "TIME_BUDGET", 1.0)
    pids: list[int] = []
    try:
        result = _exercise(lambda fn: core.expect_equal(core.call_learner(fn, 0), 1)).evaluate(_forking_learner(pids))
        assert result.correct, result.message
        # and past the budget too (the learner's function still running when the check gives up)
        result = _exercise(lambda fn: core.call_learner(fn, 0)).evaluate(_forking_learner(pids, then_sleep=SPIN))
        assert "took more than 1 s" in result.message, result.message
        assert len(pids) == 2 and [p for p in pids if not _gone(p)] == []
    finally:
        for pid in pids:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
