"""The query protocol's own checks, made before any action runs: Action, Version and typed values.

AWS answers these before it looks at what an action means, with the common errors of its API
reference ("Common Errors": MissingAction 400, InvalidAction 400, InvalidParameterValue 400):

- no Action: 400 MissingAction;
- a Version other than the API's (ElastiCache's is 2015-02-02): 400 InvalidAction, "Could not find
  operation <Action> for version <Version>" (the query services' wording for an operation that no
  version of that name has);
- a value that is not of its parameter's type (MaxRecords=abc or 1e3, ShowCacheNodeInfo=maybe, a date
  that is no date): 400 InvalidParameterValue, "An invalid or out-of-range value was supplied for the
  input parameter" in the Common Errors' words. That is the documented code for it; the query protocol
  has no MalformedInput, and ValidationError belongs to other services (CloudFormation, IAM...).

moto's own parser reads such a value with int()/float() and lets the ValueError become an HTTP 500;
StrictQueryParser refuses it instead, naming the parameter.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from moto.core.parse import QueryParser

log = logging.getLogger(__name__)

API_VERSION = "2015-02-02"
XMLNS = f"http://elasticache.amazonaws.com/doc/{API_VERSION}/"
INTEGER_RE = re.compile(r"^[+-]?[0-9]+$")
FLOAT_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
INT_RANGE = (-(2**31), 2**31 - 1)  # the API's Integer is 32-bit (IntegerOptional: java.lang.Integer)
LONG_RANGE = (-(2**63), 2**63 - 1)


class MalformedValue(Exception):
    """A value that is not of its parameter's type; answered as InvalidParameterValue."""

    def __init__(self, name: str, value: Any, kind: str):
        self.name, self.value, self.kind = name, value, kind
        shown = str(value) if len(str(value)) <= 64 else str(value)[:64] + "..."
        super().__init__(f"Invalid value '{shown}' for parameter {name}: expected {kind}.")


class StrictQueryParser(QueryParser):
    """moto's query parser, refusing values that are not of their type instead of raising ValueError."""

    def _parse_integer(self, shape: Any, query_params: Any, prefix: str = "") -> Any:
        value = self._default_handle(shape, query_params, prefix)
        if not isinstance(value, str):
            return value  # UNDEFINED, or a default from the model
        text = value.strip()
        low, high = LONG_RANGE if shape.type_name == "long" else INT_RANGE
        if not INTEGER_RE.match(text) or not low <= int(text) <= high:
            raise MalformedValue(prefix, value, "an integer")
        return int(text)

    _parse_long = _parse_integer

    def _parse_float(self, shape: Any, query_params: Any, prefix: str = "") -> Any:
        value = self._default_handle(shape, query_params, prefix)
        if not isinstance(value, str):
            return value
        if not FLOAT_RE.match(value.strip()):
            raise MalformedValue(prefix, value, "a number")
        return float(value)

    _parse_double = _parse_float

    def _parse_boolean(self, shape: Any, query_params: Any, prefix: str = "") -> Any:
        value = self._default_handle(shape, query_params, prefix)
        if not isinstance(value, str):
            return value
        if value.strip().lower() not in ("true", "false"):
            raise MalformedValue(prefix, value, "true or false")
        return value.strip().lower() == "true"

    def _parse_timestamp(self, shape: Any, query_params: Any, prefix: str = "") -> Any:
        value = self._default_handle(shape, query_params, prefix)
        if not isinstance(value, str):
            return value
        try:
            return self._timestamp_parser(value)
        except (ValueError, TypeError, OverflowError):  # botocore raises ValueError or its own error for a bad date
            raise MalformedValue(prefix, value, "a timestamp (ISO 8601, e.g. 2026-01-31T12:00:00Z)") from None


def error_body(code: str, message: str) -> str:
    """An ElastiCache error document, as AWS's query API writes one."""
    import uuid
    from xml.sax.saxutils import escape

    return (f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f'<Message>{escape(message)}</Message></Error>'
            f'<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>')


def request_error(action: str | None, version: Any) -> tuple[str, str] | None:
    """(code, message) of the error AWS gives for a request's Action and Version, or None."""
    if not action:
        return "MissingAction", "Missing Action"
    if version not in (None, API_VERSION):
        return "InvalidAction", f"Could not find operation {action} for version {version}"
    return None


def install(cls: type) -> None:
    """Check Action, Version and typed values on ElastiCacheResponse (before any handler runs)."""
    from botocore.model import OperationNotFoundError
    from moto.core.request import determine_request_protocol
    from moto.core.utils import get_service_model

    original_parse = cls.parse_parameters  # type: ignore[attr-defined]

    def parse_parameters(self, request):  # type: ignore[no-untyped-def]
        self.malformed = None
        service_model = get_service_model(self.boto3_service_name)
        try:
            operation_model = service_model.operation_model(self._get_action())
        except OperationNotFoundError:  # a typo, or the local-only ApplyPendingModifications
            self.params = {}
            return
        if determine_request_protocol(service_model, request.content_type) != "query":
            original_parse(self, request)
            return
        parser = StrictQueryParser(operation_model, map_type=self.PROTOCOL_PARSER_MAP_TYPE)
        try:
            self.params = parser.parse({"method": request.method, "values": request.values,
                                        "headers": request.headers, "body": request.data,
                                        "url_path": request.path, "url_params": self.uri_match})
        except MalformedValue as err:
            self.params = {}
            self.malformed = err

    cls.parse_parameters = parse_parameters  # type: ignore[attr-defined]


def refusal(response: Any) -> tuple[str, str] | None:
    """(code, message) when the request itself is refused (see request_error and MalformedValue)."""
    version = response.querystring.get("Version")
    if isinstance(version, list):
        version = version[0] if version else None
    found = request_error(response._get_action(), version)
    if found:
        return found
    malformed = getattr(response, "malformed", None)
    if malformed is not None:
        log.info("refused %s: %s", response._get_action(), malformed)
        return "InvalidParameterValue", str(malformed)
    return None
