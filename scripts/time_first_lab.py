"""The first `make lab` of a fresh clone, timed: seconds until JupyterLab's address, and the longest silence.

    python3 scripts/time_first_lab.py [--keep-uv-cache]

Clones this repository's HEAD into a temporary directory, runs `make lab` there (a new .venv, a
new state directory, uv's cache empty unless --keep-uv-cache; the engines as installed on this
machine), echoes what a learner reads, then presses Ctrl+C and checks that `make lab` stopped.
Downloads every Python package: run it by hand, not in the tests. Figures: docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="first-lab-") as tmp:
        clone, home = Path(tmp) / "clone", Path(tmp) / "home"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update({"ELASTICACHE_LAB_HOME": str(home), "JUPYTER_ARGS": "--no-browser --ServerApp.port=0"})
        if "--keep-uv-cache" not in argv:
            env["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache")
        started = last = time.monotonic()
        longest, seen = 0.0, ""
        proc = subprocess.Popen(["make", "lab"], cwd=clone, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=0, start_new_session=True)
        while ch := proc.stdout.read(1):
            now = time.monotonic()
            longest, last = max(longest, now - last), now
            sys.stdout.write(ch)
            sys.stdout.flush()
            seen += ch
            if "JupyterLab is ready" in seen and seen.endswith("\n\n"):
                break
        else:
            print(f"make lab ended (exit code {proc.wait()}) without an address")
            return 1
        ready = time.monotonic() - started
        os.killpg(proc.pid, signal.SIGINT)
        print(proc.stdout.read(), end="")
        proc.wait(timeout=120)
        print(f"first make lab: JupyterLab's address after {ready:.1f} s; longest silence {longest:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
