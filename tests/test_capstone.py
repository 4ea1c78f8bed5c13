"""The capstone's pure parts: the design-to-service mapping, the skewed id stream, the load report."""

from __future__ import annotations

from collections import Counter

from helpers.topics import capstone


def test_group_request_follows_the_design():
    req = capstone.group_request(capstone.REFERENCE_DESIGN, token="t" * 20)
    assert req["NumNodeGroups"] == 3 and req["ReplicasPerNodeGroup"] == 1
    assert req["TransitEncryptionEnabled"] is True and req["AuthToken"] == "t" * 20
    assert req["AutomaticFailoverEnabled"] is True and req["CacheParameterGroupName"] == capstone.PARAMETER_GROUP
    assert "AuthToken" not in capstone.group_request({**capstone.REFERENCE_DESIGN, "auth": False})


def test_zipf_ids_are_skewed_and_reproducible():
    ids = list(range(100, 1100))
    a = capstone.zipf_ids(ids, 5000, 1.2, seed=1)
    assert a == capstone.zipf_ids(ids, 5000, 1.2, seed=1)
    counts = Counter(a)
    assert counts[100] > counts[101] > 0  # the first id is the most popular
    top10 = sum(counts[i] for i in ids[:10])
    assert top10 / len(a) > 0.4  # a few products get most views
    assert set(a) <= set(ids)


def test_load_report_figures_and_targets():
    r = capstone.LoadReport(seconds=2.0, reads=100, writes=10, errors=1, db_reads=20,
                            read_latencies_ms=[float(i) for i in range(1, 101)])
    assert r.requests == 110 and r.throughput == 55.0
    assert r.hit_ratio == 0.8
    assert abs(r.availability - (1 - 1 / 110)) < 1e-9
    assert r.percentile(50) == 50.0 and r.percentile(99) == 99.0
    workload = {**capstone.WORKLOAD, "p50_ms": 60, "p99_ms": 90, "hit_ratio": 0.75, "availability": 0.99}
    missed = capstone.misses_targets(r, workload)
    assert missed == ["p99 99.0 ms > 90 ms"]
    assert capstone.misses_targets(r, workload, tail=False) == []
    assert "hit ratio 80.0%" in str(r)


def test_empty_report_is_not_a_pass():
    r = capstone.LoadReport()
    assert r.hit_ratio == 0.0 and r.availability == 0.0
    assert capstone.misses_targets(r)  # nothing measured: every target is missed
