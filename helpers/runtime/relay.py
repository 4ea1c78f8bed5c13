"""Byte relays and loopback listeners, written once for every place that forwards connections.

Users:
- the stable endpoints of replication groups (`aws.controlplane.endpoints.Forwarder`) and the
  Memcached configuration endpoint (`aws.controlplane.discovery.ConfigEndpoint`): threads, `splice`
  and `LoopbackListener`;
- the TLS front of engines built without TLS (`runtime.tlsfront`): asyncio, `relay_both`;
- the classroom's network-namespace bridges (`classroom/isolate.py`): asyncio, `relay_both`. That
  script runs as root with the system Python and loads this file by its path, so this module uses
  the standard library only and imports nothing from the project.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


# --- asyncio ------------------------------------------------------------------------------------

async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until end of stream, then pass the end on: a half-close where the
    transport allows it (plain TCP and Unix sockets), a close where it does not (TLS)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):  # ssl.SSLError is an OSError
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, RuntimeError):
            writer.close()


async def relay_both(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                     b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Relay two connections to each other until both directions have ended, then close both."""
    await asyncio.gather(relay(a[0], b[1]), relay(b[0], a[1]))
    for writer in (a[1], b[1]):
        with contextlib.suppress(OSError, RuntimeError):  # already closed, or its loop is closing
            writer.close()


# --- threads ------------------------------------------------------------------------------------

def _copy(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):  # the other direction ends too
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def close_all(*socks: socket.socket) -> None:
    """Shut down and close sockets, whatever state they are in."""
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between two connected sockets until either side ends (the caller closes)."""
    back = threading.Thread(target=_copy, args=(b, a), daemon=True)
    back.start()
    _copy(a, b)
    back.join()


class LoopbackListener:
    """A TCP listener on a free loopback port (or `port`, when it is free); each accepted connection is served by `serve(conn)`
    in a thread of its own (daemon threads of the process that owns the listener)."""

    def __init__(self, name: str, backlog: int = 128, port: int = 0):
        self._closed = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # the port asked for (an address kept across a restart), else any free one
            self._sock.bind((LOOPBACK, port))
        except OSError:
            self._sock.bind((LOOPBACK, 0))
        self._sock.listen(backlog)
        self.host, self.port = self._sock.getsockname()[:2]
        threading.Thread(target=self._accept, name=f"{name}-{self.port}", daemon=True).start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()
