"""Run a few test streams at once and say how each ended: `make test`'s driver.

Usage: python scripts/parallel.py NAME=COMMAND [NAME=COMMAND ...]

Each COMMAND runs in its own shell and process group (each pytest run in it has its own state
directory, so the streams share nothing but the machine). Every line a stream prints is shown as it
comes, prefixed with the stream's name; at the end, one line per stream says whether it passed and
how long it took, and the exit status is 1 if any stream failed. Ctrl+C stops every stream.
Standard library only: it runs before anything is installed into .venv would matter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time


def _pump(name: str, width: int, proc: subprocess.Popen[bytes], lock: threading.Lock) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with lock:
            sys.stdout.write(f"[{name:<{width}}] {line}\n")
            sys.stdout.flush()


def main(argv: list[str]) -> int:
    streams = [arg.split("=", 1) for arg in argv]
    if not streams or any(len(s) != 2 or not s[0] for s in streams):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    width = max(len(name) for name, _ in streams)
    lock = threading.Lock()
    started = time.monotonic()
    procs: list[tuple[str, subprocess.Popen[bytes], threading.Thread]] = []
    ended: dict[str, float] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for name, command in streams:
            proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env)
            pump = threading.Thread(target=_pump, args=(name, width, proc, lock), daemon=True)
            pump.start()
            procs.append((name, proc, pump))
        pending = {name for name, _, _ in procs}
        while pending:
            for name, proc, _ in procs:
                if name in pending and proc.poll() is not None:
                    ended[name] = time.monotonic() - started
                    pending.discard(name)
            time.sleep(0.2)
    except KeyboardInterrupt:
        for _, proc, _ in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for _, proc, _ in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        print("\nstopped: every stream was interrupted", flush=True)
        return 130
    for _, _, pump in procs:
        pump.join(10)
    failed = False
    print(flush=True)
    for name, proc, _ in procs:
        verdict = "passed" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        failed |= proc.returncode != 0
        print(f"{name:<{width}}  {verdict} in {ended[name]:.0f} s", flush=True)
    print(f"all streams: {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
