"""Lab 00 (welcome): exercises."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_choice, expect_type
from helpers.runtime.i18n import translator
from helpers.runtime.services import start

_ = translator(__name__)

LAB = "00"


def _check_port(answer: Any) -> str:
    expect_type(answer, int, _("the port"))
    port = start("redis").port
    if answer == 6379:
        raise Wrong(_("6379 is Redis's default port, but the lab picks a free port for each learner so "
                      "that several learners (or tests) never collide. Look at the output of `lab_setup()`."))
    if answer != port:
        raise Wrong(_("{answer} is not the port your Redis listens on. `helpers.get('redis').port` tells.",
                      answer=answer))
    return _("Each learner's services get their own free loopback ports, recorded in the state directory.")


q1 = Exercise(
    lab=LAB, qid="q1", title="Your Redis port",
    checker=_check_port,
    hint_text="The cell that started the services printed each service's host:port.",
    solution_text="answer = helpers.get('redis').port",
    make_reference=lambda: start("redis").port,
    wrong=[(6379, "default port"), ("6379", "whole number"), (1, "not the port")],
)


def _check_greeting(answer: Any) -> str:
    r = start("redis").client()
    r.delete("lab:greeting")
    call_learner(answer, r, what=_("your function greet(r)"))
    value = r.get("lab:greeting")
    if value is None:
        raise Wrong(_("After calling greet(r), the key 'lab:greeting' does not exist. Did you use r.set(...) "
                      "with exactly that key name?"))
    if value != "hello":
        raise Wrong(_("'lab:greeting' holds {value!r}; it should hold 'hello'.", value=value))
    ttl = r.ttl("lab:greeting")
    if ttl == -1:
        raise Wrong(_("'lab:greeting' has no expiry: it would stay in the cache forever. Pass ex=... to r.set "
                      "(a TTL between 60 and 3600 seconds)."))
    if not 60 <= ttl <= 3600:
        raise Wrong(_("'lab:greeting' expires in {ttl} s; choose a TTL between 60 and 3600 seconds.", ttl=ttl))
    return _("The key will expire by itself in {ttl} s: that is how a cache stays fresh.", ttl=ttl)


def _greet_reference(r: Any) -> None:
    r.set("lab:greeting", "hello", ex=300)


q2 = Exercise(
    lab=LAB, qid="q2", title="A first cached value with a TTL",
    checker=_check_greeting,
    hint_text="r.set(key, value, ex=seconds) stores a value that expires after `seconds`.",
    solution_text="def greet(r):\n    r.set('lab:greeting', 'hello', ex=300)",
    reference=_greet_reference,
    wrong=[
        (lambda r: r.set("lab:greeting", "hello"), "no expiry"),
        (lambda r: r.set("lab:greeting", "hi", ex=300), "should hold 'hello'"),
        (lambda r: r.set("greeting", "hello", ex=300), "does not exist"),
        (lambda r: r.sett("lab:greeting", "hello"), "raised AttributeError"),
        ("hello", "to be a function"),
    ],
)


def _check_persistence(answer: Any) -> str:
    choice = expect_choice(answer, ["redis", "memcached"], _("the engine"))
    if choice == "memcached":
        raise Wrong(_("Memcached keeps everything in memory only: a restart (or a node replacement) empties it. "
                      "The other engine can snapshot to disk (RDB) and log writes (AOF)."))
    return _("The Redis/Valkey engine can persist (RDB snapshots, AOF) and ElastiCache backs it up (AOF itself is "
             "not offered on ElastiCache); the Memcached engine cannot (on AWS only ElastiCache Serverless for "
             "Memcached takes snapshots).")


q3 = Exercise(
    lab=LAB, qid="q3", title="Which engine can persist its data?",
    checker=_check_persistence,
    hint_text="Section 5 of this lab: 'Memcached ... is simpler than Redis: no data structures, no persistence'.",
    solution_text="answer = 'redis'",
    reference="redis",
    wrong=[("memcached", "in memory only"), ("mongodb", "not one of the choices"), (1, "one of")],
)


class _ThreeClusters:
    """A stand-in client that reports three clusters: a fresh lab has none, and `return 0` must not pass."""

    def describe_cache_clusters(self, **kwargs: Any) -> dict[str, Any]:
        return {"CacheClusters": [{"CacheClusterId": f"demo-{i}", "Engine": "redis"} for i in (1, 2, 3)]}


def _check_clusters(answer: Any) -> str:
    from helpers.aws.endpoint import client

    ec = client("elasticache")
    for api, where in ((ec, _("the local ElastiCache API")), (_ThreeClusters(), _("a client whose API reports"))):
        result = call_learner(answer, api, what=_("your function count_clusters(client)"))
        expected = len(api.describe_cache_clusters()["CacheClusters"])
        if isinstance(result, dict):
            raise Wrong(_("Your function returned the whole API response (a dict). Return the number of entries "
                          "in its 'CacheClusters' list."))
        expect_type(result, int, _("what count_clusters returns"))
        if result != expected:
            raise Wrong(_("Your function returned {result}, but {where} lists {expected} cache cluster(s). "
                          "Count the entries of client.describe_cache_clusters()['CacheClusters'] (the checker "
                          "also calls it with a client that has three clusters).",
                          result=result, where=where, expected=expected))
    return _("That call went to the local endpoint: no AWS account, no cost.")


q4 = Exercise(
    lab=LAB, qid="q4", title="Your first ElastiCache API call",
    checker=_check_clusters,
    hint_text="client.describe_cache_clusters() returns a dict; its 'CacheClusters' key holds a list.",
    solution_text="def count_clusters(client):\n    return len(client.describe_cache_clusters()['CacheClusters'])",
    reference=lambda c: len(c.describe_cache_clusters()["CacheClusters"]),
    wrong=[
        (lambda c: c.describe_cache_clusters(), "whole API response"),
        (lambda c: str(len(c.describe_cache_clusters()["CacheClusters"])), "whole number"),
        (lambda c: len(c.describe_cache_clusters()["CacheClusters"]) + 1, "lists"),
        (lambda c: c.describe_clusters(), "raised AttributeError"),
        (lambda c: 0, "three clusters"),
    ],
)
