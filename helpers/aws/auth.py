"""The learner's AWS credentials for the local endpoint, and the endpoint's check of every request.

On a machine shared by several people, loopback is not a boundary: anyone could send requests to
another learner's local AWS endpoint (and through it create, read or delete their caches, or read
their AUTH tokens). So each state directory has its own generated access key and secret, in
`aws-credentials` (mode 0600, in the 0700 state directory), which boto3 and the AWS CLI read
through AWS_SHARED_CREDENTIALS_FILE; the secret is never put in the environment, on a command
line or in a log. The endpoint (`python -m helpers.aws.server`) verifies each request's SigV4
signature against that key, as AWS does, and answers a missing or wrong one with AWS's errors
(MissingAuthenticationToken, InvalidClientTokenId, SignatureDoesNotMatch: HTTP 403;
IncompleteSignature: HTTP 400).
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import string
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

# The former shared fake key: a state directory that still has it gets its own key instead.
LEGACY_KEY = "testing"
CREDENTIALS_FILE = "aws-credentials"
# Answers 200 without a signature and tells nothing: the readiness probe of the endpoint.
READY_PATH = "/elasticache-lab/ready"
ALGORITHM = "AWS4-HMAC-SHA256"


def _generate() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))  # AWS's shape: 20 characters
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return key_id, secret


def _read(path: Path) -> tuple[str, str] | None:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
        key_id = parser.get("default", "aws_access_key_id").strip()
        secret = parser.get("default", "aws_secret_access_key").strip()
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    if not key_id or not secret or key_id == LEGACY_KEY:
        return None
    return key_id, secret


def credentials(home: Path) -> tuple[str, str]:
    """(access key id, secret access key) of the state directory `home`, generated on first use.

    Written 0600 in one step (a temporary file linked into place, so two processes starting at
    once agree on one key: the second link fails and it reads the first one's).
    """
    path = home / CREDENTIALS_FILE
    found = _read(path)
    if found:
        return found
    key_id, secret = _generate()
    text = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    fd, tmp = tempfile.mkstemp(dir=home, prefix=f".{CREDENTIALS_FILE}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if path.exists() and _read(path) is None:  # the old shared key, or a damaged file: replaced
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    found = _read(path)
    if not found:
        raise OSError(f"cannot write the lab's AWS credentials in {home}")
    return found


# --- signing (the lab's own calls to the endpoint's extra APIs) -----------------------------

def signed_headers(method: str, url: str, body: bytes, home: Path, *, service: str = "elasticache",
                   region: str = "us-east-1", headers: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a SigV4-signed request with the learner's key (botocore signs it)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key_id, secret = credentials(home)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    return dict(request.headers.items())


# --- verifying (the endpoint) ---------------------------------------------------------------

_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-fA-F]+)")

# AWS's common errors (docs.aws.amazon.com .../CommonErrors, 2026-11): 403 but IncompleteSignature (400).
MESSAGES = {
    "MissingAuthenticationToken": "The request must contain either a valid (registered) AWS access key ID or "
                                  "X.509 certificate.",
    "InvalidClientTokenId": "The security token included in the request is invalid.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided. "
                             "Check your AWS Secret Access Key and signing method. Consult the service "
                             "documentation for details.",
    "IncompleteSignature": "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
}


class AuthFailure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if out:
                out.pop()
        elif part != ".":
            out.append(part)
    norm = "/".join(out)
    if path.endswith("/") and not norm.endswith("/"):
        norm += "/"
    return norm if norm.startswith("/") else "/" + norm


def _canonical_query(query: str, drop_signature: bool) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if drop_signature:
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def verify(environ: dict[str, Any], body: bytes, key_id: str, secret: str) -> None:
    """Raise AuthFailure(code) unless the request is SigV4-signed with (key_id, secret)."""
    query = environ.get("QUERY_STRING", "")
    qs = dict(parse_qsl(query, keep_blank_values=True))
    auth = environ.get("HTTP_AUTHORIZATION", "")
    presigned = "X-Amz-Credential" in qs and not auth
    if presigned:
        credential, signed, signature = qs.get("X-Amz-Credential", ""), qs.get("X-Amz-SignedHeaders", ""), \
            qs.get("X-Amz-Signature", "")
        amz_date = qs.get("X-Amz-Date", "")
    else:
        if not auth:
            raise AuthFailure("MissingAuthenticationToken")
        match = _AUTH_RE.search(auth)
        if not match:
            raise AuthFailure("IncompleteSignature" if auth.startswith(ALGORITHM) else "MissingAuthenticationToken")
        credential, signed, signature = match.groups()
        amz_date = environ.get("HTTP_X_AMZ_DATE") or ""
    scope_parts = credential.split("/")
    if len(scope_parts) != 5 or scope_parts[0] != key_id:
        raise AuthFailure("InvalidClientTokenId")
    if not amz_date or not signature:
        raise AuthFailure("IncompleteSignature")
    _, date, region, service, terminator = scope_parts
    names = [h for h in signed.lower().split(";") if h]
    canonical_headers = "".join(f"{h}:{' '.join((_header(environ, h) or '').split())}\n" for h in names)
    if presigned:
        payload = "UNSIGNED-PAYLOAD"
    else:
        payload = environ.get("HTTP_X_AMZ_CONTENT_SHA256") or hashlib.sha256(body).hexdigest()
    path = environ.get("PATH_INFO", "") or "/"
    # botocore quotes the (normalized) path once more for every service but S3: both are accepted.
    uris = {quote(_remove_dot_segments(path), safe="/~"), quote(path, safe="/~"),
            quote(quote(path, safe="/~"), safe="/~")}
    key = _sign(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _sign(key, part)
    scope = "/".join(scope_parts[1:])
    for uri in uris:
        canonical = "\n".join([environ.get("REQUEST_METHOD", "GET"), uri, _canonical_query(query, presigned),
                               canonical_headers, ";".join(names), payload])
        to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature.lower()):
            return
    raise AuthFailure("SignatureDoesNotMatch")


def _error_response(environ: dict[str, Any], code: str, start_response: Callable) -> list[bytes]:
    request_id = str(uuid.uuid4())
    content_type = environ.get("CONTENT_TYPE", "") or ""
    message = MESSAGES[code]
    if "json" in content_type or "cbor" in content_type:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    else:
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    start_response("400 Bad Request" if code == "IncompleteSignature" else "403 Forbidden", headers)
    return [body]


def require_signature(app: Callable, home: Path) -> Callable:
    """WSGI middleware: every request but READY_PATH must be signed with the learner's key."""
    cache: dict[str, Any] = {}

    def current_key() -> tuple[str, str]:
        path = home / CREDENTIALS_FILE
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp is None or cache.get("stamp") != stamp:
            cache["key"] = credentials(home)
            st = path.stat()
            cache["stamp"] = (st.st_mtime_ns, st.st_size, st.st_ino)
        return cache["key"]

    def middleware(environ: dict[str, Any], start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == READY_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            body = stream.read(int(length)) if stream is not None and int(length) else b""
        elif stream is not None and environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            verify(environ, body, *current_key())
        except AuthFailure as failure:
            return _error_response(environ, failure.code, start_response)
        return app(environ, start_response)

    return middleware
