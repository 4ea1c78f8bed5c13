"""The protocol side of the control plane: requests in, AWS-shaped answers out.

Each module takes the parameters moto parsed from a request (a dict, already typed by botocore's
model of the API), calls the model (helpers.aws.controlplane.models) with keyword arguments, and
builds the answer AWS gives from the records the model returns. The models never see a request.
"""

from __future__ import annotations

from typing import Any


def tag_dict(params: dict[str, Any]) -> dict[str, str]:
    """The request's Tags ([{"Key", "Value"}]) as a dict."""
    return {t["Key"]: t.get("Value", "") for t in params.get("Tags") or []}


def tag_list(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


def int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
