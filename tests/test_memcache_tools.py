"""helpers.topics.memcache_tools against real Memcached nodes: placement, slab classes, distribution."""

from __future__ import annotations

import pytest

from helpers.topics import memcache_tools as mt

KEYS = [f"test-mt:key:{i}" for i in range(200)]


@pytest.fixture(scope="module")
def svc():
    service = mt.pool(name="test-mt-pool", nodes=3)
    mt.flush(service)
    return service


def test_where_keys_live_agrees_with_the_client_hashing(svc):
    hc = mt.hash_client(svc)
    assert hc.set_many({k: b"v" for k in KEYS}) == []
    placed = mt.where_keys_live(mt.servers_of(svc), KEYS)
    assert all(placed[k] == mt.routed_node(hc, k) for k in KEYS)
    assert set(placed.values()) == {mt.label(s) for s in mt.servers_of(svc)}
    assert mt.distribution([mt.label(s) for s in mt.servers_of(svc)], KEYS) == \
        {label: list(placed.values()).count(label) for label in set(placed.values())}


def test_flush_empties_every_node(svc):
    hc = mt.hash_client(svc)
    hc.set_many({k: b"v" for k in KEYS[:20]})
    mt.flush(svc)
    assert set(mt.where_keys_live(mt.servers_of(svc), KEYS[:20]).values()) == {None}


def test_slab_class_of_finds_a_chunk_big_enough(svc):
    client = mt.node_client(mt.servers_of(svc)[0])
    small, big = mt.slab_class_of(client, 100, prefix="test-mt:slab"), mt.slab_class_of(client, 50_000,
                                                                                          prefix="test-mt:slab")
    assert small.chunk_size >= 100 and big.chunk_size >= 50_000
    assert big.slab_class > small.slab_class
    rows = {row["class"]: row for row in mt.slab_table(client)}
    assert rows[big.slab_class]["items"] >= 5


def test_moved_keys_is_about_one_over_n():
    keys = [f"k{i}" for i in range(3000)]
    moved = mt.moved_keys(keys, ["a", "b", "c"], ["a", "b", "c", "d"])
    assert 0.15 < len(moved) / len(keys) < 0.35  # rendezvous hashing moves ~1/4 of the keys to the new node
    assert mt.moved_keys(keys, ["a", "b"], ["a", "b"]) == []


def test_distribution_widget_updates_headless():
    widget, update = mt.distribution_widget([f"k{i}" for i in range(500)], max_nodes=5)
    counts, moved = update(4)
    assert sum(counts.values()) == 500 and len(counts) == 4 and 0 < moved < 500
    assert update(1) == ({"node-1": 500}, 0)
