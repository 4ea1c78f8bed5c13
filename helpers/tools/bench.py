"""`make bench`: the course's figures, measured side by side in one run, as ratios to a baseline.

Every figure is paired with the floor it should be judged against, measured in the same run on the
same machine: a lab's time against an empty notebook's, a topology's start-up against a bare
`redis-server`, a cache hit against the database query it saves, the lab's load generator against
`redis-benchmark`, peak memory against Binder's 2 GB. A ratio survives a slow or busy machine; an
absolute number does not. This is not a test: it never fails on a slow machine, and what cannot be
measured here (a missing tool, a topology not written yet) is printed as "n/a".

    python -m helpers.tools.bench                     # everything (a few minutes)
    python -m helpers.tools.bench --only startup,cache  --out artifacts/bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from helpers.tools.benchreport import (  # noqa: F401 (re-exported: the figures' pure functions, the report)
    BINDER_LIMIT_MB,
    COURSE_MEMORY,
    NA,
    course_memory,
    fmt,
    latency_summary,
    machine,
    parse_redis_benchmark_csv,
    peak_lab,
    ratio,
    render_table,
    report,
    unavailability_window,
)

log = logging.getLogger(__name__)

SECTIONS = ("labs", "startup", "aws", "cache", "throughput", "failover", "resharding", "serverless", "memory")
TOPOLOGIES = (("standalone", "redis", {}), ("memcached-pool", "memcached-pool", {"nodes": 3}),
              ("replicated", "replicated", {"replicas": 2}), ("cluster", "cluster", {"shards": 3, "replicas": 1}),
              ("local AWS", "aws", {}))

# --- measuring memory ------------------------------------------------------------------------

def lab_processes() -> list[Any]:
    """Every process of the bench: its kernels (children) and what runs in its state directory."""
    import psutil

    from helpers.runtime import process

    procs: dict[int, Any] = {}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            procs[child.pid] = child
    for p in process.state_dir_processes():
        procs.setdefault(p.pid, p)
    return list(procs.values())


def total_rss_mb(procs: Iterable[Any]) -> float:
    import psutil

    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            total += p.memory_info().rss
    return total / 2**20


class PeakRSS:
    """Samples the summed RSS of the bench's kernels and services in a thread; `.peak_mb` after."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-rss")

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.peak_mb = max(self.peak_mb, total_rss_mb(lab_processes()))
            except (psutil.Error, OSError, ValueError) as exc:  # the process table or a ledger changing under us
                log.debug("sampling the bench's memory failed: %s", exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# --- the sections ------------------------------------------------------------------------------

def _repo() -> Path:
    from helpers.runtime import state

    return state.repo_root()


def _stop_quietly(name: str) -> None:
    """Stop one of the bench's services on the way out; a failure is logged, not raised (the scratch
    state directory is swept at the end anyway)."""
    import psutil

    from helpers.runtime import services
    from helpers.runtime.state import LabError

    try:
        services.stop(name)
    except (LabError, OSError, ValueError, psutil.Error) as exc:
        log.warning("stopping %s failed: %s", name, exc)


def _aws_errors() -> tuple[type[Exception], ...]:
    """What a call to the local ElastiCache API, or a helper waiting on it, raises when it fails."""
    from botocore.exceptions import BotoCoreError, ClientError

    from helpers.runtime.state import LabError

    return (BotoCoreError, ClientError, LabError)


def execute_notebook(nb: Any, cwd: Path, timeout: int = 600) -> tuple[float, str | None]:
    """Run a notebook in a fresh kernel; (wall seconds including kernel start, error or None)."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    started = time.perf_counter()
    try:
        client.execute()
        error = None
    except Exception as exc:  # a failing lab is reported in the table, not raised
        log.warning("running a notebook in %s failed: %s", cwd, exc, exc_info=True)
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # nbclient's messages carry ANSI colours
        error = f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
    return time.perf_counter() - started, error


def bench_labs(pattern: str = "*.ipynb") -> dict[str, Any]:
    import nbformat

    labs_dir = _repo() / "labs"
    os.environ.setdefault("MPLBACKEND", "Agg")
    empty = nbformat.v4.new_notebook()
    empty.cells.append(nbformat.v4.new_code_cell("pass"))
    floors = [execute_notebook(empty, labs_dir)[0] for _ in range(2)]
    floor = min(floors)
    rows: dict[str, Any] = {}
    for path in sorted(labs_dir.glob(pattern)):
        nb = nbformat.read(path, as_version=4)
        with PeakRSS() as mem:
            seconds, error = execute_notebook(nb, labs_dir)
        rows[path.stem] = {"seconds": seconds, "ratio_to_empty": ratio(seconds, floor), "error": error,
                           "peak_rss_mb": mem.peak_mb or None}
        print(f"  {path.stem:<32} {seconds:6.1f} s{'  ' + error if error else ''}", flush=True)
    total = sum(r["seconds"] for r in rows.values())
    return {"empty_notebook_seconds": floor, "labs": rows, "total_seconds": total,
            "total_ratio_to_empty": ratio(total, floor * len(rows)) if rows else None}


def _bare_redis_start() -> float | None:
    """Seconds to start a `redis-server` by hand on a free port until it answers PING (the floor)."""
    from helpers.runtime import engines, process
    from helpers.runtime.state import LabError

    try:
        binary = engines.find_binary("redis")
    except LabError:  # no redis-server here: the floor is n/a
        return None
    port = engines.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    argv = [binary, "--port", str(port), "--bind", engines.LOOPBACK, "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]
    started = time.perf_counter()
    try:
        with process.spawn(argv, cwd=workdir, log=workdir / "redis.log", detach=False) as proc:
            proc.wait_ready(lambda: engines.probe_redis(engines.LOOPBACK, port), what="a bare redis-server",
                            timeout=20, interval=0.005)
            return time.perf_counter() - started
    except LabError as exc:  # it did not start (Exited included) or did not answer in time
        log.warning("starting a bare redis-server failed: %s", exc)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bench_startup() -> dict[str, Any]:
    from helpers.runtime import services

    bare = [b for b in (_bare_redis_start() for _ in range(3)) if b is not None]
    floor = min(bare) if bare else None
    rows: dict[str, Any] = {}
    for label, topo, options in TOPOLOGIES:
        if topo not in services.TOPOLOGIES:
            rows[label] = {"seconds": None, "ratio_to_bare_redis": None, "note": f"topology {topo!r} not available"}
            continue
        name = f"bench-{topo}"
        services.stop(name)
        started = time.perf_counter()
        try:
            svc = services.start(topo, name=name, **options)
            seconds: float | None = time.perf_counter() - started
            note = f"{len(svc.nodes)} processes"
        except Exception as exc:  # a topology that cannot start is a row of n/a, not the end of the bench
            log.warning("starting %s failed: %s", label, exc, exc_info=True)
            seconds, note = None, f"failed: {exc}".splitlines()[0][:120]
        finally:
            _stop_quietly(name)
        rows[label] = {"seconds": seconds, "ratio_to_bare_redis": ratio(seconds, floor), "note": note}
    return {"bare_redis_seconds": floor, "topologies": rows}


def bench_cache(n: int = 300) -> dict[str, Any]:
    """Cache hit (Redis GET + decode, as cache-aside serves it) vs the database query it replaces."""
    from helpers.runtime import services

    r = services.start("redis", name="bench-redis").client()
    try:
        from helpers.topics import caching, dataset

        dataset.build(progress=False)
        db = dataset.open_pristine()
        ids = db.product_ids(limit=n)
        for pid in ids:  # fill the cache first: every read below is a hit
            caching.get_product_page(r, db, pid)
        db_ms, hit_ms = [], []
        for pid in ids:
            t0 = time.perf_counter()
            db.product_page(pid)
            t1 = time.perf_counter()
            value, hit = caching.cache_aside(r, caching.page_key(pid), lambda pid=pid: db.product_page(pid))
            t2 = time.perf_counter()
            db_ms.append((t1 - t0) * 1000)
            if hit:
                hit_ms.append((t2 - t1) * 1000)
        caching.clear(r)
        what = "shop product page: SQLite query (helpers.topics.db) vs cache-aside hit (helpers.topics.caching)"
    except ImportError:
        import sqlite3

        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"value-{i}") for i in range(10000)])
        r.set("bench:probe", "x" * 200)
        db_ms, hit_ms = [], []
        for i in range(n):
            t0 = time.perf_counter()
            conn.execute("SELECT COUNT(*), MAX(v) FROM t WHERE id % 7 = ?", (i % 7,)).fetchall()
            t1 = time.perf_counter()
            r.get("bench:probe")
            t2 = time.perf_counter()
            db_ms.append((t1 - t0) * 1000)
            hit_ms.append((t2 - t1) * 1000)
        r.delete("bench:probe")
        what = "SQLite aggregate query vs Redis GET (the shop database helpers are not available)"
    db_s, hit_s = latency_summary(db_ms), latency_summary(hit_ms)
    out = {"what": what, "database": db_s, "cache_hit": hit_s}
    if db_s and hit_s:
        out["ratio_p50"] = ratio(db_s["p50_ms"], hit_s["p50_ms"])
        out["ratio_p99"] = ratio(db_s["p99_ms"], hit_s["p99_ms"])
    return out


def _redis_benchmark(host: str, port: int, requests: int, clients: int, pipeline: int) -> dict[str, float] | None:
    tool = shutil.which("redis-benchmark")
    if not tool:
        return None
    argv = [tool, "-h", host, "-p", str(port), "-t", "set,get", "-n", str(requests), "-c", str(clients),
            "-P", str(pipeline), "--csv"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
    except (subprocess.TimeoutExpired, OSError):
        return None
    parsed = parse_redis_benchmark_csv(out)
    return parsed or None


def _lab_generator(r: Any, requests: int, clients: int, pipeline: int) -> dict[str, float]:
    """The labs' load generator (helpers.measure.run_concurrently, redis-py): SET then GET, ops/s each."""
    from helpers.measure import run_concurrently

    per_client = max(1, requests // clients // pipeline)
    out = {}
    for op in ("SET", "GET"):
        def work(i: int, op: str = op) -> None:
            if pipeline == 1:
                (r.set(f"bench:key:{i}", "x" * 3) if op == "SET" else r.get(f"bench:key:{i}"))
                return
            pipe = r.pipeline(transaction=False)
            for j in range(pipeline):
                (pipe.set(f"bench:key:{i}:{j}", "xxx") if op == "SET" else pipe.get(f"bench:key:{i}:{j}"))
            pipe.execute()

        res = run_concurrently(work, clients, calls_per_client=per_client, timeout=120)
        out[op] = res.throughput * pipeline
    return out


def bench_throughput(requests: int = 20000, clients: int = 8, pipeline: int = 16) -> dict[str, Any]:
    from redis.exceptions import RedisError

    from helpers.runtime import services

    svc = services.start("redis", name="bench-redis")
    r = svc.client()
    out: dict[str, Any] = {"clients": clients, "pipeline": pipeline, "requests": requests}
    for label, depth in (("plain", 1), ("pipelined", pipeline)):
        ours = _lab_generator(r, requests, clients, depth)
        theirs = _redis_benchmark(svc.host, svc.port, requests, clients, depth)
        out[label] = {"lab_ops_per_s": ours, "redis_benchmark_ops_per_s": theirs,
                      "ratio": {op: ratio(ours.get(op), (theirs or {}).get(op)) for op in ("SET", "GET")}}
    with contextlib.suppress(RedisError):  # leftover keys go with the scratch state directory anyway
        keys = list(r.scan_iter(match="bench:key:*", count=1000))
        for i in range(0, len(keys), 500):
            r.unlink(*keys[i:i + 500])
    return out


def bench_aws() -> dict[str, Any]:
    """The local ElastiCache API: replication groups until `available`, and a planned failover under writes."""
    from redis.exceptions import RedisError

    from helpers.aws import client as cpc
    from helpers.aws import endpoint as localaws
    from helpers.topics import failover

    bare = [b for b in (_bare_redis_start() for _ in range(3)) if b is not None]
    floor = min(bare) if bare else None
    ec = localaws.client("elasticache")
    cpc.cleanup(ec, "bench-")
    # Not timed: the endpoint's first create loads the control plane's modules (seconds on a loaded
    # machine, once per endpoint process); the figures are those of every create after it.
    try:
        ec.create_replication_group(ReplicationGroupId="bench-warm", ReplicationGroupDescription="bench",
                                    Engine="redis", NumCacheClusters=1)
        cpc.wait_for(ec, replication_group_id="bench-warm")
        ec.delete_replication_group(ReplicationGroupId="bench-warm")
        cpc.wait_deleted(ec, replication_group_id="bench-warm")
    except _aws_errors() as exc:  # the creates below say what is wrong, in their rows
        log.warning("warming up the local ElastiCache API failed: %s", exc)
    rows: dict[str, Any] = {}

    def create(label: str, gid: str, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            ec.create_replication_group(ReplicationGroupId=gid, ReplicationGroupDescription="bench", Engine="redis",
                                        **kwargs)
            cpc.wait_for(ec, replication_group_id=gid)
            seconds: float | None = time.perf_counter() - started
            note = "create-replication-group until available"
        except _aws_errors() as exc:  # an operation that fails is a row of n/a, not the end of the bench
            log.warning("creating %s failed: %s", gid, exc, exc_info=True)
            seconds, note = None, f"failed: {exc}".splitlines()[0][:120]
        rows[label] = {"seconds": seconds, "ratio_to_bare_redis": ratio(seconds, floor), "note": note}

    try:
        create("1+2 replication group", "bench-rg", NumCacheClusters=3, AutomaticFailoverEnabled=True)
        create("3 x (1+1) cluster", "bench-cl", NumNodeGroups=3, ReplicasPerNodeGroup=1)
        try:
            endpoint = ec.describe_replication_groups(ReplicationGroupId="bench-rg")["ReplicationGroups"][0][
                "NodeGroups"][0]["PrimaryEndpoint"]
            writer = failover.AckWriter(failover.resilient_client(endpoint), "bench:fo", max_seconds=20)
            writer.start()
            writer.wait_acked(50)
            started = time.perf_counter()
            ec.test_failover(ReplicationGroupId="bench-rg", NodeGroupId="0001")
            cpc.wait_for(ec, replication_group_id="bench-rg")
            seconds = time.perf_counter() - started
            writer.finish()
            lost = len(writer.lost(cpc.redis_at(endpoint)))
            rows["test-failover"] = {"seconds": seconds, "ratio_to_bare_redis": ratio(seconds, floor),
                                     "note": f"until available; {lost} of {len(writer.acked)} acknowledged writes lost"}
        # as above: n/a in its row (the API's errors; the writer's: too few writes acknowledged, a lost
        # connection; no group or member in the answer)
        except (*_aws_errors(), TimeoutError, RedisError, LookupError) as exc:
            log.warning("the test-failover measurement failed: %s", exc, exc_info=True)
            rows["test-failover"] = {"seconds": None, "ratio_to_bare_redis": None,
                                     "note": f"failed: {exc}".splitlines()[0][:120]}
    finally:
        try:
            cpc.cleanup(ec, "bench-")
        except _aws_errors() as exc:  # the endpoint and its state go with the scratch state directory
            log.warning("deleting the bench's replication groups failed: %s", exc)
    return {"bare_redis_seconds": floor, "operations": rows}


def bench_failover(seconds: float = 20.0) -> dict[str, Any]:
    """Kill the primary under steady writes; the window is first failed write to next good write."""
    from redis.exceptions import RedisError

    from helpers.runtime import services
    from helpers.runtime import topologies as topo

    name = "bench-replicated"
    try:
        svc = services.start("replicated", name=name, replicas=2)
        client = topo.primary_client(svc, socket_timeout=0.5, socket_connect_timeout=0.5)
        client.set("bench:failover", 0)
        events: list[tuple[float, bool]] = []
        t_start = time.monotonic()
        killed_at = None
        i = 0
        while time.monotonic() - t_start < seconds:
            now = time.monotonic()
            if killed_at is None and now - t_start > 1.0:
                host, port = topo.current_primary(svc)
                svc.kill(next(n for n in svc.nodes if n.port == port))
                killed_at = time.monotonic()
            try:
                client.set("bench:failover", i)
                events.append((time.monotonic(), True))
            except RedisError:  # the primary is gone and Sentinel has not promoted a replica yet
                events.append((time.monotonic(), False))
            i += 1
            window, failed = unavailability_window(events)
            if killed_at and window is not None and failed and time.monotonic() - killed_at > window + 1:
                break
            time.sleep(0.01)
        window, failed = unavailability_window(events)
        from_kill = None
        if killed_at is not None:
            first_fail = next((t for t, ok in events if not ok), None)
            back = next((t for t, ok in events if ok and first_fail is not None and t > first_fail), None)
            from_kill = back - killed_at if back is not None else None
        return {"window_seconds": window, "failed_writes": failed, "kill_to_recovery_seconds": from_kill,
                "writes": len(events), "note": "Sentinel down-after + election + client rediscovery"}
    finally:  # a failure is the section's n/a (see run), and its service is still stopped
        _stop_quietly(name)


def bench_resharding(keys: int = 2000) -> dict[str, Any]:
    """Add a shard (slots migrated online) while clients read and write; count the failed requests."""
    from helpers.runtime import services
    from helpers.runtime import topologies as topo

    name = "bench-cluster"
    try:
        svc = services.start("cluster", name=name, shards=3, replicas=0)
        rc = topo.cluster_client(svc)
        for i in range(keys):
            rc.set(f"bench:rs:{i}", i)
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0, "wrong": 0}

        def traffic() -> None:
            c = topo.cluster_client(svc)
            i = 0
            while not stop.is_set():
                k = i % keys
                try:
                    if i % 4 == 0:
                        c.set(f"bench:rs:{k}", k)
                    elif int(c.get(f"bench:rs:{k}") or -1) != k:
                        counts["wrong"] += 1
                    counts["ok"] += 1
                except Exception as exc:  # every failed request counts, whatever it raised; traffic goes on
                    log.debug("a request during resharding failed: %s", exc, exc_info=True)
                    counts["failed"] += 1
                i += 1

        worker = threading.Thread(target=traffic, daemon=True)
        worker.start()
        started = time.perf_counter()
        topo.add_shard(svc, replicas=0)
        seconds = time.perf_counter() - started
        stop.set()
        worker.join(10)
        return {"lost_requests": counts["failed"], "wrong_values": counts["wrong"], "requests": counts["ok"]
                + counts["failed"], "reshard_seconds": seconds}
    finally:  # a failure is the section's n/a (see run), and its service is still stopped
        _stop_quietly(name)


def bench_serverless(requests: int = 2000, max_keys: int = 12000) -> dict[str, Any]:
    """A serverless cache: the time to add a shard behind the endpoint under writes (against a bare engine's
    start, measured in this run), and the endpoint's cost per request (TLS, routing, metering) against the
    same client talking to one of its engines directly."""
    import redis

    import helpers.runtime.serverless as sl
    from helpers.aws import endpoint as localaws
    from helpers.aws import serverless as sv
    from helpers.runtime import services

    bare = [b for b in (_bare_redis_start() for _ in range(3)) if b is not None]
    floor = min(bare) if bare else None
    ec = localaws.client("elasticache")
    name = "bench-serverless"
    out: dict[str, Any] = {"bare_engine_start_seconds": floor}
    try:
        ec.create_serverless_cache(ServerlessCacheName=name, Engine="redis")
        cache = sv.wait_serverless(ec, name)
        svc = services.get(f"aws-sl-{name}")
        r = sv.client(cache)
        # Metering overhead: the same GET/SET loop through the endpoint and straight to an engine behind it.
        backend = sl.status(svc)["backends"][0]
        direct = redis.Redis(host="127.0.0.1", port=int(backend["port"]),
                             password=Path(svc.meta["password_file"]).read_text().strip())

        def loop(c: Any) -> float:
            started = time.perf_counter()
            for i in range(requests // 2):
                c.set(f"bench:m:{i % 100}", b"v" * 100)
                c.get(f"bench:m:{i % 100}")
            return (time.perf_counter() - started) / requests * 1e6

        via, straight = loop(r), loop(direct)
        out["request_usec_via_endpoint"], out["request_usec_direct"] = via, straight
        out["metering_overhead_ratio"] = ratio(via, straight)
        # Scale-out: write 1 KB values until a second shard serves (bounded in keys and time).
        started = time.perf_counter()
        written = 0
        while written < max_keys and time.perf_counter() - started < 60:
            pipe = r.pipeline(transaction=False)
            for i in range(written, written + 200):
                pipe.set(f"bench:s:{i}", b"x" * 1024)
            pipe.execute()
            written += 200
            if len(sl.status(svc).get("backends", [])) > 1:
                break
        deadline = time.perf_counter() + 60
        seconds = None
        while time.perf_counter() < deadline and seconds is None:
            for e in sl.events(svc)[0]:
                m = re.search(r"scaled out .* in ([0-9.]+) s", e.get("message", ""))
                if m:
                    seconds = float(m.group(1))
            time.sleep(0.5)
        lost = written - int(r.dbsize()) + 100  # the 100 metering keys are there too
        out.update(scale_out_seconds=seconds, scale_out_ratio_to_bare_start=ratio(seconds, floor),
                   keys_written=written, keys_lost=lost)
        out.update(_serverless_recovery(r, direct, int(backend["pid"]), floor))
        return out
    except Exception as exc:  # what was measured is kept, the rest is n/a
        log.warning("the serverless measurement failed: %s", exc, exc_info=True)
        return {**out, "note": f"failed: {exc}".splitlines()[0][:160]}
    finally:
        try:
            ec.delete_serverless_cache(ServerlessCacheName=name)
            sv.wait_serverless_deleted(ec, name)
        except _aws_errors() as exc:  # never created, or the endpoint is gone: the scratch directory goes anyway
            log.warning("deleting serverless cache %s failed: %s", name, exc)


def _serverless_recovery(r: Any, direct: Any, pid: int, floor: float | None, timeout: float = 60.0) -> dict[str, Any]:
    """kill -9 of the engine behind one shard of a serverless cache (`direct` is a client of that engine,
    `pid` its process), then the time until the endpoint serves that shard's keys again (its replica
    promoted), against a bare engine's start."""
    import signal

    import redis

    probe = None
    for i in range(2000):  # a key the endpoint placed on that shard
        r.set(f"bench:r:{i}", b"before the kill")
        if direct.exists(f"bench:r:{i}"):
            probe = f"bench:r:{i}"
            break
    if probe is None:
        return {"recovery_seconds": None, "recovery_note": "no key landed on the shard measured"}
    started = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    while time.perf_counter() - started < timeout:
        try:
            if r.get(probe) == b"before the kill" and r.set(probe, b"after"):
                seconds = time.perf_counter() - started
                return {"recovery_seconds": seconds, "recovery_ratio_to_bare_start": ratio(seconds, floor)}
        except redis.RedisError:  # the shard is being recovered: try again
            pass
        time.sleep(0.05)
    return {"recovery_seconds": None, "recovery_note": f"not served again within {timeout:.0f} s"}


def run(only: Sequence[str] = SECTIONS, labs_pattern: str = "*.ipynb") -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine()}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("labs", lambda: bench_labs(labs_pattern)), ("startup", bench_startup), ("aws", bench_aws),
        ("cache", bench_cache),
        ("throughput", bench_throughput), ("failover", bench_failover), ("resharding", bench_resharding),
        ("serverless", bench_serverless)]
    for name, fn in steps:
        if name not in only:
            continue
        print(f"[bench] {name} ...", flush=True)
        started = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as exc:  # a section that cannot run is reported as n/a, never fatal
            log.warning("bench section %s failed: %s", name, exc, exc_info=True)
            results[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
            print(f"[bench] {name}: n/a ({type(exc).__name__}: {exc})", flush=True)
        results.setdefault("section_seconds", {})[name] = round(time.perf_counter() - started, 1)
    if "memory" in only:
        per_lab = {k: v.get("peak_rss_mb") for k, v in (results.get("labs", {}).get("labs") or {}).items()}
        lab, peak = peak_lab(per_lab)
        results["memory"] = {"lab": lab, "peak_rss_mb": peak, "binder_limit_mb": BINDER_LIMIT_MB,
                             "ratio_to_binder": ratio(peak, BINDER_LIMIT_MB), "course": course_memory(_repo())}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    p.add_argument("--labs", default="*.ipynb", help="glob of the labs to time (default: all)")
    p.add_argument("--out", default=str(_repo() / "artifacts" / "bench.json"))
    p.add_argument("--keep-home", action="store_true", help="use $ELASTICACHE_LAB_HOME instead of a scratch one")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    scratch = None
    if not args.keep_home:  # its own state directory: a learner's services are never touched
        scratch = tempfile.mkdtemp(prefix="elasticache-lab-bench-")
        os.environ["ELASTICACHE_LAB_HOME"] = scratch
    from helpers.aws import endpoint as localaws
    from helpers.runtime import services

    localaws.guard()
    try:
        results = run(only, args.labs)
    finally:
        services.stop()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(report(results))
    print(f"\nWrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
