#!/usr/bin/env python3
"""Run a learner's command in a private network namespace, as that learner (run as root).

    isolate.py --user NAME [--publish 127.0.0.1:OUTER:INNER]... [--reach INNER:HOST:PORT]...
               [--stop-command CMD] -- COMMAND ARGS...

Why: on a server shared by a class, loopback is not a boundary. Every engine, forwarder and the
local AWS endpoint a learner starts listens on 127.0.0.1, where any other Unix user could connect.
In a network namespace of its own, the learner's 127.0.0.1 is theirs alone: the labs run
unchanged (no AUTH added to the nodes lab 13 creates through the API, lab 11's open node stays
open to its owner), and no other user can reach them (joining a namespace needs CAP_SYS_ADMIN).

The namespace has only a loopback interface. Two kinds of bridge, run by this (root) process:
  --publish 127.0.0.1:OUTER:INNER   listen on the host's OUTER port, connect to INNER inside
                                    (the hub's proxy reaches the single-user server this way; the
                                    server itself checks the hub's OAuth token, as with any spawner)
  --reach INNER:HOST:PORT           listen on INNER inside, connect to HOST:PORT on the host
                                    (the single-user server reaches the hub's API this way)

The command runs with the learner's uid, gid and groups (the environment is passed on as given;
the parent's death sends it SIGTERM). SIGINT/SIGTERM/SIGHUP are passed on to it. When it exits,
--stop-command (e.g. `python -m helpers stop`) runs as the learner inside the namespace, then
every process still in the namespace is ended (TERM, then KILL after 10 s): nothing a learner
started outlives the server, as on Binder. Standard library only; Linux 5.3+; Python 3.9+.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import importlib.util
import os
import pwd
import shlex
import signal
import socket
import struct
import sys
import time
from pathlib import Path


def _load_relay():
    """The project's byte relay (helpers/runtime/relay.py, standard library only), loaded by its path:
    this script runs as root with the system Python, without the lab's packages."""
    path = Path(__file__).resolve().parent.parent / "helpers" / "runtime" / "relay.py"
    spec = importlib.util.spec_from_file_location("elasticache_lab_relay", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


relay = _load_relay()

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare_net() -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def become(user: pwd.struct_passwd) -> None:
    """Drop to the learner for good (real, effective and saved ids; supplementary groups)."""
    os.initgroups(user.pw_name, user.pw_gid)
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("could not drop root")
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # after setuid: a uid change clears it
    try:
        os.chdir(user.pw_dir)
    except OSError:
        os.chdir("/tmp")


def namespace_members(ns_ino: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == ns_ino:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def sweep(ns_ino: int, grace: float = 10.0) -> int:
    """End every process left in the namespace; the number ended."""
    members = namespace_members(ns_ino)
    for pid in members:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and namespace_members(ns_ino):
        time.sleep(0.2)
    for pid in namespace_members(ns_ino):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and namespace_members(ns_ino):
        time.sleep(0.1)
    return len(members)


def run_in_namespace(ns_fd: int, user: pwd.struct_passwd, argv: list[str], timeout: float) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            setns(ns_fd)
            become(user)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def bridge(connect_ns: int | None, home_ns: int, host: str, port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        out = socket_in(connect_ns, home_ns)
        out.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(out, (host, port)), 10)
        except (OSError, asyncio.TimeoutError):
            out.close()
            writer.close()
            return
        await relay.relay_both((reader, writer), await asyncio.open_connection(sock=out))
    return handle


def socket_in(ns: int | None, home_ns: int) -> socket.socket:
    """A TCP socket of namespace `ns` (None: this process's own). A socket belongs to the namespace it
    was created in: create it there, then come back."""
    if ns is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    setns(ns)
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        setns(home_ns)


def listener(ns: int | None, home_ns: int, host: str, port: int) -> socket.socket:
    s = socket_in(ns, home_ns)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    s.setblocking(False)
    return s


async def serve(child: int, child_ns: int, home_ns: int, publish: list[tuple[str, int, int]],
                reach: list[tuple[int, str, int]], go_w: int) -> int:
    loop = asyncio.get_running_loop()
    servers = []
    for host, outer, inner in publish:
        sock = listener(None, home_ns, host, outer)
        servers.append(await asyncio.start_server(bridge(child_ns, home_ns, "127.0.0.1", inner), sock=sock))
    for inner, host, port in reach:
        sock = listener(child_ns, home_ns, "127.0.0.1", inner)
        servers.append(await asyncio.start_server(bridge(None, home_ns, host, port), sock=sock))
    os.write(go_w, b"1")  # the listeners are up: the command may start
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda s=sig: _forward(child, s))
    exited: asyncio.Future = loop.create_future()
    pidfd = os.pidfd_open(child)

    def reap() -> None:
        loop.remove_reader(pidfd)
        _, status = os.waitpid(child, 0)
        if not exited.done():
            exited.set_result(os.waitstatus_to_exitcode(status))
    loop.add_reader(pidfd, reap)
    code = await exited
    for srv in servers:
        srv.close()
    return code


def _forward(child: int, sig: int) -> None:
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass


def _addr(spec: str, kind: str) -> tuple:
    parts = spec.split(":")
    if kind == "publish" and len(parts) == 3:
        return parts[0], int(parts[1]), int(parts[2])
    if kind == "reach" and len(parts) == 3:
        return int(parts[0]), parts[1], int(parts[2])
    raise argparse.ArgumentTypeError(f"bad --{kind} {spec!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="isolate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", required=True)
    parser.add_argument("--publish", action="append", default=[], type=lambda s: _addr(s, "publish"))
    parser.add_argument("--reach", action="append", default=[], type=lambda s: _addr(s, "reach"))
    parser.add_argument("--stop-command", default="", help="run as the learner in the namespace after COMMAND exits")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    if os.geteuid() != 0:
        parser.error("must run as root (it creates a network namespace, then becomes --user)")
    user = pwd.getpwnam(args.user)
    if user.pw_uid == 0:
        parser.error("--user must not be root")
    home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare_net()
            loopback_up()
            os.write(ready_w, b"1")
            if os.read(go_r, 1) != b"1":
                os._exit(1)
            become(user)
            os.execvp(command[0], command)
        except BaseException as exc:  # noqa: BLE001 (the child must never return into the parent's code)
            print(f"isolate.py: {exc}", file=sys.stderr)
        os._exit(127)
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) != b"1":
        os.waitpid(child, 0)
        return 1
    child_ns = os.open(f"/proc/{child}/ns/net", os.O_RDONLY)
    ns_ino = os.fstat(child_ns).st_ino
    code = 1
    try:
        code = asyncio.run(serve(child, child_ns, home_ns, args.publish, args.reach, go_w))
    except BaseException:
        _forward(child, signal.SIGKILL)
        raise
    finally:
        if args.stop_command:
            run_in_namespace(child_ns, user, shlex.split(args.stop_command), timeout=90)
        sweep(ns_ino)
    return code


if __name__ == "__main__":
    sys.exit(main())
