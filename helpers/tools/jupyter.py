"""Starting JupyterLab the way `make lab` does: services first, loopback only, the welcome lab open.

`python -m helpers lab` (what `make lab` runs) and the real-browser test share this module, so the
test exercises the very command line a learner gets. The test adds only what a headless run needs
(a fixed free port, no browser of its own, a token passed through the environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers.runtime import engines, i18n, process, services, state
from helpers.runtime.process import Process
from helpers.runtime.state import LabError, repo_root

WELCOME = "labs/00_welcome.ipynb"
CONFIG_DIR = Path(__file__).resolve().parent / "jupyter_config"  # see lab_env()
DATA_DIR = Path(__file__).resolve().parent / "jupyter_data"  # the course's python3 kernel; see lab_env()
DEFAULT_SERVICES = ("redis", "memcached", "aws")
# glibc gives every thread that allocates its own malloc arena (up to 8 per core) and rarely hands
# their free pages back: Jupyter, each kernel (its ZMQ threads, the labs' load-generator threads) and
# the AWS server (a thread per request) keep tens of MB each. Two arenas cost nothing measurable here.
# binder/start sets the same; a value already in the environment wins.
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


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
    """The arguments of `jupyter lab` for the course: loopback only; --allow-root when run as root.

    The server serves the directory it starts in (the repository, so the README is in the file
    browser) and the URL it prints opens `notebook` (the welcome lab), not the Launcher.
    """
    args = ["lab", f"--ServerApp.ip={engines.LOOPBACK}"]
    if notebook:
        args.append(f"--LabApp.default_url=/lab/tree/{notebook}")
    if os.geteuid() == 0:
        args.append("--allow-root")
    return args


def lab_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables `jupyter lab` starts with, on top of `base` (os.environ).

    JUPYTER_CONFIG_PATH adds the course's Jupyter configuration (CONFIG_DIR: no news or update
    checks, terminals in the lab's environment, idle kernels culled); JUPYTER_PATH adds DATA_DIR, whose
    `python3` kernel is ipykernel without debugpy (about 8 MB less in every kernel, 15 kernels in a
    course; JupyterLab's debugger panel is off); binder/start and the Makefile (bench, memory-check) set the same, and
    MALLOC_ARENA_MAX (MALLOC_ENV). This Python's
    bin directory goes first on PATH, so what Jupyter starts finds the project's `python` and `aws`.
    """
    from helpers.tools.terminals import python_bin, with_first_on_path

    base = os.environ if base is None else base
    env = {k: base.get(k, v) for k, v in MALLOC_ENV.items()}
    paths = [p for p in base.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != str(CONFIG_DIR)]
    data = [p for p in base.get("JUPYTER_PATH", "").split(os.pathsep) if p and p != str(DATA_DIR)]
    env["JUPYTER_PATH"] = os.pathsep.join([str(DATA_DIR), *data])
    env.update({"JUPYTER_CONFIG_PATH": os.pathsep.join([str(CONFIG_DIR), *paths]),
                "PATH": with_first_on_path(base.get("PATH", os.defpath), python_bin())})
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


# --- the learner's language: the edition's welcome lab, JupyterLab's own menus ---------------------

TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"  # its `locale` setting picks the language pack
JUPYTERLAB_LOCALES = {"es": "es_ES"}  # the language packs installed with the lab (pyproject.toml)


def welcome(lang: str) -> str:
    """The welcome lab of the edition in `lang` (labs/es/00_welcome.ipynb), or the English one."""
    if lang != i18n.DEFAULT:
        edition = f"labs/{lang}/00_welcome.ipynb"
        if (repo_root() / edition).is_file():
            return edition
    return WELCOME


def write_language_config(lang: str, where: Path) -> Path | None:
    """A Jupyter configuration folder (`where`) whose labconfig makes JupyterLab's interface speak `lang`:
    its translation setting's default becomes the language pack's locale (a language the learner
    picks in JupyterLab's Settings > Language menu still wins). None for English (JupyterLab's own)."""
    locale = JUPYTERLAB_LOCALES.get(lang)
    if locale is None:
        return None
    path = where / "labconfig" / "default_setting_overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({TRANSLATION_PLUGIN: {"locale": locale}}, indent=2) + "\n", encoding="utf-8")
    return where


