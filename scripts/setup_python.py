"""The Python half of `make setup`: .venv with the lab and its test tools, at requirements.lock's versions.

One line per step, with how long it took (helpers/tools/steps.py). uv installs the locked set in
seconds where pip takes minutes: the uv on PATH, else uv installed into .venv with pip; pip itself
when neither works. The installers' own output (setuptools' BuildBackendWarning banner and the like)
goes to .venv/setup.log, shown only when a step fails. Standard library only (it runs before .venv exists).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYBIN = VENV / "bin" / "python"
LOG = VENV / "setup.log"
STAMP = VENV / ".installed"
SPEC = ["-e.[test]", "pip"]  # pip too: .venv is made without it (a learner may still want it)


def _steps_module():
    spec = importlib.util.spec_from_file_location("lab_steps", ROOT / "helpers" / "tools" / "steps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StepFailed(Exception):
    pass


def run(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Run an installer with its output in LOG; raise StepFailed when it fails."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        done = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, **(env or {})}, check=False)
    if done.returncode:
        raise StepFailed(f"{argv[0]} exited with {done.returncode}")


def log_tail(lines: int = 25) -> str:
    try:
        return "\n".join(LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def make_venv() -> None:
    """.venv without pip (seconds instead of half a minute: uv installs pip with the rest)."""
    if PYBIN.exists():
        return
    if subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL, check=False).returncode:
        shutil.rmtree(VENV, ignore_errors=True)
        raise StepFailed(f"'{sys.executable} -m venv' failed. Install Python's venv module "
                         "(Debian/Ubuntu: sudo apt-get install -y python3-venv) and run make again.")


def ensure_pip() -> None:
    """pip inside .venv (ensurepip; Debian's python3-venv holds it, installed with apt-get if need be)."""
    if subprocess.run([str(PYBIN), "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0:
        return
    try:
        run([str(PYBIN), "-m", "ensurepip", "--default-pip"])
        return
    except StepFailed:
        if not shutil.which("apt-get"):
            raise StepFailed("Python's ensurepip is missing: install Python's venv module and run make again.") from None
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    apt = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q"]
    print(f"\nPython's venv module is incomplete; installing python{ver}-venv...", flush=True)
    if subprocess.run([*apt, f"python{ver}-venv"], check=False).returncode and \
            subprocess.run([*apt, "python3-venv"], check=False).returncode:
        raise StepFailed("could not install Python's venv module. Run: sudo apt-get install -y python3-venv")
    run([str(PYBIN), "-m", "ensurepip", "--default-pip"])


def find_uv() -> str | None:
    for candidate in (shutil.which("uv"), str(VENV / "bin" / "uv")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def get_uv() -> str | None:
    """uv from PyPI into .venv: with this Python's own pip when it has one (pip --python, no pip inside
    .venv needed), else with .venv's pip. None (pip installs instead) when that fails."""
    quiet = ["install", "-q", "--disable-pip-version-check", "uv"]
    try:
        run([sys.executable, "-m", "pip", "--python", str(PYBIN), *quiet])
    except StepFailed:
        try:
            ensure_pip()
            run([str(PYBIN), "-m", "pip", *quiet])
        except StepFailed:
            return None
    return find_uv()


def install(uv: str | None) -> str:
    """The locked set (requirements.lock as constraints); a Python the lock cannot serve (no wheel of a
    pinned version, e.g. 3.10) gets the newest versions pyproject.toml allows. Returns a note or ''."""
    if uv:
        base = [uv, "pip", "install", "--python", str(PYBIN)]
        # No bytecode compiled here (pip compiles all 350 packages, a minute on a loaded machine):
        # Python compiles what the lab imports as make lab first loads it, in a step that talks.
        env = {"VIRTUAL_ENV": str(VENV), "UV_NO_PROGRESS": "1"}
    else:
        ensure_pip()
        base = [str(PYBIN), "-m", "pip", "install", "--disable-pip-version-check"]
        env = {}
    try:
        run([*base, "-c", "requirements.lock", *SPEC], env)
        return ""
    except StepFailed:
        run([*base, *SPEC], env)
        return (f"note: the versions in requirements.lock do not install with Python {sys.version.split()[0]}; "
                "the newest versions pyproject.toml allows were installed instead.")


def main() -> int:
    steps_mod = _steps_module()
    uv = find_uv()
    steps = steps_mod.Steps(total=(0 if PYBIN.exists() else 1) + (0 if uv else 1) + 1)
    started = time.monotonic()
    note = ""
    try:
        if not PYBIN.exists():
            with steps.step("creating the virtual environment .venv"):
                make_venv()
        if not uv:
            with steps.step("getting uv, the fast package installer (pip stays the fallback)"):
                uv = get_uv()
        with steps.step(f"installing the lab's Python packages with {'uv' if uv else 'pip'} (log: .venv/setup.log)"):
            try:
                note = install(uv)
            except StepFailed:
                if not uv:
                    raise
                note = install(None)  # pip, when uv could not (a proxy uv does not know, say)
    except StepFailed as exc:
        tail = log_tail()
        print(f"error: {exc}." + (f" The end of .venv/setup.log:\n{tail}" if tail else ""), file=sys.stderr)
        return 1
    if note:
        print(note)
    STAMP.touch()
    print(f"Python packages ready in {time.monotonic() - started:.0f} s.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
