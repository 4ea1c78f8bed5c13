"""`make memory-check`: the whole course, as a learner runs it, inside Binder's 2 GiB, measured.

A learner on Binder opens lab after lab in JupyterLab and rarely closes a kernel: every lab's
kernel stays alive next to the lab's services, the local AWS server and the JupyterLab server.
This tool does the same: a JupyterLab server (the course's configuration) starts one kernel per
lab, in order, as a tab does; every cell is executed, and the tool closes no tab until the end. The
server applies the course's kernel limit (helpers/tools/kernels.py: at most 8 kernels; starting
another shuts down the least recently used idle one, as the idle culler would), as on Binder. The
server, its kernels and every service they start run in a memory cgroup the tool creates with
Binder's limit (cgroup v1 or v2, as root), so the kernel's OOM killer acts as Binder's would; the
tool's own process, the kernels' client (a browser's part on Binder), stays outside. Without root or
cgroups the limit cannot be enforced and the tool says so, measuring the summed RSS/PSS/USS of the
run's processes (its own included) instead. Every numbered lab in labs/ is run, new ones included.

It reports the peak (the cgroup's maximum usage; the peak sums of RSS and PSS of every process of
the run), the figures per component at the end (kernels, engines, the AWS server, the Jupyter
server), each lab's kernel, what a lab costs on average and the peak with 3 more such labs, any
process the OOM killer took, and which labs failed; it writes artifacts/coursemem.json
(which `make bench` prints). It stops everything it started and removes the cgroup. Its state
directory is a temporary one, never the learner's.

    python -m helpers.tools.coursemem                 # the whole course (about 15 minutes)
    python -m helpers.tools.coursemem --labs '0[0-2]*' --limit-mb 2048
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LIMIT_MB = 2048
V1_ROOT = Path("/sys/fs/cgroup/memory")
V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
COMPONENTS = ("kernels", "engines", "aws server", "jupyter server", "runner", "other")
MB = 2**20


# --- memory cgroups, v1 and v2 ------------------------------------------------------------------

def _read(path: Path) -> str:
    return path.read_text().strip()


def _keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.stat, memory.events, memory.oom_control) as a dict of ints."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def v2_root() -> Path | None:
    """The cgroup v2 hierarchy whose root offers the memory controller, if any."""
    for root in V2_ROOTS:
        with contextlib.suppress(OSError):
            if "memory" in _read(root / "cgroup.controllers").split():
                return root
    return None


def available() -> str | None:
    """'v1' or 'v2' when a memory cgroup can be made here (root, a writable memory hierarchy), else None."""
    if os.geteuid() != 0:
        return None
    if (V1_ROOT / "memory.limit_in_bytes").exists() and os.access(V1_ROOT, os.W_OK):
        return "v1"
    root = v2_root()
    if root is not None and os.access(root, os.W_OK):
        return "v2"
    return None


@dataclass
class MemoryCgroup:
    """A memory cgroup with a hard limit and no swap: create(), add(pid), figures, remove()."""

    name: str
    limit_bytes: int
    version: str = ""
    path: Path = field(default=Path("/nonexistent"))

    def create(self) -> MemoryCgroup:
        self.version = self.version or available() or ""
        if self.version == "v1":
            self.path = V1_ROOT / self.name
            self.path.mkdir()
            # memsw (memory + swap) cannot go below memory's limit: set memory first.
            (self.path / "memory.limit_in_bytes").write_text(str(self.limit_bytes))
            with contextlib.suppress(OSError):
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(self.limit_bytes))
            with contextlib.suppress(OSError):
                (self.path / "memory.swappiness").write_text("0")
        elif self.version == "v2":
            root = v2_root()
            assert root is not None
            with contextlib.suppress(OSError):  # let children of the root use the memory controller
                (root / "cgroup.subtree_control").write_text("+memory")
            self.path = root / self.name
            self.path.mkdir()
            (self.path / "memory.max").write_text(str(self.limit_bytes))
            with contextlib.suppress(OSError):
                (self.path / "memory.swap.max").write_text("0")
        else:
            raise OSError("no writable memory cgroup here (needs root and cgroup v1 or v2 with memory)")
        return self

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in _read(self.path / "cgroup.procs").split()]
        return []

    def usage_bytes(self) -> int:
        name = "memory.usage_in_bytes" if self.version == "v1" else "memory.current"
        return int(_read(self.path / name))

    def peak_bytes(self) -> int | None:
        """The kernel's own high-water mark (v1 max_usage; v2 memory.peak, Linux 5.19+)."""
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        with contextlib.suppress(OSError, ValueError):
            return int(_read(self.path / name))
        return None

    def stat(self) -> dict[str, int]:
        return _keyed(_read(self.path / "memory.stat"))

    def anon_bytes(self) -> int:
        """Memory that cannot be dropped like page cache: anonymous pages and shared memory."""
        s = self.stat()
        if self.version == "v1":
            return s.get("total_rss", s.get("rss", 0)) + s.get("total_shmem", s.get("shmem", 0))
        return s.get("anon", 0) + s.get("shmem", 0)

    def failcnt(self) -> int:
        if self.version == "v1":
            return int(_read(self.path / "memory.failcnt"))
        return _keyed(_read(self.path / "memory.events")).get("max", 0)

    def oom_kills(self) -> int:
        """Processes the OOM killer took in this cgroup (Linux 4.13+ counts them)."""
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        return _keyed(_read(self.path / name)).get("oom_kill", 0)

    def remove(self, timeout: float = 10.0) -> None:
        """Kill what is left inside (all of it started by this tool), then remove the cgroup."""
        if not self.path.exists():
            return
        deadline = time.monotonic() + timeout
        sig = signal.SIGTERM
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            time.sleep(0.5)
            sig = signal.SIGKILL
        for _ in range(20):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.25)


