"""Lab 12 (monitoring): exercises."""

from __future__ import annotations

import secrets
from typing import Any

from helpers.exercises.core import (
    Exercise,
    Wrong,
    call_learner,
    expect_choice,
    expect_keys,
    expect_number,
    expect_type,
)
from helpers.measure.metrics import cache_hit_rate, lookups
from helpers.runtime.i18n import translator

_ = translator(__name__)

LAB = "12"
CHECK_SERVICE = {"name": "lab12-check", "config": {"maxmemory": "64mb", "maxmemory-policy": "allkeys-lfu"}}


def _server() -> Any:
    from helpers.runtime.services import start

    return start("redis", name=CHECK_SERVICE["name"], config=dict(CHECK_SERVICE["config"])).client()


def _check_hit_rate(answer: Any) -> str:
    if not callable(answer):
        call_learner(answer, {}, what=_("your function hit_rate(info)"))
    r = _server()
    r.flushdb()
    r.config_resetstat()
    lookups(r, "q1:", hits=450, misses=150, keys=50)
    info = r.info("stats")
    hits, misses = info["keyspace_hits"], info["keyspace_misses"]
    got = call_learner(answer, info, what=_("your function hit_rate(info)"))
    value = expect_number(got, _("what hit_rate returns"))
    right = cache_hit_rate(hits, misses)   # the definition the metrics module publishes
    if abs(value - right / 100) < 1e-6:
        raise Wrong(_("Your function returned {value:g}: a fraction. CloudWatch's CacheHitRate is a percentage "
                      "(0-100).", value=value))
    if abs(value - hits) < 1e-6:
        raise Wrong(_("Your function returned the number of hits; the hit rate is hits / (hits + misses), in "
                      "percent."))
    if misses and abs(value - 100.0 * hits / misses) < 1e-6:
        raise Wrong(_("Your function divided hits by misses. The rate divides by all lookups: hits + misses."))
    if abs(value - right) > 0.01:
        raise Wrong(_("For {hits} hits and {misses} misses your function returned {value}; the hit rate is "
                      "{right:g} (percent).", hits=hits, misses=misses, value=value, right=right))
    empty = call_learner(answer, {"keyspace_hits": 0, "keyspace_misses": 0}, what=_("your function hit_rate(info)"))
    if empty != 0 and empty != 0.0:
        raise Wrong(_("On a server with no lookups yet (0 hits, 0 misses) your function returned {empty!r}; return "
                      "0.0 instead of dividing by zero.", empty=empty))
    return _("{hits} hits / {lookups} lookups = {rate:g}%: from the engine's own counters, as ElastiCache does.",
             hits=hits, lookups=hits + misses, rate=right)


def _hit_rate_reference(info: Any) -> float:
    return cache_hit_rate(info["keyspace_hits"], info["keyspace_misses"])


q1 = Exercise(
    lab=LAB, qid="q1", title="CacheHitRate from INFO",
    checker=_check_hit_rate,
    hint_text="INFO stats has keyspace_hits and keyspace_misses. Rate = 100 * hits / (hits + misses); mind zero lookups.",
    solution_text="def hit_rate(info):\n    hits, misses = info['keyspace_hits'], info['keyspace_misses']\n"
                  "    return 100.0 * hits / (hits + misses) if hits + misses else 0.0",
    reference=_hit_rate_reference,
    wrong=[
        (lambda info: info["keyspace_hits"] / (info["keyspace_hits"] + info["keyspace_misses"]), "fraction"),
        (lambda info: 100.0 * info["keyspace_hits"] / info["keyspace_misses"], "divided hits by misses"),
        (lambda info: info["keyspace_hits"], "number of hits"),
        (lambda info: info["hits"], "raised KeyError"),
        ("75%", "function"),
    ],
)

METRICS = ["DatabaseMemoryUsagePercentage", "BytesUsedForCache", "FreeableMemory", "Evictions", "CacheHitRate"]
COMPARISONS = ["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
               "LessThanOrEqualToThreshold"]


