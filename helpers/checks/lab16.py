"""Lab 16 (Valkey): exercises checked on the lab's real Valkey and Redis OSS nodes and its price table."""

from __future__ import annotations

from typing import Any

from helpers.exercises.core import Exercise, Wrong, call_learner, expect_keys, expect_number, shown, type_name
from helpers.runtime.i18n import N_, translator
from helpers.topics import practices
from helpers.topics import valkey as vk

_ = translator(__name__)
LAB = "16"


class _Disguised:
    """A real engine's client whose INFO claims another server and version: it stands for a server this
    machine cannot run (a Valkey 8.1, a Redis OSS 7.2 or a source-available Redis 7.4) while every other command reaches the
    real engine, so feature probes (COMMAND INFO, trying the command) answer truthfully."""

    def __init__(self, client: Any, info: dict[str, Any], label: str):
        self._client, self._info, self.label = client, info, label

    def info(self, section: Any = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(self._info)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if args and str(args[0]).upper().startswith("INFO"):
            return dict(self._info)
        return self._client.execute_command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __repr__(self) -> str:
        return f"<client of {self.label}>"


REDIS_72 = {"redis_version": "7.2.4", "redis_mode": "standalone", "os": "Linux", "arch_bits": 64}
REDIS_74 = {"redis_version": "7.4.2", "redis_mode": "standalone", "os": "Linux", "arch_bits": 64}
VALKEY_81 = {"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.1.1",
             "valkey_release_stage": "ga", "server_mode": "standalone", "os": "Linux"}


def _cases() -> list[tuple[str, Any, str]]:
    """(label, client, engine) for every installed engine, plus servers of other versions where the
    engine they stand on is installed."""
    clients = vk.clients(vk.start_pair())
    cases = []
    for name, r in clients.items():
        cases.append((_("{engine} {version} (this lab's node)", engine=vk.TITLES[name],
                        version=vk.identity(r)[name + '_version']), r, name))
    if "redis" in clients:
        cases.append((_("a Redis OSS 7.2.4 server"), _Disguised(clients["redis"], REDIS_72, "Redis OSS 7.2.4"), "redis"))
    if "valkey" in clients:
        cases.append((_("a Valkey 8.1.1 server"), _Disguised(clients["valkey"], VALKEY_81, "Valkey 8.1.1"), "valkey"))
    return cases


# --- q1: which engine answers? -------------------------------------------------------------------

def _normal_engine(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().lower()
    return {"valkey": "valkey", "redis": "redis", "redis oss": "redis", "redis-oss": "redis"}.get(v)


def _check_engine_name(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function engine_name(r), but got {answer}.", answer=type_name(answer)))
    for label, r, expected in _cases():
        got = call_learner(answer, r, what=_("your function engine_name() on {label}", label=label))
        name = _normal_engine(got)
        if name is None:
            raise Wrong(_("On {label} your function returned {got}; return 'valkey' or 'redis'.",
                          label=label, got=shown(got)))
        if name != expected:
            if expected == "redis" and "7.2" in label:
                raise Wrong(_("On {label} your function says 'valkey'. A Redis OSS 7.2 server also reports redis_version "
                              "7.2.4: Valkey keeps that field at 7.2.4 so that old clients keep working, so it cannot tell "
                              "the engines apart. Look for what only Valkey reports.", label=label))
            raise Wrong(_("On {label} your function returned {got}, but that server is {value}. Which INFO server "
                          "field says so?", label=label, got=shown(got), value=vk.TITLES[expected]))
    return (_("server_name (or valkey_version) is the field to trust: redis_version is frozen at 7.2.4 on "
              "Valkey, and a Redis OSS 7.2 reports the same number."))


def _engine_reference(r: Any) -> str:
    info = r.info("server")
    return "valkey" if info.get("server_name") == "valkey" or "valkey_version" in info else "redis"


q1 = Exercise(
    lab=LAB, qid="q1", title="Which engine is this client talking to?",
    checker=_check_engine_name,
    hint_text="Compare the identity table above: which INFO server fields does only Valkey report? "
              "r.info('server') returns a dict.",
    solution_text="def engine_name(r):\n"
                  "    info = r.info('server')\n"
                  "    if info.get('server_name') == 'valkey' or 'valkey_version' in info:\n"
                  "        return 'valkey'\n"
                  "    return 'redis'",
    reference=_engine_reference,
    also_right=[lambda r: "valkey" if "valkey_version" in r.info("server") else "Redis OSS",
                lambda r: r.info("server").get("server_name", "redis")],
    wrong=[
        (lambda r: "valkey" if r.info("server")["redis_version"] >= "7.2" else "redis", "keeps that field at 7.2.4"),
        (lambda r: "valkey", "that server is redis oss"),
        (lambda r: "redis", "that server is valkey"),
        (lambda r: r.info("server")["redis_version"], "return 'valkey' or 'redis'"),
    ],
)


# --- q2: detect a feature by feature, not by version ----------------------------------------------------

def _feature_cases() -> list[tuple[str, Any, bool]]:
    clients = vk.clients(vk.start_pair())
    cases: list[tuple[str, Any, bool]] = []
    if "valkey" in clients:
        cases.append((_("{engine} {version} (this lab's node)", engine="Valkey",
                        version=vk.identity(clients['valkey'])['valkey_version']),
                      clients["valkey"], vk.has_command(clients["valkey"], "HEXPIRE")))
    if "redis" in clients:
        cases.append((_("{engine} {version} (this lab's node)", engine="Redis OSS",
                        version=vk.identity(clients['redis'])['redis_version']),
                      clients["redis"], vk.has_command(clients["redis"], "HEXPIRE")))
        # Valkey 8.1 has no hash-field expiration (it came with 9.0): a Redis 7.0 underneath answers the same.
        cases.append((_("a Valkey 8.1.1 server (hash-field expiration came with Valkey 9.0)"),
                      _Disguised(clients["redis"], VALKEY_81, "Valkey 8.1.1"), False))
    if "valkey" in clients:
        # Redis 7.4 (source-available) has HEXPIRE: a Valkey 9 underneath answers the same.
        cases.append((_("a Redis 7.4.2 server (Redis added HEXPIRE in 7.4, after its licence change; ElastiCache "
                        "does not offer it)"),
                      _Disguised(clients["valkey"], REDIS_74, "Redis 7.4.2"), True))
    return cases


def _check_supports(answer: Any) -> str:
    if not callable(answer):
        raise Wrong(_("Expected a function supports_hash_field_ttl(r), but got {answer}.",
                      answer=type_name(answer)))
    for label, r, expected in _feature_cases():
        got = call_learner(answer, r, what=_("your function on {label}", label=label))
        if not isinstance(got, bool):
            raise Wrong(_("On {label} your function returned {got}; return True or False.",
                          label=label, got=shown(got)))
        if got != expected:
            why = _("it does not have HEXPIRE") if not expected else _("it does have HEXPIRE")
            raise Wrong(_("On {label} your function says {got}, but {why}. A version number (or the engine's name) "
                          "does not say which commands a server has; ask the server: COMMAND INFO HEXPIRE answers "
                          "nothing for an unknown command.", label=label, got=got, why=why))
    return _("you asked the server itself, so the answer stays right on engines and versions you have "
             "never seen.")


def _supports_reference(r: Any) -> bool:
    reply = r.execute_command("COMMAND INFO", "HEXPIRE")
    if isinstance(reply, dict):
        return bool(reply)
    return bool(reply) and reply[0] is not None


def _tries_it(r: Any) -> bool:
    import redis

    try:
        r.execute_command("HEXPIRE", "lab16:probe:none", 10, "FIELDS", 1, "f")
        return True
    except redis.ResponseError:
        return False


q2 = Exercise(
    lab=LAB, qid="q2", title="Detect hash-field expiration by feature",
    checker=_check_supports,
    hint_text="r.execute_command('COMMAND INFO', 'HEXPIRE') returns a dict with an entry for a known command "
              "(empty, or [None] in RESP2, for an unknown one). Or try the command on a key that does not exist "
              "and catch redis.ResponseError.",
    solution_text="def supports_hash_field_ttl(r):\n"
                  "    reply = r.execute_command('COMMAND INFO', 'HEXPIRE')\n"
                  "    return bool(reply) and (isinstance(reply, dict) or reply[0] is not None)",
    reference=_supports_reference,
    also_right=[_tries_it, lambda r: vk.has_command(r, "hexpire")],
    wrong=[
        (lambda r: "valkey_version" in r.info("server"), "version number"),
        (lambda r: int(r.info("server")["redis_version"].split(".")[0]) >= 7, "does not have hexpire"),
        (lambda r: True, "does not have hexpire"),
        (lambda r: "yes", "return true or false"),
    ],
)


# --- q3: the cost argument --------------------------------------------------------------------------

NODE_TYPE, SHARDS, NODES_PER_SHARD = "cache.r7g.large", 3, 2
_ROWS = vk.load_prices()


def _saving(option: str = "on_demand", nodes: int = SHARDS * NODES_PER_SHARD) -> float:
    return vk.monthly_saving(_ROWS, NODE_TYPE, nodes, option)


def _check_saving(answer: Any) -> str:
    value = expect_number(answer, _("your monthly saving"))
    right = _saving()
    if abs(value - right) <= 0.01 * right:
        percent = right / vk.monthly_nodes(_ROWS, "redis", NODE_TYPE, SHARDS * NODES_PER_SHARD) * 100
        return (_("about ${right:,.2f} a month ({percent:.0f}% of the Redis OSS bill), from the table's "
                  "figures marked unconfirmed: check today's prices before you quote it.",
                  right=right, percent=percent))
    hourly = right / practices.HOURS_PER_MONTH
    if abs(value - hourly) <= 0.01 * hourly:
        raise Wrong(_("That is the saving per hour: the lab estimates a month as 730 hours (8,760 h / 12)."))
    if abs(value - _saving(nodes=SHARDS)) <= 0.01 * _saving(nodes=SHARDS):
        raise Wrong(_("That counts one node per shard. Each shard has a primary and a replica: every node is "
                      "billed."))
    if abs(value - _saving("reserved_1y")) <= 0.01 * _saving("reserved_1y"):
        raise Wrong(_("That uses the 1-year reserved rates; the question asks for on-demand nodes."))
    valkey_bill = vk.monthly_nodes(_ROWS, "valkey", NODE_TYPE, SHARDS * NODES_PER_SHARD)
    if abs(value - valkey_bill) <= 0.01 * valkey_bill:
        raise Wrong(_("That is what the Valkey cluster costs a month, not what it saves over Redis OSS."))
    if 15 <= value <= 25:
        raise Wrong(_("That looks like the saving in percent; the question asks for US dollars a month."))
    raise Wrong(_("{value:,.2f} is not it. Nodes x (Redis OSS hourly - Valkey hourly) x 730 hours, with the "
                  "table's on-demand rows for the node type.", value=value))


q3 = Exercise(
    lab=LAB, qid="q3", title="What Valkey saves on a 3-shard cluster",
    checker=_check_saving,
    hint_text="valkey.monthly_nodes(prices, engine, node_type, nodes) gives nodes x hourly x 730; "
              "3 shards of a primary and one replica are 6 nodes.",
    solution_text="answer = valkey.monthly_saving(prices, 'cache.r7g.large', nodes=6)\n"
                  "# = 6 x (0.219 - 0.1752) x 730 with the table of November 2026",
    make_reference=_saving,
    wrong=[
        (_saving() / practices.HOURS_PER_MONTH, "per hour"),
        (_saving(nodes=SHARDS), "one node per shard"),
        (_saving("reserved_1y"), "reserved"),
        (vk.monthly_nodes(_ROWS, "valkey", NODE_TYPE, SHARDS * NODES_PER_SHARD), "not what it saves"),
        (20, "percent"),
        ("191", "number"),
    ],
)


# --- q4: what ElastiCache's durability guarantees, and what the local stand-in does not ---------------

DURABILITY = {
    "sync_can_lose_an_acknowledged_write_in_a_failover": False,
    "async_can_lose_up_to_the_last_10_seconds": True,
    "available_on_serverless_caches": False,
    "needs_cluster_mode_and_multi_az_with_a_replica_per_shard": True,
    "local_aof_with_fsync_always_survives_losing_the_machine": False,
}

WHY = {
    "sync_can_lose_an_acknowledged_write_in_a_failover":
        N_("with synchronous writes a write is stored in the Multi-AZ transactional log before the reply, so no "
           "acknowledged write is lost (AWS: 'Durability options')"),
    "async_can_lose_up_to_the_last_10_seconds":
        N_("with asynchronous writes the reply comes first; up to the last 10 seconds of acknowledged writes can "
           "be lost in a failure, and the primary refuses writes while its backlog is older than that"),
    "available_on_serverless_caches":
        N_("durability is for node-based clusters only; Serverless, Global Datastores and data tiering do not "
           "support it (AWS: 'Limitations')"),
    "needs_cluster_mode_and_multi_az_with_a_replica_per_shard":
        N_("AWS requires Valkey 9.0+, cluster mode enabled, Multi-AZ with at least one replica per shard and TLS"),
    "local_aof_with_fsync_always_survives_losing_the_machine":
        N_("the local AOF survived kill -9 because the file is still on this machine's disk; lose the disk, the "
           "machine or its Availability Zone and it is gone. AWS's log keeps each write in at least two AZs"),
}


def _check_durability(answer: Any) -> str:
    expect_keys(answer, DURABILITY, _("your dict"))
    wrong = []
    for item, right in DURABILITY.items():
        value = answer[item]
        if not isinstance(value, bool):
            raise Wrong(_("For {item!r}: answer True or False, not {value}.", item=item, value=shown(value)))
        if value != right:
            wrong.append(_("{item}: {why}.", item=item, why=_(WHY[item])))
    if wrong:
        counted = (_("{wrong} of {total} is not right. ", wrong=1, total=len(DURABILITY)) if len(wrong) == 1
                   else _("{wrong} of {total} are not right. ", wrong=len(wrong), total=len(DURABILITY)))
        raise Wrong(counted + " | ".join(wrong))
    return _("sync: nothing acknowledged is lost, at millisecond writes; async: microsecond writes, up to "
             "10 s at risk.")


q4 = Exercise(
    lab=LAB, qid="q4", title="What ElastiCache's durability guarantees",
    checker=_check_durability,
    hint_text="Reread section 5: synchronous vs asynchronous writes, AWS's limitations list, and what kill -9 "
              "did (and did not) test locally.",
    solution_text="answer = " + repr(DURABILITY).replace(", '", ",\n          '"),
    reference=dict(DURABILITY),
    wrong=[
        ({**DURABILITY, "sync_can_lose_an_acknowledged_write_in_a_failover": True}, "before the reply"),
        ({**DURABILITY, "async_can_lose_up_to_the_last_10_seconds": False}, "10 seconds"),
        ({**DURABILITY, "available_on_serverless_caches": True}, "node-based clusters only"),
        ({**DURABILITY, "needs_cluster_mode_and_multi_az_with_a_replica_per_shard": False}, "cluster mode enabled"),
        ({**DURABILITY, "local_aof_with_fsync_always_survives_losing_the_machine": True}, "two azs"),
        ({**DURABILITY, "available_on_serverless_caches": "no"}, "true or false"),
        ({"async_can_lose_up_to_the_last_10_seconds": True}, "missing"),
    ],
)
