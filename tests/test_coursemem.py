"""The course memory check's parts that need no course: cgroup handling, /proc parsing, and the
local CloudWatch's bounded retention."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

import pytest

from helpers.tools import coursemem as cm

ROLLUP = """55d0c0a6b000-7ffd1b7e5000 ---p 00000000 00:00 0                          [rollup]
Rss:              131072 kB
Pss:              102400 kB
Pss_Anon:          90000 kB
Shared_Clean:      20000 kB
Shared_Dirty:          0 kB
Private_Clean:     10000 kB
Private_Dirty:     90000 kB
Swap:                  0 kB
"""


def test_parse_smaps_rollup():
    f = cm.parse_smaps_rollup(ROLLUP)
    assert f == {"rss": 131072 * 1024, "pss": 102400 * 1024, "uss": 100000 * 1024}


@pytest.mark.parametrize("cmd, comp", [
    (["/v/bin/python", "-m", "ipykernel_launcher", "-f", "k.json"], "kernels"),
    (["/v/bin/python", "-m", "helpers.aws.server", "--port", "5000"], "aws server"),
    (["/v/bin/python", "/v/bin/jupyter-lab", "--ServerApp.ip=127.0.0.1"], "jupyter server"),
    (["redis-server 127.0.0.1:6379"], "engines"),
    (["/usr/bin/memcached", "-p", "11211"], "engines"),
    (["/v/bin/python", "-m", "helpers.tools.coursemem", "--runner"], "runner"),
    (["/v/bin/python", "app.py"], "other"),
])
def test_component(cmd, comp):
    assert cm.component(cmd) == comp


def test_by_component_sums_and_counts():
    snap = {1: ("kernels", {"rss": 100 * cm.MB, "pss": 80 * cm.MB, "uss": 70 * cm.MB}),
            2: ("kernels", {"rss": 50 * cm.MB, "pss": 40 * cm.MB, "uss": 30 * cm.MB}),
            3: ("engines", {"rss": 10 * cm.MB, "pss": 5 * cm.MB, "uss": 4 * cm.MB})}
    rows = cm.by_component(snap)
    assert rows["kernels"] == {"processes": 2, "rss_mb": 150.0, "pss_mb": 120.0, "uss_mb": 100.0}
    assert rows["engines"]["processes"] == 1 and rows["aws server"]["processes"] == 0


def test_keyed_reads_cgroup_files():
    assert cm._keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == {
        "oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}


needs_cgroup = pytest.mark.skipif(cm.available() is None, reason="needs root and a writable memory cgroup")
ALLOC = "import sys, time; b = bytearray(int(sys.argv[1]) * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1)"


def _run_in(group: cm.MemoryCgroup, mb: int) -> int:
    proc = subprocess.Popen([sys.executable, "-c", ALLOC, str(mb)], preexec_fn=lambda: group.add(os.getpid()))
    return proc.wait(timeout=60)


@needs_cgroup
def test_cgroup_measures_a_small_process_and_is_removed():
    group = cm.MemoryCgroup(f"elasticache-lab-test-{os.getpid()}", 128 * cm.MB).create()
    try:
        assert _run_in(group, 40) == 0
        peak = group.peak_bytes()
        assert peak is None or 40 * cm.MB <= peak <= 128 * cm.MB
        assert group.oom_kills() == 0
    finally:
        group.remove()
    assert not group.path.exists()


@needs_cgroup
def test_cgroup_limit_is_enforced_by_the_oom_killer():
    group = cm.MemoryCgroup(f"elasticache-lab-test-oom-{os.getpid()}", 64 * cm.MB).create()
    try:
        assert _run_in(group, 200) == -9  # SIGKILL from the OOM killer, not a MemoryError
        assert group.oom_kills() >= 1
    finally:
        group.remove()
    assert not group.path.exists()


@needs_cgroup
def test_remove_kills_what_is_left_inside():
    group = cm.MemoryCgroup(f"elasticache-lab-test-left-{os.getpid()}", 64 * cm.MB).create()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            preexec_fn=lambda: group.add(os.getpid()))
    try:
        time.sleep(0.5)
        assert proc.pid in group.pids()
    finally:
        group.remove()
    assert proc.wait(timeout=10) != 0 and not group.path.exists()


def test_local_cloudwatch_forgets_old_engine_metrics():
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.utils import utcnow

    from helpers.aws.controlplane import metrics
    from helpers.measure import metrics as m

    backend = CloudWatchBackend("us-east-1", "123456789012")
    old = utcnow() - dt.timedelta(hours=1)
    dims = [{"Name": "CacheClusterId", "Value": "c1"}]
    backend.put_metric_data(m.NAMESPACE, [{"MetricName": "CPUUtilization", "Value": 1, "Dimensions": dims,
                                           "Timestamp": old}])
    backend.put_metric_data(m.NAMESPACE, [{"MetricName": "CPUUtilization", "Value": 2, "Dimensions": dims}])
    backend.put_metric_data("Learner/App", [{"MetricName": "Orders", "Value": 3, "Timestamp": old}])
    assert metrics.expire(backend, 900) == 1
    assert sorted(d.value for d in backend.metric_data) == [2.0, 3.0]  # another namespace is left alone
