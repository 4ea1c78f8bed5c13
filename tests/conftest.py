from __future__ import annotations

import pytest


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """A state directory of its own, as if another learner used the machine; stopped afterwards."""
    home = tmp_path / "learner"
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(home))
    yield home
    from helpers.runtime import services

    services.stop()
