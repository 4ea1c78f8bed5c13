"""The security lab's tools (lab 11): look for leaks the way an intruder would, and protect data at rest.

- Network isolation: `listening_addresses()`, `own_non_loopback_addresses()`, `try_connect()`.
- Leaks: `known_secrets()` and `audit()` search process command lines, readable files, logs and
  listening sockets for this state directory's secrets.
- At rest: KMS envelope encryption of a backup (`encrypt_with_data_key`), `rdb_path`, `copy_private`;
  Secrets Manager (`store_secret`).
- ACL rules tried without side effects: `dry_run()` and the `acl_explorer()` widget.

The secure topologies themselves, their clients and their users' passwords (set_user,
rotate_password, ...) are runtime: `helpers.runtime.topologies.secure`. The lab reaches both
through this module (`from helpers.topics import security`), so they are re-exported here.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

import psutil

from helpers.runtime import process, state
from helpers.runtime.i18n import translator
from helpers.runtime.service import Service
from helpers.runtime.state import LabError
from helpers.runtime.topologies.secure import (  # noqa: F401 (re-exported: lab 11 calls them as security.*)
    acl_list,
    delete_user,
    fingerprint,
    finish_interrupted_rotation,
    mask,
    memcached_auth_client,
    no_retry,
    rotate_password,
    set_user,
    sha256_hex,
    user_client,
    user_password,
    valid_password_count,
)

log = logging.getLogger(__name__)
_ = translator(__name__)

# --- network isolation ------------------------------------------------------------------------------

def own_non_loopback_addresses() -> list[str]:
    """This machine's own IPv4 addresses other than loopback (to show a service is unreachable there)."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                found.append(a.address)
    return sorted(set(found))


def try_connect(host: str, port: int, timeout: float = 1.0) -> str:
    """'connected', 'refused' or 'unreachable': what a client on this machine sees at host:port."""
    if host not in own_non_loopback_addresses() and not host.startswith("127."):
        raise LabError("The lab only ever connects to this machine's own addresses.")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "unreachable"


def state_dir_pids() -> list[int]:
    """Pids of every process running inside this state directory (engines, workers, servers)."""
    return [p.pid for p in process.state_dir_processes()]


