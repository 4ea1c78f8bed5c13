"""Control flow the whole lab shares: undo what was started when what follows it fails (`on_failure`, and
`on_failure_async` in asyncio code).

It imports nothing of the lab, so every module of every layer may use it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def on_failure(undo: Callable[[], Any]) -> Iterator[None]:
    """Run `undo()` if the block raises anything (KeyboardInterrupt too: a half-started engine must
    not outlive an interrupted start), then let the exception go on; nothing is swallowed. A block
    that ends normally keeps what it made. If `undo` raises, its exception goes on, with the block's
    as its context (as in an except)."""
    try:
        yield
    except BaseException as exc:
        log.debug("undoing after %s: %s", type(exc).__name__, exc)
        undo()
        raise


@contextlib.asynccontextmanager
async def on_failure_async(undo: Callable[[], Awaitable[Any]]) -> AsyncIterator[None]:
    """`on_failure` in asyncio code: `await undo()` if the block raises (a cancelled task too), then
    re-raise."""
    try:
        yield
    except BaseException as exc:
        log.debug("undoing after %s: %s", type(exc).__name__, exc)
        await undo()
        raise
