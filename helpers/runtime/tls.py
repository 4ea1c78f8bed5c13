"""TLS material for encryption in transit: a local CA, server and client certificates.

ElastiCache's in-transit encryption is TLS with a server certificate from a public CA; here a
private CA is made once per state directory (under home()/tls, every file owner-only), so a
learner can see certificate verification work, and fail, for real. Certificates are made with
the `cryptography` library (ECDSA P-256: fast to generate, accepted by Redis and Memcached).

`bad_material()` makes the certificates the security lab breaks things with on purpose: an
expired server certificate, one for the wrong host name, and a second CA nobody trusts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from filelock import FileLock

from helpers.runtime import state

SERVER_HOSTS = ("localhost", "127.0.0.1")
ORG = "ElastiCache Lab (local, not trusted anywhere else)"


@dataclass(frozen=True)
class TLSMaterial:
    """Paths of the PEM files of one CA and the certificates it signed."""

    dir: Path
    ca_file: Path
    ca_key_file: Path
    cert_file: Path  # the server certificate (SAN: localhost, 127.0.0.1)
    key_file: Path
    client_cert_file: Path
    client_key_file: Path


@dataclass(frozen=True)
class BadMaterial:
    """Certificates that must be refused by a verifying client (for the security lab)."""

    dir: Path
    expired_cert_file: Path  # signed by the lab's CA, but its validity ended yesterday
    expired_key_file: Path
    wrong_host_cert_file: Path  # signed by the lab's CA, for cache.example.internal only
    wrong_host_key_file: Path
    other_ca_file: Path  # a second CA, unrelated to the lab's
    other_ca_key_file: Path
    other_ca_cert_file: Path  # a server certificate for 127.0.0.1 signed by that other CA
    other_ca_key_file_server: Path


# --- writing PEM files ---------------------------------------------------------------------------

def _write(path: Path, data: bytes) -> None:
    """Owner-only, written atomically so a half-written key is never picked up."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    hosts: tuple[str, ...] = (),
    *,
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by `ca_cert`, valid for `hosts` (DNS names or IP addresses)."""
    key = _new_key()
    now = _now()
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    # Server certificates are also used as client certificates by replicas and cluster nodes
    # (Redis presents tls-cert-file when it connects to a peer), so they carry both usages.
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                                 ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


# --- the lab's CA and certificates ---------------------------------------------------------------

def tls_dir() -> Path:
    path = state.home() / "tls"
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _material_paths(d: Path) -> TLSMaterial:
    return TLSMaterial(dir=d, ca_file=d / "ca.crt", ca_key_file=d / "ca.key", cert_file=d / "server.crt",
                       key_file=d / "server.key", client_cert_file=d / "client.crt",
                       client_key_file=d / "client.key")


def _load_ca(m: TLSMaterial) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(m.ca_file.read_bytes())
    key = serialization.load_pem_private_key(m.ca_key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _usable(cert_file: Path, days: int = 7) -> bool:
    """The certificate exists and stays valid for a while (else it is made again)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc > _now() + dt.timedelta(days=days)


def tls_material() -> TLSMaterial:
    """The state directory's CA, server and client certificates, made on first use."""
    d = tls_dir()
    m = _material_paths(d)
    with FileLock(str(d / ".lock"), timeout=60):
        files = (m.ca_file, m.ca_key_file, m.cert_file, m.key_file, m.client_cert_file, m.client_key_file)
        if all(f.exists() for f in files) and _usable(m.ca_file, 30) and _usable(m.cert_file) \
                and _usable(m.client_cert_file):
            return m
        if m.ca_file.exists() and m.ca_key_file.exists() and _usable(m.ca_file, 30):
            ca_cert, ca_key = _load_ca(m)
        else:
            ca_cert, ca_key = make_ca("ElastiCache Lab local CA")
            _write(m.ca_key_file, _key_pem(ca_key))
            _write(m.ca_file, _cert_pem(ca_cert))
        server, server_key = make_cert(ca_cert, ca_key, "localhost", SERVER_HOSTS)
        _write(m.key_file, _key_pem(server_key))
        _write(m.cert_file, _cert_pem(server))
        client, client_key = make_cert(ca_cert, ca_key, "lab-client", client=True)
        _write(m.client_key_file, _key_pem(client_key))
        _write(m.client_cert_file, _cert_pem(client))
    return m


