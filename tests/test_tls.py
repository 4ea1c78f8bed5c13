"""The lab's local CA and certificates, and a real TLS-only redis-server using them."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
import redis

from helpers.runtime import engines, services, state, tls


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_material_is_made_once_and_owner_only():
    m = tls.tls_material()
    files = [m.ca_file, m.ca_key_file, m.cert_file, m.key_file, m.client_cert_file, m.client_key_file]
    assert all(f.exists() for f in files)
    assert all(_mode(f) == 0o600 for f in files)
    assert _mode(m.dir) == 0o700
    assert m.dir == state.home() / "tls"
    before = m.cert_file.read_bytes()
    assert tls.tls_material().cert_file.read_bytes() == before  # not regenerated


def test_server_certificate_names_loopback_and_chains_to_the_ca():
    m = tls.tls_material()
    info = tls.describe(m.cert_file)
    assert set(info["names"]) >= {"localhost", "127.0.0.1"}
    assert not info["expired"]
    assert info["issuer"] == tls.describe(m.ca_file)["subject"]


def test_bad_material():
    b = tls.bad_material()
    assert tls.describe(b.expired_cert_file)["expired"]
    assert tls.describe(b.wrong_host_cert_file)["names"] == ["cache.example.internal"]
    assert tls.describe(b.other_ca_file)["subject"] != tls.describe(tls.tls_material().ca_file)["subject"]
    assert all(_mode(p) == 0o600 for p in b.dir.iterdir())


def test_redis_tls_config_contract():
    conf = tls.redis_tls_config(7000)
    assert conf["port"] == "0" and conf["tls-port"] == "7000"
    assert conf["tls-auth-clients"] == "optional"
    assert conf["tls-replication"] == "yes" and conf["tls-cluster"] == "yes"
    for key in ("tls-cert-file", "tls-key-file", "tls-ca-cert-file"):
        assert Path(conf[key]).exists()
    kw = tls.redis_tls_client_kwargs()
    assert kw["ssl"] is True and Path(kw["ssl_ca_certs"]).exists()


@pytest.fixture(scope="module")
def tls_redis():
    binary = engines.find_binary("redis")
    workdir = state.service_dir("test-tls-raw")

    def argv(port: int) -> list[str]:
        return [binary, str(services.redis_conf(port, workdir, tls.redis_tls_config(port)))]

    node = engines.start_node(name="test-tls-raw", kind="redis", role="standalone", argv_for_port=argv,
                              workdir=workdir, probe=tls.probe_redis_tls)
    yield node
    node.stop()


def test_real_redis_over_tls(tls_redis):
    assert tls.probe_redis_tls(tls_redis.host, tls_redis.port)
    r = redis.Redis(host=tls_redis.host, port=tls_redis.port, socket_timeout=5, **tls.redis_tls_client_kwargs())
    assert r.ping()
    assert r.config_get("port") == {"port": "0"} or r.config_get("port") == {b"port": b"0"}
    # Without a client certificate it works too (tls-auth-clients optional).
    r2 = redis.Redis(host=tls_redis.host, port=tls_redis.port, socket_timeout=5,
                     **tls.redis_tls_client_kwargs(client_cert=False))
    assert r2.ping()


def test_plaintext_and_wrong_ca_are_refused(tls_redis):
    plain = redis.Redis(host=tls_redis.host, port=tls_redis.port, socket_timeout=3, socket_connect_timeout=3)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    bad = tls.bad_material()
    wrong = redis.Redis(host=tls_redis.host, port=tls_redis.port, socket_timeout=3, ssl=True,
                        ssl_ca_certs=str(bad.other_ca_file))
    with pytest.raises(redis.ConnectionError) as err:
        wrong.ping()
    assert "certificate verify failed" in str(err.value).lower()
    with pytest.raises(ssl.SSLError):
        import socket

        ctx = tls.client_context(bad.other_ca_file, client_cert=False)
        with socket.create_connection((tls_redis.host, tls_redis.port), timeout=3) as raw:
            ctx.wrap_socket(raw, server_hostname=tls_redis.host)
