"""Parameter groups: the values become CONFIG SET on every Redis node that uses the group."""

from __future__ import annotations

import re
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import (
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
    not_found,
)
from helpers.aws.controlplane.models.base import Backend, ParameterGroup, check_id
from helpers.runtime import services


class ParameterGroups(Backend):
    def param_group_for(self, name: str | None, engine: str, cluster_mode: bool = False) -> ParameterGroup:
        """The group a new cluster or group uses: the one named, or the engine's default."""
        family = self.family(engine)
        if not name:
            name = f"default.{family}" + (".cluster.on" if cluster_mode else "")
        with self.lock:
            pg = self.param_groups.get(name)
        if pg is None:
            raise not_found("CacheParameterGroup", name)
        if pg.family != family:
            raise invalid_combination(f"Parameter group {name} is for {pg.family}; this {engine} needs {family}.")
        return pg

    def create_cache_parameter_group(self, name: str | None, family: str | None, description: str | None,
                                     tags: dict[str, str] | None = None) -> ParameterGroup:
        if not name:
            raise invalid_value("The parameter CacheParameterGroupName must be provided.")
        name = check_id(name, "CacheParameterGroupName", 255)
        family = family or ""
        known = {self.family("redis"), self.family("memcached")}
        if family not in known:
            raise invalid_value(f"CacheParameterGroupFamily {family!r} is not available locally; use one of "
                                f"{', '.join(sorted(known))} (the engines installed on this machine).")
        with self.lock:
            if name in self.param_groups:
                raise already_exists("CacheParameterGroup", name)
            pg = ParameterGroup(name, family, description or "")
            self.param_groups[name] = pg
        self.add_tags(pg.arn, tags)
        return pg

    def get_param_group(self, name: Any) -> ParameterGroup:
        return self._lookup(self.param_groups, name, "CacheParameterGroup")

    def describe_cache_parameter_groups(self, name: str | None = None) -> list[ParameterGroup]:
        return self._describe(name, self.get_param_group, self.param_groups)

    def describe_cache_parameters(self, name: str | None, source: str | None = None) -> tuple[ParameterGroup,
                                                                                              list[str]]:
        """The group and the names of its parameters from `source` (user, system/engine-default, or all)."""
        pg = self.get_param_group(name)
        keys = []
        for key in pg.catalog:
            src = "user" if key in pg.values else "system"
            if source and source != src and not (source == "engine-default" and src == "system"):
                continue
            keys.append(key)
        return pg, keys

    def describe_engine_default_parameters(self, family: str | None) -> ParameterGroup:
        """The default group of a family: its values are the engine defaults."""
        match = next((pg for pg in self.param_groups.values() if pg.is_default and pg.family == family), None)
        if match is None:
            raise invalid_value(f"Unknown CacheParameterGroupFamily {family!r}.")
        return match

    def _own_group(self, name: str | None) -> ParameterGroup:
        pg = self.get_param_group(name)
        if pg.is_default:
            raise invalid_state("CacheParameterGroup", pg.name, "a default parameter group", "a group you created")
        return pg

    def modify_cache_parameter_group(self, name: str | None,
                                     values: list[tuple[str | None, Any]]) -> ParameterGroup:
        pg = self._own_group(name)
        checked = self._parameter_values(pg, values)
        if not checked:
            raise invalid_value("ParameterNameValues must name at least one parameter.")
        pg.values.update(checked)
        self.apply_parameters(pg)
        self.event(pg.name, "cache-parameter-group", f"Parameter group modified: {', '.join(checked)}")
        return pg

    @staticmethod
    def _parameter_values(pg: ParameterGroup, items: list[tuple[str | None, Any]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in items:
            if key not in pg.catalog:
                raise invalid_value(f"Unknown parameter {key!r} for {pg.family}. Known locally: "
                                    f"{', '.join(pg.catalog)}.")
            allowed = pg.catalog[key][1]
            if value is None:
                raise invalid_value(f"Parameter {key} needs a ParameterValue.")
            if "," in allowed and not re.match(r"^\d", allowed) and value not in allowed.split(","):
                raise invalid_value(f"Invalid value {value!r} for parameter {key}; allowed: {allowed}.")
            out[key] = str(value)
        return out

    def reset_cache_parameter_group(self, name: str | None, reset_all: bool = False,
                                    names: list[str | None] | None = None) -> ParameterGroup:
        pg = self._own_group(name)
        names = names or []
        if reset_all:
            if names:
                raise invalid_combination("Use ResetAllParameters or ParameterNameValues, not both.")
            pg.values.clear()
        else:
            if not names:
                raise invalid_value("Name the parameters to reset, or set ResetAllParameters.")
            for n in names:
                if n not in pg.catalog:
                    raise invalid_value(f"Unknown parameter {n!r} for {pg.family}.")
                pg.values.pop(n, None)
        self.apply_parameters(pg)
        self.event(pg.name, "cache-parameter-group", "Parameter group reset")
        return pg

    def delete_cache_parameter_group(self, name: str | None) -> None:
        pg = self._own_group(name)
        users = [c.cluster_id for c in self.clusters.values() if c.param_group == pg.name] + \
                [g.group_id for g in self.groups.values() if g.param_group == pg.name]
        if users:
            raise invalid_state("CacheParameterGroup", pg.name, f"in use by {', '.join(users)}", "unused")
        with self.lock:
            self.param_groups.pop(pg.name, None)

    def apply_parameters(self, pg: ParameterGroup) -> None:
        """CONFIG SET the group's values on every running Redis node that uses the group."""
        if pg.family.startswith("memcached"):
            return  # Memcached parameters need a node restart (ChangeType requires-reboot)
        values = pg.effective()
        for cc in list(self.clusters.values()):
            if cc.param_group == pg.name and cc.status in ("available", "modifying"):
                svc = services.get(cc.service_name())
                if svc:
                    ops.config_set([self._cluster_conn(cc, svc.nodes[0])], values)
        for g in list(self.groups.values()):
            if g.param_group == pg.name and g.status in ("available", "modifying"):
                svc = services.get(g.service_name)
                if svc:
                    ops.config_set([self._admin(g, svc, n) for n in ops.data_nodes(svc)], values)
