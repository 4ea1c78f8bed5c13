"""One way to stop: `make stop` (python -m helpers stop) and Ctrl+C in `make lab` leave nothing of the learner's.

JupyterLab is started as `make lab` starts it (scripts/lab.py, no browser, a free loopback
port, a state directory of its own); a kernel and a terminal are opened through Jupyter's REST API,
as the browser opens them; the lab's engines run. After the stop, no process of them is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from helpers.tools.jupyter import LAB_RECORD

# Each case starts JupyterLab and the lab's services (tens of seconds on a loaded machine).
pytestmark = pytest.mark.topology
ROOT = Path(__file__).resolve().parent.parent
STEP_LINE = re.compile(r"^\[(\d+)/(\d+)\] \S.* … (?:\d+ s … )*\d+\.\d s$")
READY = re.compile(r"JupyterLab is ready: (http://127\.0\.0\.1:(\d+)/)\S*\?token=(\w+)")


FOREGROUND = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


class Launcher:
    """`make lab`'s launcher (scripts/lab.py) in a state directory of its own, its output read line by line."""

    def __init__(self, home: Path) -> None:
        self.env = {**os.environ, "ELASTICACHE_LAB_HOME": str(home)}
        self.home = home
        # As a terminal starts `make lab` in the foreground: SIGINT at its default. A test run started in the
        # background of a non-interactive shell (nohup ... &) ignores SIGINT, and every child inherits that:
        # the launcher would never see the Ctrl+C this test sends.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FOREGROUND, "scripts/lab.py", "--no-browser", "--ServerApp.port=0"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern, timeout: float = 180.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"{pattern.pattern!r} never came; output:\n" + "\n".join(self.lines))

    def rest_of_output(self, timeout: float = 60.0) -> list[str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # say where the launcher is stuck: its threads' stacks (SIGUSR1)
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            said = []
            with contextlib.suppress(queue.Empty):
                while (line := self._queue.get(timeout=1)) is not None:
                    said.append(line)
            tree = [f"{p.pid} {p.status()} {' '.join(p.cmdline())[:120]}"
                    for p in psutil.Process(self.proc.pid).children(recursive=True) if p.is_running()]
            raise AssertionError(f"the launcher had not ended {timeout:.0f}s later; it said:\n" + "\n".join(said)
                                 + "\nits processes:\n" + "\n".join(tree)) from None
        rest = []
        while (line := self._queue.get(timeout=5)) is not None:
            rest.append(line)
        return rest

    def helpers(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)


def api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def running_lab(tmp_path):
    """The learner's whole set: launcher, JupyterLab, a kernel, a terminal's shell, the engines; their pids."""
    lab = Launcher(tmp_path / "home")
    try:
        ready = lab.wait_for(READY)
        steps = [line for line in lab.lines if line.startswith("[")]
        assert steps and all(STEP_LINE.match(s) for s in steps), lab.lines
        base, token = ready[1], ready[3]
        kernel = api(base, token, "api/kernels", {"name": "python3"})
        terminal = api(base, token, "api/terminals")
        assert kernel["id"] and terminal["name"]
        jupyter = json.loads((lab.home / LAB_RECORD).read_text())["pid"]
        deadline = time.monotonic() + 60
        while len(psutil.Process(jupyter).children(recursive=True)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        under_jupyter = [p.pid for p in psutil.Process(jupyter).children(recursive=True)]
        assert len(under_jupyter) >= 2, "a kernel and a terminal's shell under JupyterLab"
        status = json.loads(lab.helpers("status", "--json").stdout)
        engines = [n["pid"] for s in status["services"].values() for n in s["nodes"]]
        assert set(status["services"]) >= {"redis", "memcached", "aws"}
        yield lab, [lab.proc.pid, jupyter, *under_jupyter, *engines]
    finally:
        if lab.proc.poll() is None:
            lab.proc.kill()
        lab.helpers("stop")


def test_make_stop_stops_jupyterlab_its_kernels_and_terminals_and_the_engines(running_lab):
    lab, pids = running_lab
    out = lab.helpers("stop")
    assert out.returncode == 0, out.stderr
    assert "JupyterLab" in out.stdout and "redis" in out.stdout, out.stdout
    lab.rest_of_output()  # the launcher saw JupyterLab go and ended too
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p for p in pids if alive(p)] == []
    assert not (lab.home / LAB_RECORD).exists()
    assert "Nothing was running" in lab.helpers("stop").stdout


def test_ctrl_c_in_make_lab_stops_the_same(running_lab):
    lab, pids = running_lab
    lab.proc.send_signal(signal.SIGINT)
    rest = [line for line in lab.rest_of_output() if line.strip()]
    assert len(rest) == 1 and rest[0].startswith("Stopped JupyterLab"), rest
    assert "the lab's services (" in rest[0] and "redis" in rest[0]
    assert [p for p in pids if alive(p)] == []
    assert "Nothing was running" in lab.helpers("stop").stdout
