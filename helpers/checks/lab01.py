"""Lab 01 (Redis data structures): exercises, checked against the real Redis."""

from __future__ import annotations

import random
import time
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choices_per_item, expect_type
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import start

_ = translator(__name__)

LAB = "01"
PREFIX = "lab01:check:"


def _redis() -> Any:
    return start("redis").client()


# --- q1: a leaderboard ---------------------------------------------------------------------------

SCORES = {"ana": 3120, "bruno": 2870, "carla": 4410, "diego": 990, "elena": 3980, "fer": 2100,
          "gabi": 4410.5, "hugo": 1500, "ines": 3600, "juan": 50}


def _check_top_n(answer: Any) -> str:
    r = _redis()
    key = PREFIX + "leaderboard"
    r.delete(key)
    r.zadd(key, SCORES)
    expected = [(m, float(s)) for m, s in sorted(SCORES.items(), key=lambda kv: -kv[1])]
    for n in (3, 5):
        got = call_learner(answer, r, key, n, what=_("your function top_n(r, key, n)"))
        if not isinstance(got, (list, tuple)):
            raise Wrong(_("top_n returned {type}; return a list of (member, score) pairs.",
                          type=type(got).__name__))
        got = list(got)
        if got and not all(isinstance(x, (list, tuple)) and len(x) == 2 for x in got):
            raise Wrong(_("top_n should return (member, score) pairs, e.g. [('gabi', 4410.5), ...]; "
                          "pass withscores=True."))
        pairs = [(m, float(s)) for m, s in got]
        if len(pairs) == n + 1:
            raise Wrong(_("Asked for the top {n}, top_n returned {count} entries: ZREVRANGE's stop index is "
                          "inclusive, so the top n is 0 .. n-1.", n=n, count=n + 1))
        if len(pairs) != n:
            raise Wrong(_("Asked for the top {n}, top_n returned {count} entries.", n=n, count=len(pairs)))
        if pairs == expected[-n:][::-1] or pairs == sorted(expected, key=lambda p: p[1])[:n]:
            raise Wrong(_("Your leaderboard returns the lowest scores, ascending. Use ZREVRANGE (or ZRANGE "
                          "with desc=True) so the highest score comes first."))
        if pairs != expected[:n]:
            raise Wrong(_("For n={n} the top should be {expected}, but top_n returned {pairs}.",
                          n=n, expected=expected[:n], pairs=pairs))
    r.delete(key)
    return _("ZREVRANGE key 0 n-1 WITHSCORES reads the top n in O(log N + n), however big the board is.")


q1 = Exercise(
    lab=LAB, qid="q1", title="Leaderboard: the top n, highest first",
    checker=_check_top_n,
    hint_text="r.zrevrange(key, start, stop, withscores=True); the stop index is inclusive.",
    solution_text="def top_n(r, key, n):\n    return r.zrevrange(key, 0, n - 1, withscores=True)",
    reference=lambda r, key, n: r.zrevrange(key, 0, n - 1, withscores=True),
    wrong=[
        (lambda r, key, n: r.zrange(key, 0, n - 1, withscores=True), "ascending"),
        (lambda r, key, n: r.zrevrange(key, 0, n, withscores=True), "inclusive"),
        (lambda r, key, n: r.zrevrange(key, 0, n - 1), "pairs"),
        (lambda r, key, n: r.zrevrange(key, 1, n, withscores=True), "the top should be"),
        (lambda r, key: r.zrevrange(key, 0, 2), "raised TypeError"),
    ],
)


# --- q4: the right structure for each requirement ------------------------------------------------

