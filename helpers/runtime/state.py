"""The per-learner state directory: configs, pid records, logs, data files and progress.

Everything the lab starts is recorded here, so a new kernel (or the CLI) finds the services a
previous one started, and two learners on one machine never share a process or a port.
The directory is private to its owner (0700) because it holds generated passwords and keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
from filelock import FileLock

ENV_HOME = "ELASTICACHE_LAB_HOME"
REGISTRY = "services.json"


class LabError(RuntimeError):
    """An error meant for a person: the message says what happened and what to do."""


def home() -> Path:
    """The state directory: $ELASTICACHE_LAB_HOME, else the user's cache directory."""
    raw = os.environ.get(ENV_HOME)
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_cache_dir("elasticache-lab"))
    path = path.resolve()
    if path.exists() and not path.is_dir():
        raise LabError(
            f"The lab's state directory {path} exists but is not a directory. "
            f"Move it away, or point {ENV_HOME} at another directory."
        )
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):
        os.chmod(path, 0o700)
    if not os.access(path, os.W_OK):
        raise LabError(f"The lab's state directory {path} is not writable; set {ENV_HOME} to a directory you own.")
    return path


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


def _read_json(path: Path, default: Any) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # Keep the damaged file for inspection rather than silently dropping it.
        aside = path.with_suffix(path.suffix + f".corrupt-{int(time.time())}")
        path.rename(aside)
        import warnings

        warnings.warn(f"{path.name} in the lab's state directory was damaged; moved it to {aside.name} "
                      "and started from a clean record.", stacklevel=3)
        return default


def write_json(path: Path, data: Any) -> None:
    """Write atomically with owner-only permissions, so a crash never leaves half a file."""
    # A temporary name of its own (mkstemp: 0600), so two writers never share one half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path, default: Any) -> Any:
    return _read_json(path, default)


def load_registry() -> dict[str, Any]:
    data = _read_json(home() / REGISTRY, {})
    return data if isinstance(data, dict) else {}


def save_registry(data: dict[str, Any]) -> None:
    write_json(home() / REGISTRY, data)


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
