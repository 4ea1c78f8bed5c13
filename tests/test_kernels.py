"""The course's kernel manager keeps at most `max_kernels` kernels, shutting down the least recently
used idle ones (helpers/tools/kernels.py), and the course's Jupyter configuration uses it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

from helpers.tools.kernels import LabKernelManager

CONFIG = Path(__file__).resolve().parents[1] / "helpers" / "tools" / "jupyter_config" / "jupyter_server_config.json"


def manager(**kernels) -> LabKernelManager:
    km = LabKernelManager(max_kernels=3, min_idle_seconds=60)
    km._kernels.update(kernels)
    return km


def kernel(minutes_ago: float, state: str = "idle", now: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(last_activity=now - timedelta(minutes=minutes_ago), execution_state=state,
                           kernel_name="python3")


def test_the_least_recently_used_idle_kernels_go_first():
    now = datetime.now(timezone.utc)
    km = manager(a=kernel(30, now=now), b=kernel(5, now=now), c=kernel(20, now=now), new=kernel(0, now=now))
    assert km.surplus("new", now) == ["a"]  # 4 kernels, 3 kept: the oldest idle one goes
    km._kernels["d"] = kernel(10, now=now)
    assert km.surplus("new", now) == ["a", "c"]


def test_busy_and_recently_used_kernels_are_kept_even_over_the_limit():
    now = datetime.now(timezone.utc)
    km = manager(a=kernel(30, "busy", now), b=kernel(0.5, now=now), c=kernel(20, now=now), new=kernel(0, now=now))
    assert km.surplus("new", now) == ["c"]
    km._kernels["c"] = kernel(20, "busy", now)
    assert km.surplus("new", now) == []  # nothing idle long enough: over the limit rather than stop work


def test_no_limit_and_under_the_limit():
    now = datetime.now(timezone.utc)
    km = manager(a=kernel(30, now=now), new=kernel(0, now=now))
    assert km.surplus("new", now) == []
    km.max_kernels = 0
    km._kernels.update(b=kernel(30, now=now), c=kernel(30, now=now))
    assert km.surplus("new", now) == []


def test_the_course_configuration_uses_it():
    config = json.loads(CONFIG.read_text())
    assert config["ServerApp"]["kernel_manager_class"] == "helpers.tools.kernels.LabKernelManager"
    assert config["LabKernelManager"]["max_kernels"] >= 4
    assert config["MappingKernelManager"]["cull_idle_timeout"] > 0  # the time-based culler stays on
