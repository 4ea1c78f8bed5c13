"""Lab 07 (memory and eviction): exercises."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, expect_choice, expect_type
from helpers.runtime.i18n import translator
from helpers.topics.sizing import node_types, pick_node_type

_ = translator(__name__)

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
    expect_type(answer, dict, _("your answer (a dict scenario -> policy)"))
    missing = [k for k in SCENARIOS if k not in answer]
    if missing:
        raise Wrong(_("Your dict has no policy for {missing}. Give one for each of {scenarios}.",
                      missing=", ".join(map(repr, missing)), scenarios=", ".join(map(repr, SCENARIOS))))
    chosen = {k: expect_choice(answer[k], POLICY_CHOICES, _("the policy for {k!r}", k=k)) for k in SCENARIOS}
    if chosen["job_queue"] != "noeviction":
        raise Wrong(_("job_queue: with {policy!r} Redis may silently delete a queued job when memory runs "
                      "out. Only one policy refuses the write instead (and the producer can retry).",
                      policy=chosen["job_queue"]))
    if not chosen["mixed"].startswith("volatile-"):
        raise Wrong(_("mixed: {policy!r} may evict the feature flags, which have no TTL. Pick a policy that "
                      "only ever evicts keys that have a TTL.", policy=chosen["mixed"]))
    if chosen["product_cache"] == "noeviction":
        raise Wrong(_("product_cache: with noeviction the cache stops accepting new products once full (OOM errors) "
                      "and never adapts. A cache should evict."))
    if chosen["product_cache"].startswith("volatile-"):
        raise Wrong(_("product_cache: every key here is cache data; a volatile-* policy would refuse writes whenever "
                      "the keys have no TTL. Use an allkeys-* policy."))
    if chosen["product_cache"] == "allkeys-random":
        raise Wrong(_("product_cache: allkeys-random ignores popularity; your own measurement in this lab shows LFU "
                      "keeping more hits than random when popularity is stable and skewed. Pick a policy that "
                      "uses how (recently or often) a key is read."))
    lru_note = (_(" (allkeys-lru is fine too: the lab measured LFU ahead of random, while LRU vs LFU depends on "
                  "how long the workload runs.)") if chosen["product_cache"] == "allkeys-lru" else "")
    return (_("allkeys-lfu keeps the popular keys, volatile-* protects keys without TTL, noeviction turns memory "
              "pressure into errors the producer can see.") + lru_note)


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
    also_right=[{"product_cache": "allkeys-lru", "mixed": "volatile-lru", "job_queue": "noeviction"},
                {"product_cache": "allkeys-lfu", "mixed": "volatile-ttl", "job_queue": "noeviction"}],
)

# --- q2: size a node, with AWS's reserved-memory advice for small burstable nodes ------------------

def reserved_share(node: Any) -> float:
    """AWS's advice: reserve 25% (the default), but up to 30% on small and 50% on micro burstable nodes."""
    if node.family.startswith("t") and node.name.endswith(".micro"):
        return 0.50
    if node.family.startswith("t") and node.name.endswith(".small"):
        return 0.30
    return 0.25


def _pick_reference(types: Any, dataset_gib: float, growth: float, family: str) -> str | None:
    need = dataset_gib * (1 + growth)
    fits = [n for n in types if n.family == family and n.memory_gib * (1 - reserved_share(n)) >= need]
    return min(fits, key=lambda n: n.memory_gib).name if fits else None


# (dataset GiB, growth, family): each case is there to catch one mistake
SIZING_CASES = [(9.0, 0.2, "r7g"), (0.3, 0.0, "t4g"), (1.0, 0.0, "t3"), (20.0, 0.1, "m7g"), (40.0, 0.0, "r6gd"),
                (5000.0, 0.0, "r7g"),
                # exactly a t4g.micro's usable memory (0.5 GiB x 50%, exact in binary): usable >= needed holds it
                (0.25, 0.0, "t4g")]


