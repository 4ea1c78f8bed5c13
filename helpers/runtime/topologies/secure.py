"""Secure topologies (AUTH, ACL users, TLS, Memcached auth), their clients, and their users' secrets.

Registered topologies, started like any other with `helpers.start(topology, name=...)`:

- "redis-auth": the ElastiCache AUTH token. The default user has a generated password.
- "redis-acl": ElastiCache RBAC users and user groups. The `default` user is switched off,
  an `admin` user runs the lab itself, and `set_user()` adds least-privilege users.
- "redis-tls": TLS only (the plaintext port is closed), with optional client certificates.
  `cert="expired" | "wrong-host" | "other-ca"` serves a deliberately bad certificate.
- "memcached-sasl": Memcached with authentication (see `_memcached_auth` for why it is
  memcached 1.6's ASCII auth file and not binary-protocol SASL).
- "memcached-tls": Memcached with TLS (-Z), when the installed binary was built with it.

Each declares its client (TLS settings and the admin user filled in) and its readiness probe.

Secrets: passwords are generated per learner and kept in owner-only files (0600) in the
service's directory; config files hold only their SHA-256 hashes (Redis accepts `#<sha256>`),
ACL changes send hashes, never the plaintext, and nothing is put on a command line. The
security lab's tools that look for leaks are in `helpers.topics.security`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from helpers.runtime import engines, state
from helpers.runtime import tls as tls_mod
from helpers.runtime.engines import Node
from helpers.runtime.service import Service, memcached_argv, new_password, redis_client_for, redis_conf
from helpers.runtime.state import LabError
from helpers.runtime.topologies.registry import topology

ADMIN = "admin"
MEMCACHED_USER = "lab"
CERTS = ("lab", "expired", "wrong-host", "other-ca")


# --- showing secrets safely ---------------------------------------------------------------------

def fingerprint(secret: str) -> str:
    """A short, non-reversible tag to tell two secrets apart without showing either."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def mask(secret: str | None) -> str:
    """What the lab prints instead of a password or token."""
    if not secret:
        return "(none)"
    return f"****** ({len(secret)} chars, fingerprint {fingerprint(secret)})"


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- password files --------------------------------------------------------------------------------

def _secrets_dir(workdir: Path) -> Path:
    path = workdir / "secrets"
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _read_or_make(path: Path) -> str:
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = new_password()
    state.write_secret(path, value)
    return value


def _previous(path: Path) -> Path:
    return path.with_name(path.name + ".previous")


def password_file(svc: Service, user: str = "default") -> Path:
    """The owner-only file holding `user`'s current password on `svc`."""
    if svc.topology == "redis-acl" and svc.meta.get("secrets_dir"):
        return Path(svc.meta["secrets_dir"]) / user
    if user == "default" and svc.meta.get("password_file"):
        return Path(svc.meta["password_file"])
    raise LabError(f"{svc.name} ({svc.topology}) has no password for user {user!r}. ACL users need "
                   "start('redis-acl', ...); an AUTH token needs start('redis-auth', ...).")


def user_password(svc: Service, user: str = "default") -> str:
    """A user's current password, read from its owner-only file (never print it: use mask())."""
    path = password_file(svc, user)
    if not path.exists():
        raise LabError(f"{svc.name} has no password file for user {user!r}; create the user with set_user().")
    return path.read_text().strip()


# --- Redis configuration ----------------------------------------------------------------------------

def _cert_files(cert: str) -> tuple[Path, Path]:
    if cert == "lab":
        m = tls_mod.tls_material()
        return m.cert_file, m.key_file
    b = tls_mod.bad_material()
    return {"expired": (b.expired_cert_file, b.expired_key_file),
            "wrong-host": (b.wrong_host_cert_file, b.wrong_host_key_file),
            "other-ca": (b.other_ca_cert_file, b.other_ca_key_file_server)}[cert]


