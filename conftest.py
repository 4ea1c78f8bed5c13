"""Test-run wiring shared by unit tests and notebook runs (nbval).

The whole run uses its own state directory, so it never touches a learner's services, and it
stops every process it started when the run ends, even after failures.
"""

from __future__ import annotations

import os
import tempfile

# Set before helpers is imported anywhere, and inherited by the kernels nbval starts.
if not os.environ.get("ELASTICACHE_LAB_TEST_KEEP_HOME"):
    os.environ["ELASTICACHE_LAB_HOME"] = tempfile.mkdtemp(prefix="elasticache-lab-test-")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_sessionfinish(session, exitstatus):
    import helpers

    helpers.stop()
    if not os.environ.get("ELASTICACHE_LAB_TEST_KEEP_HOME"):
        import shutil

        shutil.rmtree(os.environ["ELASTICACHE_LAB_HOME"], ignore_errors=True)
