"""Starting JupyterLab the way `make lab` does: services first, loopback only, the welcome lab open.

`python -m helpers lab` (what `make lab` runs) and the real-browser test share this module, so the
test exercises the very command line a learner gets. The test adds only what a headless run needs
(a fixed free port, no browser of its own, a token passed through the environment).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers.runtime import engines, i18n, process, services, state
from helpers.runtime.i18n import translator
from helpers.runtime.process import Process
from helpers.runtime.state import LabError, repo_root
from helpers.tools import workfolder
from helpers.tools.steps import Steps

log = logging.getLogger(__name__)
_ = translator(__name__)

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


LAB_RECORD = "jupyterlab.json"  # in the state directory: the JupyterLab `make lab` runs (`make stop` finds it)
LAB_LOG = "jupyterlab.log"  # Jupyter's own log lines, out of the learner's terminal


def _runtime_info(pid: int, env: Mapping[str, str]) -> dict | None:
    """What a running Jupyter server wrote about itself (its port, base URL and token), once it has."""
    from jupyter_core.paths import jupyter_runtime_dir

    saved = os.environ.get("JUPYTER_RUNTIME_DIR")
    try:
        if env.get("JUPYTER_RUNTIME_DIR"):
            os.environ["JUPYTER_RUNTIME_DIR"] = env["JUPYTER_RUNTIME_DIR"]
        path = Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json"
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_RUNTIME_DIR", None)
        else:
            os.environ["JUPYTER_RUNTIME_DIR"] = saved
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("port") else None


def _serving(info: Mapping) -> bool:
    base = f"http://{engines.LOOPBACK}:{info['port']}{info.get('base_url', '/')}"
    req = urllib.request.Request(f"{base}api/status", headers={"Authorization": f"token {info.get('token', '')}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_serving(proc: subprocess.Popen, env: Mapping[str, str], log_path: Path, timeout: float = 180.0) -> dict:
    """Wait until the JupyterLab of `proc` answers; its runtime information. A LabError if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:]) if log_path.exists() else ""
            raise LabError(_("JupyterLab stopped as it started (exit code {code}). The end of its log, {log}:",
                             code=proc.returncode, log=log_path) + f"\n{tail}")
        info = _runtime_info(proc.pid, env)
        if info and _serving(info):
            return info
        time.sleep(0.25)
    seconds = round(timeout)
    raise LabError(_("JupyterLab did not answer within {seconds} s; its log: {log}", seconds=seconds, log=log_path))


def recorded_lab() -> psutil.Process | None:
    """The JupyterLab `make lab` started in this state directory, if it still runs."""
    try:
        data = json.loads((state.home() / LAB_RECORD).read_text())
        proc = psutil.Process(int(data["pid"]))
        if abs(state.started(proc) - float(data["create_time"])) > 1.0:
            return None  # its pid now belongs to another process
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    return proc


def stop_lab(timeout: float = 20.0) -> int | None:
    """Stop the JupyterLab of this state directory with its kernels and terminals; how many processes it
    had under it (kernels, terminals' shells), or None when none was running.

    Jupyter shuts its kernels and terminals down itself on SIGTERM; whatever of them it left is killed.
    """
    record = state.home() / LAB_RECORD
    proc = recorded_lab()
    if proc is None:
        with contextlib.suppress(OSError):
            record.unlink()
        return None
    try:
        family = proc.children(recursive=True)
    except psutil.Error:
        family = []
    with contextlib.suppress(psutil.Error):
        proc.terminate()
    _, alive = psutil.wait_procs([proc], timeout=timeout)
    left = [p for p in family if p.is_running()]
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, still = psutil.wait_procs(left, timeout=5)
    for p in [*alive, *still]:
        log.warning("killing %s (pid %d): it outlived SIGTERM", p.name() if p.is_running() else "?", p.pid)
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs([*alive, *still], timeout=5)
    with contextlib.suppress(OSError):
        record.unlink()
    return len(family)


def _what_stopped(lab: bool, svcs: Sequence[str]) -> str:
    names = ", ".join(svcs)
    if lab and svcs:
        return _("Stopped JupyterLab, its kernels and terminals, and the lab's services ({names}).", names=names)
    if lab:
        return _("Stopped JupyterLab, its kernels and terminals.")
    if svcs:
        return _("Stopped the lab's services ({names}).", names=names)
    return _("Nothing was left running.")


