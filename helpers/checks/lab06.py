"""Lab 06 (real-time analytics): exercises, checked against a real Redis under the prefix lab06:ex:."""

from __future__ import annotations

import math
from typing import Any

from helpers.exercises.core import (
    Exercise,
    Wrong,
    call_learner,
    expect_choices_per_item,
    expect_keys,
    expect_number,
    type_name,
)
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import start
from helpers.topics.analytics import TokenBucket, burst, clear_prefix, daily_activity, visitor_ids

_ = translator(__name__)

LAB = "06"
P = "lab06:ex:"


def _client() -> Any:
    r = start("redis").client()
    clear_prefix(r, P)
    return r


def _callable(answer: Any, signature: str) -> None:
    if not callable(answer):
        raise Wrong(_("Expected a function {signature}, but got {kind}.", signature=signature, kind=type_name(answer)))


# --- q1: the leaderboard window "around me" ---------------------------------------------------------

def _pairs(result: Any, what: str) -> list[tuple[str, float]]:
    if not isinstance(result, (list, tuple)):
        raise Wrong(_("{what} returned {kind}; return a list of (member, score) pairs.", what=what,
                      kind=type_name(result)))
    out = []
    for item in result:
        if isinstance(item, str):
            raise Wrong(_("{what} returned members only ({item!r}, ...): return (member, score) pairs, "
                          "highest first — ask for the scores with withscores=True.", what=what, item=item))
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise Wrong(_("{what} returned {item!r} as an element; each element must be a (member, score) pair.",
                          what=what, item=item))
        out.append((item[0], float(item[1])))
    return out


def _check_around_me(answer: Any) -> str:
    _callable(answer, "around_me(r, key, player, k)")
    r = _client()
    key = P + "board"
    r.zadd(key, {f"p{i}": 100 - 10 * i for i in range(10)})  # p0 leads with 100, p9 is last with 10

    def expected(i: int, k: int) -> list[tuple[str, float]]:
        return [(f"p{j}", float(100 - 10 * j)) for j in range(max(0, i - k), min(9, i + k) + 1)]

    for player, k in ((5, 2), (1, 2), (9, 2)):
        what = f"around_me(r, key, 'p{player}', {k})"
        got = _pairs(call_learner(answer, r, key, f"p{player}", k, what=_("your function {call}", call=what)), what)
        want = expected(player, k)
        if got == want:
            continue
        if got == want[::-1] or (got and got == sorted(got, key=lambda x: x[1]) and len(got) > 1):
            raise Wrong(_("{what} returned the window lowest score first ({first} first). A leaderboard "
                          "reads highest first: use ZREVRANK and ZREVRANGE.", what=what, first=got[0][0]))
        if player == 1 and not got:
            raise Wrong(_("{what} returned an empty list for the player in 2nd place: rank - k is negative there "
                          "and ZREVRANGE reads a negative start as 'from the end'. Start at max(0, rank - k).",
                          what=what))
        raise Wrong(_("{what} returned {got}; expected {want} (k places above and below, clipped at the top "
                      "and at the bottom, highest first).", what=what, got=got, want=want))
    return _("ZREVRANK finds the player's place in O(log n); ZREVRANGE reads only the 2k+1 neighbours.")


def _around_me_reference(r: Any, key: str, player: str, k: int) -> list:
    rank = r.zrevrank(key, player)
    return r.zrevrange(key, max(0, rank - k), rank + k, withscores=True)


q1 = Exercise(
    lab=LAB, qid="q1", title="The leaderboard around a player",
    checker=_check_around_me,
    hint_text="r.zrevrank(key, player) gives the player's 0-based place (highest score = 0); "
              "r.zrevrange(key, start, end, withscores=True) reads a slice. Mind the players near the top.",
    solution_text="def around_me(r, key, player, k):\n"
                  "    rank = r.zrevrank(key, player)\n"
                  "    return r.zrevrange(key, max(0, rank - k), rank + k, withscores=True)",
    reference=_around_me_reference,
    wrong=[
        (lambda r, key, p, k: r.zrange(key, max(0, r.zrank(key, p) - k), r.zrank(key, p) + k, withscores=True),
         "lowest score first"),
        (lambda r, key, p, k: r.zrevrange(key, r.zrevrank(key, p) - k, r.zrevrank(key, p) + k, withscores=True),
         "negative"),
        (lambda r, key, p, k: r.zrevrange(key, max(0, r.zrevrank(key, p) - k), r.zrevrank(key, p) + k),
         "members only"),
        (lambda r, key, p, k: r.zrevrange(key, 0, 2 * k, withscores=True), "expected"),
    ],
)


