"""The learner's AWS credentials for the local endpoint, and the endpoint's check of every request.

On a machine shared by several people, loopback is not a boundary: anyone could send requests to
another learner's local AWS endpoint (and through it create, read or delete their caches, or read
their AUTH tokens). So each state directory has its own generated access key and secret, in
`aws-credentials` (mode 0600, in the 0700 state directory), which boto3 and the AWS CLI read
through AWS_SHARED_CREDENTIALS_FILE; the secret is never put in the environment, on a command
line or in a log. The endpoint (`python -m helpers.aws.server`) verifies each request's SigV4
signature against that key, as AWS does, and answers a missing or wrong one with AWS's errors
(MissingAuthenticationToken, InvalidClientTokenId, SignatureDoesNotMatch: HTTP 403;
IncompleteSignature: HTTP 400): the signature covers the body (the body's own hash, never the one a
header claims), its X-Amz-Date must be within 15 minutes of now, and its credential scope must be of
that date, a valid region, a service the endpoint serves and `aws4_request`. The credential is checked
before the body is read, and no body larger than MAX_BODY is read (413).
"""

from __future__ import annotations

import configparser
import contextlib
import datetime
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import string
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

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

# The whole header, as AWS writes it: anything before or after (a second Credential=, say) is refused,
# so the scope checked here is the one moto routes by (it reads the first Credential= it finds).
_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*"
                      r"Signature=([0-9a-fA-F]+)\s*")
_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-isob-east-1, ...
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
TERMINATOR = "aws4_request"
# AWS refuses a request whose X-Amz-Date is more than 15 minutes from its clock either way ("Signature
# expired" / "Signature not yet current", SignatureDoesNotMatch, HTTP 403: IAM User Guide,
# "Troubleshoot signed requests for AWS APIs"). Within that window the same signed request can be sent
# again, on AWS too: SigV4 has no nonce.
MAX_SKEW = datetime.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800  # seven days: the longest X-Amz-Expires SigV4 allows
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# The largest request body the endpoint reads. No API the course calls takes more: AWS's query APIs
# take a few hundred KB at most (CloudWatch's PutMetricData, among the largest, 1 MB per POST; SNS and
# SQS messages 256 KB), and AWS refuses larger bodies before it reads them (413).
MAX_BODY = 10 * 1024 * 1024
_READ_CHUNK = 64 * 1024

# AWS's common errors (docs.aws.amazon.com .../CommonErrors, 2026-11): 403 but IncompleteSignature (400).
MESSAGES = {
    "MissingAuthenticationToken": "The request must contain either a valid (registered) AWS access key ID or "
                                  "X.509 certificate.",
    "InvalidClientTokenId": "The security token included in the request is invalid.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided. "
                             "Check your AWS Secret Access Key and signing method. Consult the service "
                             "documentation for details.",
    "IncompleteSignature": "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
    "RequestEntityTooLarge": f"Request body must be at most {MAX_BODY} bytes.",
}
STATUS = {"IncompleteSignature": "400 Bad Request", "RequestEntityTooLarge": "413 Request Entity Too Large"}


