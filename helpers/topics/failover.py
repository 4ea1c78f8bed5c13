"""Failover as an application sees it through ElastiCache's endpoints (labs 09, 13).

- `resilient_client`: the client side of high availability: short timeouts, retries with
  exponential backoff and jitter, reconnecting through the same endpoint after an error;
- `AckWriter`: a thread that writes through an endpoint and keeps the keys answered OK (or, with
  `wait_replicas`, the keys a replica confirmed with WAIT), bounded in count and time;
- `kill_primary`: `kill -9` of a replication group's primary process, a crashed host;
- `compare_failovers`: a planned failover (TestFailover) and a crash, side by side, with the
  acknowledged writes each one lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Any

from helpers.aws import client as cpc
from helpers.runtime import services

log = logging.getLogger(__name__)


def resilient_client(endpoint: dict[str, Any], retries: int = 8, **kwargs: Any) -> Any:
    """redis.Redis on an endpoint, retrying connection errors, timeouts and READONLY with backoff.

    Each retry reconnects through the endpoint (the DNS name on AWS), which by then leads to the new
    primary; the waits grow exponentially (50 ms, 100 ms, ... capped at 1 s) with random jitter, so
    that a thousand clients do not reconnect in the same millisecond.
    """
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    kwargs.setdefault("socket_timeout", 2)
    kwargs.setdefault("socket_connect_timeout", 1)
    kwargs.setdefault("retry", Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries))
    kwargs.setdefault("retry_on_error", [redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError])
    return cpc.redis_at(endpoint, **kwargs)


class AckWriter(threading.Thread):
    """Writes <prefix>:<i> = i in a loop; `acked` lists the keys whose write was acknowledged.

    Acknowledged means answered OK, or with `wait_replicas` also confirmed by that many replicas
    (WAIT n 500 on the same connection). Stops on `stop.set()`, after `max_writes` or `max_seconds`.
    """

    def __init__(self, client: Any, prefix: str, wait_replicas: int = 0, max_writes: int = 5000,
                 max_seconds: float = 30.0):
        super().__init__(daemon=True)
        self.client, self.prefix, self.wait_replicas = client, prefix, wait_replicas
        self.max_writes, self.max_seconds = max_writes, max_seconds
        self.acked: list[str] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        from redis.exceptions import RedisError

        deadline = time.monotonic() + self.max_seconds
        for i in range(self.max_writes):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            key = f"{self.prefix}:{i}"
            try:
                if self.wait_replicas:
                    ok, copies = self.client.pipeline(transaction=False).set(key, i).wait(
                        self.wait_replicas, 500).execute()
                    ok = bool(ok) and copies >= self.wait_replicas
                else:
                    ok = bool(self.client.set(key, i))
                if ok:
                    self.acked.append(key)
            except RedisError:  # a failover in progress: not acknowledged, carry on
                self.errors += 1
                time.sleep(0.05)
            time.sleep(0.001)

    def wait_acked(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            if time.monotonic() > deadline or not self.is_alive():
                raise TimeoutError(f"only {len(self.acked)} writes of {self.prefix} were acknowledged")
            time.sleep(0.02)

    def finish(self, more: int = 20) -> list[str]:
        """Let `more` writes succeed after the event, stop, and return the acknowledged keys."""
        with contextlib.suppress(TimeoutError):  # a writer past its limits has stopped already
            self.wait_acked(len(self.acked) + more)
        self.stop.set()
        self.join(timeout=10)
        return self.acked

    def lost(self, client: Any) -> list[str]:
        """The acknowledged keys that `client` (the new primary) does not have."""
        out: list[str] = []
        for i in range(0, len(self.acked), 500):
            chunk = self.acked[i:i + 500]
            out += [k for k, v in zip(chunk, client.mget(chunk), strict=True) if v is None]
        return out


def primary_member(ec: Any, group_id: str) -> dict[str, Any]:
    g = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    return next(m for m in g["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "primary")


def kill_primary(ec: Any, group_id: str) -> str:
    """SIGKILL the process of the group's primary (cluster mode disabled); returns its member id."""
    member = primary_member(ec, group_id)
    svc = services.get(f"aws-rg-{group_id}")
    if svc is None:
        raise RuntimeError(f"{group_id} has no engines on this machine")
    node = next(n for n in svc.nodes if n.port == member["ReadEndpoint"]["Port"])
    os.kill(node.pid, signal.SIGKILL)
    return member["CacheClusterId"]


def wait_recovered(ec: Any, group_id: str, member: str, since: datetime, timeout: float = 60.0) -> set[str]:
    """Until the control plane has replaced `member` (an event after `since`) and the group is
    available again; returns the group statuses seen meanwhile."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        g = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
        seen.add(g["Status"])
        events = [e["Message"] for e in ec.describe_events(SourceIdentifier=member, Duration=60)["Events"]
                  if e["Date"] >= since]
        if g["Status"] == "available" and "Finished recovery for cache nodes 0001" in events:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"{group_id} did not recover {member} within {timeout:.0f} s")


def compare_failovers(ec: Any, group_id: str) -> list[dict[str, Any]]:
    """A planned failover, then a crash of the primary, with writers running through the primary
    endpoint: how many writes each one acknowledged and how many of those the group lost."""
    g = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    endpoint = g["NodeGroups"][0]["PrimaryEndpoint"]
    rows = []
    for event in ("planned failover (TestFailover)", "crash (kill -9 of the primary)"):
        writers = [AckWriter(resilient_client(endpoint), f"ha:{len(rows)}:ok"),
                   AckWriter(resilient_client(endpoint), f"ha:{len(rows)}:wait", wait_replicas=1)]
        for w in writers:
            w.start()
        for w in writers:
            w.wait_acked(50)
        started = time.perf_counter()
        if event.startswith("planned"):
            ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
            cpc.wait_for(ec, replication_group_id=group_id, timeout=60)
        else:
            since = datetime.now(timezone.utc)
            wait_recovered(ec, group_id, kill_primary(ec, group_id), since)
        seconds = time.perf_counter() - started
        for w in writers:
            w.finish()
        check = cpc.redis_at(endpoint)
        for w, ack in zip(writers, ("OK", "OK + WAIT 1"), strict=True):
            rows.append({"event": event, "acknowledged by": ack, "writes acknowledged": len(w.acked),
                         "acknowledged but lost": len(w.lost(check)), "write errors": w.errors,
                         "seconds": round(seconds, 1)})
    return rows