def _default_user_line(workdir: Path) -> str:
    """The default user with the current (and, during a rotation, the previous) token's hash."""
    path = workdir / "password"
    hashes = [f"#{sha256_hex(path.read_text().strip())}"]
    prev = _previous(path)
    if prev.exists():
        hashes.append(f"#{sha256_hex(prev.read_text().strip())}")
    return " ".join(["default", "on", *hashes, "~*", "&*", "+@all"])


def _write_redis_conf(topo: str, workdir: Path, port: int, options: dict[str, Any]) -> Path:
    conf: dict[str, Any] = dict(options.get("config") or {})
    if options.get("tls") or topo == "redis-tls":
        conf.update(tls_mod.redis_tls_config(port, options.get("auth_clients", "optional")))
        cert, key = _cert_files(options.get("cert", "lab"))
        conf["tls-cert-file"], conf["tls-key-file"] = str(cert), str(key)
    if topo == "redis-acl":
        conf["aclfile"] = str(workdir / "users.acl")
    elif options.get("password") or topo == "redis-auth":
        conf["user"] = [_default_user_line(workdir)]
    return redis_conf(port, workdir, conf)


def _write_aclfile(workdir: Path, users: dict[str, str]) -> None:
    """default off, the lab's admin, and the requested users (passwords as hashes only)."""
    sdir = _secrets_dir(workdir)
    lines = ["user default off resetpass resetkeys resetchannels -@all",
             f"user {ADMIN} on #{sha256_hex(_read_or_make(sdir / ADMIN))} ~* &* +@all"]
    for user, rules in users.items():
        _check_rules(rules)
        lines.append(f"user {user} reset #{sha256_hex(_read_or_make(sdir / user))} {rules}")
    keep = {ADMIN, *users}
    for f in sdir.iterdir():
        if f.name.split(".")[0] not in keep:
            f.unlink()
    state.write_secret(workdir / "users.acl", "\n".join(lines) + "\n")


def _check_rules(rules: str) -> list[str]:
    tokens = rules.split()
    for t in tokens:
        if t.startswith((">", "<", "#", "!")) or t.lower() in ("nopass", "resetpass"):
            raise LabError(f"Leave passwords out of ACL rules ({t[:1]}...): the lab generates each user's "
                           "password and keeps it in an owner-only file.")
    return tokens


def _probe_for(options: dict[str, Any], topo: str) -> engines.Probe:
    if options.get("tls") or topo == "redis-tls":
        return tls_mod.probe_redis_tls if options.get("cert", "lab") == "lab" else probe_tls_unverified
    return engines.probe_redis


def probe_tls_unverified(host: str, port: int) -> bool:
    """Readiness of a server that serves a deliberately bad certificate (no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=0.5) as raw, ctx.wrap_socket(raw) as s:
            s.settimeout(1.0)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except (OSError, ssl.SSLError):
        return False


def _redis_probe(svc: Service, _node: Node) -> engines.Probe:
    return _probe_for(svc.options, svc.topology)


# --- clients ---------------------------------------------------------------------------------------

def redis_service_client(svc: Service, **kwargs: Any) -> Any:
    """A redis.Redis for a secure service: TLS settings and the admin user filled in."""
    n = svc.nodes[0]
    base: dict[str, Any] = {}
    if svc.meta.get("tls"):
        base.update(tls_mod.redis_tls_client_kwargs())
    if svc.meta.get("username"):
        base["username"] = svc.meta["username"]
    password = kwargs.pop("password", None) or svc.password()
    return redis_client_for(n.host, n.port, password=password, **{**base, **kwargs})


def no_retry() -> dict[str, Any]:
    """Client options for an attempt expected to fail: redis-py otherwise retries (with back-off)
    refused logins and failed handshakes for seconds before it reports them."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 3, "socket_timeout": 3}


def user_client(svc: Service, user: str, **kwargs: Any) -> Any:
    """A client authenticated as ACL user `user` (its password read from its owner-only file)."""
    return redis_service_client(svc, username=user, password=user_password(svc, user), **kwargs)


