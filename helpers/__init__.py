"""The ElastiCache Lab's helpers: real engines on loopback, a local AWS API, checked exercises.

Notebooks start with one line, for example::

    from helpers import redis_client, memcached_client, aws_client

Every AWS SDK call made from a process that imported this package goes to the local endpoint
(see helpers.aws.endpoint); set ELASTICACHE_LAB_REAL_AWS=1 beforehand to use a real account on purpose.
"""

from __future__ import annotations

from typing import Any

from helpers.aws import endpoint as localaws
from helpers.exercises.core import Exercise, Wrong
from helpers.runtime import notebook
from helpers.runtime.i18n import translator
from helpers.runtime.services import Service, get, start, status, stop
from helpers.runtime.state import LabError, disk_errors, home

__all__ = ["LabError", "Service", "Exercise", "Wrong", "start", "stop", "status", "get", "home",
           "redis_client", "memcached_client", "aws_client", "aws_endpoint", "lab_setup"]
_ = translator("helpers.__init__")  # its catalogue: helpers/locale/<lang>/__init__.po, named for the file


def redis_client(name: str = "redis", **client_options: Any) -> Any:
    """A redis.Redis client for the standalone Redis `name`, started (or healed) on demand."""
    with disk_errors():
        return start("redis", name=name).client(**client_options)


def memcached_client(name: str = "memcached", **client_options: Any) -> Any:
    """A pymemcache Client for the Memcached node `name`, started (or healed) on demand."""
    with disk_errors():
        return start("memcached", name=name).client(**client_options)


def aws_client(service_name: str, **kwargs: Any) -> Any:
    """A boto3 client bound to the local AWS endpoint (started on demand)."""
    with disk_errors():
        return localaws.client(service_name, **kwargs)


def aws_endpoint() -> str:
    with disk_errors():
        return localaws.endpoint()


def lab_setup(*names: str) -> dict[str, Service]:
    """Start the services a lab needs (default: redis, memcached, aws) and show where they listen."""
    notebook.install()
    names = names or ("redis", "memcached", "aws")
    with disk_errors():
        started = {n: start(n) for n in names}
        if "aws" in started:
            localaws.guard(started["aws"].url)
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            rows = [f"{svc.name:<10} {n.role:<10} {n.host}:{n.port}" for svc in started.values() for n in svc.nodes]
            print(_("Services running for this lab:") + "\n  " + "\n  ".join(rows))
    except ImportError:
        pass
    return started


def _guard_on_import() -> None:
    """Keep AWS SDK calls local from the first line. If the state directory cannot be used, still
    keep them local (no credentials, an endpoint nothing listens on); the LabError that says what is
    wrong with it comes, in one sentence, from the first call that needs it."""
    import os

    try:
        localaws.guard()
    except LabError:
        if localaws.real_aws_opted_in():
            return
        for key in [*localaws.UNSET, *(k for k in os.environ if k.startswith(localaws.SERVICE_ENDPOINT_PREFIX))]:
            os.environ.pop(key, None)
        os.environ.update({"AWS_ENDPOINT_URL": localaws.UNSTARTED_ENDPOINT, "AWS_ACCESS_KEY_ID": localaws.FAKE_KEY,
                           "AWS_SECRET_ACCESS_KEY": localaws.FAKE_KEY, "AWS_DEFAULT_REGION": localaws.REGION,
                           "AWS_REGION": localaws.REGION, "AWS_EC2_METADATA_DISABLED": "true",
                           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})


_guard_on_import()
notebook.install()  # in a kernel: a lost server or a LabError is one paragraph, not a traceback wall
