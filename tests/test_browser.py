"""The welcome lab, run as a learner runs it: JupyterLab in a real (headless) Chromium.

JupyterLab is started with the same arguments `make lab` uses (helpers.tools.jupyter), the welcome lab
is run with the Run menu's "Run All Cells", and its ipywidget must render and answer a click
(the browser-to-kernel comm round trip that nbval cannot test). A screenshot is kept under
artifacts/. Outside CI the test skips when Chromium or Playwright is missing; in CI it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from helpers.tools import jupyter

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("ELASTICACHE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WELCOME = "labs/00_welcome.ipynb"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_TIMEOUT_S = 240


def _missing() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set ELASTICACHE_LAB_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not (ROOT / WELCOME).exists():
        return f"{WELCOME} is missing"
    return None


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A copy of the welcome lab in a scratch root: running it in the browser never edits the repo."""
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"The browser test must run in CI, but: {reason}. .ci/run installs Chromium.")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("browser-lab")
    (root / "labs").mkdir()
    shutil.copy(ROOT / WELCOME, root / WELCOME)
    if (ROOT / "data").is_dir():
        (root / "data").symlink_to(ROOT / "data")
    return root


def _code_cell_prompts(page) -> list[str]:
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt", "els => els.map(e => e.textContent.trim())")


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()


def _accept_dialog(page) -> bool:
    """Answer a "Select Kernel" dialog as a learner would (JupyterLab asks when it is slow to list kernels)."""
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    if accept.count() and accept.first.is_visible():
        accept.first.click()
        return True
    return False


