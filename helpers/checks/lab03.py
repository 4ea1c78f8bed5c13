"""Lab 03 (database caching): exercises, checked against the real Redis and the real shop database."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_number
from helpers.runtime.i18n import N_, translator
from helpers.runtime.services import start
from helpers.topics import caching, dataset

_ = translator(__name__)

LAB = "03"
CHECK_DB = "lab03-checks"
NONE_RETURNED = N_("Your function returned None. Is its body still the `...` placeholder, or is a `return` "
                   "missing? It must return the product page (a dict).")


def _redis() -> Any:
    return start("redis").client()


def _shop() -> Any:
    return dataset.open_shop(CHECK_DB)  # a fresh copy: a check never depends on earlier writes


# --- q1: cache-aside ----------------------------------------------------------------------------

def _check_cache_aside(fn: Any) -> str:
    r, db = _redis(), _shop()
    try:
        pid_a, pid_b = db.bestsellers(40)[-1], db.product_ids(limit=7)[-1]
        for pid in (pid_a, pid_b):
            r.delete(caching.page_key(pid))
        expected = db.product_page(pid_a)
        db.reset_counts()
        got = call_learner(fn, r, db, pid_a, what=_("your function get_product(r, db, product_id)"))
        if got is None:
            raise Wrong(_(NONE_RETURNED))
        if isinstance(got, (str, bytes)):
            raise Wrong(_("Your function returned JSON text. Return the page as a dict: json.loads(...) what you "
                          "read from Redis (and return the database's dict on a miss)."))
        if got != expected:
            raise Wrong(_("get_product(r, db, {pid}) did not return the product page: expected a dict like "
                          "db.product_page({pid}) (keys {keys}, ...), got {got!r}.",
                          pid=pid_a, keys=", ".join(list(expected)[:4]), got=str(got)[:80]))
        if db.queries == 0:
            raise Wrong(_("On a miss your function did not ask the database (db.queries stayed 0). Where did the "
                          "page come from? Cache-aside loads from the database when the cache has nothing."))
        key = caching.page_key(pid_a)
        raw = r.get(key)
        if raw is None:
            raise Wrong(_("After a miss, your function did not store the page in Redis under {key!r}. "
                          "Cache-aside = read the cache; on a miss load from the database AND put it in the cache.",
                          key=key))
        try:
            json.loads(raw)
        except ValueError:
            raise Wrong(_("{key!r} holds {raw!r}, which is not JSON. Store json.dumps(page).",
                          key=key, raw=raw[:40])) from None
        ttl = r.ttl(key)
        if ttl == -1:
            raise Wrong(_("{key!r} has no expiry: a page cached forever is never refreshed. Pass ex=... "
                          "(a TTL between 60 and 3600 seconds) to r.set.", key=key))
        if not 60 <= ttl <= 3600:
            raise Wrong(_("{key!r} expires in {ttl} s; choose a TTL between 60 and 3600 seconds.", key=key, ttl=ttl))
        db.reset_counts()
        again = call_learner(fn, r, db, pid_a, what=_("your function get_product(r, db, product_id)"))
        if db.queries:
            raise Wrong(_("The second call for the same product still queried the database. Read the cache "
                          "first (r.get) and only go to the database on a miss."))
        if again != expected:
            raise Wrong(_("On a cache hit your function returned something other than the page it cached. "
                          "Return json.loads(r.get(key))."))
        if r.get(key) is None:
            raise Wrong(_("After a cache hit, {key!r} is gone: reading a page must leave it cached for the next "
                          "reader (GET, not GETDEL), or every other read goes to the database.", key=key))
        other = call_learner(fn, r, db, pid_b, what=_("your function get_product(r, db, product_id)"))
        if other != db.product_page(pid_b):
            raise Wrong(_("For product {pid} your function returned the wrong page: is the key built from "
                          "product_id (f'lab03:product:{{product_id}}')?", pid=pid_b))
        return _("A miss cost one database query; the hit that followed cost none. The page now lives "
                 "{ttl} s in the cache.", ttl=ttl)
    finally:
        db.close()


def _cache_aside_reference(r: Any, db: Any, product_id: int) -> dict:
    key = f"lab03:product:{product_id}"
    cached = r.get(key)
    if cached is not None:
        return json.loads(cached)
    page = db.product_page(product_id)
    r.set(key, json.dumps(page), ex=300)
    return page


def _cache_aside_no_ttl(r: Any, db: Any, product_id: int) -> dict:
    key = f"lab03:product:{product_id}"
    cached = r.get(key)
    if cached is not None:
        return json.loads(cached)
    page = db.product_page(product_id)
    r.set(key, json.dumps(page))
    return page


def _cache_aside_returns_text(r: Any, db: Any, product_id: int) -> str:
    key = f"lab03:product:{product_id}"
    cached = r.get(key)
    if cached is None:
        cached = json.dumps(db.product_page(product_id))
        r.set(key, cached, ex=300)
    return cached


def _cache_aside_writes_but_never_reads(r: Any, db: Any, product_id: int) -> dict:
    page = db.product_page(product_id)
    r.set(f"lab03:product:{product_id}", json.dumps(page), ex=300)
    return page


def _cache_aside_getdel(r: Any, db: Any, product_id: int) -> dict:
    key = f"lab03:product:{product_id}"
    cached = r.getdel(key)
    if cached is not None:
        return json.loads(cached)
    page = db.product_page(product_id)
    r.set(key, json.dumps(page), ex=300)
    return page


q1 = Exercise(
    lab=LAB, qid="q1", title="Cache-aside (lazy loading) for the product page",
    checker=_check_cache_aside,
    hint_text="Build the key f'lab03:product:{product_id}'. r.get(key): if not None, return json.loads(it). "
              "Otherwise page = db.product_page(product_id), r.set(key, json.dumps(page), ex=300), return page.",
    solution_text=(
        "def get_product(r, db, product_id):\n"
        "    key = f'lab03:product:{product_id}'\n"
        "    cached = r.get(key)\n"
        "    if cached is not None:\n"
        "        return json.loads(cached)          # hit: no database work\n"
        "    page = db.product_page(product_id)     # miss: the costly query\n"
        "    r.set(key, json.dumps(page), ex=300)   # lazy load, with a TTL\n"
        "    return page"),
    reference=_cache_aside_reference,
    wrong=[
        (lambda r, db, pid: db.product_page(pid), "did not store"),
        (_cache_aside_no_ttl, "no expiry"),
        (_cache_aside_returns_text, "json text"),
        (_cache_aside_writes_but_never_reads, "still queried the database"),
        (lambda r, db: db.product_page(1), "raised TypeError"),
        (_cache_aside_getdel, "not getdel"),
    ],
)


# --- q2: TTL with jitter ------------------------------------------------------------------------

def _check_jitter(fn: Any) -> str:
    what = _("your function ttl_with_jitter(base, jitter)")
    for base, jitter in ((300, 0.1), (60, 0.5)):
        values = [call_learner(fn, base, jitter, what=what) for _draw in range(2000)]
        for v in values[:5]:
            expect_number(v, _("what ttl_with_jitter returns"))
        low, high = base * (1 - jitter), base * (1 + jitter)
        outside = [v for v in values if not low - 1e-9 <= v <= high + 1e-9]
        if outside:
            raise Wrong(_("ttl_with_jitter({base}, {jitter}) returned {value!r}, outside {low:g}..{high:g}: "
                          "the jitter is a fraction of the base TTL, on either side of it.",
                          base=base, jitter=jitter, value=outside[0], low=low, high=high))
        if len(set(values)) == 1:
            raise Wrong(_("ttl_with_jitter({base}, {jitter}) always returns {value!r}: without randomness keys "
                          "loaded together still expire together.", base=base, jitter=jitter, value=values[0]))
        if max(values) - min(values) < base * jitter:
            raise Wrong(_("ttl_with_jitter({base}, {jitter}) only varies between {low:.4g} and "
                          "{high:.4g}: the spread is too small to de-synchronise expiries. Spread it over "
                          "+-{jitter:.0%} of the base.", base=base, jitter=jitter, low=min(values), high=max(values)))
    exact = call_learner(fn, 120, 0, what=what)
    if expect_number(exact, "ttl_with_jitter(120, 0)") != 120:
        raise Wrong(_("ttl_with_jitter(120, 0) returned {value!r}: with no jitter the TTL is the base itself.",
                      value=exact))
    return _("Keys loaded at the same moment now expire over a window instead of all at once.")


q2 = Exercise(
    lab=LAB, qid="q2", title="A TTL with jitter",
    checker=_check_jitter,
    hint_text="random.uniform(a, b) draws a float between a and b. Multiply the base by (1 + a draw between "
              "-jitter and +jitter).",
    solution_text="import random\n\ndef ttl_with_jitter(base, jitter):\n"
                  "    return base * (1 + random.uniform(-jitter, jitter))",
    reference=lambda base, jitter: base * (1 + random.uniform(-jitter, jitter)),
    wrong=[
        (lambda base, jitter: base, "always returns"),
        (lambda base, jitter: base + random.random(), "spread is too small"),
        (lambda base, jitter: random.uniform(0, 2 * base), "outside"),
        (lambda base, jitter: str(base), "number"),
    ],
)


# --- q3: invalidation on update -----------------------------------------------------------------

def _check_invalidation(fn: Any) -> str:
    r, db = _redis(), _shop()
    try:
        pid = db.bestsellers(12)[-1]
        key = caching.page_key(pid)
        r.delete(key)
        old = caching.get_product_page(r, db, pid)["price_cents"]  # the page is now cached
        new = old + 500
        events: list[str] = []
        call_learner(fn, _Spy(r, events, ("delete", "unlink")), _Spy(db, events, ("update_price",)), pid, new,
                     what=_("your function update_price(r, db, product_id, new_price_cents)"))
        if "update_price" in events and any(e != "update_price" for e in events):
            last_update = max(i for i, e in enumerate(events) if e == "update_price")
            if not any(e != "update_price" for e in events[last_update:]):
                raise Wrong(_("You deleted the cached page before updating the database. A reader in between "
                              "misses, reloads the old row and caches the old price again, and nothing removes "
                              "it: update the database first, then delete the cached page."))
        if db.price(pid) != new:
            raise Wrong(_("After update_price(..., {new}) the database still has price_cents={price}. "
                          "The database is the source of truth: update it (db.update_price) first.",
                          new=new, price=db.price(pid)))
        raw = r.get(key)
        if raw is not None and json.loads(raw).get("price_cents") != new:
            raise Wrong(_("The database has the new price, but {key!r} still holds the old page (price_cents="
                          "{price}): every reader sees a stale price until it "
                          "expires. Delete the cached page after the update (r.delete).",
                          key=key, price=json.loads(raw).get("price_cents")))
        served = caching.get_product_page(r, db, pid)["price_cents"]
        if served != new:
            raise Wrong(_("A reader using cache-aside still gets price_cents={served}.", served=served))
        return _("Readers get the new price at once. (Delete rather than re-set: two concurrent writers "
                 "cannot leave an older value behind.)")
    finally:
        db.close()


class _Spy:
    """Passes every call through to `target`, noting the names in `watch` as they are called (in order)."""

    def __init__(self, target: Any, events: list[str], watch: tuple[str, ...]):
        self._target, self._events, self._watch = target, events, watch

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._watch or not callable(attr):
            return attr

        def watched(*args: Any, **kwargs: Any) -> Any:
            self._events.append(name)
            return attr(*args, **kwargs)
        return watched


def _delete_first(r: Any, db: Any, product_id: int, new_price_cents: int) -> None:
    r.delete(f"lab03:product:{product_id}")
    db.update_price(product_id, new_price_cents)


def _invalidate_reference(r: Any, db: Any, product_id: int, new_price_cents: int) -> None:
    db.update_price(product_id, new_price_cents)
    r.delete(f"lab03:product:{product_id}")


def _only_cache(r: Any, db: Any, product_id: int, new_price_cents: int) -> None:
    r.delete(f"lab03:product:{product_id}")


q3 = Exercise(
    lab=LAB, qid="q3", title="Invalidate the cached page when a price changes",
    checker=_check_invalidation,
    hint_text="Two steps, in this order: db.update_price(product_id, new_price_cents), then delete the key "
              "f'lab03:product:{product_id}' from Redis.",
    solution_text="def update_price(r, db, product_id, new_price_cents):\n"
                  "    db.update_price(product_id, new_price_cents)   # the source of truth first\n"
                  "    r.delete(f'lab03:product:{product_id}')        # then drop the stale copy",
    reference=_invalidate_reference,
    wrong=[
        (lambda r, db, pid, cents: db.update_price(pid, cents), "stale"),
        (_only_cache, "database still has"),
        (_delete_first, "before updating the database"),
        (lambda r, db, pid: db.update_price(pid), "raised TypeError"),
    ],
)


# --- q4: which write strategy can lose acknowledged writes ----------------------------------

def _check_loses_writes(answer: Any) -> str:
    choice = expect_choice(answer, ["cache-aside", "write-through", "write-behind"], _("the strategy"))
    if choice == "write-through":
        raise Wrong(_("Write-through writes the database inside the request: once the application says 'saved', "
                      "the database has it, whatever happens to the cache node."))
    if choice == "cache-aside":
        raise Wrong(_("With cache-aside every write goes to the database; the cache only holds copies it can "
                      "reload. Losing the cache node costs speed, not data."))
    return _("Write-behind acknowledges once Redis has the change; until the flusher writes it to the database, "
             "losing the node (no replica, no persistence) loses those writes. On ElastiCache, Multi-AZ replicas "
             "narrow that window (ElastiCache does not offer AOF; a self-managed Redis could add it).")


q4 = Exercise(
    lab=LAB, qid="q4", title="Which write strategy can lose acknowledged writes?",
    checker=_check_loses_writes,
    hint_text="Which strategy says 'saved' before the database has the change?",
    solution_text="answer = 'write-behind'",
    reference="write-behind",
    wrong=[("write-through", "inside the request"), ("cache-aside", "copies"), ("read-through", "not one of")],
)


# --- q5: a stampede-safe loader ------------------------------------------------------------------

CLIENTS = 16


def _check_stampede(fn: Any) -> str:
    r, db = _redis(), _shop()
    try:
        hot = db.bestsellers(1)[0]
        expected = db.product_page(hot)
        first = call_learner(fn, r, db, hot, what=_("your function get_product_safe(r, db, product_id)"))
        if first is None:
            raise Wrong(_(NONE_RETURNED))
        if first != expected:
            raise Wrong(_("get_product_safe(r, db, product_id) did not return the product page "
                          "(db.product_page(product_id), a dict)."))
        result = caching.stampede_once(r, db, hot, CLIENTS, fn)
        if result.errors:
            raise Wrong(_("{errors} of {clients} concurrent calls raised an exception. Run your function "
                          "from several threads: is anything shared that should not be?",
                          errors=result.errors, clients=CLIENTS))
        got = caching.get_product_page(r, db, hot) if r.exists(caching.page_key(hot)) else None
        if result.db_queries > 2:
            raise Wrong(_("{clients} clients asking at the same instant caused {queries} database queries "
                          "(a stampede). Let only the client that wins SET lock NX PX load; the others wait for "
                          "the cache to fill.", clients=CLIENTS, queries=result.db_queries))
        if not result.consistent or any(v != expected for v in result.values):
            raise Wrong(_("Not every client got the product page: a client that loses the lock must wait (sleep "
                          "a few ms and read the cache again), not return None."))
        if result.db_queries == 0:
            raise Wrong(_("With the page missing from the cache, nobody asked the database: where did the page "
                          "come from? The client that wins the lock must load it with db.product_page."))
        if got is not None and got != expected:
            raise Wrong(_("The page your function cached differs from db.product_page(product_id)."))
        key = caching.page_key(hot)
        if r.exists(key + ":lock"):
            raise Wrong(_("After the loads the lock {lock!r} is still held: the winner must release it "
                          "(delete it if it still holds its token) once the page is cached, or the next miss on "
                          "this page waits for the lock's expiry.", lock=key + ":lock"))
        ttl_ms = r.pttl(key)
        if ttl_ms == -2:
            raise Wrong(_("After the loads {key!r} is not in the cache: store the page with a TTL in seconds, "
                          "r.set(key, json.dumps(page), ex=300) (px= counts milliseconds).", key=key))
        if ttl_ms == -1:
            raise Wrong(_("{key!r} has no expiry: pass ex=... (a TTL between 60 and 3600 seconds).", key=key))
        if not MIN_PAGE_TTL_MS <= ttl_ms <= 3_600_000:
            raise Wrong(_("{key!r} expires in {seconds:g} s; choose a TTL between 60 and 3600 seconds "
                          "(ex= counts seconds, px= milliseconds).", key=key, seconds=ttl_ms / 1000))
        _check_foreign_lock(fn, r, db, hot)
        return _("{clients} concurrent clients, {queries} database query(ies): the others waited "
                 "{wait:.0f} ms at most for the winner's result.",
                 clients=CLIENTS, queries=result.db_queries, wait=max(result.latencies_ms))
    finally:
        db.close()


# A page stored with ex=60 (the shortest TTL the lab accepts) still has more than this left when it is checked.
MIN_PAGE_TTL_MS = 10_000
FOREIGN_TOKEN = "another-client"


class _SlowWinner:
    """The shop database, as seen by a winner so slow that its lock expired and another client took it while
    it loaded: the first product_page call overwrites the lock with another client's token."""

    def __init__(self, db: Any, r: Any, lock: str):
        self._db, self._r, self._lock, self.taken = db, r, lock, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def product_page(self, product_id: int) -> Any:
        if not self.taken and self._r.exists(self._lock):
            self._r.set(self._lock, FOREIGN_TOKEN, px=5000)
            self.taken = True
        return self._db.product_page(product_id)


