"""Lab 09 (replication and failover): exercises, checked against the lab's replication group."""

from __future__ import annotations

import time
from typing import Any

from helpers.exercises.core import (
    Exercise,
    Wrong,
    call_learner,
    expect_choice,
    expect_number,
    expect_type,
    outside_budget,
)
from helpers.runtime.i18n import translator
from helpers.runtime.services import Service, start

_ = translator(__name__)

LAB = "09"
SERVICE = "lab09"


def lab_service() -> Service:
    """The lab's replication group: 1 primary, 2 replicas, 3 Sentinels (started or healed)."""
    return start("replicated", name=SERVICE)


# --- q1: where is the primary? ------------------------------------------------------------------


def _primary_port() -> int:
    from helpers.runtime.topologies import current_primary

    return current_primary(lab_service())[1]


def _check_primary(answer: Any) -> str:
    expect_type(answer, int, _("the port"))
    svc = lab_service()
    port = _primary_port()
    if answer == 26379:
        raise Wrong(_("26379 is Sentinel's default port. Sentinel knows where the primary is, but the primary "
                      "itself listens elsewhere: ask Sentinel (topo.current_primary(svc))."))
    if answer == 6379:
        raise Wrong(_("6379 is Redis's default port; the lab picks free ports. Ask Sentinel: topo.current_primary(svc)."))
    if answer in [n.port for n in svc.nodes if n.role == "sentinel"]:
        raise Wrong(_("{answer} is one of the Sentinels, not the primary. Sentinel *tells* you where the primary is.",
                      answer=answer))
    if answer != port:
        raise Wrong(_("{answer} is not the current primary. After a failover the primary moves: ask Sentinel "
                      "(topo.current_primary(svc)) instead of remembering a port.", answer=answer))
    return _("Clients ask Sentinel, as ElastiCache clients use the primary endpoint: the address follows the primary.")


q1 = Exercise(
    lab=LAB, qid="q1", title="Which port does the primary listen on right now?",
    checker=_check_primary,
    hint_text="topo.current_primary(svc) returns (host, port) as the Sentinels see it.",
    solution_text="answer = topo.current_primary(svc)[1]",
    make_reference=_primary_port,
    wrong=[(26379, "Sentinel's default port"), ("6379", "whole number"), (1, "not the current primary")],
)


# --- q3: a write that a replica has confirmed ---------------------------------------------------------


def _safe_write_reference(r: Any, key: str, value: str) -> bool:
    r.set(key, value)
    return r.wait(1, 500) >= 1


MIN_WAIT_TIMEOUT_MS = 10  # a shorter WAIT timeout is shorter than a cross-AZ round trip plus the replica's ack


def _record_waits(r: Any) -> list[tuple[int, int]]:
    """The (numreplicas, timeout_ms) of every WAIT sent through `r` from now on, as the server receives them
    (r.wait and r.execute_command('WAIT', ...) both pass through the client's execute_command)."""
    seen: list[tuple[int, int]] = []
    send = r.execute_command

    def recording(*args: Any, **options: Any) -> Any:
        if args and str(args[0]).upper() == "WAIT" and len(args) >= 3:
            try:
                seen.append((int(args[1]), int(args[2])))
            except (TypeError, ValueError):
                pass  # the server answers a malformed WAIT with its own error
        return send(*args, **options)

    r.execute_command = recording
    return seen


def _check_safe_write(answer: Any) -> str:
    from helpers.runtime import topologies

    if not callable(answer):
        raise Wrong(_("Expected a function safe_write(r, key, value), but got {kind}.", kind=type(answer).__name__))
    svc = lab_service()
    r = topologies.primary_client(svc, socket_timeout=3)
    key = "lab09:q3"
    r.delete(key)
    waits = _record_waits(r)
    result = call_learner(answer, r, key, "v1", what=_("your function safe_write(r, key, value)"))
    short = [w for w in waits if 0 < w[1] < MIN_WAIT_TIMEOUT_MS]
    if short:
        raise Wrong(_("Your WAIT gives the replicas {timeout} ms to confirm (WAIT {numreplicas} {timeout}): on "
                      "AWS a replica in another Availability Zone needs about that just for the round trip, so "
                      "healthy replicas would often count as missing. The arguments are (numreplicas, timeout_ms): "
                      "r.wait(1, 500).", timeout=short[0][1], numreplicas=short[0][0]))
    if r.get(key) != "v1":
        raise Wrong(_("After safe_write(r, 'lab09:q3', 'v1') the primary does not hold 'v1' under that key. "
                      "Write it with r.set(key, value) first."))
    if not isinstance(result, bool):
        raise Wrong(_("safe_write should return True or False, but it returned {result!r} "
                      "({kind}). Compare what r.wait(...) returns with 1.", result=result, kind=type(result).__name__))
    if result is not True:
        raise Wrong(_("With every replica healthy, safe_write returned False. r.wait(numreplicas, timeout_ms) "
                      "returns how many replicas confirmed; at least 1 means the write is safe."))
    replicas = [n for n in svc.nodes if n.role == "replica" and n.alive()]
    for n in replicas[1:]:  # one replica left to confirm: one confirmation is enough
        n.pause()
    try:
        result = call_learner(answer, r, key, "v1", what=_("your function safe_write(r, key, value)"))
    finally:
        for n in replicas[1:]:
            n.resume()
    if result is not True:
        raise Wrong(_("With one replica running (the others frozen), safe_write returned False, but that replica "
                      "has the write: one confirmation is enough. Return r.wait(1, timeout_ms) >= 1."))
    for n in replicas:  # freeze every replica: nobody can confirm now
        n.pause()
    try:
        result = call_learner(answer, r, key, "v2", what=_("your function safe_write(r, key, value)"))
    finally:
        for n in replicas:
            n.resume()
    if result is True:
        raise Wrong(_("With every replica frozen, safe_write still returned True: no replica has the write, so "
                      "a failover now would lose it. Call r.wait(1, timeout_ms) after the SET and return whether "
                      "it is >= 1."))
    return (_("WAIT does not make the write synchronous, but it tells you it reached a replica: the one "
              "Sentinel will promote."))


