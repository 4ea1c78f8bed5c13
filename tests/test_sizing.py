"""helpers.topics.sizing: the node-type table and the sizing rule."""

from __future__ import annotations

import pytest

from helpers.runtime.state import LabError
from helpers.topics import sizing


def test_table_loads_sorted_with_known_rows():
    types = sizing.node_types()
    assert len(types) >= 30
    assert [t.memory_gib for t in types] == sorted(t.memory_gib for t in types)
    large = sizing.node_type("cache.r7g.large")
    assert large.vcpu == 2 and large.memory_gib == pytest.approx(13.07)
    assert sizing.node_type("cache.t3.micro").memory_gib == pytest.approx(0.5)


def test_usable_memory_leaves_reserved_share():
    assert sizing.node_type("cache.r7g.large").usable_gib() == pytest.approx(13.07 * 0.75)
    assert sizing.node_type("cache.r7g.large").usable_gib(0.0) == pytest.approx(13.07)


def test_pick_node_type_takes_smallest_that_fits():
    assert sizing.pick_node_type(9.0, growth=0.2, families=["r7g"]).name == "cache.r7g.xlarge"
    assert sizing.pick_node_type(9.0, reserved=0.0, growth=0.0, families=["r7g"]).name == "cache.r7g.large"
    assert sizing.pick_node_type(0.3).memory_gib == pytest.approx(0.5)


def test_pick_node_type_explains_impossible_requests():
    with pytest.raises(LabError, match="Shard"):
        sizing.pick_node_type(5000)
    with pytest.raises(LabError, match="positive"):
        sizing.pick_node_type(0)
    with pytest.raises(LabError, match="not in the node-type table"):
        sizing.node_type("cache.x9.huge")


def test_shards_needed():
    node = sizing.node_type("cache.r7g.large")
    assert sizing.shards_needed(5, node) == 1
    assert sizing.shards_needed(50, node) == 6
