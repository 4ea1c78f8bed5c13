"""Lab 14 (capstone): checked milestones — the design, its alarms, the product API, the cache warm-up."""

from __future__ import annotations

import json
from collections.abc import Callable
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
from helpers.runtime.i18n import translator
from helpers.topics import capstone
from helpers.topics.capstone import (
    ELASTICACHE_METRICS,
    REFERENCE_ALARMS,
    REFERENCE_DESIGN,
    WORKLOAD,
    page_key,
)

_ = translator(__name__)
LAB = "14"
POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
            "volatile-random", "volatile-ttl")
DESIGN_KEYS = ("engine", "topology", "shards", "replicas", "eviction_policy", "ttl_seconds", "ttl_jitter", "tls", "auth")


# --- q1: the design ---------------------------------------------------------------------------------

def _check_design(design: Any) -> str:
    expect_keys(design, DESIGN_KEYS, _("your design"))
    engine = expect_choice(design["engine"], ["redis", "memcached"], "design['engine']")
    if engine == "memcached":
        raise Wrong(_("Memcached has no replicas and no failover: losing a node loses its keys, and the workload "
                      "must survive the loss of any one node. Choose 'redis'."))
    topo = expect_choice(design["topology"], ["standalone", "replicated", "cluster"], "design['topology']")
    if topo == "standalone":
        raise Wrong(_("A standalone node is a single point of failure: when it dies, the cache is gone and every "
                      "read hits the database. The workload asks to survive any one node's loss."))
    if topo == "replicated":
        raise Wrong(_("A primary with replicas survives a node loss, but all writes and all data stay on ONE "
                      "primary: the catalogue's 10x growth needs capacity added online, i.e. more shards (cluster "
                      "mode enabled)."))
    expect_type(design["shards"], int, "design['shards']")
    expect_type(design["replicas"], int, "design['replicas']")
    if design["shards"] < 1:
        raise Wrong(_("design['shards']={shards}: a cluster-mode-enabled group has at least one shard (node group).",
                      shards=design['shards']))
    if design["shards"] > 4:
        raise Wrong(_("{shards} shards is more than this workload needs (and than this machine should run): start "
                      "with 3 and add shards when the metrics say so — the drill shows how.",
                      shards=design['shards']))
    if design["replicas"] < 1:
        raise Wrong(_("With 0 replicas per shard, losing a primary loses its slots' data and availability until it "
                      "is replaced. Give each shard at least one replica (ElastiCache: Multi-AZ with automatic "
                      "failover needs one)."))
    if design["replicas"] > 2:
        raise Wrong(_("{replicas} replicas per shard triples the cost for a workload that asks to survive ONE "
                      "node's loss: 1 replica per shard is enough.", replicas=design['replicas']))
    policy = expect_choice(design["eviction_policy"], POLICIES, "design['eviction_policy']")
    if policy == "noeviction":
        raise Wrong(_("Under noeviction a full cache refuses writes (OOM errors): for a cache of product pages, "
                      "evicting the least useful page is what you want."))
    if policy.startswith("volatile-"):
        raise Wrong(_("'{policy}' only evicts keys that have a TTL: any key written without one would make a full "
                      "node refuse writes instead of evicting. A pure cache of pages uses an allkeys-* policy (lab "
                      "07).", policy=policy))
    if policy == "allkeys-random":
        raise Wrong(_("allkeys-random ignores popularity, which is skewed here: lab 07 measured LFU keeping more "
                      "hits than random. Use a policy that ranks pages by use (LFU or LRU)."))
    ttl = expect_number(design["ttl_seconds"], "design['ttl_seconds']")
    jitter = expect_number(design["ttl_jitter"], "design['ttl_jitter']")
    if not 0 < jitter <= 0.5:
        raise Wrong(_("ttl_jitter={jitter}: spread the TTLs by a fraction of the TTL (e.g. 0.1 for +-10%), so "
                      "pages cached together do not all expire together (lab 03). A value above 0 and at most 0.5.",
                      jitter=jitter))
    if ttl < 60:
        raise Wrong(_("A {ttl:g} s TTL expires pages so often that the hit ratio target cannot be met: keep pages "
                      "at least a minute.", ttl=ttl))
    longest = ttl * (1 + jitter)
    if longest > WORKLOAD["max_staleness_s"]:
        raise Wrong(_("With ttl_seconds={ttl:g} and ttl_jitter={jitter:g}, a page may live {longest:g} s: more "
                      "than the {max_staleness_s} s a changed price may stay stale if an invalidation is lost "
                      "(e.g. during a failover). Keep ttl_seconds * (1 + ttl_jitter) <= 300.",
                      ttl=ttl, jitter=jitter, longest=longest, max_staleness_s=WORKLOAD['max_staleness_s']))
    if design["tls"] is not True:
        raise Wrong(_("The workload requires encryption in transit: set 'tls': True (ElastiCache: "
                      "TransitEncryptionEnabled)."))
    if design["auth"] is not True:
        raise Wrong(_("The workload requires authentication: set 'auth': True (ElastiCache: an AUTH token or RBAC "
                      "users)."))
    return (_("{shards} shards x {nodes} nodes, {policy}, TTL {ttl:g} s +-{jitter:.0%}, TLS and AUTH: "
              "the next cell builds exactly this.",
              shards=design['shards'], nodes=design['replicas'] + 1, policy=policy, ttl=ttl, jitter=jitter))


