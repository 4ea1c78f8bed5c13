"""One way to wait: `poll_until(predicate, timeout, interval, what)`, whose timeout says what it
waited for."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from helpers.runtime.state import LabError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What a wait that ran out says; `timeout`, `what` and `detail` (the last error, if any) are filled in.
TIMED_OUT = ("Timed out after {timeout:.0f}s waiting for {what}{detail}. The machine may be overloaded; "
             "run `python -m helpers stop` and try again.")


def poll_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05,
               what: str = "the condition", *, ignore: tuple[type[Exception], ...] = (),
               message: str = TIMED_OUT) -> T:
    """predicate()'s first true value; a LabError (`message`) once `timeout` seconds have passed
    without one.

    The predicate is asked at once, then after 10 ms, 20 ms, 40 ms ... up to `interval` apart: most
    waits end within a few tens of milliseconds, and a fixed interval would add up to half of it to
    each. An exception of a kind in `ignore` counts as "not yet" (logged at debug; the last one is
    named in the timeout's message); any other goes on to the caller."""
    deadline = time.monotonic() + timeout
    pause = min(0.01, interval)
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ignore as exc:
            log.debug("waiting for %s: %s", what, exc, exc_info=True)
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise LabError(message.format(timeout=timeout, what=what, detail=detail))