class AuthFailure(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES[code]


@dataclass(frozen=True)
class Credential:
    """What an Authorization header (or a presigned URL's X-Amz-* parameters) claims, before the body
    is read: checked by `check_credential`, the signature itself by `verify` once the body is in."""

    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    presigned: bool
    expires: int | None = None

    @property
    def scope(self) -> list[str]:
        return self.credential.split("/")

    def authorization(self) -> str:
        """The header as AWS writes it, from the checked parts: what moto routes by."""
        return f"{ALGORITHM} Credential={self.credential}, SignedHeaders={self.signed_headers}, " \
               f"Signature={self.signature}"


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


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def parse_credential(environ: dict[str, Any]) -> Credential:
    """The request's claimed credential, from the Authorization header or a presigned URL's query."""
    query = environ.get("QUERY_STRING", "")
    qs = dict(parse_qsl(query, keep_blank_values=True))
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "X-Amz-Credential" in qs and not auth:
        if qs.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthFailure("IncompleteSignature", "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'")
        expires = qs.get("X-Amz-Expires", "")
        if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES:
            raise AuthFailure("IncompleteSignature", f"X-Amz-Expires must be an integer from 1 to "
                                                     f"{MAX_PRESIGN_EXPIRES} (seven days).")
        return Credential(qs.get("X-Amz-Credential", ""), qs.get("X-Amz-SignedHeaders", ""),
                          qs.get("X-Amz-Signature", ""), qs.get("X-Amz-Date", ""), True, int(expires))
    if not auth:
        raise AuthFailure("MissingAuthenticationToken")
    match = _AUTH_RE.fullmatch(auth)
    if not match:
        raise AuthFailure("IncompleteSignature" if auth.startswith(ALGORITHM) else "MissingAuthenticationToken")
    credential, signed, signature = match.groups()
    return Credential(credential, signed, signature, environ.get("HTTP_X_AMZ_DATE") or "", False)


def check_credential(cred: Credential, key_id: str, *, now: datetime.datetime | None = None,
                     service_known: Callable[[str], bool] | None = None) -> None:
    """Raise AuthFailure unless the credential is the learner's key, its scope is well formed and for
    the request's date, and that date is within AWS's 15 minutes of now. Needs no body."""
    scope = cred.scope
    if len(scope) != 5 or scope[0] != key_id:
        raise AuthFailure("InvalidClientTokenId")
    if not cred.signature or not cred.signed_headers:
        raise AuthFailure("IncompleteSignature")
    if not cred.amz_date:
        raise AuthFailure("IncompleteSignature", "Authorization header requires existence of either a "
                                                 "'X-Amz-Date' or a 'Date' header.")
    if not _DATE_RE.fullmatch(cred.amz_date):
        raise AuthFailure("IncompleteSignature", f"Date must be in ISO-8601 'basic format'. Got "
                                                 f"'{cred.amz_date[:32]}'.")
    try:
        signed_at = datetime.datetime.strptime(cred.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise AuthFailure("IncompleteSignature", f"Date must be in ISO-8601 'basic format'. Got "
                                                 f"'{cred.amz_date}'.") from None
    _, date, region, service, terminator = scope
    # AWS's messages for each (IAM User Guide, "Troubleshoot signed requests for AWS APIs"): all
    # SignatureDoesNotMatch, HTTP 403.
    if terminator != TERMINATOR:
        raise AuthFailure("SignatureDoesNotMatch", f"Credential should be scoped with a valid terminator: "
                                                   f"'{TERMINATOR}', not '{terminator[:64]}'.")
    if date != cred.amz_date[:8]:
        raise AuthFailure("SignatureDoesNotMatch", f"Date in Credential scope does not match YYYYMMDD from "
                                                   f"ISO-8601 version of date from HTTP: '{date[:16]}' != "
                                                   f"'{cred.amz_date[:8]}', from '{cred.amz_date}'.")
    if not _REGION_RE.fullmatch(region):
        raise AuthFailure("SignatureDoesNotMatch", f"Credential should be scoped to a valid region, not "
                                                   f"'{region[:64]}'.")
    # The local endpoint answers every service on one host and routes by the scope's service (moto's
    # server does): the scope must name a service it serves.
    if not _SERVICE_RE.fullmatch(service) or (service_known is not None and not service_known(service)):
        raise AuthFailure("SignatureDoesNotMatch", f"Credential should be scoped to correct service: "
                                                   f"'{service[:64]}'.")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if cred.presigned:
        expires = datetime.timedelta(seconds=cred.expires or 0)
        if signed_at + expires < now:
            raise AuthFailure("SignatureDoesNotMatch", f"Signature expired: {cred.amz_date} is now earlier "
                                                       f"than {_stamp(now - expires)} ({_stamp(now)} - "
                                                       f"{cred.expires} sec.)")
    elif signed_at < now - MAX_SKEW:
        raise AuthFailure("SignatureDoesNotMatch", f"Signature expired: {cred.amz_date} is now earlier than "
                                                   f"{_stamp(now - MAX_SKEW)} ({_stamp(now)} - 15 min.)")
    if signed_at > now + MAX_SKEW:
        raise AuthFailure("SignatureDoesNotMatch", f"Signature not yet current: {cred.amz_date} is still "
                                                   f"later than {_stamp(now + MAX_SKEW)} ({_stamp(now)} + 15 min.)")


def _payload_hashes(environ: dict[str, Any], body: bytes, presigned: bool) -> list[str]:
    """The payload hashes a valid signature may have used: always the body's own hash.

    The X-Amz-Content-Sha256 header is never taken on trust. When it is sent it must be the body's hash:
    S3 answers a mismatch with XAmzContentSHA256Mismatch, but the query and JSON APIs served here
    (ElastiCache, EC2, CloudWatch, STS, ...) hash the body themselves, so a body that is not the one
    signed fails the signature: SignatureDoesNotMatch, HTTP 403, which is what is answered here too.
    UNSIGNED-PAYLOAD (S3's presigned URLs) is accepted only for a presigned request without a body.
    """
    computed = hashlib.sha256(body).hexdigest()
    claimed = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
    if claimed is not None and claimed.strip().lower() != computed:
        if not (presigned and not body and claimed.strip() == UNSIGNED_PAYLOAD):
            raise AuthFailure("SignatureDoesNotMatch")
    if presigned:
        if body:  # a presigned URL signs no body: one sent with it is not what was signed
            raise AuthFailure("SignatureDoesNotMatch")
        return [EMPTY_SHA256, UNSIGNED_PAYLOAD]
    return [computed]


def verify(environ: dict[str, Any], body: bytes, key_id: str, secret: str, *,
           now: datetime.datetime | None = None) -> None:
    """Raise AuthFailure(code) unless the request is SigV4-signed with (key_id, secret), now."""
    cred = parse_credential(environ)
    check_credential(cred, key_id, now=now)
    verify_signature(environ, body, cred, secret)


def verify_signature(environ: dict[str, Any], body: bytes, cred: Credential, secret: str) -> None:
    """Raise AuthFailure unless `cred`'s signature (already checked by check_credential) signs this
    request and this body."""
    query = environ.get("QUERY_STRING", "")
    scope_parts = cred.scope
    _, date, region, service, terminator = scope_parts
    names = [h for h in cred.signed_headers.lower().split(";") if h]
    canonical_headers = "".join(f"{h}:{' '.join((_header(environ, h) or '').split())}\n" for h in names)
    payloads = _payload_hashes(environ, body, cred.presigned)
    path = environ.get("PATH_INFO", "") or "/"
    # botocore quotes the (normalized) path once more for every service but S3: both are accepted.
    uris = {quote(_remove_dot_segments(path), safe="/~"), quote(path, safe="/~"),
            quote(quote(path, safe="/~"), safe="/~")}
    key = _sign(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _sign(key, part)
    scope = "/".join(scope_parts[1:])
    for uri in uris:
        for payload in payloads:
            canonical = "\n".join([environ.get("REQUEST_METHOD", "GET"), uri,
                                   _canonical_query(query, cred.presigned), canonical_headers, ";".join(names),
                                   payload])
            to_sign = "\n".join([ALGORITHM, cred.amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
            expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, cred.signature.lower()):
                return
    raise AuthFailure("SignatureDoesNotMatch")


def read_body(environ: dict[str, Any], limit: int = MAX_BODY) -> bytes:
    """The request's body, at most `limit` bytes: a larger Content-Length is refused unread, a chunked
    body is read in pieces and refused as soon as it passes the limit."""
    stream = environ.get("wsgi.input")
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if length:
        if not length.isdigit():
            raise AuthFailure("IncompleteSignature", "Content-Length must be a number of bytes.")
        if int(length) > limit:
            raise AuthFailure("RequestEntityTooLarge")
        return stream.read(int(length)) if stream is not None and int(length) else b""
    if stream is None or not environ.get("wsgi.input_terminated"):
        return b""
    chunks, size = [], 0
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise AuthFailure("RequestEntityTooLarge")
        chunks.append(chunk)


def _error_response(environ: dict[str, Any], failure: AuthFailure, start_response: Callable) -> list[bytes]:
    request_id = str(uuid.uuid4())
    content_type = environ.get("CONTENT_TYPE", "") or ""
    code, message = failure.code, failure.message
    if "json" in content_type or "cbor" in content_type:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
                   ("x-amzn-RequestId", request_id)]
    else:
        body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    start_response(STATUS.get(code, "403 Forbidden"), headers)
    return [body]


def require_signature(app: Callable, home: Path, *, service_known: Callable[[str], bool] | None = None,
                      max_body: int = MAX_BODY) -> Callable:
    """WSGI middleware: every request but READY_PATH must be signed with the learner's key, now.

    The credential, its scope and the date are checked before the body is read, and no more than
    `max_body` bytes of it are read; then the signature over the body. `service_known(name)` says
    whether the scope's service is one the endpoint serves.
    """
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
        key_id, secret = current_key()
        try:
            cred = parse_credential(environ)
            check_credential(cred, key_id, service_known=service_known)
            body = read_body(environ, max_body)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            verify_signature(environ, body, cred, secret)
        except AuthFailure as failure:
            # The body may be left unread: werkzeug's server closes the connection after every
            # answer and discards what is left of the request, reading it in bounded pieces.
            log.debug("refused %s %s: %s (%s)", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                     failure.code, failure.message[:200])
            return _error_response(environ, failure, start_response)
        # moto routes by the Authorization header's scope: give it the one just verified (a presigned
        # request has none of its own, and moto would guess its service from the body).
        environ["HTTP_AUTHORIZATION"] = cred.authorization()
        return app(environ, start_response)

    return middleware
