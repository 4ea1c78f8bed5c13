"""Loopback ports and who answers on them: a free port for a new node, and the probes that tell a
node is ready (its protocol answers, and the process the lab started holds the listening socket).

helpers.runtime.engines re-exports every name here (`engines.free_port`, `engines.probe_redis`, ...).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import psutil

from helpers.runtime import process
from helpers.runtime.state import LabError

LOOPBACK = "127.0.0.1"
CLUSTER_BUS_OFFSET = 10000  # a Redis Cluster node's bus listens on its port + 10000

_HANDED_OUT: dict[int, float] = {}  # port -> when free_port() gave it: nodes started at once get distinct ports
_HANDED_LOCK = threading.Lock()
_PREFERRED: list[int] = []  # ports free_port() hands out first: see preferred_ports()


@contextlib.contextmanager
def preferred_ports(ports: Sequence[int]) -> Iterator[None]:
    """Within this block free_port() hands out these ports first, in order, each one only if it is free:
    a resource started again gets its old addresses back where it can."""
    with _HANDED_LOCK:
        _PREFERRED[:] = list(ports)
    try:
        yield
    finally:
        with _HANDED_LOCK:
            _PREFERRED.clear()


def _reusable(port: int) -> bool:
    """Whether a server could listen on `port` now (SO_REUSEADDR, as the engines bind: a port whose
    last connections are in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, bus_offset: int | None = None, avoid: Sequence[int] = ()) -> int:
    """A free loopback TCP port (and port+bus_offset free too, for Redis Cluster's bus), never one handed
    out in the last 30 s (nodes started in parallel each get their own)."""
    with _HANDED_LOCK:
        now = time.monotonic()
        for port, when in list(_HANDED_OUT.items()):
            if now - when > 30:
                del _HANDED_OUT[port]
        taken = set(_HANDED_OUT) | {p + (bus_offset or 0) for p in _HANDED_OUT} | \
            {p + CLUSTER_BUS_OFFSET for p in _HANDED_OUT}
        while _PREFERRED:
            port = _PREFERRED.pop(0)
            if port in avoid or port in taken or not _reusable(port):
                continue
            if bus_offset is None or (port + bus_offset < 65536 and _reusable(port + bus_offset)):
                _HANDED_OUT[port] = now
                return port
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = s.getsockname()[1]
            if port in avoid or port in taken or (bus_offset is not None and port + bus_offset in taken):
                continue
            if bus_offset is None or (port + bus_offset < 65536 and port_is_free(port + bus_offset)):
                _HANDED_OUT[port] = now
                return port
    raise LabError("Could not find a free loopback port. Is the machine out of ephemeral ports?")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


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
    if os.path.isdir("/proc/net"):
        return _linux_listens_on([p.pid for p in procs], port)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for conn in p.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    return False


def _linux_listens_on(pids: Sequence[int], port: int) -> bool:
    """listens_on() from /proc: the inodes of the sockets listening on `port`, found among the pids' open
    files. psutil.net_connections() decodes every socket of the machine for each call (0.1 s with a few
    thousand sockets in TIME_WAIT, once per node started)."""
    inodes: set[str] = set()
    hexport = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh, None)
            for line in fh:
                f = line.split()
                if len(f) > 9 and f[3] == "0A" and f[1].endswith(hexport):  # 0A: LISTEN
                    inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return False
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fd_dir}/{fd}") in inodes:
                        return True
    return False