# --- per-process figures -------------------------------------------------------------------------

def parse_smaps_rollup(text: str) -> dict[str, int]:
    """Rss, Pss and Uss (private clean + dirty) in bytes from /proc/PID/smaps_rollup."""
    kb = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            kb[parts[0][:-1]] = int(parts[1])
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"rss": kb.get("Rss", 0) * 1024, "pss": kb.get("Pss", 0) * 1024, "uss": uss * 1024}


def component(cmdline: Sequence[str]) -> str:
    """Which part of the course a process is, from its command line."""
    text = " ".join(cmdline)
    if "ipykernel" in text:
        return "kernels"
    if "helpers.tools.coursemem" in text:
        return "runner"  # this tool's kernel client: stands in for the Jupyter server's kernel managers
    if "helpers.aws.server" in text:
        return "aws server"
    if "jupyter-lab" in text or "jupyter lab" in text or "jupyter_lab" in text or "jupyter-server" in text:
        return "jupyter server"
    base = os.path.basename(cmdline[0]) if cmdline else ""
    if base.startswith(("redis-", "valkey-", "memcached")) or "redis-server" in text or "valkey-server" in text:
        return "engines"
    return "other"


def proc_figures(pid: int) -> tuple[list[str], dict[str, int]] | None:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        figures = parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
    except (OSError, ValueError):
        return None
    return [c.decode(errors="replace") for c in cmd if c], figures


def descendants(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.Error):
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    return []


def find_kernels(files: Mapping[str, str], pids: Iterable[int]) -> dict[str, int]:
    """Which process is which lab's kernel: the one whose command line names its connection file."""
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            for name, conn in files.items():
                if conn in cmd and "ipykernel" in cmd:
                    out[name] = pid
    return out


def snapshot(pids: Iterable[int]) -> dict[int, tuple[str, dict[str, int]]]:
    out = {}
    for pid in pids:
        got = proc_figures(pid)
        if got and got[0]:
            out[pid] = (component(got[0]), got[1])
    return out


