"""The process behind the `aws` service: moto in server mode on loopback, plus our extensions.

Run as `python -m helpers.aws.server --port N` (services.start("aws") does it).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from helpers.aws.endpoint import FAKE_KEY, REGION

log = logging.getLogger(__name__)


def _warm_up() -> None:
    """Import what the first create-* request needs and find the engine binary while the endpoint waits
    for it: done on the first request instead, it added seconds to it on a loaded machine."""
    import contextlib

    from helpers.runtime.state import LabError

    with contextlib.suppress(ImportError, LabError, OSError):  # the first request says what is missing
        import redis.cluster  # noqa: F401
        import redis.sentinel  # noqa: F401

        from helpers.runtime import engines, topologies  # noqa: F401

        engines.kv_engine()


# What moto's EC2 loads on its first request and the course never reads (it makes VPCs, subnets and
# security groups, never instances or images): the catalogue of instance types (about 17 MB decoded),
# the instance-type offerings of every region and zone (about 60 MB), the default AMIs. They are not
# loaded: DescribeInstanceTypes, DescribeInstanceTypeOfferings and DescribeImages answer empty lists
# here (docs/local-vs-aws.md). The AWS server's memory once EC2 is used: 213 -> 127 MB USS (measured).
UNUSED_EC2 = {"ec2/resources/instance_types.json": dict, "ec2/resources/instance_type_offerings/": list,
              "ec2/resources/amis.json": list}


def slim_moto_ec2() -> None:
    """Make moto's EC2 skip the data the course never reads. Call before moto's EC2 is imported."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    from moto.utilities import utils

    if getattr(utils.load_resource, "slim", False):
        return
    load_resource = utils.load_resource

    def load(path: str, *args: object, **kwargs: object) -> object:
        for prefix, empty in UNUSED_EC2.items():
            if path.startswith(prefix):
                return empty()
        return load_resource(path, *args, **kwargs)

    load.slim = True  # type: ignore[attr-defined]
    utils.load_resource = load  # type: ignore[assignment]


def served_services(dispatcher: Any) -> Callable[[str], bool]:
    """Whether moto's dispatcher routes a request signed for a service (its signing name: elasticache,
    ec2, monitoring, logs, sts, ...) to one of moto's backends, asked the way it routes a request."""

    @functools.lru_cache(maxsize=512)
    def known(service: str) -> bool:
        environ = {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=K/20000101/{REGION}/{service}/aws4_request, "
                                         "SignedHeaders=host, Signature=0",
                   "PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_HOST": "127.0.0.1",
                   "HTTP_X_AMZ_TARGET": "Service_20120810.Operation", "CONTENT_TYPE": "", "CONTENT_LENGTH": "0"}
        try:
            host = dispatcher.infer_service_region_host(environ, "/")
            return host is not None and dispatcher.get_backend_for_host(host) is not None
        except Exception:  # moto's routing of an odd service name: let moto answer the request itself
            log.warning("cannot tell whether the service %r is served", service[:64], exc_info=True)
            return True

    return known


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.aws.server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from helpers.runtime import logs

    logs.setup("aws")  # the control plane's background threads log here (state directory, logs/aws.log)
    slim_moto_ec2()
    # The ElastiCache control plane that backs API calls with real engines plugs in here.
    from helpers.aws import controlplane

    controlplane.install()
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    # moto's own server (moto.server.main), with every request checked against the learner's key
    # first: on a shared machine anyone can reach a loopback port (helpers/aws/auth.py).
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    from helpers.aws import auth
    from helpers.runtime import state

    os.environ.setdefault("MOTO_PORT", str(args.port))
    def stop(*_: object) -> None:
        controlplane.shutdown()  # a clean stop: each cache's data and the records are saved first
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    home = state.home()
    auth.credentials(home)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, auth.require_signature(app, home, service_known=served_services(app)),
               threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
