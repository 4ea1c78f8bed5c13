"""The local AWS endpoint checks SigV4 as AWS does: real HTTP requests, signed by botocore's signer.

What AWS answers is taken from its documentation ("Troubleshoot signed requests for AWS APIs", IAM
User Guide; "Handling dates in Signature Version 4", 2026-11): a signature covers the body; an
X-Amz-Date more than 15 minutes from the server's clock is refused with SignatureDoesNotMatch (HTTP
403), "Signature expired: ... is now earlier than ..." or "Signature not yet current: ... is still
later than ..."; the credential scope must name the request's date, a valid region and the service.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers.aws import endpoint as localaws
from helpers.runtime import services

FORM = "application/x-www-form-urlencoded; charset=utf-8"
VERSION = "2015-02-02"


def _form(**params: str) -> bytes:
    return urllib.parse.urlencode({**params, "Version": VERSION}).encode()


def _sign(url: str, body: bytes, *, service: str = "elasticache", region: str = "us-east-1",
          shift: datetime.timedelta = datetime.timedelta(0), headers: dict[str, str] | None = None) -> dict[str, str]:
    """botocore's SigV4 headers for a POST of `body`, signed `shift` away from now."""
    key_id, secret = localaws.credentials()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": FORM, **(headers or {})})
    with _clock(shift):
        SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    return dict(request.headers.items())


@contextlib.contextmanager
def _clock(shift: datetime.timedelta):
    """botocore's signer's clock, `shift` away from now."""
    real = botocore.auth.get_current_datetime
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) + shift)
        yield


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def local(isolated_home):
    url = localaws.endpoint()
    return url + "/"


def _parameter_groups() -> list[str]:
    client = localaws.client("elasticache")
    return [g["CacheParameterGroupName"] for g in client.describe_cache_parameter_groups()["CacheParameterGroups"]]


