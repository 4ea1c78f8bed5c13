"""Events and tags."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.events import Event
from helpers.aws.controlplane.responses import int_or_none, tag_dict, tag_list


def event_api(e: Event) -> dict[str, Any]:
    return {"SourceIdentifier": e.source_id, "SourceType": e.source_type, "Message": e.message, "Date": e.date}


@honours("Duration", "EndTime", "SourceIdentifier", "SourceType", "StartTime")
def describe_events(p: dict[str, Any]) -> list[dict[str, Any]]:
    events = PLANE.describe_events(source_type=p.get("SourceType"), source_id=p.get("SourceIdentifier"),
                                   start=p.get("StartTime"), end=p.get("EndTime"),
                                   duration=int_or_none(p.get("Duration")))
    return [event_api(e) for e in events]


@honours("ResourceName")
def list_tags_for_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.list_tags_for_resource(p.get("ResourceName")))


@honours("ResourceName", "Tags")
def add_tags_to_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.add_tags_to_resource(p.get("ResourceName"), tag_dict(p)))


@honours("ResourceName", "TagKeys")
def remove_tags_from_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.remove_tags_from_resource(p.get("ResourceName"), list(p.get("TagKeys") or [])))
