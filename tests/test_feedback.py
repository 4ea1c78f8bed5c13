"""What a learner reads under a checked cell and under the token-bucket sliders."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from helpers.exercises import core


def test_correct_is_said_once(capsys):
    core.show(core.Result("correct", "Correct! Each learner gets their own port."))
    core.show(core.Result("correct", "Correct!"))
    core.show(core.Result("incorrect", "6379 is the default port."))
    out = capsys.readouterr().out.splitlines()
    assert out == ["Correct! Each learner gets their own port.", "Correct!", "Not yet: 6379 is the default port."]


def test_a_check_leaves_no_empty_output_under_its_feedback():
    """IPython shows nothing for the value `q.check(...)` returns (no empty `Out[n]:` line)."""
    from IPython.core.formatters import DisplayFormatter

    quiet = core._Quiet(core.Result("correct", "Correct!"))
    assert DisplayFormatter().format(quiet) == ({}, {})
    assert quiet.correct and quiet.status == "correct"


def test_token_bucket_summary_follows_the_sliders(isolated_home):
    import matplotlib

    matplotlib.use("Agg")
    from helpers import redis_client
    from helpers.topics.analytics import bucket_playground

    playground = bucket_playground(redis_client(), "test:feedback:pg:", seconds=0.2)
    first = playground.update()
    assert f"{first.n_allowed} of {len(first.allowed)} requests allowed" in playground.summary.value
    playground.controls["capacity"].value = 30  # what moving the slider does
    assert "capacity 30" in playground.summary.value
    assert playground.summary in playground.ui.children


def _shown_in_a_notebook(result):
    """What IPython's display machinery receives when `core.show` runs in an IPython shell."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    had_shell = InteractiveShell.initialized()
    shell = InteractiveShell.instance()
    try:
        with capture_output() as cap:
            core.show(result)
        return cap.outputs[0].data
    finally:
        if not had_shell:
            InteractiveShell.clear_instance()
        del shell


class _Tree(HTMLParser):
    """Tags and their text, as a browser's parser sees them (the standard library's HTML parser)."""

    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []
        self.code: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.open.append(tag)

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()

    def handle_data(self, data):
        if self.open and self.open[-1] == "code":
            self.code.append(data)


def _parse(markup: str) -> _Tree:
    tree = _Tree()
    tree.feed(markup)
    tree.close()
    return tree


def test_feedback_in_a_notebook_renders_code_spans_and_keeps_the_text():
    data = _shown_in_a_notebook(core.Result("hint", "r.set(key, value, ex=seconds) expires after `seconds`."))
    tree = _parse(data["text/html"])
    assert tree.code == ["seconds"]            # the Markdown span is code, its backticks gone
    assert "`" not in data["text/html"]
    assert data["text/plain"] == "Hint: r.set(key, value, ex=seconds) expires after `seconds`."


def test_a_learners_value_is_never_markup():
    value = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    message = f"Your answer is {core.shown(value)}, not `<b>bold</b>`; see `a < b`."
    tree = _parse(_shown_in_a_notebook(core.Result("incorrect", message))["text/html"])
    assert not {"img", "script"} & set(tree.tags) and tree.tags.count("b") == 1  # the label's <b> only
    assert tree.code == ["<b>bold</b>", "a < b"]  # shown as text, inside code
    solution = _parse(_shown_in_a_notebook(core.Result("solution", "x = '<script>'  # `not code`"))["text/html"])
    assert "script" not in solution.tags and "code" not in solution.tags


def test_one_wrong_item_is_singular():
    table = {"a": "x", "b": "y", "c": "x"}
    explain = lambda item, got: f"{item}: not {got}"  # noqa: E731
    with pytest.raises(core.Wrong, match=r"^1 of 3 is not the best fit\. b: not x$"):
        core.expect_choices_per_item({"a": "x", "b": "x", "c": "x"}, table, ("x", "y"), explain=explain)
    with pytest.raises(core.Wrong, match=r"^2 of 3 are not the best fit\."):
        core.expect_choices_per_item({"a": "y", "b": "x", "c": "x"}, table, ("x", "y"), explain=explain)


def test_lab16_durability_counts_one_wrong_statement_in_the_singular():
    from helpers.checks import lab16

    one_wrong = {**lab16.DURABILITY, "available_on_serverless_caches": True}
    result = lab16.q4.evaluate(one_wrong)
    assert result.status == "incorrect" and result.message.startswith(f"1 of {len(lab16.DURABILITY)} is not right."), \
        result.message
    two_wrong = {**one_wrong, "async_can_lose_up_to_the_last_10_seconds": False}
    assert lab16.q4.evaluate(two_wrong).message.startswith(f"2 of {len(lab16.DURABILITY)} are not right.")
