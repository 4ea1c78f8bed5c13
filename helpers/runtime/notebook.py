"""How a lost server, or an error meant for a person, shows in a notebook: one paragraph.

A lab cell whose Redis or Memcached server was stopped or killed mid-run would otherwise print a
long traceback (a Sentinel's MasterNotFoundError runs to thousands of characters), and a LabError
already says in a sentence what happened and what to do. `install()` registers an IPython handler
for exactly these exception types: it prints one paragraph instead of the traceback, which stays
available with `%tb`. Every other exception is shown by IPython as usual. Importing `helpers` in
a kernel installs it.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from types import TracebackType
from typing import Any

from helpers.runtime.i18n import N_, translator
from helpers.runtime.state import LabError

_ = translator(__name__)
WHAT_TO_DO = N_("Run `python -m helpers status` in a terminal, or re-run the lab's first cell: the helpers restart "
                "what is missing. `%tb` shows the full traceback.")
_MARK = "_elasticache_lab_handler"


def _exception_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [LabError]
    try:
        import redis.exceptions

        types.append(redis.exceptions.ConnectionError)  # MasterNotFoundError, a refused connection...
    except ImportError:
        pass
    try:
        from pymemcache.exceptions import MemcacheUnexpectedCloseError

        types.append(MemcacheUnexpectedCloseError)
    except ImportError:
        pass
    # pymemcache lets the socket's own errors through: handled only when they come from it.
    types += [ConnectionRefusedError, ConnectionResetError, BrokenPipeError]
    return tuple(types)


def _from_pymemcache(tb: TracebackType | None) -> bool:
    while tb is not None:
        if "pymemcache" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def message_for(exc: BaseException, tb: TracebackType | None = None) -> str | None:
    """The paragraph shown for `exc`, or None when IPython should show its usual traceback."""
    if isinstance(exc, LabError):
        return f"{type(exc).__name__}: {exc}"
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    try:
        import redis.exceptions

        if isinstance(exc, redis.exceptions.ConnectionError):
            return _("{error}: the Redis server of this lab is not answering (it was stopped or killed; {detail}).",
                     error=type(exc).__name__, detail=detail) + " " + _(WHAT_TO_DO)
    except ImportError:
        pass
    memcache = type(exc).__name__ == "MemcacheUnexpectedCloseError" or (
        isinstance(exc, (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)) and _from_pymemcache(tb))
    if memcache:
        return _("{error}: the Memcached server of this lab is not answering (it was stopped or killed; {detail}).",
                 error=type(exc).__name__, detail=detail) + " " + _(WHAT_TO_DO)
    return None


def _handler(shell: Any, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
             tb_offset: int | None = None) -> list[str]:
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # what %tb shows
    text = message_for(value, tb)
    if text is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return []
    shell._showtraceback(etype, value, [text])  # an error output (a notebook run stops), one paragraph
    return []


def install(shell: Any = None) -> bool:
    """Register the handler in the running IPython (if any, and if no other handler is set)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    if shell.custom_exceptions and not getattr(shell, _MARK, False):
        return False  # someone else's handler: leave it alone
    shell.set_custom_exc(_exception_types(), _handler)
    setattr(shell, _MARK, True)
    install_memory_release(shell)
    return True


# --- giving memory back after each cell ------------------------------------------------------------
# A kernel stays open long after its lab (JupyterLab tabs are rarely closed), so what a cell freed
# should go back to the system, not stay in the process's heap: Python frees the objects, but glibc
# keeps the freed pages (lab 03's load generators left 72 MB that way). After each cell this returns
# them (malloc_trim), after a cell that ran for a second or more it first collects reference cycles.
# Measured by `make memory-check` (docs/instructor-guide.md).
_TRIM_MARK = "_elasticache_lab_trim"
SLOW_CELL_S = 1.0


def _libc_trim() -> Any:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def install_memory_release(shell: Any) -> bool:
    """After each cell: collect cycles (slow cells only) and return freed heap pages (glibc)."""
    if getattr(shell, _TRIM_MARK, False) or not hasattr(shell, "events"):
        return False
    trim = _libc_trim()
    started = [0.0]

    def pre(*_args: Any) -> None:
        started[0] = time.monotonic()

    def post(*_args: Any) -> None:
        if time.monotonic() - started[0] >= SLOW_CELL_S:
            gc.collect()
        if trim is not None:
            trim(0)

    shell.events.register("pre_run_cell", pre)
    shell.events.register("post_run_cell", post)
    setattr(shell, _TRIM_MARK, True)
    return True


# --- what a person sees while a cell waits -------------------------------------------------------------

def in_kernel() -> bool:
    """True inside a Jupyter kernel (a notebook); False in a terminal, a script or a test run."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def say(message: str) -> None:
    """A line for the person running the lab about something it did on its own (a restart, a new port).

    In a notebook it goes to stdout, as a normal message: stderr shows as a red warning box there. Elsewhere
    it goes to stderr, which keeps stdout for what a command prints (`eval "$(python -m helpers env)"`)."""
    print(message, file=sys.stdout if in_kernel() else sys.stderr, flush=True)


WAIT_SHOWN_AFTER = 2.0  # seconds: a shorter wait shows nothing
WAIT_REFRESH = 1.0  # seconds between updates of the line


class waiting:  # noqa: N801 (used as a context manager, like a function)
    """One status line, "waiting for lab13-rg to be available (modifying): 7 s", updated in place while a
    wait lasts longer than `after` seconds, so a cell that takes 15 s shows that it is working.

    Shown in a notebook (a display updated in place); quiet in tests and on the command line unless
    `show=True` (then on stderr, one line rewritten with \\r). Set `.detail` to what the wait saw last.
    When the wait ends the line says how long it took ("waited 12 s for ..."); a wait shorter than
    `after` leaves nothing behind."""

    def __init__(self, what: str, *, show: bool | None = None, after: float = WAIT_SHOWN_AFTER,
                 every: float = WAIT_REFRESH):
        self.what, self.after, self.every = what, after, every
        self.kernel = in_kernel()
        self.show = self.kernel if show is None else show
        self.detail = ""
        self.lines: list[str] = []  # every line shown, in order
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.started = time.monotonic()

    def __enter__(self) -> waiting:
        self.started = time.monotonic()
        if self.show:
            self._thread = threading.Thread(target=self._tick, name="waiting", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *_exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lines:  # it was shown: say how it ended, in place of the status
            seconds = time.monotonic() - self.started
            self._render(_("waited {seconds:.0f} s for {what}", seconds=seconds, what=self.what) if exc_type is None
                         else _("stopped waiting for {what} after {seconds:.0f} s", what=self.what, seconds=seconds),
                         final=True)

    def _tick(self) -> None:
        shown_at = 0.0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - self.started
            if elapsed >= self.after and elapsed - shown_at >= self.every:
                shown_at = elapsed
                detail = f" ({self.detail})" if self.detail else ""
                self._render(_("waiting for {what}{detail}: {elapsed:.0f} s", what=self.what, detail=detail,
                               elapsed=elapsed))

    def _render(self, text: str, final: bool = False) -> None:
        with self._lock:
            self.lines.append(text)
            if self.kernel:
                from IPython.display import display

                if self._handle is None:
                    self._handle = display({"text/plain": text}, raw=True, display_id=True)
                else:
                    self._handle.update({"text/plain": text}, raw=True)
                return
            width = max(len(line) for line in self.lines)
            sys.stderr.write("\r" + text.ljust(width) + ("\n" if final else ""))
            sys.stderr.flush()
