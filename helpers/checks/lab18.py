"""Lab 18 (global datastores): which endpoint each region's application uses, the lag, and a region failover."""

from __future__ import annotations

import time
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_keys, expect_number
from helpers.runtime.i18n import translator

_ = translator(__name__)
LAB = "18"
ENDPOINTS = ["east-primary", "east-reader", "west-primary", "west-reader"]


# --- q1 and q3: which endpoint each region's application uses ------------------------------------------

def _endpoint_checker(app: str, primary: str) -> Any:
    """Checker for {"reads": ..., "writes": ...} of the application in region `app` (east | west) while
    `primary` (east | west) is the global datastore's primary region."""
    def check(answer: Any) -> str:
        expect_keys(answer, ["reads", "writes"], _("your answer"))
        reads = expect_choice(answer["reads"], ENDPOINTS, "answer['reads']")
        writes = expect_choice(answer["writes"], ENDPOINTS, "answer['writes']")
        if writes != f"{primary}-primary":
            if writes.startswith(primary):
                raise Wrong(_("Writes go to a primary endpoint: {writes} is served by replicas, which answer "
                              "READONLY to a write.", writes=writes))
            raise Wrong(_("{writes} belongs to the secondary region while {primary} is the primary region: its nodes "
                          "are replicas of the other region and answer READONLY to every write. Writes cross regions "
                          "to the {primary}-primary endpoint.", writes=writes, primary=primary))
        if not reads.startswith(app):
            raise Wrong(_("Reading from {reads} is a cross-region round trip for every read (tens of milliseconds "
                          "between AWS regions): the application in {app} reads its own region's copy.",
                          reads=reads, app=app))
        note = "" if reads.endswith("reader") else _(" (Its primary endpoint serves reads too; the reader "
                                                     "endpoint spreads them over the replicas when the group has "
                                                     "some.)")
        if app == primary:
            return _("The primary region reads and writes locally.") + note
        return (_("Reads stay in the region (a little stale: by the replication lag); writes cross to the "
                  "primary region's primary endpoint.") + note)

    return check


q1 = Exercise(
    lab=LAB, qid="q1", title="The second region's application, before a failover",
    checker=_endpoint_checker("west", "east"),
    hint_text="Which nodes accept writes in a global datastore? Which copy of the data is closest to the west app?",
    solution_text="answer = {'reads': 'west-reader', 'writes': 'east-primary'}",
    reference={"reads": "west-reader", "writes": "east-primary"},
    also_right=[{"reads": "west-primary", "writes": "east-primary"}],
    wrong=[({"reads": "west-reader", "writes": "west-primary"}, "READONLY"),
           ({"reads": "east-reader", "writes": "east-primary"}, "cross-region"),
           ({"reads": "west-reader", "writes": "east-reader"}, "primary endpoint"),
           ({"reads": "west"}, "missing")],
)

q3 = Exercise(
    lab=LAB, qid="q3", title="The first region's application, after the failover",
    checker=_endpoint_checker("east", "west"),
    hint_text="After failover-global-replication-group, which region's primary accepts writes, and which region's "
              "copy is local to the east app?",
    solution_text="answer = {'reads': 'east-reader', 'writes': 'west-primary'}",
    reference={"reads": "east-reader", "writes": "west-primary"},
    also_right=[{"reads": "east-primary", "writes": "west-primary"}],
    wrong=[({"reads": "east-reader", "writes": "east-primary"}, "READONLY"),
           ({"reads": "west-reader", "writes": "west-primary"}, "cross-region"),
           ({"reads": "east-reader", "writes": "nowhere"}, "not one of the choices")],
)


# --- q2: measure the lag ----------------------------------------------------------------------------

CHECK_PRIMARY, CHECK_SECONDARY = "lab18-check-primary", "lab18-check-secondary"


def _pair() -> tuple[Any, Any]:
    """Two real servers, the second a replica of the first (what a secondary's primary node is)."""
    import redis

    from helpers.runtime import services

    a = services.start("redis", name=CHECK_PRIMARY)
    b = services.start("redis", name=CHECK_SECONDARY)
    ra = redis.Redis(a.host, a.port, decode_responses=True, socket_timeout=5)
    rb = redis.Redis(b.host, b.port, decode_responses=True, socket_timeout=5)
    # The primary would wait 5 s (repl-diskless-sync-delay) for more replicas before its first full sync; there
    # is only one, and the lag measured is the steady state's, after the sync.
    ra.config_set("repl-diskless-sync-delay", 0)
    rb.execute_command("REPLICAOF", a.host, a.port)
    deadline = time.monotonic() + 15
    while rb.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError(_("the checker's replica did not sync"))
        time.sleep(0.05)
    return ra, rb


def _stop_pair() -> None:
    from helpers.runtime import services

    for name in (CHECK_SECONDARY, CHECK_PRIMARY):
        services.stop(name)


def _calls(r: Any) -> int:
    """Commands the learner sent (every command but the checker's own INFO)."""
    return sum(int(v.get("calls", 0)) for k, v in r.info("commandstats").items()
               if k not in ("cmdstat_info", "cmdstat_replconf", "cmdstat_ping", "cmdstat_psync"))