def _start_redis(topo: str, name: str, workdir: Path, options: dict[str, Any]) -> tuple[list[Node], dict]:
    engine = engines.kv_engine()
    binary = engine.binary
    meta: dict[str, Any] = {**engine.meta(), "tls": bool(options.get("tls") or topo == "redis-tls")}
    if topo == "redis-acl":
        _write_aclfile(workdir, dict(options.get("users") or {}))
        meta.update(username=ADMIN, password_file=str(workdir / "secrets" / ADMIN),
                    secrets_dir=str(workdir / "secrets"), aclfile=str(workdir / "users.acl"))
    elif options.get("password") or topo == "redis-auth":
        path = workdir / "password"
        _previous(path).unlink(missing_ok=True)
        state.write_secret(path, new_password())
        meta["password_file"] = str(path)
    node = engines.start_node(
        name=name, kind="redis", role="standalone", workdir=workdir, probe=_probe_for(options, topo),
        argv_for_port=lambda port: [binary, str(_write_redis_conf(topo, workdir, port, options))],
        extra={"tls": True} if meta["tls"] else {})
    return [node], meta


@topology("redis-auth", "Redis with an AUTH token (a generated password; ElastiCache's AUTH)",
          client=redis_service_client, probe=_redis_probe)
def _redis_auth(name: str, workdir: Path, config: dict[str, Any] | None = None,
                tls: bool = False) -> tuple[list[Node], dict]:
    return _start_redis("redis-auth", name, workdir, {"config": config, "tls": tls})


@topology("redis-acl", "Redis with ACL users, default user off (ElastiCache RBAC users and user groups)",
          client=redis_service_client, probe=_redis_probe)
def _redis_acl(name: str, workdir: Path, users: dict[str, str] | None = None,
               config: dict[str, Any] | None = None, tls: bool = False) -> tuple[list[Node], dict]:
    return _start_redis("redis-acl", name, workdir, {"users": users, "config": config, "tls": tls})


@topology("redis-tls", "Redis accepting TLS only (in-transit encryption), optional client certificates",
          client=redis_service_client, probe=_redis_probe)
def _redis_tls(name: str, workdir: Path, auth_clients: str = "optional", cert: str = "lab",
               password: bool = False, config: dict[str, Any] | None = None) -> tuple[list[Node], dict]:
    if auth_clients not in ("no", "optional", "yes"):
        raise LabError(f"auth_clients must be 'no', 'optional' or 'yes', not {auth_clients!r}.")
    if cert not in CERTS:
        raise LabError(f"cert must be one of {', '.join(CERTS)}, not {cert!r}.")
    return _start_redis("redis-tls", name, workdir, {"auth_clients": auth_clients, "cert": cert,
                                                     "password": password, "config": config, "tls": True})


# --- ACL users (ElastiCache RBAC) ------------------------------------------------------------------

def _persist(svc: Service) -> None:
    """Make the live ACL survive a restart, without the plaintext ever touching a config file."""
    admin = svc.client()
    if svc.topology == "redis-acl":
        admin.execute_command("ACL", "SAVE")
        with contextlib.suppress(FileNotFoundError):
            os.chmod(svc.meta["aclfile"], 0o600)  # Redis writes it 0644
    else:
        n = svc.nodes[0]
        _write_redis_conf(svc.topology, Path(n.workdir), n.port, svc.options)


def set_user(svc: Service, user: str, rules: str) -> str:
    """Create or replace ACL user `user` with `rules` (e.g. "on ~app:* +get +set"); returns the
    masked password. The password is generated once and kept in an owner-only file."""
    if svc.topology != "redis-acl":
        raise LabError(f"{svc.name} is a {svc.topology} service; ACL users need start('redis-acl', ...).")
    if user in (ADMIN, "default"):
        raise LabError(f"{user!r} is managed by the lab itself; pick another user name.")
    tokens = _check_rules(rules)
    path = password_file(svc, user)
    secret = _read_or_make(path)
    _previous(path).unlink(missing_ok=True)
    svc.client().execute_command("ACL", "SETUSER", user, "reset", f"#{sha256_hex(secret)}", *tokens)
    _persist(svc)
    return mask(secret)