def _check_sizing(answer: Any) -> str:
    from helpers.exercises.core import call_learner

    types = node_types()
    for dataset, growth, family in SIZING_CASES:
        got = call_learner(answer, types, dataset, growth, family,
                           what=_("your function pick_node(types, dataset_gib, growth, family)"))
        right = _pick_reference(types, dataset, growth, family)
        call = f"pick_node(types, {dataset:g}, {growth:g}, {family!r})"
        if right is None:
            if got is not None:
                raise Wrong(_("{call} returned {got!r}, but no {family} node holds {need:g} GiB: "
                              "return None (the data must be sharded, lab 10).", call=call, got=got, family=family,
                              need=dataset * (1 + growth)))
            continue
        if hasattr(got, "name"):
            raise Wrong(_("{call} returned a NodeType; return its name (node.name), a string.", call=call))
        expect_type(got, str, _("what {call} returns", call=call))
        node = {n.name: n for n in types}.get(got)
        if node is None:
            raise Wrong(_("{call} returned {got!r}, which is not a node type in the table.", call=call, got=got))
        if node.family != family:
            raise Wrong(_("{call} returned {got}, a {node_family} node: stay within the family asked for.",
                          call=call, got=got, node_family=node.family))
        need = dataset * (1 + growth)
        usable = node.memory_gib * (1 - reserved_share(node))
        if usable < need:
            if node.name.endswith((".micro", ".small")) and node.memory_gib * 0.75 >= need:
                raise Wrong(_("{call} returned {got}: with the default 25% it would fit, but AWS advises reserving "
                              "{reserved:.0%} on a {size} burstable node, which leaves {usable:.2f} GiB for "
                              "{need:g} GiB.", call=call, got=got, reserved=reserved_share(node),
                              size=node.name.split(".")[-1], usable=usable, need=need))
            raise Wrong(_("{call} returned {got}: {memory} GiB minus the reserved share leaves {usable:.2f} "
                          "GiB, less than the {need:g} GiB needed (growth included).", call=call, got=got,
                          memory=node.memory_gib, usable=usable, need=need))
        if got != right:
            exact = ""
            small = {n.name: n for n in types}[right]
            if small.memory_gib * (1 - reserved_share(small)) == need:
                exact = _(" ({right}'s usable memory is exactly {need:g} GiB: a node holds the data when usable >= "
                          "needed)", right=right, need=need)
            raise Wrong(_("{call} returned {got}, which holds the data, but {right} is smaller and enough{exact}: you "
                          "would pay for memory you do not use.", call=call, got=got, right=right, exact=exact))
    return (_("Your rule matches AWS's advice: 25% reserved by default, more on small and micro burstable nodes, "
              "and the smallest node that holds the data plus its growth."))


def _pick_default_25(types: Any, dataset_gib: float, growth: float, family: str) -> str | None:
    fits = [n for n in types if n.family == family and n.usable_gib(0.25) >= dataset_gib * (1 + growth)]
    return min(fits, key=lambda n: n.memory_gib).name if fits else None


def _pick_strictly_more(types: Any, dataset_gib: float, growth: float, family: str) -> str | None:
    need = dataset_gib * (1 + growth)
    fits = [n for n in types if n.family == family and n.memory_gib * (1 - reserved_share(n)) > need]
    return min(fits, key=lambda n: n.memory_gib).name if fits else None


def _pick_largest(types: Any, dataset_gib: float, growth: float, family: str) -> str | None:
    fits = [n for n in types if n.family == family and n.memory_gib * (1 - reserved_share(n)) >= dataset_gib]
    return max(fits, key=lambda n: n.memory_gib).name if fits else None


q2 = Exercise(
    lab=LAB, qid="q2", title="Size a node, with AWS's reserved-memory advice",
    checker=_check_sizing,
    hint_text="Loop over `types`: keep the nodes of `family` whose memory_gib x (1 - reserved) is at least "
              "dataset_gib x (1 + growth), with reserved 0.5 for '.micro' and 0.3 for '.small' T-family nodes, "
              "0.25 otherwise; return the name of the one with the least memory, or None.",
    solution_text="def pick_node(types, dataset_gib, growth, family):\n"
                  "    def reserved(n):\n"
                  "        if n.family.startswith('t') and n.name.endswith('.micro'):\n"
                  "            return 0.50\n"
                  "        if n.family.startswith('t') and n.name.endswith('.small'):\n"
                  "            return 0.30\n"
                  "        return 0.25\n"
                  "    need = dataset_gib * (1 + growth)\n"
                  "    fits = [n for n in types if n.family == family and n.memory_gib * (1 - reserved(n)) >= need]\n"
                  "    return min(fits, key=lambda n: n.memory_gib).name if fits else None",
    reference=_pick_reference,
    wrong=[
        (_pick_default_25, "AWS advises"),
        (_pick_largest, "is smaller and enough"),
        (lambda types, d, g, f: _pick_reference(types, d, 0, f), "less than"),
        (lambda types, d, g, f: "cache.r7g.xlarge", "family"),
        (lambda types, d, g, f: sizing_pick(d, g, f), "NodeType"),
        (_pick_strictly_more, "exactly"),
    ],
)


def sizing_pick(dataset_gib: float, growth: float, family: str) -> Any:
    return pick_node_type(dataset_gib, growth=growth, families=[family])


TTL_KEYS = {"a": 600, "b": 60, "c": None, "d": 300}


def _live_first_evicted() -> list[str]:
    from helpers.topics.eviction import configure, evict_one, lab07_server

    r = lab07_server().client()
    configure(r, maxmemory="2mb")
    return evict_one(r, "volatile-ttl", TTL_KEYS)