def _check_foreign_lock(fn: Any, r: Any, db: Any, pid: int) -> None:
    """A winner whose lock expired during the load must not delete the lock another client now holds."""
    key = caching.page_key(pid)
    lock = key + ":lock"
    r.delete(key, lock)
    slow = _SlowWinner(db, r, lock)
    try:
        call_learner(fn, r, slow, pid, what=_("your function get_product_safe(r, db, product_id)"))
        if slow.taken and r.get(lock) != FOREIGN_TOKEN:
            raise Wrong(_("While your winner loaded, its lock expired and another client took {lock!r} with its "
                          "own token; your function then deleted that client's lock, letting a third client load "
                          "too. Delete the lock only if it still holds your token (r.get(lock) == token).",
                          lock=lock))
    finally:
        r.delete(lock)


def _safe_reference(r: Any, db: Any, product_id: int) -> dict:
    key = f"lab03:product:{product_id}"
    while True:
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        token = uuid.uuid4().hex
        if r.set(key + ":lock", token, nx=True, px=5000):
            try:
                page = db.product_page(product_id)
                r.set(key, json.dumps(page), ex=300)
                return page
            finally:
                if r.get(key + ":lock") == token:
                    r.delete(key + ":lock")
        time.sleep(0.005)


def _no_wait(r: Any, db: Any, product_id: int) -> dict | None:
    key = f"lab03:product:{product_id}"
    cached = r.get(key)
    if cached is not None:
        return json.loads(cached)
    if r.set(key + ":lock", "1", nx=True, px=5000):
        page = db.product_page(product_id)
        r.set(key, json.dumps(page), ex=300)
        r.delete(key + ":lock")
        return page
    return None