def delete_user(svc: Service, user: str) -> None:
    if user in (ADMIN, "default"):
        raise LabError(f"{user!r} is managed by the lab itself.")
    svc.client().execute_command("ACL", "DELUSER", user)
    path = password_file(svc, user)
    path.unlink(missing_ok=True)
    _previous(path).unlink(missing_ok=True)
    _persist(svc)


def acl_list(svc: Service) -> list[str]:
    """ACL LIST with the password hashes masked (hashes are not the passwords, but need not show)."""
    import re

    return [re.sub(r"#[0-9a-f]{64}", "#<sha256>", line) for line in svc.client().acl_list()]


# --- AUTH token rotation (ElastiCache ModifyReplicationGroup AuthTokenUpdateStrategy) ---------------

def rotate_password(svc: Service, user: str = "default", strategy: str = "ROTATE") -> dict[str, Any]:
    """Rotate a user's password without dropping connected clients, as ElastiCache rotates AUTH tokens.

    ROTATE adds a new password beside the current one (both valid: clients move over at their
    pace); SET then keeps only the newest. Connections already authenticated stay connected.
    """
    strategy = strategy.upper()
    if strategy not in ("ROTATE", "SET"):
        raise LabError("strategy must be 'ROTATE' (add a new token, both valid) or 'SET' (keep only the newest).")
    path = password_file(svc, user)
    current = user_password(svc, user)
    prev = _previous(path)
    if strategy == "ROTATE":
        if prev.exists():
            raise LabError("A rotation is already in progress (two tokens are valid). Finish it with "
                           "strategy='SET' before rotating again: a user holds at most two tokens.")
        new = new_password()
        admin = svc.client()
        admin.execute_command("ACL", "SETUSER", user, f"#{sha256_hex(new)}")
        state.write_secret(prev, current)
        state.write_secret(path, new)
        _persist(svc)
        valid = [new, current]
    else:
        admin = svc.client()
        admin.execute_command("ACL", "SETUSER", user, "resetpass", f"#{sha256_hex(current)}")
        prev.unlink(missing_ok=True)
        _persist(svc)
        valid = [current]
    return {"user": user, "strategy": strategy, "valid_tokens": [mask(v) for v in valid]}


def valid_password_count(svc: Service, user: str = "default") -> int:
    """How many passwords the server accepts for `user` right now (from ACL GETUSER)."""
    info = svc.client().execute_command("ACL", "GETUSER", user)
    if not isinstance(info, dict):  # RESP2 returns a flat list
        info = dict(zip(info[::2], info[1::2], strict=False))
    info = {(k.decode() if isinstance(k, bytes) else k): v for k, v in info.items()}
    return len(info.get("passwords", []))


def finish_interrupted_rotation(svc: Service, user: str = "default") -> bool:
    """If an earlier run stopped between ROTATE and SET, finish it (SET) so a new rotation can start."""
    if _previous(password_file(svc, user)).exists() or valid_password_count(svc, user) > 1:
        rotate_password(svc, user, "SET")
        return True
    return False



# --- Memcached ---------------------------------------------------------------------------------------

def _memcached_probe(svc: Service, _node: Node | None = None) -> engines.Probe:
    return probe_memcached_tls if svc.topology == "memcached-tls" else engines.probe_memcached


def probe_memcached_tls(host: str, port: int) -> bool:
    try:
        ctx = tls_mod.client_context(client_cert=False)
        with socket.create_connection((host, port), timeout=0.5) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as s:
            s.settimeout(1.0)
            s.sendall(b"version\r\n")
            return s.recv(64).startswith(b"VERSION")
    except (OSError, ssl.SSLError):
        return False