STRUCTURE_CHOICES = ["string", "hash", "list", "set", "zset", "bitmap", "hyperloglog", "geo", "stream"]
REQUIREMENTS = {
    "a": ("hyperloglog", N_("an approximate count of unique visitors per day, in about 12 KB whatever the traffic"),
          N_("a HyperLogLog counts distinct items in at most ~12 KB with ~0.81% error; a set would store every "
             "id.")),
    "b": ("zset", N_("the 10 best players by score, updated on every game"),
          N_("a sorted set keeps members ordered by score: ZINCRBY to update, ZREVRANGE to read the top.")),
    "c": ("hash", N_("a user profile whose fields (name, email, plan) are read and updated one at a time"),
          N_("a hash stores field -> value under one key: HSET/HGET one field without rewriting the others.")),
    "d": ("geo", N_("the shops within 5 km of the customer"),
          N_("GEOADD and GEOSEARCH ... BYRADIUS answer 'what is near this point'.")),
    "e": ("stream", N_("an append-only event log that several consumer groups read, acknowledging what they "
                       "processed"),
          N_("a stream has IDs, consumer groups, XACK and a pending list; a list has none of those.")),
    "f": ("bitmap", N_("for 10 million users (ids 0..9,999,999): did user N log in on a given day?"),
          N_("one bit per user id: SETBIT/GETBIT, about 1.2 MB per day for 10 M users, BITCOUNT for totals.")),
    "g": ("set", N_("the tags of each article, and the articles sharing two tags"),
          N_("sets hold unique members and SINTER intersects them.")),
    "h": ("list", N_("a job queue: producers push at one end, workers pop at the other, in order"),
          N_("a list is a FIFO: LPUSH + RPOP (or BLMOVE for a reliable queue).")),
}


ALIASES = {"sorted set": "zset", "sortedset": "zset", "sorted_set": "zset", "hll": "hyperloglog",
           "geospatial": "geo", "bitmaps": "bitmap", "strings": "string", "hashes": "hash", "lists": "list",
           "sets": "set", "streams": "stream", "bit array": "bitmap", "geo index": "geo"}


def _check_structures(answer: Any) -> str:
    expect_choices_per_item(
        answer, {rid: right for rid, (right, _, _) in REQUIREMENTS.items()}, STRUCTURE_CHOICES,
        aliases=ALIASES, what=_("the structure"),
        explain=lambda rid, chosen: _("{rid!r} ({requirement}): not a {chosen}; {why}", rid=rid,
                                      requirement=_(REQUIREMENTS[rid][1]), chosen=chosen,
                                      why=_(REQUIREMENTS[rid][2])))
    return _("Picking the structure is most of the design: each one makes its requirement one cheap command.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Pick the right structure for each requirement",
    checker=_check_structures,
    hint_text="Ask of each requirement: ordered by a score? approximate distinct count? one bit per id? "
              "near a point? consumers that acknowledge? Choices: " + ", ".join(STRUCTURE_CHOICES),
    solution_text="answer = " + repr({rid: right for rid, (right, _, _) in REQUIREMENTS.items()}),
    reference={rid: right for rid, (right, _, _) in REQUIREMENTS.items()},
    wrong=[
        ({**{rid: right for rid, (right, _, _) in REQUIREMENTS.items()}, "a": "set"}, "hyperloglog counts"),
        ({**{rid: right for rid, (right, _, _) in REQUIREMENTS.items()}, "e": "list", "b": "list"}, "2 of 8"),
        ({"a": "hyperloglog"}, "missing the key"),
        ({**{rid: right for rid, (right, _, _) in REQUIREMENTS.items()}, "d": "postgis"}, "not one of the choices"),
    ],
)


# --- q5: a counter with expiry (fixed window) ----------------------------------------------------

WINDOW_S = 60


