"""Message queues on Redis: list work queues, pub/sub subscribers, stream consumer groups.

Lab 05 compares what each primitive delivers when something fails, so this module can run a
worker in a separate OS process and kill it with SIGKILL halfway through a job (a real crash:
no `finally`, no goodbye, the connection just drops). The same `work()` loop runs in-process for
the healthy workers, so the only difference between them is the crash.

Workers record every job they finish with RPUSH on a "done" list: duplicates stay visible, which
is how the lab tells at-most-once from at-least-once by counting.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers.runtime import process, state
from helpers.runtime.process import Process
from helpers.runtime.state import LabError
from helpers.runtime.waiting import poll_until
from helpers.topics.datastructures import delete_prefix as clear_prefix  # noqa: F401 (re-exported: labs 05, 06)

log = logging.getLogger(__name__)

PASSWORD_ENV = "ELASTICACHE_LAB_WORKER_PASSWORD"  # never on a command line
MODES = ("pop", "reliable", "stream")


# --- small utilities ---------------------------------------------------------------------------

def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               what: str = "the condition") -> Any:
    """Poll until `predicate()` is truthy and return its value; a LabError after `timeout` seconds."""
    return poll_until(predicate, timeout, interval, what,
                      message="Waited {timeout:.0f}s for {what}, in vain. Is the machine very busy? "
                              "Run the cell again.")


def processing_key(queue: str, worker: str) -> str:
    return f"{queue}:processing:{worker}"


def heartbeat_key(queue: str, worker: str) -> str:
    return f"{queue}:alive:{worker}"


def status_key(done: str, worker: str) -> str:
    return f"{done}:status:{worker}"


# --- list work queues ----------------------------------------------------------------------------

def enqueue(r: Any, queue: str, jobs: Iterable[str]) -> int:
    """Producers LPUSH on the left; workers take from the right: first in, first out."""
    jobs = list(jobs)
    return r.lpush(queue, *jobs) if jobs else r.llen(queue)


def reliable_pop(r: Any, queue: str, processing: str, timeout: float = 0.1) -> str | None:
    """Take the oldest job and, in the same atomic step, park it on `processing` (BLMOVE)."""
    return r.blmove(queue, processing, timeout, "RIGHT", "LEFT")


def ack(r: Any, processing: str, job: str) -> int:
    """The job is finished: remove it from the worker's processing list."""
    return r.lrem(processing, 1, job)


def requeue_orphans(r: Any, queue: str) -> dict[str, int]:
    """The reaper: give back the jobs of every worker whose heartbeat key has expired.

    LMOVE moves one job at a time atomically, so a reaper that dies halfway loses nothing either.
    Returns {worker: jobs requeued}.
    """
    moved: dict[str, int] = {}
    prefix = processing_key(queue, "")
    for key in r.scan_iter(match=prefix + "*", count=1000):
        worker = key[len(prefix):]
        if r.exists(heartbeat_key(queue, worker)):
            continue  # still alive: its jobs are in progress, not orphaned
        n = 0
        while r.lmove(key, queue, "RIGHT", "RIGHT") is not None:  # to the consuming end: next in line
            n += 1
        moved[worker] = n
    return moved


# --- streams -----------------------------------------------------------------------------------

def ensure_group(r: Any, stream: str, group: str, start_id: str = "0") -> bool:
    """Create the consumer group (and the stream) unless it exists; True when created."""
    import redis

    try:
        r.xgroup_create(stream, group, id=start_id, mkstream=True)
        return True
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise


def recover_pending(r: Any, stream: str, group: str, consumer: str, min_idle_ms: int,
                    count: int = 100) -> list[tuple[str, dict[str, str]]]:
    """XAUTOCLAIM every entry idle for at least `min_idle_ms`, following the cursor to the end."""
    claimed: list[tuple[str, dict[str, str]]] = []
    cursor = "0-0"
    while True:
        reply = r.xautoclaim(stream, group, consumer, min_idle_time=min_idle_ms, start_id=cursor, count=count)
        cursor, entries = reply[0], reply[1]
        claimed += [(mid, fields) for mid, fields in entries if fields is not None]
        if cursor in ("0-0", b"0-0"):
            return claimed


def pending_by_consumer(r: Any, stream: str, group: str) -> dict[str, int]:
    """XPENDING summary as {consumer: number of delivered but unacknowledged entries}."""
    summary = r.xpending(stream, group)
    return {c["name"]: int(c["pending"]) for c in summary.get("consumers") or []}


