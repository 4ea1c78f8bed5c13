"""The process behind the `aws` service: moto in server mode on loopback, plus our extensions.

Run as `python -m helpers.aws.server --port N` (services.start("aws") does it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from helpers.aws.endpoint import FAKE_KEY, REGION


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
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    home = state.home()
    auth.credentials(home)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, auth.require_signature(app, home), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
