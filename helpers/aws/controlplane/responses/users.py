"""Users and user groups."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.users import User, UserGroup
from helpers.aws.controlplane.responses import tag_dict


def user_api(u: User, groups: list[str] | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"Type": "no-password" if u.no_password else "password"}
    if u.passwords:
        auth["PasswordCount"] = len(u.passwords)
    return {"UserId": u.user_id, "UserName": u.user_name, "Status": u.status, "Engine": u.engine,
            "MinimumEngineVersion": "6.0", "AccessString": u.access_string,
            "UserGroupIds": PLANE.user_groups_of(u.user_id) if groups is None else groups, "Authentication": auth, "ARN": u.arn}


def user_group_api(ug: UserGroup) -> dict[str, Any]:
    return {"UserGroupId": ug.group_id, "Status": ug.status, "Engine": ug.engine, "UserIds": list(ug.user_ids),
            "MinimumEngineVersion": "6.0", "PendingChanges": {k: list(v) for k, v in ug.pending.items()},
            "ReplicationGroups": [g.group_id for g in PLANE.groups_using(ug.group_id)], "ARN": ug.arn}


def _credentials(p: dict[str, Any]) -> dict[str, Any]:
    """Passwords, NoPasswordRequired and AuthenticationMode, as the model's keyword arguments."""
    mode = p.get("AuthenticationMode") or {}
    return {"passwords": list(p.get("Passwords") or []), "no_password_required": p.get("NoPasswordRequired"),
            "auth_type": mode.get("Type"), "auth_passwords": list(mode.get("Passwords") or [])}


@honours(
    "AccessString", "AuthenticationMode", "Engine", "NoPasswordRequired", "Passwords", "Tags", "UserId",
    "UserName")
def create_user(p: dict[str, Any]) -> dict[str, Any]:
    return user_api(PLANE.create_user(p.get("UserId"), p.get("UserName"), p.get("Engine"), p.get("AccessString"),
                                      tags=tag_dict(p), **_credentials(p)))


@honours(
    "AccessString", "AppendAccessString", "AuthenticationMode", "NoPasswordRequired", "Passwords",
    "UserId")
def modify_user(p: dict[str, Any]) -> dict[str, Any]:
    return user_api(PLANE.modify_user(p.get("UserId"), access_string=p.get("AccessString"),
                                      append_access_string=p.get("AppendAccessString"), **_credentials(p)))


@honours("UserId")
def delete_user(p: dict[str, Any]) -> dict[str, Any]:
    groups = PLANE.user_groups_of(str(p.get("UserId") or ""))  # as the call found them (delete-user.rst)
    return user_api(PLANE.delete_user(p.get("UserId")), groups)


@honours("UserId")
def describe_users(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [user_api(u) for u in PLANE.describe_users(p.get("UserId"))]


@honours("Engine", "Tags", "UserGroupId", "UserIds")
def create_user_group(p: dict[str, Any]) -> dict[str, Any]:
    return user_group_api(PLANE.create_user_group(p.get("UserGroupId"), p.get("Engine"),
                                                  list(p.get("UserIds") or []), tags=tag_dict(p)))


@honours("UserGroupId", "UserIdsToAdd", "UserIdsToRemove")
def modify_user_group(p: dict[str, Any]) -> dict[str, Any]:
    return user_group_api(PLANE.modify_user_group(p.get("UserGroupId"), add=list(p.get("UserIdsToAdd") or []),
                                                  remove=list(p.get("UserIdsToRemove") or [])))


@honours("UserGroupId")
def delete_user_group(p: dict[str, Any]) -> dict[str, Any]:
    return user_group_api(PLANE.delete_user_group(p.get("UserGroupId")))


@honours("UserGroupId")
def describe_user_groups(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [user_group_api(ug) for ug in PLANE.describe_user_groups(p.get("UserGroupId"))]