# --- q2: HyperLogLog or set? --------------------------------------------------------------------------

CASES = {
    "unique_visitors_per_page": "hll",
    "already_voted": "set",
    "paid_subscribers": "set",
    "weekly_uniques": "hll",
}
WHY_NOT = {
    ("unique_visitors_per_page", "set"): N_("'unique_visitors_per_page': 2 million pages × a set each — you "
    "measured megabytes for one set of 60,000 visitors, against a fixed ~14 KB for a HyperLogLog; ±2% was "
    "acceptable."),
    ("weekly_uniques", "set"): N_("'weekly_uniques': approximate is fine, and HyperLogLogs merge (PFCOUNT of "
    "several keys, PFMERGE) in a fixed 12 KB, without keeping every searcher id."),
    ("already_voted", "hll"): N_("'already_voted': a HyperLogLog cannot tell whether a given member was added — "
    "it only estimates how many. SISMEMBER on a set answers exactly."),
    ("paid_subscribers", "hll"): N_("'paid_subscribers': an invoice needs the exact number; a HyperLogLog is off "
    "by about 0.8% on average."),
}


def _check_hll_or_set(answer: Any) -> str:
    expect_choices_per_item(answer, CASES, ("hll", "set"), first_only=True,
                            explain=lambda case, got: _(WHY_NOT[(case, got)]))
    return _("Approximate counts of huge sets: HyperLogLog. Membership or exact counts: a set.")


q2 = Exercise(
    lab=LAB, qid="q2", title="HyperLogLog or set?",
    checker=_check_hll_or_set,
    hint_text="A HyperLogLog answers only 'about how many distinct?' in ~12 KB. Does the requirement need "
              "'is this one in it?' or an exact figure?",
    solution_text="answer = {'unique_visitors_per_page': 'hll', 'already_voted': 'set',\n"
                  "          'paid_subscribers': 'set', 'weekly_uniques': 'hll'}",
    reference=dict(CASES),
    wrong=[
        ({k: "hll" for k in CASES}, "cannot tell whether a given member"),
        ({k: "set" for k in CASES}, "2 million pages"),
        ({**CASES, "paid_subscribers": "hll"}, "exact number"),
        ({"already_voted": "set"}, "missing"),
        ({**CASES, "weekly_uniques": "bitmap"}, "not one of the choices"),
    ],
)


# --- q3: weekly uniques from daily HyperLogLogs --------------------------------------------------------

def _daily_hlls(r: Any) -> list[str]:
    ids = visitor_ids(3000, seed=60)
    keys = []
    for day in range(7):
        key = P + f"uv:day{day}"
        # 1,000 loyal visitors come every day, plus 200 different ones each day.
        r.pfadd(key, *ids[:1000], *ids[1000 + 200 * day:1200 + 200 * day])
        keys.append(key)
    return keys


def _check_weekly(answer: Any) -> str:
    _callable(answer, "weekly_uniques(r, day_keys)")
    r = _client()
    keys = _daily_hlls(r)
    # The whole week, then four days in another order: a hard-coded count cannot answer both.
    for day_keys in (list(keys), [keys[5], keys[2], keys[4], keys[3]]):
        got = call_learner(answer, r, list(day_keys), what=_("your function weekly_uniques(r, day_keys)"))
        value = expect_number(got, _("what weekly_uniques returns"))
        truth, union = 1000 + len(day_keys) * 200, r.pfcount(*day_keys)
        days = _("the {n} days", n=len(day_keys))
        if value == sum(r.pfcount(k) for k in day_keys):
            raise Wrong(_("You returned {value:.0f}, the sum of the daily counts: a loyal visitor who came on all "
                          "{days} was counted {n} times (the true figure is about {truth}). Count the "
                          "union: PFCOUNT of all the keys at once, or PFMERGE.",
                          value=value, days=days, n=len(day_keys), truth=truth))
        if value == r.pfcount(day_keys[0]):
            raise Wrong(_("You returned {value:.0f}, the count of the first day only. Count {days} together.",
                          value=value, days=days))
        if abs(value - union) > 0.02 * union:
            raise Wrong(_("For {days} {names} you returned {value:.0f}; "
                          "their distinct visitors are about {union}. Count the union of the HyperLogLogs you "
                          "are given (day_keys), not a fixed number of them.", days=days,
                          names=", ".join(k.rsplit(":", 1)[-1] for k in day_keys), value=value, union=union))
    return _("{value:.0f} vs {truth} really distinct: PFCOUNT k1 k2 ... merges on the fly; PFMERGE stores the "
             "merged HyperLogLog (still ~12 KB) for later.", value=value, truth=truth)


