"""The local AWS endpoint (moto in server mode) and the guard that keeps every call local.

Importing `helpers` calls `guard()`: the learner's generated credentials (a private 0600
credentials file, see helpers/aws/auth.py), a default region, a private AWS config file and (once
the endpoint runs) AWS_ENDPOINT_URL are set for this process and everything it starts, so boto3
and the AWS CLI talk to the local endpoint, which refuses requests not signed with that key, and
can never reach a real AWS account. Set ELASTICACHE_LAB_REAL_AWS=1 before starting Python to opt
out on purpose.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from helpers.aws import auth
from helpers.runtime import state

REAL_AWS_OPT_IN = "ELASTICACHE_LAB_REAL_AWS"
REGION = "us-east-1"
# The key the endpoint's own process and a guard without a usable state directory use; requests
# from outside must be signed with the learner's key (auth.credentials), never with this one.
FAKE_KEY = "testing"
# An endpoint nothing listens on: used until the local endpoint is started, so an early call
# fails fast and locally instead of going to AWS.
UNSTARTED_ENDPOINT = "http://127.0.0.1:9"


def real_aws_opted_in() -> bool:
    return os.environ.get(REAL_AWS_OPT_IN, "").lower() in ("1", "true", "yes")


def _config_files() -> dict[str, str]:
    """Private AWS config/credentials files, so a learner's own ~/.aws profiles are never read."""
    home = state.home()
    config = home / "aws-config"
    creds = home / auth.CREDENTIALS_FILE
    if not config.exists():
        state.write_secret(config, f"[default]\nregion = {REGION}\noutput = json\n")
    auth.credentials(home)
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(creds)}


BLOCKED_CA_FILE = "aws-https-blocked.pem"
BLOCKED_CA_TEXT = """\
# Written by the ElastiCache Lab (helpers/aws/endpoint.py). AWS_CA_BUNDLE points here: no certificate,
# so any HTTPS call an AWS SDK or CLI tries fails on this machine before a request is sent. The local
# endpoint is plain HTTP on 127.0.0.1 and never reads this file. It catches what ignores
# AWS_ENDPOINT_URL (AWS CLI v1 sends sqs, emr, rds, docdb, neptune and health to fixed AWS hosts).
# To use a real AWS account on purpose, set ELASTICACHE_LAB_REAL_AWS=1 before starting Python.
"""


def _blocked_ca_file() -> str:
    """A CA bundle with no certificate: HTTPS to a real AWS endpoint fails before anything is sent."""
    path = state.home() / BLOCKED_CA_FILE
    if not path.exists():
        path.write_text(BLOCKED_CA_TEXT)
    return str(path)


def credentials() -> tuple[str, str]:
    """The learner's (access key id, secret access key) for the local endpoint."""
    return auth.credentials(state.home())


def env(endpoint_url: str | None = None) -> dict[str, str]:
    """The environment variables that point boto3 and the AWS CLI at the local endpoint.

    The key itself is not among them: SDKs read it from AWS_SHARED_CREDENTIALS_FILE (0600), so
    `python -m helpers env` never prints the secret (AWS_ACCESS_KEY_ID is in UNSET: it would win).
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url or UNSTARTED_ENDPOINT,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CA_BUNDLE": _blocked_ca_file(),
        **_config_files(),
    }


UNSET = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE",
         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
         "AWS_ROLE_ARN",
         # Settings that would send a call elsewhere than AWS_ENDPOINT_URL, or trust another CA:
         "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
         "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "AWS_STS_REGIONAL_ENDPOINTS")  # AWS_CA_BUNDLE: env() sets it
# Service-specific endpoints (AWS_ENDPOINT_URL_ELASTICACHE, ...) win over AWS_ENDPOINT_URL in botocore.
SERVICE_ENDPOINT_PREFIX = "AWS_ENDPOINT_URL_"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _no_proxy_for_loopback() -> dict[str, str]:
    """A proxy from the environment must not carry calls to the local endpoint off the machine."""
    out = {}
    for key in ("NO_PROXY", "no_proxy"):
        have = [h.strip() for h in os.environ.get(key, "").split(",") if h.strip()]
        out[key] = ",".join(have + [h for h in LOOPBACK_NAMES if h not in have])
    return out


def guard(endpoint_url: str | None = None) -> None:
    """Point this process's AWS SDKs at the local endpoint (unless real AWS was opted into)."""
    if real_aws_opted_in():
        return
    if endpoint_url is None:
        from helpers.runtime import services

        svc = services.get("aws")
        if svc and svc.nodes and svc.nodes[0].alive():
            endpoint_url = f"http://{svc.host}:{svc.port}"
    for key in [*UNSET, *(k for k in os.environ if k.startswith(SERVICE_ENDPOINT_PREFIX))]:
        os.environ.pop(key, None)
    os.environ.update(env(endpoint_url))
    os.environ.update(_no_proxy_for_loopback())
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:  # its default session keeps the credentials it read first (another state directory's)
        boto3.DEFAULT_SESSION = None


def endpoint() -> str:
    """Start (or find) the local AWS endpoint, point this process at it, and return its URL."""
    from helpers.runtime import services

    svc = services.start("aws")
    url = f"http://{svc.host}:{svc.port}"
    guard(url)
    return url


def client(service_name: str, **kwargs: Any) -> Any:
    """A boto3 client for the local endpoint (real AWS only with ELASTICACHE_LAB_REAL_AWS=1)."""
    import boto3

    if real_aws_opted_in():
        return boto3.client(service_name, **kwargs)
    url = endpoint()
    kwargs.setdefault("endpoint_url", url)
    kwargs.setdefault("region_name", REGION)
    if "aws_access_key_id" not in kwargs and "aws_secret_access_key" not in kwargs:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials()
    return boto3.client(service_name, **kwargs)


def reset() -> None:
    """Forget everything the local AWS endpoint holds (moto's reset API)."""
    import urllib.request

    url = endpoint() + "/moto-api/reset"
    req = urllib.request.Request(url, method="POST", headers=auth.signed_headers("POST", url, b"", state.home()))
    urllib.request.urlopen(req, timeout=30).read()


def apply_pending() -> dict[str, list[str]]:
    """Apply every pending ElastiCache modification now (the local stand-in for the maintenance window).

    AWS applies a change made without --apply-immediately in the resource's next maintenance window;
    the local endpoint keeps it in PendingModifiedValues until this is called (or
    `python -m helpers aws apply-pending`). Returns resource id -> the fields applied.
    """
    import json
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode({"Action": "ApplyPendingModifications", "Version": "2015-02-02"}).encode()
    url = endpoint() + "/"
    headers = auth.signed_headers("POST", url, data, state.home(), region=REGION,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    return json.loads(urllib.request.urlopen(req, timeout=60).read() or b"{}")
