"""Hash slots and client-side hashing: the pure functions, and CRC16 checked against a real cluster."""

from __future__ import annotations

import random

from pymemcache.client.rendezvous import RendezvousHash

from helpers.topics.sharding import (
    HashRing,
    ModuloHash,
    crc16,
    hash_tag,
    key_slot,
    moved_fraction,
    node_names,
)


def test_crc16_matches_the_spec_vector():
    # The Redis Cluster specification: CRC16 of "123456789" is 0x31C3.
    assert crc16(b"123456789") == 0x31C3


def test_key_slot_known_values_and_hash_tags():
    assert key_slot("foo") == 12182
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == key_slot("user1000")
    assert hash_tag("foo{}{bar}") == b"foo{}{bar}"  # an empty first tag means: hash the whole key
    assert hash_tag("foo{{bar}}zap") == b"{bar"
    assert hash_tag("foo{bar}{zap}") == b"bar"
    assert hash_tag(b"no-tag") == b"no-tag"


def test_modulo_moves_most_keys_consistent_hashing_few():
    keys = [f"key:{i}" for i in range(5000)]
    modulo = moved_fraction(keys, node_names(3), node_names(4), ModuloHash)
    ring = moved_fraction(keys, node_names(3), node_names(4), HashRing)
    hrw = moved_fraction(keys, node_names(3), node_names(4), RendezvousHash)
    assert modulo > 0.6
    assert 0.1 < ring < 0.4 and 0.1 < hrw < 0.4


def test_hashers_spread_keys_and_remove_nodes():
    ring = HashRing(node_names(4))
    counts: dict[str, int] = {}
    for i in range(8000):
        n = ring.get_node(f"k{i}".encode())
        counts[n] = counts.get(n, 0) + 1
    assert len(counts) == 4 and min(counts.values()) > 1000
    ring.remove_node(node_names(4)[0])
    assert node_names(4)[0] not in {ring.get_node(f"k{i}") for i in range(500)}
    assert ModuloHash().get_node("x") is None and HashRing().get_node("x") is None


def test_key_slot_agrees_with_a_real_cluster():
    from helpers import start

    svc = start("cluster", name="t-slots", shards=1, replicas=0)
    r = svc.client()
    rnd = random.Random(7)
    keys = [f"k{rnd.random()}" for _ in range(200)] + ["{tag}a", "a{tag}", "{}x", "über"]
    for k in keys:
        assert key_slot(k) == r.cluster("keyslot", k), k


def test_the_teaching_key_slot_is_the_runtimes():
    """Lab 10 reads helpers.topics.sharding.key_slot; the serverless endpoints route with redis-py's."""
    from helpers.runtime.serverless.resp import key_slot as runtime_key_slot

    rnd = random.Random(10)
    keys = [f"k{rnd.random()}" for _ in range(2000)] + ["{tag}a", "a{tag}", "{}x", "a{}{b}", "{a", "a}", "über", ""]
    for k in keys:
        assert key_slot(k) == runtime_key_slot(k.encode()), k


def test_rehash_explorer_builds_and_updates_headless():
    from helpers.topics.sharding import rehash_explorer

    box = rehash_explorer(keys=300)
    moved = box.update(5)
    assert moved["modulo"] > 0.5 and moved["hash ring"] < 0.35
    assert "modulo moves" in box.children[1].value