def _check_alarm(answer: Any) -> str:
    expect_keys(answer, ["metric", "comparison", "threshold"], _("your alarm"))
    metric = expect_choice(answer["metric"], METRICS, _("the metric"))
    comparison = expect_choice(answer["comparison"], COMPARISONS, _("the comparison"))
    threshold = expect_number(answer["threshold"], _("the threshold"))
    if metric == "BytesUsedForCache":
        raise Wrong(_("BytesUsedForCache is an absolute number of bytes: the right threshold changes with every "
                      "node type. Alarm on the percentage of the memory Redis may use."))
    if metric == "FreeableMemory":
        raise Wrong(_("FreeableMemory is the host's free memory, not how full the cache is: Redis can hit maxmemory "
                      "while the host still has free memory (the reserved share)."))
    if metric in ("Evictions", "CacheHitRate"):
        raise Wrong(_("{metric} tells you once memory is already full (keys are being evicted). Warn *before*, on "
                      "how full the memory is.", metric=metric))
    if not comparison.startswith("GreaterThan"):
        raise Wrong(_("The alarm should fire when memory use goes *above* the threshold."))
    if threshold <= 1:
        raise Wrong(_("DatabaseMemoryUsagePercentage is a percentage from 0 to 100, not a fraction."))
    if threshold >= 95:
        raise Wrong(_("At {threshold:g}% the node is about to evict or refuse writes: too late to react. Warn "
                      "earlier.", threshold=threshold))
    if threshold < 50:
        raise Wrong(_("At {threshold:g}% the alarm would fire on a healthy, half-empty node: it would be ignored.",
                      threshold=threshold))
    return _("Alarm on DatabaseMemoryUsagePercentage above ~75-90%: time to scale up or out before evictions start.")


q2 = Exercise(
    lab=LAB, qid="q2", title="An alarm that warns before the cache runs out of memory",
    checker=_check_alarm,
    hint_text="Pick the metric that is a percentage of the memory Redis may use (maxmemory), and a threshold that "
              "leaves time to act before evictions begin.",
    solution_text="answer = {'metric': 'DatabaseMemoryUsagePercentage', 'comparison': 'GreaterThanThreshold', "
                  "'threshold': 80}",
    reference={"metric": "DatabaseMemoryUsagePercentage", "comparison": "GreaterThanThreshold", "threshold": 80},
    wrong=[
        ({"metric": "FreeableMemory", "comparison": "LessThanThreshold", "threshold": 100_000_000}, "host's free memory"),
        ({"metric": "Evictions", "comparison": "GreaterThanThreshold", "threshold": 0}, "already full"),
        ({"metric": "DatabaseMemoryUsagePercentage", "comparison": "GreaterThanThreshold", "threshold": 0.8}, "fraction"),
        ({"metric": "DatabaseMemoryUsagePercentage", "comparison": "GreaterThanThreshold", "threshold": 99}, "too late"),
        ({"metric": "DatabaseMemoryUsagePercentage", "comparison": "LessThanThreshold", "threshold": 80}, "above"),
        ({"metric": "BytesUsedForCache", "comparison": "GreaterThanThreshold", "threshold": 10**9}, "absolute"),
    ],
)


def _plant(r: Any) -> tuple[str, str]:
    """A keyspace with one big list and one hot key, under random names (so they must be found).

    The big list starts with a node of five tiny items, then three 100 KB items (one quicklist node each):
    MEMORY USAGE sizes a list from its first `samples` nodes, so SAMPLES 1 sees only the tiny node (a few
    hundred bytes) while the default (5) and 0 (all) see every node. A 160 KB hash is the runner-up."""
    r.flushdb()
    big, hot = f"q3:{secrets.token_hex(3)}", f"q4:{secrets.token_hex(3)}"
    runner_up = f"q3:{secrets.token_hex(3)}"
    r.rpush(big, *["t"] * 5)
    r.rpush(big, *["z" * 100_000] * 3)
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        pipe.set(f"small:{i:04d}-{'x' * (i % 40)}", "v" * 100)
    pipe.set("q3:long-string", "s" * 20_000)
    pipe.execute()
    r.hset(runner_up, mapping={f"field:{i}": "y" * 20 for i in range(3000)})
    pipe = r.pipeline(transaction=False)
    pipe.set(hot, "hot")
    for _ in range(2000):
        pipe.get(hot)
    for i in range(300):
        pipe.get(f"small:{i:04d}-{'x' * (i % 40)}")
    pipe.execute()
    return big, hot


