"""The benchmark's pure functions (ratios, table cells, parsing redis-benchmark, failover windows) and how it reports a section that fails."""

from __future__ import annotations

import json
import logging

import pytest

from helpers.runtime.state import LabError
from helpers.tools import bench


def test_ratio_handles_missing_and_zero():
    assert bench.ratio(6.0, 2.0) == 3.0
    assert bench.ratio(None, 2.0) is None
    assert bench.ratio(1.0, None) is None
    assert bench.ratio(1.0, 0.0) is None


@pytest.mark.parametrize("value, unit, digits, expected", [
    (None, "s", 2, "n/a"),
    (3.14159, "s", 2, "3.14 s"),
    (2.5, "x", 1, "2.5x"),
    (26501.3, "ops/s", 0, "26,501 ops/s"),
    (12000, "ops/s", 0, "12,000 ops/s"),
    (True, "", 2, "yes"),
    ("text", "", 2, "text"),
])
def test_fmt(value, unit, digits, expected):
    assert bench.fmt(value, unit, digits) == expected


def test_render_table_aligns_columns():
    text = bench.render_table("T", ["name", "value"], [["a", "1 s"], ["longer", "10 s"]])
    lines = text.splitlines()
    assert lines[0] == "T"
    assert lines[1].startswith("name")
    assert lines[3].endswith(" 1 s") and lines[4].endswith("10 s")
    assert len({len(line) for line in lines[2:]}) == 1  # every row as wide as the separator


def test_parse_redis_benchmark_csv_both_formats():
    new = ('"test","rps","avg_latency_ms","min_latency_ms"\n'
           '"SET","18674.14","1.2","0.1"\n"GET","20242.91","1.1","0.1"\n')
    old = '"SET","95238.10"\n"GET","100000.00"\n'
    assert bench.parse_redis_benchmark_csv(new) == {"SET": 18674.14, "GET": 20242.91}
    assert bench.parse_redis_benchmark_csv(old) == {"SET": 95238.10, "GET": 100000.0}
    assert bench.parse_redis_benchmark_csv("garbage\n") == {}
    assert bench.parse_redis_benchmark_csv('"LPUSH (needed to benchmark LPOP)","5.0"') == {"LPUSH": 5.0}


def test_unavailability_window():
    ok = [(0.0, True), (1.0, True)]
    assert bench.unavailability_window(ok) == (0.0, 0)
    outage = [(0.0, True), (1.0, False), (1.5, False), (3.25, True), (4.0, False), (4.5, True)]
    window, failed = bench.unavailability_window(outage)
    assert window == pytest.approx(2.25) and failed == 3
    assert bench.unavailability_window([(0.0, True), (1.0, False)]) == (None, 1)
    assert bench.unavailability_window([]) == (0.0, 0)


def test_peak_lab_ignores_missing():
    assert bench.peak_lab({"00": 100.0, "01": None, "02": 250.0}) == ("02", 250.0)
    assert bench.peak_lab({"00": None}) == (None, None)


def test_latency_summary():
    assert bench.latency_summary([]) is None
    s = bench.latency_summary([float(i) for i in range(1, 101)])
    assert s == {"p50_ms": 50.0, "p99_ms": 99.0, "n": 100}


def test_report_prints_na_for_missing_sections():
    results = {"machine": {"cpu": "test cpu", "cores": 2},
               "startup": {"bare_redis_seconds": 0.02, "topologies": {
                   "standalone": {"seconds": 0.2, "ratio_to_bare_redis": 10.0, "note": "1 processes"},
                   "cluster": {"seconds": None, "ratio_to_bare_redis": None, "note": "not available"}}},
               "failover": {"window_seconds": None, "note": "helpers.runtime.topologies not available"},
               "memory": {"lab": None, "peak_rss_mb": None, "ratio_to_binder": None}}
    text = bench.report(results)
    assert "test cpu" in text and "10.0x" in text
    assert text.count("n/a") >= 4
    assert "Binder" in text


def test_course_memory_reads_the_latest_record(tmp_path):
    assert bench.course_memory(tmp_path) is None
    (tmp_path / "docs").mkdir()
    record = {"date": "2026-01-01T00:00:00+00:00", "enforced": True, "limit_mb": 2048, "oom_kills": 0,
              "peak": {"cgroup_max_usage_mb": 1500.0, "rss_mb": 2100.0, "pss_mb": 1400.0},
              "labs": {"00_welcome": "ok"}, "failed": []}
    (tmp_path / "docs" / "memory-check.json").write_text(json.dumps(record))
    c = bench.course_memory(tmp_path)
    assert c["source"] == "docs/memory-check.json" and c["cgroup_max_usage_mb"] == 1500.0 and c["labs"] == 1
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "coursemem.json").write_text(json.dumps({**record, "date": "later"}))
    assert bench.course_memory(tmp_path)["date"] == "later"  # this machine's latest run first
    text = bench.report({"memory": {"peak_rss_mb": 900.0, "ratio_to_binder": 0.44, "lab": "03", "course": c}})
    assert "whole course, cgroup max usage" in text and "1,500 MB" in text and "OOM kills 0" in text


def test_course_memory_prints_the_projection_with_more_labs(tmp_path):
    (tmp_path / "docs").mkdir()
    record = {"date": "d", "enforced": True, "limit_mb": 2048, "oom_kills": 0, "labs": {"00_welcome": "ok"},
              "failed": [], "peak": {"cgroup_max_usage_mb": 1500.0, "rss_mb": 2100.0, "pss_mb": 1400.0},
              "projection": {"more_labs": 3, "per_lab_mb": 100.0, "projected_peak_mb": 1800.0,
                             "kernel_uss_mb_mean": 80.0}}
    (tmp_path / "docs" / "memory-check.json").write_text(json.dumps(record))
    c = bench.course_memory(tmp_path)
    text = bench.report({"memory": {"peak_rss_mb": 900.0, "ratio_to_binder": 0.44, "lab": "03", "course": c}})
    assert "whole course + 3 labs of 100 MB (projected)" in text and "1,800 MB" in text and "80 MB USS" in text


def test_a_section_that_fails_is_na_in_the_table_and_its_traceback_in_the_log(monkeypatch, caplog):
    def no_sentinel() -> dict:
        raise LabError("no Sentinel answers")

    monkeypatch.setattr(bench, "bench_failover", no_sentinel)
    with caplog.at_level(logging.WARNING, logger="helpers.tools.bench"):
        results = bench.run(only=["failover"])
    assert results["failover"]["error"] == "LabError: no Sentinel answers"
    text = bench.report(results)
    assert "no Sentinel answers" in text and "n/a" in text
    logged = [rec for rec in caplog.records if rec.name == "helpers.tools.bench" and "failover" in rec.getMessage()]
    assert logged and logged[0].levelno == logging.WARNING and logged[0].exc_info is not None


def test_the_serverless_recovery_is_reported_as_a_ratio_to_a_bare_start():
    text = bench.report({"serverless": {"recovery_seconds": 0.4, "recovery_ratio_to_bare_start": 8.3,
                                        "scale_out_seconds": 4.5, "scale_out_ratio_to_bare_start": 87.6}})
    row = next(line for line in text.splitlines() if line.startswith("recovery after kill -9"))
    assert "0.4 s" in row and "8.3x" in row and "bare engine start" in row
    missing = bench.report({"serverless": {"recovery_seconds": None, "recovery_note": "not served again within 60 s"}})
    assert "not served again within 60 s" in missing
