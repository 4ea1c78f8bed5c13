"""The local AWS endpoint killed in the middle of a create: its next start leaves no engine unlisted.

A `kill -9` of the endpoint while `create-replication-group` is still starting engines leaves processes
that no record names (services.json has no service for them yet). The next start of the endpoint
stops them before it answers its first request, so `helpers status` and the processes agree again, and
starts the group's engines again from its kept record.
"""

from __future__ import annotations

import os
import signal
import time

import psutil

from helpers.aws import endpoint as localaws
from helpers.runtime import process, services


def _engines_of(prefix: str) -> list[psutil.Process]:
    """Live engine processes started for the API's resources (their config lives in services/aws-...)."""
    return [p for p in process.state_dir_processes() if p.name() != "python" and any(
        prefix in arg for arg in [*p.cmdline(), p.cwd()])]


def test_kill_9_in_the_middle_of_a_create_leaves_nothing_unlisted(isolated_home):
    services.start("aws")
    ec = localaws.client("elasticache")
    ec.create_replication_group(ReplicationGroupId="crash", ReplicationGroupDescription="killed mid-create",
                                Engine="redis", CacheNodeType="cache.t3.micro", NumNodeGroups=3,
                                ReplicasPerNodeGroup=1)
    aws = services.get("aws")
    endpoint = psutil.Process(aws.nodes[0].pid)
    deadline = time.monotonic() + 60
    while not _engines_of("aws-rg-crash") and time.monotonic() < deadline:  # engines are starting
        time.sleep(0.05)
    assert _engines_of("aws-rg-crash"), "the create never started an engine"
    os.kill(endpoint.pid, signal.SIGKILL)
    process.wait_gone(endpoint, 10)
    half_made = [p.pid for p in _engines_of("aws-rg-crash")]
    assert half_made, "the create had already stopped its engines: nothing was left half-made"
    assert {p.pid for p in services.unrecorded_processes()} & set(half_made), "the half-made engines are listed"

    services.start("aws")  # the group's record is read back; the engines its dead create left are stopped

    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in half_made) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in half_made if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE], "half-made engines still run"
    # The group's record outlived the endpoint (it is kept in the state directory): its create starts over
    # with engines of its own, as AWS finishes a create, and then every engine is recorded.
    localaws.client("elasticache").get_waiter("replication_group_available").wait(
        ReplicationGroupId="crash", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert not services.unrecorded_processes()
    # The endpoint's output, or its log file (logs/aws.log where the lab keeps one per entry point)
    log = [*(isolated_home / "services" / "aws").glob("*.log"), *(isolated_home / "logs").glob("aws*.log")]
    assert any("was still starting" in p.read_text() for p in log), "the endpoint said what it stopped"
