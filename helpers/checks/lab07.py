"""Lab 07 (memory and eviction): exercises."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, expect_choice, expect_type
from helpers.topics.sizing import node_types, pick_node_type

LAB = "07"

SCENARIOS = {
    "product_cache": "a pure cache of product pages; a few products are far more popular than the rest, "
                     "and which ones stays the same for weeks",
    "mixed": "cached API responses (all written with a TTL) share the node with feature flags (no TTL) "
             "that must never disappear",
    "job_queue": "a work queue (Redis lists) where silently losing a job is unacceptable; the producers can "
                 "retry a refused write",
}
POLICY_CHOICES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                  "volatile-random", "volatile-ttl")


def _check_policies(answer: Any) -> str:
    expect_type(answer, dict, "your answer (a dict scenario -> policy)")
    missing = [k for k in SCENARIOS if k not in answer]
    if missing:
        raise Wrong(f"Your dict has no policy for {', '.join(map(repr, missing))}. Give one for each of "
                    f"{', '.join(map(repr, SCENARIOS))}.")
    chosen = {k: expect_choice(answer[k], POLICY_CHOICES, f"the policy for {k!r}") for k in SCENARIOS}
    if chosen["job_queue"] != "noeviction":
        raise Wrong(f"job_queue: with {chosen['job_queue']!r} Redis may silently delete a queued job when memory runs "
                    "out. Only one policy refuses the write instead (and the producer can retry).")
    if not chosen["mixed"].startswith("volatile-"):
        raise Wrong(f"mixed: {chosen['mixed']!r} may evict the feature flags, which have no TTL. Pick a policy that "
                    "only ever evicts keys that have a TTL.")
    if chosen["product_cache"] == "noeviction":
        raise Wrong("product_cache: with noeviction the cache stops accepting new products once full (OOM errors) "
                    "and never adapts. A cache should evict.")
    if chosen["product_cache"].startswith("volatile-"):
        raise Wrong("product_cache: every key here is cache data; a volatile-* policy would refuse writes whenever "
                    "the keys have no TTL. Use an allkeys-* policy.")
    if chosen["product_cache"] != "allkeys-lfu":
        raise Wrong(f"product_cache: {chosen['product_cache']!r} works, but your own measurement in this lab shows "
                    "which allkeys policy keeps more hits when popularity is stable and skewed.")
    return ("allkeys-lfu keeps the popular keys, volatile-* protects keys without TTL, noeviction turns memory "
            "pressure into errors the producer can see.")


q1 = Exercise(
    lab=LAB, qid="q1", title="Pick an eviction policy for each requirement",
    checker=_check_policies,
    hint_text="Ask of each scenario: may Redis delete data on its own? If yes, which keys may go, and what "
              "predicts that a key will be asked for again (recency or frequency)?",
    solution_text="answer = {'product_cache': 'allkeys-lfu', 'mixed': 'volatile-lru', 'job_queue': 'noeviction'}",
    reference={"product_cache": "allkeys-lfu", "mixed": "volatile-lru", "job_queue": "noeviction"},
    wrong=[
        ({"product_cache": "allkeys-lfu", "mixed": "allkeys-lru", "job_queue": "noeviction"}, "feature flags"),
        ({"product_cache": "allkeys-lfu", "mixed": "volatile-lru", "job_queue": "allkeys-lru"}, "silently delete"),
        ({"product_cache": "allkeys-random", "mixed": "volatile-ttl", "job_queue": "noeviction"}, "your own measurement"),
        ({"product_cache": "allkeys-lfu", "mixed": "volatile-lru"}, "no policy for 'job_queue'"),
        ({"product_cache": "lfu", "mixed": "volatile-lru", "job_queue": "noeviction"}, "not one of the choices"),
        ("allkeys-lfu", "dict"),
    ],
)

SIZING = {"dataset_gib": 9.0, "growth": 0.2, "family": "r7g", "reserved": 0.25}


def _sizing_reference() -> str:
    return pick_node_type(SIZING["dataset_gib"], reserved=SIZING["reserved"], growth=SIZING["growth"],
                          families=[SIZING["family"]]).name


def _check_sizing(answer: Any) -> str:
    expect_type(answer, str, "the node type")
    names = {n.name: n for n in node_types()}
    name = answer.strip()
    if name not in names:
        raise Wrong(f"{answer!r} is not in data/elasticache_node_types.csv; node types look like 'cache.r7g.large'.")
    node = names[name]
    need = SIZING["dataset_gib"] * (1 + SIZING["growth"])
    right = names[_sizing_reference()]
    if node.family != SIZING["family"]:
        raise Wrong(f"{name} is a {node.family} node; the question asks for the {SIZING['family']} family.")
    if node.memory_gib < need:
        raise Wrong(f"{name} has {node.memory_gib} GiB in total: less than the {need:.1f} GiB the data will need "
                    "with 20% growth, before any reserved memory.")
    if node.usable_gib(SIZING["reserved"]) < need:
        raise Wrong(f"{name} has {node.memory_gib} GiB, but 25% is reserved, leaving "
                    f"{node.usable_gib(SIZING['reserved']):.2f} GiB: less than the {need:.1f} GiB needed.")
    if node.memory_gib > right.memory_gib:
        raise Wrong(f"{name} would hold the data, but a smaller {SIZING['family']} node is enough: you would pay "
                    "for memory you do not use.")
    return (f"{name}: {node.memory_gib} GiB x 0.75 = {node.usable_gib():.2f} GiB usable >= "
            f"{need:.1f} GiB needed.")


q2 = Exercise(
    lab=LAB, qid="q2", title="Size a node for a dataset",
    checker=_check_sizing,
    hint_text="Needed = 9 GiB x 1.2 (growth). Usable = memory_gib x (1 - 0.25). Take the smallest r7g node whose "
              "usable memory is at least what is needed (helpers.topics.sizing.node_types() lists them).",
    solution_text="from helpers.topics.sizing import pick_node_type\n"
                  "answer = pick_node_type(9.0, reserved=0.25, growth=0.2, families=['r7g']).name",
    make_reference=_sizing_reference,
    wrong=[
        ("cache.r7g.large", "25% is reserved"),
        ("cache.r7g.2xlarge", "smaller"),
        ("cache.m7g.2xlarge", "family"),
        ("cache.r7g.huge", "not in data/"),
        (26.32, "string"),
    ],
)

TTL_KEYS = {"a": 600, "b": 60, "c": None, "d": 300}


def _live_first_evicted() -> list[str]:
    from helpers.topics.eviction import configure, evict_one, lab07_server

    r = lab07_server().client()
    configure(r, maxmemory="2mb")
    return evict_one(r, "volatile-ttl", TTL_KEYS)


def _check_ttl_victim(answer: Any) -> str:
    choice = expect_choice(answer, list(TTL_KEYS), "the key")
    if choice == "c":
        raise Wrong("'c' has no TTL: a volatile-* policy never evicts a key without a TTL.")
    if choice in ("a", "d"):
        raise Wrong(f"{choice!r} expires in {TTL_KEYS[choice]} s. volatile-ttl evicts the key that would expire "
                    "soonest anyway.")
    evicted = _live_first_evicted()
    if evicted != [choice]:
        raise Wrong(f"On the lab's real Redis the first eviction removed {evicted}, not {choice!r}.")
    return "Confirmed on the real server: the key closest to expiring went first; 'c' (no TTL) is safe."


q3 = Exercise(
    lab=LAB, qid="q3", title="Which key does volatile-ttl evict first?",
    checker=_check_ttl_victim,
    hint_text="volatile-ttl only considers keys with a TTL, and prefers the one with the shortest remaining TTL.",
    solution_text="answer = 'b'   # TTL 60 s: it would expire soonest anyway; 'c' has no TTL and is never evicted",
    reference="b",
    wrong=[("c", "no TTL"), ("a", "soonest"), ("d", "soonest"), ("e", "not one of the choices"), (60, "string")],
)


def _check_noeviction(answer: Any) -> str:
    options = ["the write fails with an OOM error", "the oldest key is evicted", "a random key is evicted",
               "the value is written to disk"]
    choice = expect_choice(answer, options, "your answer")
    if choice != options[0]:
        raise Wrong(f"You chose {choice!r}. Under noeviction Redis never deletes data to make room, and it does not "
                    "spill to disk either; look at what `fill()` reported in the noeviction cell.")
    return "Reads and DELs still work; only commands that would grow memory are refused."


q4 = Exercise(
    lab=LAB, qid="q4", title="What does a write do when memory is full under noeviction?",
    checker=_check_noeviction,
    hint_text="Scroll back to the noeviction cell: how many writes were refused, and with what error?",
    solution_text="answer = 'the write fails with an OOM error'",
    reference="the write fails with an OOM error",
    wrong=[("the oldest key is evicted", "never deletes"), ("the value is written to disk", "never deletes"),
           ("crash", "not one of the choices")],
)
