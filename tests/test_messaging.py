"""helpers.topics.messaging against a real Redis: queues, the reaper, crashed workers, streams, pub/sub."""

from __future__ import annotations

import threading
import time

import pytest

from helpers import start
from helpers.runtime.state import LabError
from helpers.topics.messaging import (
    Subscriber,
    WorkerConfig,
    ack,
    clear_prefix,
    enqueue,
    ensure_group,
    guarantees_table,
    pending_by_consumer,
    processing_key,
    publish_all,
    recover_pending,
    reliable_pop,
    requeue_orphans,
    start_worker,
    status_key,
    wait_until,
    work,
)

P = "test:messaging:"


@pytest.fixture()
def svc():
    return start("redis")


@pytest.fixture()
def r(svc):
    client = svc.client()
    clear_prefix(client, P)
    yield client
    clear_prefix(client, P)


def test_clear_prefix_deletes_only_the_prefix(r):
    r.set(P + "a", 1)
    r.set(P + "b", 1)
    r.set("test:other", 1)
    assert clear_prefix(r, P) == 2
    assert r.get("test:other") == "1"
    r.delete("test:other")
    with pytest.raises(LabError):
        clear_prefix(r, "")


def test_wait_until_returns_value_or_explains():
    assert wait_until(lambda: 42, timeout=1) == 42
    with pytest.raises(LabError, match="in vain"):
        wait_until(lambda: False, timeout=0.1, what="nothing")


def test_reliable_pop_is_fifo_and_parks_the_job(r):
    q, proc = P + "q", P + "q:processing:me"
    enqueue(r, q, ["a", "b", "c"])
    assert reliable_pop(r, q, proc) == "a"
    assert r.lrange(proc, 0, -1) == ["a"] and r.llen(q) == 2
    assert ack(r, proc, "a") == 1 and r.llen(proc) == 0
    assert reliable_pop(r, P + "empty", proc, timeout=0.05) is None


def test_reaper_requeues_only_silent_workers(r):
    q = P + "q"
    r.rpush(processing_key(q, "dead"), "j1", "j2")
    r.rpush(processing_key(q, "alive"), "j3")
    r.set(P + "q:alive:alive", "1", px=5000)
    assert requeue_orphans(r, q) == {"dead": 2}
    assert sorted(r.lrange(q, 0, -1)) == ["j1", "j2"]
    assert r.llen(processing_key(q, "alive")) == 1


def test_in_process_workers_finish_every_job(r):
    for mode in ("pop", "reliable"):
        q, done = P + mode, P + mode + ":done"
        enqueue(r, q, [f"j{i}" for i in range(10)])
        assert work(r, WorkerConfig(mode=mode, queue=q, done=done, idle_exit=0.1)) == 10
        assert sorted(r.lrange(done, 0, -1)) == sorted(f"j{i}" for i in range(10))


def test_killed_pop_worker_loses_its_job_reliable_does_not(svc, r):
    for mode, lost in (("pop", 1), ("reliable", 0)):
        q, done = P + mode, P + mode + ":done"
        enqueue(r, q, [f"j{i}" for i in range(6)])
        cfg = WorkerConfig(mode=mode, queue=q, done=done, name=f"crash-{mode}", hang_after=2,
                           heartbeat_ms=200, max_seconds=20)
        w = start_worker(svc, cfg)
        wait_until(lambda cfg=cfg, done=done: r.get(status_key(done, cfg.name)), timeout=20)
        assert w.kill() == -9 and not w.alive()
        time.sleep(0.3)  # let the heartbeat expire
        requeue_orphans(r, q)
        work(r, WorkerConfig(mode=mode, queue=q, done=done, name="healthy", idle_exit=0.1))
        assert len(set(r.lrange(done, 0, -1))) == 6 - lost


def test_stream_crash_and_autoclaim_recovers_everything(svc, r):
    s, done = P + "s", P + "s:done"
    for i in range(20):
        r.xadd(s, {"job": f"j{i}"})
    assert ensure_group(r, s, "g") is True and ensure_group(r, s, "g") is False
    cfg = WorkerConfig(mode="stream", queue=s, group="g", done=done, name="c1", batch=4, hang_after=4,
                       crash_point="after-work", max_seconds=20)
    w = start_worker(svc, cfg)
    wait_until(lambda: r.get(status_key(done, "c1")), timeout=20)
    w.kill()
    assert pending_by_consumer(r, s, "g") == {"c1": 4}
    assert recover_pending(r, s, "g", "c2", min_idle_ms=60_000) == []  # not idle long enough yet
    time.sleep(0.15)
    claimed = recover_pending(r, s, "g", "c2", min_idle_ms=100, count=1)  # follows the cursor
    assert len(claimed) == 4
    for mid, fields in claimed:
        r.rpush(done, fields["job"])
        r.xack(s, "g", mid)
    work(r, WorkerConfig(mode="stream", queue=s, group="g", done=done, name="c2", idle_exit=0.2))
    finished = r.lrange(done, 0, -1)
    assert len(set(finished)) == 20 and len(finished) == 21  # at-least-once: one duplicate
    assert pending_by_consumer(r, s, "g") == {}


def test_pubsub_fans_out_and_forgets(r):
    ch = P + "ch"
    assert publish_all(r, ch, ["nobody"]) == [0]
    with Subscriber(r, ch, "a") as a, Subscriber(r, ch, "b") as b:
        assert publish_all(r, ch, ["m1", "m2"]) == [2, 2]
        wait_until(lambda: len(a.received) == 2 and len(b.received) == 2, timeout=5)
    assert a.received == b.received == ["m1", "m2"]
    assert not [t for t in threading.enumerate() if t.name.startswith("sub-")]


def test_guarantees_table_renders():
    html = guarantees_table([{"primitive": "stream", "lost": 0}])._repr_html_()
    assert "<td>stream</td>" in html