q1 = Exercise(
    lab=LAB, qid="q1", title="Design the cache for the stated workload",
    checker=_check_design,
    hint_text="Go through the workload's lines one by one: which requirement rules out Memcached? a single "
              "primary with cluster mode disabled? Which eviction policy ranks pages by use? "
              "The longest a page lives is ttl_seconds * (1 + ttl_jitter).",
    solution_text="design = {'engine': 'redis', 'topology': 'cluster', 'shards': 3, 'replicas': 1,\n"
                  "          'eviction_policy': 'allkeys-lfu', 'ttl_seconds': 240, 'ttl_jitter': 0.1,\n"
                  "          'tls': True, 'auth': True}",
    reference=dict(REFERENCE_DESIGN),
    wrong=[
        ({**REFERENCE_DESIGN, "engine": "memcached"}, "no failover"),
        ({**REFERENCE_DESIGN, "topology": "replicated"}, "more shards"),
        ({**REFERENCE_DESIGN, "shards": 6}, "more than this workload needs"),
        ({**REFERENCE_DESIGN, "replicas": 0}, "at least one replica"),
        ({**REFERENCE_DESIGN, "eviction_policy": "noeviction"}, "refuses writes"),
        ({**REFERENCE_DESIGN, "eviction_policy": "allkeys-random"}, "ignores popularity"),
        ({**REFERENCE_DESIGN, "eviction_policy": "volatile-lru"}, "allkeys-*"),
        ({**REFERENCE_DESIGN, "ttl_seconds": 3600}, "stale"),
        ({**REFERENCE_DESIGN, "ttl_jitter": 0}, "expire together"),
        ({**REFERENCE_DESIGN, "tls": False}, "encryption in transit"),
        ({k: v for k, v in REFERENCE_DESIGN.items() if k != "auth"}, "missing the key"),
    ],
    also_right=[{**REFERENCE_DESIGN, "eviction_policy": "allkeys-lru"},
                {**REFERENCE_DESIGN, "shards": 2},  # the control plane fails over whatever the number of shards
                {**REFERENCE_DESIGN, "shards": 1, "replicas": 2}],
)


# --- q2: alarms -------------------------------------------------------------------------------------