def _check_counter(answer: Any) -> str:
    r = _redis()
    user = f"u{random.randrange(10_000):04d}"
    key = f"lab01:hits:{user}"
    r.delete(key)
    started = time.monotonic()
    counts = [call_learner(answer, r, user, what=_("your function hit(r, user)"))]
    first_ttl_ms, elapsed_ms = r.pttl(key), (time.monotonic() - started) * 1000
    counts += [call_learner(answer, r, user, what=_("your function hit(r, user)")) for _again in range(2)]
    if r.exists(key) == 0:
        others = [k for k in r.scan_iter(match=f"*{user}*", count=1000)]
        r.delete(key, *others)
        found = _(" (it wrote {key!r} instead)", key=others[0]) if others else ""
        raise Wrong(_("After three hits the key {key!r} does not exist{found}. Use exactly 'lab01:hits:' + user.",
                      key=key, found=found))
    if counts != [1, 2, 3]:
        r.delete(key)
        raise Wrong(_("Three calls returned {counts}; they should return 1, 2, 3 (the count after each hit). "
                      "r.incr returns the new value.", counts=counts))
    ttl = r.ttl(key)
    if ttl == -1:
        r.delete(key)
        raise Wrong(_("The counter has no expiry, so the window never ends and the count grows forever. "
                      "Set a 60 s expiry when the counter is created."))
    if first_ttl_ms == -1:
        r.delete(key)
        raise Wrong(_("After the first hit the counter has no expiry (it got one only later): a user who calls "
                      "once leaves a key that never expires. Set the expiry when INCR returns 1."))
    # An expiry of 60 s set during the call has at least 60,000 ms minus the call's duration left (the server
    # counts whole milliseconds: 5 ms of slack); 59 s or less cannot reach that, however slow the machine.
    if first_ttl_ms + elapsed_ms + 5 < WINDOW_S * 1000:
        r.delete(key)
        raise Wrong(_("After the first hit the counter expires in {ttl:.2f} s: the window is "
                      "{window} s, so expire it after {window} s (r.expire(key, {window})).",
                      ttl=first_ttl_ms / 1000, window=WINDOW_S))
    if not 1 <= ttl <= 60:
        r.delete(key)
        raise Wrong(_("The counter expires in {ttl} s; the window is 60 s.", ttl=ttl))
    r.expire(key, 5)  # as if 55 s of the window had passed
    call_learner(answer, r, user, what=_("your function hit(r, user)"))
    ttl_after = r.ttl(key)
    r.delete(key)
    if ttl_after > 5:
        raise Wrong(_("Each hit resets the expiry to 60 s, so a user who keeps calling never gets a fresh window "
                      "(and is counted forever). Set the expiry only when the counter is created "
                      "(when INCR returns 1, or EXPIRE ... NX)."))
    return _("INCR is atomic and EXPIRE on the first hit fixes the window: a fixed-window rate limiter.")


def _hit_reference(r: Any, user: str) -> int:
    key = f"lab01:hits:{user}"
    count = r.incr(key)
    if count == 1:
        r.expire(key, 60)
    return count


def _hit_expire_on_second(r: Any, user: str) -> int:
    key = f"lab01:hits:{user}"
    count = r.incr(key)
    if count == 2:
        r.expire(key, 60)
    return count


q5 = Exercise(
    lab=LAB, qid="q5", title="A per-user counter that resets every 60 seconds",
    checker=_check_counter,
    hint_text="count = r.incr(key) creates the key at 1; call r.expire(key, 60) only when count == 1.",
    solution_text="def hit(r, user):\n    key = 'lab01:hits:' + user\n    count = r.incr(key)\n"
                  "    if count == 1:\n        r.expire(key, 60)\n    return count",
    reference=_hit_reference,
    wrong=[
        (lambda r, user: r.incr(f"lab01:hits:{user}"), "no expiry"),
        (lambda r, user: (r.incr(f"lab01:hits:{user}"), r.expire(f"lab01:hits:{user}", 60))[0], "resets"),
        (lambda r, user: r.set(f"lab01:hits:{user}", 1, ex=60), "should return 1, 2, 3"),
        (lambda r, user: r.incr(f"hits:{user}"), "does not exist"),
        (_hit_expire_on_second, "after the first hit"),
        (lambda r, user: (r.incr(f"lab01:hits:{user}"), r.expire(f"lab01:hits:{user}", 59, nx=True))[0], "window is 60"),
    ],
)


# --- q2: users active on both days, with bitmaps -------------------------------------------------

