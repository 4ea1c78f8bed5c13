"""Engine lifecycle: idempotent start, isolation between learners, recovery, clean stop, loopback only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket

import psutil
import pytest

from helpers.runtime import engines, service, services, state
from helpers.runtime.state import LabError


def _pids(svc):
    return [n.pid for n in svc.nodes]


def test_start_is_idempotent(isolated_home):
    a = services.start("redis")
    b = services.start("redis")
    assert _pids(a) == _pids(b) and a.port == b.port
    assert b.client().ping()
    assert len(services.status()) == 1


def test_two_state_directories_get_their_own_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / "alice"))
    alice = services.start("redis")
    monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / "bob"))
    bob = services.start("redis")
    try:
        assert alice.port != bob.port and alice.nodes[0].pid != bob.nodes[0].pid
        bob.client().set("owner", "bob")
        assert alice.client().get("owner") is None
    finally:
        services.stop()
        monkeypatch.setenv("ELASTICACHE_LAB_HOME", str(tmp_path / "alice"))
        services.stop()
    assert not alice.nodes[0].alive() and not bob.nodes[0].alive()


def test_killed_node_is_restarted_by_the_next_call(isolated_home):
    svc = services.start("redis")
    old = svc.nodes[0]
    os.kill(old.pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):  # kill -9 is delivered asynchronously
        psutil.Process(old.pid).wait(5)
    healed = services.start("redis")
    assert healed.nodes[0].pid != old.pid
    assert healed.port == old.port, "clients keep their address after a restart"
    assert healed.client().ping()


def test_killed_memcached_is_restarted_and_empty(isolated_home):
    svc = services.start("memcached")
    mc = svc.client()
    mc.set("k", b"v")
    svc.kill()
    healed = services.start("memcached")
    assert healed.client().get("k") is None, "Memcached keeps nothing across a restart"


def test_stop_leaves_no_process(isolated_home):
    svcs = [services.start(n) for n in ("redis", "memcached", "aws")]
    procs = [psutil.Process(n.pid) for s in svcs for n in s.nodes]
    services.stop()
    for p in procs:
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    assert services.status() == []


def test_paused_node_is_reported_and_still_stoppable(isolated_home):
    svc = services.start("redis")
    svc.pause()
    assert services.node_state(svc.nodes[0]) == "paused"
    svc.resume()
    assert svc.client().ping()
    svc.pause()
    services.stop("redis")
    assert not svc.nodes[0].alive()


def test_every_listener_is_on_loopback(isolated_home):
    svcs = [services.start(n) for n in ("redis", "memcached", "aws")]
    pids = {n.pid for s in svcs for n in s.nodes}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening, "expected the services to listen"
    for conn in listening:
        assert conn.laddr.ip in ("127.0.0.1", "::1"), conn


def test_busy_fixed_port_is_explained(isolated_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        binary = engines.find_binary("redis")
        workdir = state.service_dir("busy")
        with pytest.raises(LabError, match=f"Port {port}.*already in use"):
            engines.start_node(name="busy", kind="redis", role="standalone", port=port, workdir=workdir,
                               argv_for_port=lambda p: [binary, str(services.redis_conf(p, workdir))],
                               probe=engines.probe_redis)


def test_taken_port_is_retried_on_another(isolated_home, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        real = engines.free_port
        calls = iter([busy])
        monkeypatch.setattr(engines, "free_port", lambda **kw: next(calls, None) or real(**kw))
        svc = services.start("redis")
        assert svc.port != busy and svc.client().ping()


def test_missing_binary_says_what_to_run(isolated_home, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(engines, "EXTRA_DIRS", ())
    with pytest.raises(LabError, match="not found on PATH.*(apt-get|brew) install"):
        services.start("memcached")
    monkeypatch.setenv("ELASTICACHE_LAB_ENGINE", "redis")
    monkeypatch.setenv("ELASTICACHE_LAB_REDIS_SERVER", "/nope/redis-server")
    with pytest.raises(LabError, match="ELASTICACHE_LAB_REDIS_SERVER"):
        services.start("redis")
    monkeypatch.setenv("ELASTICACHE_LAB_ENGINE", "valkey")
    monkeypatch.setenv("ELASTICACHE_LAB_VALKEY_SERVER", "/nope/valkey-server")
    with pytest.raises(LabError, match="ELASTICACHE_LAB_VALKEY_SERVER"):
        services.start("redis")


def test_stale_record_is_replaced(isolated_home):
    svc = services.start("redis")
    services.stop("redis")
    registry = {"redis": svc.to_dict()}  # a record left behind by a crashed session
    state.save_registry(registry)
    again = services.start("redis")
    assert again.nodes[0].alive() and again.client().ping()


def test_damaged_registry_is_set_aside_not_lost(isolated_home):
    services.start("redis")
    (isolated_home / "services.json").write_text("{not json")
    with pytest.warns(UserWarning, match="damaged"):
        svc = services.start("redis")
    assert svc.client().ping()
    assert list(isolated_home.glob("services.json.corrupt-*"))
    services.stop()
    assert services.sweep_orphans() == []


def test_orphans_are_swept_by_stop(isolated_home):
    services.start("redis")
    pid = services.get("redis").nodes[0].pid
    (isolated_home / "services.json").write_text(json.dumps({}))  # the record is lost
    stopped = services.stop()
    assert any(str(pid) in s for s in stopped)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_options_change_restarts_with_new_config(isolated_home):
    a = services.start("redis", name="custom", config={"maxmemory": "5mb"})
    assert a.client().config_get("maxmemory")["maxmemory"] == str(5 * 1024 * 1024)
    b = services.start("redis", name="custom", config={"maxmemory": "6mb"})
    assert b.client().config_get("maxmemory")["maxmemory"] == str(6 * 1024 * 1024)
    assert not a.nodes[0].alive()


def test_persistence_is_off_by_default(isolated_home):
    cfg = services.start("redis").client().config_get("*")
    assert cfg["save"] == "" and cfg["appendonly"] == "no"
    assert cfg["bind"].split()[0] == "127.0.0.1" and cfg["protected-mode"] == "yes"


def test_password_is_never_on_a_command_line(isolated_home):
    svc = services.start("redis", name="secret", password=True)
    secret = svc.password()
    assert secret and svc.client().ping()
    for p in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(p.info["cmdline"] or [])
    assert oct(os.stat(svc.meta["password_file"]).st_mode & 0o777) == "0o600"
    import redis

    with pytest.raises(redis.AuthenticationError):
        service.redis_client_for(svc.host, svc.port, password="wrong").ping()


def test_unknown_service_is_explained(isolated_home):
    with pytest.raises(LabError, match="Unknown service 'rediss'.*Known:"):
        services.start("rediss")


def test_state_dir_is_private(isolated_home):
    services.start("redis")
    assert oct(os.stat(isolated_home).st_mode & 0o777) == "0o700"


# --- a state directory written by an earlier version of the lab ------------------------------------

def _old_record(svc, factory: str) -> dict:
    """A services.json record as the previous layout wrote it: every key spelled out, and the
    client named as "module:function" in meta (helpers.security / helpers.runtime.secure)."""
    return {
        "name": svc.name, "topology": svc.topology, "options": svc.options,
        "nodes": [{"name": n.name, "kind": n.kind, "role": n.role, "host": n.host, "port": n.port, "pid": n.pid,
                   "create_time": n.create_time, "argv": n.argv, "workdir": n.workdir, "log": n.log,
                   "extra": n.extra} for n in svc.nodes],
        "meta": {**svc.meta, "client_factory": factory},
    }


def test_state_written_by_the_previous_layout_is_read(isolated_home):
    import subprocess
    import sys

    acl_users = {"app": "on ~app:* +get +set"}
    acl = services.start("redis-acl", name="lab11-acl", users=acl_users)
    mc = services.start("memcached-sasl", name="lab11-memcached")
    state.save_registry({
        "lab11-acl": _old_record(acl, "helpers.security:redis_service_client"),
        "lab11-memcached": _old_record(mc, "helpers.runtime.secure:memcached_service_client"),
    })
    progress = {
        "00": {"q1": {"attempts": 2, "last": "2026-11-20T10:02:11", "solved_at": "2026-11-20T10:02:11",
                      "status": "correct"},
               "q2": {"attempts": 1, "last": "2026-11-20T10:05:40", "status": "attempted"}},
        "11": {"q1": {"attempts": 3, "last": "2026-11-21T09:12:03", "solved_at": "2026-11-21T09:12:03",
                      "status": "correct"}},
    }
    state.write_json(isolated_home / "progress.json", progress)

    # The services are found as they are (same processes), and their clients work.
    found = services.get("lab11-acl")
    assert found is not None and "client_factory" not in found.meta
    assert found.client().set("app:compat", "1") and found.client().get("app:compat") == "1"
    assert services.get("lab11-memcached").client().set("compat", b"1", noreply=False)
    again = services.start("redis-acl", name="lab11-acl", users=acl_users)
    assert [n.pid for n in again.nodes] == [n.pid for n in acl.nodes]
    assert "client_factory" not in state.load_registry()["lab11-acl"]["meta"]  # migrated when recorded again

    # A node killed meanwhile is healed from the old record (its topology declares the probe).
    mc_old = services.get("lab11-memcached")
    mc_old.kill()
    healed = services.start("memcached-sasl", name="lab11-memcached")
    assert healed.nodes[0].port == mc.nodes[0].port and healed.client().get("compat") is None  # restarted, empty
    mc_client = healed.client()  # one connection, and a set that waits for memcached's reply (not noreply)
    assert mc_client.set("compat", b"2", noreply=False) and mc_client.get("compat") == b"2"

    # The recorded progress is shown.
    env = {**os.environ, state.ENV_HOME: str(isolated_home)}
    out = subprocess.run([sys.executable, "-m", "helpers", "progress", "--all"], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    assert "2 of " in out and "1 tried and not yet right" in out  # 00 q1 and 11's solved exercise (renumbered)
    assert "\u2714 q1   Your Redis port" in out and "\u2717 q2" in out