def _check_alarms(alarms: Any) -> str:
    expect_type(alarms, (list, tuple), _("your alarms"))
    if not alarms:
        raise Wrong(_("Your list of alarms is empty: nobody would be told when the cache stops meeting its targets."))
    by_metric: dict[str, dict] = {}
    for i, alarm in enumerate(alarms):
        expect_keys(alarm, ("metric", "comparison", "threshold"), _("alarm {i}", i=i + 1))
        metric = alarm["metric"]
        if metric not in ELASTICACHE_METRICS:
            raise Wrong(_("Alarm {i}: {metric!r} is not an ElastiCache metric. Names look like 'CacheHitRate', "
                          "'EngineCPUUtilization', 'DatabaseMemoryUsagePercentage' (CloudWatch namespace "
                          "AWS/ElastiCache).", i=i + 1, metric=metric))
        expect_choice(alarm["comparison"], list(capstone.COMPARISONS), _("alarm {i}'s comparison", i=i + 1))
        expect_number(alarm["threshold"], _("alarm {i}'s threshold", i=i + 1))
        by_metric[metric] = alarm
    if "CPUUtilization" in by_metric and "EngineCPUUtilization" not in by_metric:
        raise Wrong(_("CPUUtilization averages all the host's cores, but Redis executes commands on one thread: a "
                      "node can be saturated at 50% CPUUtilization on 2 cores. Alarm on EngineCPUUtilization."))
    target = WORKLOAD["hit_ratio"] * 100
    hit = by_metric.get("CacheHitRate")
    if hit is None:
        raise Wrong(_("No alarm watches the hit ratio target ({target:.0f}%): add one on CacheHitRate.",
                      target=target))
    if not hit["comparison"].startswith("<"):
        raise Wrong(_("Your CacheHitRate alarm fires when the hit rate is HIGH: the problem is a hit rate that "
                      "falls below the target — use '<'."))
    if abs(float(hit["threshold"]) - target) > 5:
        raise Wrong(_("Your CacheHitRate alarm fires below {threshold}%; the target is {target:.0f}% (CacheHitRate "
                      "is a percentage, 0-100).", threshold=hit['threshold'], target=target))
    cpu = by_metric.get("EngineCPUUtilization")
    if cpu is None:
        raise Wrong(_("No alarm watches the engine's CPU: add one on EngineCPUUtilization (a busy engine thread is "
                      "what makes latency climb)."))
    if not cpu["comparison"].startswith(">") or not 50 <= float(cpu["threshold"]) <= 90:
        raise Wrong(_("Your EngineCPUUtilization alarm should fire when the engine thread is busy: '>' with a "
                      "threshold between 50 and 90 (%), leaving time to add a shard before requests queue."))
    mem = by_metric.get("DatabaseMemoryUsagePercentage")
    if mem is None:
        raise Wrong(_("No alarm watches memory: add one on DatabaseMemoryUsagePercentage (evictions start at 100%)."))
    if not mem["comparison"].startswith(">") or not 50 <= float(mem["threshold"]) <= 90:
        raise Wrong(_("A DatabaseMemoryUsagePercentage alarm at {comparison} {threshold} comes too late (or "
                      "never): evictions start at 100%. Use '>' with a threshold between 50 and 90.",
                      comparison=mem['comparison'], threshold=mem['threshold']))
    return _("The next cell creates these alarms in (local) CloudWatch and evaluates them on your load "
             "test.")


q2 = Exercise(
    lab=LAB, qid="q2", title="Alarms that watch the targets",
    checker=_check_alarms,
    hint_text="Three alarms: the hit-rate target (CacheHitRate, a percentage), a busy engine thread "
              "(EngineCPUUtilization) and memory (DatabaseMemoryUsagePercentage). Which way must each comparison go?",
    solution_text="alarms = [\n    {'metric': 'CacheHitRate', 'comparison': '<', 'threshold': 75},\n"
                  "    {'metric': 'EngineCPUUtilization', 'comparison': '>', 'threshold': 80},\n"
                  "    {'metric': 'DatabaseMemoryUsagePercentage', 'comparison': '>', 'threshold': 80},\n]",
    reference=[dict(a) for a in REFERENCE_ALARMS],
    wrong=[
        ([], "empty"),
        ([{**REFERENCE_ALARMS[0], "comparison": ">"}, *REFERENCE_ALARMS[1:]], "falls below"),
        ([{**REFERENCE_ALARMS[0], "threshold": 0.75}, *REFERENCE_ALARMS[1:]], "percentage"),
        ([REFERENCE_ALARMS[0], {**REFERENCE_ALARMS[1], "metric": "CPUUtilization"}, REFERENCE_ALARMS[2]],
         "one thread"),
        ([REFERENCE_ALARMS[0], REFERENCE_ALARMS[1], {**REFERENCE_ALARMS[2], "threshold": 99}], "too late"),
        (REFERENCE_ALARMS[1:], "CacheHitRate"),
        ([{**REFERENCE_ALARMS[0], "metric": "HitRate"}], "not an ElastiCache metric"),
    ],
)