def by_component(snap: Mapping[int, tuple[str, Mapping[str, int]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {c: {"processes": 0, "rss_mb": 0.0, "pss_mb": 0.0, "uss_mb": 0.0}
                                        for c in COMPONENTS}
    for comp, fig in snap.values():
        row = out[comp]
        row["processes"] += 1
        for k in ("rss", "pss", "uss"):
            row[f"{k}_mb"] += fig[k] / MB
    return {c: {k: round(v, 1) for k, v in row.items()} for c, row in out.items()}


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure(exc: Any) -> str:
    """One line saying why a cell failed: the error, and the line of the cell it points at."""
    text = ANSI.sub("", str(exc))
    where = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("---->")]
    what = f"{getattr(exc, 'ename', type(exc).__name__)}: {ANSI.sub('', str(getattr(exc, 'evalue', '')))}"
    return (f"{what} at {where[-1]}" if where else what).replace("\n", " ")[:400]


# --- the learner: one kernel per lab, none shut down until the end ---------------------------------

def own_cgroup(version: str) -> Path | None:
    """The memory cgroup this process is in now (to come back to after joining another)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            if version == "v1" and "memory" in controllers.split(","):
                return V1_ROOT / path.lstrip("/")
            if version == "v2" and _id == "0":
                root = v2_root()
                return root / path.lstrip("/") if root else None
    return None


def server_kernel_manager(server: Any, kernel_name: str, nb_path: str) -> Any:
    """A kernel the Jupyter server starts and manages, as a JupyterLab tab's kernel is: this process
    only speaks to it, through the connection file the server wrote (so this process's own memory,
    a kernel client, is not part of the learner's: on Binder the server is the kernels' client)."""
    import http.client
    import urllib.request

    from jupyter_client.manager import KernelManager
    from jupyter_core.utils import run_sync

    def api(method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(f"{server.base_url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"token {server.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
        return json.loads(text) if text else {}

    # What a call to the server's API raises when it fails: URLError/HTTPError (a 404 for a kernel that is
    # gone), a cut answer, or a body that is not JSON.
    api_errors = (OSError, http.client.HTTPException, ValueError)

    class ServerKernel(KernelManager):  # type: ignore[misc]
        kernel_id = ""

        @property
        def has_kernel(self) -> bool:
            return True

        async def _async_is_alive(self) -> bool:  # the kernel client asks this one
            try:
                return api("GET", f"/api/kernels/{self.kernel_id}").get("execution_state") != "dead"
            except api_errors as exc:  # not alive
                log.debug("asking the server about kernel %s failed: %s", self.kernel_id, exc)
                return False

        async def _async_interrupt_kernel(self) -> None:
            api("POST", f"/api/kernels/{self.kernel_id}/interrupt")

        async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            with contextlib.suppress(*api_errors):  # already gone; the server stops the rest at its exit
                api("DELETE", f"/api/kernels/{self.kernel_id}")

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            pass

        is_alive = run_sync(_async_is_alive)
        interrupt_kernel = run_sync(_async_interrupt_kernel)
        shutdown_kernel = run_sync(_async_shutdown_kernel)
        cleanup_resources = run_sync(_async_cleanup_resources)

    kernel_id = api("POST", "/api/kernels", {"name": kernel_name, "path": nb_path})["id"]
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    cf = runtime / f"kernel-{kernel_id}.json"
    deadline = time.monotonic() + 60
    while not cf.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    km = ServerKernel(kernel_name=kernel_name, connection_file=str(cf))
    km.load_connection_file()
    km.kernel_id = kernel_id
    return km


def runner(labs: Sequence[str], timeout: int, cgroup: str = "", version: str = "") -> int:
    """Runs next to the cgroup: a JupyterLab server inside it, then every lab in its own kernel,
    started by that server (as JupyterLab does) and kept open.

    Speaks on stdout in lines `LAB <name> start|ok|failed <why>`, then `DONE`, and waits for a line
    on stdin before it shuts every kernel, the server and the lab's services down.
    """
    import nbformat
    import psutil
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    from helpers.runtime import services
    from helpers.runtime.state import LabError
    from helpers.tools import jupyter

    def say(line: str) -> None:
        print(line, flush=True)

    home = Path(os.environ["ELASTICACHE_LAB_HOME"])
    runtime = home / "jupyter-runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    labs_dir = Path(labs[0]).resolve().parent if labs else home
    with contextlib.suppress(FileExistsError):
        (home / "labs").symlink_to(labs_dir, target_is_directory=True)
    back = own_cgroup(version) if cgroup else None
    if cgroup:  # the server (and, through it, every kernel and service) starts inside the cgroup
        (Path(cgroup) / "cgroup.procs").write_text(str(os.getpid()))
    try:
        server_cm = jupyter.lab_server(home, env={"JUPYTER_RUNTIME_DIR": str(runtime)})
        server = server_cm.__enter__()
    finally:
        if back is not None:  # this process, the kernels' client, leaves: on Binder that is the server
            (back / "cgroup.procs").write_text(str(os.getpid()))
    try:
        for lab in labs:
            name = Path(lab).stem
            say(f"LAB {name} start")
            nb = nbformat.read(lab, as_version=4)
            try:
                km = server_kernel_manager(server, nb.metadata.get("kernelspec", {}).get("name", "python3"),
                                           f"labs/{Path(lab).name}")
            except Exception as exc:  # that lab failed; the run goes on with the next
                log.warning("starting a kernel for %s failed: %s", name, exc, exc_info=True)
                say(f"LAB {name} failed the server did not start a kernel: {type(exc).__name__}: {exc}")
                continue
            client = NotebookClient(nb, km=km, timeout=timeout, kernel_name=km.kernel_name,
                                    resources={"metadata": {"path": str(Path(lab).parent)}})
            say(f"KERNEL {name} {Path(km.connection_file).name}")
            try:
                client.execute()
                say(f"LAB {name} ok")
            except CellExecutionError as exc:
                say(f"LAB {name} failed {failure(exc)}")
            except DeadKernelError as exc:
                say(f"LAB {name} failed the kernel died ({exc})")
            except Exception as exc:  # a timeout or a kernel that did not start: that lab failed, the run goes on
                log.warning("running %s failed: %s", name, exc, exc_info=True)
                say(f"LAB {name} failed {type(exc).__name__}: {str(exc)[:300]}")
        say("DONE")
        sys.stdin.readline()
    finally:
        try:
            server_cm.__exit__(None, None, None)  # jupyter shuts its kernels down
        except (LabError, OSError, psutil.Error) as exc:
            log.warning("stopping the Jupyter server failed: %s", exc)
        try:
            services.stop()
        except (LabError, OSError, ValueError, psutil.Error) as exc:  # the parent sweeps the scratch home too
            log.warning("stopping the lab's services failed: %s", exc)
    return 0


# --- the measurement -----------------------------------------------------------------------------

class Sampler:
    """Every `interval` s: the summed RSS/PSS of the run's processes and the cgroup's usage; peaks kept."""

    def __init__(self, pids: Any, cgroup: MemoryCgroup | None, interval: float = 0.5):
        self.pids, self.cgroup, self.interval = pids, cgroup, interval
        self.lab = "(start-up)"
        self.peak: dict[str, Any] = {"rss_mb": 0.0, "pss_mb": 0.0, "uss_mb": 0.0, "cgroup_usage_mb": 0.0,
                                     "cgroup_anon_mb": 0.0}
        self.peak_lab: dict[str, str] = {}
        self.per_lab: dict[str, dict[str, float]] = {}
        self.seen: dict[int, tuple[str, str]] = {}  # pid -> (component, lab it appeared in)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="coursemem-sampler")

    def sample(self) -> dict[int, tuple[str, dict[str, int]]]:
        snap = snapshot(self.pids())
        now = {k: sum(f[k] for _c, f in snap.values()) / MB for k in ("rss", "pss", "uss")}
        figures = {f"{k}_mb": v for k, v in now.items()}
        if self.cgroup is not None:
            with contextlib.suppress(OSError, ValueError):
                figures["cgroup_usage_mb"] = self.cgroup.usage_bytes() / MB
                figures["cgroup_anon_mb"] = self.cgroup.anon_bytes() / MB
        lab = self.lab
        for k, v in figures.items():
            if v > self.peak[k]:
                self.peak[k], self.peak_lab[k] = v, lab
            row = self.per_lab.setdefault(lab, {})
            row[k] = max(row.get(k, 0.0), round(v, 1))
        for pid, (comp, _f) in snap.items():
            self.seen.setdefault(pid, (comp, lab))
        return snap

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except (OSError, ValueError) as exc:  # a process or a cgroup file gone between two reads
                log.debug("a memory sample failed: %s", exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def course_env(home: str) -> dict[str, str]:
    """What `make lab` gives Jupyter and its kernels (helpers.tools.jupyter.lab_env), in a scratch home."""
    from helpers.tools import jupyter

    return {**os.environ, **jupyter.lab_env(), "ELASTICACHE_LAB_HOME": home, "PYTHONUNBUFFERED": "1"}


def measure(labs: Sequence[str], limit_mb: int = LIMIT_MB, timeout: int = 600, use_cgroup: bool = True,
            interval: float = 0.5, log: Any = print) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="elasticache-lab-coursemem-")
    cgroup: MemoryCgroup | None = None
    note = ""
    if use_cgroup and available():
        cgroup = MemoryCgroup(f"elasticache-lab-coursemem-{os.getpid()}", limit_mb * MB).create()
    else:
        note = ("The limit could NOT be enforced (needs root and a memory cgroup): the figures are the summed "
                "RSS/PSS/USS of the run's processes, and nothing was OOM-killed because nothing could be.")
        log(f"[coursemem] {note}")
    started = time.time()
    results: dict[str, str] = {}
    proc = None
    try:
        env = course_env(home)
        argv = [sys.executable, "-m", "helpers.tools.coursemem", "--runner", "--timeout", str(timeout),
                *(["--cgroup", str(cgroup.path), "--cgroup-version", cgroup.version] if cgroup else []), *labs]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                cwd=str(Path(labs[0]).resolve().parents[1]) if labs else None)
        root_pid = proc.pid

        def pids() -> list[int]:
            if cgroup is not None:
                return cgroup.pids()
            import psutil

            from helpers.runtime import process

            found = {root_pid, *descendants(root_pid)}
            with contextlib.suppress(psutil.Error, OSError, ValueError):  # the process table changing meanwhile
                found.update(p.pid for p in process.state_dir_processes(Path(home)))
            return sorted(found)

        final: dict[int, tuple[str, dict[str, int]]] = {}
        kernel_pids: dict[str, int] = {}
        kernel_files: dict[str, str] = {}  # lab -> its kernel's connection file (in the kernel's command line)
        kernel_after: dict[str, float] = {}  # each lab's kernel, USS MB, when its lab finished
        with Sampler(pids, cgroup, interval) as sampler:
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("KERNEL "):
                    _, name, conn = line.split(" ", 2)
                    kernel_files[name] = conn
                elif line.startswith("LAB "):
                    _, name, what, *why = line.split(" ", 3)
                    if what == "start":
                        sampler.lab = name
                        log(f"[coursemem] {name} ...")
                    else:
                        results[name] = what if what == "ok" else f"failed: {' '.join(why)}"
                        snap = sampler.sample()
                        kernel_pids.update(find_kernels(kernel_files, sampler.pids()))
                        if kernel_pids.get(name) in snap:
                            kernel_after[name] = round(snap[kernel_pids[name]][1]["uss"] / MB, 1)
                        log(f"[coursemem] {name}: {results[name]}  (peak in this lab: "
                            f"{sampler.per_lab.get(name, {}).get('rss_mb', 0):.0f} MB summed RSS)")
                elif line == "DONE":
                    sampler.lab = "(end)"
                    time.sleep(2 * interval)
                    final = sampler.sample()
                    proc.stdin.write("quit\n")
                    proc.stdin.flush()
                else:
                    log(f"[runner] {line}")
        proc.wait(timeout=120)
        oom = cgroup.oom_kills() if cgroup else None
        failcnt = cgroup.failcnt() if cgroup else None
        kernel_peak = cgroup.peak_bytes() if cgroup else None
        vanished = sorted({f"{comp} (started in {lab})" for pid, (comp, lab) in sampler.seen.items()
                           if comp in ("kernels", "aws server", "jupyter server") and pid not in final})
        missing = [Path(lab).stem for lab in labs if Path(lab).stem not in results]
        for name in missing:
            results[name] = "failed: not run (the run stopped before it)"
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):  # it exited meanwhile
                proc.kill()
        if cgroup is not None:
            cgroup.remove()
        # Anything the run left under its scratch home (only without a cgroup) is stopped too.
        with contextlib.suppress(OSError, subprocess.SubprocessError):  # the home is removed below anyway
            subprocess.run([sys.executable, "-m", "helpers", "stop"], env={**os.environ, "ELASTICACHE_LAB_HOME": home},
                           capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
    kernel_end = {name: round(final[pid][1]["uss"] / MB, 1) for name, pid in kernel_pids.items() if pid in final}
    return {
        "kernel_uss_mb": {"after_its_lab": kernel_after, "at_end": kernel_end},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started),
        "limit_mb": limit_mb,
        "enforced": cgroup is not None,
        "cgroup": cgroup.version if cgroup else None,
        "note": note,
        "env": {k: os.environ[k] for k in ("MALLOC_ARENA_MAX",) if k in os.environ} | {
            k: v for k, v in course_env(home).items() if k == "MALLOC_ARENA_MAX"},
        "peak": {**{k: round(v, 1) for k, v in sampler.peak.items()},
                 "cgroup_max_usage_mb": round(kernel_peak / MB, 1) if kernel_peak is not None else None,
                 "during": sampler.peak_lab},
        "end": by_component(final),
        "per_lab_peak": sampler.per_lab,
        "oom_kills": oom,
        "failcnt": failcnt,
        "vanished": vanished,
        "labs": results,
        "failed": [k for k, v in results.items() if v != "ok"],
    }


MORE_LABS = 3  # the room the course keeps for labs not written yet


def projection(r: Mapping[str, Any], more: int = MORE_LABS) -> dict[str, Any]:
    """What a lab costs on average (the peak's growth per lab: its kernel, its services, what the AWS
    server and Jupyter gain), and the peak projected with `more` labs of that average size."""
    key = "cgroup_usage_mb" if r.get("enforced") else "pss_mb"
    per_lab = r.get("per_lab_peak", {})
    labs = [k for k in per_lab if not k.startswith("(")]
    kernels = list(r.get("kernel_uss_mb", {}).get("at_end", {}).values())
    peak = r["peak"].get("cgroup_max_usage_mb") or r["peak"].get(key) or 0.0
    if not labs:
        return {}
    base = per_lab.get("(start-up)", {}).get(key, 0.0)
    growth = (max(v.get(key, 0.0) for k, v in per_lab.items() if k in labs) - base) / len(labs)
    projected = peak + more * growth
    return {"figure": key, "labs": len(labs), "start_up_mb": round(base, 1), "per_lab_mb": round(growth, 1),
            "kernel_uss_mb_mean": round(sum(kernels) / len(kernels), 1) if kernels else None,
            "more_labs": more, "projected_peak_mb": round(projected, 1),
            "projected_margin_mb": round(r["limit_mb"] - projected, 1), "fits": projected < r["limit_mb"]}


def report(r: Mapping[str, Any]) -> str:
    p = r["peak"]
    lines = [f"The course ({len(r['labs'])} labs, every tab left open) "
             + (f"inside a {r['limit_mb']} MiB memory cgroup ({r['cgroup']})" if r["enforced"]
                else "WITHOUT an enforced limit") + f", {r['seconds']} s, {r['date']}"]
    if r.get("note"):
        lines.append(f"  note: {r['note']}")
    if p.get("cgroup_max_usage_mb") is not None:
        lines.append(f"  peak, cgroup max usage (page cache included):  {p['cgroup_max_usage_mb']:>7.0f} MB")
        lines.append(f"  peak, cgroup anonymous + shmem:                {p['cgroup_anon_mb']:>7.0f} MB")
    lines.append(f"  peak, summed RSS of every process:             {p['rss_mb']:>7.0f} MB  ({p['during'].get('rss_mb')})")
    lines.append(f"  peak, summed PSS (shared pages counted once):  {p['pss_mb']:>7.0f} MB  ({p['during'].get('pss_mb')})")
    lines.append(f"  peak, summed USS:                              {p['uss_mb']:>7.0f} MB")
    lines.append("  at the end, every tab still open:")
    for comp, row in r["end"].items():
        lines.append(f"    {comp:<15} {row['processes']:>3} processes  RSS {row['rss_mb']:>6.0f} MB  "
                     f"PSS {row['pss_mb']:>6.0f} MB  USS {row['uss_mb']:>6.0f} MB")
    if r["enforced"]:
        lines.append(f"  OOM kills: {r['oom_kills']}   limit hits (failcnt): {r['failcnt']}")
    if r["vanished"]:
        lines.append(f"  gone before the end: {', '.join(r['vanished'])} (kernels: the server keeps at most "
                     "8, see helpers/tools/kernels.py; anything else gone is a failure)")
    pr = r.get("projection") or {}
    if pr:
        k = pr["kernel_uss_mb_mean"]
        lines.append(f"  per lab, on average: {pr['per_lab_mb']:.0f} MB of the peak ({pr['figure']})"
                     + (f"; its kernel alone {k:.0f} MB USS" if k else ""))
        lines.append(f"  with {pr['more_labs']} more labs of that size: {pr['projected_peak_mb']:.0f} MB, "
                     f"{'leaving' if pr['fits'] else 'OVER by'} {abs(pr['projected_margin_mb']):.0f} MB "
                     f"of the {r['limit_mb']} MiB")
    lines.append(f"  labs failed: {', '.join(r['failed']) or 'none'}")
    for name in r["failed"]:
        lines.append(f"    {name}: {r['labs'][name]}")
    return "\n".join(lines)


LABS_GLOB = "[0-9][0-9]_*.ipynb"


def course_labs(root: Path, pattern: str = LABS_GLOB) -> list[str]:
    """Every lab in labs/, in order: a lab added to the course is measured without changing this tool
    (a learner's scratch notebook, an Untitled.ipynb, a checkpoint, is not a lab)."""
    return [str(x) for x in sorted((root / "labs").glob(pattern)) if x.is_file()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.tools.coursemem", description=__doc__.split("\n\n")[0])
    p.add_argument("labs", nargs="*", help="notebooks (default: labs/*.ipynb, in order)")
    p.add_argument("--labs", dest="pattern", default=LABS_GLOB, help="glob of the labs in labs/ (default: all)")
    p.add_argument("--limit-mb", type=int, default=LIMIT_MB)
    p.add_argument("--timeout", type=int, default=600, help="per cell, seconds")
    p.add_argument("--no-cgroup", action="store_true", help="measure only; do not enforce the limit")
    p.add_argument("--out", default=None, help="JSON artifact (default: artifacts/coursemem.json)")
    p.add_argument("--runner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cgroup", default="", help=argparse.SUPPRESS)
    p.add_argument("--cgroup-version", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runner:
        return runner(args.labs, args.timeout, args.cgroup, args.cgroup_version)
    from helpers.runtime.state import repo_root

    root = repo_root()
    labs = args.labs or course_labs(root, args.pattern)
    r = measure(labs, args.limit_mb, args.timeout, not args.no_cgroup)
    r["projection"] = projection(r)
    out = Path(args.out) if args.out else root / "artifacts" / "coursemem.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    print()
    print(report(r))
    print(f"\nWrote {out}")
    return 1 if r["failed"] or r["oom_kills"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
