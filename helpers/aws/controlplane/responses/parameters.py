"""Parameter groups and their parameters (the entries come from AWS's catalogue, helpers.aws.catalogue)."""

from __future__ import annotations

from typing import Any

from helpers.aws.controlplane.honoured import honours
from helpers.aws.controlplane.models import PLANE
from helpers.aws.controlplane.models.parameters import ParameterGroup
from helpers.aws.controlplane.responses import paginate, tag_dict


def parameter_group_api(pg: ParameterGroup) -> dict[str, Any]:
    return {"CacheParameterGroupName": pg.name, "CacheParameterGroupFamily": pg.family,
            "Description": pg.description, "IsGlobal": False, "ARN": pg.arn}


def _name_values(p: dict[str, Any]) -> list[tuple[str | None, Any]]:
    return [(i.get("ParameterName"), i.get("ParameterValue")) for i in p.get("ParameterNameValues") or []]


@honours("CacheParameterGroupFamily", "CacheParameterGroupName", "Description", "Tags")
def create_cache_parameter_group(p: dict[str, Any]) -> dict[str, Any]:
    return parameter_group_api(PLANE.create_cache_parameter_group(
        p.get("CacheParameterGroupName"), p.get("CacheParameterGroupFamily"), p.get("Description"), tag_dict(p)))


@honours("CacheParameterGroupName")
def describe_cache_parameter_groups(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter_group_api(pg) for pg in PLANE.describe_cache_parameter_groups(p.get("CacheParameterGroupName"))]


@honours("CacheParameterGroupName", "Source")
def describe_cache_parameters(p: dict[str, Any]) -> list[dict[str, Any]]:
    return PLANE.describe_cache_parameters(p.get("CacheParameterGroupName"), p.get("Source"))


@honours("CacheParameterGroupFamily")
def describe_engine_default_parameters(p: dict[str, Any]) -> dict[str, Any]:
    family = p.get("CacheParameterGroupFamily")
    page, marker = paginate(PLANE.describe_engine_default_parameters(family), p)
    out: dict[str, Any] = {"CacheParameterGroupFamily": family, "Parameters": page}
    if marker:
        out["Marker"] = marker
    return out


@honours("CacheParameterGroupName", "ParameterNameValues")
def modify_cache_parameter_group(p: dict[str, Any]) -> str:
    return PLANE.modify_cache_parameter_group(p.get("CacheParameterGroupName"), _name_values(p)).name


@honours("CacheParameterGroupName", "ParameterNameValues", "ResetAllParameters")
def reset_cache_parameter_group(p: dict[str, Any]) -> str:
    names = [name for name, _ in _name_values(p)]
    return PLANE.reset_cache_parameter_group(p.get("CacheParameterGroupName"),
                                             reset_all=bool(p.get("ResetAllParameters")), names=names).name


@honours("CacheParameterGroupName")
def delete_cache_parameter_group(p: dict[str, Any]) -> None:
    PLANE.delete_cache_parameter_group(p.get("CacheParameterGroupName"))