# --- q3-q5: the product API, on the lab's real cluster ----------------------------------------------

def _setup() -> tuple[Any, Any]:
    """The lab's cluster client and a fresh copy of the shop database."""
    from helpers.exercises import core

    with core.outside_budget():  # creating the group is not time the learner's functions took
        return capstone.client(capstone.running_service()), capstone.shop("lab14-check")


def _dead_cache() -> Any:
    """A real client for a port where nothing listens: what the app sees while a node is down."""
    import redis

    from helpers.runtime.engines import free_port

    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2,
                       decode_responses=True)


def _check_get(fn: Any) -> str:
    if not callable(fn):
        raise Wrong(_("Expected get_product to be a function (def ...), but got {type}.",
                      type=type(fn).__name__))
    rc, db = _setup()
    pid = db.bestsellers(3)[2]
    rc.delete(page_key(pid))
    expected = db.product_page(pid)
    db.reset_counts()
    first = call_learner(fn, rc, db, pid, what=_("your function get_product(rc, db, product_id)"))
    if isinstance(first, (str, bytes)):
        raise Wrong(_("get_product returned JSON text; return the page as a dict (json.loads what you read)."))
    if first != expected:
        raise Wrong(_("get_product({pid}) did not return the product page the database has (got {type}). Return "
                      "db.product_page(product_id) on a miss.", pid=pid, type=type(first).__name__))
    raw = rc.get(page_key(pid))
    if raw is None:
        raise Wrong(_("After a miss, nothing was stored under {page_key!r}: cache-aside stores the page it loaded "
                      "(use capstone.page_key(product_id) as the key).", page_key=page_key(pid)))
    ttl = rc.ttl(page_key(pid))
    if ttl < 0:
        raise Wrong(_("{page_key!r} has no expiry: a lost invalidation would serve a stale price forever. Set the "
                      "design's TTL with jitter (ex=...).", page_key=page_key(pid)))
    if not 50 <= ttl <= WORKLOAD["max_staleness_s"]:
        raise Wrong(_("{page_key!r} expires in {ttl} s; the design keeps pages between about 60 and "
                      "{max_staleness_s} s.",
                      page_key=page_key(pid), ttl=ttl, max_staleness_s=WORKLOAD['max_staleness_s']))
    if json.loads(raw) != expected:
        raise Wrong(_("What you stored in the cache is not the page as JSON: store json.dumps(page)."))
    before = db.queries
    second = call_learner(fn, rc, db, pid, what=_("your function get_product(rc, db, product_id)"))
    if db.queries > before:
        raise Wrong(_("The second read of the same product queried the database again: read the cache first."))
    if second != expected:
        raise Wrong(_("On a hit, get_product returned something else than the page: json.loads the cached text."))
    if rc.get(page_key(pid)) is None:
        raise Wrong(_("After a hit, {page_key!r} is gone from the cache: reading a page must leave it there for "
                      "the next reader (GET, not GETDEL), or every other read is a miss.",
                      page_key=page_key(pid)))
    dead = _dead_cache()
    try:
        degraded = fn(dead, db, pid)
    except Exception as exc:
        raise Wrong(_("With the cache unreachable, get_product raised {type}: the request failed although the "
                      "database was up. Catch redis.exceptions.RedisError around the cache calls and read from the "
                      "database instead (the cache is an optimisation).", type=type(exc).__name__)) from None
    if degraded != expected:
        raise Wrong(_("With the cache unreachable, get_product did not return the page from the database."))
    rc.delete(page_key(pid))
    return _("Hits skip the database, misses fill the cache with a bounded TTL, and a cache outage "
             "degrades, not fails.")


def _bad_get(ex: int | None, fallback: bool = True, read: str = "get") -> Callable[[Any, Any, int], Any]:
    """A flawed get_product: cache-aside with TTL `ex` (None: no expiry), with or without the database fallback,
    reading the cache with `read` ("get", or "getdel": a read that consumes the page)."""
    import redis

    def get_product(rc: Any, db: Any, pid: int) -> Any:
        try:
            cached = getattr(rc, read)(page_key(pid))
            if cached is not None:
                return json.loads(cached)
            page = db.product_page(pid)
            rc.set(page_key(pid), json.dumps(page), ex=ex)
            return page
        except redis.exceptions.RedisError:
            if not fallback:
                raise
            return db.product_page(pid)

    return get_product