def _authenticating_client_class() -> type:
    from pymemcache.client.base import Client
    from pymemcache.exceptions import MemcacheClientError

    class AuthClient(Client):
        """pymemcache Client that authenticates every new connection (memcached 1.6 ASCII auth:
        the first command is a `set` whose value is "<user> <password>")."""

        def __init__(self, server: Any, *, username: str, password: str, **kwargs: Any):
            super().__init__(server, **kwargs)
            self._credentials = f"{username} {password}".encode()

        def _connect(self) -> None:
            super()._connect()
            payload = self._credentials
            self.sock.sendall(b"set auth 0 0 %d\r\n%s\r\n" % (len(payload), payload))
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = self.sock.recv(256)
                if not chunk:
                    break
                reply += chunk
            if reply.strip() != b"STORED":
                self.close()
                raise MemcacheClientError(b"authentication failure")

        def __repr__(self) -> str:
            return f"<AuthClient {self.server} (credentials hidden)>"

    return AuthClient


def memcached_auth_client(host: str, port: int, username: str, password: str, **kwargs: Any) -> Any:
    kwargs.setdefault("connect_timeout", 2)
    kwargs.setdefault("timeout", 5)
    return _authenticating_client_class()((host, port), username=username, password=password, **kwargs)


def memcached_service_client(svc: Service, **kwargs: Any) -> Any:
    """pymemcache client for memcached-sasl (authenticating) or memcached-tls (verified TLS)."""
    from pymemcache.client.base import Client

    n = svc.nodes[0]
    kwargs.setdefault("connect_timeout", 2)
    kwargs.setdefault("timeout", 5)
    if svc.topology == "memcached-tls":
        kwargs.setdefault("tls_context", tls_mod.client_context(client_cert=False))
        return Client((n.host, n.port), **kwargs)
    return memcached_auth_client(n.host, n.port, svc.meta["username"], svc.password() or "", **kwargs)


@topology("memcached-sasl", "Memcached with authentication (memcached 1.6 ASCII auth file, -Y)",
          client=memcached_service_client, probe=_memcached_probe)
def _memcached_auth(name: str, workdir: Path, memory_mb: int = 64) -> tuple[list[Node], dict]:
    """Memcached that refuses every command until the client authenticates.

    Memcached has two ways: SASL (-S) works only over the binary protocol, which pymemcache (the
    lab's client, and most modern ones) does not speak and which memcached has deprecated; and
    since 1.6, -Y <file> authenticates ASCII-protocol clients from a `user:password` file. The
    lab uses -Y: same idea (no credentials, no data), and pymemcache can speak it. The file is
    owner-only, and only its path is on the command line.
    """
    binary = engines.find_binary("memcached")
    secret = _read_or_make(_secrets_dir(workdir) / MEMCACHED_USER)
    auth_file = workdir / "memcached-auth"
    state.write_secret(auth_file, f"{MEMCACHED_USER}:{secret}\n")
    node = engines.start_node(name=name, kind="memcached", role="node", workdir=workdir,
                              probe=engines.probe_memcached,
                              argv_for_port=lambda p: memcached_argv(binary, p, memory_mb, ["-Y", str(auth_file)]))
    return [node], {"binary": binary, "version": engines.binary_version(binary), "username": MEMCACHED_USER,
                    "password_file": str(_secrets_dir(workdir) / MEMCACHED_USER)}


@topology("memcached-tls", "Memcached with TLS in transit (-Z), if the binary was built with it",
          client=memcached_service_client, probe=_memcached_probe)
def _memcached_tls(name: str, workdir: Path, memory_mb: int = 64) -> tuple[list[Node], dict]:
    binary = engines.find_binary("memcached")
    if not tls_mod.memcached_supports_tls(binary):
        raise LabError(f"{binary} ({engines.binary_version(binary)}) was built without TLS support (no -Z "
                       "option in `memcached -h`). Debian/Ubuntu's memcached 1.6 has it; elsewhere build "
                       "memcached with ./configure --enable-tls. ElastiCache for Memcached 1.6.12+ offers TLS.")
    args = tls_mod.memcached_tls_args()
    node = engines.start_node(name=name, kind="memcached", role="node", workdir=workdir, probe=probe_memcached_tls,
                              argv_for_port=lambda p: memcached_argv(binary, p, memory_mb, args))
    return [node], {"binary": binary, "version": engines.binary_version(binary), "tls": True}