def language_env(lang: str, base: Mapping[str, str] | None = None, where: Path | None = None) -> dict[str, str]:
    """What `jupyter lab` adds for a learner of `lang`: ELASTICACHE_LAB_LANG for its kernels and terminals,
    and, for a language JupyterLab has a pack for, the configuration folder that selects it (written in
    `where`, by default the state directory) first on JUPYTER_CONFIG_PATH (of `base`, os.environ)."""
    base = os.environ if base is None else base
    env = {i18n.ENV: lang}
    config = write_language_config(lang, where or state.home() / f"jupyter-config-{lang}")
    if config is not None:
        paths = [p for p in base.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != str(config)]
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(config), *paths])
    return env


def start_services(names: Sequence[str] = DEFAULT_SERVICES) -> list[services.Service]:
    """Start what the labs share before the first kernel needs it (so the first cell is quick)."""
    return [services.start(n) for n in names]


def lab_main(extra: Sequence[str] = (), notebook: str | None = WELCOME) -> int:
    """`python -m helpers lab [jupyter args...]`: start the services, then become `jupyter lab`
    (in the learner's language, ELASTICACHE_LAB_LANG: `make lab LANG=es` opens the Spanish edition)."""
    for key, value in MALLOC_ENV.items():  # the services started here, Jupyter and its kernels
        os.environ.setdefault(key, value)
    for svc in start_services():
        print(f"{svc.name:<10} {svc.url}")
    os.chdir(repo_root())
    lang = i18n.lang()
    if notebook == WELCOME:
        notebook = welcome(lang)
    argv = [jupyter_binary(), *lab_args(notebook), *extra]
    sys.stdout.flush()
    env = {**os.environ, **lab_env()}
    os.execve(argv[0], argv, {**env, **language_env(lang, env)})
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

    def run_in_terminal(self, command: str, timeout: float = 60.0) -> str:
        """Open a JupyterLab terminal (REST + websocket, as the browser does), run `command`, return its output."""
        return run_in_terminal(self.base_url, self.token, command, timeout)


def run_in_terminal(base_url: str, token: str, command: str, timeout: float = 60.0) -> str:
    """Type `command` into a new terminal of the Jupyter server at `base_url`; its output, once it ends.

    The terminal is closed afterwards. Output is what the shell echoed (with terminal control codes).
    """
    import json

    import websocket  # websocket-client: a dependency of jupyter_server

    headers = {"Authorization": f"token {token}"}
    req = urllib.request.Request(f"{base_url}/api/terminals", data=b"{}", method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        name = json.load(resp)["name"]
    marker = f"__done_{secrets.token_hex(4)}__"
    ws_url = base_url.replace("http", "ws", 1) + f"/terminals/websocket/{name}"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout)
    out = ""
    try:
        # The marker is split so that the echo of the typed line never matches it.
        ws.send(json.dumps(["stdin", f"{command}; echo '{marker[:6]}''{marker[6:]}'\r"]))
        deadline = time.monotonic() + timeout
        while marker not in out:
            if time.monotonic() > deadline:
                raise LabError(f"The terminal command did not finish within {timeout:.0f}s:\n{out[-2000:]}")
            msg = json.loads(ws.recv())
            if msg[0] == "stdout":
                out += msg[1]
    finally:
        ws.close()
        delete = urllib.request.Request(f"{base_url}/api/terminals/{name}", method="DELETE", headers=headers)
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(delete, timeout=10).close()
    return out[: out.index(marker)]


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
    full_env = {**os.environ, **lab_env(), **(env or {}), "JUPYTER_TOKEN": token}
    with process.spawn(argv, cwd=Path(root), log=Path(root) / ".jupyter-server.log", env=full_env, record=False,
                       detach=False) as proc:
        server = LabServer(root=Path(root), port=port, token=token, process=proc, argv=argv)
        proc.wait_ready(lambda: _answers(server), what=f"jupyter lab on port {port}", timeout=timeout,
                        interval=0.25)
        yield server