q3 = Exercise(
    lab=LAB, qid="q3", title="The product API's read path: cache-aside that degrades",
    checker=_check_get,
    hint_text="Like lab 03's cache-aside, with the design's TTL (ex=capstone.ttl_for(design)), plus: wrap the cache "
              "calls in try/except redis.exceptions.RedisError and read the database when the cache fails.",
    solution_text="import redis\n\ndef get_product(rc, db, product_id):\n    key = capstone.page_key(product_id)\n"
                  "    try:\n        cached = rc.get(key)\n        if cached is not None:\n"
                  "            return json.loads(cached)\n    except redis.exceptions.RedisError:\n"
                  "        return db.product_page(product_id)\n    page = db.product_page(product_id)\n"
                  "    if page is not None:\n        try:\n"
                  "            rc.set(key, json.dumps(page), ex=capstone.ttl_for(design))\n"
                  "        except redis.exceptions.RedisError:\n            pass\n    return page",
    reference=capstone.get_product,
    setup=capstone.running_service,
    wrong=[
        (_bad_get(240, fallback=False), "cache unreachable"),
        (_bad_get(None), "no expiry"),
        (_bad_get(3600), "expires in"),
        (_bad_get(240, read="getdel"), "not getdel"),
        (lambda rc, db, pid: db.product_page(pid), "nothing was stored"),
        (lambda rc, db, pid: json.dumps(db.product_page(pid)), "json text"),
    ],
)


def _check_update(fn: Any) -> str:
    if not callable(fn):
        raise Wrong(_("Expected update_price to be a function (def ...), but got {type}.",
                      type=type(fn).__name__))
    rc, db = _setup()
    pid = db.bestsellers(5)[4]
    capstone.get_product(rc, db, pid)  # the page is cached
    old = db.price(pid)
    new = old + 100
    call_learner(fn, rc, db, pid, new, what=_("your function update_price(rc, db, product_id, price_cents)"))
    if db.price(pid) != new:
        raise Wrong(_("After update_price(..., {new}) the database still has price_cents={price}. The database is "
                      "the source of truth: update it first (db.update_price).", new=new, price=db.price(pid)))
    raw = rc.get(page_key(pid))
    if raw is not None and json.loads(raw).get("price_cents") != new:
        raise Wrong(_("The database has the new price, but {page_key!r} still holds the old page: readers see a "
                      "stale price until it expires. Delete the cached page after the update.",
                      page_key=page_key(pid)))
    try:
        fn(_dead_cache(), db, pid, new + 1)
    except Exception as exc:
        raise Wrong(_("With the cache unreachable, update_price raised {type} although the database write had "
                      "succeeded: the caller would retry a write that was done. Catch RedisError around the "
                      "invalidation (the TTL bounds how long the stale page can live).",
                      type=type(exc).__name__)) from None
    if db.price(pid) != new + 1:
        raise Wrong(_("With the cache unreachable, update_price did not update the database."))
    rc.delete(page_key(pid))
    return _("Database first, then invalidate; a lost invalidation is bounded by the TTL you chose in q1.")


def _upd_cache_only(rc: Any, db: Any, pid: int, cents: int) -> None:
    rc.delete(page_key(pid))


def _upd_no_invalidate(rc: Any, db: Any, pid: int, cents: int) -> None:
    db.update_price(pid, cents)


def _upd_no_fallback(rc: Any, db: Any, pid: int, cents: int) -> None:
    db.update_price(pid, cents)
    rc.delete(page_key(pid))


q4 = Exercise(
    lab=LAB, qid="q4", title="The write path: update the price, invalidate the page",
    checker=_check_update,
    hint_text="db.update_price(product_id, price_cents) first, then rc.delete(capstone.page_key(product_id)) "
              "inside try/except redis.exceptions.RedisError.",
    solution_text="def update_price(rc, db, product_id, price_cents):\n    db.update_price(product_id, price_cents)\n"
                  "    try:\n        rc.delete(capstone.page_key(product_id))\n"
                  "    except redis.exceptions.RedisError:\n        pass  # the TTL bounds the staleness",
    reference=capstone.update_price,
    setup=capstone.running_service,
    wrong=[
        (_upd_cache_only, "source of truth"),
        (_upd_no_invalidate, "stale price"),
        (_upd_no_fallback, "cache unreachable"),
    ],
)


