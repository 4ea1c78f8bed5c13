"""Finding engine binaries and running them as loopback-only daemons.

A node is one OS process listening on one loopback port. Nodes are started detached from the
caller (a kernel may die, the node lives on) and identified by pid *and* start time, so a
recycled pid is never mistaken for a running node (helpers.runtime.process does the spawning,
waiting and stopping; this module knows ports, binaries and the engines' protocols).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import process
from helpers.runtime.state import LabError

LOOPBACK = "127.0.0.1"

# Environment variables that name a binary explicitly (checked before PATH).
BINARY_ENV = {
    "redis": "ELASTICACHE_LAB_REDIS_SERVER",
    "memcached": "ELASTICACHE_LAB_MEMCACHED",
}
BINARY_NAMES = {
    "redis": ("valkey-server", "redis-server"),
    "memcached": ("memcached",),
}
EXTRA_DIRS = ("/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin", "/opt/homebrew/sbin")


def install_hint(kind: str) -> str:
    pkgs = {"redis": "redis-server redis-tools", "memcached": "memcached"}[kind]
    brew = {"redis": "redis", "memcached": "memcached"}[kind]
    if sys.platform == "darwin":
        return f"run `make setup`, or `brew install {brew}`"
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"run `make setup`, or `{sudo}apt-get install -y {pkgs}`"


def find_binary(kind: str) -> str:
    """Path of the server binary for `kind` ("redis" or "memcached"), or a LabError saying how to get it."""
    env = BINARY_ENV[kind]
    named = os.environ.get(env)
    if named:
        path = shutil.which(named) or (named if os.access(named, os.X_OK) else None)
        if not path:
            raise LabError(f"{env}={named!r} does not name an executable file. Fix or unset {env}.")
        return path
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_DIRS])
    for name in BINARY_NAMES[kind]:
        path = shutil.which(name, path=search)
        if path:
            return path
    names = " or ".join(BINARY_NAMES[kind])
    raise LabError(f"{names} not found on PATH — {install_hint(kind)} (or set {env} to the binary's path).")


def binary_version(path: str) -> str:
    """The version string a server binary reports (e.g. 'Redis 7.0.15', 'memcached 1.6.18')."""
    flag = "-V" if Path(path).name.startswith("memcached") else "--version"
    out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10).stdout.strip()
    if out.startswith("Redis server v=") or out.startswith("Valkey server v="):
        engine = out.split()[0]
        return f"{engine} {out.split('v=')[1].split()[0]}"
    return out


def free_port(*, bus_offset: int | None = None, avoid: Sequence[int] = ()) -> int:
    """A free loopback TCP port (and port+bus_offset free too, for Redis Cluster's bus)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port in avoid:
            continue
        if bus_offset is None:
            return port
        if port + bus_offset < 65536 and port_is_free(port + bus_offset):
            return port
    raise LabError("Could not find a free loopback port. Is the machine out of ephemeral ports?")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


@dataclass
class Node:
    """One running process of a service, as recorded in the state directory."""

    name: str
    kind: str  # redis | memcached | sentinel | aws
    role: str  # standalone | primary | replica | sentinel | node | endpoint ...
    host: str
    port: int
    pid: int
    create_time: float
    argv: list[str]
    workdir: str
    log: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    # --- liveness -------------------------------------------------------------------------
    def process(self) -> psutil.Process | None:
        """The live process, or None when it is gone (exited, killed, zombie or pid reused)."""
        return process.find(self.pid, self.create_time)

    def alive(self) -> bool:
        return self.process() is not None

    def paused(self) -> bool:
        proc = self.process()
        return bool(proc and proc.status() == psutil.STATUS_STOPPED)

    # --- fault injection -------------------------------------------------------------------
    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the node abruptly (SIGKILL by default), like a crashed host."""
        proc = self.process()
        if proc:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
                if sig in (signal.SIGKILL, signal.SIGTERM):
                    process.wait_gone(proc, 10)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): it keeps its port but answers nothing, like a hung host."""
        proc = self.process()
        if not proc:
            raise LabError(f"{self.name} is not running, so it cannot be paused.")
        proc.suspend()
        deadline = time.monotonic() + 2  # the signal is delivered asynchronously
        while time.monotonic() < deadline and proc.status() != psutil.STATUS_STOPPED:
            time.sleep(0.01)

    def resume(self) -> None:
        proc = self.process()
        if proc:
            proc.resume()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then forcefully; never leave the process (or its children) behind."""
        process.stop_tree(self.process(), timeout)

    def log_tail(self, lines: int = 15) -> str:
        return process.tail(self.log, lines)


Probe = Callable[[str, int], bool]


def probe_redis(host: str, port: int) -> bool:
    """True when a Redis-protocol server answers (PONG, or an auth error: it is up either way)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            data = s.recv(64)
    except OSError:
        return False
    return data.startswith((b"+PONG", b"-NOAUTH", b"-WRONGPASS", b"-ERR AUTH", b"-DENIED", b"-NOPERM"))


def probe_memcached(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"version\r\n")
            data = s.recv(64)
    except OSError:
        return False
    # With SASL on, memcached closes text-protocol connections or answers an error: still up.
    return data.startswith((b"VERSION", b"CLIENT_ERROR", b"ERROR")) or data == b""


def probe_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listens_on(proc: process.Process | psutil.Process, port: int) -> bool:
    """True when `proc` itself (or a process it started) holds the listening socket on `port`.

    A probe that answers only proves that *some* server speaks the protocol there: another
    program may have taken the port while the lab's node was down."""
    root = proc.proc if isinstance(proc, process.Process) else proc
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for conn in p.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    return False


def spawn_ready(argv: Sequence[str], *, cwd: Path, log: Path, host: str, port: int, probe: Probe,
                env: dict[str, str] | None = None, timeout: float = 20.0) -> process.Process:
    """Start a server and wait until it is ready on `port`; PortInUse when another program holds it."""
    try:
        proc = process.spawn(argv, cwd=cwd, log=log, env=env)
    except process.Exited as exc:
        _raise_port_in_use(exc, port)
        raise
    wait_ready(proc, host, port, probe, timeout=timeout)
    return proc


def _raise_port_in_use(exc: process.Exited, port: int) -> None:
    text = exc.log
    if "Address already in use" in text or "bind" in text.lower() and "in use" in text.lower():
        raise PortInUse(port) from None


def wait_ready(proc: process.Process, host: str, port: int, probe: Probe, timeout: float = 20.0) -> None:
    """Wait until the node answers on its port *and* holds that port itself; a port another
    program holds is a PortInUse (try another)."""

    def ready() -> bool:
        return probe(host, port) and listens_on(proc, port)

    try:
        proc.wait_ready(ready, what=f"The server on {host}:{port}", timeout=timeout)
    except process.Exited as exc:
        _raise_port_in_use(exc, port)
        raise


class PortInUse(LabError):
    def __init__(self, port: int):
        super().__init__(f"Port {port} on {LOOPBACK} is already in use by another program.")
        self.port = port


def start_node(
    *,
    name: str,
    kind: str,
    role: str,
    argv_for_port: Callable[[int], list[str]],
    workdir: Path,
    probe: Probe,
    port: int | None = None,
    bus_offset: int | None = None,
    env: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    timeout: float = 20.0,
) -> Node:
    """Start one node on `port` (or a free one), retrying on another port if it was taken meanwhile."""
    log = workdir / f"{name}.log"
    fixed = port is not None
    for _attempt in range(5):
        chosen = port if fixed else free_port(bus_offset=bus_offset)
        argv = argv_for_port(chosen)
        try:
            proc = spawn_ready(argv, cwd=workdir, log=log, host=LOOPBACK, port=chosen, probe=probe, env=env,
                               timeout=timeout)
        except PortInUse:
            if fixed:
                raise PortInUse(chosen) from None
            continue
        return Node(name=name, kind=kind, role=role, host=LOOPBACK, port=chosen, pid=proc.pid,
                    create_time=proc.create_time, argv=list(argv), workdir=str(workdir), log=str(log),
                    extra=dict(extra or {}))
    raise LabError(f"Could not start {name}: every port tried was taken. Last log lines:\n{process.tail(log)}")


def restart_node(node: Node, probe: Probe, env: dict[str, str] | None = None, timeout: float = 20.0) -> Node:
    """Start a dead node again with its recorded command line, on its recorded port; if another
    program holds that port now, on a fresh port (said in one line), never talking to that program."""
    for _attempt in range(5):
        try:
            proc = spawn_ready(node.argv, cwd=Path(node.workdir), log=Path(node.log), host=node.host, port=node.port,
                               probe=probe, env=env, timeout=timeout)
        except PortInUse:
            old = node.port
            move_port(node, free_port(bus_offset=CLUSTER_BUS_OFFSET if _is_cluster_node(node) else None))
            notice(f"Port {old} was taken by another program, so {node.name} was restarted on port {node.port}.")
            continue
        node.pid = proc.pid
        node.create_time = proc.create_time
        return node
    raise LabError(f"Could not restart {node.name}: every port tried was taken. Last log lines:\n{node.log_tail()}")


CLUSTER_BUS_OFFSET = 10000


def _config_file(node: Node) -> Path | None:
    path = node.extra.get("config_file") or (node.argv[1] if len(node.argv) > 1 else "")
    return Path(path) if str(path).endswith(".conf") and Path(path).is_file() else None


def _is_cluster_node(node: Node) -> bool:
    conf = _config_file(node)
    return bool(conf) and "cluster-enabled yes" in conf.read_text()


def move_port(node: Node, port: int) -> None:
    """Point a node's command line (memcached -p, --port) or config file (port, tls-port) at `port`."""
    old = str(node.port)
    argv = list(node.argv)
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-p", "--port") and argv[i + 1] == old:
            argv[i + 1] = str(port)
    node.argv = argv
    conf = _config_file(node)
    if conf is not None:
        lines = conf.read_text().splitlines()
        lines = [f"{ln.split()[0]} {port}" if ln.split()[:2] in (["port", old], ["tls-port", old]) else ln
                 for ln in lines]
        from helpers.runtime.state import write_secret

        write_secret(conf, "\n".join(lines) + "\n")
    node.port = port


def notice(message: str) -> None:
    """One line for the learner about something the lab did on its own (a restart, a new port)."""
    print(message, file=sys.stderr, flush=True)


# How to tell that a node of each engine answers (a topology may declare a probe of its own).
PROBES: dict[str, Probe] = {"redis": probe_redis, "sentinel": probe_redis, "memcached": probe_memcached}
