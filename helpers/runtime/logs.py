"""The lab's log: one file per entry point in the state directory, set up once by that entry point.

Modules log through `logging.getLogger(__name__)` and never configure logging themselves; the
processes that run in the background (the local AWS endpoint, a serverless cache's endpoint) and the
command line call `setup()` once, so a failure in a background thread leaves its traceback in
`<state directory>/logs/<name>.log` instead of nowhere. The level comes from ELASTICACHE_LAB_LOG_LEVEL
(default INFO). A notebook's kernel sets nothing up: warnings still reach its stderr through Python's
last-resort handler.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

LEVEL_ENV = "ELASTICACHE_LAB_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
MAX_BYTES = 2 << 20  # a log file is kept to 2 MiB, with one older file beside it
_configured: set[str] = set()


def log_dir() -> Path:
    from helpers.runtime import state

    path = state.home() / "logs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def level() -> int:
    name = os.environ.get(LEVEL_ENV, "INFO").upper()
    value = logging.getLevelName(name)
    return value if isinstance(value, int) else logging.INFO


def setup(name: str) -> Path:
    """Send the `helpers` loggers of this process to logs/<name>.log (idempotent); returns the file."""
    path = log_dir() / f"{name}.log"
    if name in _configured:
        return path
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger("helpers")
    root.addHandler(handler)
    root.setLevel(level())
    _configured.add(name)
    return path