def test_a_signed_request_cannot_carry_another_body(local):
    """A captured DescribeCacheParameterGroups, its headers kept (with an X-Amz-Content-Sha256 of its own
    body), sent with a DeleteCacheParameterGroup body: AWS hashes the body it got, so the signature
    fails (SignatureDoesNotMatch, 403) and nothing is deleted."""
    client = localaws.client("elasticache")
    client.create_cache_parameter_group(CacheParameterGroupName="keep-me", CacheParameterGroupFamily="redis7",
                                        Description="proves a swapped body deletes nothing")
    describe = _form(Action="DescribeCacheParameterGroups")
    headers = _sign(local, describe)
    headers["X-Amz-Content-Sha256"] = hashlib.sha256(describe).hexdigest()
    assert _post(local, describe, headers)[0] == 200  # the captured request itself is fine
    delete = _form(Action="DeleteCacheParameterGroup", CacheParameterGroupName="keep-me")
    status, text = _post(local, delete, headers)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text, text
    # Signed with the header in the signature too: the same.
    signed_too = _sign(local, describe, headers={"X-Amz-Content-Sha256": hashlib.sha256(describe).hexdigest()})
    status, text = _post(local, delete, signed_too)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text, text
    # A body of the same request with a claimed hash that is not its own: refused as well.
    headers = _sign(local, describe)
    headers["X-Amz-Content-Sha256"] = "0" * 64
    assert _post(local, describe, headers)[0] == 403
    # UNSIGNED-PAYLOAD is S3's (and presigned URLs'): not for a signed body.
    headers = _sign(local, delete)
    headers["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD"
    assert _post(local, delete, headers)[0] == 403
    assert "keep-me" in _parameter_groups()
    # The learner's own correctly signed request still works, and deletes it; boto3 signs as before.
    status, text = _post(local, delete, _sign(local, delete))
    assert status == 200, text
    assert "keep-me" not in _parameter_groups()
    assert boto3.client("elasticache").describe_cache_clusters()["CacheClusters"] == []


@pytest.mark.parametrize(("minutes", "message"), [(-20, "Signature expired: "), (20, "Signature not yet current: ")])
def test_a_request_signed_more_than_15_minutes_away_is_refused(local, minutes, message):
    body = _form(Action="DescribeCacheClusters")
    headers = _sign(local, body, shift=datetime.timedelta(minutes=minutes))
    status, text = _post(local, body, headers)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text, text
    assert message in text and ("- 15 min.)" if minutes < 0 else "+ 15 min.)") in text, text
    # Within the window (a clock a few minutes off) a request is answered, and the same signed request
    # sent again is answered again, as on AWS: SigV4 has no nonce (docs/local-vs-aws.md).
    headers = _sign(local, body, shift=datetime.timedelta(minutes=minutes // 5))
    assert _post(local, body, headers)[0] == 200
    assert _post(local, body, headers)[0] == 200


def test_the_scope_must_be_a_valid_region_and_a_service_the_endpoint_serves(local):
    body = _form(Action="DescribeCacheClusters")
    status, text = _post(local, body, _sign(local, body, region="notaregion"))
    assert status == 403 and "Credential should be scoped to a valid region" in text, text
    status, text = _post(local, body, _sign(local, body, service="nosuchservice"))
    assert status == 403 and "Credential should be scoped to correct service" in text, text
    # Another region and CloudWatch's signing name ("monitoring") are served.
    assert _post(local, body, _sign(local, body, region="eu-west-1"))[0] == 200
    metrics = urllib.parse.urlencode({"Action": "ListMetrics", "Version": "2010-08-01"}).encode()
    assert _post(local, metrics, _sign(local, metrics, service="monitoring"))[0] == 200


def test_presigned_urls_work_without_a_body_and_expire(local):
    client = localaws.client("elasticache")
    url = client.generate_presigned_url("describe_cache_clusters", Params={}, ExpiresIn=60, HttpMethod="GET")
    with urllib.request.urlopen(url, timeout=60) as resp:
        assert resp.status == 200 and b"DescribeCacheClustersResponse" in resp.read()
    # The same URL carrying a body: a presigned URL signs no body.
    req = urllib.request.Request(url, data=_form(Action="DeleteCacheCluster", CacheClusterId="x"), method="GET",
                                 headers={"Content-Type": FORM})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=60)
    assert err.value.code == 403
    with _clock(-datetime.timedelta(minutes=2)):
        old = client.generate_presigned_url("describe_cache_clusters", Params={}, ExpiresIn=60, HttpMethod="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(old, timeout=60)
    assert err.value.code == 403 and b"Signature expired" in err.value.read()


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _send_large(port: int, head: bytes, size: int) -> tuple[str, float]:
    """Send a request head and then `size` bytes of body from another thread; return the status line
    the server answers (it may answer before the body is sent) and how long that took."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head)

    def send_body() -> None:
        chunk = b"A" * (1 << 20)
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk[:size - sent])
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: it owes no more reading

    start = time.monotonic()
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    finally:
        elapsed = time.monotonic() - start
        sender.join(timeout=120)
        sock.close()
    return answer.split(b"\r\n", 1)[0].decode(), elapsed


def test_a_large_body_is_refused_without_being_read(local):
    """50 MB unsigned, and 50 MB with a valid-looking Authorization header: answered at once (403,
    413), and the server's peak memory does not grow by the body's size."""
    svc = services.get("aws")
    pid, port = svc.nodes[0].pid, svc.port
    assert localaws.client("elasticache").describe_cache_clusters()  # warm: imports done
    size = 50 * 1024 * 1024
    signed = _sign(local, b"Action=DescribeCacheClusters")
    for head, expected in (
        (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {FORM}\r\nContent-Length: {size}\r\n\r\n",
         "403"),
        ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items() if k.lower() != "content-length")
         + f"Content-Length: {size}\r\n\r\n", "413"),
    ):
        before = _status(pid, "VmRSS")
        try:  # reset the peak (VmHWM) to the current RSS: Linux's clear_refs "5"
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass
        status, elapsed = _send_large(port, head.encode(), size)
        peak = _status(pid, "VmHWM")
        assert f" {expected} " in status + " ", status
        assert peak - before < 30 * 1024 * 1024, f"the server's peak RSS grew by {(peak - before) >> 20} MB"
        assert elapsed < 30, elapsed
    # A request just over the cap with a correct signature: 413, in AWS's error shape.
    big = b"Action=DescribeCacheClusters&Version=2015-02-02&Pad=" + b"x" * (10 * 1024 * 1024)
    status, text = _post(local, big, _sign(local, big))
    assert status == 413 and "<Code>RequestEntityTooLarge</Code>" in text, text
    # A chunked body (no Content-Length) is read in pieces and refused once it passes the cap.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {k: v for k, v in signed.items() if k.lower() != "content-length"}
    conn.request("POST", "/", body=(b"A" * (1 << 20) for _ in range(12)), headers=headers, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and b"RequestEntityTooLarge" in response.read()
    conn.close()
    # The endpoint is still there and answers its learner.
    assert localaws.client("elasticache").describe_cache_clusters()["ResponseMetadata"]["HTTPStatusCode"] == 200
