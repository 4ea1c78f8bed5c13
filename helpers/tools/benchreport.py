"""`make bench`'s figures on paper: ratios, number formats, the redis-benchmark CSV, the failover window,
the course's memory record, the machine it ran on, and the report's tables. Pure functions (unit-tested
in tests/test_bench.py); helpers.tools.bench measures and re-exports them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BINDER_LIMIT_MB = 2048.0
NA = "n/a"


# --- pure helpers (unit-tested) ----------------------------------------------------------------

def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or the base is not positive."""
    if value is None or base is None or base <= 0:
        return None
    return value / base


def fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    """A table cell: numbers rounded, None as "n/a", ratios as "3.1x"."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if unit == "x":
            return f"{value:.{digits}f}x"
        if isinstance(value, int) or digits == 0:
            text = f"{int(round(value)):,}"
        else:
            text = f"{value:.{digits}f}"
        return f"{text} {unit}".rstrip()
    return str(value)


def render_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table (left-aligned first column, right-aligned figures)."""
    body = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body if i < len(r)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(headers), sep, *(line(r) for r in body)])


def parse_redis_benchmark_csv(text: str) -> dict[str, float]:
    """{"SET": rps, "GET": rps, ...} from `redis-benchmark --csv` output (old and new formats)."""
    out: dict[str, float] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or row[0].strip().lower() == "test":
            continue
        name = row[0].strip().split()[0].upper()
        try:
            out[name] = float(row[1])
        except ValueError:
            continue
    return out


def unavailability_window(events: Sequence[tuple[float, bool]]) -> tuple[float | None, int]:
    """From (time, ok) request outcomes in time order: (seconds between the first failure and the
    next success, number of failed requests). (0.0, 0) when nothing failed; (None, n) when the
    service never came back within the observation."""
    failures = sum(1 for _t, ok in events if not ok)
    first_fail = next((t for t, ok in events if not ok), None)
    if first_fail is None:
        return 0.0, 0
    back = next((t for t, ok in events if ok and t > first_fail), None)
    return (back - first_fail if back is not None else None), failures


def peak_lab(per_lab: dict[str, float | None]) -> tuple[str | None, float | None]:
    """The lab with the highest figure (e.g. peak memory), ignoring labs without one."""
    known = {k: v for k, v in per_lab.items() if v is not None}
    if not known:
        return None, None
    name = max(known, key=lambda k: known[k])
    return name, known[name]


COURSE_MEMORY = ("artifacts/coursemem.json", "docs/memory-check.json")


def course_memory(root: Path, candidates: Sequence[str] = COURSE_MEMORY) -> dict[str, Any] | None:
    """The last whole-course figure of `make memory-check` (every tab left open), from the first
    record found: this machine's latest run, else the one committed with the docs. Too slow to run
    within the bench (about 20 minutes), so the bench prints it with its date."""
    for rel in candidates:
        path = root / rel
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        peak = r.get("peak", {})
        return {"source": rel, "date": r.get("date"), "enforced": r.get("enforced"), "limit_mb": r.get("limit_mb"),
                "cgroup_max_usage_mb": peak.get("cgroup_max_usage_mb"), "peak_rss_mb": peak.get("rss_mb"),
                "peak_pss_mb": peak.get("pss_mb"), "oom_kills": r.get("oom_kills"), "failed": r.get("failed", []),
                "labs": len(r.get("labs", {})), "projection": r.get("projection") or {}}
    return None


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float] | None:
    if not samples_ms:
        return None
    from helpers.measure import percentiles

    p = percentiles(samples_ms, (50, 99))
    return {"p50_ms": p["p50"], "p99_ms": p["p99"], "n": int(p["n"])}


# --- the machine and the report --------------------------------------------------------------------

def machine() -> dict[str, Any]:
    import psutil

    from helpers.runtime import engines

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"host": socket.gethostname(), "os": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    from helpers.runtime.state import LabError

    for kind in ("redis", "memcached"):
        with contextlib.suppress(LabError, OSError, subprocess.SubprocessError):  # not installed: n/a
            info[f"{kind}_version"] = engines.binary_version(engines.find_binary(kind))
    return info