q3 = Exercise(
    lab=LAB, qid="q3", title="Weekly unique visitors from daily HyperLogLogs",
    checker=_check_weekly,
    hint_text="r.pfcount(*keys) with several keys counts the union of the HyperLogLogs.",
    solution_text="def weekly_uniques(r, day_keys):\n    return r.pfcount(*day_keys)",
    reference=lambda r, keys: r.pfcount(*keys),
    wrong=[
        (lambda r, keys: sum(r.pfcount(k) for k in keys), "counted 7 times"),
        (lambda r, keys: r.pfcount(keys[0]), "first day only"),
        (lambda r, keys: [r.pfcount(k) for k in keys], "a number"),
        (lambda r, keys: r.scard(keys[0]), "raised ResponseError"),
        (lambda r, keys: r.pfcount(*[P + f"uv:day{d}" for d in range(7)]), "not a fixed number"),
    ],
)


# --- q4: token bucket parameters, tested with a real burst ---------------------------------------------

REQUIRED_BURST, REQUIRED_RATE = 20, 5
QUIET = 2.0  # seconds between the check's two bursts, on the bucket's clock


def _check_bucket(answer: Any) -> str:
    expect_keys(answer, ("capacity", "refill_per_second"), _("your dictionary"))
    capacity = expect_number(answer["capacity"], "'capacity'")
    rate = expect_number(answer["refill_per_second"], "'refill_per_second'")
    if capacity <= 0 or rate <= 0:
        raise Wrong(_("Both 'capacity' and 'refill_per_second' must be greater than 0."))
    r = _client()
    r.delete(P + "tb:client")
    bucket = TokenBucket(r, P + "tb:", capacity, rate)
    # Each burst runs in Redis at a time the check sets (the bucket's `at`): 40 requests at t=0, 40 more
    # at t=QUIET, so the counts are the bucket's arithmetic, not the machine's speed.
    first = burst(bucket, "client", 40, at=0.0)
    if first != REQUIRED_BURST:
        raise Wrong(_("A real burst of 40 requests: your bucket let {first} through. The requirement allows "
                      "bursts of up to {burst}: the capacity is the size of the largest burst.",
                      first=first, burst=REQUIRED_BURST))
    if abs(rate - REQUIRED_RATE) > 0.05 * REQUIRED_RATE:
        raise Wrong(_("refill_per_second={rate:g}: a steady client would get about {rate:g} requests per second "
                      "through, and the requirement is {required} per second sustained. refill_per_second is "
                      "in tokens per second: the long-run rate itself.", rate=rate, required=REQUIRED_RATE))
    gap = QUIET
    second = burst(bucket, "client", 40, at=gap)
    if abs(second - REQUIRED_RATE * gap) > 1:
        raise Wrong(_("After {gap:.1f} s of quiet your bucket let {second} requests through; {required} "
                      "requests per second sustained means about {expected:.0f}. "
                      "refill_per_second is in tokens per second.", gap=gap, second=second,
                      required=REQUIRED_RATE, expected=REQUIRED_RATE * gap))
    return _("Measured: a burst of {first}, then {second} after {gap:.1f} s — the bucket does what was asked.",
             first=first, second=second, gap=gap)


