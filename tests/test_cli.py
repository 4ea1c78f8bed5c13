"""`python -m helpers ...` as a learner types it in a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil


def run(home, *args, check=True, extra_env=None):
    env = {**os.environ, "ELASTICACHE_LAB_HOME": str(home), **(extra_env or {})}
    proc = subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, env=env,
                          timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_start_json_then_stop_leaves_nothing(tmp_path):
    home = tmp_path / "cli"
    out = run(home, "start", "--json").stdout
    data = json.loads(out)
    assert set(data["services"]) == {"redis", "memcached", "aws"}
    nodes = [n for s in data["services"].values() for n in s["nodes"]]
    for n in nodes:
        assert {"host", "port", "pid", "role", "kind"} <= set(n)
        assert n["host"] == "127.0.0.1" and psutil.pid_exists(n["pid"])
    again = json.loads(run(home, "start", "--json").stdout)
    assert [n["pid"] for s in again["services"].values() for n in s["nodes"]] == [n["pid"] for n in nodes]
    status = json.loads(run(home, "status", "--json").stdout)
    assert set(status["services"]) == {"redis", "memcached", "aws"}
    assert "Stopped" in run(home, "stop").stdout
    for n in nodes:
        assert not psutil.pid_exists(n["pid"]) or psutil.Process(n["pid"]).status() == psutil.STATUS_ZOMBIE
    assert json.loads(run(home, "status", "--json").stdout)["services"] == {}
    assert "Nothing was running" in run(home, "stop").stdout


def test_start_one_service_by_name(tmp_path):
    home = tmp_path / "one"
    try:
        data = json.loads(run(home, "start", "memcached", "--json").stdout)
        assert list(data["services"]) == ["memcached"]
    finally:
        run(home, "stop")


def test_unknown_service_is_an_error_not_a_traceback(tmp_path):
    proc = run(tmp_path / "x", "start", "reddis", check=False)
    assert proc.returncode == 2
    assert "Unknown service 'reddis'" in proc.stderr and "Traceback" not in proc.stderr


def test_env_exports_work_for_the_aws_cli_and_redis_cli(tmp_path):
    home = tmp_path / "env"
    try:
        out = run(home, "env").stdout
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out and "export REDIS_URL=redis://127.0.0.1:" in out
        assert "export MEMCACHED_SERVERS=127.0.0.1:" in out
        script = out + "\naws elasticache describe-cache-clusters --output json\n"
        if os.path.exists("/usr/bin/redis-cli"):
            script += 'redis-cli -u "$REDIS_URL" PING\n'
        bindir = os.path.dirname(sys.executable)
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "AWS_PROFILE": "someone-elses-real-profile"}
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert '"CacheClusters"' in proc.stdout
    finally:
        run(home, "stop")


def test_doctor_reports_everything_present(tmp_path):
    proc = run(tmp_path / "doc", "doctor")
    assert "redis server" in proc.stdout and "memcached server" in proc.stdout
    assert "Everything the lab needs is here" in proc.stdout


def test_doctor_says_how_to_install_a_missing_engine(tmp_path):
    proc = run(tmp_path / "doc2", "doctor", check=False,
               extra_env={"ELASTICACHE_LAB_MEMCACHED": "/nonexistent/memcached"})
    assert proc.returncode == 1
    assert "MISSING memcached server" in proc.stdout and "ELASTICACHE_LAB_MEMCACHED" in proc.stdout


def test_progress_lists_labs_with_titles_totals_and_what_is_next(tmp_path):
    home = tmp_path / "p"
    out = run(home, "progress").stdout
    assert out.startswith("Your progress: 0 of ") and "  00  Welcome to the ElastiCache Lab" in out
    assert "Next: lab 00 (Welcome to the ElastiCache Lab), q1: Your Redis port in labs/00_welcome.ipynb" in out
    record = "from helpers.exercises.core import record; record('00', 'q1', 'correct')"
    subprocess.run([sys.executable, "-c", record], env={**os.environ, "ELASTICACHE_LAB_HOME": str(home)}, check=True)
    out = run(home, "progress").stdout
    assert out.startswith("Your progress: 1 of ") and "✔ q1   Your Redis port" in out and "Next: lab 00 (" in out
    assert "q1:" not in out, "no bare ids"
    assert json.loads(run(home, "progress", "--json").stdout)["00"]["q1"]["status"] == "correct"
