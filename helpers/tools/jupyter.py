"""Starting JupyterLab the way `make lab` does: services first, loopback only, the welcome lab open.

`python -m helpers lab` (what `make lab` runs) and the real-browser test share this module, so the
test exercises the very command line a learner gets. The test adds only what a headless run needs
(a fixed free port, no browser of its own, a token passed through the environment).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers.runtime import engines, process, services
from helpers.runtime.process import Process
from helpers.runtime.state import LabError, repo_root

WELCOME = "labs/00_welcome.ipynb"
DEFAULT_SERVICES = ("redis", "memcached", "aws")


def jupyter_binary() -> str:
    """The `jupyter` next to this Python (the project's venv), else the one on PATH."""
    local = Path(sys.executable).with_name("jupyter")
    if local.exists():
        return str(local)
    found = shutil.which("jupyter")
    if not found:
        raise LabError("JupyterLab is not installed in this environment — run `make setup` (or `pip install -e .`).")
    return found


def lab_args(notebook: str | None = WELCOME) -> list[str]:
    """The arguments of `jupyter lab` for the course: loopback only; --allow-root when run as root."""
    args = ["lab"]
    if notebook:
        args.append(notebook)
    args.append(f"--ServerApp.ip={engines.LOOPBACK}")
    # No calls home: the lab's network traffic stays on loopback.
    args += ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    return args


def start_services(names: Sequence[str] = DEFAULT_SERVICES) -> list[services.Service]:
    """Start what the labs share before the first kernel needs it (so the first cell is quick)."""
    return [services.start(n) for n in names]


def lab_main(extra: Sequence[str] = (), notebook: str | None = WELCOME) -> int:
    """`python -m helpers lab [jupyter args...]`: start the services, then become `jupyter lab`."""
    for svc in start_services():
        print(f"{svc.name:<10} {svc.url}")
    argv = [jupyter_binary(), *lab_args(notebook), *extra]
    sys.stdout.flush()
    os.chdir(repo_root())
    os.execv(argv[0], argv)
    return 0  # pragma: no cover (execv does not return)


# --- a JupyterLab server for tests and benchmarks -------------------------------------------------

@dataclass
class LabServer:
    """A running `jupyter lab` on a free loopback port, with its token kept out of the command line."""

    root: Path
    port: int
    token: str
    process: Process
    argv: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.process.log

    @property
    def base_url(self) -> str:
        return f"http://{engines.LOOPBACK}:{self.port}"

    def url(self, path: str = "lab") -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)


def _answers(server: LabServer) -> bool:
    req = urllib.request.Request(f"{server.base_url}/api/status",
                                 headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def lab_server(root: Path, notebook: str | None = None, timeout: float = 90.0,
               env: dict[str, str] | None = None) -> Iterator[LabServer]:
    """Run `jupyter lab` with the course's arguments, serving `root`; always stopped on exit, with
    the kernels it started (jupyter shuts its kernels down on SIGTERM; any left are killed)."""
    port = engines.free_port()
    token = secrets.token_hex(24)
    argv = [jupyter_binary(), *lab_args(notebook), f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", "--no-browser"]
    # The token travels in the environment, never on a command line another user could read.
    full_env = {**os.environ, **(env or {}), "JUPYTER_TOKEN": token}
    with process.spawn(argv, cwd=Path(root), log=Path(root) / ".jupyter-server.log", env=full_env, record=False,
                       detach=False) as proc:
        server = LabServer(root=Path(root), port=port, token=token, process=proc, argv=argv)
        proc.wait_ready(lambda: _answers(server), what=f"jupyter lab on port {port}", timeout=timeout,
                        interval=0.25)
        yield server
