"""Replicated (Sentinel), cluster and Memcached-pool topologies: real processes, real faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from helpers import start, stop
from helpers.measure.faults import fault_panel
from helpers.runtime import engines, services
from helpers.runtime import topologies as topo
from helpers.runtime.topologies import nodes


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


# --- memcached-pool ------------------------------------------------------------------------------


def test_pool_is_idempotent_and_survives_a_killed_node():
    svc = start("memcached-pool", name="t-pool", nodes=3, memory_mb=16)
    assert [n.pid for n in start("memcached-pool", name="t-pool", nodes=3, memory_mb=16).nodes] == \
        [n.pid for n in svc.nodes]
    mc = topo.pool_client(svc)
    keys = [f"k{i}" for i in range(300)]
    for k in keys:
        assert mc.set(k, k)
    per_node = [int(c.stats()[b"curr_items"]) for c in mc.clients.values()]  # spread over every node
    assert len(per_node) == 3 and min(per_node) > 30
    victim = svc.kill(svc.nodes[1])
    # The client does not raise: the victim's keys are misses, then they move to the others.
    hits = sum(mc.get(k) is not None for k in keys)
    assert 100 < hits < 300
    deadline = time.monotonic() + 10  # after retry_timeout the client drops the node and rehashes
    while True:
        for k in keys:
            mc.set(k, k)
        if sum(mc.get(k) == k.encode() for k in keys) == len(keys):
            break
        assert time.monotonic() < deadline, "the pool client never routed around the dead node"
        time.sleep(0.2)
    healed = start("memcached-pool", name="t-pool", nodes=3, memory_mb=16)
    node = healed.node(name=victim.name)
    assert node.alive() and node.port == victim.port and node.pid != victim.pid


def test_fault_panel_kills_pauses_and_heals_headless():
    svc = start("memcached-pool", name="t-panel", nodes=2, memory_mb=16)
    panel = fault_panel(svc)
    name = svc.nodes[0].name
    panel.buttons[name]["pause"].click()
    assert panel.refresh()[0]["state"] == "paused"
    panel.buttons[name]["resume"].click()
    panel.buttons[name]["kill"].click()
    assert {r["name"]: r["state"] for r in panel.refresh()}[name] == "dead"
    panel.heal_button.click()
    assert all(r["state"] == "running" for r in panel.refresh())
    assert "Kill" in panel.buttons[name]["kill"].description and panel.log


# --- replicated ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicated():
    """Started the way a learner does from a shell: `python -m helpers start replicated --json`."""
    out = subprocess.run([sys.executable, "-m", "helpers", "start", "replicated", "--json"], capture_output=True,
                         text=True, env=os.environ, timeout=120, check=True)
    printed = json.loads(out.stdout)["services"]["replicated"]
    svc = start("replicated")
    yield svc, printed
    pids = [n.pid for n in services.get("replicated").nodes]
    assert stop("replicated") == ["replicated"]
    assert _gone(pids)


def test_cli_prints_every_node_and_start_twice_is_the_same(replicated):
    svc, printed = replicated
    nodes = printed["nodes"]
    assert sorted(n["role"] for n in nodes) == ["primary", "replica", "replica", "sentinel", "sentinel", "sentinel"]
    assert all(n["host"] == "127.0.0.1" and n["port"] and n["pid"] and n["state"] == "running" for n in nodes)
    assert sorted(n.pid for n in svc.nodes) == sorted(n["pid"] for n in nodes)


def test_failover_promotes_a_replica_and_the_client_follows(replicated):
    svc = replicated[0]
    c = topo.primary_client(svc)
    c.set("t:before", "1")
    assert c.wait(1, 2000) >= 1  # acknowledged by a replica: it must survive the failover
    old = svc.node(role="primary")
    assert topo.current_primary(svc) == (old.host, old.port)
    assert topo.replica_client(svc).get("t:before") == "1"
    svc.kill(old)
    t0 = time.monotonic()
    while True:
        try:
            c.set("t:after", "2")
            break
        except Exception:
            assert time.monotonic() - t0 < 30, "no primary after 30 s"
            time.sleep(0.05)
    window = time.monotonic() - t0
    print(f"unavailability window: {window:.2f} s")
    assert topo.current_primary(svc) != (old.host, old.port)
    assert c.get("t:before") == "1"
    svc = topo.refresh_roles(svc)
    assert svc.nodes[0].role == "primary" and svc.nodes[0].port != old.port
    assert services.get("replicated").nodes[0].port == svc.nodes[0].port  # recorded
    healed = start("replicated")  # restarts the old primary as a replica
    back = healed.node(name=old.name)
    assert back.alive() and back.role == "replica"
    r = topo.node_client(healed, back)
    deadline = time.monotonic() + 20
    while r.info("replication").get("master_link_status") != "up" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.get("t:after") == "2"


def test_measure_failover_reports_the_window_and_loses_no_acknowledged_write(replicated):
    from helpers.measure.faults import measure_failover, plot_failover

    svc = start("replicated")  # heals what the previous test killed
    topo.wait_replicas_synced(svc)
    report = measure_failover(svc, prefix="t:mf", writes_after=5)
    assert report.new_primary != report.old_primary
    assert 0 < report.window_s < 30 and report.lost_acked == [] and len(report.acked) >= 5
    assert report.summary()["acknowledged_lost"] == 0
    assert plot_failover(report).get_title().startswith("Writes during a failover")
    assert services.get("replicated").nodes[0].port == report.new_primary[1]  # roles re-read and recorded


def test_a_sentinel_that_missed_the_failover_is_not_believed():
    svc = start("replicated", name="t-stale", replicas=1)
    try:
        old = topo.current_primary(svc)
        stale = svc.kill(svc.nodes_by(role="sentinel")[0])   # this Sentinel will miss the failover
        svc.kill(svc.nodes_by(role="primary")[0])

        def moved():
            return topo.current_primary(svc) if topo.current_primary(svc) != old else None

        new = nodes.wait_for(moved, 30, "the two remaining Sentinels to fail over", interval=0.1)
        engines.restart_node(stale, nodes.node_probe(stale))  # back with its old config file
        topo.record(svc)  # the restarted Sentinel is the service's again (stop() stops what is recorded)
        assert topo.current_primary(svc) == new   # the higher config epoch wins over the stale answer
    finally:
        stop("t-stale")


def test_traffic_counts_every_request():
    from helpers.measure.faults import Traffic

    svc = start("redis", name="t-traffic")
    with Traffic(lambda: svc.client(), prefix="t:traffic", keys=10) as t:
        time.sleep(0.3)
        t.mark("half way")
        time.sleep(0.2)
    assert t.ok > 10 and t.failed == 0 and t.wrong == 0
    assert t.summary()["requests_ok"] == t.ok and t.plot().get_title()
    svc.kill()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with Traffic(lambda: svc.client(socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)),
                 prefix="t:traffic") as t:
        time.sleep(0.2)
    assert t.failed > 0 and t.ok == 0 and "ConnectionError" in t.errors[0]


def test_replicated_with_a_password_keeps_it_off_command_lines():
    svc = start("replicated", name="t-auth", replicas=1, password=True)
    try:
        secret = svc.password()
        assert secret and all(secret not in " ".join(psutil.Process(n.pid).cmdline()) for n in svc.nodes)
        assert topo.primary_client(svc).ping() and topo.replica_client(svc).ping()
    finally:
        stop("t-auth")


# --- cluster -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _cluster_service():
    start("cluster", name="t-cluster", shards=3, replicas=0)
    yield
    stop("t-cluster")


@pytest.fixture
def cluster(_cluster_service):
    """The shared cluster, healed and back to 3 shards whatever an earlier (failed) test left behind."""
    try:
        svc = topo.resize(start("cluster", name="t-cluster", shards=3, replicas=0), 3)
        topo.wait_cluster_ok(svc)
    except Exception:  # beyond repair: a fresh one, so one failure does not fail every later test
        stop("t-cluster")
        start("cluster", name="t-cluster", shards=3, replicas=0)
    return services.get("t-cluster")


def test_cluster_serves_all_slots(cluster):
    rc = topo.cluster_client(cluster)
    owners = topo.slot_owners(cluster)
    assert len(owners) == topo.CLUSTER_SLOTS and len(set(owners.values())) == 3
    info = topo.node_client(cluster, cluster.nodes[0]).execute_command("CLUSTER", "INFO")
    assert "cluster_slots_assigned:16384" in info and "cluster_state:ok" in info
    for i in range(300):
        rc.set(f"t:{i}", i)
    assert [int(v) for v in rc.mget_nonatomic([f"t:{i}" for i in range(300)])] == list(range(300))
    assert start("cluster", name="t-cluster", shards=3, replicas=0).nodes[0].pid == cluster.nodes[0].pid


def test_resharding_under_load_loses_no_request(cluster):
    rc = topo.cluster_client(cluster)
    for i in range(500):
        rc.set(f"load:{i}", i)
    failures: list[str] = []
    done = [0]
    stop_flag = threading.Event()

    def traffic() -> None:
        c = topo.cluster_client(cluster)
        i = 0
        while not stop_flag.is_set():
            k = f"load:{i % 500}"
            try:
                c.set(k, i % 500)
                if int(c.get(k)) != i % 500:
                    failures.append(f"wrong value for {k}")
                done[0] += 1
            except Exception as exc:
                failures.append(repr(exc))
            i += 1

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        svc = topo.add_shard(cluster, replicas=0)
        primaries = [n for n in svc.nodes if n.role == "primary"]
        assert len(primaries) == 4 and len(set(topo.slot_owners(svc).values())) == 4
        svc = topo.remove_shard(svc, primaries[-1].port)
    finally:
        stop_flag.set()
        t.join(10)
    print(f"requests during resharding: {done[0]}, failed: {len(failures)}")
    assert failures == [], failures[:5]
    assert done[0] > 50
    assert len(topo.slot_owners(svc)) == topo.CLUSTER_SLOTS and len([n for n in svc.nodes if n.role == "primary"]) == 3
    assert [int(v) for v in rc.mget_nonatomic([f"load:{i}" for i in range(500)])] == list(range(500))


def test_move_slots_reports_keys_and_rejects_bad_input(cluster):
    from helpers.runtime.state import LabError

    rc = topo.cluster_client(cluster)
    rc.set("{mv}a", 1)
    slot = rc.keyslot("{mv}a")
    owner = topo.slot_owners(cluster)[slot]
    target = next(n for n in services.get("t-cluster").nodes if n.role == "primary" and n.port != owner)
    assert topo.move_slots(cluster, [slot], target.port) == 1
    assert topo.slot_owners(cluster)[slot] == target.port and rc.get("{mv}a") == "1"
    with pytest.raises(LabError):
        topo.move_slots(cluster, [20000], target.port)


def test_rebalance_plan_and_resize(cluster):
    svc = topo.resize(services.get("t-cluster"), 4)
    counts: dict[int, int] = {}
    for port in topo.slot_owners(svc).values():
        counts[port] = counts.get(port, 0) + 1
    assert len(counts) == 4 and max(counts.values()) - min(counts.values()) <= 8, counts
    newest = [n for n in svc.nodes if n.role == "primary"][-1]
    assert topo.rebalance_slots(svc, newest) == []  # already fair
    svc = topo.resize(svc, 3)
    assert len(set(topo.slot_owners(svc).values())) == 3 and not newest.alive()


def test_an_interrupted_migration_is_finished(cluster):
    svc = services.get("t-cluster")
    rc = topo.cluster_client(svc)
    rc.mset({"{fix}a": "1", "{fix}b": "2"})
    slot = rc.keyslot("{fix}a")
    src = next(n for n in svc.nodes if n.port == topo.slot_owners(svc)[slot])
    tgt = next(n for n in svc.nodes if n.role == "primary" and n.port != src.port)
    topo.node_client(svc, tgt).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.extra["node_id"])
    topo.node_client(svc, src).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", tgt.extra["node_id"])
    topo.node_client(svc, src).execute_command("MIGRATE", tgt.host, tgt.port, "", 0, 5000, "KEYS", "{fix}a")
    assert topo.open_slots(svc) == {slot: ("migrating", tgt.extra["node_id"])}
    assert topo.fix_open_slots(svc) == 1
    assert topo.open_slots(svc) == {} and topo.slot_owners(svc)[slot] == tgt.port
    assert rc.mget("{fix}a", "{fix}b") == ["1", "2"]


def test_killed_cluster_node_is_healed(cluster):
    svc = services.get("t-cluster")
    victim = svc.kill(svc.nodes[-1])
    healed = start("cluster", name="t-cluster", shards=3, replicas=0)
    assert healed.node(name=victim.name).alive()
    assert len(topo.slot_owners(healed)) == topo.CLUSTER_SLOTS


def test_stop_leaves_nothing():
    svc = start("memcached-pool", name="t-stop", nodes=2, memory_mb=16)
    pids = [n.pid for n in svc.nodes]
    stop("t-stop")
    assert _gone(pids) and services.get("t-stop") is None


def test_cluster_over_tls_with_a_password(engine_with_tls):
    pytest.importorskip("helpers.runtime.tls")
    svc = start("cluster", name="t-tls", shards=1, replicas=1, tls=True, password=True)
    try:
        assert all(n.extra.get("tls") for n in svc.nodes)
        rc = topo.cluster_client(svc)
        assert rc.set("t:tls", "1") and rc.get("t:tls") == "1"
        replica = topo.node_client(svc, svc.nodes_by(role="replica")[0])
        assert replica.info("replication")["master_link_status"] == "up"  # replication over TLS with masterauth
        secret = svc.password()
        assert all(secret not in " ".join(psutil.Process(n.pid).cmdline()) for n in svc.nodes)
        # A manual failover changes roles without killing anything: start() reports the new roles.
        old_primary = svc.node(role="primary").name
        replica.execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 20
        while replica.execute_command("ROLE")[0] != "master":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        again = start("cluster", name="t-tls", shards=1, replicas=1, tls=True, password=True)
        assert again.node(name=old_primary).role == "replica" and again.nodes[0].role == "primary"
        assert services.get("t-tls").node(name=old_primary).role == "replica"  # and records them
    finally:
        stop("t-tls")


def test_fault_panel_follows_a_restart_and_says_when_the_group_was_stopped():
    """After Run All a panel outlives its group: a restart by another cell shows its new pids, and a stop
    (the lab's clean-up) turns the panel off with a sentence instead of six "running" rows that do nothing.
    Refreshing a stopped group must not record it again (a ghost service with dead pids)."""
    svc = start("replicated", name="t-panel-gone")
    panel = fault_panel(svc)
    victim = svc.nodes[1]
    svc.kill(victim)
    healed = start("replicated", name="t-panel-gone")  # as lab 09's cell that restarts the dead node
    new_pid = healed.node(name=victim.name).pid
    assert new_pid != victim.pid
    rows = {r["name"]: r for r in panel.refresh(reread_roles=False)}
    assert rows[victim.name]["pid"] == new_pid and rows[victim.name]["state"] == "running"
    assert f"pid {new_pid} " in panel.labels[victim.name].value

    panel.watch(every=0.1)
    assert stop("t-panel-gone") == ["t-panel-gone"]
    deadline = time.monotonic() + 10
    while not panel.gone and time.monotonic() < deadline:  # the watcher notices without a click
        time.sleep(0.05)
    assert panel.gone
    assert all("deleted" in label.value for label in panel.labels.values())
    assert "t-panel-gone was stopped" in panel.log[-1]
    assert all(b.disabled for row in panel.buttons.values() for b in row.values()) and panel.heal_button.disabled
    started = time.monotonic()
    panel.refresh_button.click()
    panel.buttons[victim.name]["pause"].click()
    assert time.monotonic() - started < 5  # no wait on engines that are gone
    assert services.get("t-panel-gone") is None, "refreshing a stopped group recorded it again"
    assert all(r["state"] == "deleted" for r in panel.refresh())
    panel.close()