def _wait_all_executed(page, n_code: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    prompts: list[str] = []
    reissued = False
    started = time.monotonic()
    while time.monotonic() < deadline:
        _accept_dialog(page)
        prompts = _code_cell_prompts(page)
        if len(prompts) == n_code and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return prompts
        idle = all(p == "[ ]:" for p in prompts)
        if idle and not reissued and time.monotonic() - started > 30:
            _run_all(page)  # the first "Run All" was swallowed (e.g. by a dialog): ask once more
            reissued = True
        page.wait_for_timeout(500)
    raise AssertionError(f"The notebook did not finish running within {timeout:.0f}s; prompts: {prompts}")


def test_welcome_lab_runs_in_a_real_browser(workspace):
    import nbformat
    from playwright.sync_api import sync_playwright

    nb = nbformat.read(workspace / WELCOME, as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    assert any("widget" in c.source for c in nb.cells if c.cell_type == "code"), \
        "the welcome lab should show at least one ipywidget"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-welcome.png"

    jupyter.start_services()  # what `python -m helpers lab` does before starting JupyterLab
    env = {"JUPYTERLAB_WORKSPACES_DIR": str(workspace / ".workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(workspace / ".settings")}
    with jupyter.lab_server(workspace, notebook=WELCOME, env=env) as server, sync_playwright() as pw:
        assert "--ServerApp.ip=127.0.0.1" in server.argv and server.token not in " ".join(server.argv)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url("/"), timeout=120_000)  # the server's default URL: the welcome lab, not the Launcher
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator", timeout=120_000)
            # The first screen says how to run a cell (waited for: a loaded machine renders the markdown late).
            page.locator(".jp-MarkdownOutput", has_text="Shift+Enter").first.wait_for(state="visible",
                                                                                      timeout=120_000)
            _accept_dialog(page)
            _run_all(page)
            prompts = _wait_all_executed(page, n_code, RUN_TIMEOUT_S)
            assert len(prompts) == n_code

            outputs = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
            text = "\n".join(outputs)
            assert "Traceback" not in text, f"a cell failed in the browser:\n{text[:3000]}"
            assert "Error displaying widget" not in page.content()
            assert "exercises solved" in text and "Next:" in text, "the progress table rendered"

            # The widget rendered as live controls, not as a text repr.
            widgets = page.locator(".jp-OutputArea-output .jupyter-widgets")
            assert widgets.count() >= 1, "no ipywidget was rendered"
            slider = page.locator(".jp-OutputArea-output .widget-slider")
            assert slider.count() >= 1
            slider.first.scroll_into_view_if_needed()
            toasts = page.locator(".jp-Notification-Toast").all_inner_texts()
            assert not [t for t in toasts if "news" in t.lower() or "update" in t.lower()], toasts
            # A click travels browser -> kernel -> Redis -> kernel -> browser.
            html_out = page.locator(".jp-OutputArea-output .widget-html-content", has_text="lab00:ttl-demo").first
            before = html_out.inner_text()
            page.wait_for_timeout(1500)  # let the TTL count down so the next reading differs
            page.locator(".jp-OutputArea-output button", has_text="GET + TTL now").first.click()
            page.wait_for_function(
                "([sel, before]) => { const e = document.querySelector(sel); return e && e.innerText !== before; }",
                arg=[".jp-OutputArea-output .widget-html-content", before], timeout=20_000)
            after = html_out.inner_text()
            assert after != before and ("TTL=" in after or "gone" in after), (before, after)
            page.screenshot(path=str(shot))
        finally:
            if page is not None and not shot.exists():
                try:
                    page.screenshot(path=str(ARTIFACTS / "browser-welcome-failure.png"))
                except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
                    pass
            browser.close()
    assert shot.stat().st_size > 10_000
    assert server.process.poll() is not None, "JupyterLab is still running after the test"


def test_lab_command_arguments_stay_on_loopback():
    """What `make lab` runs: loopback only, the welcome lab open, the course's configuration, extra args passed through."""
    from helpers.tools.cli import build_parser

    args = jupyter.lab_args()
    assert args[0] == "lab" and "--ServerApp.ip=127.0.0.1" in args
    # No notebook as a positional argument: it would root the file browser at labs/ (hiding the README).
    assert f"--LabApp.default_url=/lab/tree/{WELCOME}" in args and WELCOME not in args
    assert ("--allow-root" in args) == (os.geteuid() == 0)
    parsed = build_parser().parse_args(["lab", "--", "--no-browser", "--ServerApp.port=8899"])
    assert parsed.jupyter_args[-2:] == ["--no-browser", "--ServerApp.port=8899"]
    env = jupyter.lab_env({"PATH": "/usr/bin:/bin", "JUPYTER_CONFIG_PATH": "/etc/mine"})
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep) == [str(jupyter.CONFIG_DIR), "/etc/mine"]
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(os.path.abspath(sys.executable))


def test_course_jupyter_configuration_turns_off_news_and_update_checks():
    import json

    server = json.loads((jupyter.CONFIG_DIR / "jupyter_server_config.json").read_text())
    assert server["LabApp"]["news_url"] is None  # None, not "": an empty URL still asks the learner about news
    assert server["LabApp"]["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
    assert server["TerminalsExtensionApp"]["terminal_manager_class"] == "helpers.tools.terminals.LabTerminalManager"
    overrides = json.loads((jupyter.CONFIG_DIR / "labconfig" / "default_setting_overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}


def test_lab_terminal_has_the_lab_environment(tmp_path):
    """A terminal opened in JupyterLab finds the project's python and aws first, and the lab's services."""
    import json
    import urllib.request

    jupyter.start_services()
    from helpers.runtime import services

    (tmp_path / "labs").mkdir()
    shutil.copy(ROOT / WELCOME, tmp_path / WELCOME)
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    # As if the learner's PATH (or ~/.bashrc) put another Python first, with a real AWS profile set.
    env = {"PATH": f"/usr/local/bin:/usr/bin:/bin:{bindir}", "AWS_PROFILE": "someone-elses-real-profile",
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / ".workspaces")}
    with jupyter.lab_server(tmp_path, notebook=WELCOME, env=env) as server:
        out = server.run_in_terminal(
            'echo "python=$(command -v python) aws=$(command -v aws)"; '
            'echo "endpoint=$AWS_ENDPOINT_URL redis=$REDIS_URL profile=${AWS_PROFILE:-none}"; '
            'python -m helpers progress; echo "progress-exit=$?"; '
            'aws elasticache describe-cache-clusters --output json | head -c 300', timeout=90)
        req = urllib.request.Request(f"{server.base_url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
                                     headers={"Authorization": f"token {server.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            defaults = json.load(resp)["schema"]["properties"]  # the overrides become the defaults
    assert f"python={bindir}/python " in out and f"aws={bindir}/aws" in out, out
    assert f"endpoint={services.get('aws').url} redis={services.get('redis').url} profile=none" in out, out
    assert "progress-exit=0" in out and "ModuleNotFoundError" not in out, out
    assert '"CacheClusters"' in out, out
    assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False


FEEDBACK_NB = "labs/feedback_and_wait.ipynb"


def _wait_kernel_idle(page, timeout_ms: int = 120_000) -> None:
    """Until the notebook's kernel is up and idle (JupyterLab's execution indicator says so)."""
    try:
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - an older JupyterLab without the attribute: Run All is re-issued if swallowed
        pass


def _small_notebook(path: Path) -> None:
    """A checker's answer to a wrong value (its message has a `code` span) and a cell that waits 6 s
    through helpers.runtime.notebook.waiting, the status line the labs' long cells show."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from helpers.checks.lab00 import q1\nq1.check(12345)"),
                nbformat.v4.new_code_cell("import time\nfrom helpers.runtime.notebook import waiting\n"
                                          "with waiting('the demo to finish'):\n    time.sleep(8)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_feedback_renders_and_a_long_cell_shows_its_progress_in_a_real_browser(workspace):
    """What a learner sees, not what the kernel sent: the checker's `code` span as <code> (no backticks),
    and a long cell's status line shown while it runs, updated in place, then saying how long it took."""
    from playwright.sync_api import sync_playwright

    _small_notebook(workspace / FEEDBACK_NB)
    ARTIFACTS.mkdir(exist_ok=True)
    jupyter.start_services()
    env = {"JUPYTERLAB_WORKSPACES_DIR": str(workspace / ".workspaces-feedback"),
           "JUPYTERLAB_SETTINGS_DIR": str(workspace / ".settings")}
    with jupyter.lab_server(workspace, notebook=FEEDBACK_NB, env=env) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url("/"), timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator", timeout=120_000)
            _accept_dialog(page)
            _wait_kernel_idle(page)
            _run_all(page)
            # The wait's line appears while the cell still runs ("waiting for ...: N s")...
            status = page.locator(".jp-OutputArea-output", has_text="waiting for the demo to finish")
            deadline = time.monotonic() + RUN_TIMEOUT_S
            started, reissued = time.monotonic(), False
            while not status.count() and time.monotonic() < deadline:
                _accept_dialog(page)
                if not reissued and time.monotonic() - started > 30 and \
                        all(p == "[ ]:" for p in _code_cell_prompts(page)):
                    _run_all(page)  # the first "Run All" was swallowed (the kernel was still starting)
                    reissued = True
                page.wait_for_timeout(200)
            if not status.count():
                page.screenshot(path=str(ARTIFACTS / "browser-feedback-failure.png"))
            assert status.count(), f"no status line while the long cell ran; prompts {_code_cell_prompts(page)}"
            assert re.search(r"waiting for the demo to finish: \d+ s", status.first.inner_text())
            # ...and is replaced, in the same output, by how long it took.
            _wait_all_executed(page, 2, RUN_TIMEOUT_S)
            page.locator(".jp-OutputArea-output", has_text=re.compile(r"waited \d+ s for the demo to finish")) \
                .first.wait_for(state="visible", timeout=30_000)
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            wait_outputs = cells.nth(1).locator(".jp-OutputArea-output").all_inner_texts()
            assert len(wait_outputs) == 1 and re.fullmatch(r"waited \d+ s for the demo to finish",
                                                           wait_outputs[0].strip()), wait_outputs
            # The checker's feedback: rendered, its `code` span a <code> element, no raw backtick.
            feedback = cells.nth(0).locator(".jp-OutputArea-output")
            text = "\n".join(feedback.all_inner_texts())
            assert "12345 is not the port your Redis listens on" in text, text
            assert "`" not in text, f"raw Markdown backticks in the feedback: {text!r}"
            code = feedback.locator("code", has_text="helpers.get('redis').port")
            assert code.count() == 1, feedback.first.inner_html()
            assert "Traceback" not in text
            page.screenshot(path=str(ARTIFACTS / "browser-feedback.png"))
        finally:
            browser.close()
