"""Engine versions: the versions AWS offers of each engine (the catalogue, helpers.aws.catalogue)."""

from __future__ import annotations

from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane.errors import invalid_value
from helpers.aws.controlplane.honoured import honours


@honours("CacheParameterGroupFamily", "DefaultOnly", "Engine", "EngineVersion")
def describe_cache_engine_versions(p: dict[str, Any]) -> list[dict[str, Any]]:
    """AWS's engine versions (the catalogue), filtered by Engine, EngineVersion, family and DefaultOnly."""
    engine = p.get("Engine")
    if engine and str(engine).lower() not in catalogue.engines():
        raise invalid_value(f"Invalid value for Engine: {engine}. Valid values: {', '.join(catalogue.engines())}.")
    family = p.get("CacheParameterGroupFamily")
    if family and family not in catalogue.families():
        raise invalid_value(f"The parameter CacheParameterGroupFamily is not valid: {family!r}.")
    out = []
    for name in catalogue.engines():
        if engine and str(engine).lower() != name:
            continue
        versions = catalogue.engine_versions(name)
        if p.get("DefaultOnly"):
            versions = versions[-1:]
        for v in versions:
            if p.get("EngineVersion") and v["EngineVersion"] != str(p["EngineVersion"]):
                continue
            if family and v["CacheParameterGroupFamily"] != family:
                continue
            out.append({k: v[k] for k in ("Engine", "EngineVersion", "CacheParameterGroupFamily",
                                           "CacheEngineDescription", "CacheEngineVersionDescription")})
    return out
