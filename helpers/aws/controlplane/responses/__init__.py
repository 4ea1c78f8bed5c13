"""The protocol side of the control plane: requests in, AWS-shaped answers out.

Each module takes the parameters moto parsed from a request (a dict, already typed by botocore's
model of the API), calls the model (helpers.aws.controlplane.models) with keyword arguments, and
builds the answer AWS gives from the records the model returns. The models never see a request.
"""

from __future__ import annotations

import base64
from typing import Any


def tag_dict(params: dict[str, Any]) -> dict[str, str]:
    """The request's Tags ([{"Key", "Value"}]) as a dict."""
    return {t["Key"]: t.get("Value", "") for t in params.get("Tags") or []}


def tag_list(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


def int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


MAX_RECORDS = (20, 100)  # AWS: minimum 20, maximum 100, default 100


def paginate(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page of a Describe* answer: MaxRecords items after Marker, and the Marker of the next page."""
    from helpers.aws.controlplane.errors import invalid_value

    raw = params.get("MaxRecords")
    try:
        size = MAX_RECORDS[1] if raw is None else int(raw)
    except (TypeError, ValueError):
        raise invalid_value(f"Invalid value for MaxRecords: {raw}.") from None
    if not MAX_RECORDS[0] <= size <= MAX_RECORDS[1]:  # AWS's words (DescribeServerlessCaches with MaxRecords=1)
        raise invalid_value(f"Invalid value for max records. Must be between {MAX_RECORDS[0]} and {MAX_RECORDS[1]}")
    marker = params.get("Marker")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(str(marker).encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError):
            raise invalid_value(f"Invalid Marker: {marker}.") from None
        if start < 0:
            raise invalid_value(f"Invalid Marker: {marker}.")
    end = start + size
    more = end < len(items)
    return items[start:end], base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if more else None
