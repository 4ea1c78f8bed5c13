"""Steps that talk: one line per step of the set-up and of `make lab`, with how long it took.

"[2/3] installing Python packages with uv … 10 s … 6.1 s": the line starts when the step does, a
long step adds the seconds so far every HEARTBEAT seconds (a learner never watches a silent screen
for long), and the time it took ends the line. Standard library only: scripts/setup_python.py loads
this file by its path before the project's virtual environment exists.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

HEARTBEAT = 10.0  # seconds between two "… N s" marks of a long step: never silent for 20 s


class Steps:
    """Numbered steps printed to `out`, each on one line that ends with its duration."""

    def __init__(self, total: int, out: TextIO | None = None, heartbeat: float = HEARTBEAT) -> None:
        self.total = total
        self.done = 0
        self.out = out or sys.stdout
        self.heartbeat = heartbeat
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Print "[n/total] what … ", then the seconds so far while it runs, then how long it took."""
        self.done += 1
        self._write(f"[{self.done}/{self.total}] {what} … ")
        start = time.monotonic()
        finished = threading.Event()

        def tick() -> None:
            while not finished.wait(self.heartbeat):
                self._write(f"{time.monotonic() - start:.0f} s … ")

        ticker = threading.Thread(target=tick, name="steps-heartbeat", daemon=True)
        ticker.start()
        try:
            yield
        except BaseException:
            finished.set()
            ticker.join()
            self._write(f"failed after {time.monotonic() - start:.1f} s\n")
            raise
        finished.set()
        ticker.join()
        self._write(f"{time.monotonic() - start:.1f} s\n")
