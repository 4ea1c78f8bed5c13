"""The AWS guard: every SDK call from the lab goes to the local endpoint unless a user opts in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from helpers.aws import endpoint as localaws


def test_guard_points_plain_boto3_at_the_local_endpoint(isolated_home, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    url = localaws.endpoint()
    assert url.startswith("http://127.0.0.1:")
    # The learner's generated key comes from the private credentials file, never from the environment.
    assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_PROFILE" not in os.environ
    client = boto3.client("elasticache")  # no endpoint given: the environment decides
    assert client.meta.endpoint_url == url
    assert client._request_signer._credentials.access_key == localaws.credentials()[0] != "AKIAREALKEY"
    assert client.describe_cache_clusters()["CacheClusters"] == []


def test_settings_that_redirect_calls_are_cleared(isolated_home, monkeypatch):
    """Service-specific endpoints, "ignore configured endpoints", FIPS/dual-stack and CA overrides
    would send a plain boto3 client or the AWS CLI to a real AWS endpoint: the guard clears them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELASTICACHE", "https://elasticache.us-east-1.amazonaws.com")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "https://sts.amazonaws.com")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    monkeypatch.setenv("AWS_CA_BUNDLE", "/tmp/other-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    url = localaws.endpoint()
    for name in ("elasticache", "sts", "ec2"):
        assert boto3.client(name).meta.endpoint_url == url, name
    assert os.environ["AWS_CA_BUNDLE"] == localaws._blocked_ca_file()  # the learner's, with no certificate
    assert "127.0.0.1" in os.environ["NO_PROXY"].split(",")
    assert boto3.client("elasticache").describe_cache_clusters()["CacheClusters"] == []
    env = {k: v for k, v in os.environ.items()}
    out = subprocess.run([str(Path(sys.executable).with_name("aws")), "elasticache", "describe-cache-clusters",
                          "--output", "json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and '"CacheClusters"' in out.stdout, out.stderr[-1000:]
    # AWS CLI v1 sends sqs to a fixed https://queue.amazonaws.com whatever AWS_ENDPOINT_URL says: the
    # CA bundle without a certificate stops it on this machine, before a request is sent.
    out = subprocess.run([str(Path(sys.executable).with_name("aws")), "sqs", "list-queues", "--debug"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0 and "queue.amazonaws.com" in out.stderr
    assert "Response headers" not in out.stderr  # no answer came from AWS


def test_before_start_calls_go_nowhere(isolated_home):
    localaws.guard()
    assert os.environ["AWS_ENDPOINT_URL"] == localaws.UNSTARTED_ENDPOINT
    client = boto3.client("sts")
    assert client.meta.endpoint_url == localaws.UNSTARTED_ENDPOINT


def test_real_aws_needs_an_explicit_opt_in(isolated_home, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    monkeypatch.setenv(localaws.REAL_AWS_OPT_IN, "1")
    localaws.guard()
    assert os.environ["AWS_ENDPOINT_URL"] == "https://example.invalid"


@pytest.mark.parametrize("service", ["elasticache", "ec2", "cloudwatch", "kms", "secretsmanager", "sns"])
def test_each_service_the_course_uses_answers_locally(isolated_home, service):
    client = localaws.client(service)
    calls = {"elasticache": lambda c: c.describe_cache_clusters(), "ec2": lambda c: c.describe_vpcs(),
             "cloudwatch": lambda c: c.list_metrics(), "kms": lambda c: c.list_keys(),
             "secretsmanager": lambda c: c.list_secrets(), "sns": lambda c: c.list_topics()}
    assert calls[service](client)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_endpoint_refuses_requests_not_signed_with_the_learner_s_key(isolated_home):
    """Another user of the machine can reach the loopback port: without the learner's key (0600 in
    the 0700 state directory) every request gets AWS's 403 errors."""
    import stat
    import urllib.error
    import urllib.request

    import botocore

    url = localaws.endpoint()
    key_id, secret = localaws.credentials()
    assert key_id.startswith("AKIA") and len(key_id) == 20 and len(secret) == 40
    creds = localaws.state.home() / "aws-credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert secret not in os.environ.values()
    req = urllib.request.Request(url + "/", data=b"Action=DescribeCacheClusters&Version=2015-02-02",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 403 and b"MissingAuthenticationToken" in err.value.read()
    for key, wrong_secret, code in (("testing", "testing", "InvalidClientTokenId"),
                                    ("AKIAOTHERLEARNER0000", secret, "InvalidClientTokenId"),
                                    (key_id, "not-the-secret", "SignatureDoesNotMatch")):
        client = boto3.client("elasticache", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id=key, aws_secret_access_key=wrong_secret)
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            client.describe_cache_clusters()
        assert exc.value.response["Error"]["Code"] == code
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # JSON-protocol services get the error in their shape too.
    kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id=key_id, aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        kms.list_keys()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # The learner's own clients sign with it, without being told.
    assert localaws.client("elasticache").describe_cache_clusters()["CacheClusters"] == []
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []
    localaws.reset()
    assert isinstance(localaws.apply_pending(), dict)


def test_helpers_env_never_prints_the_secret(isolated_home):
    from helpers.tools.shellenv import lab_environment

    exports, unset = lab_environment(start=False)
    _key_id, secret = localaws.credentials()
    assert secret not in "".join(exports.values())
    assert "AWS_ACCESS_KEY_ID" in unset and "AWS_SECRET_ACCESS_KEY" in unset
    assert exports["AWS_SHARED_CREDENTIALS_FILE"].endswith("aws-credentials")


def test_a_failed_background_operation_leaves_its_traceback_in_the_endpoint_s_log(isolated_home, tmp_path,
                                                                                  monkeypatch):
    """A create whose engine cannot start fails in the control plane's background thread: the API says so
    through the cluster's status, and the traceback is in logs/aws.log of the state directory (the log the
    endpoint's entry point sets up), not lost nor in a file of its own."""
    fake = tmp_path / "memcached"  # answers -V like this machine's memcached, exits when started
    fake.write_text('#!/bin/sh\nif [ "$1" = "-V" ]; then echo "memcached 1.6.18"; exit 0; fi\n'
                    'echo "this memcached cannot start" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("ELASTICACHE_LAB_MEMCACHED", str(fake))
    ec = localaws.client("elasticache")
    ec.create_cache_cluster(CacheClusterId="wont-start", Engine="memcached", CacheNodeType="cache.t4g.micro",
                            NumCacheNodes=1)
    from helpers.runtime.topologies.nodes import wait_for

    def settled() -> str | None:
        status = ec.describe_cache_clusters(CacheClusterId="wont-start")["CacheClusters"][0]["CacheClusterStatus"]
        return None if status == "creating" else status

    status = wait_for(settled, 60, "the create to fail", interval=0.2)
    assert status == "incompatible-parameters"
    log = (isolated_home / "logs" / "aws.log").read_text()
    assert "create-wont-start failed" in log
    assert "Traceback (most recent call last)" in log and "exited while starting" in log
    assert not (isolated_home / "controlplane.log").exists()
