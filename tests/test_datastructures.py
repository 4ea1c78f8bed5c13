"""helpers.topics.datastructures against a real Redis: memory per element, encodings, the counter race."""

from __future__ import annotations

import pytest

from helpers import start
from helpers.runtime.state import LabError
from helpers.topics import datastructures as ds

PREFIX = "test-ds:"


@pytest.fixture()
def r():
    client = start("redis").client()
    ds.delete_prefix(client, PREFIX)
    yield client
    ds.delete_prefix(client, PREFIX)


def test_delete_prefix_deletes_only_the_prefix(r):
    r.mset({f"{PREFIX}{i}": i for i in range(1200)})
    r.set("test-other:keep", 1)
    assert ds.delete_prefix(r, PREFIX) == 1200
    assert r.get("test-other:keep") == "1"
    r.delete("test-other:keep")
    with pytest.raises(LabError):
        ds.delete_prefix(r, "*")


def test_bytes_per_element_measures_each_structure_and_cleans_up(r):
    items = {f"user:{i}": str(i * 7) for i in range(100)}
    per = ds.bytes_per_element(r, PREFIX, items)
    assert set(per) == set(ds.STRUCTURES)
    assert all(v > 0 for v in per.values())
    assert per["hash"] < per["string"]  # a small hash is a listpack: no per-key overhead
    assert not list(r.scan_iter(match=f"{PREFIX}*"))


def test_encoding_curve_switches_just_above_the_threshold(r):
    limit = ds.listpack_threshold(r, "zset")
    assert limit and limit > 0
    points = ds.encoding_curve(r, "zset", PREFIX + "z", [limit, limit + 1])
    assert points[0].encoding == "listpack"
    assert points[1].encoding == "skiplist"
    assert points[1].bytes_per_element > points[0].bytes_per_element
    assert r.exists(PREFIX + "z") == 0


def test_load_structure_rejects_unknown_kinds(r):
    with pytest.raises(LabError):
        ds.load_structure(r, "tree", PREFIX + "t", {"a": "1"})


def test_counter_race_atomic_is_exact():
    assert ds.counter_race(lambda: start("redis").client(), PREFIX + "race", threads=3, per_thread=50) == 150
    start("redis").client().delete(PREFIX + "race")


def test_encoding_widget_updates_headless(r):
    widget, update = ds.encoding_widget(r, PREFIX + "w", "hash", max_size=300)
    point = update(10)
    assert point.encoding == "listpack" and point.size == 10
    assert "listpack" in widget.children[1].value


def test_set_threshold_is_the_intset_limit_on_every_engine(r):
    """Integer members stay an intset up to set-max-intset-entries, also where the engine has
    set-max-listpack-entries (Valkey, Redis 7.2+)."""
    limit = ds.listpack_threshold(r, "set")
    assert limit == int(r.config_get("set-max-intset-entries")["set-max-intset-entries"])
    at = {p.size: p for p in ds.encoding_curve(r, "set", "test:ds:intset", [limit, limit + 1])}
    assert at[limit].encoding == "intset" and at[limit + 1].encoding == "hashtable"
