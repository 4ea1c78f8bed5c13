"""helpers.topics.practices: tokens, backoff, prices and request shapes offline; clients against a real server."""

from __future__ import annotations

import re
import time

import pytest
import redis
from redis.backoff import EqualJitterBackoff, ExponentialBackoff

from helpers.topics import practices

# --- offline -----------------------------------------------------------------------------------------

def test_iam_token_is_a_presigned_connect_request_without_scheme():
    token = practices.iam_auth_token("app-1", "my-cache", region="eu-west-1")
    parts = practices.parse_token(token)
    assert not token.startswith("http") and token.startswith("my-cache/?Action=connect&User=app-1&")
    assert parts["host"] == "my-cache" and parts["Action"] == "connect" and parts["User"] == "app-1"
    assert parts["X-Amz-Expires"] == "900" and parts["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert re.fullmatch(r"[^/]+/\d{8}/eu-west-1/elasticache/aws4_request", parts["X-Amz-Credential"])
    assert re.fullmatch(r"[0-9a-f]{64}", parts["X-Amz-Signature"])
    assert "ResourceType" not in parts


def test_serverless_token_names_the_resource_type():
    parts = practices.parse_token(practices.iam_auth_token("app-1", "my-cache", serverless=True))
    assert parts["ResourceType"] == "ServerlessCache"


def test_credential_provider_reuses_then_renews_its_token():
    provider = practices.IAMCredentialProvider("app-1", "my-cache", refresh_s=0.05)
    user, first = provider.get_credentials()
    assert provider.get_credentials() == (user, first) and provider.tokens_made == 1
    time.sleep(1.1)  # a new second: the signature's timestamp changes
    _, second = provider.get_credentials()
    assert provider.tokens_made == 2 and second != first


def test_backoff_schedule_with_jitter_stays_within_half_and_all():
    plain = practices.backoff_schedule(ExponentialBackoff(cap=0.5, base=0.02), 8)
    assert plain == sorted(plain) and plain[-1] == 0.5
    for _ in range(20):
        jitter = practices.backoff_schedule(EqualJitterBackoff(cap=0.5, base=0.02), 8)
        assert all(e / 2 <= j <= e for e, j in zip(plain, jitter, strict=True))


def test_call_with_deadline_reports_blocked_and_finished_calls():
    slow = practices.call_with_deadline(lambda: time.sleep(0.5), 0.05)
    assert not slow["finished"] and slow["outcome"] == "still waiting"
    slow["thread"].join(2)
    assert slow["detail"]["outcome"] == "answered"
    failing = practices.call_with_deadline(lambda: 1 / 0, 1.0)
    assert failing["finished"] and failing["outcome"] == "ZeroDivisionError"


def test_price_table_is_dated_and_says_what_is_confirmed():
    text = practices.PRICES.read_text()
    assert "us-east-1" in text and "November 2026" in text
    rows = practices.load_prices()
    assert {r["status"] for r in rows} == {"confirmed", "unconfirmed"}
    assert practices.price(rows, "redis", "serverless", "data_gb_hour") == 0.125
    assert "valkey on_demand cache.r7g.large" in practices.unconfirmed(rows)
    with pytest.raises(KeyError):
        practices.price(rows, "redis", "on_demand", "cache.x99.huge")


def test_serverless_bill_counts_ecpus_per_kilobyte_and_the_minimum():
    rows = practices.load_prices()
    bill = practices.serverless_monthly(rows, "redis", data_gb=2, requests_per_s=100, kb_per_request=3)
    assert bill["storage"] == pytest.approx(2 * 730 * 0.125)
    assert bill["compute"] == pytest.approx(100 * 3600 * 730 * 3 / 1e6 * 0.0034)
    tiny = practices.serverless_monthly(rows, "redis", data_gb=0.01, requests_per_s=1, kb_per_request=0.2)
    assert tiny["storage"] == pytest.approx(1 * 730 * 0.125), "the metered minimum is 1 GB"
    assert tiny["compute"] == pytest.approx(3600 * 730 / 1e6 * 0.0034), "at least one ECPU per request"


def test_compare_costs_orders_a_steady_workload():
    rows = practices.load_prices()
    steady = {"node_type": "cache.r7g.large", "nodes": 2, "data_gb": 8, "requests_per_s": 2000, "kb_per_request": 1}
    costs = practices.compare_costs(rows, "valkey", steady)
    assert costs["reserved_1y"] < costs["on_demand"] < costs["serverless"]
    assert costs["on_demand"] == pytest.approx(2 * 0.1752 * 730)


def test_request_shapes_are_validated_against_aws_model():
    good = {"ServiceNamespace": "elasticache", "ResourceId": "replication-group/x",
            "ScalableDimension": "elasticache:replication-group:Replicas", "MinCapacity": 1, "MaxCapacity": 5}
    assert practices.validate_request("application-autoscaling", "RegisterScalableTarget", good) == []
    errors = practices.validate_request("application-autoscaling", "RegisterScalableTarget",
                                        {k: v for k, v in good.items() if k != "ScalableDimension"})
    assert errors and "ScalableDimension" in errors[0]
    assert "elasticache:replication-group:NodeGroups" in practices.enum_values("application-autoscaling",
                                                                                "ScalableDimension")
    assert practices.has_shape("elasticache", "NodeGroupsPerReplicationGroupQuotaExceededFault")
    assert not practices.has_shape("elasticache", "NoSuchShape")


# --- against real servers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def svc():
    from helpers import start

    return start("redis", name="test-practices")


def test_connection_costs_count_connections_on_the_server(svc):
    costs = practices.connection_costs(svc, n=10)
    assert costs["pooled_connections"] == 0 and costs["new_connections"] == 10
    assert costs["new_ms"] > costs["pooled_ms"]


def test_paused_node_times_out_only_with_a_socket_timeout(svc):
    bounded = redis.Redis(host=svc.host, port=svc.port, socket_timeout=0.2, retry=practices.no_retry())
    bounded.ping()
    with practices.paused(svc):
        result = practices.call_with_deadline(lambda: bounded.ping(), 3.0)
    assert result["outcome"] == "TimeoutError" and result["seconds"] < 2.0
    assert bounded.ping()


def test_tls_migration_preferred_then_required():
    from helpers.runtime import engines

    svc = practices.plaintext_only("test-practices-tls")
    plain = redis.Redis(host=svc.host, port=svc.port, retry=practices.no_retry())
    assert practices.try_ping(plain) == "ok"
    port = engines.free_port()
    practices.enable_tls_preferred(svc, port)
    secure = practices.tls_client(svc, port, retry=practices.no_retry())
    assert practices.try_ping(secure) == "ok" and practices.try_ping(plain) == "ok"
    assert practices.require_tls(svc, port) == 1
    assert practices.try_ping(plain) == "ConnectionError" and practices.try_ping(secure) == "ok"
    assert not practices.plaintext_open(svc)
    again = practices.plaintext_only("test-practices-tls")  # a later run starts from plaintext again
    assert practices.plaintext_open(again)