q3 = Exercise(
    lab=LAB, qid="q3", title="A write confirmed by at least one replica (WAIT)",
    checker=_check_safe_write,
    hint_text="r.set(key, value), then r.wait(1, 500): the number of replicas that have the write (within 500 ms).",
    solution_text="def safe_write(r, key, value):\n    r.set(key, value)\n    return r.wait(1, 500) >= 1",
    reference=_safe_write_reference,
    wrong=[
        (lambda r, k, v: bool(r.set(k, v)), "no replica has the write"),
        (lambda r, k, v: r.wait(1, 500) >= 1, "does not hold"),
        (lambda r, k, v: (r.set(k, v), r.wait(1, 500))[1], "return true or false"),
        ("safe_write", "expected a function"),
        (lambda r, k, v: (r.set(k, v), r.wait(2, 500) >= 2)[1], "one confirmation is enough"),
        (lambda r, k, v: (r.set(k, v), r.wait(500, 1) >= 1)[1], "ms to confirm"),
    ],
)


# --- q4: what you control on AWS for automatic failover -----------------------------------------

SWITCHES = ["down-after-milliseconds", "multi-az with automatic failover", "number of shards",
            "backup retention period"]
ENDPOINTS = ["primary endpoint", "reader endpoint", "the primary node's own endpoint", "the primary's ip address"]


def _check_aws_failover(answer: Any) -> str:
    from helpers.exercises.core import expect_keys

    expect_keys(answer, ["switch", "replicas", "endpoint"], _("your answer"))
    switch = expect_choice(answer["switch"], SWITCHES, _("the switch"))
    if switch == "down-after-milliseconds":
        raise Wrong(_("down-after-milliseconds is a Sentinel setting, and ElastiCache has no Sentinel you can see: it "
                      "runs the failure detection itself. What you turn on is the group's Multi-AZ / automatic "
                      "failover setting."))
    if switch != "multi-az with automatic failover":
        raise Wrong(_("{switch!r} does not make a replica take over when the primary dies.", switch=switch))
    expect_type(answer["replicas"], int, "answer['replicas']")
    if answer["replicas"] < 1:
        raise Wrong(_("With 0 replicas there is nothing to promote: Multi-AZ needs at least one read replica "
                      "(more than one node per shard)."))
    if answer["replicas"] > 1:
        raise Wrong(_("{replicas} replicas work, but the question asks for the fewest that make automatic "
                      "failover possible.", replicas=answer["replicas"]))
    endpoint = expect_choice(answer["endpoint"], ENDPOINTS, _("the endpoint"))
    if endpoint != "primary endpoint":
        raise Wrong(_("With {endpoint!r} the application keeps talking to the old node after a failover. ElastiCache "
                      "repoints the primary endpoint's DNS name to the promoted replica, so an application that "
                      "writes to the primary endpoint needs no change.", endpoint=endpoint))
    return (_("Multi-AZ with automatic failover, at least one replica, and the primary endpoint: ElastiCache detects "
              "the failure, promotes a replica and repoints the endpoint's DNS name; you rehearse it with "
              "TestFailover."))


q4 = Exercise(
    lab=LAB, qid="q4", title="What you control on ElastiCache for automatic failover",
    checker=_check_aws_failover,
    hint_text="ElastiCache never shows you Sentinel. Look at the table in section 7: the console switch, how "
              "many replicas there must be to promote one, and the endpoint whose DNS name follows the primary.",
    solution_text="answer = {'switch': 'multi-az with automatic failover', 'replicas': 1, "
                  "'endpoint': 'primary endpoint'}",
    reference={"switch": "multi-az with automatic failover", "replicas": 1, "endpoint": "primary endpoint"},
    wrong=[({"switch": "down-after-milliseconds", "replicas": 1, "endpoint": "primary endpoint"}, "no Sentinel"),
           ({"switch": "multi-az with automatic failover", "replicas": 0, "endpoint": "primary endpoint"},
            "at least one read replica"),
           ({"switch": "multi-az with automatic failover", "replicas": 1, "endpoint": "the primary's ip address"},
            "repoints"),
           ({"switch": "number of shards", "replicas": 1, "endpoint": "primary endpoint"}, "does not make"),
           ("down-after-milliseconds", "dictionary")],
)