def listening_addresses(pids: list[int] | None = None) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket of the lab's processes."""
    out = []
    for pid in pids if pids is not None else state_dir_pids():
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [(pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


# --- looking for leaks like an intruder would --------------------------------------------------------

def known_secrets() -> dict[str, str]:
    """Every password/token of this state directory: {where it is kept: value}."""
    found: dict[str, str] = {}
    root = state.home() / "services"
    if root.exists():
        for f in root.rglob("*"):
            in_secrets = f.parent.name == "secrets"
            if f.is_file() and (in_secrets or f.name in ("password", "password.previous")):
                try:
                    value = f.read_text().strip()
                except OSError:
                    continue
                if value:
                    found[str(f.relative_to(state.home()))] = value
    return found


def audit(secrets: dict[str, str] | None = None) -> list[str]:
    """Where an intruder on this machine could find a secret, or reach a service. Empty is good."""
    secrets = known_secrets() if secrets is None else secrets
    values = {v for v in secrets.values() if len(v) >= 8}
    findings: list[str] = []
    # 1. Process command lines (visible to every user in `ps`).
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        for v in values:
            if v in cmd:
                findings.append(f"process {proc.info['pid']} has a secret {mask(v)} on its command line")
    # 2. Files: secrets in logs or in anything readable by others; private keys not owner-only.
    home = state.home()
    for f in home.rglob("*"):
        try:  # engines create and rename files meanwhile (temp RDB files): skip what vanished
            if not f.is_file() or f.is_symlink():
                continue
            mode = stat.S_IMODE(f.stat().st_mode)
        except OSError:
            continue
        if f.suffix == ".key" and mode & 0o077:
            findings.append(f"private key {f.relative_to(home)} is readable by others (mode {mode:o})")
        if f.suffix != ".log" and not mode & 0o044:
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        for v in values:
            if v.encode() in data:
                kind = "log" if f.suffix == ".log" else f"file readable by others (mode {mode:o})"
                findings.append(f"{kind} {f.relative_to(home)} contains a secret {mask(v)}")
    if stat.S_IMODE(home.stat().st_mode) & 0o077:
        findings.append(f"the state directory {home} is open to other users")
    # 3. Listening sockets.
    for pid, ip, port in listening_addresses():
        if not ip.startswith("127.") and ip != "::1":
            findings.append(f"process {pid} listens on {ip}:{port}, not on loopback")
    return findings


# --- at rest --------------------------------------------------------------------------------------

def encrypt_with_data_key(kms: Any, key_id: str, data: bytes) -> dict[str, bytes]:
    """Envelope encryption: KMS makes a data key; AES-256-GCM encrypts locally; only the
    *encrypted* data key is kept next to the data (the plaintext key is dropped at once)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    nonce = os.urandom(12)
    ciphertext = AESGCM(dk["Plaintext"]).encrypt(nonce, data, None)
    return {"encrypted_key": dk["CiphertextBlob"], "nonce": nonce, "ciphertext": ciphertext}


def decrypt_with_data_key(kms: Any, blob: dict[str, bytes]) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = kms.decrypt(CiphertextBlob=blob["encrypted_key"])["Plaintext"]
    return AESGCM(key).decrypt(blob["nonce"], blob["ciphertext"], None)


def rdb_path(svc: Service) -> Path:
    """Where this Redis writes its RDB snapshot (what an ElastiCache backup exports)."""
    n = svc.nodes[0]
    return Path(n.workdir) / "dump.rdb"


def copy_private(src: Path, dst: Path) -> Path:
    """Copy a file keeping it owner-only (a backup holds the data itself)."""
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    return dst


# --- Secrets Manager ----------------------------------------------------------------------------------

def store_secret(sm: Any, name: str, value: str) -> str:
    """Create the secret `name`, or add `value` as its new current version; returns its ARN.
    (The value goes from an owner-only file to the API: never through the notebook's output.)"""
    try:
        return sm.create_secret(Name=name, SecretString=value)["ARN"]
    except sm.exceptions.ResourceExistsException:
        return sm.put_secret_value(SecretId=name, SecretString=value)["ARN"]


# --- trying access strings without side effects ------------------------------------------------------

ACL_PROBES: dict[str, list[str]] = {
    "GET app:cart:1": ["GET", "app:cart:1"],
    "SET app:cart:1": ["SET", "app:cart:1", "v"],
    "DEL app:cart:1": ["DEL", "app:cart:1"],
    "HSET app:user:1": ["HSET", "app:user:1", "f", "v"],
    "GET billing:1": ["GET", "billing:1"],
    "SET billing:1": ["SET", "billing:1", "v"],
    "KEYS *": ["KEYS", "*"],
    "FLUSHALL": ["FLUSHALL"],
    "CONFIG SET": ["CONFIG", "SET", "maxmemory", "1mb"],
    "ACL SETUSER": ["ACL", "SETUSER", "intruder", "on"],
}


def dry_run(svc: Service, user: str, command: list[str]) -> str:
    """'allowed', or Redis's reason for denying: ACL DRYRUN checks without running the command."""
    reply = svc.client().execute_command("ACL", "DRYRUN", user, *command)
    reply = reply.decode() if isinstance(reply, bytes) else str(reply)
    return "allowed" if reply == "OK" else reply


class ACLExplorer:
    """Type an access string, see at once which commands it allows (lab 11). Uses a scratch user
    and ACL DRYRUN, so even FLUSHALL is only asked about, never run."""

    USER = "lab11-explorer"

    def __init__(self, svc: Service, rule: str = "on ~app:* +get +set +del"):
        import ipywidgets as w

        self.svc = svc
        self.rule = w.Text(value=rule, description=_("access string"), layout=w.Layout(width="480px"),
                           continuous_update=False)
        self.out = w.HTML()
        self.rule.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([self.rule, self.out])

    def update(self) -> dict[str, str]:
        import html

        from redis.exceptions import ResponseError

        try:
            set_user(self.svc, self.USER, self.rule.value)
            verdicts = {label: dry_run(self.svc, self.USER, cmd) for label, cmd in ACL_PROBES.items()}
        except (ResponseError, LabError) as exc:  # a rule Redis (or the lab) rejects is shown, not raised
            message = str(exc).splitlines()[0]
            rejected = _("Redis rejects this rule: {error}", error=html.escape(message))
            self.out.value = f"<span style='color:#cf222e'>{rejected}</span>"
            return {}
        shown = {label: _("allowed") if v == "allowed" else _("denied — {why}", why=html.escape(v))
                 for label, v in verdicts.items()}
        rows = "".join(
            f"<tr><td><code>{html.escape(label)}</code></td><td style='color:{'#1a7f37' if v == 'allowed' else '#cf222e'}'>"
            f"{shown[label]}</td></tr>"
            for label, v in verdicts.items())
        self.out.value = f"<table>{rows}</table>"
        return verdicts


def acl_explorer(svc: Service, rule: str = "on ~app:* +get +set +del") -> ACLExplorer:
    return ACLExplorer(svc, rule)
