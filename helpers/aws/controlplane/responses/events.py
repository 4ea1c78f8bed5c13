"""Events, tags and engine versions."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import Event
from helpers.aws.controlplane.responses import tag_dict, tag_list


def event_api(e: Event) -> dict[str, Any]:
    return {"SourceIdentifier": e.source_id, "SourceType": e.source_type, "Message": e.message, "Date": e.date}


def describe_events(p: dict[str, Any]) -> list[dict[str, Any]]:
    events = PLANE.describe_events(source_type=p.get("SourceType"), source_id=p.get("SourceIdentifier"),
                                   start=p.get("StartTime"), end=p.get("EndTime"),
                                   duration=int(p.get("Duration") or 60), max_records=int(p.get("MaxRecords") or 100))
    return [event_api(e) for e in events]


def list_tags_for_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.list_tags_for_resource(p.get("ResourceName")))


def add_tags_to_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.add_tags_to_resource(p.get("ResourceName"), tag_dict(p)))


def remove_tags_from_resource(p: dict[str, Any]) -> dict[str, Any]:
    return tag_list(PLANE.remove_tags_from_resource(p.get("ResourceName"), list(p.get("TagKeys") or [])))


def describe_cache_engine_versions(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Engine": engine, "EngineVersion": version, "CacheParameterGroupFamily": family,
             "CacheEngineDescription": {"redis": "Redis", "memcached": "memcached"}[engine],
             "CacheEngineVersionDescription": f"{engine} version {version} (installed locally)"}
            for engine, version, family in PLANE.describe_cache_engine_versions(
                p.get("Engine"), p.get("EngineVersion"), p.get("CacheParameterGroupFamily"))]