q4 = Exercise(
    lab=LAB, qid="q4", title="Size a token bucket (tested with a real burst)",
    checker=_check_bucket,
    hint_text="A full bucket is the largest burst; the refill rate is the long-run requests per second.",
    solution_text="answer = {'capacity': 20, 'refill_per_second': 5}",
    reference={"capacity": REQUIRED_BURST, "refill_per_second": REQUIRED_RATE},
    wrong=[
        ({"capacity": 5, "refill_per_second": 20}, "largest burst"),
        ({"capacity": 20, "refill_per_second": 5 / 60}, "tokens per second"),
        ({"capacity": 20, "refill_per_second": 30}, "tokens per second"),
        ({"capacity": 20, "refill_per_second": 9}, "tokens per second"),
        ({"capacity": "20", "refill_per_second": 5}, "number"),
        ({"capacity": 20}, "missing"),
    ],
)


# --- q5: retention with BITOP -----------------------------------------------------------------------

def _check_retention(answer: Any) -> str:
    _callable(answer, "retention(r, day1_key, day2_key)")
    r = _client()
    # Two cohorts (two seeds, two pairs of keys): a hard-coded share cannot answer both.
    for n, seed in ((4000, 61), (3000, 62)):
        d1, d2 = daily_activity(n, 2, seed=seed)
        k1, k2 = P + f"dau:{seed}:d1", P + f"dau:{seed}:d2"
        pipe = r.pipeline(transaction=False)
        for u in d1:
            pipe.setbit(k1, u, 1)
        for u in d2:
            pipe.setbit(k2, u, 1)
        pipe.execute()
        got = call_learner(answer, r, k1, k2, what=_("your function retention(r, day1_key, day2_key)"))
        value = expect_number(got, _("what retention returns"))
        want = len(d1 & d2) / len(d1)
        if math.isclose(value, want, rel_tol=1e-9):
            continue
        if math.isclose(value, len(d1 & d2)):
            raise Wrong(_("You returned {value:.0f}, the number of returning users; return the share of day-1 "
                          "users who came back (a number between 0 and 1).", value=value))
        if math.isclose(value, len(d2) / len(d1), rel_tol=1e-9):
            raise Wrong(_("You returned {value:.3f} = day-2 users / day-1 users: that counts the new users of day "
                          "2 too. Count only day-1 users also active on day 2 (BITOP AND), then divide by day 1.",
                          value=value))
        if math.isclose(value, len(d1 & d2) / len(d2), rel_tol=1e-9):
            raise Wrong(_("You returned {value:.3f}: you divided by the day-2 users. Retention is relative to the "
                          "day-1 cohort: divide by BITCOUNT of day 1.", value=value))
        raise Wrong(_("For the keys {k1!r} and {k2!r} you returned {value:.4f}; the share of day-1 users active "
                      "again on day 2 is {want:.4f}. BITOP AND the two days into a new key, BITCOUNT it, divide "
                      "by BITCOUNT of day 1.", k1=k1, k2=k2, value=value, want=want))
    return _("{value:.1%} of day-1 users came back; BITOP AND did it on the server, 1 bit per user.", value=value)


def _retention_reference(r: Any, day1: str, day2: str) -> float:
    both = P + "dau:both"
    r.bitop("AND", both, day1, day2)
    return r.bitcount(both) / r.bitcount(day1)


q5 = Exercise(
    lab=LAB, qid="q5", title="Day-1 retention with BITOP",
    checker=_check_retention,
    hint_text="r.bitop('AND', dest, key1, key2) writes the users active on both days into dest; r.bitcount(key) "
              "counts the 1 bits.",
    solution_text="def retention(r, day1_key, day2_key):\n"
                  "    r.bitop('AND', 'lab06:ex:dau:both', day1_key, day2_key)\n"
                  "    return r.bitcount('lab06:ex:dau:both') / r.bitcount(day1_key)",
    reference=_retention_reference,
    wrong=[
        (lambda r, a, b: r.bitcount(b) / r.bitcount(a), "new users"),
        (lambda r, a, b: r.bitop("AND", P + "x", a, b) and r.bitcount(P + "x") / r.bitcount(b), "divided by"),
        (lambda r, a, b: r.bitop("AND", P + "x", a, b) and r.bitcount(P + "x"), "number of returning users"),
        (lambda r, a, b: r.bitop("OR", P + "x", a, b) and r.bitcount(P + "x") / r.bitcount(a), "BITOP AND"),
        (lambda r, a, b: _retention_reference(r, P + "dau:61:d1", P + "dau:61:d2"), "for the keys"),
    ],
)