# --- q2: replication lag in bytes from INFO ------------------------------------------------------


def _lag_reference(info: dict[str, Any]) -> int:
    offsets = [v["offset"] for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return max(info["master_repl_offset"] - o for o in offsets) if offsets else 0


LAG_SETTLE_S = 10.0  # how long the checker waits for one replica behind and the other caught up


def _offsets(info: dict[str, Any]) -> list[int]:
    return [v["offset"] for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]


def _info_with_one_replica_behind(svc: Service, r: Any) -> dict[str, Any]:
    """INFO replication of the primary while one replica is frozen (SIGSTOP) after a write and the other
    has acknowledged it, so the two replicas' offsets really differ (min and max give different lags).

    A replica acknowledges its offset only once a second (REPLCONF ACK); WAIT makes the live replicas
    acknowledge at once (the primary sends REPLCONF GETACK), so the live one catches up in the primary's
    view while the frozen one cannot answer."""
    replicas = [n for n in svc.nodes if n.role == "replica" and n.alive()]
    if len(replicas) < 2:
        raise RuntimeError(_("the lab's replication group has {n} running replica(s), not 2: "
                             "run the notebook's set-up cell again, then the check", n=len(replicas)))
    behind = replicas[0]
    behind.pause()
    try:
        deadline = time.monotonic() + LAG_SETTLE_S
        while True:
            r.set("lab09:q2", "x" * 2000)
            r.wait(len(replicas) - 1, 300)
            info = r.info("replication")
            offsets = _offsets(info)
            if len(offsets) >= 2 and min(offsets) < max(offsets):
                return info
            if time.monotonic() > deadline:
                raise RuntimeError(_("the replicas' offsets did not come apart within {seconds:g} s "
                                     "(offsets {offsets}); run the check again", seconds=LAG_SETTLE_S,
                                     offsets=offsets))
    finally:
        behind.resume()


def _check_lag(answer: Any) -> str:
    from helpers.runtime import topologies

    with outside_budget():
        svc = lab_service()
        info = _info_with_one_replica_behind(svc, topologies.primary_client(svc, socket_timeout=5))
    expected = _lag_reference(info)
    fastest = info["master_repl_offset"] - max(_offsets(info))
    result = call_learner(answer, dict(info), what=_("your function lag_bytes(info)"))
    # The same INFO after 4 KiB more writes that no replica has acknowledged yet: a fixed number cannot
    # answer both.
    later = {**info, "master_repl_offset": info["master_repl_offset"] + 4096}
    later_result = call_learner(answer, dict(later), what=_("your function lag_bytes(info)"))
    if isinstance(result, dict):
        raise Wrong(_("lag_bytes returned a dict; return one number: how many bytes the slowest replica is behind."))
    value = expect_number(result, _("what lag_bytes returns"))
    replica_lag_s = [v.get("lag") for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    if value in replica_lag_s and value != expected:
        raise Wrong(_("That is the 'lag' field: seconds since the replica's last acknowledgement, not bytes. "
                      "Subtract each replica's offset from master_repl_offset."))
    if value == fastest and value != expected:
        raise Wrong(_("lag_bytes returned {value:g}: how far the fastest replica is behind. The question asks for "
                      "the slowest one ({expected} bytes behind): master_repl_offset minus the smallest replica "
                      "offset.", value=value, expected=expected))
    if value != expected:
        raise Wrong(_("lag_bytes returned {value:g}, but the slowest replica is {expected} bytes behind "
                      "(master_repl_offset minus the smallest replica offset).", value=value, expected=expected))
    if later_result != expected + 4096:
        raise Wrong(_("With master_repl_offset 4096 bytes further on (the replicas' offsets unchanged), lag_bytes "
                      "returned {got!r} instead of {want}: compute the lag from the info "
                      "you are given.", got=later_result, want=expected + 4096))
    return _("The slowest replica was {expected} bytes behind: ElastiCache's ReplicationLag metric tracks this in "
             "seconds.", expected=expected)


q2 = Exercise(
    lab=LAB, qid="q2", title="Replication lag in bytes, from INFO replication",
    checker=_check_lag,
    hint_text="info['master_repl_offset'] is where the primary is; info['slave0']['offset'] where replica 0 is.",
    solution_text=("def lag_bytes(info):\n"
                   "    offsets = [v['offset'] for k, v in info.items() if k.startswith('slave')]\n"
                   "    return max(info['master_repl_offset'] - o for o in offsets)"),
    reference=_lag_reference,
    wrong=[
        (lambda info: info, "returned a dict"),
        (lambda info: 0, "bytes"),
        (lambda info: info["master_repl_offset"], "bytes behind"),
        (lambda info: info["slave9"]["offset"], "raised KeyError"),
        (lambda info: info["master_repl_offset"] - max(
            v["offset"] for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)), "fastest replica"),
    ],
)
