"""Lab 02 (Memcached essentials): exercises, checked against real Memcached nodes."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choices_per_item, expect_type
from helpers.runtime.i18n import N_, translator
from helpers.topics.memcache_tools import (
    hash_client,
    label,
    node_client,
    pool,
    routed_node,
    servers_of,
    where_keys_live,
)

_ = translator(__name__)

LAB = "02"
PREFIX = "lab02:check:"


def _node() -> tuple[str, int]:
    """The first node of the lab's own pool (the checkers write only keys under lab02:check:)."""
    return servers_of(pool())[0]


# --- q1: a safe read-modify-write with gets/cas --------------------------------------------------

class _RivalAfterRead:
    """A real client, except that right after your first read another real client updates the key.

    This makes the race deterministic: it is what happens when two app servers handle a request
    for the same item at the same moment.
    """

    def __init__(self, client: Any, rival: Any, key: str):
        self._client, self._rival, self._key = client, rival, key
        self.calls: list[str] = []
        self.cas_failed = False
        self.reads_after_failed_cas = 0

    def _rival_update(self) -> None:
        raw, token = self._rival.gets(self._key)
        doc = json.loads(raw)
        doc["views"] += 1
        if not self._rival.cas(self._key, json.dumps(doc), token):
            raise RuntimeError(_("the rival's own cas failed"))

    def _read(self, name: str, key: Any, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._client, name)(key, *args, **kwargs)
        if self.cas_failed:
            self.reads_after_failed_cas += 1
        if name in ("gets", "get") and self.calls.count("gets") + self.calls.count("get") == 0:
            self.calls.append(name)
            self._rival_update()
        else:
            self.calls.append(name)
        return result

    def gets(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        return self._read("gets", key, *args, **kwargs)

    def get(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        return self._read("get", key, *args, **kwargs)

    def cas(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("cas")
        ok = self._client.cas(*args, **kwargs)
        if ok is False:
            self.cas_failed = True
        return ok

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _doc(client: Any, key: str) -> dict[str, Any]:
    raw = client.get(key)
    if raw is None:
        raise Wrong(_("After your function ran, {key!r} no longer exists. Write the document back with cas.", key=key))
    try:
        doc = json.loads(raw)
    except ValueError:
        raise Wrong(_("{key!r} no longer holds a JSON document but {raw!r}; write back json.dumps(doc).",
                      key=key, raw=raw[:60])) from None
    if not isinstance(doc, dict) or doc.get("title") != "Intro to caching":
        raise Wrong(_("The document became {doc!r}: the 'title' field is gone. Change 'views' and keep the rest.",
                      doc=doc))
    return doc


def _check_add_view(answer: Any) -> str:
    server = _node()
    key = PREFIX + "article"
    client, rival = node_client(server), node_client(server)
    client.set(key, json.dumps({"title": "Intro to caching", "views": 0}))
    proxy = _RivalAfterRead(client, rival, key)
    call_learner(answer, proxy, key, what=_("your function add_view(client, key)"))
    if not proxy.calls:
        raise Wrong(_("add_view did not read the document: start with raw, token = client.gets(key)."))
    views = _doc(client, key)["views"]
    if "cas" not in proxy.calls:
        if views != 2:
            raise Wrong(_("Another client added a view between your read and your write, and your write erased "
                          "it: views is {views}, it should be 2. Read with client.gets (value + cas token) and write "
                          "with client.cas(key, value, token).", views=views))
    if views == 1 and proxy.cas_failed:
        raise Wrong(_("Your cas returned False (another client had changed the document) and your function gave "
                      "up: that view was lost. Loop: gets again, re-apply +1, cas again, until cas returns True."))
    if views != 2:
        raise Wrong(_("With one rival update and your call, views should be 2 but it is {views}.", views=views))

    # Now for real: 4 threads, each with its own connection, 25 views each.
    client.set(key, json.dumps({"title": "Intro to caching", "views": 0}))
    errors: list[str] = []

    def worker() -> None:
        c = node_client(server)
        try:
            for _view in range(25):
                call_learner(answer, c, key, what=_("your function add_view(client, key)"))
        except Exception as exc:  # reported below, as a sentence
            errors.append(str(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Wrong(errors[0])
    views = _doc(client, key)["views"]
    client.delete(key)
    if views != 100:
        raise Wrong(_("4 clients called add_view 25 times each, but views is {views}, not 100: updates were lost.",
                      views=views))
    return _("gets/cas is optimistic locking: no lock is held, and a conflicting write makes cas fail and retry.")


def _add_view_reference(client: Any, key: str) -> None:
    while True:
        raw, token = client.gets(key)
        doc = json.loads(raw)
        doc["views"] += 1
        if client.cas(key, json.dumps(doc), token):
            return


def _naive(client: Any, key: str) -> None:
    doc = json.loads(client.get(key))
    doc["views"] += 1
    client.set(key, json.dumps(doc))


def _cas_once(client: Any, key: str) -> None:
    raw, token = client.gets(key)
    doc = json.loads(raw)
    doc["views"] += 1
    client.cas(key, json.dumps(doc), token)


q1 = Exercise(
    lab=LAB, qid="q1", title="A safe increment inside a cached document (gets/cas)",
    checker=_check_add_view,
    hint_text="value, token = client.gets(key) reads the value and its cas token; client.cas(key, new_value, token) "
              "writes only if nobody wrote since, and returns False otherwise. Put both in a `while True` loop.",
    solution_text="def add_view(client, key):\n    while True:\n        raw, token = client.gets(key)\n"
                  "        doc = json.loads(raw)\n        doc['views'] += 1\n"
                  "        if client.cas(key, json.dumps(doc), token):\n            return",
    reference=_add_view_reference,
    wrong=[
        (_naive, "erased it"),
        (_cas_once, "gave up"),
        (lambda c, k: c.incr(k, 1), "raised"),
        (lambda c, k: c.set(k, json.dumps({"views": 1})), "did not read"),
        (lambda c, k: (c.get(k), c.set(k, json.dumps({"views": 1}))), "title"),
    ],
)


# --- q3: which keys are lost when a node dies -----------------------------------------------------

def _lost_keys_reference(servers: list[tuple[str, int]], keys: list[str], dead: tuple[str, int]) -> set[str]:
    from pymemcache.client.hash import HashClient

    hc = HashClient(servers)
    return {k for k in keys if routed_node(hc, k) == label(dead)}


def _check_lost_keys(answer: Any) -> str:
    svc = pool()
    servers = servers_of(svc)
    keys = [f"{PREFIX}product:{i}" for i in range(150)]
    hc = hash_client(svc)
    failed = hc.set_many({k: b"1" for k in keys})
    if failed:
        raise RuntimeError(_("could not write {n} keys to the lab's pool", n=len(failed)))
    placed = where_keys_live(servers, keys)
    # Two questions (another dead node, other keys): a hard-coded set of keys cannot answer both.
    for dead, asked in ((servers[1], keys), (servers[0], keys[::2])):
        truth = {k for k in asked if placed[k] == label(dead)}
        result = call_learner(answer, list(servers), list(asked), dead,
                              what=_("your function lost_keys(servers, keys, dead)"))
        if not isinstance(result, (set, list, tuple, frozenset)):
            raise Wrong(_("lost_keys should return a set of keys, but it returned {type}.",
                          type=type(result).__name__))
        got = set(result)
        if got == set(asked):
            raise Wrong(_("You return every key, but only the keys stored on the dead node are lost: each key lives "
                          "on exactly one node, and the other nodes keep theirs."))
        extra, missing = got - truth, truth - got
        if extra or missing:
            raise Wrong(_("With {node} dead and {asked} keys asked about, {extra} key(s) you "
                          "listed live on other nodes (they survive) or were not asked about, and {missing} "
                          "key(s) on the dead node are missing from your answer. Ask the node, or the client's "
                          "hasher (HashClient(servers).hasher.get_node(key)).",
                          node=label(dead), asked=len(asked), extra=len(extra), missing=len(missing)))
    return _("{lost} of {asked} keys ({share:.0%}) lived on {node}: with n "
             "nodes, losing one loses about 1/n of the cache.",
             lost=len(truth), asked=len(asked), share=len(truth) / len(asked), node=label(dead))


q3 = Exercise(
    lab=LAB, qid="q3", title="Which keys are lost when one node dies?",
    checker=_check_lost_keys,
    hint_text="Either ask the doomed node itself: node_client(dead).get_many(keys) returns the keys it holds; "
              "or ask the client's hashing: HashClient(servers).hasher.get_node(key) == f'{host}:{port}'.",
    solution_text="def lost_keys(servers, keys, dead):\n    held = node_client(dead).get_many(keys)\n"
                  "    return {k.decode() if isinstance(k, bytes) else k for k in held}\n"
                  "# or: hc = HashClient(servers); return {k for k in keys if hc.hasher.get_node(k) == '%s:%s' % dead}",
    reference=_lost_keys_reference,
    wrong=[
        (lambda servers, keys, dead: set(keys), "every key"),
        (lambda servers, keys, dead: {k for k in keys if hash(k) % len(servers) == servers.index(dead)},
         "live on other nodes"),
        (lambda servers, keys, dead: len(keys) // len(servers), "set of keys"),
        (lambda servers, keys: set(), "raised TypeError"),
        (lambda servers, keys, dead: _lost_keys_reference(servers, keys, servers[1]), "dead and"),
    ],
)


# --- q4: Redis or Memcached? ----------------------------------------------------------------------

ENGINES = {
    "a": ("memcached", N_("cache rendered HTML fragments; losing them on a restart is fine; you want the simplest "
                          "cache, multithreaded, using every core of a big node"),
          N_("Memcached is multithreaded and does exactly this, with less per-item overhead")),
    "b": ("redis", N_("on a node-based cluster, the cached data must survive a node restart and be restorable "
                      "from a backup"),
          N_("only Redis/Valkey persists to disk (RDB) and has backups on node-based clusters; a Memcached node "
             "restarts empty (only ElastiCache Serverless for Memcached takes snapshots)")),
    "c": ("redis", N_("a leaderboard of players sorted by score"),
          N_("sorted sets are a Redis structure; Memcached stores opaque blobs only")),
    "d": ("redis", N_("automatic failover to a replica in another Availability Zone"),
          N_("Multi-AZ replicas with automatic failover exist for Redis/Valkey; Memcached nodes have no replicas")),
    "e": ("memcached", N_("scale out by adding nodes, each client spreading keys over the nodes itself; "
                          "no replication needed"),
          N_("this is Memcached's model: independent nodes and client-side hashing (auto discovery on "
             "ElastiCache)")),
    "f": ("redis", N_("notify every connected app server when a product changes (publish/subscribe)"),
          N_("pub/sub (and streams) exist only in Redis/Valkey")),
    "g": ("redis", N_("store a 5 MB object under a single key, keeping each engine's default parameters"),
          N_("with its default parameters Memcached refuses items over its item size limit of 1 MB (raising "
             "max_item_size, up to 128 MB, is a parameter change); a Redis string holds up to 512 MB by "
             "default")),
}


def _check_engines(answer: Any) -> str:
    # Valkey is the open-source fork of Redis: same answer
    expect_choices_per_item(
        answer, {rid: right for rid, (right, _, _) in ENGINES.items()}, ["redis", "memcached"],
        aliases=dict.fromkeys(("valkey", "redis oss", "redis/valkey"), "redis"), what=_("the engine"), noun="choices",
        explain=lambda rid, chosen: _("{rid!r} ({requirement}): {why}.", rid=rid,
                                      requirement=_(ENGINES[rid][1]), why=_(ENGINES[rid][2])))
    return _("Memcached for a plain, disposable, multithreaded cache; Redis/Valkey for everything that needs more.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Redis or Memcached for each requirement?",
    checker=_check_engines,
    hint_text="Go through the decision table above: persistence, replicas/failover, data structures, pub/sub "
              "and big items point to Redis; a simple multithreaded disposable cache points to Memcached.",
    solution_text="answer = " + repr({rid: right for rid, (right, _, _) in ENGINES.items()}),
    reference={rid: right for rid, (right, _, _) in ENGINES.items()},
    wrong=[
        ({rid: "memcached" for rid in ENGINES}, "5 of 7"),
        ({**{rid: right for rid, (right, _, _) in ENGINES.items()}, "b": "memcached"}, "persists"),
        ({**{rid: right for rid, (right, _, _) in ENGINES.items()}, "g": "memcached"}, "item size limit"),
        ({**{rid: right for rid, (right, _, _) in ENGINES.items()}, "a": "mongodb"}, "not one of the choices"),
        (["redis"], "dictionary"),
    ],
)


# --- q2: storing more than 1 MB -------------------------------------------------------------------

def _check_split(answer: Any) -> str:
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise Wrong(_("Answer with the pair of functions (put, fetch), e.g. answer = (put, fetch); "
                      "got {type}.", type=type(answer).__name__))
    put, fetch = answer
    client = node_client(_node())
    key = PREFIX + "big"
    data = os.urandom(2_500_000)  # random bytes do not compress: splitting is the only way
    call_learner(put, client, key, data, what=_("your function put(client, key, data)"))
    back = call_learner(fetch, client, key, what=_("your function fetch(client, key)"))
    if back is None:
        raise Wrong(_("fetch returned None right after put: nothing usable was stored. Did the server refuse an "
                      "item over 1 MB? Split the data into pieces under 1,000,000 bytes."))
    expect_type(back, bytes, _("what fetch returns"))
    if len(back) != len(data):
        raise Wrong(_("fetch returned {got:,} bytes; put stored {stored:,}.", got=len(back), stored=len(data)))
    if back != data:
        raise Wrong(_("fetch returned the right number of bytes, but not the same bytes: are the pieces joined "
                      "in the order they were cut?"))
    missing = call_learner(fetch, client, PREFIX + "never-stored", what=_("your function fetch(client, key)"))
    if missing is not None:
        raise Wrong(_("fetch of a key that was never stored returned {type}, not None.",
                      type=type(missing).__name__))
    return _("2.5 MB stored as pieces under the 1 MB item limit. In production also handle a piece that was "
             "evicted (treat the whole value as a miss), or raise the limit with the max_item_size parameter.")


CHUNK = 1_000_000


def _put_reference(client: Any, key: str, data: bytes) -> None:
    pieces = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
    client.set_many({f"{key}:{i}": p for i, p in enumerate(pieces)})
    client.set(key, str(len(pieces)))


def _fetch_reference(client: Any, key: str) -> bytes | None:
    count = client.get(key)
    if count is None:
        return None
    names = [f"{key}:{i}" for i in range(int(count))]
    got = client.get_many(names)
    if len(got) != len(names):
        return None  # a piece was evicted: the value is incomplete, so it is a miss
    return b"".join(got[n] for n in names)


def _put_reverse_fetch(client: Any, key: str) -> bytes | None:
    count = client.get(key)
    if count is None:
        return None
    return b"".join(client.get(f"{key}:{i}") for i in reversed(range(int(count))))


def _put_zlib(client: Any, key: str, data: bytes) -> None:
    import zlib

    client.set(key, zlib.compress(data))


q2 = Exercise(
    lab=LAB, qid="q2", title="Store a value bigger than the 1 MB item limit",
    checker=_check_split,
    hint_text="Cut data into pieces of at most 1,000,000 bytes, store them under key:0, key:1, ... and the number "
              "of pieces under key; fetch reads the count, then every piece (get_many), and joins them in order.",
    solution_text="def put(client, key, data):\n    pieces = [data[i:i + 1_000_000] for i in range(0, len(data), 1_000_000)]\n"
                  "    client.set_many({f'{key}:{i}': p for i, p in enumerate(pieces)})\n"
                  "    client.set(key, str(len(pieces)))\n\n"
                  "def fetch(client, key):\n    count = client.get(key)\n    if count is None:\n        return None\n"
                  "    names = [f'{key}:{i}' for i in range(int(count))]\n    got = client.get_many(names)\n"
                  "    if len(got) != len(names):\n        return None  # a piece was evicted\n"
                  "    return b''.join(got[n] for n in names)\nanswer = (put, fetch)",
    reference=(_put_reference, _fetch_reference),
    wrong=[
        ((lambda c, k, d: c.set(k, d), lambda c, k: c.get(k)), "too large"),
        ((_put_zlib, lambda c, k: c.get(k)), "too large"),
        ((_put_reference, _put_reverse_fetch), "in the order"),
        ((_put_reference, lambda c, k: _fetch_reference(c, k)[:1000]), "bytes; put stored"),
        (_put_reference, "pair of functions"),
    ],
)
