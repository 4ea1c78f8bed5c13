"""Client-side helpers for serverless caches: wait for a state, connect over TLS, read the metering."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from helpers.runtime import tls
from helpers.runtime.i18n import translator
from helpers.runtime.notebook import waiting
from helpers.runtime.state import LabError

_ = translator(__name__)


def wait_serverless(ec: Any, name: str, status: str = "available", timeout: float = 120.0,
                    progress: bool | None = None) -> dict[str, Any]:
    """describe-serverless-caches until the cache has `status` (a LabError past `timeout` s); a long wait
    shows a status line in a notebook (`progress`: True/False to choose)."""
    deadline = time.monotonic() + timeout
    last = "?"
    with waiting(_("{name} to be {status}", name=name, status=status), show=progress) as line:
        while time.monotonic() < deadline:
            cache = ec.describe_serverless_caches(ServerlessCacheName=name)["ServerlessCaches"][0]
            last = line.detail = cache["Status"]
            if last == status:
                return cache
            if last == "create-failed":
                raise LabError(f"Serverless cache {name} could not be created (see describe-events).")
            time.sleep(0.5)
    raise LabError(_("Serverless cache {name} is still {status} after {timeout:.0f} s.", name=name, status=last,
                     timeout=timeout))


def wait_serverless_deleted(ec: Any, name: str, timeout: float = 60.0, progress: bool | None = None) -> None:
    deadline = time.monotonic() + timeout
    with waiting(_("{name} to be deleted", name=name), show=progress):
        while time.monotonic() < deadline:
            try:
                ec.describe_serverless_caches(ServerlessCacheName=name)
            except ec.exceptions.ServerlessCacheNotFoundFault:
                return
            time.sleep(0.5)
    raise LabError(f"Serverless cache {name} is still there after {timeout:.0f} s.")


def client(cache: dict[str, Any], *, reader: bool = False, cluster: bool = False, **kwargs: Any) -> Any:
    """A redis-py client to the cache's Endpoint (or ReaderEndpoint) over TLS, verified against the lab's CA
    (the CA the learner passes, as with AWS's). `cluster=True` gives a RedisCluster, as AWS recommends."""
    import redis
    from redis.cluster import RedisCluster

    ep = cache["ReaderEndpoint" if reader else "Endpoint"]
    opts = {**tls.redis_tls_client_kwargs(client_cert=False), "socket_timeout": 10, **kwargs}
    if cluster:
        return RedisCluster(host=ep["Address"], port=ep["Port"], **opts)
    return redis.Redis(host=ep["Address"], port=ep["Port"], **opts)


def metric_sum(cw: Any, name: str, metric: str, since: datetime, stat: str = "Sum") -> float:
    """A serverless cache's metric from the local CloudWatch, summed (or max'd) since `since`."""
    out = cw.get_metric_statistics(Namespace="AWS/ElastiCache", MetricName=metric,
                                   Dimensions=[{"Name": "clusterId", "Value": name}],
                                   StartTime=since,
                                   EndTime=datetime.now(timezone.utc) + timedelta(seconds=60),
                                   Period=60, Statistics=[stat])
    points = out["Datapoints"]
    if not points:
        return 0.0
    return sum(p[stat] for p in points) if stat == "Sum" else max(p[stat] for p in points)


def memcached_client(cache: dict[str, Any], **kwargs: Any) -> Any:
    """A pymemcache Client to a serverless Memcached cache's Endpoint over TLS, verified against the lab's CA
    (one server: the endpoint routes every key itself, so no Auto Discovery and no client-side hashing)."""
    from pymemcache.client.base import Client

    ep = cache["Endpoint"]
    opts = {"tls_context": tls.client_context(client_cert=False), "connect_timeout": 5, "timeout": 10,
            "default_noreply": False, **kwargs}  # replies read: a refused write raises
    return Client((ep["Address"], ep["Port"]), **opts)


def local_timings(name: str, **timings: float) -> dict[str, float]:
    """Shorten the local endpoint's own timings for one serverless cache, so a lab need not wait AWS-like
    times: scale_in_after (s of low load before a shard goes; 10 by default) and metric_period (s between
    its metric publications to the local CloudWatch; 5 by default, 60 on AWS). A local-only setting, not
    an AWS parameter (AWS publishes neither timing): against a real account it changes nothing."""
    from helpers.aws import endpoint as localaws

    if localaws.real_aws_opted_in():
        return {}
    import helpers.runtime.serverless as sl
    from helpers.runtime import state

    return sl.tune(state.service_dir(f"aws-sl-{name.lower()}"), **timings)
