"""The per-learner state directory: configs, pid records, logs, data files and progress.

Everything the lab starts is recorded here, so a new kernel (or the CLI) finds the services a
previous one started, and two learners on one machine never share a process or a port.
The directory is private to its owner (0700) because it holds generated passwords and keys.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs
from filelock import FileLock

from helpers.runtime.flow import on_failure

ENV_HOME = "ELASTICACHE_LAB_HOME"
REGISTRY = "services.json"
# A file in every state directory: a state directory nested inside another one is told apart by it,
# so stopping one learner's processes never touches another's.
MARKER = ".elasticache-lab-state"
MARKER_TEXT = "This directory is an ElastiCache Lab state directory (see `python -m helpers status`).\n"


class LabError(RuntimeError):
    """An error meant for a person: the message says what happened and what to do."""


def home() -> Path:
    """The state directory: $ELASTICACHE_LAB_HOME, else the user's cache directory.

    Every problem with it (a regular file, a read-only filesystem, a parent that cannot be
    written, a path under /proc) is a LabError with one sentence saying what to do.
    """
    raw = os.environ.get(ENV_HOME)
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_cache_dir("elasticache-lab"))
    fix = f"Point {ENV_HOME} at a directory you own (for example ~/.cache/elasticache-lab)."
    try:
        path = path.resolve()
        if path.exists() and not path.is_dir():
            raise LabError(f"The lab's state directory {path} exists but is not a directory. "
                           f"Move it away, or point {ENV_HOME} at another directory.")
        if "\n" in str(path) or "\r" in str(path):
            raise LabError(f"The lab's state directory {str(path)!r} has a line break in its name, which the "
                           f"engines' config files cannot hold. {fix}")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):  # not ours to change, or a read-only filesystem: checked below
            os.chmod(path, 0o700)
        marker = path / MARKER
        if not marker.exists():  # also proves that the directory can really be written
            marker.write_text(MARKER_TEXT)
        if not os.access(path, os.W_OK):
            raise OSError(13, "not writable")
    except LabError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LabError(f"The lab's state directory {path} cannot be used ({reason.lower()}). {fix}") from None
    return path


# Errors of the disk under the state directory, and what each means for the learner.
DISK_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}


def state_path() -> Path:
    """Where the state directory is (without creating or checking it)."""
    raw = os.environ.get(ENV_HOME)
    return Path(raw).expanduser() if raw else Path(platformdirs.user_cache_dir("elasticache-lab"))


def disk_error(exc: BaseException) -> LabError | None:
    """A LabError in one sentence for an OSError of a full, over-quota or read-only disk (in `exc` or what
    it was raised from), else None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            where = state_path()
            what = DISK_ERRNOS[exc.errno]
            todo = ("Free some space on that disk (`df -h` shows it; old logs under its services/ folder can go)"
                    if exc.errno != errno.EROFS else "Mount that disk read-write again")
            return LabError(f"The disk of the lab's state directory {where} is {what} "
                            f"({exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}), so the "
                            f"lab cannot record its servers there, although they may be running. {todo}, or "
                            f"point {ENV_HOME} at a directory on another disk; then run the cell again.")
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


@contextlib.contextmanager
def disk_errors() -> Iterator[None]:
    """Within this block, a full or read-only disk under the state directory is one LabError sentence."""
    try:
        yield
    except OSError as exc:
        err = disk_error(exc)
        if err is None:
            raise
        raise err from None


def service_dir(name: str) -> Path:
    """A private directory for one service's config, log and data files."""
    path = home() / "services" / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def locked(timeout: float = 120.0) -> Iterator[None]:
    """Serialise start/stop between kernels, CLI calls and tests sharing one state directory."""
    lock = FileLock(str(home() / ".lock"), timeout=timeout)
    try:
        with lock:
            yield
    except TimeoutError as exc:  # filelock.Timeout subclasses TimeoutError
        raise LabError(
            f"Another process has held the lab's lock ({home() / '.lock'}) for {timeout:.0f}s. "
            "If nothing else is starting services, delete that file and try again."
        ) from exc


def set_aside(path: Path, why: str, consequence: str | Callable[[], str]) -> Path | None:
    """Move a damaged state file out of the way (kept for inspection) with one warning line."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    try:
        path.rename(aside)
    except FileNotFoundError:  # another process set it aside first
        return None
    except OSError as exc:
        raise LabError(f"{path} is damaged ({why}) and cannot be moved aside ({exc.strerror}). "
                       f"Delete it, or point {ENV_HOME} at another directory.") from None
    if callable(consequence):
        consequence = consequence()
    warnings.warn(f"{path.name} in the lab's state directory was damaged ({why}); moved it to {aside.name}. "
                  f"{consequence}", LabStateWarning, stacklevel=4)
    return aside


class LabStateWarning(UserWarning):
    """A state file was damaged and set aside."""


def _format_warning(message, category, filename, lineno, line=None):  # noqa: ANN001 (warnings' own signature)
    if isinstance(category, type) and issubclass(category, LabStateWarning):
        return f"warning: {message}\n"  # one line, without the source line of the lab's code
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning
warnings.formatwarning = _format_warning


def _read_json(path: Path, default: Any, valid: Callable[[Any], str | None] | None = None,
               consequence: str | Callable[[], str] = "Started from a clean record.") -> Any:
    """The JSON in `path`; a file that is not UTF-8, not JSON, or not of the shape `valid` accepts
    (it returns what is wrong, or None) is set aside and `default` returned."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise LabError(f"{path} cannot be read ({exc.strerror}). Check its permissions, or point "
                       f"{ENV_HOME} at another directory.") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        problem = valid(data) if valid else None
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except json.JSONDecodeError:
        problem = "not valid JSON"
    if problem is None:
        return data
    set_aside(path, problem, consequence)
    return default


