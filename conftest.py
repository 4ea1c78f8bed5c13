"""Test-run wiring shared by unit tests and notebook runs (nbval).

The whole run uses its own state directory, so it never touches a learner's services, and it
stops every process it started when the run ends, even after failures. Three more things make a
green run mean "passes every time", not "passed once on an idle machine in one order":

- `--lab-seed N`: the files of the run (notebooks, test modules) in an order shuffled with seed N.
  A file given twice (`--keep-duplicates`) runs twice, each round in its own shuffled order; the
  cells of a notebook keep their order. The seed is printed; the same seed gives the same order.
- `--cpu-load P` (with `--cpu-load-round R`): every core kept P% busy by a load generator
  (helpers/tools/cpuload.py) for the whole run, or only while round R runs.
- The orphan check: after each notebook and each test module, every engine process of the state
  directory must be one that `python -m helpers status` lists; a process no record holds (what a
  lab or a test leaked) fails that file's last test, and is stopped.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time

import pytest

# Set before helpers is imported anywhere, and inherited by the kernels nbval starts.
if not os.environ.get("ELASTICACHE_LAB_TEST_KEEP_HOME"):
    os.environ["ELASTICACHE_LAB_HOME"] = tempfile.mkdtemp(prefix="elasticache-lab-test-")
os.environ.setdefault("MPLBACKEND", "Agg")
# English messages, whatever the machine's locale: the tests compare them. A Spanish notebook still answers
# in Spanish (the edition's folder, labs/es/, has a .lab-lang marker, which wins: helpers.runtime.i18n.lang).
os.environ["ELASTICACHE_LAB_LANG"] = "en"

# A process started just as a file ends (a group still being deleted, a node being replaced) gets
# this long to be recorded or gone before it counts as an orphan.
ORPHAN_GRACE = 20.0


def pytest_addoption(parser):
    group = parser.getgroup("elasticache-lab")
    group.addoption("--lab-seed", type=int, default=None,
                    help="run the files in an order shuffled with this seed (each round of duplicates apart)")
    group.addoption("--cpu-load", type=int, default=0, help="keep every core this many percent busy")
    group.addoption("--cpu-load-round", type=int, default=0,
                    help="only while this round of the files runs (1, 2, ...; 0: the whole run)")
    group.addoption("--no-orphan-check", action="store_true", help="skip the check for unrecorded processes")


def _file_of(item):
    return item.getparent(pytest.File) or item.parent


def _rounds(items):
    """The items grouped by file node, and each group's round: 1 for a file's first run, 2 for its second."""
    groups, seen, order = {}, {}, []
    for item in items:
        node = _file_of(item)
        if id(node) not in groups:
            groups[id(node)] = []
            seen[node.path] = seen.get(node.path, 0) + 1
            order.append((seen[node.path], id(node)))
        groups[id(node)].append(item)
    return [(rnd, groups[key]) for rnd, key in order]


def pytest_report_header(config):
    seed = config.getoption("--lab-seed")
    lines = []
    if seed is not None:
        lines.append(f"file order: shuffled with seed {seed} (pass --lab-seed {seed}, or make test SEED={seed}, "
                     "to run the same order again)")
    if config.getoption("--cpu-load"):
        rnd = config.getoption("--cpu-load-round")
        lines.append(f"cpu load: every core {config.getoption('--cpu-load')}% busy, "
                     + (f"while round {rnd} runs" if rnd else "the whole run"))
    return lines


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    seed = config.getoption("--lab-seed")
    groups = _rounds(items)
    for rnd, group in groups:
        for item in group:
            item.stash[_ROUND] = rnd
    if seed is None:
        return
    rng = random.Random(seed)
    ordered = []
    for rnd in sorted({rnd for rnd, _ in groups}):
        this = [g for r, g in groups if r == rnd]
        rng.shuffle(this)
        ordered += this
    items[:] = [item for group in ordered for item in group]
    names = [g[0].path.name for g in ordered]
    sys.stdout.write(f"\nfile order (seed {seed}): {' '.join(names)}\n")


_ROUND = pytest.StashKey[int]()


class _Load:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self, percent: int) -> None:
        if self.proc is None and percent > 0:
            # Not a process of the state directory: it is the run's, and it ends with the run.
            env = {k: v for k, v in os.environ.items() if k != "ELASTICACHE_LAB_HOME"}
            self.proc = subprocess.Popen([sys.executable, "-m", "helpers.tools.cpuload", "--percent", str(percent),
                                          "--seconds", "3600", "--parent", str(os.getpid())],
                                         stdin=subprocess.DEVNULL, env=env)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


_load = _Load()


def pytest_sessionstart(session):
    config = session.config
    if config.getoption("--cpu-load") and not config.getoption("--cpu-load-round") \
            and not hasattr(config, "workerinput"):  # once per run, not once per xdist worker
        _load.start(config.getoption("--cpu-load"))


def pytest_runtest_setup(item):
    config = item.config
    wanted = config.getoption("--cpu-load-round")
    if config.getoption("--cpu-load") and wanted:
        if item.stash.get(_ROUND, 1) == wanted:
            _load.start(config.getoption("--cpu-load"))
        else:
            _load.stop()


@pytest.hookimpl(trylast=True)  # after the item's own teardown
def pytest_runtest_teardown(item, nextitem):
    """After the last test of a file: no engine process of this state directory outside the records."""
    if item.config.getoption("--no-orphan-check"):
        return
    if nextitem is not None and _file_of(nextitem) is _file_of(item):
        return
    orphans = _orphans()
    if orphans:
        from helpers.runtime import services

        services.sweep_orphans()
        pytest.fail(f"{_file_of(item).path.name} left {len(orphans)} process(es) that `helpers status` does not "
                    f"list: {', '.join(orphans)}", pytrace=False)


def _orphans() -> list[str]:
    import psutil

    from helpers.runtime import services

    deadline = time.monotonic() + ORPHAN_GRACE
    while True:
        found = []
        for proc in services.unrecorded_processes():
            try:
                found.append(f"{proc.name()}[{proc.pid}] {' '.join(proc.cmdline())[:120]}")
            except psutil.Error:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def pytest_sessionfinish(session, exitstatus):
    _load.stop()
    import helpers

    helpers.stop()
    if not os.environ.get("ELASTICACHE_LAB_TEST_KEEP_HOME"):
        import shutil

        shutil.rmtree(os.environ["ELASTICACHE_LAB_HOME"], ignore_errors=True)
