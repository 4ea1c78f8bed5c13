"""Stable endpoints of replication groups: one loopback address for the life of the resource.

On ElastiCache a replication group's PrimaryEndpoint, ReaderEndpoint and ConfigurationEndpoint are
DNS names that never change: after a failover, a node replacement or scaling, the name resolves to
another node, and the old primary drops its client connections, so an application that reconnects
after an error finds the new primary at the same address.

Locally each of those endpoints is a `Forwarder`: a loopback TCP listener (a thread of the local
AWS endpoint's process) that picks a target when a client connects, as a DNS lookup does, and then
copies bytes both ways. The control plane tells it the current targets (`set_targets`): the primary,
the healthy replicas (connections are spread over them in turn), or any live cluster node. When a
node stops being a target (a primary demoted by a failover), the forwarder closes the connections it
holds to that node, which is what a client sees on AWS when the old primary drops its connections.

The one honest difference from DNS: the bytes pass through this process. A DNS name costs nothing
after the lookup; here every command makes one extra loopback hop (a few microseconds), and the
forwarder lives in the local AWS endpoint's process (restarted, it opens the same ports again when
they are still free: see restart.py). TLS passes through untouched: the client still talks TLS to the node.

While a group's TransitEncryptionMode is `preferred` (models/transit.py), each node has a plaintext and a TLS
listener, and the forwarder takes both kinds of client on its one address, as ElastiCache's endpoints do then:
it reads a new connection's first byte without consuming it (a TLS handshake starts with a ClientHello
record, byte 0x16; a RESP command never does) and forwards TLS clients to the node's TLS listener, the others
to its plaintext one.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time

from helpers.runtime.relay import LOOPBACK, LoopbackListener, close_all, splice

__all__ = ["LOOPBACK", "Forwarder", "Target"]

Target = tuple[str, int]
TLS_HANDSHAKE = 0x16  # the first byte of every TLS record that opens a handshake (a ClientHello)
FIRST_BYTE_WAIT = 30.0  # how long a client connected to a `preferred` endpoint may wait before it speaks


class Forwarder(LoopbackListener):
    """A loopback listener that forwards each connection to one of the current targets."""

    def __init__(self, name: str, wait_for_target: float = 5.0, port: int = 0):
        self.name = name
        self.wait_for_target = wait_for_target  # a connection made while no target exists waits this long
        self._targets: list[Target] = []
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._links: dict[Target, set[tuple[socket.socket, socket.socket]]] = {}
        self._tls_of: dict[Target, Target] = {}  # a target's TLS listener, while the group is `preferred`
        super().__init__(f"endpoint-{name}", port=port)

    @property
    def targets(self) -> list[Target]:
        with self._lock:
            return list(self._targets)

    def set_targets(self, targets: list[Target], tls_of: dict[Target, Target] | None = None) -> None:
        """The nodes new connections go to; connections held to any other node are closed. `tls_of`: each
        target's TLS listener, when the nodes take both TLS and plaintext clients (TransitEncryptionMode
        preferred): a client that opens with a TLS handshake is forwarded there."""
        with self._lock:
            self._targets = list(targets)
            self._tls_of = dict(tls_of or {})
            stale = [pair for t, pairs in self._links.items() if t not in self._targets for pair in pairs]
            self._changed.notify_all()
        for pair in stale:
            close_all(*pair)

    def connections(self, target: Target | None = None) -> int:
        with self._lock:
            return sum(len(p) for t, p in self._links.items() if target is None or t == target)

    def close(self) -> None:
        super().close()
        with self._lock:
            pairs = [pair for p in self._links.values() for pair in p]
            self._changed.notify_all()
        for pair in pairs:
            close_all(*pair)

    # --- forwarding ---------------------------------------------------------------------------
    def _pick(self) -> Target | None:
        deadline = time.monotonic() + self.wait_for_target
        with self._lock:
            while not self._targets and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            if not self._targets:
                return None
            return self._targets[next(self._turn) % len(self._targets)]

    def serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = self._pick()
        if target is None:
            conn.close()  # as a name that resolves to nothing: the client retries
            return
        with self._lock:
            tls_listener = self._tls_of.get(target)
        address = target
        if tls_listener is not None:
            address = self._by_first_byte(conn, target, tls_listener)
            if address is None:
                return
        try:
            node = socket.create_connection(address, timeout=3)
        except OSError:
            conn.close()
            return
        node.settimeout(None)
        node.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (conn, node)
        with self._lock:
            if target not in self._targets:  # demoted while we connected
                close_all(*pair)
                return
            self._links.setdefault(target, set()).add(pair)
        try:
            splice(conn, node)
        finally:
            with self._lock:
                self._links.get(target, set()).discard(pair)
            close_all(*pair)


    @staticmethod
    def _by_first_byte(conn: socket.socket, plain: Target, tls_listener: Target) -> Target | None:
        """The listener a client goes to, from its first byte (peeked, not consumed): TLS or plaintext.
        None (the connection closed) when it left or said nothing in FIRST_BYTE_WAIT seconds."""
        conn.settimeout(FIRST_BYTE_WAIT)
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if not first:
            close_all(conn)
            return None
        conn.settimeout(None)
        return tls_listener if first[0] == TLS_HANDSHAKE else plain