def replace_file(path: Path, text: str, mode: int | None = None) -> None:
    """Replace a file in one step: a reader sees the old or the new text, never half, and a crash leaves no
    half-written file. Owner-only unless `mode` says otherwise."""
    # A temporary name of its own (mkstemp: 0600), so two writers never share one half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")

    def remove_tmp() -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)

    with on_failure(remove_tmp):
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write atomically with owner-only permissions, so a crash never leaves half a file."""
    replace_file(path, json.dumps(data, indent=2, sort_keys=True))


def read_json(path: Path, default: Any, valid: Callable[[Any], str | None] | None = None,
              consequence: str | Callable[[], str] = "Started from a clean record.") -> Any:
    return _read_json(path, default, valid, consequence)


NODE_FIELDS = {"name": str, "kind": str, "role": str, "host": str, "port": int, "pid": int,
               "create_time": (int, float), "argv": list, "workdir": str, "log": str}


def registry_problem(data: Any) -> str | None:
    """What is wrong with the shape of services.json, or None."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__} instead of an object of services"
    for name, record in data.items():
        if not isinstance(record, dict):
            return f"service {name!r} is a {type(record).__name__}, not a record"
        if not isinstance(record.get("topology"), str) or not isinstance(record.get("name"), str):
            return f"service {name!r} has no topology or name"
        if not isinstance(record.get("options", {}), dict) or not isinstance(record.get("meta", {}), dict):
            return f"service {name!r} has malformed options or meta"
        nodes = record.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            return f"service {name!r} has no nodes"
        for node in nodes:
            if not isinstance(node, dict):
                return f"a node of {name!r} is not a record"
            for key, kind in NODE_FIELDS.items():
                if not isinstance(node.get(key), kind) or isinstance(node.get(key), bool):
                    return f"a node of {name!r} lacks a valid {key!r}"
    return None


REGISTRY_LOST = ("Servers it recorded may still be running with no record: "
                 "`python -m helpers stop` stops every server of this state directory.")


LEDGER = "processes.jsonl"  # every process the lab started here: pid and start time, one JSON per line


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def started(proc: Any) -> float:
    """When the psutil process `proc` started, as a number that stays the same for its whole life: the
    start time the ledger and every record of a process hold, with its pid, to tell it from a process
    that got its pid later.

    On Linux, seconds after boot (/proc/<pid>/stat's starttime, which is how psutil tells processes apart
    itself). psutil's create_time() adds the boot time, which moves when the wall clock is stepped (a
    laptop resumed, an NTP correction, a virtual machine restored): the same engine would then look like
    another process, its node dead, and a second one be started beside it. Elsewhere, create_time().
    Raises psutil.NoSuchProcess for a process that is gone."""
    import psutil

    stat = Path(f"/proc/{proc.pid}/stat")
    if not stat.parent.parent.joinpath("self", "stat").exists():
        return float(proc.create_time())
    try:
        text = stat.read_bytes()
        return int(text[text.rindex(b")") + 2:].split()[19]) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError) as exc:
        raise psutil.NoSuchProcess(proc.pid) from exc


def ledger_entries(root: Path | None = None) -> list[tuple[int, float]]:
    """(pid, start time) of each process recorded in the ledger, live or not; damaged lines skipped."""
    path = (root or home()) / LEDGER
    found = []
    with contextlib.suppress(OSError):
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                entry = json.loads(line)
                found.append((int(entry["pid"]), float(entry["create_time"])))
    return found


def _live_ledger_count() -> int:
    import psutil

    live = 0
    for pid, since in ledger_entries():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            live += abs(started(proc) - since) <= 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    return live


def _registry_consequence() -> str:
    try:
        running = _live_ledger_count()
    except (LabError, OSError):  # no state directory to read the ledger of: say the record is lost
        return REGISTRY_LOST
    if not running:
        return "No server of this state directory was running; started from a clean record."
    return (f"{running} server process(es) it recorded are still running with no record: "
            "`python -m helpers stop` stops them.")


def load_registry() -> dict[str, Any]:
    path = home() / REGISTRY
    data = _read_json(path, None, registry_problem, consequence=_registry_consequence)
    return data if isinstance(data, dict) else {}


def save_registry(data: dict[str, Any]) -> None:
    write_json(home() / REGISTRY, data)


def write_secret_atomic(path: Path, value: str) -> None:
    """Replace an owner-only file in one step (a reader sees the old or the new text, never half)."""
    replace_file(path, value)


def write_secret(path: Path, value: str) -> None:
    """Store a secret in a file only its owner can read (never on a command line)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    os.chmod(path, 0o600)


def repo_root() -> Path:
    """The checkout holding labs/ and data/ (the helpers package is installed in editable mode from it)."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "labs").is_dir() else Path.cwd()