def _check_warm(fn: Any) -> str:
    if not callable(fn):
        raise Wrong(_("Expected warm_cache to be a function (def ...), but got {type}.",
                      type=type(fn).__name__))
    rc, db = _setup()
    n = 40
    hot = db.bestsellers(n)
    for pid in hot:
        rc.delete(page_key(pid))
    db.reset_counts()
    call_learner(fn, rc, db, n, what=_("your function warm_cache(rc, db, n)"))
    queries = db.queries
    missing = [pid for pid in hot if rc.get(page_key(pid)) is None]
    if len(missing) == n:
        raise Wrong(_("After warm_cache(rc, db, {n}), none of the {n} bestsellers is cached. Cache the pages of "
                      "db.bestsellers(n) under capstone.page_key(product_id).", n=n))
    if missing:
        raise Wrong(_("{missing} of the {n} bestsellers are not cached (e.g. product {product}): warm exactly the "
                      "n most popular products, db.bestsellers(n).",
                      missing=len(missing), n=n, product=missing[0]))
    ttls = [rc.ttl(page_key(pid)) for pid in hot]
    if any(t == -1 for t in ttls):
        raise Wrong(_("The warmed pages have no expiry: set the design's TTL on each (pipe.set(..., ex=...))."))
    short = [t for t in ttls if not 50 <= t <= WORKLOAD["max_staleness_s"]]
    if short:
        raise Wrong(_("A warmed page expires in {ttl} s; the design keeps pages between about 60 and "
                      "{max_staleness_s} s (ex= counts seconds, px= milliseconds).",
                      ttl=short[0], max_staleness_s=WORKLOAD['max_staleness_s']))
    if queries > 2 * n + 1:
        raise Wrong(_("Warming {n} pages took {queries} database queries: load each page once.",
                      n=n, queries=queries))
    for pid in hot:
        rc.delete(page_key(pid))
    return (_("{n} pages warmed with {queries} queries: after a deploy, a failover or a scale-out the hot "
              "set is served from the cache at once.", n=n, queries=queries))


def _warm_mset(rc: Any, db: Any, n: int) -> None:
    pages = {page_key(pid): json.dumps(db.product_page(pid)) for pid in db.bestsellers(n)}
    rc.mset(pages)  # one command, many slots


def _warm_wrong_set(rc: Any, db: Any, n: int) -> None:
    for pid in db.product_ids(limit=n):
        rc.set(page_key(pid), json.dumps(db.product_page(pid)), ex=240)


def _warm_no_ttl(rc: Any, db: Any, n: int) -> None:
    for pid in db.bestsellers(n):
        rc.set(page_key(pid), json.dumps(db.product_page(pid)))


def _warm_a_day(rc: Any, db: Any, n: int) -> None:
    pipe = rc.pipeline(transaction=False)
    for pid in db.bestsellers(n):
        pipe.set(page_key(pid), json.dumps(db.product_page(pid)), ex=86_400)
    pipe.execute()


q5 = Exercise(
    lab=LAB, qid="q5", title="Warm the cache with the bestsellers",
    checker=_check_warm,
    hint_text="db.bestsellers(n) lists the hottest product ids. A pipeline (rc.pipeline(transaction=False)) sends "
              "the SETs in few round trips; in a cluster, a multi-key MSET fails when keys live in different slots.",
    solution_text="def warm_cache(rc, db, n):\n    pipe = rc.pipeline(transaction=False)\n"
                  "    for pid in db.bestsellers(n):\n        page = db.product_page(pid)\n"
                  "        pipe.set(capstone.page_key(pid), json.dumps(page), ex=capstone.ttl_for(design))\n"
                  "    pipe.execute()",
    reference=capstone.warm_cache,
    setup=capstone.running_service,
    wrong=[
        (_warm_mset, "raised"),
        (_warm_wrong_set, "not cached"),
        (_warm_no_ttl, "no expiry"),
        (_warm_a_day, "expires in"),
        (lambda rc, db, n: db.bestsellers(n), "none of the"),
    ],
)
