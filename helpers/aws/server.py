"""The process behind the `aws` service: moto in server mode on loopback, plus our extensions.

Run as `python -m helpers.aws.server --port N` (services.start("aws") does it).
"""

from __future__ import annotations

import argparse
import os
import threading

from helpers.aws.endpoint import FAKE_KEY, REGION


def _warm_up() -> None:
    """Import what the first create-* request needs and find the engine binary while the endpoint waits
    for it: done on the first request instead, it added seconds to it on a loaded machine."""
    import contextlib

    with contextlib.suppress(Exception):
        import redis.cluster  # noqa: F401
        import redis.sentinel  # noqa: F401

        from helpers.runtime import engines, topologies  # noqa: F401

        engines.kv_engine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.aws.server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", FAKE_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", FAKE_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    # The ElastiCache control plane that backs API calls with real engines plugs in here.
    from helpers.aws import controlplane

    controlplane.install()
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
