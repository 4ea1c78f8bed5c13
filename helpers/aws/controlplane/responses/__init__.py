"""The protocol side of the control plane: requests in, AWS-shaped answers out.

Each module takes the parameters moto parsed from a request (a dict, already typed by botocore's
model of the API), calls the model (helpers.aws.controlplane.models) with keyword arguments, and
builds the answer AWS gives from the records the model returns. The models never see a request.
"""

from __future__ import annotations

import base64
from typing import Any

# AWS's tag rules (ElastiCache User Guide, "Tagging your ElastiCache resources"): keys of 1 to 128
# characters, values up to 256, no aws: prefix; at most 50 tags a resource (models/events.py).
MAX_KEY, MAX_VALUE = 128, 256


def tag_dict(params: dict[str, Any]) -> dict[str, str]:
    """The request's Tags ([{"Key", "Value"}]) as a dict, refused as AWS refuses them: more than 50
    (TagQuotaPerResourceExceeded), a key over 128 characters or empty, a value over 256, a key or
    value that starts with the reserved aws: (InvalidParameterValue). Create calls check here, before
    anything is made; AddTagsToResource counts the resource's tags too (models/events.py)."""
    from helpers.aws.controlplane.errors import invalid_value

    tags: dict[str, str] = {}
    for t in params.get("Tags") or []:
        key, value = t.get("Key"), t.get("Value") or ""
        if not key:
            raise invalid_value("Tag keys must not be empty.")
        if len(key) > MAX_KEY:
            raise invalid_value(f"Tag key is too long: {len(key)} characters (at most {MAX_KEY}).")
        if len(value) > MAX_VALUE:
            raise invalid_value(f"Tag value of {key[:40]} is too long: {len(value)} characters (at most {MAX_VALUE}).")
        if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
            raise invalid_value("Tag keys and values must not start with 'aws:': the prefix is reserved for AWS.")
        tags[key] = value
    from helpers.aws.controlplane.models.events import check_tag_quota

    check_tag_quota(len(tags))
    return tags


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
