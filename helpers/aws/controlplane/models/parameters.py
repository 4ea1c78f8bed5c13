"""Parameter groups: AWS's catalogue per family (helpers.aws.catalogue), applied to the engines.

Immediate parameters are CONFIG SET on every Redis node that uses the group; requires-reboot ones
(and every Memcached parameter) wait, shown as `pending-reboot`, until the node restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from helpers.aws import catalogue
from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import (
    ApiError,
    already_exists,
    from_catalogue,
    invalid_combination,
    invalid_state,
    invalid_value,
    not_found,
)
from helpers.aws.controlplane.models.base import Backend, arn, check_id
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import services

log = logging.getLogger(__name__)

MAX_PARAMETERS_PER_CALL = 20  # ModifyCacheParameterGroup: "you can modify up to 20 parameters in a single request"
# Parameters whose ElastiCache default differs from the engine's own, or that the labs watch: a new node
# starts with them (plus every value its group changed), the rest of the catalogue is the engine's default.
STARTUP_PARAMETERS = ("maxmemory-policy", "maxmemory-samples", "timeout", "tcp-keepalive", "notify-keyspace-events",
                      "lfu-log-factor", "lfu-decay-time", "slowlog-log-slower-than", "slowlog-max-len",
                      "lazyfree-lazy-eviction", "lazyfree-lazy-expire", "hash-max-listpack-entries",
                      "set-max-intset-entries", "zset-max-listpack-entries")


@dataclass
class ParameterGroup:
    """A cache parameter group; its parameters are AWS's catalogue for the family (helpers.aws.catalogue)."""

    name: str
    family: str
    description: str
    values: dict[str, str] = field(default_factory=dict)  # user-set values only
    is_default: bool = False
    cluster_on: bool = False  # default.<family>.cluster.on: the catalogue's ClusterOnValue column applies

    @property
    def catalog(self) -> dict[str, str]:
        """The parameters the group lists, with their defaults (name -> value)."""
        return catalogue.defaults(self.family, self.cluster_on)

    def effective(self) -> dict[str, str]:
        return {**self.catalog, **self.values}

    def value(self, name: str) -> str:
        return self.values.get(name, self.catalog.get(name, catalogue.parameter(self.family, name).value))

    @property
    def cluster_enabled(self) -> bool:
        return not self.family.startswith("memcached") and self.value("cluster-enabled") == "yes"

    def maxmemory(self, node_type: str, engine: str) -> int:
        """The engine's maxmemory (bytes) on a node of this type: reserved memory as the group says."""
        reserved = int(self.values.get("reserved-memory", "0") or 0)
        if reserved and "reserved-memory-percent" not in self.values:
            return catalogue.maxmemory_for(node_type, reserved_memory=reserved, engine=engine)
        return catalogue.maxmemory_for(node_type, float(self.value("reserved-memory-percent") or 25), engine=engine)

    def startup_config(self) -> dict[str, str]:
        """Engine settings for a node that starts with this group (Redis OSS / Valkey): ElastiCache's
        defaults that differ from the engine's, and the changed requires-reboot values."""
        out: dict[str, str] = {}
        # Changed immediate values are CONFIG SET once the node runs (apply_parameters), so a value the
        # engine refuses (activedefrag on a build without it) is recorded instead of stopping the node.
        reboot = [n for n in self.values if catalogue.parameter(self.family, n).change_type == "requires-reboot"]
        for name in (*STARTUP_PARAMETERS, *reboot):
            try:
                p = catalogue.parameter(self.family, name)
            except catalogue.CatalogueError:  # not in this family (Valkey 8 dropped the lazyfree-* ones)
                continue
            if p.engine_config and p.listed != "node-type" and p.engine_config != "client-output-buffer-limit" \
                    and name != "cluster-enabled":
                out[p.engine_config] = self.value(name)
        return out

    def memcached_args(self) -> list[str]:
        """memcached start-up flags for the values this group changed (-I, -f, -o ...)."""
        args: list[str] = []
        for name, value in {"max_item_size": self.value("max_item_size"),
                            "chunk_size_growth_factor": self.value("chunk_size_growth_factor"),
                            **self.values}.items():
            p = catalogue.parameter(self.family, name)
            flag = p.engine_config
            if not flag:
                continue
            if p.data_type == "boolean":
                args += flag.split(" ", 1) if value == "1" else []
            elif flag.startswith("-o "):
                args += ["-o", f"{flag[3:]}={value}"]
            else:
                args += [flag, value]
        return args

    @property
    def arn(self) -> str:
        return arn("parametergroup", self.name)