def _reads(r: Any) -> int:
    s = r.info("stats")
    return int(s.get("keyspace_hits", 0)) + int(s.get("keyspace_misses", 0))


def _hits(r: Any) -> int:
    return int(r.info("stats").get("keyspace_hits", 0))


def _check_lag(fn: Any) -> str:
    if not callable(fn):
        raise Wrong(_("Answer with your function measure_lag itself (no parentheses after its name)."))
    primary, secondary = _pair()
    try:
        calls, reads, hits = _calls(primary), _reads(secondary), _hits(secondary)
        result = call_learner(fn, primary, secondary, what="measure_lag(primary, secondary)")
        value = expect_number(result, _("what measure_lag returns"))
        if _calls(primary) == calls:
            raise Wrong(_("Your function sent nothing to the primary: write a key there first, then time how long it "
                          "takes to be readable on the secondary."))
        if _reads(secondary) == reads:
            raise Wrong(_("Your function never read from the secondary: the lag is the time until the secondary "
                          "returns the value written on the primary."))
        if _hits(secondary) == hits:
            raise Wrong(_("Your function stopped before the secondary returned the value: every read it made there "
                          "missed. The lag ends when a read on the secondary finds the key (loop while it is None)."))
        if value < 0:
            raise Wrong(_("A lag cannot be negative ({value}).", value=value))
        if value >= 5:
            raise Wrong(_("{value} seconds is far too long for two servers on one machine: return seconds (e.g. "
                          "time.perf_counter() differences), not milliseconds.", value=value))
    finally:
        _stop_pair()
    return (_("Your function measured {value:.2f} ms on this machine. Between AWS regions the network "
              "alone adds tens of milliseconds, and AWS reports GlobalDatastoreReplicationLag in seconds.",
              value=value * 1000))


def _reads_too_early(primary: Any, secondary: Any) -> float:
    import uuid

    key = f"lag:{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    secondary.get(key)  # read before the write: it cannot find the key, so it measures nothing
    primary.set(key, "1")
    return time.perf_counter() - t0


def measure_lag_reference(primary: Any, secondary: Any) -> float:
    import uuid

    key = f"lag:{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    primary.set(key, "1")
    while secondary.get(key) is None:
        time.sleep(0.0005)
    return time.perf_counter() - t0


def _never_measures(primary: Any, secondary: Any) -> float:
    return 0.0


def _reads_the_primary(primary: Any, secondary: Any) -> float:
    t0 = time.perf_counter()
    primary.set("lag", "1")
    primary.get("lag")
    return time.perf_counter() - t0


def _says_fast(primary: Any, secondary: Any) -> str:
    primary.set("lag", "1")
    secondary.get("lag")
    return "fast"


q2 = Exercise(
    lab=LAB, qid="q2", title="Measure the replication lag yourself",
    checker=_check_lag,
    hint_text="Write a unique key on the primary with a start time, then GET it on the secondary in a loop until it "
              "is there; return the elapsed seconds (time.perf_counter()).",
    solution_text="""def measure_lag(primary, secondary):
    key = f"lag:{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    primary.set(key, "1")
    while secondary.get(key) is None:
        time.sleep(0.0005)
    return time.perf_counter() - t0""",
    reference=measure_lag_reference,
    wrong=[(_never_measures, "sent nothing to the primary"), (_reads_the_primary, "never read from the secondary"),
           (_says_fast, "number"), (42, "function"), (_reads_too_early, "every read it made there missed")],
)


# --- q4: how much a region failover can lose ----------------------------------------------------------

WRITES_PER_SECOND, LAG_SECONDS = 2000, 0.8
RPO_WRITES = WRITES_PER_SECOND * LAG_SECONDS


def _check_rpo(answer: Any) -> str:
    value = expect_number(answer, _("your answer"))
    if value == 0:
        raise Wrong(_("Replication across regions is asynchronous: the primary acknowledges a write before the "
                      "secondary has it, so the writes of the last lag window can be lost."))
    if abs(value - WRITES_PER_SECOND) < 1:
        raise Wrong(_("That is one second of writes; only the writes of the lag window (0.8 s) are not yet in the "
                      "secondary region."))
    if value < 100:
        raise Wrong(_("Answer with a number of writes (writes per second × seconds of lag), not seconds."))
    if abs(value - RPO_WRITES) > 0.1 * RPO_WRITES:
        raise Wrong(_("{value:g} is not it: what reached us-east-1 but not yet us-west-2 is what was written "
                      "during the lag window, writes per second × lag.", value=value))
    return (_("About {writes:.0f} acknowledged writes: the RPO of a region failover is the replication "
              "lag. The RTO is how long the failover takes plus the time the application needs to switch "
              "its write endpoint to the new primary region.", writes=RPO_WRITES))


q4 = Exercise(
    lab=LAB, qid="q4", title="What a region failover can lose (RPO)",
    checker=_check_rpo,
    hint_text="Which writes are on the primary region but not yet on the secondary when the region is lost?",
    solution_text="answer = 2000 * 0.8   # 1600 writes: writes per second x the lag",
    reference=RPO_WRITES,
    also_right=[1600, 1500, 1700],
    wrong=[(0, "asynchronous"), (2000, "one second"), (0.8, "number of writes"), (800, "lag window")],
)
