"""Starting, watching and stopping OS processes: the one place the lab does it.

Shaped like mirakuru's executors, reduced to what the lab needs:

- `spawn()` starts a command with its output appended to a log file. Secrets travel in the
  environment or in owner-only files, never on a command line (`ps` shows those to every user).
- `Process.wait_ready()` polls a readiness probe until a deadline, and explains a failure with
  the last lines of the log.
- `stop_tree()` stops a process and everything it started: TERM, wait, then KILL.
- A process is identified by its pid *and* its start time (`find()`), so a recycled pid is never
  mistaken for a process the lab started.
- `spawn()` records each process it starts (pid and start time) in the state directory's ledger,
  `processes.jsonl`; `state_dir_processes()` finds the live ones again, plus engines whose command
  line points into this exact state directory (records lost with an older version, say). It never
  returns a process the lab did not start: not a shell cd'd into the state directory, not the
  caller or its parents, not the servers of another state directory nested inside this one.

Two ways to start. `detach=True` (the engines): the process becomes a grandchild re-parented to
init, in a session of its own, so it outlives the kernel that started it and never lingers as its
zombie. `detach=False` (a worker, JupyterLab, a benchmark's bare server): it stays a child, so its
exit code can be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import state
from helpers.runtime.state import LabError

# Environment variables whose values must never show on a command line.
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET")


@dataclass(frozen=True)
class Identity:
    """Who a process is: a pid alone may be reused by another process once the first one exits."""

    pid: int
    create_time: float


def find(pid: int, create_time: float) -> psutil.Process | None:
    """The live process with this identity; None when it exited, was killed, or its pid was reused.

    A zombie counts as gone, and is reaped when it is ours to reap (a container's init, say).
    """
    try:
        proc = psutil.Process(pid)
        if abs(state.started(proc) - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def _gone(proc: psutil.Process, popen: subprocess.Popen | None = None) -> bool:
    if popen is not None and popen.poll() is not None:  # our child: Popen reaps it and keeps its code
        return True
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(proc.pid, os.WNOHANG)
            return True
    except psutil.NoSuchProcess:
        return True
    return False


def wait_gone(proc: psutil.Process, timeout: float, popen: subprocess.Popen | None = None) -> bool:
    """Wait until `proc` has exited (reaping it if it is ours); False if it is still there."""
    deadline = time.monotonic() + timeout
    while not _gone(proc, popen):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop_tree(proc: psutil.Process | None, timeout: float = 10.0, popen: subprocess.Popen | None = None) -> None:
    """Stop `proc` gracefully (SIGTERM), forcefully after `timeout` (SIGKILL), then whatever it
    started and left behind (a server's forked children, JupyterLab's kernels). Never raises
    because a process is already gone."""
    if proc is None:
        return
    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        children = []
    with contextlib.suppress(psutil.Error):
        proc.resume()  # a paused (SIGSTOP) process cannot handle SIGTERM
        proc.terminate()
    if not wait_gone(proc, timeout, popen):
        with contextlib.suppress(psutil.Error):
            proc.kill()
        wait_gone(proc, 5, popen)
    left = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                child.resume()
                child.terminate()
                left.append(child)
    with contextlib.suppress(psutil.Error):
        _done, alive = psutil.wait_procs(left, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(alive, timeout=5)


LEDGER = state.LEDGER
# Programs the lab starts; only these are recognised by their command line alone.
ENGINE_NAMES = ("redis-server", "valkey-server", "redis-sentinel", "valkey-sentinel", "memcached")


def _record_spawned(proc: psutil.Process, argv: Sequence[str]) -> None:
    """Append the identity of a process the lab started to the state directory's ledger."""
    with contextlib.suppress(psutil.Error, OSError, LabError):
        line = json.dumps({"pid": proc.pid, "create_time": state.started(proc), "argv0": Path(argv[0]).name})
        fd = os.open(state.home() / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())  # one short write with O_APPEND: never interleaved
        finally:
            os.close(fd)


def ledger(root: Path | None = None) -> list[Identity]:
    """The identities recorded in the ledger (live or not)."""
    return [Identity(pid, started) for pid, started in state.ledger_entries(root)]


def prune_ledger(root: Path | None = None) -> None:
    """Keep only the live processes in the ledger (call it holding the state directory's lock)."""
    base = root or state.home()
    live = [i for i in ledger(base) if find(i.pid, i.create_time) is not None]
    with contextlib.suppress(OSError):
        lines = "".join(json.dumps({"pid": i.pid, "create_time": i.create_time}) + "\n" for i in live)
        state.write_secret_atomic(base / LEDGER, lines)


def caller_and_parents() -> set[int]:
    """This process and every ancestor of it: never ours to stop (a learner's shell, the kernel)."""
    pids = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        pids |= {p.pid for p in psutil.Process().parents()}
    return pids


def _inside(arg: str, base: Path) -> bool:
    """True when `arg` is a path among the services of `base` (where the lab runs every engine, so a
    state directory set to ~ or /tmp never claims whatever else runs there), and not inside another
    state directory nested in it."""
    if not arg.startswith(str(base / "services") + os.sep):
        return False
    here = Path(arg).parent
    while here != base and base in here.parents:
        if (here / state.MARKER).exists():
            return False
        here = here.parent
    return True


def _engine(proc: psutil.Process) -> bool:
    names = {proc.name()}
    with contextlib.suppress(psutil.Error, OSError):
        names.add(Path(proc.exe()).name)
    return bool(names & set(ENGINE_NAMES))


def _recognised(proc: psutil.Process, base: Path) -> bool:
    """An engine binary whose command line or working directory is among the services of `base`
    (Redis replaces its command line with a title, so its working directory, its config's `dir`,
    tells), or the lab's own Python server started for `base`."""
    cmdline = proc.cmdline()
    if _engine(proc):
        return any(_inside(a, base) for a in cmdline[1:]) or _inside(os.path.join(proc.cwd(), "-"), base)
    if cmdline and Path(cmdline[0]).name.startswith("python") and any(a.startswith("helpers.") for a in cmdline):
        home = proc.environ().get(state.ENV_HOME)
        return bool(home) and Path(home).expanduser().resolve() == base
    return False


def state_dir_processes(root: Path | None = None) -> list[psutil.Process]:
    """Every live process this state directory's lab started: the ones in its ledger (checked by pid
    and start time), and engines whose command line points into exactly this state directory.
    Never the caller or its parents, never another state directory's processes."""
    base = Path(root or state.home()).resolve()
    exclude = caller_and_parents()
    found: dict[int, psutil.Process] = {}
    for ident in ledger(base):
        proc = find(ident.pid, ident.create_time)
        if proc is not None and proc.pid not in exclude:
            found[proc.pid] = proc
    for proc in psutil.process_iter():
        if proc.pid in exclude or proc.pid in found:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and _recognised(proc, base):
                found[proc.pid] = proc
    return list(found.values())


def tail(path: Path | str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class Exited(LabError):
    """The process exited before it was ready; `log` holds the end of its log."""

    def __init__(self, message: str, log: str):
        super().__init__(message)
        self.log = log


@dataclass
class Process:
    """A started process: its identity, its log, and how to wait for it, stop it or kill it.

    Use it as a context manager to stop it (and what it started) whatever happens in the block.
    """

    proc: psutil.Process
    argv: list[str]
    log: Path
    popen: subprocess.Popen | None = None  # set when the process is our child (detach=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def create_time(self) -> float:
        return state.started(self.proc)

    @property
    def identity(self) -> Identity:
        return Identity(self.pid, self.create_time)

    def alive(self) -> bool:
        return not _gone(self.proc, self.popen)

    def poll(self) -> int | None:
        """The exit code once a child has exited (negative: killed by that signal), else None."""
        if self.popen is not None:
            return self.popen.poll()
        return None if self.alive() else 0

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit; its exit code (for a child), None if it is still running."""
        if self.popen is not None:
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        return 0 if wait_gone(self.proc, timeout) else None

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        """Send `sig` (SIGKILL: die on the spot, like a crash) and wait; returns the exit code."""
        with contextlib.suppress(psutil.Error):
            self.proc.send_signal(sig)
        return self.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        stop_tree(self.proc, timeout, self.popen)
        if self.popen is not None:  # reap our child and keep its exit code, whoever polled it before
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)

    def wait_ready(self, probe: Callable[[], bool], *, what: str, timeout: float = 20.0,
                   interval: float = 0.03) -> float:
        """Poll `probe` until it says yes; returns the seconds it took.

        If the process exits first: `Exited`, with the end of its log. If the deadline passes:
        the process is stopped and a LabError says so, with the end of its log.
        """
        started = time.monotonic()
        deadline = started + timeout
        pause = min(0.005, interval)  # an engine answers within milliseconds: poll fast, then back off
        while time.monotonic() < deadline:
            if not self.alive():
                text = tail(self.log, 20)
                raise Exited(f"{what} exited while starting. Last lines of {self.log}:\n{text}", text)
            if probe():
                return time.monotonic() - started
            time.sleep(pause)
            pause = min(pause * 2, interval)
        self.stop(timeout=5)
        raise LabError(f"{what} did not answer within {timeout:.0f}s. Last lines of {self.log}:\n{tail(self.log, 20)}")

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log, lines)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# A tiny launcher: the process becomes a grandchild, re-parented to init, so it never lingers as a
# zombie of a kernel that forgot to wait for it, and survives the kernel that started it. It is /bin/sh,
# not a second Python: a Python interpreter took 0.1-0.3 s to start on a loaded machine, once per node.
# `umask 077`: files the node writes (RDB, AOF, configs Sentinel rewrites with passwords) stay owner-only.
# The launcher runs in a session of its own (start_new_session), which the node inherits: a kernel's
# interrupt never reaches it. A shell starts a background command with SIGINT and SIGQUIT ignored; the
# engines install their own SIGINT handler, and the lab stops every process with SIGTERM.
_LAUNCHER = 'umask 077; log=$1; cd "$2" || exit 1; shift 2; "$@" </dev/null >>"$log" 2>&1 & echo $!'


def _refuse_secrets_on_command_line(argv: Sequence[str], env: Mapping[str, str] | None) -> None:
    for key, value in (env or {}).items():
        if any(w in key.upper() for w in SECRET_WORDS) and len(value) >= 8 and any(value in a for a in argv):
            raise LabError(f"The value of {key} is on the command line of {Path(argv[0]).name}, where every "
                           "user of this machine can read it; pass it in the environment or a file instead.")


def spawn(argv: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None,
          detach: bool = True, record: bool = True) -> Process:
    """Start `argv` in `cwd` with stdout and stderr appended to `log` (see the module's docstring
    for `detach`). `env` replaces the environment when given. With `record` (the default) the
    process goes into the state directory's ledger, so `stop` finds it even if every other record
    is lost; JupyterLab, which the learner works in, is started with `record=False`."""
    argv = [str(a) for a in argv]
    _refuse_secrets_on_command_line(argv, env)
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(env) if env is not None else None
    if not detach:
        with open(log, "ab") as out:
            try:
                popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise LabError(f"Could not start {argv[0]}: {exc}") from None
        started = Process(proc=psutil.Process(popen.pid), argv=argv, log=log, popen=popen)
        if record:
            _record_spawned(started.proc, argv)
        return started
    out = subprocess.run(["/bin/sh", "-c", _LAUNCHER, "sh", str(log), str(cwd), *argv],
                         capture_output=True, text=True, env=env, timeout=30, start_new_session=True)
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise LabError(f"Could not start {argv[0]}: {out.stderr.strip() or out.stdout.strip()}")
    try:
        proc = psutil.Process(int(out.stdout.strip()))
    except psutil.NoSuchProcess:  # it exited at once (a port in use, a bad config)
        text = tail(log, 20)
        raise Exited(f"{Path(argv[0]).name} exited while starting. Last lines of {log}:\n{text}", text) from None
    started = Process(proc=proc, argv=argv, log=log)
    if record:
        _record_spawned(started.proc, argv)
    return started
