"""The environment of a learner's shell: what `python -m helpers env` prints and JupyterLab's
terminals start with (the local AWS endpoint, REDIS_URL, MEMCACHED_SERVERS)."""

from __future__ import annotations

from helpers.aws import endpoint as localaws
from helpers.runtime import services


def lab_environment(start: bool = True) -> tuple[dict[str, str], list[str]]:
    """(variables to export, variables to unset) that point a shell at this learner's services.

    What `python -m helpers env` prints and what a JupyterLab terminal starts with. With
    `start=False` nothing is started: only services that already run are described.
    """
    exports: dict[str, str] = {}
    unset: list[str] = []
    real_aws = localaws.real_aws_opted_in()

    def service(name: str) -> services.Service | None:
        if start:
            return services.start(name)
        svc = services.get(name)
        return svc if svc and svc.nodes and all(n.alive() for n in svc.nodes) else None

    if not real_aws:
        aws = service("aws")
        exports.update(localaws.env(aws.url if aws else None))
        unset = list(localaws.UNSET)
    redis_svc = service("redis")
    if redis_svc:
        exports["REDIS_URL"] = redis_svc.url
        exports["REDIS_HOST"], exports["REDIS_PORT"] = redis_svc.host, str(redis_svc.port)
    mc = service("memcached")
    if mc:
        exports["MEMCACHED_SERVERS"] = f"{mc.host}:{mc.port}"
    return exports, unset