def _check_ttl_victim(answer: Any) -> str:
    choice = expect_choice(answer, list(TTL_KEYS), _("the key"))
    if choice == "c":
        raise Wrong(_("'c' has no TTL: a volatile-* policy never evicts a key without a TTL."))
    if choice in ("a", "d"):
        raise Wrong(_("{choice!r} expires in {ttl} s. volatile-ttl evicts the key that would expire "
                      "soonest anyway.", choice=choice, ttl=TTL_KEYS[choice]))
    evicted = _live_first_evicted()
    if evicted != [choice]:
        raise Wrong(_("On the lab's real Redis the first eviction removed {evicted}, not {choice!r}.",
                      evicted=evicted, choice=choice))
    return _("Confirmed on the real server: the key closest to expiring went first; 'c' (no TTL) is safe.")


q3 = Exercise(
    lab=LAB, qid="q3", title="Which key does volatile-ttl evict first?",
    checker=_check_ttl_victim,
    hint_text="volatile-ttl only considers keys with a TTL, and prefers the one with the shortest remaining TTL.",
    solution_text="answer = 'b'   # TTL 60 s: it would expire soonest anyway; 'c' has no TTL and is never evicted",
    reference="b",
    wrong=[("c", "no TTL"), ("a", "soonest"), ("d", "soonest"), ("e", "not one of the choices"), (60, "string")],
)


# --- q4: what a full node under noeviction still accepts, checked on the real server -------------

COMMANDS = ("GET", "SET", "DEL", "INCR", "APPEND", "EXPIRE")


def _refused_when_full() -> set[str]:
    """Fill lab 07's Redis under noeviction, then try each command on it: which ones fail with OOM?"""
    from helpers.topics.eviction import configure, fill, lab07_server

    r = lab07_server().client()
    r.flushdb()
    configure(r, maxmemory="64mb", policy="noeviction")
    r.set("q4:counter", 1)
    r.set("q4:text", "x")
    r.set("q4:victim", "x")
    fill(r, "q4:fill:", 3_000, value_size=200)
    # Full, and far past the limit: buffers freed after a write cannot bring it back under maxmemory.
    r.config_set("maxmemory", int(r.info("memory")["used_memory"]) // 2)
    tries = {"GET": lambda: r.get("q4:text"), "SET": lambda: r.set("q4:new", "x"),
             "INCR": lambda: r.incr("q4:counter"), "APPEND": lambda: r.append("q4:text", "y"),
             "EXPIRE": lambda: r.expire("q4:text", 600), "DEL": lambda: r.delete("q4:victim")}  # DEL last: it frees
    refused = set()
    for name in ("GET", "SET", "INCR", "APPEND", "EXPIRE", "DEL"):
        try:
            tries[name]()
        except Exception as exc:
            if "maxmemory" in str(exc) or "OOM" in str(exc):
                refused.add(name)
            else:
                raise
    r.flushdb()
    configure(r, maxmemory="2mb")
    return refused


def _check_noeviction(answer: Any) -> str:
    if isinstance(answer, str):
        raise Wrong(_("Answer with a set (or list) of command names, e.g. {'SET'}: every command the full node "
                      "refuses."))
    expect_type(answer, (set, list, tuple), _("your answer"))
    names = set()
    for item in answer:
        expect_type(item, str, _("each command name"))
        name = item.strip().upper()
        if name not in COMMANDS:
            raise Wrong(_("{item!r} is not one of {commands}.", item=item, commands=", ".join(COMMANDS)))
        names.add(name)
    refused = _refused_when_full()
    if names != refused:
        wrongly_refused = sorted(names - refused)
        missed = sorted(refused - names)
        parts = []
        if wrongly_refused:
            parts.append(_("{commands} still work(s) on the full node", commands=", ".join(wrongly_refused)))
        if missed:
            parts.append(_("{commands} is/are refused with OOM too", commands=", ".join(missed)))
        raise Wrong(_("Measured on the lab's Redis, full under noeviction: {parts}. Redis refuses the commands that "
                      "may grow memory and runs the others (reads, deletes, expiry changes).", parts="; ".join(parts)))
    return _("Measured: {commands} refused with OOM; reads, DEL and EXPIRE still run — DEL is "
             "how an application makes room itself.", commands=", ".join(sorted(refused)))


q4 = Exercise(
    lab=LAB, qid="q4", title="What does a full node under noeviction still accept?",
    checker=_check_noeviction,
    hint_text="Redis refuses, with an OOM error, every command that may need more memory; commands that read, "
              "delete or only change metadata still run. Which of the six can make the data set bigger?",
    solution_text="answer = {'SET', 'INCR', 'APPEND'}   # GET reads, DEL frees memory, EXPIRE only sets metadata",
    make_reference=_refused_when_full,
    wrong=[({"SET"}, "refused with OOM too"), ({"SET", "INCR", "APPEND", "DEL"}, "still work"),
           ("the write fails with an OOM error", "set (or list)"), ({"PUT"}, "not one of")],
)
