"""Secure topologies against real engines: who gets in, who does not, and where secrets never show."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest
import redis
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from helpers import start
from helpers.runtime import engines, state, tls
from helpers.runtime.state import LabError
from helpers.topics import security

NR = security.no_retry()  # expected failures are reported at once, not retried for seconds


@pytest.fixture(scope="module")
def auth_svc():
    return start("redis-auth", name="test-sec-auth")


@pytest.fixture(scope="module")
def acl_svc():
    return start("redis-acl", name="test-sec-acl", users={"app": "on ~app:* +get +set +del"})


@pytest.fixture(scope="module")
def tls_svc():
    return start("redis-tls", name="test-sec-tls")


@pytest.fixture(scope="module")
def mc_auth():
    return start("memcached-sasl", name="test-sec-mc")


def test_wrong_or_missing_password_is_refused(auth_svc):
    assert auth_svc.client().ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=auth_svc.host, port=auth_svc.port, password="not-the-token", **NR).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=auth_svc.host, port=auth_svc.port, protocol=2, **NR).set("k", "v")


def test_config_file_holds_only_a_hash(auth_svc):
    conf = (Path(auth_svc.nodes[0].workdir) / "redis.conf").read_text()
    secret = auth_svc.password()
    assert secret and secret not in conf
    assert security.sha256_hex(secret) in conf


def test_plaintext_client_is_refused_by_the_tls_port(tls_svc):
    assert tls_svc.client().ping()
    plain = redis.Redis(host=tls_svc.host, port=tls_svc.port, **NR)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_tls_verification_fails_against_a_wrong_ca(tls_svc):
    bad = tls.bad_material()
    r = redis.Redis(host=tls_svc.host, port=tls_svc.port, ssl=True, **NR,
                    ssl_ca_certs=str(bad.other_ca_file))
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        r.ping()


@pytest.mark.parametrize("cert, reason", [("expired", "expired"), ("wrong-host", "mismatch"),
                                          ("other-ca", "local issuer")])
def test_bad_server_certificates_are_refused(cert, reason):
    svc = start("redis-tls", name=f"test-sec-{cert}", cert=cert)
    with pytest.raises(redis.ConnectionError, match=reason):
        svc.client(**NR).ping()


def test_restricted_user_is_denied_what_it_must_not_do(acl_svc):
    app = security.user_client(acl_svc, "app")
    assert app.set("app:1", "v") and app.get("app:1") == "v"
    for cmd in (("GET", "other:1"), ("FLUSHALL",), ("CONFIG", "GET", "bind"), ("KEYS", "*"), ("ACL", "LIST")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*cmd)


def test_default_user_is_off(acl_svc):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=acl_svc.host, port=acl_svc.port, protocol=2, **NR).set("k", "v")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=acl_svc.host, port=acl_svc.port, username="default", password="x", **NR).ping()


def test_passwords_stay_out_of_acl_rules(acl_svc):
    with pytest.raises(LabError, match="Leave passwords out"):
        security.set_user(acl_svc, "sneaky", "on >hunter2 ~* +@all")
    with pytest.raises(LabError, match="Leave passwords out"):
        security.set_user(acl_svc, "sneaky", "on nopass ~* +@all")


def test_acl_survives_a_restart(acl_svc):
    security.set_user(acl_svc, "reader", "on ~app:* +get")
    acl_svc.kill()
    healed = start("redis-acl", name="test-sec-acl", users={"app": "on ~app:* +get +set +del"})
    reader = security.user_client(healed, "reader")
    assert reader.get("app:nothing") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set("app:1", "v")
    assert os.stat(healed.meta["aclfile"]).st_mode & 0o077 == 0


def test_rotation_keeps_clients_and_retires_the_old_token(auth_svc):
    old = auth_svc.password()
    live = auth_svc.client()
    live.ping()
    before = live.client_id()
    security.rotate_password(auth_svc, strategy="ROTATE")
    new = auth_svc.password()
    assert new != old and security.valid_password_count(auth_svc) == 2
    for token in (old, new):
        assert redis.Redis(host=auth_svc.host, port=auth_svc.port, password=token).ping()
    with pytest.raises(LabError, match="already in progress"):
        security.rotate_password(auth_svc, strategy="ROTATE")
    security.rotate_password(auth_svc, strategy="SET")
    assert security.valid_password_count(auth_svc) == 1
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=auth_svc.host, port=auth_svc.port, password=old, **NR).ping()
    assert live.ping() and live.client_id() == before  # never disconnected
    # The rotated token also survives a restart (the config file was rewritten with its hash).
    auth_svc.kill()
    healed = start("redis-auth", name="test-sec-auth")
    assert redis.Redis(host=healed.host, port=healed.port, password=new).ping()


def test_memcached_refuses_unauthenticated_clients(mc_auth):
    c = mc_auth.client()
    assert c.set("k", "v") and c.get("k") == b"v"
    with pytest.raises(MemcacheClientError, match="unauthenticated"):
        Client((mc_auth.host, mc_auth.port), connect_timeout=2, timeout=2).get("k")
    with pytest.raises(MemcacheClientError, match="authentication failure"):
        security.memcached_auth_client(mc_auth.host, mc_auth.port, "lab", "wrong").get("k")


def test_memcached_tls():
    binary = engines.find_binary("memcached")
    if not tls.memcached_supports_tls(binary):
        with pytest.raises(LabError, match="without TLS"):
            start("memcached-tls", name="test-sec-mctls")
        return
    svc = start("memcached-tls", name="test-sec-mctls")
    c = svc.client()
    assert c.set("k", "v") and c.get("k") == b"v"
    with pytest.raises((ConnectionError, OSError, MemcacheClientError)):
        Client((svc.host, svc.port), connect_timeout=2, timeout=2).get("k")


def _all_secrets() -> dict[str, str]:
    found = security.known_secrets()
    assert found, "the secure services should have generated secrets"
    return found


def test_no_secret_on_any_process_command_line(auth_svc, acl_svc, mc_auth, tls_svc):
    secrets = set(_all_secrets().values())
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        assert not any(s in cmd for s in secrets), f"secret on the command line of pid {proc.pid}"


def test_no_secret_in_world_readable_files_or_logs(auth_svc, acl_svc, mc_auth):
    secrets = [s.encode() for s in _all_secrets().values()]
    for f in state.home().rglob("*"):
        try:  # engines create and rename temporary files meanwhile
            if not f.is_file():
                continue
            mode = stat.S_IMODE(f.stat().st_mode)
            data = f.read_bytes() if mode & 0o044 or f.suffix == ".log" else b""
        except OSError:
            continue
        if data:
            assert not any(s in data for s in secrets), f"{f} (mode {mode:o}) holds a secret"
        if f.suffix == ".key" or f.parent.name == "secrets" or f.name in ("password", "memcached-auth"):
            assert mode == 0o600, f"{f} should be owner-only"


def test_nothing_listens_beyond_loopback(auth_svc, acl_svc, mc_auth, tls_svc):
    listening = security.listening_addresses()
    assert listening, "the services should be listening"
    assert all(ip == engines.LOOPBACK for _pid, ip, _port in listening), listening
    for addr in security.own_non_loopback_addresses()[:2]:
        assert security.try_connect(addr, acl_svc.port) in ("refused", "unreachable")


def test_audit_is_clean_and_finds_a_planted_leak(auth_svc, acl_svc):
    assert security.audit() == []
    leak = state.home() / "leak.txt"
    leak.write_text(f"token={auth_svc.password()}\n")
    os.chmod(leak, 0o644)
    try:
        findings = security.audit()
        assert any("leak.txt" in f for f in findings)
        assert auth_svc.password() not in " ".join(findings)  # the report masks what it finds
    finally:
        leak.unlink()


def test_mask_never_shows_the_secret():
    assert "s3cret-value" not in security.mask("s3cret-value")
    assert security.mask(None) == "(none)"


def test_replicated_and_cluster_topologies_with_tls_and_auth(engine_with_tls):
    """The topologies engineer's layouts use helpers.runtime.tls: check them end to end, then stop them."""
    from helpers.runtime import services, topologies

    try:
        rep = start("replicated", name="test-sec-repl", tls=True, password=True)
        primary = topologies.primary_client(rep)
        assert primary.set("sec:k", "v")
        assert primary.wait(1, 5000) >= 1
        assert topologies.replica_client(rep).get("sec:k") == "v"
        host, port = topologies.current_primary(rep)
        plain = redis.Redis(host=host, port=port, **NR)
        with pytest.raises(redis.ConnectionError):
            plain.ping()
        cluster = start("cluster", name="test-sec-cluster", tls=True)
        cc = topologies.cluster_client(cluster)
        for i in range(20):
            cc.set(f"sec:{i}", i)
        assert [cc.get(f"sec:{i}") for i in range(20)] == [str(i) for i in range(20)]
        assert all(ip == engines.LOOPBACK for _pid, ip, _port in security.listening_addresses())
        assert security.audit() == []
    finally:
        services.stop("test-sec-repl")
        services.stop("test-sec-cluster")


def test_acl_explorer_asks_without_running(acl_svc):
    admin = acl_svc.client()
    admin.set("app:keep", "1")
    explorer = security.acl_explorer(acl_svc, "on ~* +@all")
    verdicts = explorer.update()
    assert verdicts["FLUSHALL"] == "allowed" and admin.get("app:keep") == "1"  # asked, not run
    explorer.rule.value = "on ~app:* +get"
    verdicts = explorer.update()
    assert verdicts["GET app:cart:1"] == "allowed"
    assert verdicts["SET app:cart:1"] != "allowed" and verdicts["GET billing:1"] != "allowed"
    explorer.rule.value = "on ~app:* +nosuchcommand"
    assert explorer.update() == {} and "rejects" in explorer.out.value