def _stop_signals() -> None:
    """SIGTERM and SIGHUP (a closed terminal) end the launcher the way Ctrl+C does."""
    def interrupt(signum, frame):  # noqa: ANN001 (signal's own signature)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    # `kill -USR1 <launcher>` prints where each of its threads is (a stop that seems stuck says where).
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no SIGUSR1 (Windows), or no stderr
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def lab_main(extra: Sequence[str] = (), notebook: str | None = None, steps: Steps | None = None) -> int:
    """`python -m helpers lab [jupyter args...]`: the learner's copies of the labs, the services, then
    `jupyter lab` opening `notebook` (default: the welcome lab's copy in work/, of the edition in the
    learner's language, ELASTICACHE_LAB_LANG: `make lab LANG=es` opens the Spanish one), its address last.

    One line per step with how long it took; Jupyter's own log goes to LAB_LOG in the state directory.
    JupyterLab runs in a session of its own, so Ctrl+C reaches only this launcher, which then stops
    JupyterLab (its kernels and terminals too) and the lab's services, and says so in one line.
    """
    for key, value in MALLOC_ENV.items():  # the services started here, Jupyter and its kernels
        os.environ.setdefault(key, value)
    _stop_signals()
    os.chdir(repo_root())
    lang = i18n.lang()
    home = state.home()
    log_path = home / LAB_LOG
    steps = steps or Steps(total=3)  # scripts/lab.py (make lab) passes its own, one step already done
    proc: subprocess.Popen | None = None
    try:
        if notebook is None:  # the learner's copy of the edition's welcome lab: labs/es/x -> work/es/x
            course = Path(welcome(lang))
            edition = course.parent.relative_to("labs")
            where = Path(workfolder.WORK) / edition
            with steps.step(_("copying the labs you work in to {folder}/ (labs/ stays as the course has it)",
                              folder=where.as_posix())):
                synced = workfolder.sync(repo_root() / course.parent, repo_root() / where)
            if line := synced.line(where.as_posix()):
                print(line, flush=True)
            notebook = (where / course.name).as_posix()
        engine = engines.kv_engine().label
        env = {**os.environ, **lab_env()}
        env.update(language_env(lang, env))
        argv = [jupyter_binary(), *lab_args(notebook), *extra]
        # JupyterLab boots (seconds of imports) while the services start: nobody opens it before its address.
        with steps.step(_("starting JupyterLab and the lab's services ({engine}, memcached, the local AWS endpoint)",
                          engine=engine)):
            with log_path.open("a") as log_file:
                log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
                log_file.flush()
                proc = subprocess.Popen(argv, cwd=repo_root(), env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            state.write_json(home / LAB_RECORD, {"pid": proc.pid, "create_time": state.started(psutil.Process(proc.pid)),
                                                 "launcher": os.getpid()})
            start_services()
        with steps.step(_("waiting for JupyterLab to answer (its log: {log})", log=log_path)):
            info = _wait_serving(proc, env, log_path)
        base = f"http://{engines.LOOPBACK}:{info['port']}{info.get('base_url', '/')}"
        page = f"lab/tree/{notebook}" if notebook else "lab"
        token = f"?token={info['token']}" if info.get("token") else ""
        print(_("Ctrl+C here stops JupyterLab and the lab's services (`make stop` from another terminal does too)."))
        url = base + page + token
        print("\n    " + _("JupyterLab is ready: {url}", url=url) + "\n", flush=True)
        proc.wait()
        print(_("JupyterLab has stopped (exit code {code}).", code=proc.returncode), flush=True)
    except KeyboardInterrupt:
        print("", flush=True)
    except LabError:
        _stop_all(proc)
        raise
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C does not cut the clean-up short
    print(_stop_all(proc), flush=True)
    return 0


def _stop_all(proc: subprocess.Popen | None) -> str:
    if proc is not None:
        stop_lab()
    if proc is not None and proc.poll() is None:  # not recorded (the record could not be written): ours anyway
        proc.kill()
    stopped = services.stop()
    return _what_stopped(proc is not None, stopped)


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
