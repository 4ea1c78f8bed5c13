"""Binder and the lock file: what a learner who clicks the README's badge gets.

The fast tests check the pieces (badge, lock file, binder/ files, binder/start). The slow one,
`make binder-test` (ELASTICACHE_LAB_BINDER_TEST=1), does what Binder does: installs
binder/requirements.txt into a fresh venv as a non-root user, runs lab 00 through binder/start, and
opens a JupyterLab terminal on a server started through binder/start.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from packaging.requirements import Requirement

from helpers.runtime import engines, process
from helpers.tools import jupyter, lockfile

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
WELCOME = "labs/00_welcome.ipynb"
BADGE = re.compile(r"^\[binder\]: https://mybinder\.org/v2/gh/(?P<repo>\S+)/HEAD\?urlpath=(?P<urlpath>\S+)$", re.M)


def test_readme_badge_opens_the_welcome_lab():
    readme = (ROOT / "README.md").read_text()
    assert "[![Launch on Binder](https://mybinder.org/badge_logo.svg)][binder]" in readme.split("\n## ")[0], \
        "the badge sits at the top of the README"
    link = BADGE.search(readme)
    assert link, "the badge's link is defined once, as [binder]: https://mybinder.org/v2/gh/.../HEAD?urlpath=..."
    assert link["urlpath"] == "lab%2Ftree%2F" + WELCOME.replace("/", "%2F")
    assert (ROOT / WELCOME).exists()
    # Before publication the repository is the GITHUB_REPOSITORY placeholder, which the README explains.
    assert link["repo"] == "GITHUB_REPOSITORY" or re.fullmatch(r"[\w.-]+/[\w.-]+", link["repo"])
    assert "GITHUB_REPOSITORY" not in readme or "replace `GITHUB_REPOSITORY`" in readme


def test_binder_installs_the_locked_versions_and_the_lab():
    lines = [ln.strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == ["-c ../requirements.lock", "-e ."]
    assert (BINDER / "../requirements.lock").resolve() == lockfile.LOCK
    assert (BINDER / "runtime.txt").read_text().strip() == f"python-{lockfile.locked_python()}"
    setup = (ROOT / "scripts" / "setup_python.py").read_text()  # make setup's Python half
    assert '"-c", "requirements.lock", *SPEC' in setup and 'SPEC = ["-e.[test]"' in setup
    assert "setup_python.py" in (ROOT / "scripts" / "setup-python.sh").read_text()
    assert "requirements.lock" in (ROOT / "Makefile").read_text().split("$(STAMP):")[1].splitlines()[0]


def test_lock_pins_every_dependency_of_pyproject_within_its_range():
    pins = lockfile.read()
    assert pins and all(re.fullmatch(r"[\w.+!]+", v) for v in pins.values()), "one name==version per line"
    assert "elasticache-lab" not in pins and "pip" not in pins
    for req in lockfile.project_requirements():
        name = lockfile.normalize(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"


def test_lock_is_complete_and_consistent_for_this_environment():
    """Every package the dependencies pull in is pinned, and each pinned set satisfies its own requirements."""
    pins = lockfile.read()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here != lockfile.locked_python():
        pytest.skip(f"the lock was made with Python {lockfile.locked_python()}, this is {here}")
    needed = lockfile.resolve(lockfile.project_requirements())
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"requirements.lock lacks {missing}: run `make lock`"
    for name, version in pins.items():
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        if dist.version != version:
            continue  # another version is installed here: its metadata says nothing about the pinned one
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dep = lockfile.normalize(req.name)
            if dep in pins:
                assert req.specifier.contains(pins[dep], prereleases=True), f"{name} needs {req}, lock has {pins[dep]}"


def test_lock_installs_on_the_oldest_python_it_serves():
    """Every pinned package admits lockfile.FLOOR (Debian 12's python3), as far as this environment can tell."""
    from packaging.specifiers import SpecifierSet

    pins = lockfile.read()
    for name, version in pins.items():
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        if dist.version == version:
            spec = SpecifierSet(dist.metadata.get("Requires-Python") or "")
            assert spec.contains(lockfile.FLOOR), f"{name}=={version} needs Python {spec}: hold it back in lockfile"
    assert all(pins[name] == version for name, version in lockfile.HELD_BACK.items())


def test_binder_start_starts_the_services_and_sets_the_jupyter_configuration(tmp_path):
    start = BINDER / "start"
    assert os.access(start, os.X_OK), "binder/start must be executable"
    text = start.read_text()
    assert text.startswith("#!/bin/bash") and text.rstrip().endswith('exec "$@"')
    subprocess.run(["bash", "-n", str(start)], check=True)
    home = os.environ["ELASTICACHE_LAB_HOME"]  # the test run's own state directory
    env = {**os.environ, "HOME": str(tmp_path), "ELASTICACHE_LAB_HOME": home,
           "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "JUPYTER_CONFIG_PATH": "/etc/other"}
    out = subprocess.run([str(start), "sh", "-c", 'echo "$JUPYTER_CONFIG_PATH"; python -m helpers status --json'],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    config_path, status = out.stdout.split("\n", 1)
    assert config_path == f"{ROOT}/helpers/tools/jupyter_config:/etc/other"
    assert (ROOT / "helpers/tools/jupyter_config/jupyter_server_config.json").exists()
    assert {"redis", "memcached", "aws"} <= set(json.loads(status)["services"])


# --- the slow one: `make binder-test` --------------------------------------------------------------

SLOW = os.environ.get("ELASTICACHE_LAB_BINDER_TEST", "") not in ("", "0")


def _as_learner(argv: list[str], user: str | None) -> list[str]:
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # util-linux; /usr/sbin is often not on PATH
    return [runuser, "-m", "-u", user, "--", *argv] if user else argv  # -m: keep the environment given


def _copy_repository(dest: Path) -> None:
    """The repository's files as Binder sees them (no .venv, .git or local artifacts)."""
    ignore = shutil.ignore_patterns(".venv", ".git", "artifacts", "__pycache__", "*.egg-info", ".ipynb_checkpoints")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


@pytest.mark.skipif(not SLOW, reason="slow (installs every package): run `make binder-test`")
def test_binder_environment_from_scratch_as_a_non_root_user(tmp_path):
    user = "nobody" if os.geteuid() == 0 else None  # as root, become a non-root user; otherwise stay
    # Binder's Python version (runtime.txt), from a place the learner can read (not root's pyenv).
    wanted = f"python{lockfile.locked_python()}"
    candidates = [f"/usr/bin/{wanted}", f"/usr/local/bin/{wanted}", shutil.which(wanted), "/usr/bin/python3"]
    usable = [c for c in candidates if c and os.path.exists(c) and subprocess.run(
        _as_learner([c, "-c", "import ensurepip, venv"], user), capture_output=True).returncode == 0]
    assert usable, f"no Python the learner can run among {candidates}"
    python = usable[0]
    base = Path(f"/tmp/elasticache-binder-{os.getpid()}")  # not under pytest's tmp_path: that is private to us
    shutil.rmtree(base, ignore_errors=True)
    repo, home = base / "repo", base / "home"
    _copy_repository(repo)
    home.mkdir(parents=True)
    if user:
        shutil.chown(base, user)
        subprocess.run(["chown", "-R", f"{user}:", str(base)], check=True)
    venv = base / "venv"
    env = {"HOME": str(home), "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "SHELL": "/bin/bash", "TMPDIR": str(base)}  # Binder's user has bash as its shell
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
                "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "SSL_CERT_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]

    def run(argv: list[str], timeout: float, **kw):
        proc = subprocess.run(_as_learner(argv, user), cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout, **kw)
        assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    try:
        run([python, "-m", "venv", str(venv)], 300)
        run([f"{venv}/bin/python", "-m", "pip", "install", "-q", "--upgrade", "pip"], 600)
        t0 = time.monotonic()
        run([f"{venv}/bin/pip", "install", "-q", "-r", "binder/requirements.txt"], 1800)  # what repo2docker runs
        print(f"binder/requirements.txt installed in {time.monotonic() - t0:.0f} s")
        frozen = run([f"{venv}/bin/pip", "freeze", "--exclude-editable"], 120).stdout
        pins = lockfile.read()
        for line in frozen.splitlines():
            name, _, version = line.partition("==")
            if lockfile.normalize(name) in pins:
                assert pins[lockfile.normalize(name)] == version, f"{line} is not the locked version"

        # Lab 00, executed through binder/start as Binder would start Jupyter.
        run(["binder/start", "jupyter", "nbconvert", "--to", "notebook", "--execute", WELCOME,
             "--ExecutePreprocessor.timeout=600", "--output-dir", str(base), "--output", "welcome-run"], 900)
        assert (base / "welcome-run.ipynb").exists()

        # A JupyterLab started through binder/start: its terminals find the lab's python and aws first.
        port, token = engines.free_port(), os.urandom(12).hex()
        server = subprocess.Popen(
            _as_learner(["binder/start", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                         f"--ServerApp.port={port}", "--ServerApp.port_retries=0"], user),
            cwd=repo, env={**env, "JUPYTER_TOKEN": token}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "jupyter lab did not start"
                    time.sleep(0.5)
            out = jupyter.run_in_terminal(url, token, 'echo "python=$(command -v python) aws=$(command -v aws)"; '
                                                      'python -m helpers progress; echo "progress-exit=$?"', 120)
        finally:
            try:
                started = psutil.Process(server.pid)
            except psutil.Error:
                started = None
            process.stop_tree(started, popen=server)  # the server and the kernels it started
        assert f"python={venv}/bin/python aws={venv}/bin/aws" in out, out
        assert "progress-exit=0" in out and "Your progress:" in out, out
    finally:
        try:
            if (venv / "bin" / "python").exists():
                subprocess.run(_as_learner([f"{venv}/bin/python", "-m", "helpers", "stop"], user), cwd=repo,
                               env=env, capture_output=True, timeout=120)
        finally:
            shutil.rmtree(base, ignore_errors=True)