def bad_material() -> BadMaterial:
    """Deliberately wrong certificates for the lab's failure demonstrations (made once)."""
    m = tls_material()
    d = m.dir / "bad"
    d.mkdir(mode=0o700, exist_ok=True)
    b = BadMaterial(dir=d, expired_cert_file=d / "expired.crt", expired_key_file=d / "expired.key",
                    wrong_host_cert_file=d / "wrong-host.crt", wrong_host_key_file=d / "wrong-host.key",
                    other_ca_file=d / "other-ca.crt", other_ca_key_file=d / "other-ca.key",
                    other_ca_cert_file=d / "other-ca-server.crt", other_ca_key_file_server=d / "other-ca-server.key")
    with FileLock(str(m.dir / ".lock"), timeout=60):
        files = [getattr(b, f) for f in b.__dataclass_fields__ if f != "dir"]
        ca_cert = x509.load_pem_x509_certificate(m.ca_file.read_bytes())
        made_for_this_ca = b.expired_cert_file.exists() and \
            x509.load_pem_x509_certificate(b.expired_cert_file.read_bytes()).issuer == ca_cert.subject
        if all(f.exists() for f in files) and made_for_this_ca and _usable(b.wrong_host_cert_file):
            return b
        ca_cert, ca_key = _load_ca(m)
        now = _now()
        cert, key = make_cert(ca_cert, ca_key, "localhost", SERVER_HOSTS,
                              not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
        _write(b.expired_key_file, _key_pem(key))
        _write(b.expired_cert_file, _cert_pem(cert))
        cert, key = make_cert(ca_cert, ca_key, "cache.example.internal", ("cache.example.internal",))
        _write(b.wrong_host_key_file, _key_pem(key))
        _write(b.wrong_host_cert_file, _cert_pem(cert))
        other_cert, other_key = make_ca("Some other CA")
        _write(b.other_ca_key_file, _key_pem(other_key))
        _write(b.other_ca_file, _cert_pem(other_cert))
        cert, key = make_cert(other_cert, other_key, "localhost", SERVER_HOSTS)
        _write(b.other_ca_key_file_server, _key_pem(key))
        _write(b.other_ca_cert_file, _cert_pem(cert))
    return b


def describe(cert_file: Path | str) -> dict[str, Any]:
    """The parts of a certificate a person checks: subject, issuer, names, validity."""
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)] + \
                [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "names": names, "not_before": cert.not_valid_before_utc.isoformat(timespec="seconds"),
            "not_after": cert.not_valid_after_utc.isoformat(timespec="seconds"),
            "expired": cert.not_valid_after_utc < _now()}


# --- Redis -----------------------------------------------------------------------------------------

def redis_tls_config(port: int, auth_clients: str = "optional") -> dict[str, str]:
    """redis.conf directives for a TLS-only listener on `port` (plaintext port closed).

    `auth_clients`: "no" (server-side TLS only, like ElastiCache), "optional" (a client
    certificate is checked when presented) or "yes" (mutual TLS required).
    """
    m = tls_material()
    return {
        "port": "0",
        "tls-port": str(port),
        "tls-cert-file": str(m.cert_file),
        "tls-key-file": str(m.key_file),
        "tls-ca-cert-file": str(m.ca_file),
        "tls-auth-clients": auth_clients,
        "tls-replication": "yes",
        "tls-cluster": "yes",
    }


def client_context(ca_file: Path | str | None = None, *, client_cert: bool = True,
                   check_hostname: bool = True) -> ssl.SSLContext:
    """An ssl.SSLContext that verifies the server against the lab's CA (or `ca_file`)."""
    m = tls_material()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file or m.ca_file))
    ctx.check_hostname = check_hostname
    if client_cert:
        ctx.load_cert_chain(str(m.client_cert_file), str(m.client_key_file))
    return ctx


def probe_redis_tls(host: str, port: int) -> bool:
    """True when a Redis server answers PING over verified TLS (an auth error also means up)."""
    try:
        ctx = client_context()
        with socket.create_connection((host, port), timeout=0.5) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as s:
            s.settimeout(1.0)
            s.sendall(b"PING\r\n")
            data = s.recv(64)
    except (OSError, ssl.SSLError, ValueError):
        return False
    return data.startswith((b"+PONG", b"-NOAUTH", b"-WRONGPASS", b"-ERR AUTH", b"-DENIED", b"-NOPERM"))


def redis_tls_client_kwargs(*, client_cert: bool = True) -> dict[str, Any]:
    """Keyword arguments for redis.Redis / RedisCluster to connect over verified TLS."""
    m = tls_material()
    kwargs: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(m.ca_file), "ssl_cert_reqs": "required",
                              "ssl_check_hostname": True}
    if client_cert:
        kwargs.update(ssl_certfile=str(m.client_cert_file), ssl_keyfile=str(m.client_key_file))
    return kwargs


# --- Memcached -------------------------------------------------------------------------------------

def memcached_tls_args(material: TLSMaterial | None = None) -> list[str]:
    """memcached command-line options for TLS (-Z); only file paths, never a secret."""
    m = material or tls_material()
    return ["-Z", "-o", f"ssl_chain_cert={m.cert_file},ssl_key={m.key_file},ssl_ca_cert={m.ca_file}"]


def memcached_supports_tls(binary: str) -> bool:
    """Whether this memcached was built with TLS (Debian's is; many distributions' are not)."""
    import subprocess

    out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10).stdout
    return "--enable-ssl" in out
