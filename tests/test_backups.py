"""helpers.topics.backups: snapshots, crash and restart, restore to a new server, file checks (real Redis)."""

from __future__ import annotations

import pytest

from helpers.runtime.services import start
from helpers.runtime.state import LabError
from helpers.topics import backups as bk


def test_rdb_loses_writes_after_the_snapshot_and_restore_seeds_a_new_server():
    svc = start("redis", name="test-bk-rdb", config=bk.RDB_ONLY)
    r = svc.client()
    r.flushall()
    bk.write_keys(r, "k:", 0, 200)
    bk.snapshot(r)
    bk.write_keys(r, "k:", 200, 250)
    assert r.info("persistence")["rdb_changes_since_last_save"] == 50
    svc, seconds = bk.crash_and_restart(svc)
    assert seconds >= 0 and bk.count_keys(svc.client(), "k:") == 200

    backup = bk.create_backup(svc, "test-bk")
    assert backup.keys == 200 and backup.size > 0 and backup.path.parent == bk.backups_dir()
    ok, report = bk.check_rdb(backup.path)
    assert ok in (True, None) and report
    new = bk.restore(backup, "test-bk-restored")
    assert new.port != svc.port
    assert bk.count_keys(new.client(), "k:") == 200
    again = bk.restore(backup.path, "test-bk-restored")  # repeatable: the old one is replaced
    assert again.client().dbsize() == 200


def test_aof_keeps_every_acknowledged_write_across_kill_and_compacts():
    svc = start("redis", name="test-bk-aof", config=bk.AOF_EVERYSEC)
    r = svc.client()
    r.flushall()
    bk.write_keys(r, "k:", 0, 300)
    svc, _ = bk.crash_and_restart(svc)
    r = svc.client()
    assert bk.count_keys(r, "k:") == 300
    for _ in range(2000):
        r.incr("counter")
    before = bk.aof_size(r)
    bk.rewrite_aof(r)
    assert bk.aof_size(r) < before
    manifest = [f for f in bk.aof_files(r) if f.name.endswith(".manifest")]
    assert manifest
    ok, _ = bk.check_aof(manifest[0])
    assert ok in (True, None)


def test_aof_survives_a_crash_right_after_start_and_flushall():
    """everysec postpones writes while the first fsync runs; crash_and_restart lets them reach the OS."""
    for round_ in range(3):
        svc = start("redis", name=f"test-bk-aof-fresh{round_}", config=bk.AOF_EVERYSEC)
        r = svc.client()
        r.flushall()
        bk.write_keys(r, "k:", 0, 300)
        assert bk.aof_held_back(r) >= 0
        svc, _ = bk.crash_and_restart(svc)
        assert bk.count_keys(svc.client(), "k:") == 300
        assert bk.aof_held_back(svc.client()) == 0


def test_aof_held_back_is_zero_without_aof():
    svc = start("redis", name="test-bk-rdb", config=bk.RDB_ONLY)
    assert bk.aof_held_back(svc.client()) == 0
    assert bk.wait_for_aof_write(svc.client()) < 1


def test_snapshot_waits_for_a_slow_save():
    svc = start("redis", name="test-bk-slow", config={**bk.RDB_ONLY, "rdb-key-save-delay": "1000"})
    r = svc.client()
    r.flushall()
    bk.write_keys(r, "k:", 0, 200)
    bk.snapshot(r)
    assert r.info("persistence")["rdb_bgsave_in_progress"] == 0
    assert r.info("persistence")["rdb_changes_since_last_save"] == 0


def test_memcached_restart_is_empty():
    svc = start("memcached", name="test-bk-mc")
    mc = svc.client()
    mc.set("a", b"1")
    svc, _ = bk.crash_and_restart(svc)
    assert svc.client().get("a") is None


def test_restore_explains_a_missing_file(tmp_path):
    with pytest.raises(LabError, match="not found"):
        bk.restore(tmp_path / "nope.rdb", "test-bk-none")


def test_crash_drill_widget_counts_survivors():
    rdb = start("redis", name="test-bk-rdb", config=bk.RDB_ONLY)
    aof = start("redis", name="test-bk-aof", config=bk.AOF_EVERYSEC)
    drill = bk.CrashDrill(rdb, aof, prefix="drilltest:")
    drill.write(50)
    drill.snapshot()
    drill.write(30)
    assert drill.crash() == {"RDB only": 50, "AOF everysec": 80}
    assert "kill -9" in drill.out.value


def test_crash_and_restart_of_a_paused_or_dead_server():
    svc = start("redis", name="test-bk-aof-paused", config=bk.AOF_EVERYSEC)
    svc.pause()
    svc, _ = bk.crash_and_restart(svc)      # SIGKILL works on a stopped process; nothing to wait for
    assert svc.client().ping()
    svc.kill()
    svc, _ = bk.crash_and_restart(svc)      # already dead: restarted from its files
    assert svc.client().ping()
