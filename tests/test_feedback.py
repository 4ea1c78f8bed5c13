"""What a learner reads under a checked cell and under the token-bucket sliders."""

from __future__ import annotations

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