# --- the worker loop (in-process or in a crashable subprocess) ----------------------------------

@dataclass
class WorkerConfig:
    mode: str  # pop | reliable | stream
    queue: str  # the list or the stream
    done: str  # a list where each finished job is RPUSHed
    name: str = "worker"
    group: str = "workers"  # stream mode
    batch: int = 1  # stream mode: entries per XREADGROUP
    hang_after: int | None = None  # after this many finished jobs, take one more and hang (to be killed)
    crash_point: str = "before-work"  # hang before or after doing the hung job's work
    work_ms: float = 0.0
    heartbeat_ms: int = 500  # reliable mode: the reaper requeues a worker silent for this long
    idle_exit: float = 0.3  # return when no job came for this long (None: run until max_seconds)
    max_seconds: float = 60.0

    def argv(self) -> list[str]:
        out = ["--mode", self.mode, "--queue", self.queue, "--done", self.done, "--name", self.name,
               "--group", self.group, "--batch", str(self.batch), "--crash-point", self.crash_point,
               "--work-ms", str(self.work_ms), "--heartbeat-ms", str(self.heartbeat_ms),
               "--max-seconds", str(self.max_seconds)]
        if self.hang_after is not None:
            out += ["--hang-after", str(self.hang_after)]
        return out


def work(r: Any, cfg: WorkerConfig) -> int:
    """Process jobs until the queue stays empty for cfg.idle_exit seconds; returns jobs finished.

    With cfg.hang_after set, the worker takes one more job after that many, writes "stuck" to its
    status key and sleeps: it is holding a job it will never finish, waiting to be killed.
    """
    if cfg.mode not in MODES:
        raise LabError(f"Unknown worker mode {cfg.mode!r}; use one of {', '.join(MODES)}.")
    finished = 0
    started = time.monotonic()
    last_job = time.monotonic()
    processing = processing_key(cfg.queue, cfg.name)
    heartbeat = heartbeat_key(cfg.queue, cfg.name)
    if cfg.mode == "stream":
        ensure_group(r, cfg.queue, cfg.group)

    def hang(job: str) -> None:
        r.set(status_key(cfg.done, cfg.name), f"stuck on {job}", ex=120)
        while time.monotonic() - started < cfg.max_seconds:
            time.sleep(0.05)
        raise SystemExit(3)  # nobody killed us: leave, still without finishing the job

    def do(job: str) -> None:
        if cfg.work_ms:
            time.sleep(cfg.work_ms / 1000)
        r.rpush(cfg.done, job)

    while time.monotonic() - started < cfg.max_seconds:
        if cfg.mode == "stream":
            reply = r.xreadgroup(cfg.group, cfg.name, {cfg.queue: ">"}, count=cfg.batch, block=100)
            entries = reply[0][1] if reply else []
            if not entries:
                if cfg.idle_exit is not None and time.monotonic() - last_job > cfg.idle_exit:
                    break
                continue
            last_job = time.monotonic()
            for mid, fields in entries:
                job = fields.get("job", mid)
                if cfg.hang_after is not None and finished >= cfg.hang_after:
                    if cfg.crash_point == "after-work":
                        do(job)
                    hang(job)
                do(job)
                r.xack(cfg.queue, cfg.group, mid)
                finished += 1
            continue

        if cfg.mode == "reliable":
            r.set(heartbeat, "1", px=cfg.heartbeat_ms)
            job = reliable_pop(r, cfg.queue, processing, timeout=0.1)
        else:
            reply = r.brpop(cfg.queue, timeout=0.1)
            job = reply[1] if reply else None
        if job is None:
            if cfg.idle_exit is not None and time.monotonic() - last_job > cfg.idle_exit:
                break
            continue
        last_job = time.monotonic()
        if cfg.hang_after is not None and finished >= cfg.hang_after:
            if cfg.crash_point == "after-work":
                do(job)
            hang(job)
        do(job)
        if cfg.mode == "reliable":
            ack(r, processing, job)
        finished += 1
    if cfg.mode == "reliable":
        r.delete(heartbeat)
    return finished


