"""What a person sees in a notebook while the lab works: normal messages are not warnings, and a long wait
says that it is waiting. Checked in a real Jupyter kernel (ipykernel), read through the Jupyter protocol."""

from __future__ import annotations

import os
import re
import time

import pytest

from helpers.runtime import notebook

jupyter_client = pytest.importorskip("jupyter_client")


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ})
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc, code: str) -> list[dict]:
    """The iopub messages a cell produced (streams, displays, errors), as a notebook receives them."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out
        if msg["msg_type"] in ("stream", "display_data", "update_display_data", "error"):
            out.append(msg)


def test_a_restart_notice_is_a_normal_message_in_a_notebook(kernel):
    out = run(kernel, "from helpers.runtime import engines\n"
                      "engines.notice(\"The Redis service 'lab09': restarted lab09-1 after they stopped.\")")
    assert [(m["msg_type"], m["content"].get("name")) for m in out] == [("stream", "stdout")], out
    assert "restarted lab09-1" in out[0]["content"]["text"]


def test_a_long_wait_shows_one_line_updated_in_place(kernel):
    out = run(kernel, "import time\nfrom helpers.runtime.notebook import waiting\n"
                      "with waiting('lab13-rg to be available', after=0.3, every=0.3) as w:\n"
                      "    w.detail = 'modifying'\n"
                      "    limit = time.monotonic() + 30\n"
                      "    while len(w.lines) < 2 and time.monotonic() < limit:  # shown, then updated\n"
                      "        time.sleep(0.05)\n")
    kinds = [m["msg_type"] for m in out]
    assert kinds[0] == "display_data" and set(kinds[1:]) == {"update_display_data"}, kinds
    ids = {m["content"]["transient"]["display_id"] for m in out}
    assert len(ids) == 1  # one line, rewritten
    texts = [m["content"]["data"]["text/plain"] for m in out]
    assert texts[0].startswith("waiting for lab13-rg to be available (modifying): ")
    assert re.fullmatch(r"waited \d+ s for lab13-rg to be available", texts[-1]), texts[-1]


def test_a_short_wait_shows_nothing_and_outside_a_notebook_only_when_asked(kernel, capsys):
    assert run(kernel, "from helpers.runtime.notebook import waiting\nwith waiting('x', after=60):\n    pass\n") == []
    with notebook.waiting("lab13-rg to be deleted", after=0.1, every=0.1):
        time.sleep(0.4)
    assert capsys.readouterr() == ("", "")  # a test or a script: quiet
    with notebook.waiting("lab13-rg to be deleted", show=True, after=0.1, every=0.1) as w:
        limit = time.monotonic() + 30
        while not w.lines and time.monotonic() < limit:
            time.sleep(0.05)
    err = capsys.readouterr().err
    assert err.startswith("\rwaiting for lab13-rg to be deleted: ") and err.endswith("\n")
    assert re.fullmatch(r"waited \d+ s for lab13-rg to be deleted", err.split("\r")[-1].rstrip()), err
