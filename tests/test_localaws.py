"""The AWS guard: every SDK call from the lab goes to the local endpoint unless a user opts in."""

from __future__ import annotations

import os

import boto3
import pytest

from helpers.aws import endpoint as localaws


def test_guard_points_plain_boto3_at_the_local_endpoint(isolated_home, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    url = localaws.endpoint()
    assert url.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing" and "AWS_PROFILE" not in os.environ
    client = boto3.client("elasticache")  # no endpoint given: the environment decides
    assert client.meta.endpoint_url == url
    assert client.describe_cache_clusters()["CacheClusters"] == []


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
