"""The course memory check's parts that need no course: cgroup handling, /proc parsing, and the
local CloudWatch's bounded retention."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

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


def test_every_numbered_lab_is_measured_new_ones_included(tmp_path):
    labs = tmp_path / "labs"
    (labs / ".ipynb_checkpoints").mkdir(parents=True)
    for name in ("00_welcome.ipynb", "16_valkey.ipynb", "09_replication.ipynb", "Untitled.ipynb",
                 ".ipynb_checkpoints/00_welcome-checkpoint.ipynb"):
        (labs / name).write_text("{}")
    assert [os.path.basename(x) for x in cm.course_labs(tmp_path)] == [
        "00_welcome.ipynb", "09_replication.ipynb", "16_valkey.ipynb"]
    real = cm.course_labs(Path(__file__).resolve().parents[1])
    assert len(real) >= 16 and os.path.basename(real[0]).startswith("00_")


def test_projection_adds_labs_of_the_average_size():
    r = {"enforced": True, "limit_mb": 2048,
         "peak": {"cgroup_max_usage_mb": 1500.0},
         "per_lab_peak": {"(start-up)": {"cgroup_usage_mb": 200.0}, "00_a": {"cgroup_usage_mb": 700.0},
                          "01_b": {"cgroup_usage_mb": 1200.0}, "(end)": {"cgroup_usage_mb": 1190.0}},
         "kernel_uss_mb": {"at_end": {"00_a": 60.0, "01_b": 80.0}}}
    p = cm.projection(r, more=3)
    assert p["per_lab_mb"] == 500.0 and p["kernel_uss_mb_mean"] == 70.0
    assert p["projected_peak_mb"] == 3000.0 and p["fits"] is False and p["projected_margin_mb"] == -952.0
    assert "OVER by 952 MB" in cm.report({**r, "labs": {}, "failed": [], "seconds": 1, "date": "d", "cgroup": "v1",
                                          "peak": {**r["peak"], "cgroup_anon_mb": 1, "rss_mb": 1, "pss_mb": 1,
                                                   "uss_mb": 1, "during": {}},
                                          "end": {}, "oom_kills": 0, "failcnt": 0, "vanished": [], "projection": p})


def test_aws_server_skips_moto_ec2_data_the_course_never_reads():
    code = (
        "from helpers.aws.server import slim_moto_ec2; slim_moto_ec2()\n"
        "from moto.ec2.models import instance_types as t, amis\n"
        "assert t.INSTANCE_TYPES == {} and amis.AMIS == []\n"
        "assert all(not v for by_region in t.INSTANCE_TYPE_OFFERINGS.values() for v in by_region.values())\n"
        "from moto.ec2 import ec2_backends\n"
        "b = ec2_backends['123456789012']['us-east-1']\n"
        "assert b.describe_vpcs() and b.describe_availability_zones()\n"  # what the course uses still works
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


def test_kernel_gives_freed_memory_back_after_each_cell():
    from helpers.runtime import notebook

    class Events:
        def __init__(self):
            self.handlers = {}

        def register(self, event, fn):
            self.handlers.setdefault(event, []).append(fn)

    class Shell:
        events = Events()

    shell = Shell()
    assert notebook.install_memory_release(shell) is True
    assert notebook.install_memory_release(shell) is False  # once per kernel
    assert set(shell.events.handlers) == {"pre_run_cell", "post_run_cell"}
    big = [bytearray(1000) for _ in range(50_000)]  # about 50 MB in small blocks, then freed
    del big
    shell.events.handlers["pre_run_cell"][0](None)
    shell.events.handlers["post_run_cell"][0](None)  # returns the pages; must not raise