def report(results: dict[str, Any]) -> str:
    """The printed tables, from the JSON results (missing sections and figures as n/a)."""
    parts: list[str] = []
    m = results.get("machine", {})
    parts.append(f"Machine: {m.get('cpu', NA)}, {m.get('cores', NA)} cores, {m.get('memory_gb', NA)} GB, "
                 f"load {m.get('load_average', NA)}; {m.get('redis_version', NA)}, {m.get('memcached_version', NA)}; "
                 f"Python {m.get('python', NA)}; {m.get('date', '')}")
    labs = results.get("labs")
    if labs and labs.get("labs"):
        rows = [[name, fmt(r["seconds"], "s", 1), fmt(r["ratio_to_empty"], "x", 1), fmt(r.get("peak_rss_mb"), "MB", 0),
                 "ok" if not r["error"] else r["error"][:50]] for name, r in labs["labs"].items()]
        rows.append(["(empty notebook: the floor)", fmt(labs["empty_notebook_seconds"], "s", 1), "1.0x", "", ""])
        rows.append(["TOTAL", fmt(labs["total_seconds"], "s", 1), fmt(labs["total_ratio_to_empty"], "x", 1), "", ""])
        parts.append(render_table("Labs in a fresh kernel (nbclient)", ["lab", "time", "vs empty", "peak RSS", "result"],
                                  rows))
    elif "labs" in results:
        parts.append("Labs: n/a")
    st = results.get("startup")
    if st:
        rows = [[label, fmt(r["seconds"], "s", 2), fmt(r["ratio_to_bare_redis"], "x", 1), r.get("note", "")]
                for label, r in st["topologies"].items()]
        rows.append(["bare redis-server by hand", fmt(st["bare_redis_seconds"], "s", 3), "1.0x", "the floor"])
        parts.append(render_table("Topology start-up", ["topology", "time", "vs bare redis", "note"], rows))
    aws = results.get("aws")
    if aws and aws.get("operations"):
        rows = [[label, fmt(r["seconds"], "s", 2), fmt(r["ratio_to_bare_redis"], "x", 1), r.get("note", "")]
                for label, r in aws["operations"].items()]
        rows.append(["bare redis-server by hand", fmt(aws.get("bare_redis_seconds"), "s", 3), "1.0x", "the floor"])
        parts.append(render_table("Local ElastiCache API", ["operation", "time", "vs bare redis", "note"], rows))
    c = results.get("cache")
    if c:
        db, hit = c.get("database") or {}, c.get("cache_hit") or {}
        rows = [["database query", fmt(db.get("p50_ms"), "ms", 3), fmt(db.get("p99_ms"), "ms", 3)],
                ["cache hit", fmt(hit.get("p50_ms"), "ms", 3), fmt(hit.get("p99_ms"), "ms", 3)],
                ["database / cache", fmt(c.get("ratio_p50"), "x", 1), fmt(c.get("ratio_p99"), "x", 1)]]
        parts.append(render_table(f"Cache hit vs database ({c.get('what', '')})", ["", "p50", "p99"], rows))
    t = results.get("throughput")
    if t:
        rows = []
        for label in ("plain", "pipelined"):
            r = t.get(label) or {}
            ours, theirs, rr = r.get("lab_ops_per_s") or {}, r.get("redis_benchmark_ops_per_s") or {}, r.get("ratio") or {}
            for op in ("SET", "GET"):
                rows.append([f"{label} {op}", fmt(ours.get(op), "ops/s", 0), fmt(theirs.get(op), "ops/s", 0),
                             fmt(rr.get(op), "x", 2)])
        parts.append(render_table(f"Load generator vs redis-benchmark ({t.get('clients')} clients, "
                                  f"pipeline {t.get('pipeline')})", ["", "lab generator", "redis-benchmark", "ratio"],
                                  rows))
    f, rs = results.get("failover"), results.get("resharding")
    if f or rs:
        rows = []
        if f:
            rows.append(["failover: unavailability window", fmt(f.get("window_seconds"), "s", 2),
                         f"{f.get('failed_writes', NA)} failed writes; {f.get('note', f.get('error', ''))}"])
        if rs:
            rows.append(["resharding (add a shard): lost requests", fmt(rs.get("lost_requests")),
                         f"of {rs.get('requests', NA)}; {fmt(rs.get('reshard_seconds'), 's', 1)}; "
                         f"{rs.get('note', rs.get('error', ''))}".strip("; ")])
        parts.append(render_table("High availability and scaling", ["", "figure", "detail"], rows))
    sl = results.get("serverless")
    if sl:
        rows = [["scale-out (add a shard behind the endpoint)", fmt(sl.get("scale_out_seconds"), "s", 1),
                 fmt(sl.get("scale_out_ratio_to_bare_start"), "x", 1),
                 f"vs a bare engine start; {sl.get('keys_lost', NA)} of {sl.get('keys_written', NA)} keys lost"],
                ["request via the endpoint (TLS, routing, metering)", fmt(sl.get("request_usec_via_endpoint"), "us", 0),
                 fmt(sl.get("metering_overhead_ratio"), "x", 2),
                 f"vs the same client on an engine directly ({fmt(sl.get('request_usec_direct'), 'us', 0)})"],
                ["recovery after kill -9 of a shard's engine", fmt(sl.get("recovery_seconds"), "s", 1),
                 fmt(sl.get("recovery_ratio_to_bare_start"), "x", 1),
                 sl.get("recovery_note") or "until its keys are served again, vs a bare engine start"]]
        if sl.get("note"):
            rows.append(["note", "", "", sl["note"]])
        parts.append(render_table("Serverless", ["", "figure", "ratio", "baseline"], rows))
    mem = results.get("memory")
    if mem:
        rows = [["peak RSS, services + kernels", fmt(mem.get("peak_rss_mb"), "MB", 0),
                 fmt(mem.get("ratio_to_binder"), "x", 2), mem.get("lab") or NA]]
        c = mem.get("course")
        if c:
            when = f"{c.get('labs')} labs, kernels kept; {c.get('date', NA)} ({c.get('source')})"
            used = c.get("cgroup_max_usage_mb")
            if used is not None:
                rows.append(["whole course, cgroup max usage", fmt(used, "MB", 0),
                             fmt(ratio(used, BINDER_LIMIT_MB), "x", 2), when])
            rows.append(["whole course, peak summed PSS", fmt(c.get("peak_pss_mb"), "MB", 0),
                         fmt(ratio(c.get("peak_pss_mb"), BINDER_LIMIT_MB), "x", 2), when])
            pr = c.get("projection") or {}
            if pr.get("projected_peak_mb") is not None:
                rows.append([f"whole course + {pr.get('more_labs')} labs of {fmt(pr.get('per_lab_mb'), 'MB', 0)} "
                             "(projected)", fmt(pr["projected_peak_mb"], "MB", 0),
                             fmt(ratio(pr["projected_peak_mb"], BINDER_LIMIT_MB), "x", 2),
                             f"a lab's kernel: {fmt(pr.get('kernel_uss_mb_mean'), 'MB', 0)} USS on average"])
            verdict = ("limit enforced" if c.get("enforced") else "limit NOT enforced") + \
                f"; OOM kills {c.get('oom_kills', NA)}; failed labs: {', '.join(c.get('failed') or []) or 'none'}"
            rows.append(["whole course, verdict", "", "", verdict])
        else:
            rows.append(["whole course, kernels kept", NA, NA, "no record: run `make memory-check`"])
        parts.append(render_table(f"Memory vs Binder's {BINDER_LIMIT_MB:.0f} MB limit",
                                  ["", "peak", "of limit", "during"], rows))
    return "\n\n".join(parts)


