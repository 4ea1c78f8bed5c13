"""A bounded CPU load for the test run: the proof that no claim depends on an idle machine.

    python -m helpers.tools.cpuload --percent 60 --seconds 1800      # every core busy 60% of the time

Debian's `stress-ng --cpu N --cpu-load P` is used when it is installed (a load generator the project
did not write); elsewhere one Python process per core alternates busy and idle slices of 10 ms. Either
way the load ends by itself after `--seconds`, and when the process that asked for it (`--parent`) is
gone, so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

SLICE = 0.01  # seconds: one busy + idle period of the Python fallback


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _burn(percent: int, until: float, parent: int) -> None:
    busy = SLICE * percent / 100
    while time.monotonic() < until and _alive(parent):
        start = time.monotonic()
        while time.monotonic() - start < busy:
            pass
        time.sleep(max(0.0, SLICE - busy))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.tools.cpuload", description=__doc__.splitlines()[0])
    ap.add_argument("--percent", type=int, default=60, help="how busy each core is, 1-100 (default 60)")
    ap.add_argument("--seconds", type=float, default=1800, help="stop after this long (default 1800)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="processes to load (default: all cores)")
    ap.add_argument("--parent", type=int, default=os.getppid(), help="stop when this pid is gone")
    ap.add_argument("--python", action="store_true", help="the Python fallback even where stress-ng is installed")
    args = ap.parse_args(argv)
    percent = min(100, max(1, args.percent))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up below on `kill`
    until = time.monotonic() + max(1.0, args.seconds)
    stress = None if args.python else shutil.which("stress-ng")
    if stress:
        cmd = [stress, "--cpu", str(args.cores), "--cpu-load", str(percent), "--timeout", f"{int(args.seconds)}s",
               "--quiet"]
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while child.poll() is None and _alive(args.parent) and time.monotonic() < until:
                time.sleep(0.5)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        return 0
    pids = []
    for _ in range(max(1, args.cores)):
        pid = os.fork()
        if pid == 0:
            try:
                _burn(percent, until, args.parent)
            finally:
                os._exit(0)
        pids.append(pid)
    try:
        for pid in pids:
            os.waitpid(pid, 0)
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
