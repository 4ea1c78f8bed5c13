"""What a learner reads under a checked cell and under the token-bucket sliders."""

from __future__ import annotations

from helpers.exercises import core


def test_correct_is_said_once(capsys):
    core.show(core.Result("correct", "Correct! Each learner gets their own port."))
    core.show(core.Result("correct", "Correct!"))
    core.show(core.Result("incorrect", "6379 is the default port."))
    out = capsys.readouterr().out.splitlines()
    assert out == ["Correct! Each learner gets their own port.", "Correct!", "Not yet: 6379 is the default port."]


def test_a_check_leaves_no_empty_output_under_its_feedback():
    """IPython shows nothing for the value `q.check(...)` returns (no empty `Out[n]:` line)."""
    from IPython.core.formatters import DisplayFormatter

    quiet = core._Quiet(core.Result("correct", "Correct!"))
    assert DisplayFormatter().format(quiet) == ({}, {})
    assert quiet.correct and quiet.status == "correct"


def test_token_bucket_summary_follows_the_sliders(isolated_home):
    import matplotlib

    matplotlib.use("Agg")
    from helpers import redis_client
    from helpers.topics.analytics import bucket_playground

    playground = bucket_playground(redis_client(), "test:feedback:pg:", seconds=0.2)
    first = playground.update()
    assert f"{first.n_allowed} of {len(first.allowed)} requests allowed" in playground.summary.value
    playground.controls["capacity"].value = 30  # what moving the slider does
    assert "capacity 30" in playground.summary.value
    assert playground.summary in playground.ui.children


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
