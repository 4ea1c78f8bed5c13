"""Memcached Auto Discovery: the configuration endpoint of a local Memcached cache cluster.

On ElastiCache the configuration endpoint is a DNS name that resolves to one of the cluster's
nodes, and every node answers ElastiCache's extra ASCII command

    config get cluster

with the cluster's node list and a version number that grows each time a node is added or
removed, so a client can find every node from one address and follow scaling. Stock memcached
does not know that command, so locally the configuration endpoint is a small loopback server
(a thread in the local AWS endpoint's process): it answers `config get cluster` itself and hands
any other connection to the cluster's first node unchanged, so `get`/`set` through the
configuration endpoint work as they do on AWS.

Reply format (AWS, "Adding Auto Discovery to your Memcached client library"):

    CONFIG cluster 0 <bytes>\\r\\n
    <version>\\n
    <host>|<ip>|<port> <host>|<ip>|<port> ...\\n
    \\r\\n
    END\\r\\n
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from helpers.runtime.relay import LOOPBACK, LoopbackListener, splice

__all__ = ["LOOPBACK", "ConfigEndpoint", "config_reply"]

Endpoints = Callable[[], list[tuple[str, int]]]


def config_reply(version: int, nodes: list[tuple[str, int]]) -> bytes:
    """The bytes a node sends for `config get cluster` (hostname and IP are both the loopback address)."""
    body = f"{version}\n" + " ".join(f"{host}|{host}|{port}" for host, port in nodes) + "\n"
    return f"CONFIG cluster 0 {len(body)}\r\n{body}\r\nEND\r\n".encode()


class ConfigEndpoint(LoopbackListener):
    """A loopback server answering `config get cluster`, forwarding everything else to the first node."""

    def __init__(self, nodes: Endpoints, port: int = 0):
        self._nodes = nodes
        self.version = 1
        super().__init__("config-endpoint", backlog=64, port=port)  # port: an address kept across a restart

    def bump(self) -> None:
        """The node list changed: clients polling the endpoint see a new version."""
        self.version += 1

    def serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self.closed:
                while b"\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                    if len(buf) > 65536:
                        return
                line, _, rest = buf.partition(b"\n")
                command = line.strip().lower()
                if command == b"config get cluster":
                    conn.sendall(config_reply(self.version, self._nodes()))
                    buf = rest
                elif command == b"quit":
                    return
                else:  # an ordinary memcached command: this connection now talks to the first node
                    self._forward(conn, buf)
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, conn: socket.socket, pending: bytes) -> None:
        nodes = self._nodes()
        if not nodes:
            conn.sendall(b"SERVER_ERROR no node of this cluster is available\r\n")
            return
        node = socket.create_connection(nodes[0], timeout=5)
        node.settimeout(None)
        try:
            node.sendall(pending)
            splice(conn, node)
        finally:
            node.close()
