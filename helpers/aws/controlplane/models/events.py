"""Events, tags, and what moto's subnet groups need from the control plane."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from helpers.aws.controlplane.errors import ApiError, invalid_value
from helpers.aws.controlplane.models.base import ACCOUNT, Backend, now

TAG_QUOTA = 50  # TagQuotaPerResourceExceeded: "The maximum number of tags permitted on a resource is 50."
SOURCE_TYPES = {"cache-cluster", "cache-parameter-group", "cache-security-group", "cache-subnet-group",
                "replication-group", "serverless-cache", "serverless-cache-snapshot", "user", "user-group"}


def _utc(value: datetime | str | None, what: str) -> datetime | None:
    """A request's timestamp as an aware UTC datetime (naive ones are UTC)."""
    if value is None or value == "":
        return None
    if not isinstance(value, datetime):
        try:
            value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise invalid_value(f"Invalid value for {what}: {value}.") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_tag_quota(n: int) -> None:
    """AWS's error for a resource that would have more than 50 tags."""
    if n > TAG_QUOTA:
        raise ApiError(f"The request would give the resource {n} tags; the maximum number of tags permitted "
                       f"on a resource is {TAG_QUOTA}.", "TagQuotaPerResourceExceeded")


@dataclass
class Event:
    """What happened to a resource, as DescribeEvents lists it."""

    source_id: str
    source_type: str
    message: str
    date: datetime = field(default_factory=now)


class EventsAndTags(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def event(self, source_id: str, source_type: str, message: str) -> None:
        """Record an event of a resource (every module of the model reports here)."""
        with self.lock:
            self.events.append(Event(source_id, source_type, message))

    def serverless_arn_checks(self) -> dict[str, Any]:  # serverless caches and snapshots (models/serverless.py)
        return {}

    def describe_events(self, source_type: str | None = None, source_id: str | None = None,
                        start: datetime | str | None = None, end: datetime | str | None = None,
                        duration: int | None = None) -> list[Event]:
        """The newest first, within [start, end] (by default the last `duration` minutes, 60 if not given).

        Times without a zone are UTC, as the AWS CLI and SDKs send them. Paging is the caller's.
        """
        start, end = _utc(start, "StartTime"), _utc(end, "EndTime")
        if duration is not None and not 0 <= int(duration) <= 20160:
            raise invalid_value("Duration must be between 0 and 20160 minutes (14 days).")
        if start is not None and end is not None and start > end:
            raise invalid_value("StartTime must be before EndTime.")
        if end is None:
            end = now() if start is None or duration is None else start + timedelta(minutes=int(duration))
        if start is None:
            start = end - timedelta(minutes=60 if duration is None else int(duration))
        if source_type and source_type not in SOURCE_TYPES and source_type != "snapshot":
            raise invalid_value(f"Unknown SourceType {source_type!r}; one of {', '.join(sorted(SOURCE_TYPES))}.")
        with self.lock:
            events = list(self.events)
        out = [e for e in reversed(events)
               if start <= e.date <= end and (not source_type or e.source_type == source_type)
               and (not source_id or e.source_id == str(source_id).lower() or e.source_id == source_id)]
        return out

    def list_tags_for_resource(self, resource_arn: str | None) -> dict[str, str]:
        self.resource_exists(resource_arn)
        return dict(self.tags.get(str(resource_arn), {}))

    def add_tags_to_resource(self, resource_arn: str | None, tags: dict[str, str]) -> dict[str, str]:
        self.resource_exists(resource_arn)
        with self.lock:
            check_tag_quota(len({**self.tags.get(str(resource_arn), {}), **tags}))
            self.add_tags(str(resource_arn), tags)
        return self.list_tags_for_resource(resource_arn)

    def remove_tags_from_resource(self, resource_arn: str | None, keys: list[str]) -> dict[str, str]:
        self.resource_exists(resource_arn)
        tags = self.tags.get(str(resource_arn), {})
        for key in keys:
            tags.pop(key, None)
        return self.list_tags_for_resource(resource_arn)

    def resource_exists(self, resource_arn: str | None) -> None:
        """Raise the NotFound error AWS gives for a tag call on a missing resource."""
        m = re.match(r"^arn:aws:elasticache:([^:]*):(\d*):([\w-]+):(.+)$", resource_arn or "")
        if not m:
            raise ApiError(f"ARN {resource_arn} is invalid.", "InvalidARN")
        region, account, kind, ident = m.groups()
        if account != ACCOUNT:  # InvalidARNFault: "does not refer to an existing resource"
            raise ApiError(f"ARN {resource_arn} does not refer to an existing resource: it names account "
                           f"{account or '(none)'}, and this endpoint's resources belong to account {ACCOUNT}.",
                           "InvalidARN")
        checks = {"cluster": lambda i: self.get_cluster(i) if not any(
                      i in g.member_ids.values() for g in self.groups.values()) else None,
                  "replicationgroup": self.get_group, "snapshot": self.get_snapshot, "user": self.get_user,
                  "usergroup": self.get_user_group, "parametergroup": self.get_param_group,
                  "subnetgroup": self.check_subnet_group, "globalreplicationgroup": self.get_global,
                  "reserved-instance": self.get_reserved,
                  **self.serverless_arn_checks()}
        if kind not in checks:
            raise ApiError(f"ARN {resource_arn} is invalid.", "InvalidARN")
        found = checks[kind](ident)
        own = getattr(found, "arn", None)
        if isinstance(own, str) and own.split(":")[3] != region:  # the name it has in another region
            raise ApiError(f"ARN {resource_arn} does not refer to an existing resource (region {region}); "
                           f"did you mean {own}?", "InvalidARN")

    def subnet_group_users(self, name: str | None) -> list[str]:
        """The cache clusters and replication groups placed in a subnet group (it cannot go while used)."""
        return [c.cluster_id for c in self.clusters.values() if c.subnet_group == name] + \
               [g.group_id for g in self.groups.values() if g.subnet_group == name]