class ParameterGroups(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.param_groups: dict[str, ParameterGroup] = {}
        for family in catalogue.families():  # AWS lists a default group for every family, in every account
            names = [f"default.{family}"] + ([] if family.startswith("memcached") else
                                             [f"default.{family}.cluster.on"])
            for name in names:
                self.param_groups[name] = ParameterGroup(name, family, f"Default parameter group for {family}",
                                                         is_default=True, cluster_on=name.endswith(".cluster.on"))

    def param_group_for(self, name: str | None, engine: str, cluster_mode: bool = False,
                        check_mode: bool = True, version: str | None = None) -> ParameterGroup:
        """The group a new cluster or group uses: the one named, or the engine's default.

        Its family must be the engine version's, and (Redis OSS / Valkey) its cluster-enabled must match
        the cluster mode, as AWS checks.
        """
        family = self.family(engine, version)
        if not name:
            name = f"default.{family}" + (".cluster.on" if cluster_mode else "")
        with self.lock:
            pg = self.param_groups.get(name)
        if pg is None:
            raise not_found("CacheParameterGroup", name)
        if pg.family != family:
            raise invalid_combination(f"Expected a parameter group of family {family} but found one of family "
                                      f"{pg.family}")
        if check_mode and engine != "memcached" and pg.cluster_enabled != cluster_mode:
            if cluster_mode:
                raise invalid_combination(f"Cluster mode is enabled, but parameter group {pg.name} has "
                                          "cluster-enabled set to no: use a parameter group with cluster-enabled "
                                          f"yes (e.g. default.{family}.cluster.on).")
            raise invalid_combination(f"Parameter group {pg.name} has cluster-enabled set to yes; a replication "
                                      "group with cluster mode disabled (NumCacheClusters) needs one with "
                                      f"cluster-enabled no (e.g. default.{family}).")
        return pg

    def create_cache_parameter_group(self, name: str | None, family: str | None, description: str | None,
                                     tags: dict[str, str] | None = None) -> ParameterGroup:
        if not name:
            raise invalid_value("The parameter CacheParameterGroupName must be provided.")
        name = check_id(name, "CacheParameterGroupName", 255)
        if not description:
            raise invalid_value("The parameter Description must be provided and must not be blank.")
        family = family or ""
        if family not in catalogue.families():
            raise invalid_value(f"The parameter CacheParameterGroupFamily is not valid: {family!r}. Valid values: "
                                f"{', '.join(catalogue.families())}.")
        local = {self.family("memcached")} | {self.family(e.name, e.version) for kv in ("valkey", "redis")
                                              for e in self.local_engines(kv)
                                              if e.version.rsplit(".", 1)[0] in catalogue.offered_minors(kv)}
        if family not in local:
            raise invalid_value(f"CacheParameterGroupFamily {family} is AWS's, but its engine is not installed "
                                f"here; use one of {', '.join(sorted(local))}.")
        with self.lock:
            if name in self.param_groups:
                raise already_exists("CacheParameterGroup", name)
            pg = ParameterGroup(name, family, description)
            self.param_groups[name] = pg
        self.add_tags(pg.arn, tags)
        return pg

    def get_param_group(self, name: Any) -> ParameterGroup:
        return self._lookup(self.param_groups, name, "CacheParameterGroup")

    def describe_cache_parameter_groups(self, name: str | None = None) -> list[ParameterGroup]:
        return self._describe(name, self.get_param_group, self.param_groups)

    def describe_cache_parameters(self, name: str | None, source: str | None = None) -> list[dict[str, Any]]:
        """DescribeCacheParameters' Parameters: the catalogue's entries with the group's values, by Source."""
        pg = self.get_param_group(name)
        if source and source not in ("user", "system", "engine-default"):
            raise invalid_value(f"Invalid value for Source: {source}. Valid values: user, system, engine-default.")
        out = []
        for item in catalogue.parameters(pg.family, pg.cluster_on):
            key = item["ParameterName"]
            if key in pg.values:
                item = {**item, "ParameterValue": pg.values[key], "Source": "user"}
            if source == "user" and item.get("Source") != "user":
                continue
            if source in ("system", "engine-default") and item.get("Source") == "user":
                continue
            out.append(item)
        return out

    def describe_engine_default_parameters(self, family: str | None) -> list[dict[str, Any]]:
        if not family:
            raise invalid_value("The parameter CacheParameterGroupFamily must be provided.")
        if family not in catalogue.families():
            raise invalid_value(f"The parameter CacheParameterGroupFamily is not valid: {family!r}.")
        return catalogue.parameters(family)

    def _own_group(self, name: str | None) -> ParameterGroup:
        pg = self.get_param_group(name)
        if pg.is_default:
            raise invalid_state("CacheParameterGroup", pg.name, "a default parameter group", "a group you created "
                                "(create-cache-parameter-group)")
        return pg

    def modify_cache_parameter_group(self, name: str | None,
                                     values: list[tuple[str | None, Any]]) -> ParameterGroup:
        pg = self._own_group(name)
        checked = self._parameter_values(pg, values)
        pg.values.update(checked)
        self.apply_parameters(pg, list(checked))
        self.event(pg.name, "cache-parameter-group", f"Parameter group modified: {', '.join(checked)}")
        return pg

    def _parameter_values(self, pg: ParameterGroup, items: list[tuple[str | None, Any]]) -> dict[str, str]:
        if not items:
            raise invalid_value("The parameter ParameterNameValues must be provided with at least one parameter.")
        if len(items) > MAX_PARAMETERS_PER_CALL:
            raise invalid_value(f"You can modify up to {MAX_PARAMETERS_PER_CALL} parameters in one request.")
        out: dict[str, str] = {}
        for key, value in items:
            if not key:
                raise invalid_value("Each ParameterNameValues entry needs a ParameterName.")
            if value is None:
                raise invalid_value(f"Parameter {key} needs a ParameterValue.")
            try:
                catalogue.validate(pg.family, key, value)
            except catalogue.CatalogueError as err:
                raise from_catalogue(err) from None
            if key == "cluster-enabled" and (pg_users_clusters(pg, self) or pg_users_groups(pg, self)):
                raise invalid_value("cluster-enabled cannot be changed on a parameter group in use.")
            out[key] = str(value)
        if "reserved-memory" in out and "reserved-memory-percent" in {**pg.values, **out} and \
                out.get("reserved-memory", "0") != "0":
            raise invalid_combination("A parameter group uses reserved-memory or reserved-memory-percent, not both.")
        return out

    def reset_cache_parameter_group(self, name: str | None, reset_all: bool = False,
                                    names: list[str | None] | None = None) -> ParameterGroup:
        pg = self._own_group(name)
        names = names or []
        if reset_all:
            if names:
                raise invalid_combination("Use ResetAllParameters or ParameterNameValues, not both.")
            changed = list(pg.values)
            pg.values.clear()
        else:
            if not names:
                raise invalid_value("Name the parameters to reset, or set ResetAllParameters.")
            for n in names:
                try:
                    catalogue.parameter(pg.family, str(n))
                except catalogue.CatalogueError as err:
                    raise from_catalogue(err) from None
            changed = [str(n) for n in names]
            for n in changed:
                pg.values.pop(n, None)
        self.apply_parameters(pg, changed)
        self.event(pg.name, "cache-parameter-group", "Parameter group reset")
        return pg

    def delete_cache_parameter_group(self, name: str | None) -> None:
        pg = self._own_group(name)
        users = [c.cluster_id for c in pg_users_clusters(pg, self)] + [g.group_id for g in pg_users_groups(pg, self)]
        if users:
            raise invalid_state("CacheParameterGroup", pg.name, f"in use by {', '.join(users)}", "unused")
        with self.lock:
            self.param_groups.pop(pg.name, None)

    def apply_parameters(self, pg: ParameterGroup, changed: list[str] | None = None) -> None:
        """Apply a group's values to the nodes that use it, as ElastiCache does.

        Immediate parameters are CONFIG SET on every running Redis node (all of them when `changed`
        is None, e.g. after a restart); a changed requires-reboot parameter (or any Memcached one)
        marks the users `pending-reboot`. reserved-memory(-percent) sets maxmemory again. A value the
        engine refuses (CONFIG SET activedefrag on a build without it) is recorded as an event: AWS
        accepts it, so the call does not fail.
        """
        names = list(dict.fromkeys([*STARTUP_PARAMETERS, *pg.values])) if changed is None else changed
        names = [n for n in names if n in pg.values or n in pg.catalog]  # a family lists only its own
        reboot = [n for n in names if catalogue.parameter(pg.family, n).change_type == "requires-reboot"]
        clusters, groups = pg_users_clusters(pg, self), pg_users_groups(pg, self)
        if changed is not None and (reboot or pg.family.startswith("memcached")) and names:
            for r in [*clusters, *groups]:
                r.params_pending_reboot = True
        if pg.family.startswith("memcached"):
            return
        settings = catalogue.engine_settings(pg.family, {n: pg.value(n) for n in names
                                                         if catalogue.parameter(pg.family, n).engine_config})
        memory = any(n in ("reserved-memory", "reserved-memory-percent") for n in names)
        for cc in clusters:
            if cc.status in ("creating", "available", "modifying") and cc.engine != "memcached":
                svc = services.get(cc.service_name())
                if svc:
                    extra = {"maxmemory": str(pg.maxmemory(cc.node_type, cc.engine))} if memory else {}
                    self._config_set(cc.cluster_id, "cache-cluster", [self._cluster_conn(cc, svc.nodes[0])],
                                     {**settings, **extra})
        for g in groups:
            if g.status in ("creating", "available", "modifying"):
                svc = services.get(g.service_name)
                if svc:
                    extra = {"maxmemory": str(pg.maxmemory(g.node_type, g.engine))} if memory else {}
                    self._config_set(g.group_id, "replication-group",
                                     [self._admin(g, svc, n) for n in ops.data_nodes(svc)], {**settings, **extra})

    def _config_set(self, source: str, kind: str, conns: list[Any], settings: dict[str, str]) -> None:
        refused = []
        for conn in conns:
            for key, value in settings.items():
                try:
                    ops.config_set([conn], {key: value})
                except ops.ENGINE_ERRORS as exc:  # the engine's refusal is recorded, not raised
                    refused.append(f"{key}={value} ({exc})")
        if refused:
            self.event(source, kind, "The engine did not apply: " + "; ".join(sorted(set(refused))) +
                       " (accepted by the API, as on AWS)")

    def reboot_applied(self, resource: CacheCluster | ReplicationGroup) -> None:
        """A restart applies pending-reboot parameters: the status goes back to in-sync."""
        resource.params_pending_reboot = False
        pg = self.param_groups.get(resource.param_group)
        if pg is None:
            return
        try:
            self.apply_parameters(pg)
        except (*ops.ENGINE_ERRORS, ApiError) as exc:  # a node not back yet: it starts with the group's values
            log.warning("could not apply parameter group %s after a restart: %s", pg.name, exc)


def pg_users_clusters(pg: ParameterGroup, plane: Any) -> list[CacheCluster]:
    """The cache clusters of `plane` (the backend) that use parameter group `pg`."""
    return [c for c in list(plane.clusters.values()) if c.param_group == pg.name]


def pg_users_groups(pg: ParameterGroup, plane: Any) -> list[ReplicationGroup]:
    """The replication groups of `plane` (the backend) that use parameter group `pg`."""
    return [g for g in list(plane.groups.values()) if g.param_group == pg.name]