def _check_both_days(answer: Any) -> str:
    r = _redis()
    # Two pairs of days (two seeds, two pairs of keys): a hard-coded count cannot answer both.
    for seed, tag in ((4, ""), (5, "w2:")):
        rng = random.Random(seed)
        day1, day2 = PREFIX + f"active:{tag}day1", PREFIX + f"active:{tag}day2"
        users1 = {u for u in range(5000) if rng.random() < 0.30}
        users2 = {u for u in range(5000) if rng.random() < 0.40}
        r.delete(day1, day2)
        pipe = r.pipeline(transaction=False)
        for u in users1:
            pipe.setbit(day1, u, 1)
        for u in users2:
            pipe.setbit(day2, u, 1)
        pipe.execute()
        result = call_learner(answer, r, day1, day2, what=_("your function both_days(r, day1_key, day2_key)"))
        r.delete(day1, day2, *list(r.scan_iter(match=PREFIX + "active:*", count=1000)))
        expect_type(result, int, _("what both_days returns"))
        both, either = len(users1 & users2), len(users1 | users2)
        if result == either:
            raise Wrong(_("{result} is the number of users active on either day (OR). Both days means AND.",
                          result=result))
        if result in (len(users1), len(users2)):
            raise Wrong(_("{result} is the number of users active on one of the days only; combine the two "
                          "bitmaps with BITOP AND first, then BITCOUNT the result.", result=result))
        if result != both:
            raise Wrong(_("both_days({day1!r}, {day2!r}) returned {result}; {both} users were active on both "
                          "days. Count the bitmaps you are given.", day1=day1, day2=day2, result=result, both=both))
    return _("{both} users: BITOP AND over two {size}-byte bitmaps, then BITCOUNT, all on the server.",
             both=both, size=5000 // 8)


def _both_days_reference(r: Any, day1: str, day2: str) -> int:
    dest = PREFIX + "active:both"
    r.bitop("AND", dest, day1, day2)
    count = r.bitcount(dest)
    r.delete(dest)
    return count


q2 = Exercise(
    lab=LAB, qid="q2", title="Daily active users on both days (bitmaps)",
    checker=_check_both_days,
    hint_text="r.bitop('AND', dest_key, day1_key, day2_key) writes the intersection to dest_key; "
              "r.bitcount(dest_key) counts its 1 bits.",
    solution_text="def both_days(r, day1_key, day2_key):\n    r.bitop('AND', 'lab01:both', day1_key, day2_key)\n"
                  "    return r.bitcount('lab01:both')",
    reference=_both_days_reference,
    wrong=[
        (lambda r, a, b: (r.bitop("OR", PREFIX + "active:x", a, b), r.bitcount(PREFIX + "active:x"))[1], "either day"),
        (lambda r, a, b: r.bitcount(a), "one of the days"),
        (lambda r, a, b: str(r.bitcount(a)), "whole number"),
        (lambda r, a, b: r.pfcount(a), "raised"),
        (lambda r, a, b: _both_days_reference(r, PREFIX + "active:day1", PREFIX + "active:day2"), "you are given"),
    ],
)


# --- q3: the encoding after the threshold --------------------------------------------------------

def _hash_big_encoding() -> str:
    from helpers.topics.datastructures import encoding_curve, listpack_threshold

    r = _redis()
    limit = listpack_threshold(r, "hash") or 512
    return encoding_curve(r, "hash", PREFIX + "enc", [limit + 1])[0].encoding


def _check_encoding(answer: Any) -> str:
    expect_type(answer, str, _("the encoding"))
    actual = _hash_big_encoding()
    norm = answer.strip().lower()
    if norm in ("listpack", "ziplist"):
        raise Wrong(_("'{norm}' is the compact encoding of a *small* hash. One element above the "
                      "hash-max-listpack-entries limit the server converts it; OBJECT ENCODING tells you to what.",
                      norm=norm))
    if norm != actual:
        raise Wrong(_("{answer!r} is not what OBJECT ENCODING reports for a hash one element over the limit. "
                      "Run r.object('encoding', key) on such a hash.", answer=answer))
    return _("Above the limit a hash becomes a real {actual}: faster lookups on big hashes, "
             "but several times more bytes per field (see the plot).", actual=actual)


q3 = Exercise(
    lab=LAB, qid="q3", title="The encoding of a hash past the listpack limit",
    checker=_check_encoding,
    hint_text="Read the limit with r.config_get('hash-max-listpack-entries'), build a hash one field bigger "
              "and ask r.object('encoding', key).",
    solution_text="answer = 'hashtable'   # r.object('encoding', key) on a hash above the limit",
    make_reference=_hash_big_encoding,
    wrong=[("listpack", "compact encoding"), ("skiplist", "not what OBJECT ENCODING reports"),
           (512, "string")],
)
