"""Parameter groups and their parameters."""

from __future__ import annotations

import re
from typing import Any

from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.base import ParameterGroup
from helpers.aws.controlplane.responses import tag_dict


def parameter_group_api(pg: ParameterGroup) -> dict[str, Any]:
    return {"CacheParameterGroupName": pg.name, "CacheParameterGroupFamily": pg.family,
            "Description": pg.description, "IsGlobal": False, "ARN": pg.arn}


def parameters_api(pg: ParameterGroup, keys: list[str]) -> list[dict[str, Any]]:
    out = []
    memcached = pg.family.startswith("memcached")
    for key in keys:
        default, allowed, desc = pg.catalog[key]
        dtype = "integer" if allowed.endswith("-") or re.match(r"^\d+-\d*$", allowed or "x") else "string"
        out.append({"ParameterName": key, "ParameterValue": pg.values.get(key, default), "Description": desc,
                    "Source": "user" if key in pg.values else "system", "DataType": dtype,
                    "AllowedValues": allowed, "IsModifiable": True,
                    "MinimumEngineVersion": "1.6.6" if memcached else "7.0.0",
                    "ChangeType": "requires-reboot" if memcached else "immediate"})
    return out


def _name_values(p: dict[str, Any]) -> list[tuple[str | None, Any]]:
    return [(i.get("ParameterName"), i.get("ParameterValue")) for i in p.get("ParameterNameValues") or []]


def create_cache_parameter_group(p: dict[str, Any]) -> dict[str, Any]:
    return parameter_group_api(PLANE.create_cache_parameter_group(
        p.get("CacheParameterGroupName"), p.get("CacheParameterGroupFamily"), p.get("Description"), tag_dict(p)))


def describe_cache_parameter_groups(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter_group_api(pg) for pg in PLANE.describe_cache_parameter_groups(p.get("CacheParameterGroupName"))]


def describe_cache_parameters(p: dict[str, Any]) -> list[dict[str, Any]]:
    return parameters_api(*PLANE.describe_cache_parameters(p.get("CacheParameterGroupName"), p.get("Source")))


def describe_engine_default_parameters(p: dict[str, Any]) -> dict[str, Any]:
    family = p.get("CacheParameterGroupFamily")
    pg = PLANE.describe_engine_default_parameters(family)
    return {"CacheParameterGroupFamily": family, "Parameters": parameters_api(pg, list(pg.catalog))}


def modify_cache_parameter_group(p: dict[str, Any]) -> str:
    return PLANE.modify_cache_parameter_group(p.get("CacheParameterGroupName"), _name_values(p)).name


def reset_cache_parameter_group(p: dict[str, Any]) -> str:
    names = [name for name, _ in _name_values(p)]
    return PLANE.reset_cache_parameter_group(p.get("CacheParameterGroupName"),
                                             reset_all=bool(p.get("ResetAllParameters")), names=names).name


def delete_cache_parameter_group(p: dict[str, Any]) -> None:
    PLANE.delete_cache_parameter_group(p.get("CacheParameterGroupName"))
