"""helpers.runtime.waiting.poll_until: the one way the lab waits, and what its timeout says."""

from __future__ import annotations

import itertools
import time

import pytest

from helpers.runtime.state import LabError
from helpers.runtime.waiting import poll_until


def test_it_returns_the_first_true_value():
    answers = iter([None, 0, "", "ready", "later"])
    assert poll_until(lambda: next(answers), 5, 0.01, "the answer") == "ready"


def test_it_asks_once_even_with_no_time_left():
    assert poll_until(lambda: 42, 0) == 42


def test_a_timeout_names_what_it_waited_for():
    started = time.monotonic()
    with pytest.raises(LabError, match=r"Timed out after 0s waiting for the moon\. "):
        poll_until(lambda: False, 0.2, 0.05, "the moon")
    assert time.monotonic() - started >= 0.2


def test_an_ignored_error_is_not_yet_and_the_last_one_is_named():
    calls = itertools.count()

    def flaky() -> bool:
        n = next(calls)
        if n < 3:
            raise ConnectionError(f"refused #{n}")
        return n >= 3

    assert poll_until(flaky, 5, 0.01, "the port", ignore=(ConnectionError,))
    with pytest.raises(LabError, match=r"waiting for the port \(last error: refused for ever\)"):
        poll_until(lambda: (_ for _ in ()).throw(ConnectionError("refused for ever")), 0.1, 0.01, "the port",
                   ignore=(ConnectionError,))


def test_an_error_it_was_not_told_to_ignore_goes_on_at_once():
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise KeyError("not a wait")

    with pytest.raises(KeyError):
        poll_until(broken, 5, 0.01, "anything", ignore=(ConnectionError,))
    assert len(calls) == 1


def test_the_message_can_be_the_callers_own():
    with pytest.raises(LabError, match=r"^the snapshot: not reached within 0 s$"):
        poll_until(lambda: None, 0.05, 0.01, "the snapshot", message="{what}: not reached within {timeout:.0f} s")