def _safe_variant(release: str = "token", page_ttl: dict | None = None) -> Any:
    """The reference loader with one flaw: `release` is "token" (right), "never" (compares with !=, so it never
    deletes its own lock) or "always" (deletes whatever lock is there); `page_ttl` the page's set() options."""
    ttl = page_ttl or {"ex": 300}

    def get_product_safe(r: Any, db: Any, product_id: int) -> dict:
        key = f"lab03:product:{product_id}"
        while True:
            cached = r.get(key)
            if cached is not None:
                return json.loads(cached)
            token = uuid.uuid4().hex
            if r.set(key + ":lock", token, nx=True, px=5000):
                try:
                    page = db.product_page(product_id)
                    r.set(key, json.dumps(page), **ttl)
                    return page
                finally:
                    held = r.get(key + ":lock")
                    if release == "always" or (release == "never" and held != token) or (
                            release == "token" and held == token):
                        r.delete(key + ":lock")
            time.sleep(0.005)

    return get_product_safe


q5 = Exercise(
    lab=LAB, qid="q5", title="A stampede-safe loader",
    checker=_check_stampede,
    hint_text="Loop: read the cache; if it is there, return it. Else try r.set(key + ':lock', token, nx=True, "
              "px=5000): the winner loads, caches and deletes its lock; a loser sleeps ~5 ms and loops.",
    solution_text=(
        "def get_product_safe(r, db, product_id):\n"
        "    key = f'lab03:product:{product_id}'\n"
        "    while True:\n"
        "        cached = r.get(key)\n"
        "        if cached is not None:\n"
        "            return json.loads(cached)\n"
        "        token = uuid.uuid4().hex\n"
        "        if r.set(key + ':lock', token, nx=True, px=5000):   # only one client wins\n"
        "            try:\n"
        "                page = db.product_page(product_id)\n"
        "                r.set(key, json.dumps(page), ex=300)\n"
        "                return page\n"
        "            finally:\n"
        "                if r.get(key + ':lock') == token:             # (a Lua script makes this atomic)\n"
        "                    r.delete(key + ':lock')\n"
        "        time.sleep(0.005)                                     # losers wait for the winner"),
    reference=_safe_reference,
    wrong=[
        (caching.get_product_page, "stampede"),
        (_no_wait, "not return none"),
        (lambda r, db, pid: 1 / 0, "raised ZeroDivisionError"),
        (_safe_variant(release="never"), "still held"),
        (_safe_variant(release="always"), "another client"),
        (_safe_variant(page_ttl={"px": 300}), "px="),
        (_safe_variant(page_ttl={"ex": 300_000}), "between 60 and 3600"),
    ],
)