@dataclass
class WorkerProcess:
    """A worker running in its own OS process, so the lab can crash it for real with SIGKILL."""

    cfg: WorkerConfig
    process: Process = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return str(self.process.log)

    def alive(self) -> bool:
        return self.process.alive()

    def kill(self) -> int | None:
        """SIGKILL: the process dies on the spot, mid-job. Returns its exit code (-9)."""
        return self.process.kill(signal.SIGKILL)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        if code is None:
            self.process.stop()
            raise LabError(f"Worker {self.cfg.name} did not finish within {timeout:.0f}s; it was stopped. "
                           f"Its log: {self.log}")
        return code

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.process.stop()


def start_worker(svc: Any, cfg: WorkerConfig) -> WorkerProcess:
    """Run `work(cfg)` in a child process against the service `svc` (a helpers Service).

    The child runs inside the lab's state directory, so `python -m helpers stop` sweeps it up even
    if a kernel dies before killing it, and it leaves by itself after cfg.max_seconds anyway. The
    password travels in the environment, never on the command line.
    """
    workdir = state.service_dir("workers")
    env = dict(os.environ)
    password = svc.password() if hasattr(svc, "password") else None
    if password:
        env[PASSWORD_ENV] = password
    argv = [sys.executable, "-m", "helpers.topics.messaging", "--host", svc.host, "--port", str(svc.port), *cfg.argv()]
    proc = process.spawn(argv, cwd=workdir, log=workdir / f"{cfg.name}.log", env=env, detach=False)
    return WorkerProcess(cfg=cfg, process=proc)


# --- pub/sub -----------------------------------------------------------------------------------

class Subscriber:
    """A pub/sub subscriber on its own connection and thread; collects what it receives.

    Use it as a context manager (or call stop()) so its thread is joined before the cell ends.
    """

    def __init__(self, r: Any, channel: str, name: str):
        self.channel, self.name = channel, name
        self.received: list[str] = []
        self._pubsub = r.pubsub()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Subscriber:
        self._pubsub.subscribe(self.channel)
        # Wait for the server's subscribe confirmation: from then on, PUBLISH reaches us.
        def confirmed() -> bool:
            msg = self._pubsub.get_message(timeout=0.1)
            return bool(msg and msg.get("type") == "subscribe")

        wait_until(confirmed, timeout=5, what=f"{self.name} to subscribe")
        self._thread = threading.Thread(target=self._run, name=f"sub-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._pubsub.get_message(timeout=0.05)
            if msg and msg.get("type") == "message":
                self.received.append(msg["data"])

    def stop(self) -> None:
        """Go offline: join the thread and close the connection (later messages are not kept)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError, OSError):  # the server already gone: nothing to leave
            if self._pubsub.subscribed:
                self._pubsub.unsubscribe()
        with contextlib.suppress(RedisError, OSError):
            self._pubsub.close()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def publish_all(r: Any, channel: str, messages: Sequence[str]) -> list[int]:
    """PUBLISH each message; returns how many subscribers received each one (0 = gone for good)."""
    return [int(r.publish(channel, m)) for m in messages]


# --- the comparison table ------------------------------------------------------------------------

def guarantees_table(rows: Sequence[dict[str, Any]]) -> Any:
    """Render measured delivery results as a table (HTML in a notebook, text otherwise)."""
    cols = list(rows[0]) if rows else []
    try:
        from IPython.display import HTML

        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{row[c]}</td>" for c in cols) + "</tr>" for row in rows)
        return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    except ImportError:  # pragma: no cover - IPython ships with the lab
        return "\n".join(" | ".join(str(row[c]) for c in cols) for row in rows)


# --- the subprocess entry point ----------------------------------------------------------------

def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="A lab 05 worker (started by helpers.topics.messaging.start_worker).")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--done", required=True)
    p.add_argument("--name", default="worker")
    p.add_argument("--group", default="workers")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--hang-after", type=int, default=None)
    p.add_argument("--crash-point", choices=("before-work", "after-work"), default="before-work")
    p.add_argument("--work-ms", type=float, default=0.0)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("--max-seconds", type=float, default=60.0)
    a = p.parse_args(argv)
    from helpers.runtime.service import redis_client_for

    r = redis_client_for(a.host, a.port, password=os.environ.get(PASSWORD_ENV))
    cfg = WorkerConfig(mode=a.mode, queue=a.queue, done=a.done, name=a.name, group=a.group, batch=a.batch,
                       hang_after=a.hang_after, crash_point=a.crash_point, work_ms=a.work_ms,
                       heartbeat_ms=a.heartbeat_ms, idle_exit=None if a.hang_after is not None else 0.5,
                       max_seconds=a.max_seconds)
    print(f"{a.name}: finished {work(r, cfg)} jobs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