def _check_big_key(answer: Any) -> str:
    if not callable(answer):
        call_learner(answer, None, what=_("your function find_big_key(r)"))
    r = _server()
    big, _hot = _plant(r)
    got = call_learner(answer, r, what=_("your function find_big_key(r)"))
    if isinstance(got, int) and not isinstance(got, bool):
        raise Wrong(_("Your function returned a number (a size?). Return the key's name."))
    expect_type(got, str, _("what find_big_key returns"))
    if got == "q3:long-string":
        raise Wrong(_("'q3:long-string' is the longest *string*, but another key of another type uses more memory. "
                      "STRLEN only sees strings; MEMORY USAGE measures every type."))
    if got != big:
        size = r.memory_usage(got, samples=0) if r.exists(got) else None
        message = (_("{key!r} is not the key that uses the most memory (it uses {size} bytes).", key=got, size=size)
                   if size else _("{key!r} is not the key that uses the most memory.", key=got))
        if size and (r.memory_usage(big, samples=1) or 0) < size:
            message += " " + _("The biggest is a list whose first node is small: MEMORY USAGE ... SAMPLES 1 sizes it "
                               "from that node alone ({sampled} bytes). Keep the default samples, or samples=0 to "
                               "measure every element.", sampled=r.memory_usage(big, samples=1))
        raise Wrong(message)
    return _("{key} uses {size:,} bytes: found with SCAN + MEMORY USAGE, without blocking.",
             key=big, size=r.memory_usage(big, samples=0))


def _big_key_reference(r: Any) -> str:
    return max(r.scan_iter(count=500), key=lambda k: r.memory_usage(k, samples=0) or 0)


def _strlen_biggest(r: Any) -> str:
    return max((k for k in r.scan_iter(count=500) if r.type(k) == "string"), key=lambda k: r.strlen(k))


q3 = Exercise(
    lab=LAB, qid="q3", title="Find the big key",
    checker=_check_big_key,
    hint_text="Walk the keyspace with r.scan_iter() (never KEYS on a busy server) and keep the key whose "
              "r.memory_usage(key) is largest.",
    solution_text="def find_big_key(r):\n    return max(r.scan_iter(count=500), key=lambda k: r.memory_usage(k, samples=0) or 0)",
    reference=_big_key_reference,
    wrong=[
        (_strlen_biggest, "longest *string*"),
        (lambda r: max(r.scan_iter(count=500), key=len), "not the key"),
        (lambda r: max(r.memory_usage(k) for k in r.scan_iter()), "number"),
        (lambda r: r.bigkey(), "raised AttributeError"),
        (lambda r: max(r.scan_iter(count=500), key=lambda k: r.memory_usage(k, samples=1) or 0), "samples 1"),
    ],
)


def _check_hot_key(answer: Any) -> str:
    if not callable(answer):
        call_learner(answer, None, what=_("your function find_hot_key(r)"))
    r = _server()
    big, hot = _plant(r)
    got = call_learner(answer, r, what=_("your function find_hot_key(r)"))
    expect_type(got, str, _("what find_hot_key returns"))
    if got == big:
        raise Wrong(_("{key!r} is the *biggest* key, not the most used one. OBJECT FREQ tells how often a key is "
                      "used.", key=got))
    if got != hot:
        raise Wrong(_("{key!r} is not the most frequently used key. With an LFU policy, r.object('freq', key) "
                      "returns each key's access counter.", key=got))
    return _("{key} has OBJECT FREQ {freq}: the key every client hammers (a hot shard in cluster mode).",
             key=hot, freq=r.object("freq", hot))


def _hot_key_reference(r: Any) -> str:
    return max(r.scan_iter(count=500), key=lambda k: r.object("freq", k))


q4 = Exercise(
    lab=LAB, qid="q4", title="Find the hot key",
    checker=_check_hot_key,
    hint_text="The server runs allkeys-lfu, so OBJECT FREQ works: r.object('freq', key) for each key from scan_iter().",
    solution_text="def find_hot_key(r):\n    return max(r.scan_iter(count=500), key=lambda k: r.object('freq', k))",
    reference=_hot_key_reference,
    wrong=[
        (_big_key_reference, "biggest"),
        (lambda r: "small:0000-", "not the most frequently used"),
        (lambda r: 42, "string"),
    ],
)
