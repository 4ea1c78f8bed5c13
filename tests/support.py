"""What many test modules share: the ElastiCache client fixture, AWS error codes, and the raw checks of
the serverless endpoints (their status, their engines' pids, a TLS socket, process memory).

A plain module (tests/ is on sys.path when pytest runs), so no test module imports another.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import psutil
import pytest
from botocore.exceptions import ClientError

from helpers.aws import client as cpc
from helpers.aws import endpoint as localaws
from helpers.runtime import tls


def elasticache_fixture(prefix: str):
    """A module-scoped `ec` fixture: an ElastiCache client of the local endpoint; at the end of the module,
    every resource whose name starts with `prefix` is deleted (through a fresh client: a test may have
    restarted the endpoint)."""

    @pytest.fixture(scope="module")
    def ec():
        client = localaws.client("elasticache")
        yield client
        cpc.cleanup(localaws.client("elasticache"), prefix)

    return ec


def error_of(call, **kwargs) -> tuple[str, str, int]:
    """The AWS error a call answers: (code, message, HTTP status); fails the test if it succeeds."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"].get("Message", ""), err["ResponseMetadata"]["HTTPStatusCode"]


def code_of(call, **kwargs) -> str:
    """The AWS error code a call answers; fails the test if it succeeds."""
    return error_of(call, **kwargs)[0]


# --- the serverless endpoints, seen from outside ----------------------------------------------------------
def status_of(name: str) -> dict:
    import helpers.runtime.serverless as sl
    from helpers.runtime import services

    svc = services.get(f"aws-sl-{name}")
    return sl.status(svc) if svc else {}


def engine_pids(name: str) -> list[int]:
    st = status_of(name)
    return [st["pid"]] + [b[k] for b in st.get("backends", []) for k in ("pid", "replica_pid") if b.get(k)] if st else []


def alive(pids: list[int]) -> list[int]:
    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def tls_socket(cache: dict) -> ssl.SSLSocket:
    """A raw TLS connection to the cache's endpoint, verified against the lab's CA (as a client library's)."""
    ep = cache["Endpoint"]
    sock = socket.create_connection((ep["Address"], ep["Port"]), timeout=10)
    return tls.client_context(client_cert=False).wrap_socket(sock, server_hostname=ep["Address"])


def until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the peer sends until it closes (True), or until 3 s of silence (False: still open)."""
    out = b""
    sock.settimeout(3)
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        return out, False
    except OSError:  # a reset: closed too
        pass
    return out, True


def send_until_refused(sock: socket.socket, head: bytes, total: int) -> int:
    """`head`, then up to `total` bytes of value in 1 MB chunks, until the peer stops reading; bytes sent."""
    sent = 0
    try:
        sock.sendall(head)
        chunk = b"x" * (1 << 20)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    return sent


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the most ever resident) of a process, in kB (/proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def wait_global(ec, gid: str, gone_ok: bool = False, timeout: float = 60) -> dict | None:
    """A global datastore once it is available with every member associated (None: gone, with gone_ok)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            gds = ec.describe_global_replication_groups(GlobalReplicationGroupId=gid, ShowMemberInfo=True)[
                "GlobalReplicationGroups"][0]
        except ClientError:
            if gone_ok:
                return None
            raise
        if gds["Status"] == "available" and all(m["Status"] == "associated" for m in gds["Members"]):
            return gds
        time.sleep(0.1)
    raise AssertionError(f"{gid} not available within {timeout} s")
