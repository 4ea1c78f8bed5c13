"""ElastiCache's parameter catalogue, node types and engine versions (helpers.aws.catalogue + data/)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import time
from fractions import Fraction

import pytest
import redis

from helpers.aws import catalogue as cat

FAMILIES = ("memcached1.6", "redis7", "valkey7", "valkey8", "valkey9")
API_KEYS = set(cat.API_FIELDS)


def invalid(family: str, name: str, value: str) -> cat.CatalogueError:
    with pytest.raises(cat.CatalogueError) as err:
        cat.validate(family, name, value)
    return err.value


def test_every_family_loads_with_the_api_shape():
    assert cat.families() == FAMILIES
    for family in FAMILIES:
        params = cat.parameters(family)
        assert len(params) > 25, family
        names = [p["ParameterName"] for p in params]
        assert len(names) == len(set(names)), family
        for p in params:
            assert set(p) <= API_KEYS and {"ParameterName", "Description", "DataType", "IsModifiable"} <= set(p)
            assert p["Source"] == "system"
            assert isinstance(p["IsModifiable"], bool)
            assert p["ChangeType"] in ("immediate", "requires-reboot")
            assert p["DataType"] in ("string", "integer", "float", "boolean")


def test_every_allowed_values_entry_parses_and_every_modifiable_default_is_allowed():
    for family in FAMILIES:
        for p in cat._family(family).values():
            items = cat.parse_allowed(p.allowed, p.data_type)
            assert bool(items) == bool(p.allowed), (family, p.name)
            if p.modifiable and p.listed == "yes" and p.value:
                assert cat.allowed(p, p.value), (family, p.name, p.value)


def test_allowed_values_syntax():
    assert cat.parse_allowed("0,20-", "integer") == [(0, 0), (20, None)]
    assert cat.parse_allowed("-", "integer") == [(None, None)]
    assert cat.parse_allowed("-5,-4,1-", "integer") == [(-5, -5), (-4, -4), (1, None)]
    assert cat.parse_allowed("1.01-100.00", "float") == [(Fraction("1.01"), Fraction(100))]
    assert cat.parse_allowed("yes,no") == ["yes", "no"]
    with pytest.raises(ValueError):
        cat.parse_allowed("1-x", "integer")


def test_timeout_follows_aws_0_or_20_and_above():
    for bad in ("-3", "5", "19", "1.5", ""):
        err = invalid("redis7", "timeout", bad)
        assert err.code == "InvalidParameterValue"
        assert "timeout" in err.message and "0,20-" in err.message and "0, or 20 and above" in err.message
    for good in ("0", "20", "30", "86400"):
        cat.validate("redis7", "timeout", good)


def test_a_non_number_and_unknown_event_classes_are_invalid_values():
    err = invalid("redis7", "maxmemory-samples", "abc")
    assert (err.code, err.message) == ("InvalidParameterValue",
                                       "Value abc is not valid for parameter maxmemory-samples: "
                                       "an integer in 1- (1 and above).")
    err = invalid("valkey7", "notify-keyspace-events", "QQQ")
    assert err.code == "InvalidParameterValue" and "notify-keyspace-events" in err.message
    for good in ("", "Ex", "KEA", "Kx", "E$lshzxeg"):
        cat.validate("redis7", "notify-keyspace-events", good)


def test_valkey8_caps_maxmemory_samples_at_64():
    cat.validate("redis7", "maxmemory-samples", "100")
    cat.validate("valkey8", "maxmemory-samples", "64")
    assert "1-64" in invalid("valkey8", "maxmemory-samples", "65").message


def test_activedefrag_is_modifiable_in_every_redis_and_valkey_family():
    for family in FAMILIES[1:]:
        cat.validate(family, "activedefrag", "yes")
        cat.validate(family, "activedefrag", "no")
        assert invalid(family, "activedefrag", "on").message.endswith("one of yes,no.")


def test_unknown_and_not_modifiable_parameters():
    err = invalid("redis7", "no-such-parameter", "1")
    assert (err.code, err.message) == ("InvalidParameterValue", "Parameter no-such-parameter doesn't exist")
    assert invalid("redis7", "hash-max-ziplist-entries", "1").message.endswith("doesn't exist")  # gone in 7
    assert invalid("valkey8", "lazyfree-lazy-expire", "yes").message.endswith("doesn't exist")  # gone in Valkey 8
    for name in ("maxmemory", "databases", "activerehashing"):
        err = invalid("redis7", name, "yes")
        assert (err.code, err.message) == ("InvalidParameterValue", f"Parameter {name} is not modifiable.")
    # A custom group for cluster mode enabled: AWS's own example of ModifyCacheParameterGroup changes it
    # (docs.aws.amazon.com/AmazonElastiCache/latest/dg/ParameterGroups.Modifying.html).
    cat.validate("redis7", "cluster-enabled", "yes")
    assert invalid("redis7", "cluster-enabled", "maybe").code == "InvalidParameterValue"


def test_elasticache_only_parameters_exist_and_are_not_engine_settings():
    for family in FAMILIES[1:]:
        defaults = cat.defaults(family)
        assert defaults["reserved-memory-percent"] == "25"
        assert defaults["cluster-enabled"] == "no"
        assert cat.defaults(family, cluster_mode=True)["cluster-enabled"] == "yes"
        assert "reserved-memory" not in defaults  # a group lists one of the two, the percent for new accounts
        cat.validate(family, "reserved-memory", "1073741824")  # ...but switching to bytes is allowed
        cat.validate(family, "reserved-memory-percent", "50")
        assert invalid(family, "reserved-memory-percent", "101").code == "InvalidParameterValue"
    for name in ("reserved-memory-percent", "reserved-memory", "close-on-replica-write", "cluster-enabled"):
        assert cat.engine_config_name(name) is None and name in cat.ELASTICACHE_ONLY
    assert cat.engine_config_name("maxmemory-policy") == "maxmemory-policy"
    assert cat.engine_config_name("client-output-buffer-limit-normal-hard-limit") == "client-output-buffer-limit"
    assert cat.engine_config_name("max_item_size") == "-I"
    assert cat.engine_config_name("memcached_connections_overhead") is None


def test_change_types():
    assert cat.change_type("redis7", "maxmemory-policy") == "immediate"
    assert cat.change_type("redis7", "cluster-enabled") == "requires-reboot"
    assert cat.change_type("memcached1.6", "max_item_size") == "requires-reboot"
    with pytest.raises(cat.CatalogueError):
        cat.change_type("redis7", "nope")


def test_engine_settings_are_config_set_arguments():
    settings = cat.engine_settings("redis7", {
        "maxmemory-policy": "allkeys-lru", "reserved-memory-percent": "30", "databases": "16",
        "client-output-buffer-limit-pubsub-hard-limit": "0", "cluster-preferred-endpoint-type": "tls-dynamic"})
    assert settings == {"maxmemory-policy": "allkeys-lru", "cluster-preferred-endpoint-type": "ip",
                        "client-output-buffer-limit": "pubsub 0 8388608 60"}


def test_memcached_family():
    defaults = cat.defaults("memcached1.6")
    assert defaults["max_item_size"] == "1048576" and defaults["chunk_size_growth_factor"] == "1.25"
    cat.validate("memcached1.6", "chunk_size_growth_factor", "1.5")
    cat.validate("memcached1.6", "max_item_size", str(8 * 2**20))
    assert invalid("memcached1.6", "chunk_size_growth_factor", "1.0").code == "InvalidParameterValue"
    assert invalid("memcached1.6", "binding_protocol", "binary").message.endswith("one of auto,ascii.")
    assert invalid("memcached1.6", "max_simultaneous_connections", "10").message.endswith("not modifiable.")
    assert invalid("memcached1.6", "timeout", "30").message == "Parameter timeout doesn't exist"


def test_node_types_come_from_the_csv():
    with open(cat.data_dir() / "elasticache_node_types.csv", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert cat.node_types() == [r["node_type"] for r in rows]
    assert cat.is_valid_node_type("cache.r7g.large") and not cat.is_valid_node_type("cache.x1.huge")
    assert cat.node_type_memory("cache.r7g.large") == round(Fraction("13.07") * 2**30)
    with pytest.raises(cat.CatalogueError) as err:
        cat.node_type_memory("cache.x1.huge")
    assert err.value.code == "InvalidParameterValue"
    for node_type in cat.node_types():  # AWS's maxmemory is close to the listed memory for every type
        assert 0.9 < cat.node_type_maxmemory(node_type) / cat.node_type_memory(node_type) < 1.1, node_type


def test_maxmemory_for_a_r7g_large_with_25_percent_reserved():
    assert cat.node_type_maxmemory("cache.r7g.large") == 14037181030  # AWS's node-type specific maxmemory
    assert cat.maxmemory_for("cache.r7g.large", 25) == 10527885773  # 14037181030 x 0.75, rounded
    assert cat.maxmemory_for("cache.r7g.large", 0) == 14037181030
    assert cat.maxmemory_for("cache.r7g.large", reserved_memory=1037181030) == 13000000000
    assert cat.maxmemory_for("cache.t4g.micro", 50) == 536870912 // 2
    with pytest.raises(cat.CatalogueError):
        cat.maxmemory_for("cache.r7g.large", 120)
    assert cat.memcached_item_memory_mb("cache.m5.large") == 6537 - 100  # AWS's own example


def test_engine_versions():
    assert [v["EngineVersion"] for v in cat.engine_versions("redis")] == ["7.0", "7.1"]
    assert {v["EngineVersion"] for v in cat.engine_versions("valkey")} >= {"7.2", "8.0", "8.1", "9.0"}
    assert cat.engine_versions("memcached")[-1]["EngineVersion"].startswith("1.6.")
    for v in cat.engine_versions():
        assert set(v) == {"Engine", "EngineVersion", "CacheParameterGroupFamily", "CacheEngineDescription",
                          "CacheEngineVersionDescription"}
        assert v["CacheParameterGroupFamily"] in FAMILIES
    assert cat.family_for("valkey", "8.1") == "valkey8" and cat.family_for("redis", "7.0") == "redis7"
    assert cat.family_for("memcached") == "memcached1.6"
    with pytest.raises(cat.CatalogueError) as err:
        cat.engine_version("redis", "4.0.13")
    assert (err.value.code, err.value.message) == ("InvalidParameterCombination",
                                                   "Cannot find version 4.0.13 for redis")


def test_redis7_engine_settings_are_accepted_by_a_real_redis_server(tmp_path):
    """Every CONFIG name the catalogue maps to exists, and the family's defaults go through CONFIG SET."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = redis.Redis(unix_socket_path=str(sock), decode_responses=True)
        names = {p.engine_config for p in cat._family("redis7").values() if p.engine_config}
        assert [n for n in sorted(names) if not client.config_get(n)] == []
        settings = cat.engine_settings("redis7", cat.defaults("redis7"))
        assert "client-output-buffer-limit" in settings and "reserved-memory-percent" not in settings
        for name, value in settings.items():
            client.config_set(name, value)
        assert client.config_get("timeout") == {"timeout": "0"}
    finally:
        proc.terminate()
        proc.wait(10)
